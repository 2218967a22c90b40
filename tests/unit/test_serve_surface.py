"""headwater.serve's public surface changes only on purpose, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import headwater.serve


def test_serve_surface() -> None:
    assert headwater.serve.__all__ == [
        "API_KEY_ENV", "Interaction", "InteractionLog", "MemoryState", "Predictor",
        "RedisState", "ServeSettings", "Server", "ServerMetrics", "Variant", "api_key_from_env",
        "bucket", "build", "create_app", "open_state", "parse_rows", "read_log", "run_server",
        "serving", "topic_for"]
    for name in headwater.serve.__all__:
        assert getattr(headwater.serve, name) is not None


def test_import_serve_does_not_load_fastapi() -> None:
    code = ("import sys, headwater.serve; s = headwater.serve.ServeSettings; "
            "print([m for m in ('fastapi', 'uvicorn', 'mlflow', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The smoke test of a staging deployment: real requests to its ``/invocations``, every answer
checked (HTTP 200, one result per row, a finite prediction, a probability in [0, 1]), and the
p99 latency against a limit.

    result = smoke_test("http://127.0.0.1:8080", rows, SmokeSpec(requests=10))
    result.problems            # [] when staging is fit for production
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.config._deploy import SmokeSpec


@dataclass
class SmokeResult:
    """What the smoke test sent and found."""

    url: str
    requests: int = 0
    failed: int = 0
    p99_ms: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line: requests, failures, p99."""
        return (f"{self.requests} requests to {self.url}/invocations, {self.failed} failed, "
                f"p99 {self.p99_ms:.0f} ms")


def _answer_problems(body: Any, rows: int) -> str | None:
    results = body.get("predictions") if isinstance(body, dict) else body
    if not isinstance(results, list) or len(results) != rows:
        got = len(results) if isinstance(results, list) else type(results).__name__
        return f"expected {rows} results, got {got}"
    for result in results:
        value = result.get("probability", result.get("prediction")) if isinstance(
            result, dict) else result
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            return f"a result is not a finite number: {result!r:.120}"
        if isinstance(result, dict) and "probability" in result and not 0 <= value <= 1:
            return f"a probability is outside [0, 1]: {value}"
    return None


def smoke_test(url: str, rows: list[dict[str, Any]], spec: SmokeSpec) -> SmokeResult:
    """Send ``spec.requests`` requests of up to ``spec.rows`` rows each to ``url``/invocations."""
    import httpx
    import numpy as np

    result = SmokeResult(url=url.rstrip("/"))
    latencies: list[float] = []
    seen: set[str] = set()
    with httpx.Client(timeout=30.0) as client:
        for i in range(spec.requests):
            start = (i * spec.rows) % len(rows)
            batch = (rows[start:] + rows[:start])[:spec.rows]
            began = time.perf_counter()
            try:
                answer = client.post(f"{result.url}/invocations", json={"rows": batch})
                problem = (f"HTTP {answer.status_code}: {answer.text[:200]}"
                           if answer.status_code != 200 else _answer_problems(answer.json(),
                                                                              len(batch)))
            except (httpx.HTTPError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            latencies.append((time.perf_counter() - began) * 1000)
            result.requests += 1
            if problem:
                result.failed += 1
                if problem not in seen and len(seen) < 3:
                    seen.add(problem)
                    result.problems.append(f"request {i + 1}: {problem}")
    result.p99_ms = float(np.percentile(latencies, 99))
    if result.p99_ms > spec.max_p99_ms:
        result.problems.append(f"p99 latency {result.p99_ms:.0f} ms above "
                               f"{spec.max_p99_ms:.0f} ms")
    return result

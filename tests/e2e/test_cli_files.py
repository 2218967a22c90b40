"""The file scenario end to end, as the README runs it."""

from __future__ import annotations

import gzip
import json

import pytest

from headwater.store import RunStore

pytestmark = pytest.mark.e2e


def test_help_on_every_command_has_an_example() -> None:
    from typer.main import get_command
    from typer.testing import CliRunner

    from headwater.cli import app

    def walk(command, path: list[str]):
        yield path
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    runner = CliRunner()
    paths = list(walk(get_command(app), []))
    assert len(paths) > 20
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, f"`headwater {' '.join(path)} --help` has no example"


def test_init_then_run_every_pipeline_exactly_once(hw) -> None:
    assert hw("init", "shop").code == 0
    shop = hw.cwd / "shop"
    assert (shop / "headwater.yaml").exists()
    assert hw("config", "check", cwd=shop).code == 0
    first = hw("ingest", "run", "--all", cwd=shop)
    assert first.code == 0, first.out + first.err
    assert "quarantined" in first.out
    counts = hw("sql", "SELECT count(*) AS n FROM orders", "--csv", cwd=shop).out
    again = hw("ingest", "run", "--all", cwd=shop)
    assert again.code == 0
    assert hw("sql", "SELECT count(*) AS n FROM orders", "--csv", cwd=shop).out == counts
    listing = hw("quarantine", "list", cwd=shop)
    assert listing.code == 0 and "orders" in listing.out
    shown = hw("quarantine", "show", "--table", "orders", cwd=shop)
    assert shown.code == 0 and "line" in shown.out
    runs = hw("runs", cwd=shop)
    assert runs.code == 0 and "orders" in runs.out
    oldest = RunStore.at(shop / ".headwater").list(limit=100)[-1]["id"]
    record = json.loads(hw("runs", "show", oldest, "--json", cwd=shop).out)
    assert record["report"]["conservation"]["holds"] is True
    assert hw("runs", "show", oldest, cwd=shop).code == 0


def test_quick_load_without_a_contract_and_a_bad_file_fails_alone(hw) -> None:
    good = hw.cwd / "good.csv"
    good.write_text("id;name;amount\n1;anna;1,5\n2;bob;2,25\n", encoding="latin-1")
    empty = hw.cwd / "empty.csv"
    empty.write_text("")
    broken = hw.cwd / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"id,name\n1,a\n")[:15])
    result = hw("ingest", "file", "good.csv", "empty.csv", "broken.csv.gz", "--table", "people")
    assert result.code == 1
    assert "empty.csv" in result.out + result.err and "broken.csv.gz" in result.out + result.err
    assert "Traceback" not in result.err
    rows = hw("sql", "SELECT count(*) AS n FROM people", "--csv")
    assert rows.out.strip().splitlines()[-1] == "2"


def test_a_user_error_prints_a_fix_not_a_traceback(hw) -> None:
    (hw.cwd / "headwater.yaml").write_text("pipelines:\n  x:\n    source: {kind: files}\n")
    result = hw("config", "check")
    assert result.code == 1
    assert "line 3" in result.err and "hint" in result.err
    assert "Traceback" not in result.err


def test_config_schema_is_json(hw) -> None:
    schema = json.loads(hw("config", "schema").out)
    assert "pipelines" in schema["properties"]


def test_replay_after_fixing_the_contract(hw) -> None:
    (hw.cwd / "o.csv").write_text("id,qty\n1,5\n2,-3\n3,7\n")
    strict = hw.cwd / "strict.yaml"
    strict.write_text("columns:\n  id: {type: integer}\n  qty: {type: integer, min: 0}\n")
    first = hw("ingest", "file", "o.csv", "--table", "o", "--contract", "strict.yaml")
    assert first.code == 0 and "range" in first.out.lower() + first.out
    strict.write_text("columns:\n  id: {type: integer}\n  qty: {type: integer}\n")
    replay = hw("quarantine", "replay", "--table", "o", "--contract", "strict.yaml")
    assert replay.code == 0, replay.out + replay.err
    total = hw("sql", "SELECT count(*) AS n, sum(qty) AS s FROM o", "--csv").out
    assert total.strip().splitlines()[-1] == "3,9"
    assert "nothing to replay" in hw("quarantine", "replay", "--table", "o",
                                     "--contract", "strict.yaml").out

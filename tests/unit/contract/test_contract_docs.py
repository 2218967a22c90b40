"""Every contract example in docs/contracts.md loads, and every rule example compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from headwater.config import parse_project
from headwater.contract import Contract, compile_rule

DOC = Path(__file__).parents[3] / "docs" / "contracts.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 15


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lstrip().startswith(("#", "version"))])
def test_full_contracts_load(block, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(block)
    contract = Contract.load(path)
    assert contract.columns


def test_project_example_validates():
    block = next(b for b in BLOCKS if b.startswith("pipelines:"))
    project = parse_project(block)
    assert project.pipelines["customers"].contract is not None


_TOP = {"version", "name", "description", "columns", "primary_key", "unique", "rules", "table",
        "dedupe", "rename", "unknown_columns", "cleanse"}


def _snippets() -> list[str]:
    """Blocks that are parts of a contract; a block repeating a key is one example a line."""
    out = []
    for block in BLOCKS:
        if block.startswith(("pipelines:", "#", "version")):
            continue
        tops = [line.split(":")[0] for line in block.splitlines() if re.match(r"^\w+:", line)]
        out += block.splitlines() if len(tops) != len(set(tops)) else [block]
    return [s for s in out if s.strip() and not s.startswith("#")]


@pytest.mark.parametrize("snippet", _snippets())
def test_every_snippet_is_a_valid_part_of_a_contract(snippet):
    data = yaml.safe_load(snippet)
    if not set(data) <= _TOP:  # a few columns
        data = {"columns": data}
    columns = dict(data.get("columns") or {})
    names = re.findall(r"\b[a-z_]+\b", yaml.safe_dump({k: v for k, v in data.items()
                                                         if k != "columns"}))
    for name in names:  # columns a key, dedupe or freshness names must exist
        if name.endswith(("_at", "_on")) or name == "updated_at":
            columns.setdefault(name, {"type": "timestamp"})
    for key in ("primary_key", "unique"):
        for part in data.get(key, []):
            for name in [part] if isinstance(part, str) else part:
                columns.setdefault(name, {})
    if isinstance(data.get("dedupe"), dict):
        for name in data["dedupe"].get("by", []):
            columns.setdefault(name, {})
    if data.get("rename"):
        for name in data["rename"].values():
            columns.setdefault(name, {})
    if "rules" in data:
        return  # compiled in test_rule_examples_compile
    data["columns"] = columns or {"x": {}}
    assert Contract.from_spec(data).columns


def test_rule_examples_compile():
    kinds = {"end_date": "date", "start_date": "date", "quantity": "number",
             "unit_price": "number", "status": "string", "payment_method": "string",
             "shipped_on": "date", "ordered_at": "timestamp", "delivered_at": "timestamp",
             "country_code": "string", "discount": "number", "member": "boolean"}
    rules = {}
    for block in BLOCKS:
        if block.startswith("rules:"):
            rules.update(yaml.safe_load(block)["rules"])
    assert len(rules) >= 8
    for name, rule in rules.items():
        text = rule["check"] if isinstance(rule, dict) else rule
        compile_rule(text, kinds, name)

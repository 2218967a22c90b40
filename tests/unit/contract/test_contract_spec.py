"""Contract files and specs: validation, errors with key and line, compile-time checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.config import parse_project
from headwater.config._contract import ContractSpec, normalise_type
from headwater.contract import Contract
from headwater.core import ConfigError, ContractError

CASES = Path(__file__).parent / "cases" / "contracts"


def test_load_a_full_contract():
    contract = Contract.load(CASES / "orders.yaml")
    assert contract.name == "orders"
    assert list(contract.columns) == ["order_id", "email", "ordered_at", "shipped_on", "status",
                                      "amount", "quantity", "paid", "code"]
    names = contract.rule_names()
    for rule in ("type(order_id)", "not_null(order_id)", "pattern(email)", "type(ordered_at)",
                 "not_null(ordered_at)", "allowed(status)", "range(amount)", "range(quantity)",
                 "type(paid)", "length(code)", "rule(shipped_after_ordered)",
                 "rule(big_orders_are_paid)", "primary_key(order_id)", "unique(email)"):
        assert rule in names


def test_unknown_type_names_key_and_line():
    with pytest.raises(ConfigError) as err:
        Contract.load(CASES / "bad_type.yaml")
    text = str(err.value)
    assert "line 5" in text and "columns.amount.type" in text and "money" in text
    assert err.value.hint


def test_rule_on_unknown_column_names_rule_line_and_columns():
    with pytest.raises(ContractError) as err:
        Contract.load(CASES / "bad_rule.yaml")
    text = str(err.value)
    assert "line 6" in text and "rules.ordered" in text and "stat" in text and "start, end" in text


def test_key_on_undeclared_column_and_unknown_key():
    with pytest.raises(ConfigError) as err:
        Contract.load(CASES / "bad_key.yaml")
    text = str(err.value)
    assert "nullable_things" in text and "line 4" in text


def test_key_on_undeclared_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("columns:\n  id: {type: integer}\nprimary_key: [identifier]\n")
    with pytest.raises(ConfigError) as err:
        Contract.load(path)
    assert "primary_key names ['identifier']" in str(err.value)
    assert "columns: id" in str(err.value)


def test_decimal_cut_by_flow_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("columns:\n  amount: {type: decimal(10,2)}\n")
    with pytest.raises(ConfigError, match="quote it"):
        Contract.load(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        Contract.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("spec", "match"), [
    ({"columns": {"a": {"type": "string", "min": 1}}}, "min and max apply to numbers"),
    ({"columns": {"a": {"pattern": "(["}}}, "invalid regular expression"),
    ({"columns": {"a": {"type": "integer", "unit": {"factor": 2}}}}, "float or decimal"),
    ({"columns": {"a": {"type": "float", "unit": {"from": "kg", "to": "m"}}}}, "cannot convert"),
    ({"columns": {"a": {"type": "float", "unit": {"from": "parsec", "to": "m"}}}}, "unknown unit"),
    ({"columns": {"a": {"type": "date", "min": "yesterday"}}}, "not a valid date"),
    ({"columns": {"a": {"type": "integer", "allowed": ["x"]}}}, "not a valid integer"),
    ({"columns": {"a": {"type": "string"}}, "dedupe": {"by": ["a"], "latest": "a"}},
     "latest row is found by a number"),
    ({"columns": {"a": {"type": "string"}}, "table": {"freshness": {"column": "a",
                                                                    "max_age": "1d"}}},
     "not a date or timestamp"),
    ({"columns": {"a": {"type": "integer"}}, "rules": {"r": "a"}}, "not a condition"),
    ({"columns": {"a": {"type": "integer"}}, "rules": {"r": "a > 'x'"}}, "cannot compare"),
    ({"columns": {}}, "declares no columns"),
    ({"columns": {"a": {"type": "uuid", "pattern": "^a"}}}, "pattern do not apply to a uuid"),
    ({"columns": {"a": {"type": "bytea", "max_length": 3}}}, "max_length do not apply"),
    ({"columns": {"a": {"type": "uuid"}}, "rules": {"r": "a == 'x'"}}, "cannot compare a binary"),
    ({"columns": {"a": {"type": "boolean", "true_values": ["x"], "false_values": ["x"]}}},
     "both true_values and false_values"),
])
def test_contract_errors(spec, match):
    with pytest.raises((ContractError, ConfigError), match=match):
        Contract.from_spec(spec)


@pytest.mark.parametrize(("spec", "match"), [
    ({"columns": {"a": {}}, "dedupe": "fuzzy"}, "dedupe is 'exact'"),
    ({"columns": {"a": {"outliers": {"method": "bounds"}}}}, "needs min, max"),
    ({"columns": {"a": {"fill": {"strategy": "value"}}}}, "needs a value"),
    ({"columns": {"a": {"min_length": 3, "max_length": 2}}}, "min_length is greater"),
    ({"columns": {"a": {}}, "table": {"freshness": {"column": "a", "max_age": "soon"}}},
     "is not a duration"),
    ({"version": 99, "columns": {"a": {}}}, "upgrade headwater"),
    ({"columns": {"a": {"unit": {"from": "kg", "factor": 2}}}}, "not both"),
])
def test_spec_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        Contract.from_spec(spec)


def test_type_spellings():
    assert normalise_type("INT") == "integer"
    assert normalise_type("numeric(10, 2)") == "decimal(10,2)"
    assert normalise_type("decimal") == "decimal(18,2)"
    assert normalise_type("datetime") == "timestamp"
    with pytest.raises(ValueError, match="precision"):
        normalise_type("decimal(40,2)")


def test_shorthands():
    spec = ContractSpec.model_validate({"columns": {"a": {}, "b": {}}, "primary_key": "a",
                                        "unique": ["b", ["a", "b"]], "dedupe": "exact"})
    assert spec.primary_key == ["a"]
    assert spec.unique == [["b"], ["a", "b"]]
    assert spec.dedupe is not None and spec.dedupe.by is None


def test_inline_contract_in_headwater_yaml():
    project = parse_project("""
pipelines:
  orders:
    source: {kind: files, path: data/}
    table: orders
    contract:
      columns:
        id: {type: integer, nullable: false}
""")
    spec = project.pipelines["orders"].contract
    assert isinstance(spec, ContractSpec)
    assert Contract.from_spec(spec).columns["id"].required


def test_inline_contract_errors_name_the_line():
    with pytest.raises(ConfigError) as err:
        parse_project("""
pipelines:
  orders:
    source: {kind: files, path: data/}
    table: orders
    contract:
      columns:
        id: {type: integr}
""")
    assert "line 8" in str(err.value) and "integr" in str(err.value)

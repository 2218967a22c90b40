"""The row-rule expression language: parsing, SQL null logic, functions, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.contract._expr import (
    Between,
    Binary,
    Col,
    ExprError,
    In,
    IsNull,
    Lit,
    Unary,
    columns_of,
    compile_rule,
    parse,
    render,
)

FRAME = pl.DataFrame({
    "a": [1, 5, None, -2],
    "b": [2, 5, 3, None],
    "s": ["Ada", "bob@x.org", None, "it's"],
    "d": [date(2024, 1, 1), date(2024, 2, 29), None, date(2023, 12, 31)],
    "t": [datetime(2024, 1, 2, 12, tzinfo=UTC)] * 4,
    "odd name": [1, 2, 3, 4],
}, schema_overrides={"t": pl.Datetime("us", "UTC")})
KINDS = {"a": "number", "b": "number", "s": "string", "d": "date", "t": "timestamp",
         "odd name": "number"}


def values(text: str) -> list:
    rule = compile_rule(text, KINDS, "r")
    return FRAME.with_columns(rule.expr.alias("_r")).get_column("_r").to_list()


@pytest.mark.parametrize(("text", "expected"), [
    ("a < b", [True, False, None, None]),
    ("a = b", [False, True, None, None]),
    ("a <> b", [True, False, None, None]),
    ("a != b or a is null", [True, False, True, None]),
    ("a is not null and b is not null", [True, True, False, False]),
    ("not a > 0", [False, False, None, True]),
    ("a in (1, -2)", [True, False, None, True]),
    ("a not in (1, -2)", [False, True, None, False]),
    ("a between 0 and 5", [True, True, None, False]),
    ("a not between 0 and 4", [False, True, None, True]),
    ("a + b * 2 = 5", [True, False, None, None]),
    ("(a + b) * 2 = 6", [True, False, None, None]),
    ("-a < 0", [True, True, None, False]),
    ("a / 0 > 1", [None, None, None, None]),
    ("a % 2 = 1", [True, True, None, False]),
    ("b / a >= 1", [True, True, None, None]),
    ("s like 'A%'", [True, False, None, False]),
    ("s not like '%@%.___'", [True, False, None, True]),
    ("s matches '^[^@]+@[^@]+$'", [False, True, None, False]),
    ("s = 'it''s'", [False, False, None, True]),
    ("s = \"Ada\"", [True, False, None, False]),
    ("lower(s) = 'ada' or upper(s) = 'BOB@X.ORG'", [True, True, None, False]),
    ("length(trim(s)) >= 4", [False, True, None, True]),
    ("coalesce(a, b, 0) > 0", [True, True, True, False]),
    ("least(a, b) = 1 or greatest(a, b) = 5", [True, True, False, False]),  # nulls ignored
    ("abs(a) = 2", [False, False, None, True]),
    ("round(a / 2) = 2 or floor(a / 2) = -1 or ceil(a / 2) = 1", [True, False, None, True]),
    ("starts_with(s, 'A') or ends_with(s, '.org') or contains(s, '''')",
     [True, True, None, True]),
    ("d >= '2024-01-01'", [True, True, None, False]),
    ("d between date('2024-01-01') and '2024-02-01'", [True, False, None, False]),
    ("year(d) = 2024 and month(d) <= 2 and day(d) in (1, 29)", [True, True, None, False]),
    ("days_between(d, t) > 1", [True, False, None, True]),
    ("date(t) = '2024-01-02' and hour(t) = 12", [True, True, True, True]),
    ("t > '2024-01-02T11:00:00+00:00'", [True, True, True, True]),
    ("d + 1 = '2024-01-02'", [True, False, None, False]),
    ("t < now() and d < today()", [True, True, None, True]),
    ("`odd name` > 2", [False, False, True, True]),
    ("weekday(d) = 1", [True, False, None, False]),
    ("true and null", [None] * 4),
    ("false and null", [False] * 4),
    ("true or null", [True] * 4),
])
def test_rules(text, expected):
    assert values(text) == expected


def test_fails_are_false_results_only():
    rule = compile_rule("a < b", KINDS)
    assert FRAME.select(rule.fails).to_series().to_list() == [False, True, False, False]
    assert rule.columns == ["a", "b"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "the rule is empty"),
    ("a >", "expected a value, found 'the end' at position 4"),
    ("a = = b", "expected a value, found '='"),
    ("a & b", "unexpected character '&'"),
    ("(a > 1", "expected ')'"),
    ("a > 1)", "unexpected ')'"),
    ("zz > 1", "unknown column 'zz'"),
    ("s > 1", "cannot compare a string with a number"),
    ("a + s > 1", "'+' needs a number, not a string"),
    ("a", "is a number, not a condition"),
    ("nope(a) > 1", "unknown function nope()"),
    ("abs(a, b) > 1", "abs() takes 1 argument(s), got 2"),
    ("s matches '['", "invalid regular expression"),
    ("d > 'yesterday'", "not an ISO date"),
    ("a in (b)", "expected a literal"),
    ("a not is null", "unexpected 'not'"),
    ("not a", "'not' needs a boolean, not a number"),
    ("a in ('x')", "'in' compares a number with string values"),
    ("date(a) > '2024-01-01'", "date() takes a text literal"),
])
def test_errors_say_what_and_where(text, message):
    with pytest.raises(ExprError, match="rule 'r'") as err:
        compile_rule(text, KINDS, "r")
    assert message in str(err.value)
    assert err.value.hint


def test_error_points_at_the_position():
    with pytest.raises(ExprError) as err:
        compile_rule("a > 1 and % 2", KINDS, "r")
    lines = str(err.value).splitlines()
    assert lines[1].strip() == "a > 1 and % 2"
    assert lines[2].index("^") - lines[1].index("a") == 10


# ------------------------------------------------------------------------------ properties

_COLS = st.sampled_from([Col("a"), Col("b")])
_INTS = st.integers(min_value=-20, max_value=20).map(Lit)


def _numbers(depth: int) -> st.SearchStrategy:
    leaf = st.one_of(_COLS, _INTS)
    if depth == 0:
        return leaf
    sub = _numbers(depth - 1)
    return st.one_of(
        leaf,
        st.builds(Binary, st.sampled_from(["+", "-", "*"]), sub, sub),
        st.builds(Unary, st.just("-"), _COLS),
    )


def _conditions(depth: int) -> st.SearchStrategy:
    num = _numbers(2)
    leaf = st.one_of(
        st.builds(Binary, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), num, num),
        st.builds(IsNull, num, st.booleans()),
        st.builds(In, num, st.lists(_INTS, min_size=1, max_size=4).map(tuple), st.booleans()),
        st.builds(Between, num, _INTS, _INTS, st.booleans()),
        st.sampled_from([Lit(True), Lit(False), Lit(None)]),
    )
    if depth == 0:
        return leaf
    sub = _conditions(depth - 1)
    return st.one_of(leaf, st.builds(Binary, st.sampled_from(["and", "or"]), sub, sub),
                     st.builds(Unary, st.just("not"), sub))


def _eval(node, row):  # the reference: SQL three-valued logic in plain Python
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Col):
        return row[node.name]
    if isinstance(node, Unary):
        v = _eval(node.arg, row)
        return None if v is None else (not v if node.op == "not" else -v)
    if isinstance(node, IsNull):
        v = _eval(node.arg, row) is None
        return not v if node.negated else v
    if isinstance(node, In):
        v = _eval(node.arg, row)
        if v is None:
            return None
        inside = v in [i.value for i in node.items]
        return not inside if node.negated else inside
    if isinstance(node, Between):
        v, lo, hi = (_eval(n, row) for n in (node.arg, node.low, node.high))
        inside = _and(None if None in (v, lo) else v >= lo, None if None in (v, hi) else v <= hi)
        return None if inside is None else (not inside if node.negated else inside)
    left, right = _eval(node.left, row), _eval(node.right, row)
    if node.op == "and":
        return _and(left, right)
    if node.op == "or":
        return _or(left, right)
    if left is None or right is None:
        return None
    return {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
            "==": lambda: left == right, "!=": lambda: left != right, "<": lambda: left < right,
            "<=": lambda: left <= right, ">": lambda: left > right,
            ">=": lambda: left >= right}[node.op]()


def _and(x, y):
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def _or(x, y):
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


_ROWS = st.lists(st.fixed_dictionaries({
    "a": st.one_of(st.none(), st.integers(-20, 20)),
    "b": st.one_of(st.none(), st.integers(-20, 20)),
}), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(tree=_conditions(2))
def test_render_then_parse_gives_the_same_tree(tree):
    assert parse(render(tree)) == tree
    assert set(columns_of(tree)) <= {"a", "b"}


@settings(max_examples=300, deadline=None)
@given(tree=_conditions(2), rows=_ROWS)
def test_compiled_rules_follow_sql_null_logic(tree, rows):
    frame = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.Int64})
    rule = compile_rule(render(tree), {"a": "number", "b": "number"})
    got = frame.with_columns(rule.expr.alias("_r")).get_column("_r").to_list()
    assert got == [_eval(tree, row) for row in rows]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        compile_rule(text, {"a": "number", "b": "number"})
    except ExprError as exc:
        assert "rule 'rule'" in str(exc)

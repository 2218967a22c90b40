"""The checker: valid rows typed and in order, failing rows with every reason, nothing lost."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from headwater.contract import INVALID_SCHEMA, Checked, Contract
from headwater.core import POSITION


def batch(first: int = 1, **columns: list) -> pa.Table:
    n = len(next(iter(columns.values())))
    return pa.table({POSITION: pa.array(range(first, first + n), pa.int64()), **columns})


def conserved(out: Checked, table: pa.Table) -> Checked:
    assert out.valid.num_rows + out.invalid.num_rows + out.dropped == table.num_rows
    assert out.invalid.schema.equals(INVALID_SCHEMA)
    return out


def run(spec: dict, *tables: pa.Table) -> list[Checked]:
    checker = Contract.from_spec(spec).checker()
    return [conserved(checker.check(t), t) for t in tables]


def by_pos(out: Checked) -> dict[int, dict]:
    return {r[POSITION]: r for r in out.invalid.to_pylist()}


ORDERS = {
    "primary_key": ["id"],
    "columns": {
        "id": {"type": "integer"},
        "amount": {"type": "decimal(10,2)", "min": 0},
        "qty": {"type": "integer", "min": 1, "max": 100},
        "email": {"nullable": False, "pattern": r"[^@\s]+@[^@\s]+\.\w+",
                  "cleanse": {"case": "lower"}},
        "status": {"allowed": ["new", "paid"], "cleanse": {"case": "lower"}},
        "code": {"min_length": 2, "max_length": 3},
        "start": {"type": "date"},
        "end": {"type": "date"},
    },
    "rules": {"end_after_start": "end >= start"},
}


def test_every_failed_rule_is_reported_with_a_reason():
    t = batch(id=["1", "2"], amount=["10", "-5"], qty=["3", "0"], email=["A@B.CO", "nope"],
              status=["NEW", "gone"], code=["ab", "abcdef"], start=["2024-01-01", "2024-02-01"],
              end=["2024-01-02", "2024-01-01"])
    (out,) = run(ORDERS, t)
    assert out.valid.num_rows == 1
    row = by_pos(out)[2]
    assert row["rules"] == ["range(amount)", "range(qty)", "pattern(email)", "allowed(status)",
                            "length(code)", "rule(end_after_start)"]
    assert len(row["reasons"]) == len(row["rules"])
    reasons = " | ".join(row["reasons"])
    for text in ("amount: -5.00 is below the minimum 0", "qty: 0 is below the minimum 1",
                 "email: 'nope' does not match", "status: 'gone' is not one of: new, paid",
                 "code: 'abcdef' has 6 characters; expected 2 to 3",
                 "end=2024-01-01, start=2024-02-01"):
        assert text in reasons
    assert json.loads(row["raw"]) == {"id": "2", "amount": "-5", "qty": "0", "email": "nope",
                                      "status": "gone", "code": "abcdef", "start": "2024-02-01",
                                      "end": "2024-01-01"}


def test_valid_rows_are_typed_cleansed_and_in_contract_order():
    t = batch(end=["2024-01-02"], start=["2024-01-01"], code=["ab"], status=[" Paid "],
              email=[" Bob@X.ORG "], qty=["1,000"], amount=["$1,234.50"], id=["7"], more=["x"])
    spec = {**ORDERS, "columns": {**ORDERS["columns"], "qty": {"type": "integer"}}}
    (out,) = run(spec, t)
    assert out.valid.column_names == [*ORDERS["columns"], "more", POSITION]
    row = out.valid.to_pylist()[0]
    assert row == {"id": 7, "amount": Decimal("1234.50"), "qty": 1000, "email": "bob@x.org",
                   "status": "paid", "code": "ab", "start": date(2024, 1, 1),
                   "end": date(2024, 1, 2), "more": "x", POSITION: 1}
    schema = out.valid.schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("amount").type == pa.decimal128(10, 2)
    assert schema.field("start").type == pa.date32()


def test_type_failures_are_rules_not_exceptions():
    spec = {"columns": {"n": {"type": "integer"}, "x": {"type": "float"},
                        "d": {"type": "decimal(4,2)"}, "b": {"type": "boolean"},
                        "t": {"type": "timestamp"}, "day": {"type": "date"},
                        "tm": {"type": "time"}, "j": {"type": "json"}}}
    t = batch(n=["1.5"], x=["abc"], d=["123456"], b=["maybe"], t=["soon"], day=["2024-13-45"],
              tm=["25:99"], j=["{not json"])
    (out,) = run(spec, t)
    assert by_pos(out)[1]["rules"] == ["type(n)", "type(x)", "type(d)", "type(b)", "type(t)",
                                       "type(day)", "type(tm)", "type(j)"]
    assert "n: '1.5' is not a valid integer" in by_pos(out)[1]["reasons"]


def test_nulls_and_not_null():
    spec = {"columns": {"a": {"nullable": False}, "b": {"type": "integer", "nullable": False},
                        "c": {"type": "integer"}}}
    t = batch(a=["x", "N/A", " ", "null"], b=["1", "2", "-", "x"], c=["NaN", "", "none", "3"])
    (out,) = run(spec, t)
    rows = by_pos(out)
    assert rows[2]["rules"] == ["not_null(a)"]
    assert rows[3]["rules"] == ["not_null(a)", "not_null(b)"]
    assert rows[4]["rules"] == ["not_null(a)", "type(b)"]  # a type failure is not also a null
    assert out.valid.to_pylist() == [{"a": "x", "b": 1, "c": None, POSITION: 1}]


def test_primary_key_within_and_across_batches():
    spec = {"primary_key": ["id"], "columns": {"id": {"type": "integer"}, "v": {}}}
    first = batch(id=["1", "2", "2", None], v=["a", "b", "c", "d"])
    second = batch(5, id=["3", "1", "3"], v=["e", "f", "g"])
    a, b = run(spec, first, second)
    assert by_pos(a)[3]["rules"] == ["primary_key(id)"]
    assert "primary key id='2' appears again" in by_pos(a)[3]["reasons"][0]
    assert by_pos(a)[4]["rules"] == ["not_null(id)"]
    assert sorted(by_pos(b)) == [6, 7]
    assert b.valid.column("id").to_pylist() == [3]


def test_a_quarantined_row_does_not_claim_its_key():
    spec = {"primary_key": ["id"], "columns": {"id": {"type": "integer"},
                                               "q": {"type": "integer", "min": 0}}}
    (out,) = run(spec, batch(id=["1", "1"], q=["-1", "5"]))
    assert out.valid.to_pylist() == [{"id": 1, "q": 5, POSITION: 2}]
    assert by_pos(out)[1]["rules"] == ["range(q)"]


def test_composite_and_column_unique_keys():
    spec = {"unique": [["a", "b"]], "columns": {"a": {}, "b": {}, "e": {"unique": True}}}
    t = batch(a=["x", "x", "y"], b=["1", "1", "1"], e=["m", None, None])
    (out,) = run(spec, t)
    assert by_pos(out)[2]["rules"] == ["unique(a,b)"]
    assert out.valid.num_rows == 2  # nulls are never duplicates


def test_exact_duplicates_are_dropped_and_counted():
    spec = {"dedupe": "exact", "columns": {"a": {"type": "integer"}, "b": {}}}
    a, b = run(spec, batch(a=["1", "1", "01", "2"], b=["x", "x", "x", " x "]),
               batch(5, a=["2", "3"], b=["x", "y"]))
    assert a.dropped == 2 and a.valid.column(POSITION).to_pylist() == [1, 4]
    assert b.dropped == 1 and b.valid.column(POSITION).to_pylist() == [6]


def test_dedupe_by_key_keeps_the_latest():
    spec = {"primary_key": ["id"], "dedupe": {"by": ["id"], "latest": "at"},
            "columns": {"id": {"type": "integer"}, "at": {"type": "timestamp"}, "v": {}}}
    first = batch(id=["1", "1", "2"], at=["2024-01-02", "2024-01-01", "2024-01-01"],
                  v=["new", "old", "x"])
    second = batch(4, id=["1", "2"], at=["2023-12-31", "2024-02-01"], v=["older", "newer"])
    a, b = run(spec, first, second)
    assert a.valid.column("v").to_pylist() == ["new", "x"] and a.dropped == 1
    assert b.valid.column("v").to_pylist() == ["newer"] and b.dropped == 1
    assert a.invalid.num_rows == b.invalid.num_rows == 0


@pytest.mark.parametrize(("policy", "valid_cols", "invalid"), [
    ("keep", ["a", "extra", POSITION], 0),
    ("drop", ["a", POSITION], 0),
    ("quarantine", ["a", POSITION], 1),
])
def test_unknown_columns(policy, valid_cols, invalid):
    spec = {"unknown_columns": policy, "columns": {"a": {}}}
    (out,) = run(spec, batch(a=["1", "2"], extra=[None, "surprise"]))
    assert out.valid.column_names == valid_cols
    assert out.invalid.num_rows == invalid
    if invalid:
        assert by_pos(out)[2]["rules"] == ["unknown(extra)"]


def test_renames_from_and_normalised_headers():
    spec = {"rename": {"ID#": "id"},
            "columns": {"id": {"type": "integer"}, "name": {"from": "Full Name"},
                        "zip_code": {}}}
    (out,) = run(spec, batch(**{"ID#": ["1"], "full_name": ["Ada"], "Zip Code": ["75001"]}))
    assert out.valid.to_pylist() == [{"id": 1, "name": "Ada", "zip_code": "75001", POSITION: 1}]


def test_missing_columns():
    spec = {"columns": {"a": {}, "b": {"type": "integer"}, "c": {"nullable": False}}}
    (out,) = run(spec, batch(a=["x"]))
    assert by_pos(out)[1]["rules"] == ["not_null(c)"]
    assert "no such column" in by_pos(out)[1]["reasons"][0]
    (ok,) = run({"columns": {"a": {}, "b": {"type": "integer"}}}, batch(a=["x"]))
    assert ok.valid.to_pylist() == [{"a": "x", "b": None, POSITION: 1}]


def test_typed_inputs_are_converted():
    spec = {"columns": {"i": {"type": "integer"}, "f": {"type": "float"},
                        "d": {"type": "decimal(8,2)"}, "b": {"type": "boolean"},
                        "ts": {"type": "timestamp", "timezone": "Europe/Paris"},
                        "aware": {"type": "timestamp"}, "day": {"type": "date"},
                        "s": {"type": "string"}, "j": {"type": "json"}}}
    t = batch(i=pa.array([1.0, 2.5]), f=pa.array([1, 2], pa.int32()), d=pa.array([1.25, 3.0]),
              b=pa.array([1, 7]), ts=pa.array([datetime(2024, 6, 1, 12), None]),
              aware=pa.array([datetime(2024, 6, 1, 12, tzinfo=UTC)] * 2,
                             pa.timestamp("ms", "America/New_York")),
              day=pa.array([datetime(2024, 6, 1, 23, 0)] * 2), s=pa.array([5, 6]),
              j=pa.array([{"k": 1}, {"k": 2}]))
    (out,) = run(spec, t)
    assert by_pos(out)[2]["rules"] == ["type(i)", "type(b)"]
    row = out.valid.to_pylist()[0]
    assert row["i"] == 1 and row["f"] == 1.0 and row["d"] == Decimal("1.25") and row["b"] is True
    assert row["ts"] == datetime(2024, 6, 1, 10, tzinfo=UTC)  # Paris summer time is UTC+2
    assert row["aware"] == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert row["day"] == date(2024, 6, 1) and row["s"] == "5" and json.loads(row["j"]) == {"k": 1}


def test_fill_constant_and_forward_across_batches():
    spec = {"columns": {"c": {"fill": {"value": "web"}},
                        "n": {"type": "integer", "fill": {"value": 0}},
                        "f": {"type": "float", "fill": {"strategy": "forward"}}}}
    a, b = run(spec, batch(c=["", "x"], n=["", "bad"], f=["1.5", ""]),
               batch(3, c=["y"], n=["4"], f=[""]))
    assert a.valid.to_pylist() == [{"c": "web", "n": 0, "f": 1.5, POSITION: 1}]
    assert by_pos(a)[2]["rules"] == ["type(n)"]  # a fill never hides a value that failed its type
    assert b.valid.column("f").to_pylist() == [1.5]


def test_outliers_clip_flag_quarantine():
    values = ["10", "11", "12", "13", "10", "11", "12", "1000"]
    for action, check in (
        ("clip", lambda out: max(out.valid.column("x").to_pylist()) < 1000),
        ("flag", lambda out: out.valid.column("x_outlier").to_pylist()[-1] is True),
        ("quarantine", lambda out: by_pos(out)[8]["rules"] == ["outlier(x)"]),
    ):
        spec = {"columns": {"x": {"type": "float", "outliers": {"method": "iqr",
                                                                "action": action}}}}
        (out,) = run(spec, batch(x=values))
        assert check(out), action
    spec = {"columns": {"x": {"type": "float", "outliers": {"method": "bounds", "max": 100,
                                                            "action": "clip"}}}}
    (out,) = run(spec, batch(x=values))
    assert out.valid.column("x").to_pylist()[-1] == 100
    spec = {"columns": {"x": {"type": "float", "outliers": {"method": "zscore", "z": 2,
                                                            "action": "quarantine"}}}}
    (out,) = run(spec, batch(x=values))
    assert sorted(by_pos(out)) == [8]


def test_unit_conversion():
    spec = {"columns": {"w": {"type": "float", "from": "weight_lb",
                              "unit": {"from": "lb", "to": "kg"}},
                        "t": {"type": "float", "unit": {"from": "F", "to": "C"}},
                        "m": {"type": "decimal(10,3)", "unit": {"factor": 0.001}}}}
    (out,) = run(spec, batch(weight_lb=["10"], t=["212"], m=["1500"]))
    row = out.valid.to_pylist()[0]
    assert row["w"] == pytest.approx(4.5359237)
    assert row["t"] == pytest.approx(100.0)
    assert row["m"] == Decimal("1.500")


def test_table_rules_at_the_end():
    spec = {"columns": {"at": {"type": "timestamp"}},
            "table": {"min_rows": 3, "max_rows": 10,
                      "freshness": {"column": "at", "max_age": "2d"}}}
    checker = Contract.from_spec(spec).checker()
    checker.check(batch(at=["2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z"]))
    failed = checker.finish(now=datetime(2024, 1, 4, tzinfo=UTC))
    assert [f.rule for f in failed] == ["min_rows"]
    assert [f.rule for f in checker.report.findings] == ["min_rows", "max_rows", "freshness(at)"]
    stale = checker.finish(now=datetime(2024, 1, 3, tzinfo=UTC) + timedelta(days=3))
    assert [f.rule for f in stale] == ["min_rows", "freshness(at)"]
    assert "newest at is 2024-01-03" in stale[1].message


def test_positions_are_added_when_missing_and_empty_batches_work():
    checker = Contract.from_spec({"columns": {"a": {"type": "integer"}}}).checker()
    out = checker.check(pa.table({"a": ["1", "x"]}))
    assert out.invalid.column(POSITION).to_pylist() == [2]
    empty = checker.check(pa.table({"a": pa.array([], pa.string()),
                                    POSITION: pa.array([], pa.int64())}))
    assert empty.rows == 0 and empty.valid.column_names == ["a", POSITION]


def test_report_counts_match_the_checks():
    checker = Contract.from_spec(ORDERS).checker()
    t = batch(id=["1", "1", "3"], amount=["1", "2", "x"], qty=["1", "1", "1"],
              email=["a@b.cc", "c@d.ee", "e@f.gg"], status=["new", "new", "new"],
              code=["ab", "ab", "ab"], start=["2024-01-01"] * 3, end=["2024-01-01"] * 3)
    checker.check(t)
    report = checker.report
    assert (report.rows, report.valid, report.invalid, report.dropped) == (3, 1, 2, 0)
    assert report.rules["primary_key(id)"].failed == 1
    assert report.rules["type(amount)"].failed == 1
    assert report.rules["range(qty)"].failed == 0
    assert report.columns["amount"].failed == 1 and report.columns["id"].failed == 1
    assert report.top_reasons(1) == [("primary_key(id)", 1)]


# ------------------------------------------------------------------------------ properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CELL = st.one_of(st.integers(-1000, 1000).map(str), st.sampled_from(["", "N/A", " 7 ", "x",
                                                                      "1,000", "-", "3.0"]),
                  st.text(max_size=4))


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 30).map(str), _CELL, _CELL), max_size=60),
       cut=st.integers(0, 60), dedupe=st.booleans())
def test_every_row_ends_in_exactly_one_place(rows, cut, dedupe):
    spec = {"primary_key": ["id"], "columns": {"id": {"type": "integer"},
                                               "n": {"type": "integer", "min": 0},
                                               "s": {"max_length": 3}}}
    if dedupe:
        spec["dedupe"] = "exact"
    checker = Contract.from_spec(spec).checker()
    positions, valid_ids = [], []
    for part, first in ((rows[:cut], 1), (rows[cut:], 1 + len(rows[:cut]))):
        if not part:
            continue
        t = batch(first, id=[r[0] for r in part], n=[r[1] for r in part], s=[r[2] for r in part])
        out = conserved(checker.check(t), t)
        positions += out.valid.column(POSITION).to_pylist()
        positions += out.invalid.column(POSITION).to_pylist()
        valid_ids += out.valid.column("id").to_pylist()
        for row in out.valid.to_pylist():  # a valid row is its input, typed
            text = rows[row[POSITION] - 1]
            assert row["id"] == int(text[0])
            assert row["n"] is None or row["n"] == int(float(text[1].replace(",", "")))
        for raw in out.invalid.column("raw").to_pylist():
            assert set(json.loads(raw)) == {"id", "n", "s"}
    assert len(valid_ids) == len(set(valid_ids))  # the primary key holds across batches
    report = checker.report
    assert report.rows == len(rows) == report.valid + report.invalid + report.dropped
    assert len(positions) == len(set(positions)) == len(rows) - report.dropped


def test_promoting_an_attempt_never_changes_a_value():
    # most values need the thousands-separator attempt, so later batches try it first;
    # the comma-decimal attempt is never promoted ('1,234' stays one thousand ...)
    spec = {"columns": {"x": {"type": "float"}}}
    batches = [["1,234.50"] * 8 + ["12,5", "7"], ["12,5"] * 9 + ["1,234"], ["1,234", "3", "x"]]
    shared = Contract.from_spec(spec).checker()
    for i, values in enumerate(batches):
        t = batch(1, x=values)
        fresh = Contract.from_spec(spec).checker().check(t)
        again = shared.check(t)
        assert again.valid.to_pylist() == fresh.valid.to_pylist(), i
    assert again.valid.column("x").to_pylist() == [1234.0, 3.0]


U1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"


def test_uuid_columns_read_text_and_bytes_and_leave_as_arrow_uuids():
    import uuid

    spec = {"columns": {"t": {"type": "uuid"}, "b": {"type": "uuid"}}}
    text = pa.array([U1.upper(), "{" + U1 + "}", "urn:uuid:" + U1.replace("-", ""), "nope", None])
    raw = pa.array([uuid.UUID(U1).bytes] * 3 + [b"\xde\xad", None], pa.binary())
    (out,) = run(spec, batch(t=text, b=raw))
    assert out.valid.schema.field("t").type == pa.uuid()
    assert out.valid.column("t").to_pylist() == [uuid.UUID(U1)] * 3 + [None]
    assert out.valid.column("b").to_pylist()[0] == uuid.UUID(U1)
    bad = by_pos(out)[4]
    assert bad["rules"] == ["type(t)", "type(b)"]
    assert "'nope' is not a valid UUID" in bad["reasons"][0]
    assert json.loads(bad["raw"]) == {"t": "nope", "b": "3q0="}  # bytes as base64
    assert 5 not in by_pos(out)  # null is null, not a failure


def test_binary_columns_keep_bytes_and_read_base64_or_hex_text():
    spec = {"columns": {"raw": {"type": "binary"}, "b64": {"type": "bytes"},
                        "hex": {"type": "binary", "encoding": "hex"}, "s": {"type": "string"}}}
    t = batch(raw=pa.array([b"\xff\x00", b"\x80"]), b64=pa.array(["3q0=", "!!"]),
              hex=pa.array(["\\xDEAD", "0xdead"]), s=pa.array([b"\xff", b"ok"]))
    (out,) = run(spec, t)
    row = out.valid.to_pylist()[0]
    assert row == {"raw": b"\xff\x00", "b64": b"\xde\xad", "hex": b"\xde\xad", "s": "/w==",
                   POSITION: 1}  # bytes are never decoded as UTF-8: a string gets base64
    bad = by_pos(out)[2]
    assert bad["rules"] == ["type(b64)"]
    assert json.loads(bad["raw"])["raw"] == "gA=="


def test_uuids_in_the_quarantine_replay_as_uuids():
    import uuid

    spec = {"columns": {"u": {"type": "uuid"}, "n": {"type": "integer", "min": 0}}}
    (out,) = run(spec, batch(u=pa.array([uuid.UUID(U1).bytes], pa.binary(16)), n=[-1]))
    raw = json.loads(out.invalid.column("raw")[0].as_py())
    assert raw == {"u": U1, "n": -1}
    (again,) = run(spec, batch(u=[raw["u"]], n=[1]))  # the raw text reads back the same
    assert again.valid.column("u").to_pylist() == [uuid.UUID(U1)]


def test_lists_become_json_text_and_bytes_in_them_base64():
    spec = {"columns": {"l": {"type": "json"}, "b": {"type": "json"}, "n": {"type": "integer",
                                                                          "min": 0}}}
    t = batch(l=pa.array([[1, None], None]), b=pa.array([[b"\xff"], [b"\x00"]]), n=[1, -1])
    (out,) = run(spec, t)
    assert out.valid.to_pylist()[0] == {"l": "[1,null]", "b": '["/w=="]', "n": 1, POSITION: 1}
    assert json.loads(out.invalid.column("raw")[0].as_py()) == {"l": None, "b": ["AA=="], "n": -1}

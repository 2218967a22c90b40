"""Parsers of the database and API sources, with hypothesis: change records, UUIDs, records,
cursor values, and the source specs in headwater.yaml."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.config import parse_project
from headwater.core import POSITION, ConfigError, SourceError
from headwater.core._arrow import uuid_text
from headwater.ingest.sources._cdc import _decoded_ident, touched_keys
from headwater.ingest.sources._http import RetryPolicy, retry_after
from headwater.ingest.sources._records import dig, find_records, records_to_table
from headwater.ingest.sources._sql_types import (
    decode_cursor,
    encode_cursor,
    parse_lookback,
    step_back,
)

# ---------------------------------------------------------------- test_decoding output

key_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   min_size=0, max_size=20)


def _literal(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["INSERT", "UPDATE", "DELETE"]),
                          st.one_of(key_text, st.none()), st.integers(-10**6, 10**6),
                          key_text), min_size=1, max_size=30))
def test_touched_keys_round_trip(changes):
    lines, expected = [], []
    for op, code, n, other in changes:
        tuple_ = f"code[text]:{_literal(code)} n[integer]:{n}"
        if op != "DELETE":
            tuple_ += f" note[text]:{_literal(other)}"
        lines.append(f"table public.t: {op}: {tuple_}")
        key = [code, str(n)]
        if key not in expected:
            expected.append(key)
    table = pa.table({"lsn": ["0/1"] * len(lines), "data": lines})
    got = touched_keys(table, "public.t", ["code", "n"])
    assert len(got) == len(expected)
    assert {tuple(k) for k in got} == {tuple(k) for k in expected}


def test_touched_keys_for_quoted_names_and_missing_keys():
    name = f"{_decoded_ident('public')}.{_decoded_ident('Order Lines')}"
    assert name == 'public."Order Lines"'
    table = pa.table({"lsn": ["0/1"], "data": [f'table {name}: DELETE: "Id"[integer]:5']})
    assert touched_keys(table, name, ["Id"]) == [["5"]]
    bad = pa.table({"lsn": ["0/1"], "data": ["table public.t: DELETE: (no-tuple-data)"]})
    with pytest.raises(SourceError, match="carry no key"):
        touched_keys(bad, "public.t", ["id"])


# ---------------------------------------------------------------- UUIDs


@given(st.lists(st.one_of(st.uuids(), st.none()), max_size=50), st.integers(0, 3))
def test_uuid_text_matches_python(values, offset):
    raw = pa.array([None] * offset + [u.bytes if u else None for u in values], pa.binary(16))
    out = uuid_text(raw.slice(offset)).to_pylist()
    assert out == [str(u) if u else None for u in values]


# ---------------------------------------------------------------- records


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                        st.text(max_size=10))
records = st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["id", "name", "v", "nested"]),
                    st.one_of(json_scalar, st.dictionaries(st.sampled_from(["a", "b"]),
                                                           json_scalar, max_size=2)),
                    max_size=4),
    json_scalar), max_size=40)


@settings(deadline=None)
@given(records, st.integers(0, 1000))
def test_every_record_is_a_row_or_a_reject(items, first):
    rows, rejects = records_to_table(items, first_pos=first)
    n_rejects = 0 if rejects is None else rejects.num_rows
    assert rows.num_rows + n_rejects == len(items)
    positions = rows[POSITION].to_pylist() + ([] if rejects is None else
                                              rejects[POSITION].to_pylist())
    assert sorted(positions) == list(range(first, first + len(items)))
    assert not any(pa.types.is_struct(f.type) for f in rows.schema)


def test_find_records_and_dig():
    body = {"meta": {"next": "x"}, "data": {"items": [{"id": 1}]}}
    assert find_records(body, "data.items") == [{"id": 1}]
    assert find_records(body, "data.missing") == []
    assert find_records([{"id": 2}], None) == [{"id": 2}]
    assert find_records({"results": [1], "n": 1}, None) == [1]
    assert dig({"a": [{"b": 3}]}, "a.0.b") == 3


# ---------------------------------------------------------------- cursors and durations


@given(st.one_of(
    st.datetimes(timezones=st.just(dt.UTC)), st.datetimes(), st.dates(),
    st.integers(-2**62, 2**62), st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text(max_size=20)))
def test_cursor_values_survive_the_state_table(value):
    encoded, kind = encode_cursor(value)
    assert decode_cursor(encoded, kind) == value


def test_lookback_steps_back_in_the_cursor_type():
    assert step_back(dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC), parse_lookback("90m"),
                     column="u") == dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)
    assert step_back(1000, parse_lookback(100), column="id") == 900
    assert step_back("2026-01-01 10:00:00", parse_lookback("1h"), column="u") == \
        "2026-01-01 09:00:00"
    assert step_back("2026-01-01T10:00:00", parse_lookback("30s"), column="u") == \
        "2026-01-01T09:59:30"
    assert step_back(Decimal("5.5"), parse_lookback(1), column="u") == Decimal("4.5")
    with pytest.raises(SourceError, match="lookback must be one too"):
        step_back(10, parse_lookback("1h"), column="id")
    with pytest.raises(ConfigError):
        parse_lookback("a while")


def test_retry_after_and_backoff():
    import httpx

    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after(httpx.Response(429)) is None
    date = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")
    assert 25 < (retry_after(httpx.Response(503, headers={"Retry-After": date})) or 0) <= 30
    policy = RetryPolicy(backoff=1, max_backoff=8)
    delays = [policy.delay(i) for i in range(6)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert delays[-1] >= 4  # capped, never above max_backoff


# ---------------------------------------------------------------- specs in headwater.yaml


def _source(block: str):
    return parse_project(f"pipelines:\n  p:\n    table: p\n    source: {block}\n"
                         ).pipelines["p"].source


def test_specs_validate_and_hide_secrets():
    sql = _source("{kind: sql, url: 'postgresql://u:hunter22@h/db', tables: [a], "
                  "cursor: {column: u, lookback: 10m}, parallel: 4}")
    assert "hunter22" not in repr(sql)
    rest = _source("{kind: rest, url: 'http://x', auth: {type: oauth2, token_url: 'http://t', "
                   "client_id: c, client_secret: s3cretvalue}, pagination: {type: link_header}}")
    assert rest.auth.client_secret.get_secret_value() == "s3cretvalue"
    assert "s3cretvalue" not in repr(rest)
    for bad, words in [
        ("{kind: sql, url: 'sqlite:///x', tables: [a], query: 'select 1'}", "not both"),
        ("{kind: sql, url: 'sqlite:///x', cdc: true, query: 'select 1'}", "cdc reads tables"),
        ("{kind: redis, url: 'redis://h', type: stream}", "needs `stream"),
        ("{kind: rest, url: 'http://x', pagination: {type: pages}}", "pagination"),
        ("{kind: rest, url: 'http://x', auth: {type: bearer}}", "token"),
    ]:
        with pytest.raises(ConfigError) as err:
            _source(bad)
        assert words in str(err.value), (bad, str(err.value))


def test_uuid_module_agrees_with_arrow_storage():
    u = uuid.UUID(int=2**128 - 1)
    assert uuid_text(pa.array([u.bytes], pa.binary(16))).to_pylist() == [str(u)]

"""The ISO timestamp fast path reads what the general formats read, offsets and all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.contract._cleanse import _iso_timestamp

STAMPS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
OFFSETS = st.one_of(st.just("Z"), st.just(""), st.builds(
    lambda sign, minutes: f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
    st.sampled_from("+-"), st.integers(min_value=0, max_value=23 * 60 + 59)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(STAMPS, OFFSETS), min_size=1, max_size=30))
def test_fast_path_equals_the_meaning_of_the_text(rows: list) -> None:
    texts = [f"{stamp:%Y-%m-%dT%H:%M:%S}{offset}" for stamp, offset in rows]
    got = pl.DataFrame({"v": texts}).select(_iso_timestamp("UTC")(pl.col("v"))).to_series()
    expected = []
    for stamp, offset in rows:
        shift = timedelta(0)
        if offset not in ("", "Z"):
            minutes = int(offset[1:3]) * 60 + int(offset[4:6])
            shift = timedelta(minutes=minutes if offset[0] == "+" else -minutes)
        expected.append((stamp.replace(microsecond=0) - shift).replace(tzinfo=UTC))
    assert got.to_list() == expected


def test_local_times_take_the_column_time_zone_and_junk_is_null() -> None:
    texts = ["2024-07-01T12:00:00", "2024-07-01T12:00:00Z", "2024-07-01T12:00:00*02:00",
             "2024-07-01T12:00:00Zx", "not a time", None]
    got = pl.DataFrame({"v": texts}).select(
        _iso_timestamp("Europe/Berlin")(pl.col("v"))).to_series().to_list()
    assert got[0] == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert got[1] == datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    assert got[2:] == [None, None, None, None]


def test_offsets_with_one_hour_digit_are_read_and_impossible_offsets_are_not() -> None:
    texts = ["2024-07-01T12:00:00+2:00", "2024-07-01T12:00:00-9:30", "2024-07-01T12:00:00+24:00",
             "2024-07-01T12:00:00+02:60", "2024-07-01T12:00:00+0200"]
    got = pl.DataFrame({"v": texts}).select(_iso_timestamp("UTC")(pl.col("v"))).to_series()
    assert got.to_list() == [datetime(2024, 7, 1, 10, 0, tzinfo=UTC),
                             datetime(2024, 7, 1, 21, 30, tzinfo=UTC), None, None, None]

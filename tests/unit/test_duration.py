"""One duration parser: '5m', '1h30m', '250ms' mean the same in every key that takes a duration."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.config._brokers import EmbeddedBrokerSpec
from headwater.config._contract import FreshnessSpec
from headwater.config._stream import WindowSpec
from headwater.core import ConfigError, duration_ms, parse_duration
from headwater.ingest import Schedule
from headwater.ingest._schedule import parse_step
from headwater.ingest.sources._sql_types import parse_lookback
from headwater.stream._processor import _ms

UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from(sorted(UNITS))), min_size=1,
                max_size=4), st.booleans())
def test_compound_durations_add_up(parts: list[tuple[int, str]], spaced: bool) -> None:
    text = (" " if spaced else "").join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * UNITS[unit] for n, unit in parts)
    assert parse_duration(text).total_seconds() == pytest.approx(expected)
    assert parse_duration(text.upper()) == parse_duration(text)


@pytest.mark.parametrize("text", ["5m", "1h30m", "90s", "2d", "1w", "1.5h"])
def test_every_key_reads_a_duration_alike(text: str) -> None:
    seconds = parse_duration(text).total_seconds()
    assert Schedule.parse(f"every {text}").interval == seconds
    assert parse_lookback(text) == dt.timedelta(seconds=seconds)
    assert parse_step(text) == dt.timedelta(seconds=seconds)
    assert EmbeddedBrokerSpec(retention=text).retention_ms == seconds * 1000
    assert _ms(WindowSpec(name="w", kind="tumbling", size=text).size) == seconds * 1000
    assert FreshnessSpec(column="t", max_age=text).max_age == text
    assert duration_ms(text) == seconds * 1000


def test_milliseconds_where_they_make_sense() -> None:
    assert duration_ms("250ms") == 250
    assert _ms(WindowSpec(name="w", kind="tumbling", size="1s500ms").size) == 1500
    with pytest.raises(ConfigError, match="whole number of seconds"):
        Schedule.parse("every 250ms")


@pytest.mark.parametrize("text", ["", "5", "m5", "5 parsecs", "5mo", "1h 30", "soon", "-5m"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a duration"):
        parse_duration(text)
    with pytest.raises(ValueError):  # pydantic reports it at the key
        FreshnessSpec(column="t", max_age=text)


def test_numbers_stay_numbers_where_a_cursor_is_a_number() -> None:
    assert parse_step("1000") == 1000
    assert str(parse_lookback("100")) == "100"

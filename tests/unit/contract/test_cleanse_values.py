"""Cleansing: numbers, booleans, dates, timestamps, times, text, nulls, mapping and units."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.config._contract import UnitSpec
from headwater.contract import Contract
from headwater.contract._cleanse import unit_factor
from headwater.core import POSITION, ConfigError, ContractError

FAIL = "FAIL"


def cleanse(column: dict, values: list, **table) -> list:
    """Values after the contract, in input order; FAIL where the row was quarantined."""
    spec = {"columns": {"v": column}, **table}
    data = pa.table({"v": pa.array(values, pa.string()),
                     POSITION: pa.array(range(len(values)), pa.int64())})
    out = Contract.from_spec(spec).checker().check(data)
    got = dict(zip(out.valid.column(POSITION).to_pylist(), out.valid.column("v").to_pylist(),
                   strict=True))
    return [got.get(i, FAIL) for i in range(len(values))]


# ------------------------------------------------------------------------------ numbers

@pytest.mark.parametrize(("text", "value"), [
    ("12.5", 12.5), ("  7 ", 7.0), ("$1,234.50", 1234.5), ("USD 99", 99.0),
    ("1.234,50 EUR", 1234.5), ("12,5", 12.5), ("(12.00)", -12.0), ("15%", 0.15),
    ("-1 234,5", -1234.5), ("1'234.50", 1234.5), ("1e3", 1000.0), ("+5", 5.0), ("€ 3,5", 3.5),
    ("1,234", 1234.0), ("1.234", 1.234), ("1,234,567.89", 1234567.89), ("£-2", -2.0),
    ("1,2,3", FAIL), ("12.3.4", FAIL), ("abc", FAIL), ("1,23", 1.23), ("$", FAIL),
    ("12 %", 0.12), ("N/A", None), ("", None),
])
def test_floats(text, value):
    got = cleanse({"type": "float"}, [text])[0]
    assert got == (pytest.approx(value) if isinstance(value, float) else value)


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("1,000", 1000), ("12.0", 12), ("1e3", 1000), ("12.5", FAIL), ("$7", 7),
    ("9,223,372,036,854,775,807", 9223372036854775807), ("99999999999999999999", FAIL),
    ("(3)", -3), ("50%", FAIL),
])
def test_integers(text, value):
    assert cleanse({"type": "integer"}, [text]) == [value]


def test_integer_percent_as_number():
    assert cleanse({"type": "integer", "cleanse": {"percent": "number"}}, ["50%"]) == [50]


@pytest.mark.parametrize(("text", "value"), [
    ("1.235", Decimal("1.24")), ("1.225", Decimal("1.22")), ("$1,234.5", Decimal("1234.50")),
    ("1.234,5", Decimal("1234.50")),
    ("(2.50)", Decimal("-2.50")), ("12.5%", Decimal("0.12")), ("123456789", FAIL),
])
def test_decimals(text, value):  # extra digits round half to even
    assert cleanse({"type": "decimal(10,2)"}, [text]) == [value]


def test_decimal_separator_modes():
    values = ["1,234", "1.234", "12,5"]
    assert cleanse({"type": "float", "cleanse": {"decimal": "point"}}, values) == [
        1234.0, 1.234, FAIL]
    assert cleanse({"type": "float"}, values, cleanse={"decimal": "comma"}) == [
        1.234, 1234.0, 12.5]


def test_numbers_cleansing_can_be_switched_off():
    assert cleanse({"type": "float", "cleanse": {"numbers": False}}, ["$5", "5"]) == [FAIL, 5.0]


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(min_value=-10**13, max_value=10**13),
       style=st.sampled_from(["plain", "grouped", "dollar", "code", "comma", "eu", "paren",
                              "space"]))
def test_number_formats_round_trip(cents, style):
    value = Decimal(cents) / 100
    whole = f"{abs(value):,.2f}"
    sign = "-" if value < 0 else ""
    text = {
        "plain": f"{value:.2f}",
        "grouped": f"{sign}{whole}",
        "dollar": f"{sign}${whole}",
        "code": f"USD {sign}{whole}",
        "comma": f"{value:.2f}".replace(".", ","),
        "eu": sign + whole.replace(",", "_").replace(".", ",").replace("_", ".") + " EUR",
        "paren": f"({whole})" if value > 0 else f"{sign}{whole}",
        "space": sign + whole.replace(",", " "),
    }[style]
    expected = -value if style == "paren" and value > 0 else value
    if style == "comma" and abs(cents) < 100_000 and len(text.split(",")[0].lstrip("-")) <= 3 \
            and len(text.split(",")[1]) == 3:
        return  # '1,234' is read as one thousand two hundred and thirty-four
    assert cleanse({"type": "decimal(18,2)"}, [text]) == [expected], text


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_integers_with_separators_are_exact(n):
    assert cleanse({"type": "integer"}, [f"{n:,}", str(n)]) == [n, n]


# ------------------------------------------------------------------------------ booleans

def test_booleans():
    values = ["yes", "No", "Y", "n", "TRUE", "false", "t", "F", "1", "0", "on", "OFF", "yEs",
              "maybe", ""]
    assert cleanse({"type": "boolean"}, values) == [
        True, False, True, False, True, False, True, False, True, False, True, False, True,
        FAIL, None]


def test_boolean_words():
    col = {"type": "boolean", "true_values": ["oui", "ja"], "false_values": ["non", "nein"]}
    assert cleanse(col, ["Oui", "nein", "yes"]) == [True, False, FAIL]


# ------------------------------------------------------------------------------ dates and times

NOON_UTC = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "2024-03-01T12:00:00Z", "2024-03-01T14:00:00+02:00", "2024-03-01 12:00:00",
    "2024-03-01T07:00:00-0500", "2024-03-01T12:00:00.000Z", "2024-03-01 12:00",
    "03/01/2024 12:00", "01.03.2024 12:00", "Fri, 01 Mar 2024 12:00:00 +0000",
    "Fri, 01 Mar 2024 12:00:00 GMT", "2024-03-01T13:00:00+01", "1 Mar 2024 12:00",
    "2024/03/01 12:00:00", "03/01/2024 12:00 PM", "20240301T120000Z",
])
def test_timestamps_in_common_formats_to_utc(text):
    assert cleanse({"type": "timestamp"}, [text]) == [NOON_UTC]


def test_timestamps_naive_in_a_zone_day_first_formats_epoch():
    assert cleanse({"type": "timestamp", "timezone": "Europe/Paris"},
                   ["2024-03-01 13:00", "2024-07-01 14:00", "2024-03-31 02:30"]) == [
        NOON_UTC, datetime(2024, 7, 1, 12, tzinfo=UTC), FAIL]  # 02:30 does not exist that day
    assert cleanse({"type": "timestamp", "day_first": True}, ["01/03/2024 12:00"]) == [NOON_UTC]
    assert cleanse({"type": "timestamp", "formats": ["%d|%m|%Y %H:%M"]}, ["01|03|2024 12:00"]
                   ) == [NOON_UTC]
    with pytest.raises(ContractError, match=r"columns\.v\.formats: a format cannot be used"):
        cleanse({"type": "timestamp", "formats": ["%d|%m|%Y %Hh"]}, ["01|03|2024 12h"])
    assert cleanse({"type": "timestamp", "epoch": "s"}, [str(int(NOON_UTC.timestamp()))]) == [
        NOON_UTC]


@pytest.mark.parametrize("text", [
    "2024-03-01", "2024/03/01", "03/01/2024", "01.03.2024", "1 Mar 2024", "March 1, 2024",
    "Mar 1, 2024", "01-Mar-2024", "20240301", "2024-03-01T23:30:00-05:00", "03-01-2024",
])
def test_dates_in_common_formats(text):
    assert cleanse({"type": "date"}, [text]) == [date(2024, 3, 1)]


def test_dates_day_first_and_bad():
    assert cleanse({"type": "date", "day_first": True}, ["01/03/2024", "13/01/2024"]) == [
        date(2024, 3, 1), date(2024, 1, 13)]
    assert cleanse({"type": "date"}, ["2024-02-30", "soon"]) == [FAIL, FAIL]


def test_times():
    assert cleanse({"type": "time"}, ["14:30", "14:30:15.5", "2:30 PM", "25:00"]) == [
        time(14, 30), time(14, 30, 15, 500000), time(14, 30), FAIL]


@settings(max_examples=150, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
       offset=st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: m - m % 15),
       style=st.sampled_from(["iso", "iso_space", "z", "rfc", "compact"]))
def test_timestamps_round_trip_to_utc(moment, offset, style):
    moment = moment.replace(microsecond=0)
    zone = timezone(timedelta(minutes=offset))
    aware = moment.replace(tzinfo=zone)
    text = {
        "iso": aware.isoformat(),
        "iso_space": aware.isoformat(sep=" "),
        "z": aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rfc": aware.strftime("%a, %d %b %Y %H:%M:%S %z"),
        "compact": aware.strftime("%Y%m%dT%H%M%S%z"),
    }[style]
    assert cleanse({"type": "timestamp"}, [text]) == [aware.astimezone(UTC)], text


# ------------------------------------------------------------------------------ text

def test_text_cleansing():
    values = ["  Hello   World ", "N/A", "null", "-", "#N/A", "?", "None", "ok"]
    assert cleanse({}, values) == ["Hello   World", None, None, None, None, "?", None, "ok"]
    assert cleanse({"cleanse": {"whitespace": True, "case": "lower", "null_values": ["?"]}},
                   values) == ["hello world", None, None, None, None, None, None, "ok"]
    assert cleanse({"cleanse": {"trim": False, "default_nulls": False}}, [" a ", "N/A", ""]) == [
        " a ", "N/A", ""]
    assert cleanse({"cleanse": {"case": "upper"}}, ["fr"]) == ["FR"]
    assert cleanse({"cleanse": {"case": "title"}}, ["ada LOVELACE"]) == ["Ada Lovelace"]


def test_value_mapping_after_case_and_before_typing():
    assert cleanse({"cleanse": {"case": "lower"}, "map": {"m": "male", "f": "female", "x": None}},
                   ["M", "f", "x", "other"]) == ["male", "female", None, "other"]
    assert cleanse({"type": "boolean", "map": {"ja": True, "nein": False}},
                   ["ja", "nein", "yes"]) == [True, False, True]
    assert cleanse({"type": "integer", "map": {"one": 1, "two": 2}}, ["one", "2"]) == [1, 2]


# ------------------------------------------------------------------------------ units

@pytest.mark.parametrize(("src", "dst", "x", "y"), [
    ("lb", "kg", 1, 0.45359237), ("kg", "lb", 1, 1 / 0.45359237), ("km", "mi", 1.609344, 1),
    ("C", "F", 100, 212), ("F", "C", 32, 0), ("K", "C", 0, -273.15), ("°C", "K", 0, 273.15),
    ("GiB", "MB", 1, 1073.741824), ("h", "min", 1.5, 90), ("mph", "km/h", 1, 1.609344),
    ("gallons", "l", 1, 3.785411784), ("kWh", "kJ", 1, 3600),
])
def test_units(src, dst, x, y):
    factor, offset = unit_factor(UnitSpec(**{"from": src, "to": dst}))
    assert x * factor + offset == pytest.approx(y)


def test_unit_errors():
    with pytest.raises(ConfigError, match="cannot convert"):
        unit_factor(UnitSpec(**{"from": "kg", "to": "km"}))
    with pytest.raises(ConfigError, match="unknown unit"):
        unit_factor(UnitSpec(**{"from": "furlong", "to": "m"}))


# -------------------------------------------------------------------------------- UUIDs

def _python_uuid(text: str):
    import uuid

    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return FAIL


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF-{}", max_size=40),
    st.builds(lambda u, upper, hyphens, braces: (
        "{%s}" if braces else "%s") % (u.hex if not hyphens else str(u)).__getattribute__(
        "upper" if upper else "lower")(), st.uuids(), st.booleans(), st.booleans(),
        st.booleans())), min_size=1, max_size=20))
def test_uuid_text_reads_as_python_reads_it(values):
    expected = [None if v.strip() in {"", "-", "--"} else _python_uuid(v) for v in values]
    assert cleanse({"type": "uuid"}, values) == expected


@pytest.mark.parametrize(("text", "value"), [
    ("3q2+7w==", b"\xde\xad\xbe\xef"), ("", None), ("none", None), ("N/A", None),
    ("not base64!", FAIL), ("QQ", FAIL)])
def test_binary_base64(text, value):
    assert cleanse({"type": "binary"}, [text]) == [value]


@pytest.mark.parametrize(("text", "value"), [
    ("\\xdeadbeef", b"\xde\xad\xbe\xef"), ("0XDEADBEEF", b"\xde\xad\xbe\xef"),
    ("deadbeef", b"\xde\xad\xbe\xef"), ("dead bee", FAIL), ("abc", FAIL)])
def test_binary_hex(text, value):
    assert cleanse({"type": "binary", "encoding": "hex"}, [text]) == [value]

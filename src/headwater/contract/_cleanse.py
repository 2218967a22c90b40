"""Cleansing: text and loosely typed values to the contract's types, as Polars expressions.

Each column gets a :class:`Parser`: a list of *attempts*, Polars expressions that turn cleaned
text into the column's type (null when they cannot). The first attempt runs on the whole column;
the others run only on the values the first one could not read, which keeps clean data on the
fast path (one cast) and still reads '$1,234.50', '12,5 %' or '05.01.2024 10:00 +02:00'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from headwater.config._contract import CleanseSpec, ColumnSpec, UnitSpec, decimal_parts
from headwater.core import ConfigError

Attempt = Callable[[pl.Expr], pl.Expr]

#: Read as null by default (with their upper- and title-case forms).
DEFAULT_NULLS = ("", "-", "--", "n/a", "#n/a", "null", "none", "nan", "NaN", "nil", "(null)")

TRUE_WORDS = ("true", "t", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off")

_CURRENCY = (r"[$€£¥₹₽₩¢]|(?i:usd|eur|gbp|chf|jpy|cad|aud|nzd|cny|inr|sek|nok|dkk|pln|czk"
             r"|brl|mxn|zar)")
_SEP_SPACE = "\u00a0\u202f "
_POINT_NUMBER = (rf"^[+-]?(?:\d{{1,3}}(?:[,'{_SEP_SPACE}]\d{{3}})+|\d*)(?:\.\d*)?"
                 r"(?:[eE][+-]?\d+)?$")
_COMMA_NUMBER = rf"^[+-]?(?:\d{{1,3}}(?:[.'{_SEP_SPACE}]\d{{3}})+|\d*)(?:,\d*)?$"


def null_tokens(cleanse: CleanseSpec) -> list[str]:
    """Every text value read as null under ``cleanse``.

    >>> "N/A" in null_tokens(CleanseSpec())
    True
    """
    base = list(DEFAULT_NULLS) if cleanse.default_nulls else []
    out: set[str] = set()
    for token in base:
        out.update({token, token.upper(), token.title()})
    out.update(cleanse.null_values)
    return sorted(out)


def clean_text(e: pl.Expr, cleanse: CleanseSpec) -> pl.Expr:
    """Trim, collapse whitespace, read null tokens as null and normalise case."""
    if cleanse.trim:
        e = e.str.strip_chars()
    if cleanse.whitespace:
        e = e.str.replace_all(r"\s+", " ")
    tokens = null_tokens(cleanse)
    if tokens:
        e = pl.when(e.is_in(tokens)).then(None).otherwise(e)
    if cleanse.case == "lower":
        e = e.str.to_lowercase()
    elif cleanse.case == "upper":
        e = e.str.to_uppercase()
    elif cleanse.case == "title":
        e = e.str.to_titlecase()
    return e


def number_text(e: pl.Expr, decimal: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Normalise a messy number to plain text ('-1234.5').

    Returns ``(text, negative, percent)``: the text is null when the value is not a number with
    correct digit grouping; ``negative`` marks accounting parentheses '(12.00)'; ``percent`` a
    trailing '%'.
    """
    s = e.str.strip_chars()
    negative = s.str.starts_with("(") & s.str.ends_with(")")
    s = s.str.strip_chars("()").str.replace_all(_CURRENCY, "").str.strip_chars()
    percent = s.str.ends_with("%")
    s = s.str.strip_chars("%").str.strip_chars()
    s = s.str.replace(r"^([+-])\s+", "$1")
    has_digit = s.str.contains(r"\d")
    point = s.str.replace_all(f"[,'{_SEP_SPACE}]", "")
    comma = s.str.replace_all(f"[.'{_SEP_SPACE}]", "").str.replace(",", ".", literal=True)
    point_ok = has_digit & s.str.contains(_POINT_NUMBER)
    comma_ok = has_digit & s.str.contains(_COMMA_NUMBER)
    if decimal == "point":
        text = pl.when(point_ok).then(point)
    elif decimal == "comma":
        text = pl.when(comma_ok).then(comma)
    else:
        text = pl.when(point_ok).then(point).when(comma_ok).then(comma)
    return text.otherwise(None), negative, percent


def _signed(value: pl.Expr, negative: pl.Expr, percent: pl.Expr, as_fraction: bool) -> pl.Expr:
    value = pl.when(negative).then(-value).otherwise(value)
    if as_fraction:
        value = pl.when(percent).then(value / 100).otherwise(value)
    return value


def _integral(f: pl.Expr) -> pl.Expr:
    ok = (f == f.floor()) & (f.abs() < 9.2e18)
    return pl.when(ok).then(f).otherwise(None).cast(pl.Int64)


# ---------------------------------------------------------------------------------- formats

def date_formats(column: ColumnSpec) -> list[str]:
    """Date formats tried in order: the column's own, then the common ones."""
    md = "%d/%m" if column.day_first else "%m/%d"
    md_dash = "%d-%m" if column.day_first else "%m-%d"
    common = ["%Y-%m-%d", "%Y/%m/%d", f"{md}/%Y", "%d.%m.%Y", f"{md_dash}-%Y", "%d %b %Y",
              "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%d-%b-%Y", "%Y%m%d", f"{md}/%y"]
    return _dedupe([*(column.formats or []), *common])


def timestamp_formats(column: ColumnSpec) -> list[str]:
    """Timestamp formats tried in order: the column's own, then the common ones."""
    md = "%d/%m" if column.day_first else "%m/%d"
    common = [
        "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z", "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S%.f %#z", "%a, %d %b %Y %H:%M:%S %z",
        "%a, %d %b %Y %H:%M:%S GMT", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
        f"{md}/%Y %H:%M:%S", f"{md}/%Y %H:%M", f"{md}/%Y %I:%M:%S %p", f"{md}/%Y %I:%M %p",
        "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d %b %Y %H:%M:%S", "%d %b %Y %H:%M",
        "%b %d, %Y %H:%M:%S", "%b %d, %Y %I:%M %p", "%Y%m%dT%H%M%S%#z", "%Y%m%dT%H%M%S",
        "%Y-%m-%d", "%Y/%m/%d", f"{md}/%Y", "%d.%m.%Y", "%d %b %Y",
    ]
    return _dedupe([*(column.formats or []), *common])


def time_formats(column: ColumnSpec) -> list[str]:
    """Time-of-day formats tried in order."""
    common = ["%H:%M:%S%.f", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "%I:%M%p", "%I %p", "%H%M%S"]
    return _dedupe([*(column.formats or []), *common])


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _aware(fmt: str) -> bool:
    return "%z" in fmt or "%#z" in fmt or "%:z" in fmt or fmt.endswith(" GMT")


# ---------------------------------------------------------------------------------- parsers

@dataclass
class Parser:
    """How one column is typed: attempts on cleaned text, and a conversion of typed input.

    Attempts are tried in order. A checker may try a later attempt first when most values of
    a batch needed it, if the attempt is *promotable*: it reads no value that an earlier
    attempt would read differently (see :func:`promotable`).
    """

    dtype: pl.DataType
    attempts: list[Attempt] = field(default_factory=list)
    label: str = ""
    timezone: str = "UTC"

    def from_typed(self, e: pl.Expr, source: pl.DataType) -> pl.Expr | None:
        """An expression converting a typed (non-text) input, or None to go through text."""
        return _from_typed(self, e, source)


def promotable(attempt: Attempt) -> bool:
    """True if ``attempt`` may be tried before the attempts listed ahead of it."""
    return getattr(attempt, "promotable", True)


def parser_for(column: ColumnSpec, cleanse: CleanseSpec) -> Parser:
    """The parser for a column's type and options."""
    kind = column.type
    if kind == "string":
        return Parser(pl.String, [lambda e: e], "text")
    if kind == "integer":
        return _integer_parser(cleanse)
    if kind == "float":
        return _float_parser(cleanse)
    if kind.startswith("decimal"):
        return _decimal_parser(kind, cleanse)
    if kind == "boolean":
        return _boolean_parser(column)
    if kind == "date":
        return _date_parser(column)
    if kind == "timestamp":
        return _timestamp_parser(column)
    if kind == "time":
        formats = time_formats(column)
        return Parser(pl.Time, [_time_attempt(f) for f in formats], "time")
    if kind == "json":
        return Parser(pl.String, [lambda e: pl.when(e.str.json_path_match("$").is_not_null())
                                  .then(e).otherwise(None)], "JSON value")
    if kind == "uuid":
        return Parser(pl.Binary, [uuid_bytes], UUID_LABEL)
    if kind == "binary":
        return Parser(pl.Binary, [_hex_bytes if column.encoding == "hex" else _base64_bytes],
                      f"{column.encoding} value")
    raise ConfigError(f"unknown column type {kind!r}")  # ColumnSpec validation prevents this


#: The label of the UUID parser: its typed input (bytes) must be 16 bytes long.
UUID_LABEL = "UUID"


def uuid_bytes(e: pl.Expr) -> pl.Expr:
    """UUID text (any case, hyphens and braces optional, ``urn:uuid:`` prefix) to its 16 bytes;
    null when it is not a UUID."""
    digits = e.str.strip_chars().str.strip_prefix("urn:uuid:").str.strip_chars("{}") \
        .str.replace_all("-", "", literal=True)
    return pl.when(digits.str.len_bytes() == 32).then(digits.str.decode("hex", strict=False))


def as_text(e: pl.Expr, source: pl.DataType, *, keep: bool = False) -> pl.Expr:
    """A column of type ``source`` as text to parse or show: bytes as base64 (never decoded as
    UTF-8, which may fail), structs and lists as JSON, durations as ``[-]H:MM:SS.ffffff``, other
    types cast. ``keep``: leave other types as they are."""
    if source == pl.Binary:
        return e.bin.encode("base64")
    if isinstance(source, pl.Struct | pl.List | pl.Array):
        return json_text(e, source)
    if isinstance(source, pl.Duration):
        return clock_text(e.dt.total_microseconds())
    return e if keep or source == pl.String else e.cast(pl.String, strict=False)


def clock_text(micros: pl.Expr) -> pl.Expr:
    """Microseconds as ``[-]HH:MM:SS.ffffff`` (hours past 99 as they are), which PostgreSQL and
    DuckDB read as an interval."""
    us = micros.abs()

    def two(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.String).str.zfill(2)

    sign = pl.when(micros < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str([sign, two(us // 3_600_000_000), pl.lit(":"), two(us // 60_000_000 % 60),
                          pl.lit(":"), two(us // 1_000_000 % 60), pl.lit("."),
                          (us % 1_000_000).cast(pl.String).str.zfill(6)])


def json_text(e: pl.Expr, source: pl.DataType) -> pl.Expr:
    """A struct or list column as JSON text (bytes inside a list as base64)."""
    if isinstance(source, pl.Struct):
        return e.struct.json_encode()
    if isinstance(source, pl.List | pl.Array) and source.inner == pl.Binary:
        e = e.list.eval(pl.element().bin.encode("base64")) if isinstance(source, pl.List) \
            else e.arr.eval(pl.element().bin.encode("base64"))
    # Polars encodes structs only: wrap the list in one and take it back out of the text
    wrapped = pl.struct(e.alias("v")).struct.json_encode()
    text = wrapped.str.strip_prefix('{"v":').str.strip_suffix("}")
    return pl.when(e.is_not_null()).then(text)


def _hex_bytes(e: pl.Expr) -> pl.Expr:
    return e.str.replace(r"^(\\x|0[xX])", "").str.decode("hex", strict=False)


def _base64_bytes(e: pl.Expr) -> pl.Expr:
    return e.str.decode("base64", strict=False)


_GROUPED_POINT = r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"
_GROUPED_COMMA = r"^[+-]?\d{1,3}(?:\.\d{3})*,\d+$|^[+-]?\d+,\d+$"


def _number_attempts(cleanse: CleanseSpec, convert: Callable[[pl.Expr], pl.Expr],
                     percent: Callable[[pl.Expr], pl.Expr]) -> list[Attempt]:
    """Attempts for a numeric column, cheapest first; ``convert`` casts plain number text."""
    attempts: list[Attempt] = []
    point_ok = cleanse.decimal != "comma"
    comma_ok = cleanse.decimal != "point"
    if point_ok:
        attempts.append(convert)
    if cleanse.numbers and point_ok:
        attempts.append(lambda e: pl.when(e.str.contains(_GROUPED_POINT)).then(
            convert(e.str.replace_all(",", "", literal=True))))
    if comma_ok and (cleanse.numbers or cleanse.decimal == "comma"):
        def grouped_comma(e: pl.Expr) -> pl.Expr:
            return pl.when(e.str.contains(_GROUPED_COMMA)).then(convert(
                e.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)))
        if point_ok:  # '1,234' is read by the point attempt first; keep that order
            grouped_comma.promotable = False  # type: ignore[attr-defined]
        attempts.append(grouped_comma)
    if cleanse.numbers or cleanse.decimal == "comma":
        def messy(e: pl.Expr) -> pl.Expr:
            text, negative, is_percent = number_text(e, cleanse.decimal)
            value = convert(text)
            value = pl.when(negative).then(-value).otherwise(value)
            if cleanse.percent == "fraction":
                value = pl.when(is_percent).then(percent(text)).otherwise(value)
            return value
        attempts.append(messy)
    return attempts


def _to_integer(e: pl.Expr) -> pl.Expr:
    return pl.coalesce(e.cast(pl.Int64, strict=False), _integral(e.cast(pl.Float64, strict=False)))


def _integer_parser(cleanse: CleanseSpec) -> Parser:
    def percent(text: pl.Expr) -> pl.Expr:
        return _integral(text.cast(pl.Float64, strict=False) / 100)
    attempts = _number_attempts(cleanse, _to_integer, percent)
    if cleanse.decimal != "comma":  # the exact cast first, then '12.0' and '1e3'
        attempts[0] = lambda e: e.cast(pl.Int64, strict=False)
        attempts.insert(1, lambda e: _integral(e.cast(pl.Float64, strict=False)))
    return Parser(pl.Int64, attempts, "integer")


def _float_parser(cleanse: CleanseSpec) -> Parser:
    def to_float(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.Float64, strict=False)

    def percent(text: pl.Expr) -> pl.Expr:
        return to_float(text) / 100
    attempts = _number_attempts(cleanse, to_float, percent)
    if cleanse.numbers and cleanse.percent == "fraction" and cleanse.decimal != "comma":
        attempts.insert(len(attempts) - 1, lambda e: pl.when(e.str.ends_with("%")).then(
            e.str.strip_chars_end("% ").cast(pl.Float64, strict=False) / 100))
    return Parser(pl.Float64, attempts, "number")


def _decimal_parser(kind: str, cleanse: CleanseSpec) -> Parser:
    precision, scale = decimal_parts(kind)
    dtype = pl.Decimal(precision, scale)

    def to_decimal(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.Decimal(38, scale), strict=False)

    def percent(text: pl.Expr) -> pl.Expr:
        wide = text.cast(pl.Decimal(38, min(scale + 2, 38)), strict=False) / 100
        return wide.cast(pl.Decimal(38, scale), strict=False)
    attempts = _number_attempts(cleanse, to_decimal, percent)
    return Parser(dtype, attempts, kind)


def _boolean_parser(column: ColumnSpec) -> Parser:
    trues = [w.lower() for w in (column.true_values or TRUE_WORDS)]
    falses = [w.lower() for w in (column.false_values or FALSE_WORDS)]
    both = set(trues) & set(falses)
    if both:
        raise ConfigError(f"boolean words {sorted(both)} are in both true_values and false_values",
                          hint="remove them from one of the lists")
    words = trues + falses
    values = [True] * len(trues) + [False] * len(falses)

    cased = [*words, *(w.upper() for w in words), *(w.title() for w in words)]
    cased_values = values * 3
    unique = dict(zip(cased, cased_values, strict=True))

    def exact(e: pl.Expr) -> pl.Expr:
        return e.replace_strict(list(unique), list(unique.values()), default=None,
                                return_dtype=pl.Boolean)

    def any_case(e: pl.Expr) -> pl.Expr:
        return e.str.to_lowercase().replace_strict(words, values, default=None,
                                                   return_dtype=pl.Boolean)
    return Parser(pl.Boolean, [exact, any_case], f"boolean ({'/'.join(trues[:3])} or "
                  f"{'/'.join(falses[:3])})")


def _date_attempt(fmt: str) -> Attempt:
    return lambda e: e.str.to_date(fmt, strict=False)


def _date_parser(column: ColumnSpec) -> Parser:
    attempts = [_date_attempt(f) for f in date_formats(column)]
    # a timestamp in a date column: keep the calendar date as written
    attempts.append(lambda e: e.str.extract(r"^(\d{4}-\d{2}-\d{2})[T ]\d", 1)
                    .str.to_date("%Y-%m-%d", strict=False))
    ts = _timestamp_parser(column)
    attempts += [lambda e, a=a: a(e).dt.date() for a in ts.attempts[:8]]
    return Parser(pl.Date, attempts, "date", column.timezone)


def _ts_attempt(fmt: str, timezone: str) -> Attempt:
    if fmt.endswith(" GMT"):
        real = fmt[: -len(" GMT")] + " %z"
        return lambda e: e.str.replace(r" GMT$", " +0000").str.to_datetime(
            real, strict=False, time_unit="us", time_zone="UTC")
    if _aware(fmt):
        return lambda e: e.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")

    def naive(e: pl.Expr) -> pl.Expr:
        local = e.str.to_datetime(fmt, strict=False, time_unit="us")
        return local.dt.replace_time_zone(timezone, ambiguous="earliest",
                                          non_existent="null").dt.convert_time_zone("UTC")
    return naive


def _iso_timestamp(timezone: str) -> Attempt:
    """ISO 8601 'YYYY-MM-DDTHH:MM:SS' with nothing, 'Z' or '+HH:MM' after it: the fast path
    (a fixed-width parse, and the offset looked up in the table of every offset there is).

    Each piece of text is cut and parsed once: an eager Polars expression computes a
    sub-expression again wherever it is used."""
    def attempt(e: pl.Expr) -> pl.Expr:
        base = e.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False,
                                                   time_unit="us").to_physical()
        tail = e.str.slice(19)
        shift = tail.replace_strict(_OFFSETS, _SHIFTS, default=None, return_dtype=pl.Int64)
        aware = (base + shift).cast(pl.Datetime("us", "UTC"))
        if timezone == "UTC":  # local time is UTC: nothing after the seconds shifts by 0
            return aware
        local = base.cast(pl.Datetime("us")).dt.replace_time_zone(
            timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
        return pl.when(tail == "").then(local).otherwise(aware)
    return attempt


def _offset_table() -> tuple[pl.Series, pl.Series]:
    """Every text that may follow the seconds ('', 'Z', '+00:00' ... '-23:59', also '+2:00')
    and the microseconds to add to the local time to reach UTC."""
    texts, shifts = ["", "Z"], [0, 0]
    for sign, direction in (("+", -1), ("-", 1)):
        for hours in range(24):
            for minutes in range(60):
                shift = direction * (hours * 3600 + minutes * 60) * 1_000_000
                for text in {f"{hours:02d}:{minutes:02d}", f"{hours}:{minutes:02d}"}:
                    texts.append(sign + text)
                    shifts.append(shift)
    return pl.Series(texts, dtype=pl.String), pl.Series(shifts, dtype=pl.Int64)


_OFFSETS, _SHIFTS = _offset_table()


def _timestamp_parser(column: ColumnSpec) -> Parser:
    dtype = pl.Datetime("us", "UTC")
    attempts = [_ts_attempt(f, column.timezone) for f in timestamp_formats(column)]
    if not column.formats:
        attempts.insert(0, _iso_timestamp(column.timezone))
    if column.epoch:
        unit = column.epoch

        def epoch(e: pl.Expr) -> pl.Expr:
            return pl.from_epoch(e.cast(pl.Int64, strict=False), time_unit=unit
                                 ).dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        attempts.insert(0, epoch)
    label = "timestamp" if column.timezone == "UTC" else f"timestamp in {column.timezone}"
    return Parser(dtype, attempts, label, column.timezone)


def _time_attempt(fmt: str) -> Attempt:
    return lambda e: e.str.to_time(fmt, strict=False)


def _from_typed(parser: Parser, e: pl.Expr, source: pl.DataType) -> pl.Expr | None:
    target = parser.dtype
    if parser.label == UUID_LABEL:
        return pl.when(e.bin.size() == 16).then(e) if source == pl.Binary else None
    if source == target:
        return e
    src_numeric = source.is_numeric()
    if target == pl.String and parser.label == "JSON value":
        return json_text(e, source) if isinstance(source, pl.Struct | pl.List | pl.Array) \
            else None
    if target == pl.String:
        return as_text(e, source)
    if target == pl.Int64:
        if source.is_integer() or source == pl.Boolean:
            return e.cast(pl.Int64, strict=False)
        if source.is_float() or isinstance(source, pl.Decimal):
            return _integral(e.cast(pl.Float64))
        return None
    if target == pl.Float64:
        return e.cast(pl.Float64, strict=False) if src_numeric or source == pl.Boolean else None
    if isinstance(target, pl.Decimal):
        return e.cast(target, strict=False) if src_numeric else None
    if target == pl.Boolean:
        if source.is_integer():
            return pl.when(e == 1).then(True).when(e == 0).then(False).otherwise(None)
        return None
    if target == pl.Date:
        if isinstance(source, pl.Datetime):
            return e.dt.date()
        return None
    if isinstance(target, pl.Datetime):
        if isinstance(source, pl.Datetime):
            e = e.dt.cast_time_unit("us")
            if source.time_zone is None:
                e = e.dt.replace_time_zone(parser.timezone, ambiguous="earliest",
                                           non_existent="null")
            return e.dt.convert_time_zone("UTC")
        if source == pl.Date:
            return e.cast(pl.Datetime("us")).dt.replace_time_zone(
                parser.timezone, ambiguous="earliest", non_existent="null"
            ).dt.convert_time_zone("UTC")
        return None
    if target == pl.Time:
        if isinstance(source, pl.Datetime):
            return e.dt.time()
        return None
    return None


# ------------------------------------------------------------------------------------- units

_UNITS: dict[str, tuple[str, float, float]] = {}


def _units(dimension: str, table: dict[str, float | tuple[float, float]], *aliases: tuple[str, str]
           ) -> None:
    for name, value in table.items():
        factor, offset = value if isinstance(value, tuple) else (value, 0.0)
        _UNITS[name] = (dimension, factor, offset)
    for alias, name in aliases:
        _UNITS[alias] = _UNITS[name]


_units("length", {"m": 1, "km": 1000, "cm": 0.01, "mm": 0.001, "um": 1e-6, "in": 0.0254,
                  "ft": 0.3048, "yd": 0.9144, "mi": 1609.344, "nmi": 1852},
       ("meter", "m"), ("meters", "m"), ("metre", "m"), ("inch", "in"), ("inches", "in"),
       ("foot", "ft"), ("feet", "ft"), ("mile", "mi"), ("miles", "mi"), ("yard", "yd"))
_units("mass", {"kg": 1, "g": 0.001, "mg": 1e-6, "t": 1000, "lb": 0.45359237,
                "oz": 0.028349523125, "st": 6.35029318},
       ("lbs", "lb"), ("pound", "lb"), ("pounds", "lb"), ("gram", "g"), ("grams", "g"),
       ("kilogram", "kg"), ("kilograms", "kg"), ("tonne", "t"), ("ounce", "oz"))
_units("volume", {"l": 1, "ml": 0.001, "cl": 0.01, "dl": 0.1, "m3": 1000, "gal": 3.785411784,
                  "qt": 0.946352946, "pt": 0.473176473, "floz": 0.0295735295625,
                  "cup": 0.2365882365},
       ("liter", "l"), ("litre", "l"), ("liters", "l"), ("gallon", "gal"), ("gallons", "gal"))
_units("time", {"s": 1, "ms": 0.001, "us": 1e-6, "min": 60, "h": 3600, "d": 86400,
                "wk": 604800},
       ("sec", "s"), ("second", "s"), ("seconds", "s"), ("minute", "min"), ("minutes", "min"),
       ("hour", "h"), ("hours", "h"), ("day", "d"), ("days", "d"), ("week", "wk"))
_units("temperature", {"k": 1, "c": (1, 273.15), "f": (5 / 9, 273.15 - 32 * 5 / 9)},
       ("kelvin", "k"), ("celsius", "c"), ("degc", "c"), ("fahrenheit", "f"), ("degf", "f"))
_units("data", {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 1024,
                "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}, ("bytes", "b"))
_units("speed", {"m/s": 1, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 0.514444},
       ("kmh", "km/h"), ("kph", "km/h"), ("knot", "kn"), ("knots", "kn"))
_units("area", {"m2": 1, "km2": 1e6, "ha": 1e4, "acre": 4046.8564224, "ft2": 0.09290304},
       ("acres", "acre"), ("hectare", "ha"))
_units("energy", {"j": 1, "kj": 1e3, "wh": 3600, "kwh": 3.6e6, "cal": 4.184, "kcal": 4184})
_units("pressure", {"pa": 1, "kpa": 1e3, "bar": 1e5, "mbar": 100, "psi": 6894.757293168,
                    "atm": 101325})


def unit_factor(unit: UnitSpec) -> tuple[float, float]:
    """``(factor, offset)`` with ``new = old * factor + offset``.

    >>> unit_factor(UnitSpec(**{"from": "lb", "to": "kg"}))
    (0.45359237, 0.0)
    """
    if unit.factor is not None:
        return unit.factor, unit.offset
    src, dst = _unit(unit.from_ or ""), _unit(unit.to or "")
    if src[0] != dst[0]:
        raise ConfigError(f"cannot convert {unit.from_!r} ({src[0]}) to {unit.to!r} ({dst[0]})",
                          hint="pick two units of the same kind, or give a factor")
    factor = src[1] / dst[1]
    offset = (src[2] - dst[2]) / dst[1]
    return factor, offset


def _unit(name: str) -> tuple[str, float, float]:
    key = name.strip().lower().replace("°", "deg").replace(" ", "")
    if key in {"degc", "degf"}:
        key = key[-1]
    found = _UNITS.get(key)
    if found is None:
        raise ConfigError(f"unknown unit {name!r}",
                          hint="known units: " + ", ".join(sorted(k for k in _UNITS if len(k) <= 4))
                          + "; or give factor: N")
    return found

"""Durations as people write them in headwater.yaml and on the command line: one parser for every
key (``schedule: every 15m``, ``lookback: 10m``, ``freshness: 36h``, ``retention: 7d``,
``window: {size: 5m}``, ``--step 1d``), so ``5m`` means the same everywhere.

A duration is one or more ``<number><unit>`` parts, largest first or not, with optional spaces:
``250ms``, ``30s``, ``5m``, ``1h30m``, ``1.5h``, ``2d 12h``, ``1w``. Units: ``ms``; ``s``, ``sec``;
``m``, ``min``; ``h``; ``d``; ``w`` (case does not matter). A bare number has no unit and is not a
duration (callers that also accept plain numbers, such as numeric cursors, check for those first).
"""

from __future__ import annotations

import datetime as dt
import re

from headwater.core._errors import ConfigError

_UNIT_S = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)(?![a-z])", re.IGNORECASE)
_WHOLE = re.compile(rf"^\s*(?:{_PART.pattern}\s*)+$", re.IGNORECASE)
_EXAMPLES = "250ms, 30s, 5m, 1h30m, 2d or 1w"


def parse_duration(text: str, *, where: str = "duration") -> dt.timedelta:
    """``'1h30m'`` as a timedelta; a ConfigError (a ValueError, so pydantic validators report
    it at the key) naming ``where`` for anything else.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("250ms").total_seconds(), parse_duration("5m") == parse_duration("300s")
    (0.25, True)
    >>> parse_duration("5 parsecs")
    Traceback (most recent call last):
    ...
    headwater.core._errors.ConfigError: duration: '5 parsecs' is not a duration
      hint: write a number and a unit, e.g. 250ms, 30s, 5m, 1h30m, 2d or 1w
    """
    value = str(text)
    if not _WHOLE.match(value):
        raise ConfigError(f"{where}: '{value}' is not a duration",
                          hint=f"write a number and a unit, e.g. {_EXAMPLES}")
    seconds = sum(float(n) * _UNIT_S[unit.lower()] for n, unit in _PART.findall(value))
    return dt.timedelta(seconds=seconds)


def duration_ms(text: str, *, where: str = "duration") -> int:
    """A duration in whole milliseconds (brokers, stream windows).

    >>> duration_ms("7d"), duration_ms("1m30s")
    (604800000, 90000)
    """
    return round(parse_duration(text, where=where) / dt.timedelta(milliseconds=1))


def check_duration(text: str | None) -> str | None:
    """For pydantic validators of headwater.yaml keys: ``text`` unchanged if it is a duration
    (or None), else a ValueError in one line, which the config loader shows at the key's line.

    >>> check_duration("1h30m")
    '1h30m'
    """
    if text is not None and not _WHOLE.match(str(text)):
        raise ValueError(f"'{text}' is not a duration: write a number and a unit, e.g. "
                         f"{_EXAMPLES}")
    return text


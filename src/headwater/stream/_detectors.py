"""Anomaly detectors per series (device and metric), batch by batch, deterministic on replay.

Each detector sees a series in arrival order (a key always goes to one partition, so replaying
the log gives the same order) and carries what it needs from one batch to the next: the last
``window`` values, an EWMA's state, when a device was last heard from. So cutting the input into
other batches gives the same anomalies (tests pin it), except for :class:`Silence`, which is
judged at batch ends against the watermark.

Every detector returns rows of :data:`ANOMALY_COLUMNS` after the key columns: ``time`` (ms),
``value``, ``detector``, ``score`` (how far past the limit; > 1 means anomalous for the scaled
detectors) and ``reason``, a sentence for people. All of it is Polars expressions on whole batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import polars as pl
import pyarrow as pa

from headwater.core import ConfigError

ANOMALY_COLUMNS = ("time", "value", "detector", "score", "reason")


@dataclass
class Detector(ABC):
    """Finds anomalies in ``value`` per ``keys`` series; ``time`` is event time in ms."""

    kind: ClassVar[str] = "detector"
    keys: tuple[str, ...] = ("device", "metric")
    time: str = "time"
    value: str = "value"
    #: A name for alerts (default: the kind).
    name: str | None = None
    #: The last events per series carried into the next batch.
    tail_: pl.DataFrame | None = field(default=None, repr=False)

    #: Past values a detector needs before it judges a series (0: none).
    def history(self) -> int:
        return 0

    @abstractmethod
    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        """Given the carried tail and the batch (``_new`` marks the batch's rows), sorted by
        series and arrival, return the batch's anomalous rows with ``score`` and ``reason``."""

    def detect(self, events: pl.DataFrame, *, watermark_ms: int | None = None) -> pl.DataFrame:
        """The anomalies in one batch of events (arrival order within each series)."""
        series = self._series(events)
        found = self._flag(series) if not series.is_empty() else series.clear()
        self._keep_tail(series)
        return self._shape(found)

    def snapshot(self) -> dict[str, pa.Table | None]:
        """State for a checkpoint."""
        return {"tail": None if self.tail_ is None else self.tail_.to_arrow()}

    def restore(self, state: dict[str, pa.Table | None]) -> None:
        """Load state written by :meth:`snapshot`."""
        tail = state.get("tail")
        self.tail_ = None if tail is None else pl.from_arrow(tail)  # type: ignore[assignment]

    # --- shared ---------------------------------------------------------------------------

    def _series(self, events: pl.DataFrame) -> pl.DataFrame:
        missing = [c for c in (*self.keys, self.time, self.value) if c not in events.columns]
        if missing:
            raise ConfigError(f"detector {self.label} needs column(s) {missing}; the events "
                              f"have {events.columns}")
        t = pl.col(self.time)
        if events.schema[self.time].is_temporal():
            t = t.dt.epoch("ms")
        batch = events.select(*self.keys, _t=t.cast(pl.Int64),
                              _v=pl.col(self.value).cast(pl.Float64), _new=pl.lit(True))
        batch = batch.filter(pl.col("_v").is_not_null() & pl.col("_t").is_not_null())
        frames = [batch]
        if self.tail_ is not None and not self.tail_.is_empty():
            # only the series this batch touches: the work follows the batch, not the state
            touched = self.tail_.join(batch.select(self.keys).unique(), on=list(self.keys),
                                      how="semi", nulls_equal=True)
            frames.insert(0, touched.with_columns(_new=pl.lit(False)))
        joined = pl.concat(frames, how="vertical_relaxed").with_row_index("_seq")
        return joined.sort([*self.keys, "_seq"], nulls_last=True, maintain_order=True)

    def _keep_tail(self, series: pl.DataFrame) -> None:
        n = self.history()
        if n <= 0 or series.is_empty():
            return
        fresh = (series.group_by(list(self.keys), maintain_order=True).tail(n)
                 .select(*self.keys, "_t", "_v"))
        if self.tail_ is None or self.tail_.is_empty():
            self.tail_ = fresh
            return
        kept = self.tail_.join(fresh.select(self.keys).unique(), on=list(self.keys),
                               how="anti", nulls_equal=True)
        self.tail_ = pl.concat([kept, fresh], how="vertical_relaxed")

    def _shape(self, found: pl.DataFrame) -> pl.DataFrame:
        if found.is_empty():
            return pl.DataFrame(schema={
                **{k: found.schema.get(k, pl.String()) for k in self.keys},
                "time": pl.Int64(), "value": pl.Float64(), "detector": pl.String(),
                "score": pl.Float64(), "reason": pl.String()})
        return found.select(*self.keys, time=pl.col("_t"), value=pl.col("_v"),
                            detector=pl.lit(self.label), score=pl.col("score"),
                            reason=pl.col("reason"))

    @property
    def label(self) -> str:
        return self.name or self.kind

    def _over(self, expr: pl.Expr) -> pl.Expr:
        return expr.over(list(self.keys))


def _num(expr: pl.Expr, decimals: int = 3) -> pl.Expr:
    return expr.round(decimals).cast(pl.String)


@dataclass
class Threshold(Detector):
    """A value below ``low`` or above ``high``."""

    kind: ClassVar[str] = "threshold"
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ConfigError("a threshold detector needs low, high or both")

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        v = pl.col("_v")
        above = v > self.high if self.high is not None else pl.lit(False)
        below = v < self.low if self.low is not None else pl.lit(False)
        return series.filter(pl.col("_new") & (above | below)).with_columns(
            score=pl.when(above).then(v - (self.high or 0.0))
            .otherwise((self.low or 0.0) - v).abs(),
            reason=pl.when(above).then(pl.format("{} above the limit {}", _num(v),
                                                 pl.lit(str(self.high))))
            .otherwise(pl.format("{} below the limit {}", _num(v), pl.lit(str(self.low)))))


@dataclass
class ZScore(Detector):
    """A value more than ``threshold`` standard deviations from the mean of the last
    ``window`` values (judged once ``min_periods`` values are known)."""

    kind: ClassVar[str] = "zscore"
    window: int = 30
    threshold: float = 4.0
    min_periods: int = 10

    def history(self) -> int:
        return self.window

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        prev = pl.col("_v").shift(1)
        mean = self._over(prev.rolling_mean(self.window, min_samples=self.min_periods))
        std = self._over(prev.rolling_std(self.window, min_samples=self.min_periods))
        z = ((pl.col("_v") - mean) / std).abs()
        return series.with_columns(z=z, _mean=mean).filter(
            pl.col("_new") & (pl.col("z") > self.threshold) & pl.col("z").is_finite()
        ).with_columns(score=pl.col("z") / self.threshold,
                       reason=pl.format("{} is {} standard deviations from the recent mean {}",
                                        _num(pl.col("_v")), _num(pl.col("z"), 1),
                                        _num(pl.col("_mean"))))


@dataclass
class MedianDeviation(Detector):
    """A value more than ``threshold`` scaled median absolute deviations (MAD × 1.4826) from
    the median of the last ``window`` values: robust to the spikes it looks for."""

    kind: ClassVar[str] = "mad"
    window: int = 30
    threshold: float = 5.0
    min_periods: int = 10

    def history(self) -> int:
        return self.window

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        lags = series.select(
            [self._over(pl.col("_v").shift(i)).alias(f"_l{i}") for i in range(1, self.window + 1)]
        ).to_numpy()
        with np.errstate(all="ignore"), _quiet():
            median = np.nanmedian(lags, axis=1)
            mad = np.nanmedian(np.abs(lags - median[:, None]), axis=1) * 1.4826
        known = np.sum(~np.isnan(lags), axis=1)
        scored = series.with_columns(_median=pl.Series(median), _mad=pl.Series(mad),
                                     _known=pl.Series(known))
        dev = ((pl.col("_v") - pl.col("_median")).abs() / pl.col("_mad"))
        return scored.with_columns(dev=dev).filter(
            pl.col("_new") & (pl.col("_known") >= self.min_periods) & pl.col("dev").is_finite()
            & (pl.col("dev") > self.threshold)
        ).with_columns(score=pl.col("dev") / self.threshold,
                       reason=pl.format("{} is {} MADs from the recent median {}",
                                        _num(pl.col("_v")), _num(pl.col("dev"), 1),
                                        _num(pl.col("_median"))))


@dataclass
class Ewma(Detector):
    """A value whose distance from the EWMA forecast exceeds ``threshold`` times the EWMA of
    past distances (``alpha`` weights the newest value)."""

    kind: ClassVar[str] = "ewma"
    alpha: float = 0.1
    threshold: float = 6.0
    min_periods: int = 10
    #: Per series: forecast, mean distance, values seen.
    state_: pl.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ConfigError(f"ewma alpha must be in (0, 1], not {self.alpha}")

    def detect(self, events: pl.DataFrame, *, watermark_ms: int | None = None) -> pl.DataFrame:
        batch = self._series(events).filter(pl.col("_new"))
        keys = list(self.keys)
        state = self.state_
        if state is None:
            state = batch.select(keys).clear().with_columns(
                _m=pl.lit(None, pl.Float64), _d=pl.lit(None, pl.Float64),
                _n=pl.lit(0, pl.Int64))
        # one seed row per known series carries the forecast (and the mean distance) over
        seeds = state.select(*keys, _v=pl.col("_m"), _abs=pl.col("_d"), _seed=pl.lit(True),
                             _n0=pl.col("_n"), _seq=pl.lit(-1, pl.Int64))
        rows = batch.select(*keys, pl.col("_seq").cast(pl.Int64), "_t", "_v",
                            _seed=pl.lit(False))
        rows = rows.join(state.select(*keys, _n0=pl.col("_n")), on=keys, how="left",
                         nulls_equal=True)
        both = pl.concat([seeds, rows], how="diagonal_relaxed").sort(
            [*keys, "_seed", "_seq"], descending=[False] * len(keys) + [True, False],
            nulls_last=True, maintain_order=True)
        a = self.alpha
        forecast = self._over(pl.col("_v").ewm_mean(alpha=a, adjust=False).shift(1))
        both = both.with_columns(_f=forecast)
        distance = (pl.col("_v") - pl.col("_f")).abs()
        both = both.with_columns(_abs=pl.when(pl.col("_seed")).then(pl.col("_abs"))
                                 .otherwise(distance))
        spread = self._over(pl.col("_abs").ewm_mean(alpha=a, adjust=False, ignore_nulls=True)
                            .shift(1))
        seen = pl.col("_n0").fill_null(0) + self._over(
            (~pl.col("_seed")).cast(pl.Int64).cum_sum())
        both = both.with_columns(_spread=spread, _seen=seen,
                                 _ratio=distance / spread)
        flagged = both.filter(
            ~pl.col("_seed") & (pl.col("_seen") > self.min_periods)
            & pl.col("_ratio").is_finite() & (pl.col("_ratio") > self.threshold)
        ).with_columns(score=pl.col("_ratio") / self.threshold,
                       reason=pl.format("{} is {} times the usual distance from the forecast {}",
                                        _num(pl.col("_v")), _num(pl.col("_ratio"), 1),
                                        _num(pl.col("_f"))))
        last = both.with_columns(
            _m=self._over(pl.col("_v").ewm_mean(alpha=a, adjust=False)),
            _d=self._over(pl.col("_abs").ewm_mean(alpha=a, adjust=False, ignore_nulls=True)),
        ).group_by(keys, maintain_order=True).last()
        self.state_ = last.select(*keys, "_m", "_d", _n=pl.col("_seen"))
        return self._shape(flagged.sort("_seq"))

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - see detect
        raise AssertionError("Ewma overrides detect")

    def snapshot(self) -> dict[str, pa.Table | None]:
        return {"state": None if self.state_ is None else self.state_.to_arrow()}

    def restore(self, state: dict[str, pa.Table | None]) -> None:
        table = state.get("state")
        self.state_ = None if table is None else pl.from_arrow(table)  # type: ignore[assignment]


@dataclass
class Jump(Detector):
    """A spike or a dip: a change from the previous value larger than ``delta``
    (``direction``: up, down or both)."""

    kind: ClassVar[str] = "jump"
    delta: float = 10.0
    direction: str = "both"

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down", "both"):
            raise ConfigError(f"jump direction {self.direction!r} is not up, down or both")

    def history(self) -> int:
        return 1

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        change = pl.col("_v") - self._over(pl.col("_v").shift(1))
        if self.direction == "up":
            hit = change > self.delta
        elif self.direction == "down":
            hit = change < -self.delta
        else:
            hit = change.abs() > self.delta
        return series.with_columns(_change=change).filter(pl.col("_new") & hit).with_columns(
            score=pl.col("_change").abs() / self.delta,
            reason=pl.format("{} jumped by {} from the previous value", _num(pl.col("_v")),
                             _num(pl.col("_change"))))


@dataclass
class RateOfChange(Detector):
    """A change faster than ``max_per_second`` units per second between two readings."""

    kind: ClassVar[str] = "rate"
    max_per_second: float = 1.0

    def history(self) -> int:
        return 1

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        dv = pl.col("_v") - self._over(pl.col("_v").shift(1))
        dt = (pl.col("_t") - self._over(pl.col("_t").shift(1))) / 1000.0
        rate = (dv / dt).abs()
        return series.with_columns(_rate=rate).filter(
            pl.col("_new") & pl.col("_rate").is_finite() & (pl.col("_rate") > self.max_per_second)
        ).with_columns(score=pl.col("_rate") / self.max_per_second,
                       reason=pl.format("changing at {}/s, faster than {}/s",
                                        _num(pl.col("_rate")), pl.lit(str(self.max_per_second))))


@dataclass
class Stuck(Detector):
    """A flat line: the last ``window`` values within ``tolerance`` of each other. Reported
    once when a series becomes stuck, again only after it moved."""

    kind: ClassVar[str] = "stuck"
    window: int = 20
    tolerance: float = 0.0

    def history(self) -> int:
        return self.window

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:
        v = pl.col("_v")
        spread = self._over(v.rolling_max(self.window) - v.rolling_min(self.window))
        flat = spread <= self.tolerance
        onset = flat & ~self._over(flat.shift(1)).fill_null(False)
        return series.with_columns(_onset=onset).filter(pl.col("_new") & pl.col("_onset")) \
            .with_columns(score=pl.lit(1.0),
                          reason=pl.format("the last {} readings are all {}",
                                           pl.lit(str(self.window)), _num(v)))


@dataclass
class Silence(Detector):
    """A series with no data for ``after_ms`` of event time (judged against the watermark at
    the end of each batch). Reported once per silence; a new reading ends it."""

    kind: ClassVar[str] = "silent"
    after_ms: int = 60_000
    #: Per series: when it was last heard from and whether its silence was reported.
    seen_: pl.DataFrame | None = field(default=None, repr=False)

    def detect(self, events: pl.DataFrame, *, watermark_ms: int | None = None) -> pl.DataFrame:
        batch = self._series(events).filter(pl.col("_new"))
        keys = list(self.keys)
        latest = batch.group_by(keys).agg(_new_last=pl.col("_t").max(),
                                          _new_v=pl.col("_v").last())
        seen = self.seen_
        if seen is None:
            seen = latest.clear().select(*keys, _last=pl.col("_new_last"),
                                         _vlast=pl.col("_new_v"), _reported=pl.lit(False))
        merged = seen.join(latest, on=keys, how="full", coalesce=True, nulls_equal=True)
        newer = pl.col("_new_last").is_not_null() & (
            pl.col("_last").is_null() | (pl.col("_new_last") > pl.col("_last")))
        # a reading newer than the last one ends a reported silence
        merged = merged.select(
            *keys,
            _last=pl.when(newer).then(pl.col("_new_last")).otherwise(pl.col("_last")),
            _vlast=pl.when(newer).then(pl.col("_new_v")).otherwise(pl.col("_vlast")),
            _reported=pl.when(newer).then(False).otherwise(pl.col("_reported").fill_null(False)))
        if watermark_ms is None:
            self.seen_ = merged
            return self._shape(merged.clear())
        due = (pl.col("_last") + self.after_ms <= watermark_ms) & ~pl.col("_reported")
        found = merged.filter(due).with_columns(
            _t=pl.col("_last") + self.after_ms, _v=pl.col("_vlast"),
            score=((watermark_ms - pl.col("_last")) / self.after_ms).cast(pl.Float64),
            reason=pl.format("no data since {} ms ({} s of silence)", pl.col("_last"),
                             pl.lit(str(self.after_ms / 1000))))
        self.seen_ = merged.with_columns(_reported=pl.col("_reported") | due)
        return self._shape(found)

    def _flag(self, series: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - see detect
        raise AssertionError("Silence overrides detect")

    def snapshot(self) -> dict[str, pa.Table | None]:
        return {"seen": None if self.seen_ is None else self.seen_.to_arrow()}

    def restore(self, state: dict[str, pa.Table | None]) -> None:
        table = state.get("seen")
        self.seen_ = None if table is None else pl.from_arrow(table)  # type: ignore[assignment]


class _quiet:
    """Silence NumPy's 'All-NaN slice' warnings for windows that are not yet full."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)


#: Detector kinds by the name headwater.yaml uses.
DETECTORS: dict[str, type[Detector]] = {
    cls.kind: cls for cls in (Threshold, ZScore, MedianDeviation, Ewma, Jump, RateOfChange,
                              Stuck, Silence)
}

"""Event-time windows per key, with a watermark, allowed lateness and a late-data policy.

The operator is fed micro-batches of events (Polars frames) and answers with the windows they
complete. Everything is computed on whole batches: no Python call per event.

Semantics, which the tests pin against a per-event reference implementation:

- **Time** is the event's own time (``time`` column), in milliseconds since the epoch.
- **Watermark**, per partition (``partition`` column; one partition without it): the newest
  event time seen in it minus ``watermark_delay``. Whether an event is late is judged against
  the watermark *just before it* in its partition's order, so the answer does not depend on how
  the input is cut into batches, nor on which process reads which partition (the broker keeps
  each partition's order, so a replay decides the same). Windows fire at the end of a batch.
- **Windows.** Tumbling ``[k·size, (k+1)·size)``; hopping windows of ``size`` every ``hop``
  (``size`` a multiple of ``hop``: each event is in ``size / hop`` windows); sessions per key,
  an event's window ``[t, t + gap)``, overlapping ones merged (a gap of ``gap`` or more starts a
  new session).
- **Firing.** A window fires once when ``W ≥ end``. With ``allowed_lateness`` ``L`` and policy
  ``update``, it is kept until ``W ≥ end + L``; an event for it that arrives meanwhile re-emits
  the window with ``revision`` one higher (the sink upserts on keys + ``window_start``).
- **Late events.** An event is late for a window when the watermark before it has passed the
  window's end (and, with ``update``, its end plus the lateness). Late events are counted and, with
  policy ``table``, returned for a late table; with ``drop`` they are only counted. An event late
  for any of its windows is reported once. Sessions have no ``update`` policy (a late event could
  merge fired sessions); their late events are dropped or tabled.
- **Aggregates** per window: count, mean, min, max, stddev (sample, null for one event) and
  p95 (exact: linear interpolation between closest ranks, over every event of the window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl
import pyarrow as pa

from headwater.core import ConfigError

LatePolicy = Literal["drop", "table", "update"]

#: Columns of a window result, after the key columns.
RESULT_COLUMNS = ("window_start", "window_end", "count", "mean", "min", "max", "stddev", "p95",
                  "revision")

_NO_WATERMARK = -(2**62)


@dataclass(frozen=True)
class Tumbling:
    """Fixed, non-overlapping windows of ``size_ms``."""

    size_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ConfigError(f"window size must be positive, not {self.size_ms} ms")


@dataclass(frozen=True)
class Hopping:
    """Windows of ``size_ms`` starting every ``hop_ms`` (each event in ``size/hop`` of them)."""

    size_ms: int
    hop_ms: int

    def __post_init__(self) -> None:
        if self.hop_ms <= 0 or self.size_ms <= 0 or self.size_ms % self.hop_ms:
            raise ConfigError(
                f"hopping window: size {self.size_ms} ms must be a positive multiple of hop "
                f"{self.hop_ms} ms", hint="e.g. size: 1m, hop: 15s")


@dataclass(frozen=True)
class Session:
    """Per-key activity sessions closed by ``gap_ms`` without an event."""

    gap_ms: int

    def __post_init__(self) -> None:
        if self.gap_ms <= 0:
            raise ConfigError(f"session gap must be positive, not {self.gap_ms} ms")


Window = Tumbling | Hopping | Session


@dataclass
class WindowOutput:
    """What one batch produced: window results, late events, and counts."""

    results: pl.DataFrame
    late: pl.DataFrame
    late_count: int = 0
    watermark_ms: int | None = None


@dataclass
class WindowOperator:
    """Windows ``value`` by ``keys`` in event time (``time``, ms since the epoch).

    Parameters
    ----------
    window:
        :class:`Tumbling`, :class:`Hopping` or :class:`Session`.
    keys:
        Columns that identify a series, e.g. ``("device", "metric")``.
    partition:
        Column with the broker partition each event came from (one watermark per partition);
        ``None``: one partition.
    watermark_delay_ms:
        How far behind the newest event the watermark trails (bounded out-of-orderness).
    allowed_lateness_ms:
        With ``late="update"``: how long a fired window still takes late events.
    late:
        ``drop`` (count them), ``table`` (return them for a late table) or ``update``.

    >>> op = WindowOperator(Tumbling(1000), keys=("device",))
    >>> out = op.process(pl.DataFrame({"device": ["a", "a", "a"], "time": [0, 500, 2500],
    ...                                "value": [1.0, 3.0, 9.0]}))
    >>> out.results.select("device", "window_start", "count", "mean").rows()
    [('a', 0, 2, 2.0)]
    """

    window: Window
    keys: tuple[str, ...] = ("device", "metric")
    time: str = "time"
    value: str = "value"
    partition: str | None = None
    watermark_delay_ms: int = 0
    allowed_lateness_ms: int = 0
    late: LatePolicy = "drop"
    #: Events (one row per event and window for tumbling/hopping) not yet past end + lateness.
    buffer_: pl.DataFrame | None = field(default=None, repr=False)
    #: Windows already emitted and still kept for updates: _p, keys, window_start, revision.
    fired_: pl.DataFrame | None = field(default=None, repr=False)
    #: Newest event time per partition: _p, _max.
    marks_: pl.DataFrame | None = field(default=None, repr=False)
    #: Events taken so far (numbers each event, in arrival order).
    rows_seen_: int = 0
    #: Types of the key columns, from the first batch.
    key_schema_: dict[str, pl.DataType] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.late not in ("drop", "table", "update"):
            raise ConfigError(f"late policy {self.late!r} is not drop, table or update")
        if isinstance(self.window, Session) and self.late == "update":
            raise ConfigError("session windows cannot update fired results (a late event "
                              "could merge two sessions)", hint="use late: drop or table")
        if self.late != "update" and self.allowed_lateness_ms:
            raise ConfigError("allowed_lateness needs late: update",
                              hint="set late: update, or remove allowed_lateness")
        if self.watermark_delay_ms < 0 or self.allowed_lateness_ms < 0:
            raise ConfigError("watermark delay and allowed lateness cannot be negative")

    # --- public -------------------------------------------------------------------------

    @property
    def watermark_ms(self) -> int | None:
        """The lowest partition watermark (None before the first event)."""
        marks = self._marks()
        if marks.is_empty():
            return None
        return int(marks["_max"].min()) - self.watermark_delay_ms  # type: ignore[operator]

    def process(self, events: pl.DataFrame) -> WindowOutput:
        """Take one batch of events; return the windows the advanced watermarks complete."""
        original = self._check(events).with_row_index("_row", offset=self.rows_seen_)
        self.rows_seen_ += events.height
        normal = self._with_watermarks(self._normalise(original))
        out = self._process_sessions(normal) if isinstance(self.window, Session) \
            else self._process_fixed(normal)
        if self.late == "table" and out.late_count:
            rows = out.late.get_column("_row")
            out.late = original.filter(pl.col("_row").is_in(rows.implode())).drop("_row")
        else:
            out.late = pl.DataFrame()
        return out

    def flush(self) -> WindowOutput:
        """Fire every open window (the input has ended): the watermarks move past them all."""
        buffer = self._buffer()
        if buffer.is_empty():
            return WindowOutput(self._empty_results(), pl.DataFrame())
        beyond = int(buffer["_t"].max()) + self._span() + self.allowed_lateness_ms  # type: ignore[arg-type]
        beyond += self.watermark_delay_ms + 1
        self.marks_ = pl.concat([self._marks(), buffer.select("_p").unique().with_columns(
            _max=pl.lit(beyond, pl.Int64))]).group_by("_p").agg(pl.col("_max").max())
        empty = buffer.clear().select("_p", *self.keys, "_t", "_v", "_row").with_columns(
            _wmb=pl.lit(0, pl.Int64))
        out = self._process_sessions(empty) if isinstance(self.window, Session) \
            else self._process_fixed(empty)
        out.late = pl.DataFrame()
        return out

    def open_windows(self) -> int:
        """Windows holding events that have not fired yet."""
        buffer = self._buffer()
        if buffer.is_empty():
            return 0
        if isinstance(self.window, Session):
            return buffer.select("_p", *self.keys).n_unique()
        pending = self._with_mark(buffer).filter(pl.col("_start") + self._span() > pl.col("_w"))
        return pending.select("_p", *self.keys, "_start").n_unique()

    def snapshot(self) -> dict[str, pa.Table | int]:
        """Operator state for a checkpoint: Arrow tables (every row carries its partition in
        ``_p``, so a checkpoint can be split between processes) and a counter."""
        return {"buffer": self._buffer().to_arrow(), "fired": self._fired().to_arrow(),
                "marks": self._marks().to_arrow(), "rows_seen": self.rows_seen_}

    def restore(self, state: dict[str, pa.Table | int]) -> None:
        """Load state written by :meth:`snapshot` (same operator settings)."""
        tables = {name: state[name] for name in ("buffer", "fired", "marks")}
        frames = {name: pl.from_arrow(t) for name, t in tables.items()}
        self.buffer_, self.fired_, self.marks_ = (frames["buffer"], frames["fired"],  # type: ignore[assignment]
                                                  frames["marks"])
        self.rows_seen_ = int(state["rows_seen"])  # type: ignore[arg-type]
        self.key_schema_ = {k: self.buffer_.schema[k] for k in self.keys}  # type: ignore[union-attr]

    # --- watermarks ---------------------------------------------------------------------

    def _with_watermarks(self, events: pl.DataFrame) -> pl.DataFrame:
        """Each event's watermark just before it (``_wmb``), and the new newest times."""
        prior = events.join(self._marks(), on="_p", how="left")
        running = pl.col("_t").cum_max().shift(1).over("_p", order_by="_row")
        newest = pl.max_horizontal(pl.col("_max"), running)
        events = prior.with_columns(
            _wmb=(newest - self.watermark_delay_ms).fill_null(_NO_WATERMARK)).drop("_max")
        if not events.is_empty():
            self.marks_ = pl.concat([self._marks(), events.group_by("_p").agg(
                _max=pl.col("_t").max())]).group_by("_p").agg(pl.col("_max").max())
        return events

    def _with_mark(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Rows with their partition's current watermark in ``_w``."""
        marks = self._marks().select("_p", _w=pl.col("_max") - self.watermark_delay_ms)
        return rows.join(marks, on="_p", how="left").with_columns(
            pl.col("_w").fill_null(_NO_WATERMARK))

    # --- fixed windows (tumbling, hopping) ----------------------------------------------

    def _span(self) -> int:
        window = self.window
        return window.gap_ms if isinstance(window, Session) else window.size_ms

    def _process_fixed(self, events: pl.DataFrame) -> WindowOutput:
        size = self._span()
        hop = self.window.hop_ms if isinstance(self.window, Hopping) else size
        pairs = self._explode(events, size, hop)
        ends = pl.col("_start") + size
        before = pl.col("_wmb")
        on_time = pairs.filter(ends > before)
        if self.late == "update":
            retained = pairs.filter((ends <= before)
                                    & (ends + self.allowed_lateness_ms > before))
            late_pairs = pairs.filter(ends + self.allowed_lateness_ms <= before)
        else:
            retained = pairs.clear()
            late_pairs = pairs.filter(ends <= before)
        late = late_pairs.unique("_row").sort("_row")
        self.buffer_ = pl.concat([self._buffer(), on_time.drop("_wmb"), retained.drop("_wmb")])
        results = self._fire_fixed(size, touched=retained.select("_p", *self.keys, "_start"))
        self._prune_fixed(size)
        return WindowOutput(results, late.select("_row"), late.height, self.watermark_ms)

    def _explode(self, events: pl.DataFrame, size: int, hop: int) -> pl.DataFrame:
        """One row per (event, window): the window's start in ``_start``."""
        last = (pl.col("_t") // hop) * hop
        if size == hop:
            return events.with_columns(_start=last)
        copies = size // hop
        return (events.with_columns(_start=pl.int_ranges(last - (copies - 1) * hop, last + 1,
                                                         hop))
                .explode("_start"))

    def _fire_fixed(self, size: int, touched: pl.DataFrame) -> pl.DataFrame:
        window_keys = ["_p", *self.keys, "_start"]
        closed = self._with_mark(self._buffer()).filter(pl.col("_start") + size <= pl.col("_w"))
        if closed.is_empty():
            return self._empty_results()
        fired = self._fired()
        fired_keys = fired.select("_p", *self.keys, pl.col("window_start").alias("_start"))
        new = closed.select(window_keys).unique().join(fired_keys, on=window_keys, how="anti",
                                                        nulls_equal=True)
        emit = closed.join(pl.concat([new, touched]).unique(), on=window_keys, how="semi",
                           nulls_equal=True)
        if emit.is_empty():
            return self._empty_results()
        results = self._aggregate(emit, window_keys).with_columns(
            window_end=pl.col("window_start") + size)
        identity = ["_p", *self.keys, "window_start"]
        results = results.join(fired, on=identity, how="left", nulls_equal=True).with_columns(
            revision=pl.when(pl.col("revision").is_null()).then(0)
            .otherwise(pl.col("revision") + 1).cast(pl.Int64))
        marks = results.select(*identity, "revision")
        self.fired_ = pl.concat([
            fired.join(marks.select(identity), on=identity, how="anti", nulls_equal=True),
            marks])
        return self._order(results)

    def _prune_fixed(self, size: int) -> None:
        kept = pl.col("_start") + size + self.allowed_lateness_ms > pl.col("_w")
        self.buffer_ = self._with_mark(self._buffer()).filter(kept).drop("_w")
        fired = self._fired().rename({"window_start": "_start"})
        self.fired_ = self._with_mark(fired).filter(kept).drop("_w").rename(
            {"_start": "window_start"})

    # --- sessions -----------------------------------------------------------------------

    def _process_sessions(self, events: pl.DataFrame) -> WindowOutput:
        gap = self._span()
        is_late = pl.col("_t") + gap <= pl.col("_wmb")
        late = events.filter(is_late)
        self.buffer_ = pl.concat([self._buffer(), events.filter(~is_late).drop("_wmb")])
        series = ["_p", *self.keys]
        buffer = self._buffer().sort([*series, "_t", "_row"], nulls_last=True)
        starts = pl.col("_t").diff().over(series).fill_null(gap) >= gap
        buffer = buffer.with_columns(_session=starts.cum_sum().over(series))
        bounds = self._with_mark(buffer.group_by([*series, "_session"]).agg(
            _start=pl.col("_t").min(), _last=pl.col("_t").max()))
        done = bounds.filter(pl.col("_last") + gap <= pl.col("_w"))
        closed = buffer.join(done.select(*series, "_session", "_start"),
                             on=[*series, "_session"], how="inner", nulls_equal=True)
        self.buffer_ = buffer.join(done.select(*series, "_session"), on=[*series, "_session"],
                                   how="anti", nulls_equal=True).drop("_session")
        if closed.is_empty():
            results = self._empty_results()
        else:
            results = self._aggregate(closed, [*series, "_session", "_start"]).with_columns(
                window_end=pl.col("_last_t") + gap, revision=pl.lit(0, pl.Int64)
            ).drop("_session")
            results = self._order(results)
        return WindowOutput(results, late.select("_row"), late.height, self.watermark_ms)

    # --- shared -------------------------------------------------------------------------

    def _aggregate(self, rows: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        v = pl.col("_v")
        out = rows.group_by(by).agg(
            count=pl.len().cast(pl.Int64), mean=v.mean(), min=v.min(), max=v.max(),
            stddev=v.std(ddof=1), p95=v.quantile(0.95, interpolation="linear"),
            _last_t=pl.col("_t").max())
        return out.rename({"_start": "window_start"})

    def _order(self, results: pl.DataFrame) -> pl.DataFrame:
        return results.sort([*self.keys, "window_start", "_p"], nulls_last=True).select(
            [*self.keys, *RESULT_COLUMNS])

    def _check(self, events: pl.DataFrame) -> pl.DataFrame:
        needed = [*self.keys, self.time, self.value]
        if self.partition is not None:
            needed.append(self.partition)
        missing = [c for c in needed if c not in events.columns]
        if missing:
            raise ConfigError(f"window input lacks column(s) {missing}; it has "
                              f"{events.columns}")
        if self.key_schema_ is None:
            self.key_schema_ = {k: events.schema[k] for k in self.keys}
        return events

    def _normalise(self, events: pl.DataFrame) -> pl.DataFrame:
        t = pl.col(self.time)
        if events.schema[self.time].is_temporal():
            t = t.dt.epoch("ms")
        part = pl.col(self.partition).cast(pl.Int64) if self.partition else pl.lit(0, pl.Int64)
        return events.select(
            part.alias("_p"), *[pl.col(k).cast(self._key_schema()[k]) for k in self.keys],
            t.cast(pl.Int64).alias("_t"), pl.col(self.value).cast(pl.Float64).alias("_v"),
            pl.col("_row").cast(pl.Int64),
        ).filter(pl.col("_t").is_not_null())

    def _key_schema(self) -> dict[str, pl.DataType]:
        return self.key_schema_ or {k: pl.String() for k in self.keys}

    def _buffer(self) -> pl.DataFrame:
        if self.buffer_ is None:
            schema = {"_p": pl.Int64(), **self._key_schema(), "_t": pl.Int64(),
                      "_v": pl.Float64(), "_row": pl.Int64()}
            if not isinstance(self.window, Session):
                schema["_start"] = pl.Int64()
            return pl.DataFrame(schema=schema)
        return self.buffer_

    def _fired(self) -> pl.DataFrame:
        if self.fired_ is None:
            return pl.DataFrame(schema={"_p": pl.Int64(), **self._key_schema(),
                                        "window_start": pl.Int64(), "revision": pl.Int64()})
        return self.fired_

    def _marks(self) -> pl.DataFrame:
        if self.marks_ is None:
            return pl.DataFrame(schema={"_p": pl.Int64(), "_max": pl.Int64()})
        return self.marks_

    def _empty_results(self) -> pl.DataFrame:
        schema = dict(self._key_schema())
        schema |= {"window_start": pl.Int64(), "window_end": pl.Int64(), "count": pl.Int64(),
                   "mean": pl.Float64(), "min": pl.Float64(), "max": pl.Float64(),
                   "stddev": pl.Float64(), "p95": pl.Float64(), "revision": pl.Int64()}
        return pl.DataFrame(schema=schema)

"""De-duplication by message id within a horizon of event time, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from headwater.core import ConfigError


@dataclass
class Deduplicator:
    """Drops events whose ``id`` was seen within ``horizon_ms`` of event time.

    The first arrival wins. Ids are remembered until the newest event time seen (in their
    partition) has moved ``horizon_ms`` past them, so memory is bounded by one horizon of ids.

    >>> d = Deduplicator(horizon_ms=1000)
    >>> kept, dropped = d.process(pl.DataFrame({"id": ["a", "b", "a"], "time": [0, 1, 2]}))
    >>> kept["id"].to_list(), dropped
    (['a', 'b'], 1)
    """

    horizon_ms: int
    id: str = "id"
    time: str = "time"
    #: Column of the broker partition (an id always arrives on one partition): the horizon
    #: then moves per partition, so how partitions are spread over processes changes nothing.
    partition: str | None = None
    #: Remembered ids, the event time they came with, and their partition (``_p``).
    seen_: pl.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.horizon_ms <= 0:
            raise ConfigError(f"dedupe horizon must be positive, not {self.horizon_ms} ms",
                              hint="e.g. dedupe: {horizon: 10m}")

    def process(self, events: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        """The batch without duplicates (arrival order kept) and how many were dropped."""
        for column in (self.id, self.time):
            if column not in events.columns:
                raise ConfigError(f"de-duplication needs column {column!r}; the events have "
                                  f"{events.columns}")
        if events.is_empty():
            return events, 0
        t = pl.col(self.time)
        if events.schema[self.time].is_temporal():
            t = t.dt.epoch("ms")
        part = pl.col(self.partition).cast(pl.Int64) if self.partition else pl.lit(0, pl.Int64)
        keyed = events.with_columns(_t=t.cast(pl.Int64), _p=part, _i=pl.int_range(pl.len()))
        # events without an id cannot be told apart: all kept, none remembered
        anonymous = keyed.filter(pl.col(self.id).is_null())
        unique = keyed.filter(pl.col(self.id).is_not_null()).unique(
            self.id, keep="first", maintain_order=True)
        seen = self._seen(keyed)
        if not seen.is_empty():
            unique = unique.join(seen.select(self.id), on=self.id, how="anti",
                                 maintain_order="left")
        seen = pl.concat([seen, unique.select(self.id, "_t", "_p")])
        unique = pl.concat([unique, anonymous]).sort("_i") if anonymous.height else unique
        dropped = events.height - unique.height
        newest = seen.group_by("_p").agg(_newest=pl.col("_t").max())
        self.seen_ = seen.join(newest, on="_p").filter(
            pl.col("_t") > pl.col("_newest") - self.horizon_ms).drop("_newest")
        return unique.drop("_t", "_p", "_i"), dropped

    def _seen(self, like: pl.DataFrame) -> pl.DataFrame:
        if self.seen_ is None:
            return pl.DataFrame(schema={self.id: like.schema[self.id], "_t": pl.Int64,
                                        "_p": pl.Int64})
        return self.seen_

    def snapshot(self) -> dict[str, pa.Table | None]:
        """State for a checkpoint (rows carry their partition in ``_p``)."""
        return {"seen": None if self.seen_ is None else self.seen_.to_arrow()}

    def restore(self, state: dict[str, pa.Table | None]) -> None:
        """Load state written by :meth:`snapshot`."""
        seen = state.get("seen")
        self.seen_ = None if seen is None else pl.from_arrow(seen)  # type: ignore[assignment]

"""De-duplication by message id within a horizon of event time, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from headwater.core import ConfigError


@dataclass
class Deduplicator:
    """Drops events whose ``id`` was seen within ``horizon_ms`` of event time.

    The first arrival wins. Ids are remembered until the newest event time seen has moved
    ``horizon_ms`` past them, so memory is bounded by the ids of one horizon.

    >>> d = Deduplicator(horizon_ms=1000)
    >>> kept, dropped = d.process(pl.DataFrame({"id": ["a", "b", "a"], "time": [0, 1, 2]}))
    >>> kept["id"].to_list(), dropped
    (['a', 'b'], 1)
    """

    horizon_ms: int
    id: str = "id"
    time: str = "time"
    #: Remembered ids and the event time they came with.
    seen_: pl.DataFrame | None = field(default=None, repr=False)
    newest_ms_: int | None = None

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
        keyed = events.with_columns(_t=t.cast(pl.Int64))
        unique = keyed.unique(self.id, keep="first", maintain_order=True)
        if self.seen_ is not None and not self.seen_.is_empty():
            unique = unique.join(self.seen_.select(self.id), on=self.id, how="anti",
                                 maintain_order="left")
        dropped = events.height - unique.height
        batch_newest = keyed["_t"].max()
        if batch_newest is not None:
            newest = int(batch_newest)  # type: ignore[arg-type]
            self.newest_ms_ = newest if self.newest_ms_ is None else max(self.newest_ms_, newest)
        seen = unique.select(self.id, "_t")
        self.seen_ = seen if self.seen_ is None else pl.concat([self.seen_, seen])
        if self.newest_ms_ is not None:
            self.seen_ = self.seen_.filter(pl.col("_t") > self.newest_ms_ - self.horizon_ms)
        return unique.drop("_t"), dropped

    def snapshot(self) -> dict[str, pa.Table | int | None]:
        """State for a checkpoint."""
        seen = self.seen_ if self.seen_ is not None else pl.DataFrame(
            schema={self.id: pl.String, "_t": pl.Int64})
        return {"seen": seen.to_arrow(), "newest_ms": self.newest_ms_}

    def restore(self, state: dict[str, pa.Table | int | None]) -> None:
        """Load state written by :meth:`snapshot`."""
        seen = state["seen"]
        assert isinstance(seen, pa.Table)
        self.seen_ = pl.from_arrow(seen)  # type: ignore[assignment]
        newest = state["newest_ms"]
        self.newest_ms_ = None if newest is None else int(newest)  # type: ignore[arg-type]

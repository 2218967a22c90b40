"""Alerts from anomalies: one alert per series and detector while it lasts, then resolved.

- **De-duplication.** While an alert is firing, more anomalies of the same detector on the same
  series add to its count and move its ``last_seen``; no new alert opens.
- **Resolution.** An alert resolves when its series has had no anomaly of that detector for
  ``resolve_after_ms`` of event time (judged against the partition's watermark).
- **Suppression.** For ``suppress_ms`` after it resolved, the same series and detector cannot
  open a new alert; anomalies then are counted as suppressed.

Alert ids are made of the processor, detector, series and first anomaly time, so a replay
produces the same ids (the alerts table is upserted on ``alert_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

#: Columns of the alerts table (after the key columns).
ALERT_COLUMNS = ("alert_id", "detector", "severity", "status", "first_seen", "last_seen",
                 "count", "score", "reason", "resolved_at")


@dataclass
class AlertChanges:
    """What one batch did to the alerts: rows to upsert, and the opened and resolved ones."""

    rows: pl.DataFrame
    opened: pl.DataFrame
    resolved: pl.DataFrame
    suppressed: int = 0


@dataclass
class AlertTracker:
    """Turns anomalies (keys, ``partition``, time, detector, score, reason) into alerts."""

    processor: str
    keys: tuple[str, ...] = ("device", "metric")
    partition: str = "partition"
    severities: dict[str, str] = field(default_factory=dict)
    resolve_after_ms: int = 60_000
    suppress_ms: int = 0
    #: Firing alerts, and resolved ones still suppressing.
    open_: pl.DataFrame | None = field(default=None, repr=False)

    def process(self, anomalies: pl.DataFrame,
                watermarks: pl.DataFrame) -> AlertChanges:
        """Apply one batch of anomalies; ``watermarks`` has ``partition`` and ``watermark``."""
        series = [self.partition, *self.keys, "detector"]
        state = self._state(anomalies)
        grouped = anomalies.sort("time").group_by(series, maintain_order=True).agg(
            _first=pl.col("time").min(), _last=pl.col("time").max(), _n=pl.len(),
            _score=pl.col("score").max(), _reason=pl.col("reason").last())
        firing = state.filter(pl.col("status") == "firing")
        quiet = state.filter(pl.col("status") == "resolved")
        # anomalies on a firing alert: de-duplicated into it
        joined = grouped.join(firing, on=series, how="left", nulls_equal=True)
        updated = joined.filter(pl.col("alert_id").is_not_null()).select(
            *series, "alert_id", "severity", "status", "first_seen",
            last_seen=pl.max_horizontal("last_seen", "_last"),
            count=pl.col("count") + pl.col("_n"),
            score=pl.max_horizontal("score", "_score"), reason=pl.col("_reason"),
            resolved_at=pl.col("resolved_at"))
        candidates = joined.filter(pl.col("alert_id").is_null()).select(grouped.columns)
        # a recently resolved alert suppresses new ones on the same series
        blocked = candidates.join(quiet.select(*series, "resolved_at"), on=series, how="inner",
                                  nulls_equal=True).filter(
            pl.col("_first") < pl.col("resolved_at") + self.suppress_ms)
        fresh = candidates.join(blocked.select(series), on=series, how="anti", nulls_equal=True)
        opened = fresh.select(
            *series,
            alert_id=pl.concat_str([pl.lit(self.processor), pl.col("detector"),
                                    *[pl.col(k).cast(pl.String) for k in self.keys],
                                    pl.col("_first").cast(pl.String)], separator=":"),
            severity=pl.col("detector").replace_strict(
                self.severities, default="warning", return_dtype=pl.String),
            status=pl.lit("firing"), first_seen=pl.col("_first"), last_seen=pl.col("_last"),
            count=pl.col("_n").cast(pl.Int64), score=pl.col("_score"),
            reason=pl.col("_reason"), resolved_at=pl.lit(None, pl.Int64))
        suppressed = int(blocked["_n"].sum()) if not blocked.is_empty() else 0
        current = pl.concat([
            firing.join(updated.select(series), on=series, how="anti", nulls_equal=True),
            updated, opened], how="vertical_relaxed")
        # firing alerts whose series has been quiet long enough resolve
        marks = current.join(watermarks, on=self.partition, how="left")
        due = pl.col("last_seen") + self.resolve_after_ms <= pl.col("watermark")
        resolved = marks.filter(due.fill_null(False)).drop("watermark").with_columns(
            status=pl.lit("resolved"),
            resolved_at=pl.col("last_seen") + self.resolve_after_ms)
        still = marks.filter(~due.fill_null(False)).drop("watermark")
        keep_quiet = pl.concat([quiet, resolved], how="vertical_relaxed")
        expiry = keep_quiet.join(watermarks, on=self.partition, how="left")
        keep_quiet = expiry.filter(
            (pl.col("resolved_at") + self.suppress_ms > pl.col("watermark"))
            | pl.col("watermark").is_null()).drop("watermark")
        self.open_ = pl.concat([still, keep_quiet], how="vertical_relaxed")
        rows = pl.concat([updated, opened.join(resolved.select("alert_id"), on="alert_id",
                                               how="anti"), resolved], how="vertical_relaxed")
        rows = rows.unique("alert_id", keep="last", maintain_order=True)
        return AlertChanges(self._shape(rows), self._shape(opened), self._shape(resolved),
                            suppressed)

    def active(self) -> int:
        """Alerts firing now."""
        if self.open_ is None:
            return 0
        return self.open_.filter(pl.col("status") == "firing").height

    def snapshot(self) -> dict[str, pa.Table | None]:
        return {"open": None if self.open_ is None else self.open_.to_arrow()}

    def restore(self, state: dict[str, pa.Table | None]) -> None:
        table = state.get("open")
        self.open_ = None if table is None else pl.from_arrow(table)  # type: ignore[assignment]

    def _state(self, anomalies: pl.DataFrame) -> pl.DataFrame:
        if self.open_ is not None:
            return self.open_
        schema = {self.partition: pl.Int64(),
                  **{k: anomalies.schema.get(k, pl.String()) for k in self.keys},
                  "detector": pl.String(), "alert_id": pl.String(), "severity": pl.String(),
                  "status": pl.String(), "first_seen": pl.Int64(), "last_seen": pl.Int64(),
                  "count": pl.Int64(), "score": pl.Float64(), "reason": pl.String(),
                  "resolved_at": pl.Int64()}
        return pl.DataFrame(schema=schema)

    def _shape(self, rows: pl.DataFrame) -> pl.DataFrame:
        return rows.select(*self.keys, *ALERT_COLUMNS)

"""How well detectors find the simulator's faults: precision and recall per detector."""

from __future__ import annotations

import polars as pl

#: Which injected faults each detector kind is meant to find.
FINDS: dict[str, tuple[str, ...]] = {
    "threshold": ("spike", "dip"),
    "zscore": ("spike", "dip"),
    "mad": ("spike", "dip"),
    "ewma": ("spike", "dip"),
    "jump": ("spike", "dip"),
    "rate": ("spike", "dip"),
    "stuck": ("stuck",),
    "silent": ("silent", "dropout"),
}


def score(anomalies: pl.DataFrame, truth: pl.DataFrame, *, kinds: dict[str, str] | None = None,
          tolerance_ms: int = 2_000, until_ms: int | None = None) -> pl.DataFrame:
    """Precision and recall of every detector against the injected faults.

    ``anomalies`` has device, metric, time (ms) and detector; ``truth`` device, metric, fault,
    start, end. An anomaly is a true positive when a fault its detector is meant to find
    (:data:`FINDS`; ``kinds`` maps a detector's name to its kind when they differ) covers its
    time on the same device and metric, give or take ``tolerance_ms``. Recall counts the faults
    found at least once. Anomalies after ``until_ms`` (the end of the simulated time: every
    device falls silent there) are left out.

    >>> truth = pl.DataFrame({"device": ["d"], "metric": ["t"], "fault": ["spike"],
    ...                       "start": [5_000], "end": [5_000]})
    >>> found = pl.DataFrame({"device": ["d", "d"], "metric": ["t", "t"],
    ...                       "time": [5_000, 9_000], "detector": ["zscore", "zscore"]})
    >>> score(found, truth).select("detector", "precision", "recall").rows()
    [('zscore', 0.5, 1.0)]
    """
    kinds = kinds or {}
    if until_ms is not None:
        anomalies = anomalies.filter(pl.col("time") <= until_ms)
    rows = []
    for detector in sorted(set(anomalies["detector"].to_list())):
        kind = kinds.get(detector, detector)
        wanted = truth.filter(pl.col("fault").is_in(list(FINDS.get(kind, ()))))
        mine = anomalies.filter(pl.col("detector") == detector).with_row_index("_a")
        matches = mine.join(wanted.with_row_index("_f"), on=["device", "metric"],
                            how="inner").filter(
            (pl.col("time") >= pl.col("start") - tolerance_ms)
            & (pl.col("time") <= pl.col("end") + tolerance_ms))
        true_pos = matches["_a"].n_unique()
        found = matches["_f"].n_unique()
        rows.append({"detector": detector, "alerts": mine.height, "true_positives": true_pos,
                     "precision": true_pos / mine.height if mine.height else 0.0,
                     "faults": wanted.height, "found": found,
                     "recall": found / wanted.height if wanted.height else 0.0})
    return pl.DataFrame(rows, schema={"detector": pl.String, "alerts": pl.Int64,
                                      "true_positives": pl.Int64, "precision": pl.Float64,
                                      "faults": pl.Int64, "found": pl.Int64,
                                      "recall": pl.Float64})

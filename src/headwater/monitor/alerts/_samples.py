"""Metric samples as rules see them: from this process's registry or from metrics textfiles."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from headwater.monitor._metrics import REGISTRY

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    """One value of one series: ``headwater_rows_total{pipeline="orders",...} 1200``."""

    name: str
    labels: Labels
    value: float

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict."""
        return dict(self.labels)


def labels_of(mapping: dict[str, str]) -> Labels:
    """A sorted, hashable label set."""
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


def registry_samples(registry: CollectorRegistry = REGISTRY) -> list[Sample]:
    """Every sample of ``registry`` now (counters as ``*_total``, histograms as buckets)."""
    return [Sample(s.name, labels_of(s.labels), float(s.value))
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")]


def textfile_samples(directory: str | Path) -> list[Sample]:
    """Samples of every ``*.prom`` file in ``directory`` (what batch runs leave behind)."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    out: list[Sample] = []
    for file in sorted(folder.glob("*.prom")):
        try:
            text = file.read_text(encoding="utf-8")
        except OSError:
            continue  # being rewritten right now: the next evaluation reads it
        for family in text_string_to_metric_families(text):
            out.extend(Sample(s.name, labels_of(s.labels), float(s.value))
                       for s in family.samples if not s.name.endswith("_created"))
    return out


def matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    """Every wanted label is present and matches its glob (``orders*``)."""
    return all(fnmatchcase(labels.get(k, ""), str(v)) for k, v in wanted.items())


def select(samples: Iterable[Sample], name: str, wanted: dict[str, str]) -> list[Sample]:
    """Samples of metric ``name`` (``_total`` may be left off a counter) matching ``wanted``."""
    names = {name, f"{name}_total"}
    return [s for s in samples if s.name in names and matches(s.label_dict, wanted)]


def quantiles(samples: Iterable[Sample], histogram: str, q: float,
              wanted: dict[str, str]) -> dict[Labels, float]:
    """The ``q`` quantile of each series of a histogram, interpolated within its bucket like
    Prometheus's ``histogram_quantile`` (series with no observations are left out)."""
    series: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
    for s in select(samples, f"{histogram}_bucket", wanted):
        labels = s.label_dict
        upper = labels.pop("le")
        series[labels_of(labels)].append((math.inf if upper == "+Inf" else float(upper), s.value))
    out: dict[Labels, float] = {}
    for labels, buckets in series.items():
        buckets.sort()
        total = buckets[-1][1]
        if total <= 0:
            continue
        rank = q * total
        lower, below = 0.0, 0.0
        for upper, count in buckets:
            if count >= rank:
                if math.isinf(upper):
                    out[labels] = lower  # as Prometheus: the highest finite bound
                else:
                    inside = count - below
                    out[labels] = lower + (upper - lower) * ((rank - below) / inside
                                                             if inside else 1.0)
                break
            lower, below = upper, count
    return out

"""Anomaly detectors: each finds its fault in labelled synthetic series, and cutting the input
into other batches changes nothing."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.core import ConfigError
from headwater.stream import (
    Ewma,
    Jump,
    MedianDeviation,
    RateOfChange,
    Silence,
    Stuck,
    Threshold,
    ZScore,
)


def series(values, *, device="d1", start=0, step=1000) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame({"device": [device] * n, "metric": ["temp"] * n,
                         "time": [start + i * step for i in range(n)],
                         "value": [float(v) for v in values]})


def noisy(n=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 20 + np.sin(np.arange(n) / 40) + rng.normal(0, 0.3, n)


def found_at(detector, frame, **kw) -> list[int]:
    return detector.detect(frame, **kw)["time"].to_list()


@pytest.mark.parametrize("detector", [ZScore(), MedianDeviation(), Ewma(), Jump(delta=3),
                                      RateOfChange(max_per_second=3)])
def test_spike_is_found_and_nothing_else(detector):
    values = noisy()
    values[150] += 8
    times = found_at(detector, series(values))
    assert 150_000 in times
    # the spike itself, and at most the step back down after it
    assert set(times) <= {150_000, 151_000}


def test_threshold_finds_both_sides():
    got = Threshold(low=0, high=10).detect(series([5, 11, -1, 5]))
    assert got["time"].to_list() == [1000, 2000]
    assert got["reason"].to_list() == ["11.0 above the limit 10", "-1.0 below the limit 0"]


def test_stuck_sensor_is_reported_once_at_onset():
    values = list(noisy(100)) + [21.5] * 40 + list(noisy(20, seed=3))
    got = Stuck(window=20).detect(series(values))
    assert got["time"].to_list() == [119_000]  # the 20th equal reading


def test_silent_device_is_reported_once_until_it_speaks():
    det = Silence(after_ms=10_000)
    assert det.detect(series([1, 2, 3]), watermark_ms=5_000).is_empty()
    other = series([1], device="d2", start=20_000)
    got = det.detect(other, watermark_ms=20_000)
    assert got.select("device", "time").rows() == [("d1", 12_000)]
    assert det.detect(series([1], device="d2", start=21_000), watermark_ms=21_000).is_empty()
    det.detect(series([4], start=25_000), watermark_ms=25_000)   # d1 speaks again
    got = det.detect(series([1], device="d2", start=40_000), watermark_ms=40_000)
    assert got.select("device", "time").rows() == [("d1", 35_000)]


def test_series_are_judged_separately():
    a = series(noisy(), device="a")
    b_values = noisy(seed=1)
    b_values[200] += 9
    b = series(b_values, device="b")
    both = pl.concat([a, b]).sort("time")
    got = ZScore().detect(both)
    assert ("b", 200_000) in got.select("device", "time").rows()
    assert got.filter(pl.col("device") == "a").is_empty()


def test_bad_settings():
    with pytest.raises(ConfigError):
        Threshold()
    with pytest.raises(ConfigError):
        Ewma(alpha=0)
    with pytest.raises(ConfigError):
        Jump(direction="sideways")
    with pytest.raises(ConfigError, match="needs column"):
        ZScore().detect(pl.DataFrame({"x": [1]}))


DETERMINISTIC = [
    lambda: ZScore(window=8, min_periods=4, threshold=2.5),
    lambda: MedianDeviation(window=8, min_periods=4, threshold=3),
    lambda: Ewma(alpha=0.3, min_periods=3, threshold=3),
    lambda: Jump(delta=2),
    lambda: RateOfChange(max_per_second=2),
    lambda: Stuck(window=4),
    lambda: Threshold(low=-2, high=2),
]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.0, 1.0, 3.0, -4.0]), min_size=1,
                       max_size=60),
       devices=st.lists(st.sampled_from(["a", "b"]), min_size=60, max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=5),
       which=st.integers(0, len(DETERMINISTIC) - 1))
def test_batches_do_not_change_the_answer(values, devices, cuts, which):
    frame = pl.DataFrame({"device": devices[:len(values)], "metric": ["m"] * len(values),
                          "time": [i * 1000 for i in range(len(values))], "value": values})
    whole = DETERMINISTIC[which]().detect(frame)
    det = DETERMINISTIC[which]()
    parts, last = [], 0
    for cut in [*sorted(set(cuts)), len(values)]:
        parts.append(det.detect(frame.slice(last, max(cut - last, 0))))
        last = max(last, cut)
    split = pl.concat(parts)
    key = ["device", "time"]
    got, want = split.sort(key), whole.sort(key)
    assert got.select(key).rows() == want.select(key).rows()
    # running sums differ in the last bits with where a batch starts: equal up to rounding
    assert got["score"].to_list() == pytest.approx(want["score"].to_list(), rel=1e-9, abs=1e-12)


def test_snapshot_restore_is_the_same_as_going_on():
    values = noisy()
    values[250] += 8
    frame = series(values)
    first = Ewma()
    first.detect(frame.slice(0, 200))
    second = Ewma()
    second.restore(first.snapshot())
    assert found_at(second, frame.slice(200)) == [250_000]

"""The device simulator: faults happen where the ground truth says, and only there."""

from __future__ import annotations

import json

import polars as pl
import pytest

from headwater.core import ConfigError
from headwater.stream import Jump, Stuck
from headwater.stream.iot import FAULTS, score, simulate


def in_spans(messages: pl.DataFrame, truth: pl.DataFrame, fault: str) -> pl.DataFrame:
    spans = truth.filter(pl.col("fault") == fault)
    return messages.join(spans, on=["device", "metric"]).filter(
        pl.col("true_time").is_between(pl.col("start"), pl.col("end")))


def test_same_seed_same_messages():
    a = simulate(devices=5, seconds=3, faults=list(FAULTS), seed=4)
    b = simulate(devices=5, seconds=3, faults=list(FAULTS), seed=4)
    assert a.messages.equals(b.messages) and a.truth.equals(b.truth)


def test_clean_run_has_every_reading_once_and_valid_json():
    sim = simulate(devices=6, gateways=2, seconds=5, rate=2)
    assert sim.messages.height == 6 * 3 * 10
    assert sim.messages["message_id"].n_unique() == sim.messages.height
    assert sim.truth.is_empty()
    first = json.loads(sim.messages["payload"][0])
    assert set(first) == {"id", "device", "metric", "value", "unit", "ts"}
    assert sim.messages["send_time"].is_sorted()


def test_faults_are_where_the_truth_says():
    sim = simulate(devices=20, seconds=20, faults=list(FAULTS), fault_share=0.2, seed=2)
    m, truth = sim.messages, sim.truth
    assert in_spans(m, truth, "dropout").is_empty()
    assert in_spans(m, truth, "silent").is_empty()
    dup = in_spans(m, truth, "duplicate")
    assert dup.height and (dup.group_by("message_id").len()["len"] == 2).all()
    late = in_spans(m, truth, "late")
    assert ((late["send_time"] - late["true_time"]) >= 5_000).all()
    skew = in_spans(m, truth, "skew")
    assert ((skew["event_time"] - skew["true_time"]).abs() >= 2_000).all()
    bad = in_spans(m, truth, "malformed")
    for payload in bad["payload"].to_list():
        with pytest.raises(ValueError):
            json.loads(payload)
    stuck = in_spans(m, truth, "stuck")
    assert (stuck.group_by("device", "metric").agg(pl.col("value").n_unique())["value"]
            == 1).all()


def test_some_devices_report_other_units():
    sim = simulate(devices=10, seconds=1)
    units = set(sim.messages.select("metric", "unit").unique().rows())
    assert {("temperature", "C"), ("temperature", "F"), ("pressure", "kPa")} <= units


def test_detectors_score_against_the_truth():
    sim = simulate(devices=30, seconds=60, faults=["spike", "stuck"], fault_share=0.2, seed=5)
    m = sim.messages.filter(pl.col("unit").is_in(["C", "%", "hPa"]))
    found = pl.concat([Jump(time="event_time", delta=5).detect(m),
                       Stuck(time="event_time", window=5).detect(m)])
    table = score(found, sim.truth, until_ms=sim.settings["start_ms"] + 60_000)
    rows = {r["detector"]: r for r in table.iter_rows(named=True)}
    assert rows["jump"]["precision"] > 0.8 and rows["jump"]["recall"] > 0.5
    assert rows["stuck"]["precision"] > 0.8


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown fault"):
        simulate(faults=["gremlins"])
    with pytest.raises(ConfigError, match="positive"):
        simulate(devices=0)

"""Event-time windows: exact results at boundaries, lateness, sessions, and a reference model."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.core import ConfigError
from headwater.stream import Hopping, Session, Tumbling, WindowOperator


def frame(rows: list[tuple], *, partitioned: bool | None = None) -> pl.DataFrame:
    schema = {"device": pl.String, "time": pl.Int64, "value": pl.Float64}
    if partitioned or (partitioned is None and rows and len(rows[0]) > 3):
        schema["partition"] = pl.Int64
    return pl.DataFrame(rows, schema=schema, orient="row")


def windows(op: WindowOperator, *batches: list[tuple[str, int, float]]) -> list[tuple]:
    out = []
    for batch in batches:
        out += op.process(frame(batch)).results.select(
            "device", "window_start", "window_end", "count", "mean", "revision").rows()
    return out


def test_tumbling_boundaries_are_half_open():
    op = WindowOperator(Tumbling(10), keys=("device",))
    # 10 belongs to [10, 20), not [0, 10); the watermark 25 closes both
    assert windows(op, [("a", 0, 1.0), ("a", 9, 3.0), ("a", 10, 5.0), ("a", 25, 0.0)]) == [
        ("a", 0, 10, 2, 2.0, 0), ("a", 10, 20, 1, 5.0, 0)]
    assert op.watermark_ms == 25
    assert op.open_windows() == 1  # [20, 30) waits


def test_watermark_delay_holds_windows_back():
    op = WindowOperator(Tumbling(10), keys=("device",), watermark_delay_ms=5)
    assert windows(op, [("a", 1, 1.0), ("a", 12, 1.0)]) == []          # W = 7
    assert windows(op, [("a", 15, 1.0)]) == [("a", 0, 10, 1, 1.0, 0)]  # W = 10


def test_out_of_order_within_delay_counts_and_late_is_dropped():
    op = WindowOperator(Tumbling(10), keys=("device",), watermark_delay_ms=5)
    out = op.process(frame([("a", 14, 2.0), ("a", 3, 4.0)]))     # 3 is out of order, in time
    assert out.results.is_empty() and out.late_count == 0
    out = op.process(frame([("a", 30, 0.0)]))                   # W = 25: [0,10) and [10,20)
    assert out.results.select("window_start", "count").rows() == [(0, 1), (10, 1)]
    out = op.process(frame([("a", 5, 9.0), ("a", 26, 1.0)]))    # 5 is late: [0,10) fired
    assert out.late_count == 1
    assert out.late.is_empty()                                  # policy drop: counted only


def test_late_table_returns_the_late_events_as_given():
    op = WindowOperator(Tumbling(10), keys=("device",), late="table")
    op.process(frame([("a", 0, 1.0), ("a", 20, 1.0)]))
    out = op.process(frame([("a", 2, 7.0), ("a", 21, 1.0)]))
    assert out.late.rows() == [("a", 2, 7.0)]


def test_update_policy_re_emits_with_a_higher_revision_until_lateness_ends():
    op = WindowOperator(Tumbling(10), keys=("device",), late="update", allowed_lateness_ms=10)
    assert windows(op, [("a", 1, 1.0), ("a", 12, 1.0)]) == [("a", 0, 10, 1, 1.0, 0)]
    assert windows(op, [("a", 2, 3.0)]) == [("a", 0, 10, 2, 2.0, 1)]      # W 12 < 10 + 10
    out = op.process(frame([("a", 25, 0.0)]))                             # W 25: [0,10) gone
    assert out.results.select("window_start", "revision").rows() == [(10, 0)]
    out = op.process(frame([("a", 3, 5.0)]))
    assert out.late_count == 1 and out.results.is_empty()


def test_hopping_puts_each_event_in_size_over_hop_windows():
    op = WindowOperator(Hopping(20, 10), keys=("device",))
    got = windows(op, [("a", 5, 1.0), ("a", 15, 3.0), ("a", 100, 0.0)])
    assert got == [("a", -10, 10, 1, 1.0, 0), ("a", 0, 20, 2, 2.0, 0), ("a", 10, 30, 1, 3.0, 0)]


def test_sessions_split_on_gap_and_close_on_watermark():
    op = WindowOperator(Session(10), keys=("device",))
    got = windows(op, [("a", 0, 1.0), ("b", 1, 1.0), ("a", 5, 3.0), ("a", 15, 5.0),
                       ("a", 40, 0.0)])
    # a: 15 - 5 = 10 is a full gap, so 15 starts a new session
    assert got == [("a", 0, 15, 2, 2.0, 0), ("a", 15, 25, 1, 5.0, 0), ("b", 1, 11, 1, 1.0, 0)]
    assert op.open_windows() == 1
    # an event whose own window [t, t + gap) ended before the watermark is late
    out = op.process(frame([("b", 29, 1.0)]))
    assert out.late_count == 1


def test_aggregates_are_exact():
    op = WindowOperator(Tumbling(100), keys=("device",))
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    out = op.process(frame([("a", i, v) for i, v in enumerate(values)] + [("a", 500, 0.0)]))
    row = out.results.row(0, named=True)
    assert row["count"] == 8 and row["min"] == 1.0 and row["max"] == 9.0
    assert row["mean"] == pytest.approx(np.mean(values))
    assert row["stddev"] == pytest.approx(np.std(values, ddof=1))
    assert row["p95"] == pytest.approx(np.percentile(values, 95, method="linear"))


def test_keys_keep_their_type_and_datetimes_are_accepted():
    op = WindowOperator(Tumbling(1000), keys=("device", "metric"))
    events = pl.DataFrame({"device": [7, 7], "metric": ["t", "t"],
                           "time": pl.Series([0, 5000], dtype=pl.Datetime("ms", "UTC")),
                           "value": [1, 2]})
    out = op.process(events)
    assert out.results.schema["device"] == pl.Int64
    assert out.results.select("device", "window_start").rows() == [(7, 0)]


def test_snapshot_restore_continues_exactly():
    events = [("a", t, float(t)) for t in range(0, 100, 7)]
    whole = WindowOperator(Tumbling(10), keys=("device",))
    expected = windows(whole, events[:7], events[7:]) + whole.flush().results.select(
        "device", "window_start", "window_end", "count", "mean", "revision").rows()
    first = WindowOperator(Tumbling(10), keys=("device",))
    got = windows(first, events[:7])
    second = WindowOperator(Tumbling(10), keys=("device",))
    second.restore(first.snapshot())
    got += windows(second, events[7:]) + second.flush().results.select(
        "device", "window_start", "window_end", "count", "mean", "revision").rows()
    assert got == expected


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="multiple of hop"):
        Hopping(25, 10)
    with pytest.raises(ConfigError, match="session windows"):
        WindowOperator(Session(5), late="update")
    with pytest.raises(ConfigError, match="allowed_lateness needs"):
        WindowOperator(Tumbling(5), allowed_lateness_ms=3)
    with pytest.raises(ConfigError, match="lacks column"):
        WindowOperator(Tumbling(5)).process(pl.DataFrame({"x": [1]}))


# --- the reference: the same rules, one event at a time, in plain Python --------------------


def _aggregate(values: list[float]) -> tuple:
    n = len(values)
    std = float(np.std(values, ddof=1)) if n > 1 else None
    return (n, float(np.mean(values)), min(values), max(values), std,
            float(np.percentile(values, 95, method="linear")))


def reference(window, batches, delay, lateness, late):
    """Events are (key, time, value[, partition]); one watermark per partition."""
    size = window.gap_ms if isinstance(window, Session) else window.size_ms
    hop = window.hop_ms if isinstance(window, Hopping) else size
    newest: dict[int, int] = {}
    buffer: list[tuple] = []
    fired: dict[tuple, int] = {}
    out, late_count = [], 0

    def mark(p):
        return newest[p] - delay if p in newest else -(2**62)

    for batch in batches:
        touched = set()
        for event in batch:
            key, t, v = event[:3]
            p = event[3] if len(event) > 3 else 0
            before = mark(p)
            if isinstance(window, Session):
                if t + size <= before:
                    late_count += 1
                else:
                    buffer.append((p, key, t, v))
            else:
                last = (t // hop) * hop
                dropped = False
                for start in range(last - size + hop, last + 1, hop):
                    end = start + size
                    if end > before:
                        buffer.append((p, key, start, t, v))
                    elif late == "update" and end + lateness > before:
                        buffer.append((p, key, start, t, v))
                        touched.add((p, key, start))
                    else:
                        dropped = True
                late_count += dropped
            newest[p] = max(newest.get(p, t), t)
        if isinstance(window, Session):
            by_key = defaultdict(list)
            for p, key, t, v in buffer:
                by_key[(p, key)].append((t, v))
            buffer = []
            for (p, key), items in by_key.items():
                items.sort(key=lambda x: x[0])
                sessions, current = [], [items[0]]
                for prev, item in pairwise(items):
                    if item[0] - prev[0] >= size:
                        sessions.append(current)
                        current = []
                    current.append(item)
                sessions.append(current)
                for s in sessions:
                    if s[-1][0] + size <= mark(p):
                        out.append((key, s[0][0], s[-1][0] + size,
                                    *_aggregate([v for _, v in s]), 0))
                    else:
                        buffer += [(p, key, t, v) for t, v in s]
        else:
            groups = defaultdict(list)
            for p, key, start, _t, v in buffer:
                groups[(p, key, start)].append(v)
            for (p, key, start), values in sorted(groups.items()):
                if start + size <= mark(p) and ((p, key, start) not in fired
                                                or (p, key, start) in touched):
                    ident = (p, key, start)
                    revision = fired[ident] + 1 if ident in fired else 0
                    fired[ident] = revision
                    out.append((key, start, start + size, *_aggregate(values), revision))
            buffer = [b for b in buffer if b[2] + size + lateness > mark(b[0])]
            fired = {k: r for k, r in fired.items() if k[2] + size + lateness > mark(k[0])}
    return out, late_count


def _rounded(rows):
    return sorted(tuple(round(x, 6) if isinstance(x, float) and not math.isnan(x) else x
                        for x in row) for row in rows)


values = st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 3))
events = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 200), values),
                  max_size=15)
#: a key always goes to one partition, as partition_for sends it
PARTITION_OF = {"a": 0, "b": 1, "c": 1}
window_specs = st.one_of(
    st.builds(Tumbling, st.integers(1, 40)),
    st.tuples(st.integers(1, 15), st.integers(1, 4)).map(lambda h: Hopping(h[0] * h[1], h[0])),
    st.builds(Session, st.integers(1, 30)),
)


@settings(max_examples=150, deadline=None)
@given(window=window_specs, batches=st.lists(events, max_size=6),
       delay=st.integers(0, 30), lateness=st.integers(0, 30),
       late=st.sampled_from(["drop", "table", "update"]))
def test_operator_matches_the_reference(window, batches, delay, lateness, late):
    if isinstance(window, Session) and late == "update":
        late = "drop"
    if late != "update":
        lateness = 0
    batches = [[(k, t, v, PARTITION_OF[k]) for k, t, v in b] for b in batches]
    op = WindowOperator(window, keys=("device",), partition="partition",
                        watermark_delay_ms=delay, allowed_lateness_ms=lateness, late=late)
    got, late_count = [], 0
    for batch in batches:
        result = op.process(frame(batch, partitioned=True))
        got += result.results.select(
            "device", "window_start", "window_end", "count", "mean", "min", "max", "stddev",
            "p95", "revision").rows()
        late_count += result.late_count
        if late == "table":
            assert result.late.height == result.late_count
    expected, expected_late = reference(window, batches, delay, lateness, late)
    assert _rounded(got) == _rounded(expected)
    assert late_count == expected_late


def test_dedupe_within_horizon_keeps_the_first_arrival():
    from headwater.stream import Deduplicator

    d = Deduplicator(horizon_ms=100)
    kept, dropped = d.process(pl.DataFrame({"id": ["a", "b", "a"], "time": [0, 10, 20],
                                            "v": [1, 2, 3]}))
    assert kept["v"].to_list() == [1, 2] and dropped == 1
    kept, dropped = d.process(pl.DataFrame({"id": ["b", "c"], "time": [50, 150]}))
    assert kept["id"].to_list() == ["c"] and dropped == 1
    # 'a' (time 0) is past the horizon now (newest 150): a new 'a' is not a duplicate
    kept, dropped = d.process(pl.DataFrame({"id": ["a"], "time": [160]}))
    assert kept["id"].to_list() == ["a"] and dropped == 0
    restored = Deduplicator(horizon_ms=100)
    restored.restore(d.snapshot())
    assert restored.process(pl.DataFrame({"id": ["a", "c"], "time": [170, 170]}))[1] == 2


def _final(rows):
    """The last revision of every window (what an upserting sink holds)."""
    last = {}
    for row in rows:
        last[(row[0], row[1])] = row[:-1]
    return _rounded(last.values())


def _run(op, batches):
    rows = []
    for batch in batches:
        rows += op.process(frame(batch, partitioned=True)).results.rows()
    return rows + op.flush().results.rows()


@settings(max_examples=100, deadline=None)
@given(window=window_specs, stream=events, cuts=st.lists(st.integers(0, 15), max_size=4),
       delay=st.integers(0, 30), late=st.sampled_from(["drop", "update"]))
def test_batches_and_processes_do_not_change_the_results(window, stream, cuts, delay, late):
    """Cut into other batches, or split between two processes by partition: the same
    windows (last revision of each)."""
    if isinstance(window, Session):
        late = "drop"
    lateness = 10 if late == "update" else 0
    stream = [(k, t, v, PARTITION_OF[k]) for k, t, v in stream]

    def operator():
        return WindowOperator(window, keys=("device",), partition="partition",
                              watermark_delay_ms=delay, allowed_lateness_ms=lateness,
                              late=late)

    whole = _run(operator(), [stream])
    bounds = [0, *sorted(set(cuts)), len(stream)]
    pieces = [stream[a:b] for a, b in pairwise(bounds) if b > a]
    assert _final(_run(operator(), pieces)) == _final(whole)
    by_partition = [[e for e in stream if e[3] == p] for p in (0, 1)]
    split = _run(operator(), [by_partition[0]]) + _run(operator(), [by_partition[1]])
    assert _final(split) == _final(whole)

"""Quarantine rows: build them from failed checks, read them back, replay them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from headwater.config import Project
from headwater.core import POSITION, Batch, Extract, Source, State
from headwater.store import QUARANTINE_SCHEMA, QUARANTINE_TABLE, Store, open_store

#: The rule name of a record the source could not parse at all.
PARSE_RULE = "parse"


def quarantine_rows(
    invalid: pa.Table,
    *,
    run_id: str,
    pipeline: str,
    table: str,
    source: str,
    unit: str,
    first_id: int,
    origins: pa.Table | None = None,
) -> pa.Table:
    """Turn checked-out rows (``_hw_pos``, ``raw``, ``rules``, ``reasons``) into quarantine rows.

    ``origins`` (columns ``source``, ``position``, ``unit``, indexed by ``_hw_pos``) restores
    where each row first came from, for replays.
    """
    n = invalid.num_rows
    ids = pc.binary_join_element_wise(
        pa.array([f"{run_id}:"] * n, pa.string()),
        pc.cast(pa.array(range(first_id, first_id + n), pa.int64()), pa.string()),
        "",
    )
    positions = invalid[POSITION].cast(pa.int64())
    sources = pa.array([source] * n, pa.string())
    units = pa.array([unit] * n, pa.string())
    if origins is not None:
        sources = origins["source"].take(positions)
        units = origins["unit"].take(positions)
        positions = origins["position"].take(positions)
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "id": ids,
            "run_id": pa.array([run_id] * n, pa.string()),
            "pipeline": pa.array([pipeline] * n, pa.string()),
            "table_name": pa.array([table] * n, pa.string()),
            "source": sources,
            "position": positions,
            "unit": units,
            "raw": invalid["raw"].cast(pa.string()),
            "rules": invalid["rules"].cast(pa.list_(pa.string())),
            "reasons": invalid["reasons"].cast(pa.list_(pa.string())),
            "quarantined_at": pa.array([now.as_py()] * n, pa.timestamp("us", tz="UTC")),
            "replayed_by": pa.nulls(n, pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )


def rejects_as_invalid(rejects: pa.Table) -> pa.Table:
    """Rows a source could not parse, in the shape of a contract's invalid rows."""
    n = rejects.num_rows
    reasons = rejects["reason"].cast(pa.string()).combine_chunks()
    return pa.table(
        {
            POSITION: rejects[POSITION].cast(pa.int64()),
            "raw": rejects["raw"].cast(pa.string()),
            "rules": pa.array([[PARSE_RULE]] * n, pa.list_(pa.string())),
            "reasons": pa.ListArray.from_arrays(pa.array(range(n + 1), pa.int32()), reasons),
        }
    )


def quarantine_counts(project: Project, *, table: str | None = None,
                      store: str = "warehouse") -> pa.Table:
    """Rows waiting in the quarantine (not replayed), counted by table, pipeline and rule,
    with an example source; most rows first. A row failing two rules counts for both."""
    where, params = "replayed_by IS NULL", []
    if table:
        where, params = where + " AND table_name = ?", [table]
    target = open_store(project, store, read_only=True)
    try:
        return target.query(
            "SELECT table_name, pipeline, rule, count(*) AS n_rows, min(source) AS example_source "
            "FROM (SELECT table_name, pipeline, source, unnest(rules) AS rule "
            f"FROM {QUARANTINE_TABLE} WHERE {where}) AS q "
            "GROUP BY table_name, pipeline, rule ORDER BY n_rows DESC, rule", params)
    finally:
        target.close()


def waiting(project: Project, *, store: str = "warehouse") -> int:
    """How many rows wait in the quarantine of ``store`` (not replayed yet)."""
    target = open_store(project, store, read_only=True)
    try:
        return int(target.query(f"SELECT count(*) AS n FROM {QUARANTINE_TABLE} "
                                "WHERE replayed_by IS NULL")["n"][0].as_py())
    finally:
        target.close()


def quarantine_sample(project: Project, *, table: str | None = None, rule: str | None = None,
                      limit: int = 20, store: str = "warehouse") -> pa.Table:
    """The oldest waiting quarantined rows (of ``table``, failing ``rule``): id, table,
    source, position, unit, raw row, every reason and when it was quarantined."""
    where, params = ["replayed_by IS NULL"], []
    if table:
        where.append("table_name = ?")
        params.append(table)
    if rule:
        where.append("EXISTS (SELECT 1 FROM unnest(q.rules) AS r(x) WHERE r.x = ?)")
        params.append(rule)
    target = open_store(project, store, read_only=True)
    try:
        return target.query(
            "SELECT id, table_name, source, position, unit, raw, reasons, quarantined_at "
            f"FROM {QUARANTINE_TABLE} AS q WHERE {' AND '.join(where)} "
            f"ORDER BY quarantined_at, id LIMIT {int(limit)}", params)
    finally:
        target.close()


def rule_counts(invalid: pa.Table) -> dict[str, int]:
    """How many rows failed each rule (a row failing two rules counts for both)."""
    if invalid.num_rows == 0:
        return {}
    counts = pc.value_counts(pc.list_flatten(invalid["rules"]))
    return {v["values"].as_py(): v["counts"].as_py() for v in counts}


class QuarantineSource(Source):
    """The not-yet-replayed quarantined rows of one table, as a source to load again.

    Rows the source could not parse at all (rule ``parse``) are not replayed: fix the file and
    ingest it again.
    """

    kind = "quarantine"

    def __init__(
        self, store: Store, *, table: str, pipeline: str | None = None, ids: list[str] | None = None
    ) -> None:
        self.store = store
        self.table = table
        self.pipeline = pipeline
        self.ids = ids

    def pending(self) -> pa.Table:
        """The rows that would be replayed."""
        rows = self.store.query(
            f"SELECT id, pipeline, source, position, unit, raw, rules, quarantined_at "
            f"FROM {QUARANTINE_TABLE} WHERE table_name = ? AND replayed_by IS NULL",
            [self.table],
        )
        keep = _not_parse(rows["rules"])
        if self.pipeline:
            keep = pc.and_(keep, pc.equal(rows["pipeline"], self.pipeline))
        if self.ids:
            keep = pc.and_(keep, pc.is_in(rows["id"], pa.array(self.ids, pa.string())))
        rows = rows.filter(keep)
        return rows.take(
            pc.sort_indices(rows, [("quarantined_at", "ascending"), ("id", "ascending")])
        )

    def extracts(self, state: State) -> Iterator[Extract]:
        """One extract with every pending row; committing it marks them replayed."""
        rows = self.pending()
        if rows.num_rows == 0:
            return
        data = pajson.read_json(io.BytesIO("\n".join(rows["raw"].to_pylist()).encode()))
        data = data.append_column(POSITION, pa.array(range(rows.num_rows), pa.int64()))
        yield Extract(
            source=f"quarantine of {self.table}",
            key="",
            position={},
            batches=[Batch(data)],
            unit="record",
            meta={
                "replays": rows["id"].to_pylist(),
                "origins": rows.select(["source", "position", "unit"]),
            },
        )


def _not_parse(rules: pa.ChunkedArray) -> pa.Array:
    rules = rules.combine_chunks() if isinstance(rules, pa.ChunkedArray) else rules
    flat = pc.list_flatten(rules)
    parents = pc.list_parent_indices(rules)
    hit = pc.unique(pc.filter(parents, pc.equal(flat, PARSE_RULE)))
    return pc.invert(pc.is_in(pa.array(range(len(rules)), pa.int64()), hit.cast(pa.int64())))

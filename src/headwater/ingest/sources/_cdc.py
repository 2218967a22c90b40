"""PostgreSQL change data capture through logical decoding: inserts, updates and deletes.

A replication slot (plugin ``test_decoding``, shipped with PostgreSQL) keeps every change since
the position the warehouse last committed. Each run:

1. advances the slot to the lowest position the warehouse committed (so nothing is released
   before it is loaded, and a crash just replays changes);
2. snapshots tables never loaded (a full read; the position is the WAL position before it);
3. peeks the changes up to the current WAL position, parses them column-wise (Polars), and keeps
   the keys each table's changes touched (a table that was truncated is read whole instead, and
   its warehouse table emptied in the same transaction);
4. reads the current row of every touched key in one query per table: found rows are upserted,
   missing ones become tombstones (``hw_deleted = true``) — the net effect of the changes, typed
   exactly as a full read would type them.

Loads must use ``mode: merge`` on the primary key; replaying a change is then harmless.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from headwater.core import POSITION, Batch, ConfigError, Extract, Source, SourceError, State
from headwater.ingest.sources._sql import DELETED, SqlSource, _Target
from headwater.ingest.sources._sql_dialect import PostgresDialect, dialect_for
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config._sources import SqlSpec

log = get_logger(__name__)

_KEYS_PER_QUERY = 50_000


class PostgresCdcSource(Source):
    """Tables of a PostgreSQL database followed through a logical replication slot.

    Parameters
    ----------
    url:
        ``postgresql://...``; the user needs the REPLICATION attribute (or superuser).
    tables:
        Tables to follow; each needs a primary key.
    schema:
        Their schema (default ``public``).
    slot:
        Replication slot name; derived from the url, schema and tables when None.
    batch_rows:
        Rows per batch of snapshots.
    """

    kind = "postgres-cdc"

    def __init__(self, url: str, *, tables: list[str], schema: str | None = None,
                 slot: str | None = None, batch_rows: int = 100_000,
                 root: Path | None = None) -> None:
        self.url = url
        self.tables = list(tables)
        self.schema = schema or "public"
        self.slot = slot or _slot_name(url, self.schema, self.tables)
        self.batch_rows = batch_rows
        self.root = root

    @classmethod
    def from_spec(cls, spec: SqlSpec, root: Path | None = None) -> PostgresCdcSource:
        """Build from a ``kind: sql`` spec with ``cdc: true``."""
        if not spec.tables:
            raise ConfigError("cdc needs `tables: [...]` to follow",
                              hint="list the tables; each needs a primary key")
        return cls(spec.url.get_secret_value(), tables=spec.tables, schema=spec.db_schema,
                   slot=spec.slot, batch_rows=spec.batch_rows, root=root)

    def describe(self) -> str:
        """One line for people."""
        return f"postgresql cdc: {', '.join(self.tables)} (slot {self.slot})"

    def dialect(self) -> PostgresDialect:
        """The PostgreSQL dialect (CDC exists for PostgreSQL only)."""
        d = dialect_for(self.url, root=self.root)
        if not isinstance(d, PostgresDialect):
            raise ConfigError(f"cdc works with PostgreSQL, not {d.name}",
                              hint="use `cursor:` with soft deletes for other databases")
        return d

    def extracts(self, state: State) -> Iterator[Extract]:
        """Snapshots of new tables, then one extract of changes per table."""
        d = self.dialect()
        try:
            reader = SqlSource(self.url, tables=self.tables, schema=self.schema,
                               batch_rows=self.batch_rows, root=self.root)
            targets = reader.targets(d)
            for t in targets:
                if not t.primary_key:
                    raise ConfigError(f"cdc: table {t.key} has no primary key",
                                      hint="add one: changes are merged by key")
            self._check_wal(d)
            slot_lsn = self._ensure_slot(d, state, targets)
            committed = [state[self._key(t)]["lsn"] for t in targets if self._key(t) in state]
            if committed and len(committed) == len(targets):
                self._advance(d, min(committed, key=_lsn_int), slot_lsn)
            upto = d.execute("SELECT CAST(pg_current_wal_lsn() AS text)")[0][0]
            several = len(targets) > 1
            for t in targets:
                if self._key(t) not in state:
                    yield self._snapshot(d, reader, t, upto, several)
            changes = self._changes(d, upto)
            for t in targets:
                yield self._apply(d, reader, t, changes, upto, several)
        finally:
            d.close()

    # ------------------------------------------------------------------ slot

    def _key(self, t: _Target) -> str:
        return f"cdc:{self.slot}:{self.schema}.{t.name}"

    def _check_wal(self, d: PostgresDialect) -> None:
        level = d.execute("SELECT current_setting('wal_level')")[0][0]
        if level != "logical":
            raise SourceError(
                f"postgresql: wal_level is '{level}'; change data capture needs 'logical'",
                hint="ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL")

    def _ensure_slot(self, d: PostgresDialect, state: State, targets: list[_Target]) -> str:
        rows = d.execute("SELECT plugin, CAST(confirmed_flush_lsn AS text) FROM "
                         "pg_replication_slots WHERE slot_name = $1", [self.slot])
        if rows:
            plugin, lsn = rows[0]
            if plugin != "test_decoding":
                raise SourceError(f"replication slot '{self.slot}' uses plugin {plugin}",
                                  hint="set another `slot:` name; headwater uses test_decoding")
            return lsn
        if any(self._key(t) in state for t in targets):
            log.warning("cdc_slot_missing", slot=self.slot,
                        action="created again; tables are snapshotted again")
        lsn = d.execute("SELECT CAST(lsn AS text) FROM "
                        "pg_create_logical_replication_slot($1, 'test_decoding')", [self.slot])
        log.info("cdc_slot_created", slot=self.slot, lsn=lsn[0][0])
        return lsn[0][0]

    def _advance(self, d: PostgresDialect, lsn: str, confirmed: str) -> None:
        if _lsn_int(lsn) <= _lsn_int(confirmed):
            return
        d.execute("SELECT pg_replication_slot_advance($1, CAST($2 AS pg_lsn))", [self.slot, lsn])
        log.info("cdc_slot_advanced", slot=self.slot, lsn=lsn)

    def drop_slot(self) -> None:
        """Remove the replication slot (it holds WAL on the server until dropped)."""
        d = self.dialect()
        d.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                  "WHERE slot_name = $1", [self.slot])

    # ------------------------------------------------------------------ reading

    def _snapshot(self, d: PostgresDialect, reader: SqlSource, t: _Target, upto: str,
                  several: bool, *, truncate: bool = False) -> Extract:
        inner = reader._extract(d, t, State(), several=several)
        assert inner is not None
        return Extract(source=f"{t.label} (snapshot)", key=self._key(t),
                       position={"lsn": upto, "snapshot": True},
                       batches=(_flag(b, deleted=False) for b in inner.batches),
                       unit="row", meta={**inner.meta, "cdc": "snapshot", "truncate": truncate})

    def _changes(self, d: PostgresDialect, upto: str) -> pa.Table:
        """Changes since the slot's position up to ``upto``: (lsn, data)."""
        sql = ("SELECT CAST(lsn AS text) AS lsn, data FROM pg_logical_slot_peek_changes("
               f"{d.param(0)}, CAST({d.param(1)} AS pg_lsn), NULL, 'include-xids', '0', "
               "'skip-empty-xacts', '1')")
        parts = list(d.read(sql, [self.slot, upto]))
        table = pa.Table.from_batches(parts) if parts else pa.table(
            {"lsn": pa.array([], pa.string()), "data": pa.array([], pa.string())})
        log.info("cdc_changes_read", slot=self.slot, changes=table.num_rows, upto=upto)
        return table

    def _apply(self, d: PostgresDialect, reader: SqlSource, t: _Target, changes: pa.Table,
               upto: str, several: bool) -> Extract:
        name = _decoded_name(self.schema, t.name)
        if truncated(changes, name):
            log.warning("cdc_truncate", table=t.key,
                        action="the warehouse table is emptied and the table read again")
            return self._snapshot(d, reader, t, upto, several, truncate=True)
        keys = touched_keys(changes, name, t.primary_key)
        meta: dict[str, Any] = {"table": t.name, "primary_key": t.primary_key,
                                "dialect": "postgres", "cdc": "changes",
                                "keys_touched": len(keys)}
        if several:
            meta["table_suffix"] = t.name
        return Extract(source=f"{t.label} (changes)", key=self._key(t),
                       position={"lsn": upto}, batches=self._current_rows(d, t, keys),
                       unit="row", meta=meta)

    def _current_rows(self, d: PostgresDialect, t: _Target,
                      keys: list[list[str | None]]) -> Iterator[Batch]:
        """The current row of every touched key; a key without a row is a tombstone."""
        assert t.columns is not None
        pk = t.primary_key
        types = {c.name: c.type_sql for c in t.columns}
        select = []
        for c in t.columns:
            if c.name in pk:
                i = pk.index(c.name)
                source = (f"COALESCE(t.{d.quote(c.name)}, CAST(k.v->>{i} AS {types[c.name]}))")
                expr = d.select_expr(c, source)
                if expr == source:
                    expr = f"{source} AS {d.quote(c.name)}"
                select.append(expr)
            else:
                expr = d.select_expr(c, f"t.{d.quote(c.name)}")
                select.append(expr if " AS " in expr else f"{expr} AS {d.quote(c.name)}")
        join = " AND ".join(f"t.{d.quote(k)} = CAST(k.v->>{i} AS {types[k]})"
                            for i, k in enumerate(pk))
        sql = (f"SELECT {', '.join(select)}, t.{d.quote(pk[0])} IS NULL AS {DELETED} "
               f"FROM jsonb_array_elements(CAST({d.param(0)} AS jsonb)) AS k(v) "
               f"LEFT JOIN {t.from_sql} AS t ON {join}")
        offset = 0
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = json.dumps(keys[start:start + _KEYS_PER_QUERY])
            for batch in d.read(sql, [chunk]):
                if batch.num_rows == 0:
                    continue
                table = pa.Table.from_batches([batch])
                table = table.append_column(POSITION, pa.array(
                    np.arange(offset, offset + table.num_rows, dtype=np.int64)))
                offset += table.num_rows
                yield Batch(data=table)


def touched_keys(changes: pa.Table, table_name: str, primary_key: list[str]
                 ) -> list[list[str | None]]:
    """The primary keys (as text) that ``test_decoding`` changes of one table touched.

    Parsed column-wise with Polars: inserts and updates give the new key, updates that changed
    the key also the old one, deletes the old one.

    >>> t = pa.table({"lsn": ["0/1", "0/2"], "data": [
    ...     "table public.t: INSERT: id[integer]:1 v[text]:'a b'",
    ...     "table public.t: DELETE: id[integer]:7"]})
    >>> sorted(touched_keys(t, "public.t", ["id"]))
    [['1'], ['7']]
    """
    import polars as pl

    if changes.num_rows == 0:
        return []
    prefix = f"table {table_name}: "
    frame = pl.from_arrow(changes.select(["data"]))
    assert isinstance(frame, pl.DataFrame)
    rows = frame.filter(pl.col("data").str.starts_with(prefix)).select(
        pl.col("data").str.slice(len(prefix)).alias("rest"))
    if rows.height == 0:
        return []
    rows = rows.filter(~pl.col("rest").str.starts_with("TRUNCATE")).with_columns(
        pl.col("rest").str.extract(r"^(INSERT|UPDATE|DELETE): ", 1).alias("op"),
        pl.col("rest").str.replace(r"^(INSERT|UPDATE|DELETE): ", "").alias("body"),
    )
    if rows.filter(pl.col("body").str.starts_with("(no-tuple-data)")).height:
        raise SourceError(f"cdc: deletes of {table_name} carry no key",
                          hint=f"ALTER TABLE {table_name} REPLICA IDENTITY DEFAULT "
                          "(it needs a primary key)")
    has_old = pl.col("body").str.starts_with("old-key: ")
    parts = rows.with_columns(
        pl.when(has_old).then(pl.col("body").str.extract(r"^old-key: (.*?) new-tuple: ", 1))
        .otherwise(pl.when(pl.col("op") == "DELETE").then(pl.col("body"))).alias("old"),
        pl.when(has_old).then(pl.col("body").str.replace(r"^old-key: .*? new-tuple: ", ""))
        .otherwise(pl.when(pl.col("op") != "DELETE").then(pl.col("body"))).alias("new"),
    )
    tuples = pl.concat([parts.select(pl.col("old").alias("t")),
                        parts.select(pl.col("new").alias("t"))]).drop_nulls()
    key_cols = []
    for i, column in enumerate(primary_key):
        pattern = re.escape(_decoded_ident(column)) + r"\[[^\]]+\]:('(?:[^']|'')*'|\S+)"
        raw = pl.col("t").str.extract(r"(?:^| )" + pattern, 1)
        quoted = raw.str.starts_with("'")
        value = (pl.when(raw == "null").then(None)
                 .when(quoted).then(raw.str.slice(1, raw.str.len_chars() - 2)
                                    .str.replace_all("''", "'", literal=True))
                 .otherwise(raw))
        key_cols.append(value.alias(f"k{i}"))
    keys = tuples.select(key_cols).unique(maintain_order=True)
    return [list(row) for row in keys.iter_rows()]


def truncated(changes: pa.Table, table_name: str) -> bool:
    """True if ``test_decoding`` changes include a TRUNCATE of the table.

    >>> truncated(pa.table({"lsn": ["0/1"], "data": ["table public.t: TRUNCATE: (no-flags)"]}),
    ...           "public.t")
    True
    """
    import pyarrow.compute as pc

    if changes.num_rows == 0:
        return False
    return bool(pc.any(pc.starts_with(changes["data"], f"table {table_name}: TRUNCATE:")).as_py())


def _decoded_ident(name: str) -> str:
    """How test_decoding prints an identifier (PostgreSQL's quote_ident rules)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _decoded_name(schema: str, table: str) -> str:
    return f"{_decoded_ident(schema)}.{_decoded_ident(table)}"


def _flag(batch: Batch, *, deleted: bool) -> Batch:
    data = batch.data
    flags = pa.array(np.full(data.num_rows, deleted))
    if POSITION in data.column_names:
        i = data.column_names.index(POSITION)
        data = data.add_column(i, DELETED, flags)
    else:
        data = data.append_column(DELETED, flags)
    return Batch(data=data, rejects=batch.rejects, children=batch.children)


def _lsn_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _slot_name(url: str, schema: str, tables: list[str]) -> str:
    host = re.sub(r"^[^@]*@", "", url.split("://", 1)[-1])  # no credentials in the digest input
    digest = hashlib.sha1(f"{host}|{schema}|{','.join(sorted(tables))}".encode()).hexdigest()
    return f"headwater_{digest[:16]}"

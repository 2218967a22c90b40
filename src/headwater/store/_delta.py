"""A lake of Delta tables (local folder or S3), loaded exactly once without cross-table commits.

Delta commits one table at a time, so a transaction here is made *idempotent per table* instead
of atomic across tables:

* Writes are buffered (bounded: memory, then local spill files) and nothing is committed until the
  ``transaction()`` block ends cleanly; an exception commits nothing.
* At the end, each table gets one Delta commit, in a fixed order: the quarantine, the data tables,
  then ``_hw_state`` (the positions). Every commit carries the positions in its commit metadata
  and an application transaction ``headwater:<pipeline>:<token>:<n>``, where ``token`` is a hash of
  the pipeline, the positions before and after, and the state epoch.
* ``state()`` reads ``_hw_state``. After a crash between two commits the positions are not there,
  so the same extract is loaded again; its token is the same, and every table that already holds
  that commit (``DeltaTable.transaction_version(app_id)``) is skipped. Nothing is lost and nothing
  is written twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import (
    POSITION,
    ConfigError,
    NotFoundError,
    SinkError,
    State,
    WriteMode,
    redact,
    register_secret,
)
from headwater.core._arrow import is_binary, is_text, uuids_as_text
from headwater.monitor import get_logger
from headwater.store._base import (
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    STATE_TABLE,
    Store,
    Transaction,
    quote,
)
from headwater.store._evolve import plan_evolution
from headwater.store._prepare import dedupe_on_key, prepare_rows
from headwater.store._spill import DEFAULT_MEMORY_LIMIT, SpillBuffer, SpillPool

log = get_logger(__name__)

_STATE_SCHEMA = pa.schema([
    ("pipeline", pa.string()),
    ("key", pa.string()),            # null: "every position before this seq is cleared"
    ("position", pa.string()),       # JSON
    ("run_id", pa.string()),
    ("seq", pa.int64()),             # the pipeline's transaction number
    ("token", pa.string()),
    ("updated_at", pa.timestamp("us", tz="UTC")),
])
_SECRET_OPTION = ("SECRET", "TOKEN", "PASSWORD", "KEY")
#: Compact ``_hw_state`` every this many commits (it receives one small file per transaction).
_COMPACT_EVERY = 50


class DeltaStore(Store):
    """A lake of Delta tables: one table per name under ``uri``.

    Parameters
    ----------
    uri:
        A local folder or ``s3://bucket/prefix``.
    storage_options:
        deltalake storage options, e.g. ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_S3_ALLOW_UNSAFE_RENAME``.
        Secret values never appear in logs or errors.
    memory_limit:
        Bytes one transaction buffers in memory before spilling to local Arrow files.

    >>> import tempfile, pyarrow as pa
    >>> lake = DeltaStore(tempfile.mkdtemp())
    >>> with lake.transaction("demo", "run-1") as tx:
    ...     tx.write("t", pa.table({"a": [1, 2]}))
    ...     tx.set_state("a.csv", {"sha256": "ab"})
    2
    >>> lake.query("SELECT max(a) AS m FROM t").to_pylist(), dict(lake.state("demo"))
    ([{'m': 2}], {'a.csv': {'sha256': 'ab'}})
    """

    kind = "delta"

    def __init__(self, uri: str | Path, *, storage_options: dict[str, str] | None = None,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.uri = str(uri).rstrip("/")
        self.storage_options = {k: str(v) for k, v in (storage_options or {}).items()}
        self.memory_limit = memory_limit
        for key, value in self.storage_options.items():
            if any(word in key.upper() for word in _SECRET_OPTION):
                register_secret(value)

    # -- where tables live ------------------------------------------------------------------

    @property
    def local_path(self) -> Path | None:
        """The folder, when the lake is on local disk."""
        if self.uri.startswith("file://"):
            return Path(self.uri.removeprefix("file://"))
        return None if "://" in self.uri else Path(self.uri)

    def table_uri(self, table: str) -> str:
        """Where ``table`` lives."""
        _check_name(table)
        return f"{self.uri}/{table}"

    def _options(self) -> dict[str, str] | None:
        return self.storage_options or None

    def open_table(self, table: str) -> Any | None:
        """The ``deltalake.DeltaTable`` called ``table``, or None if it does not exist yet."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.table_uri(table), storage_options=self._options())
        except TableNotFoundError:
            return None
        except Exception as exc:
            raise self._error(f"cannot open Delta table '{table}'", exc) from None

    def _error(self, what: str, exc: BaseException, hint: str | None = None) -> SinkError:
        return SinkError(f"{what} at {redact(self.uri)}: {redact(str(exc)).strip()}",
                         hint=hint or "check the lake's uri and storage_options in headwater.yaml "
                         "(endpoint, region, credentials)")

    # -- Store ------------------------------------------------------------------------------

    def state(self, pipeline: str) -> State:
        """Positions committed for ``pipeline`` (read from ``_hw_state``)."""
        return State(self._ledger(pipeline).positions)

    def _ledger(self, pipeline: str) -> _Ledger:
        dt = self.open_table(STATE_TABLE)
        if dt is None:
            return _Ledger()
        rows = dt.to_pyarrow_dataset().to_table(
            filter=pc.field("pipeline") == pipeline, columns=["key", "position", "seq"])
        if rows.num_rows == 0:
            return _Ledger()
        seq = pc.max(rows["seq"]).as_py()
        clears = rows.filter(pc.is_null(rows["key"]))
        epoch = pc.max(clears["seq"]).as_py() if clears.num_rows else 0
        live = rows.filter(pc.and_(pc.is_valid(rows["key"]), pc.greater_equal(rows["seq"], epoch)))
        live = live.sort_by("seq")
        latest = live.group_by("key", use_threads=False).aggregate([("position", "last")])
        positions = dict(zip(latest["key"].to_pylist(), latest["position_last"].to_pylist(),
                             strict=True))
        return _Ledger({k: json.loads(v) for k, v in positions.items()}, seq=seq, epoch=epoch)

    @contextmanager
    def transaction(self, pipeline: str, run_id: str) -> Iterator[Transaction]:
        """Buffer writes; at a clean exit commit each table once, idempotently (see module doc)."""
        pool = SpillPool(self.memory_limit)
        try:
            tx = _DeltaTransaction(self, pipeline, run_id, self._ledger(pipeline), pool)
            yield tx
            tx.commit()
        finally:
            pool.close()

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run DuckDB SQL over the lake's tables (``?`` placeholders); return Arrow."""
        import duckdb

        con = self._duckdb(sql)
        try:
            relation = con.sql(sql, params=params or None)
            return pa.table({}) if relation is None else relation.to_arrow_table()
        except duckdb.Error as exc:
            raise SinkError(f"query failed: {exc}",
                            hint=f"tables in this lake: {', '.join(self.tables()) or 'none yet'}"
                            ) from None
        finally:
            con.close()

    def batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's result without holding it all in memory."""
        con = self._duckdb(sql)
        try:
            yield from con.sql(sql).to_arrow_reader(batch_rows)
        finally:
            con.close()

    def _duckdb(self, sql: str) -> Any:
        """An in-memory DuckDB with the tables ``sql`` names registered as views."""
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        text = sql.lower()
        for name in [*self.tables(), QUARANTINE_TABLE, STATE_TABLE]:
            if name.lower() not in text:
                continue
            dt = self.open_table(name)
            if dt is not None:
                con.register(name, dt.to_pyarrow_dataset())
            elif name == QUARANTINE_TABLE:
                con.register(name, QUARANTINE_SCHEMA.empty_table())
        return con

    def read_table(self, table: str) -> pa.Table:
        """A whole table as Arrow."""
        dt = self.open_table(table)
        if dt is None:
            raise NotFoundError(f"no table '{table}' in the lake {self.uri}",
                                hint=f"tables: {', '.join(self.tables()) or 'none yet'}")
        return dt.to_pyarrow_dataset().to_table()

    def tables(self) -> list[str]:
        """User tables in the lake (``_hw_*`` excluded)."""
        root = self.local_path
        if root is not None:
            names = [p.name for p in root.iterdir() if (p / "_delta_log").is_dir()] \
                if root.is_dir() else []
        else:
            names = self._remote_tables()
        return sorted(n for n in names if not n.startswith("_hw_"))

    def _remote_tables(self) -> list[str]:
        import pyarrow.fs as pafs
        from deltalake.fs import DeltaStorageHandler

        try:
            fs = pafs.PyFileSystem(DeltaStorageHandler(self.uri, self.storage_options))
            infos = fs.get_file_info(pafs.FileSelector("", allow_not_found=True))
            dirs = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
            logs = fs.get_file_info([f"{d}/_delta_log" for d in dirs])
        except Exception as exc:
            raise self._error("cannot list the lake", exc) from None
        return [d for d, info in zip(dirs, logs, strict=True)
                if info.type == pafs.FileType.Directory]

    # -- commits ----------------------------------------------------------------------------

    def _commit(self, table: str, op: _Op, app_id: str, seq: int, meta: dict[str, str]) -> bool:
        """Commit one buffered operation, unless ``table`` already holds ``app_id``."""
        from deltalake import CommitProperties
        from deltalake import Transaction as AppTransaction

        dt = self.open_table(table)
        if dt is not None and dt.transaction_version(app_id) is not None:
            log.info("delta_commit_skipped", table=table, app_id=app_id,
                     reason="already committed by an earlier attempt")
            return False
        props = CommitProperties(custom_metadata=meta,
                                 app_transactions=[AppTransaction(app_id=app_id, version=seq)])
        try:
            if op.mode == "mark":
                self._mark(dt, op, props)
            elif op.mode == "delete":
                if dt is not None:
                    dt.delete(commit_properties=props)
            elif op.mode == "merge":
                self._merge(table, dt, op, props)
            else:
                self._append(table, dt, op, props)
        except SinkError:
            raise
        except Exception as exc:
            raise self._error(f"commit to '{table}' failed", exc,
                              "nothing of this transaction's remaining tables was committed; "
                              "run the load again once the cause is fixed (it skips what is "
                              "already committed)") from None
        return True

    def _append(self, table: str, dt: Any, op: _Op, props: Any) -> None:
        from deltalake import write_deltalake

        overwrite = op.mode == "overwrite"
        existing = None if dt is None or overwrite else _schema_of(dt)
        target = _unify(table, existing, op.buffer.schemas)
        batches: Iterable[pa.RecordBatch] = op.buffer.batches()
        mode, schema_mode = ("overwrite", "overwrite") if overwrite else ("append", None)
        if existing is not None and _widened(existing, target):
            # Delta cannot alter a column's type: rewrite the table, widened, in this one commit.
            batches = itertools.chain(dt.to_pyarrow_dataset().to_batches(), batches)
            mode, schema_mode = "overwrite", "overwrite"
        elif existing is not None and len(target) > len(existing):
            schema_mode = "merge"
        reader = pa.RecordBatchReader.from_batches(target, _conform(target, batches))
        write_deltalake(dt if dt is not None else self.table_uri(table), reader, mode=mode,
                        schema_mode=schema_mode, storage_options=self._options(),
                        commit_properties=props)

    def _merge(self, table: str, dt: Any, op: _Op, props: Any) -> None:
        from deltalake import write_deltalake

        keys = op.primary_key
        incoming = _unify(table, None, op.buffer.schemas)
        data = pa.Table.from_batches(list(_conform(incoming, op.buffer.batches())), incoming)
        data = dedupe_on_key(data, keys, table)
        if dt is None:
            write_deltalake(self.table_uri(table), data, storage_options=self._options(),
                            commit_properties=props)
            return
        existing = _schema_of(dt)
        target = _unify(table, existing, [data.schema])
        data = pa.Table.from_batches(list(_conform(target, data.to_batches())), target)
        nulls = any(data[k].null_count for k in keys)
        match = " AND ".join(f"(t.{quote(k)} IS NOT DISTINCT FROM s.{quote(k)})" if nulls
                             else f"(t.{quote(k)} = s.{quote(k)})" for k in keys)
        if _widened(existing, target):
            self._rewrite_merged(table, dt, data, match, target, props)
            return
        (dt.merge(source=data, predicate=match, source_alias="s", target_alias="t",
                  merge_schema=len(target) > len(existing), commit_properties=props)
         .when_matched_update_all().when_not_matched_insert_all().execute())

    def _rewrite_merged(self, table: str, dt: Any, data: pa.Table, match: str, target: pa.Schema,
                        props: Any) -> None:
        """Merge that widens a column: rows not replaced + the load, as one overwrite commit."""
        import duckdb
        from deltalake import write_deltalake

        con = duckdb.connect()
        try:
            con.register("_hw_t", dt.to_pyarrow_dataset())
            con.register("_hw_s", data)
            kept = con.sql(f"SELECT * FROM _hw_t t WHERE NOT EXISTS "
                           f"(SELECT 1 FROM _hw_s s WHERE {match})").to_arrow_reader(100_000)
            batches = itertools.chain(kept, data.to_batches())
            reader = pa.RecordBatchReader.from_batches(target, _conform(target, batches))
            write_deltalake(self.table_uri(table), reader, mode="overwrite",
                            schema_mode="overwrite", storage_options=self._options(),
                            commit_properties=props)
        finally:
            con.close()

    def _mark(self, dt: Any, op: _Op, props: Any) -> None:
        if dt is None or not op.ids:
            return
        run_id = "'" + op.replayed_by.replace("'", "''") + "'"
        (dt.merge(source=pa.table({"id": pa.array(sorted(set(op.ids)), pa.string())}),
                  predicate="t.id = s.id", source_alias="s", target_alias="t",
                  commit_properties=props)
         .when_matched_update(updates={"replayed_by": run_id}).execute())

    def _commit_state(self, rows: pa.Table, app_id: str, seq: int, meta: dict[str, str]) -> None:
        from deltalake import CommitProperties, write_deltalake
        from deltalake import Transaction as AppTransaction

        dt = self.open_table(STATE_TABLE)
        if dt is not None and dt.transaction_version(app_id) is not None:
            return
        props = CommitProperties(custom_metadata=meta,
                                 app_transactions=[AppTransaction(app_id=app_id, version=seq)])
        try:
            write_deltalake(dt if dt is not None else self.table_uri(STATE_TABLE), rows,
                            mode="append", storage_options=self._options(),
                            commit_properties=props)
            if dt is not None and (dt.version() + 1) % _COMPACT_EVERY == 0:
                dt.update_incremental()
                dt.optimize.compact()
        except Exception as exc:
            raise self._error("cannot record the positions", exc) from None


@dataclass
class _Ledger:
    """What ``_hw_state`` says about one pipeline."""

    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0      # the last transaction number recorded
    epoch: int = 0    # the seq of the last clear_state


@dataclass
class _Op:
    """One buffered operation on one table, committed as one Delta commit."""

    mode: str                      # append | overwrite | merge | mark | delete
    buffer: SpillBuffer
    primary_key: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    replayed_by: str = ""


class _DeltaTransaction(Transaction):
    def __init__(self, store: DeltaStore, pipeline: str, run_id: str, ledger: _Ledger,
                 pool: SpillPool) -> None:
        self.store = store
        self.pipeline = pipeline
        self.run_id = run_id
        self.ledger = ledger
        self.pool = pool
        self._ops: dict[str, list[_Op]] = {}
        self._replaced: set[str] = set()
        self._positions: dict[str, dict[str, Any]] = {}
        self._cleared = False
        self._marks: list[_Op] = []

    def _op(self, table: str, mode: str, primary_key: list[str] | None = None) -> _Op:
        ops = self._ops.setdefault(table, [])
        last = ops[-1] if ops else None
        if last is not None:
            follows = last.mode == mode or (last.mode, mode) == ("overwrite", "append")
            if follows and (mode != "merge" or last.primary_key == (primary_key or [])):
                return last
        op = _Op(mode, self.pool.buffer(), list(primary_key or []))
        ops.append(op)
        return op

    def write(self, table: str, data: pa.Table, *, mode: WriteMode = "append",
              primary_key: list[str] | None = None) -> int:
        _check_name(table)
        data = normalise(prepare_rows(data.drop_columns(
            [c for c in (POSITION,) if c in data.column_names])))
        if mode == "merge":
            data = dedupe_on_key(data, primary_key or [], table)
        if mode == "replace":
            if table not in self._replaced:
                self._replaced.add(table)
                self._ops[table] = []       # a replace forgets what this transaction wrote before
                op = self._op(table, "overwrite")
            else:
                op = self._op(table, "append")
        else:
            op = self._op(table, mode, primary_key)
        op.buffer.append(data)
        return data.num_rows

    def delete_all(self, table: str) -> None:
        _check_name(table)
        self._ops[table] = [_Op("delete", self.pool.buffer())]  # what came before goes too

    def quarantine(self, rows: pa.Table) -> int:
        if rows.num_rows == 0:
            return 0
        data = rows.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)
        self._op(QUARANTINE_TABLE, "append").buffer.append(normalise(data))
        return rows.num_rows

    def set_state(self, key: str, position: dict[str, Any]) -> None:
        self._positions[key] = position

    def clear_state(self) -> None:
        self._cleared = True
        self._positions.clear()

    def mark_replayed(self, ids: list[str], run_id: str) -> None:
        if ids:
            self._marks.append(_Op("mark", self.pool.buffer(), ids=list(ids), replayed_by=run_id))

    def _token(self) -> str:
        """Same for a crashed attempt and its re-run; different for any other transaction."""
        replayed = sorted({i for op in self._marks for i in op.ids})
        if not self._positions and not self._cleared and not replayed:
            return uuid.uuid4().hex
        before = self.ledger.positions
        basis = {
            "pipeline": self.pipeline,
            "epoch": self.ledger.epoch,
            "cleared": self._cleared,
            "positions": sorted([k, before.get(k), v] for k, v in self._positions.items()),
            "replayed": replayed,
        }
        text = json.dumps(basis, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def commit(self) -> None:
        token = self._token()
        seq = self.ledger.seq + 1
        meta = {
            "headwater.pipeline": self.pipeline,
            "headwater.run_id": self.run_id,
            "headwater.token": token,
            "headwater.seq": str(seq),
            "headwater.state": json.dumps(self._positions, sort_keys=True, default=str),
        }
        # quarantined rows first, then the data, then replayed marks, then the positions: a
        # crash anywhere leaves the positions unrecorded, and the re-run skips what is done.
        order = sorted(self._ops, key=lambda t: t != QUARANTINE_TABLE)
        for table in order:
            for i, op in enumerate(self._ops[table]):
                app_id = f"headwater:{self.pipeline}:{token}:{i}"
                self.store._commit(table, op, app_id, seq, meta)
        for i, op in enumerate(self._marks):
            app_id = f"headwater:{self.pipeline}:{token}:mark{i}"
            self.store._commit(QUARANTINE_TABLE, op, app_id, seq, meta)
        if self._positions or self._cleared:
            self.store._commit_state(self._state_rows(seq, token),
                                     f"headwater:{self.pipeline}:{token}:state", seq, meta)

    def _state_rows(self, seq: int, token: str) -> pa.Table:
        keys: list[str | None] = ([None] if self._cleared else []) + list(self._positions)
        positions = ([None] if self._cleared else []) + [
            json.dumps(p, default=str) for p in self._positions.values()]
        n = len(keys)
        return pa.table({
            "pipeline": [self.pipeline] * n,
            "key": keys,
            "position": positions,
            "run_id": [self.run_id] * n,
            "seq": [seq] * n,
            "token": [token] * n,
            "updated_at": [datetime.now(UTC)] * n,
        }, schema=_STATE_SCHEMA)


# -- types ------------------------------------------------------------------------------------


def delta_type(type_: pa.DataType, column: str = "?") -> pa.DataType:
    """The Arrow type a column of this type reads back as from a Delta table.

    >>> delta_type(pa.timestamp("ns", tz="Europe/Paris"))
    TimestampType(timestamp[us, tz=UTC])
    >>> delta_type(pa.uint32())
    DataType(int64)
    """
    if pa.types.is_dictionary(type_):
        return delta_type(type_.value_type, column)
    if isinstance(type_, pa.BaseExtensionType):
        return delta_type(type_.storage_type, column)
    if pa.types.is_null(type_) or is_text(type_):
        return pa.string()
    if pa.types.is_unsigned_integer(type_):
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(type_.bit_width,
                                                                    pa.decimal128(20, 0))
    if pa.types.is_float16(type_):
        return pa.float32()
    if pa.types.is_decimal(type_):
        if type_.precision > 38:
            raise _unsupported(column, type_, "decimals wider than 38 digits")
        return pa.decimal128(type_.precision, type_.scale)
    if is_binary(type_) or pa.types.is_fixed_size_binary(type_):
        return pa.binary()
    if pa.types.is_date(type_):
        return pa.date32()
    if pa.types.is_timestamp(type_):
        return pa.timestamp("us", tz=None if type_.tz is None else "UTC")
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) \
            or pa.types.is_fixed_size_list(type_) or pa.types.is_list_view(type_):
        return pa.list_(pa.field("element", delta_type(type_.value_type, column)))
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, delta_type(f.type, f"{column}.{f.name}"))
                          for f in type_])
    if pa.types.is_map(type_):
        return pa.map_(delta_type(type_.key_type, column), delta_type(type_.item_type, column))
    if pa.types.is_time(type_) or pa.types.is_duration(type_) or pa.types.is_interval(type_):
        raise _unsupported(column, type_, "times of day and durations")
    return type_


def normalise(data: pa.Table) -> pa.Table:
    """Cast every column to the type Delta stores and gives back."""
    data = uuids_as_text(data)
    for i, fld in enumerate(data.schema):
        target = delta_type(fld.type, fld.name)
        if fld.type.equals(target):
            continue
        column = data.column(i)
        if isinstance(fld.type, pa.BaseExtensionType):
            column = pa.chunked_array([c.storage for c in column.chunks],
                                      type=fld.type.storage_type)
        try:
            column = column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SinkError(
                f"column '{fld.name}': {fld.type} cannot be stored in Delta as {target} without "
                f"loss: {exc}",
                hint=f"give '{fld.name}' a type Delta holds exactly in the contract "
                "(e.g. timestamps in microseconds)",
            ) from None
        data = data.set_column(i, pa.field(fld.name, target), column)
    return data


def _schema_of(dt: Any) -> pa.Schema:
    return pa.schema(dt.schema().to_arrow())


def _unify(table: str, existing: pa.Schema | None, schemas: list[pa.Schema]) -> pa.Schema:
    """The schema that holds the table and every buffered chunk (refusing lossy changes)."""
    unified = existing
    for schema in schemas:
        if unified is None:
            unified = schema
            continue
        plan = plan_evolution(table, unified, schema)
        fields = list(unified)
        for wide in plan.widen:
            fields[unified.get_field_index(wide.name)] = pa.field(wide.name, wide.type)
        unified = pa.schema(fields + [pa.field(f.name, delta_type(f.type, f.name))
                                      for f in plan.add])
    return unified if unified is not None else pa.schema([])


def _widened(existing: pa.Schema, target: pa.Schema) -> bool:
    return any(not f.type.equals(target.field(f.name).type) for f in existing)


def _conform(target: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Each batch with exactly ``target``'s columns and types (missing columns as nulls)."""
    for batch in batches:
        names = set(batch.schema.names)
        columns = [batch.column(f.name).cast(f.type) if f.name in names
                   else pa.nulls(batch.num_rows, f.type) for f in target]
        yield pa.RecordBatch.from_arrays(columns, schema=target)


def _check_name(table: str) -> None:
    if not table or table in {".", ".."} or any(c in table for c in "/\\\0\n"):
        raise ConfigError(f"'{table}' cannot be a Delta table name",
                          hint="use a name without slashes, e.g. orders or orders_2024")


def _unsupported(column: str, type_: pa.DataType, what: str) -> SinkError:
    return SinkError(f"column '{column}': Delta tables cannot hold {what} ({type_})",
                     hint=f"cast '{column}' to text or a number in the contract")

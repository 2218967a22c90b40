"""Redis as a source: hashes and JSON values found by key pattern, or a stream read incrementally.

Hashes and JSON values are a snapshot of the keys matching a pattern (SCAN, then one pipelined
round trip per batch of keys); use ``mode: replace`` or ``merge`` on ``redis_key``. A stream is read
from the entry after the last committed id, ``batch_rows`` entries per extract, so a failure
resumes exactly where the warehouse stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson
import pyarrow as pa

from headwater.core import (
    POSITION,
    Batch,
    Extract,
    Source,
    SourceError,
    State,
    redact,
    rejects_table,
)
from headwater.core import require as _require
from headwater.ingest.sources._records import dicts_to_table, lists_as_json
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config._sources import RedisSpec

log = get_logger(__name__)

#: Column holding the Redis key (hashes, JSON values) or the stream entry id.
KEY = "redis_key"


class RedisSource(Source):
    """Hashes, JSON values or a stream from Redis.

    Parameters
    ----------
    url:
        ``redis://[:password@]host:port/db``.
    type:
        ``hash``, ``json`` or ``stream``.
    pattern:
        hash / json: keys to read (``user:*``).
    stream:
        stream: the stream key.
    batch_rows:
        Keys or entries per batch (and, for streams, per commit).
    """

    kind = "redis"

    def __init__(self, url: str, *, type: Literal["hash", "json", "stream"],
                 pattern: str | None = None, stream: str | None = None,
                 batch_rows: int = 10_000) -> None:
        self.url = url
        self.type = type
        self.pattern = pattern
        self.stream = stream
        self.batch_rows = batch_rows

    @classmethod
    def from_spec(cls, spec: RedisSpec) -> RedisSource:
        """Build from the headwater.yaml model."""
        return cls(spec.url.get_secret_value(), type=spec.type, pattern=spec.pattern,
                   stream=spec.stream, batch_rows=spec.batch_rows)

    def describe(self) -> str:
        """One line for people."""
        return f"redis {self.type}: {self.stream or self.pattern}"

    def _client(self) -> Any:
        redis = _require("redis", "redis")
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=30)
            client.ping()
        except redis.RedisError as exc:
            raise SourceError(f"redis: cannot connect: {redact(str(exc))}",
                              hint="check the url (host, port, password) in headwater.yaml"
                              ) from None
        return client

    def extracts(self, state: State) -> Iterator[Extract]:
        """A snapshot extract (hash, json) or stream extracts from the last committed id."""
        client = self._client()
        try:
            if self.type == "stream":
                yield from self._stream(client, state)
            else:
                yield self._snapshot(client)
        finally:
            client.close()

    # ------------------------------------------------------------------ hashes and JSON

    def _snapshot(self, client: Any) -> Extract:
        assert self.pattern is not None
        label = f"redis:{self.pattern}"
        return Extract(source=label, key=f"redis:{self.type}:{self.pattern}",
                       position={"snapshot_at": datetime.now(UTC).isoformat()},
                       batches=self._snapshot_batches(client), unit="record",
                       meta={"primary_key": [KEY]})

    def _snapshot_batches(self, client: Any) -> Iterator[Batch]:
        redis = _require("redis", "redis")
        keys: list[bytes] = []
        offset = 0
        try:
            for key in client.scan_iter(match=self.pattern, count=1000):
                keys.append(key)
                if len(keys) >= self.batch_rows:
                    yield self._read_keys(client, keys, offset)
                    offset += len(keys)
                    keys = []
            if keys:
                yield self._read_keys(client, keys, offset)
        except redis.RedisError as exc:
            raise SourceError(f"redis: read of {self.pattern} failed: {redact(str(exc))}",
                              hint="the next run reads the keys again") from None

    def _read_keys(self, client: Any, keys: list[bytes], offset: int) -> Batch:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            (pipe.hgetall if self.type == "hash" else pipe.get)(key)
        values = pipe.execute()
        names = [k.decode() for k in keys]
        positions = np.arange(offset, offset + len(keys), dtype=np.int64)
        if self.type == "hash":
            records = [{KEY: name, **{f.decode(): v.decode("utf-8", "replace")
                                      for f, v in value.items()}}
                       for name, value in zip(names, values, strict=True)]
            table = dicts_to_table(records).append_column(POSITION, pa.array(positions))
            return Batch(data=table)
        return _json_batch(names, values, positions)

    # ------------------------------------------------------------------ streams

    def _stream(self, client: Any, state: State) -> Iterator[Extract]:
        redis = _require("redis", "redis")
        assert self.stream is not None
        key = f"redis:stream:{self.stream}"
        last = (state.get(key) or {}).get("last_id", "0-0")
        while True:
            try:
                entries = client.xrange(self.stream, min=f"({last}", count=self.batch_rows)
            except redis.ResponseError as exc:
                raise SourceError(f"redis: {self.stream} is not a stream: {exc}",
                                  hint="check `stream:` in headwater.yaml") from None
            except redis.RedisError as exc:
                raise SourceError(f"redis: reading stream {self.stream} failed: "
                                  f"{redact(str(exc))}",
                                  hint="the next run resumes after the last committed entry"
                                  ) from None
            if not entries:
                return
            ids = [entry_id.decode() for entry_id, _ in entries]
            records = [{KEY: i, **{f.decode(): v.decode("utf-8", "replace")
                                   for f, v in fields.items()}}
                       for i, (_, fields) in zip(ids, entries, strict=True)]
            table = lists_as_json(dicts_to_table(records))
            table = table.append_column(POSITION, pa.array(
                np.arange(len(records), dtype=np.int64)))
            yield Extract(source=f"redis:{self.stream} after {last}", key=key,
                          position={"last_id": ids[-1]}, batches=[Batch(data=table)],
                          unit="record", meta={"primary_key": [KEY]})
            last = ids[-1]
            if len(entries) < self.batch_rows:
                return


def _json_batch(names: list[str], values: list[bytes | None],
                positions: np.ndarray) -> Batch:
    """JSON text values to rows; values that are not JSON objects go to the rejects."""
    good: list[dict[str, Any]] = []
    good_pos: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for name, value, pos in zip(names, values, positions.tolist(), strict=True):
        if value is None:  # deleted between SCAN and GET
            continue
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            bad.append((pos, f"{name}: {value[:10_000].decode('utf-8', 'replace')}",
                        f"key {name}: not JSON ({exc})"))
            continue
        if not isinstance(parsed, dict):
            bad.append((pos, f"{name}: {value[:10_000].decode('utf-8', 'replace')}",
                        f"key {name}: JSON value is not an object"))
            continue
        parsed[KEY] = name
        good.append(parsed)
        good_pos.append(pos)
    table = lists_as_json(dicts_to_table(good)) if good else pa.table({KEY: pa.array(
        [], pa.string())})
    table = table.append_column(POSITION, pa.array(good_pos, pa.int64()))
    rejects = None
    if bad:
        rejects = rejects_table(*zip(*bad, strict=True))
    return Batch(data=table, rejects=rejects)

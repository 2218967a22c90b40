"""Amazon Kinesis Data Streams behind the broker interface (boto3).

A **topic** is a stream ``<stream_prefix><topic>``; its **shards** are the partitions, numbered
by their shard id (``shardId-000000000007`` is partition 7); **offsets** are sequence numbers
(text: they exceed 64 bits). A record's value is the Kinesis ``Data`` unchanged and its key the
``PartitionKey`` (text of at most 256 characters; a record without a key is sent with the
partition key ``␀`` and read back without one), so other Kinesis producers and consumers
(Firehose, Lambda, the KCL) read and write the same streams. Kinesis keeps no timestamp of a
record's own: a record's ``timestamp`` is its ``ApproximateArrivalTimestamp`` and a seek by
time is an ``AT_TIMESTAMP`` read.

**Routing.** A stream that headwater creates is tagged with its shard count ``N``; a key goes to
the hash key ``s·W + m(h)·(W >> 32)`` where ``h`` is the key's FNV-1a hash (the rule every
broker shares), ``s = h mod N``, ``W = 2^128 / N`` and ``m`` mixes the bits of ``h`` (FNV's high
bits are alike for short keys) so that a split shard's keys spread over its children
(``ExplicitHashKey``). On the even shards of a new
stream that is shard ``s`` (:func:`headwater.brokers.partition_for`); after a split or merge a
key keeps its hash key, so it stays in the children of its shard and its order holds, as with
Kinesis' own MD5 routing (which streams made elsewhere keep).

**Producing** sends ``PutRecords`` calls of at most 500 records and 5 MiB; records a call
rejects (throttled shards: partial failures are normal) are sent again with backoff. As with
the KPL, a record sent again lands after the records of its call that succeeded.

**Resharding.** A closed parent shard (``ParentShardId``, ``AdjacentParentShardId``) is read to
its end before its children; the shard list is read again when a shard ends and every few
seconds.

**Consumer groups.** Kinesis has none; headwater keeps them as the KCL does, in a DynamoDB
table (``lease_table``, created on first use, on-demand capacity): one item per group and shard
with the group's checkpoint (the last sequence number committed; ``ended`` once a closed shard
was committed to its end) and, for consumers that share a group dynamically, a **lease**
(owner, expiry). A consumer renews its leases on every poll, takes free or expired leases up to
its fair share of the shards that can be read now (the parents ended), and asks for one of a
busier member's leases with a claim; the owner hands a claimed lease over once what it read of
that shard is committed, so two live members never read the same record. Expiry is by wall
clock: members' clocks must agree within much less than ``lease_duration``. A consumer given
``partitions`` takes no leases (the caller assigns); it commits to the same table.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.brokers._base import (
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Consumer,
    Positions,
    StartAt,
    TopicInfo,
    unknown_topic,
)
from headwater.brokers._partition import key_hashes
from headwater.brokers._records import check_sizes, normalise, records_table
from headwater.brokers._retry import backoff
from headwater.core import duration_ms, require
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config import KinesisBrokerSpec

log = get_logger(__name__)

_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
_NO_KEY = "\u2400"  # ␀: the partition key of a record without a key
_MAX_RECORD = 1 << 20  # data + partition key of one record
_MAX_CALL_BYTES = 5 << 20  # of one PutRecords call
_MAX_CALL_RECORDS = 500
_MAX_GET = 10_000  # records of one GetRecords call
_TAG = "headwater-partitions"
_OFFSET = pa.string()
_TS = RECORD_SCHEMA.field("timestamp").type
#: groups that ``headwater stream tail`` uses: they read everything and write no checkpoint.
_SCRATCH = "headwater-tail-"
_THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException",
              "ThrottlingException", "RequestLimitExceeded", "KMSThrottlingException",
              "InternalFailure", "ServiceUnavailable", "InternalServerError"}
_DENIED = {"UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
           "ExpiredTokenException", "IncompleteSignature", "InvalidClientTokenId",
           "MissingAuthenticationToken", "KMSAccessDeniedException"}
_SHARD_REFRESH_S = 5.0
_IDLE_SLEEP_S = 0.2  # between empty reads of a shard (Kinesis allows 5 GetRecords a second)
#: Looking for the last record of a shard: read from these many seconds ago, then further back.
_LOOKBACK_S = (300, 3600, 6 * 3600)


def shard_number(shard_id: str) -> int:
    """The partition number of a shard id.

    >>> shard_number("shardId-000000000007")
    7
    """
    return int(shard_id.rsplit("-", 1)[-1])


def _shard_id(number: int) -> str:
    return f"shardId-{number:012d}"


@dataclass(frozen=True)
class _Shard:
    id: str
    number: int
    parents: tuple[str, ...]
    closed: bool
    start_hash: int


class _NotFound(Exception):
    """A ResourceNotFoundException (stream, shard or table), for the caller to name."""


class KinesisBroker(Broker):
    """Amazon Kinesis Data Streams as a broker (see the module docstring for how records map).

    Parameters (recorded; the first call connects): ``region`` (``None``: the AWS environment,
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile), ``endpoint_url`` (a VPC endpoint, or
    a moto server in tests), ``access_key_id`` / ``secret_access_key`` / ``session_token``
    (``None``: the usual AWS credential chain: environment, profile, instance role),
    ``profile``, ``stream_prefix`` (stream names are the prefix and the topic), ``lease_table``
    (the DynamoDB table of group checkpoints and leases), ``lease_duration_s``, ``retries`` (of
    a call, with backoff, before a :class:`BrokerError`), ``connect_timeout`` and ``name`` (the
    broker's key under ``brokers:``, for messages).
    """

    kind = "kinesis"
    record_time = "arrival"

    def __init__(self, *, region: str | None = None, endpoint_url: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 session_token: str | None = None, profile: str | None = None,
                 stream_prefix: str = "", lease_table: str = "headwater-kinesis-leases",
                 lease_duration_s: float = 10.0, retries: int = 4,
                 connect_timeout: float = 3.0, name: str | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.profile = profile
        self.stream_prefix = stream_prefix
        self.lease_table = lease_table
        self.lease_duration_s = lease_duration_s
        self.retries = retries
        self.connect_timeout = connect_timeout
        self.name = name
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._shards: dict[str, tuple[float, list[_Shard]]] = {}
        self._routing: dict[str, int | None] = {}
        self._ends: dict[str, str] = {}  # closed shard id -> its last sequence number
        self._table_ready = False

    # -- connection, retries, errors ------------------------------------------------------------

    def _setting(self, key: str) -> str:
        return f"brokers.{self.name or '<name>'}.{key}"

    def describe(self) -> str:
        label = f"Kinesis broker '{self.name}'" if self.name else "Amazon Kinesis"
        where = self.endpoint_url or f"region {self.region or '(from the AWS environment)'}"
        return f"{label} at {where}"

    def _client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is not None:
                return client
            boto3 = require("boto3", "kinesis")
            from botocore.config import Config
            from botocore.exceptions import NoRegionError, ProfileNotFound

            try:
                session = boto3.session.Session(
                    aws_access_key_id=self.access_key_id,
                    aws_secret_access_key=self.secret_access_key,
                    aws_session_token=self.session_token, profile_name=self.profile,
                    region_name=self.region)
            except ProfileNotFound:
                raise BrokerError(f"{self.describe()}: no AWS profile '{self.profile}'",
                                  hint=f"fix {self._setting('profile')}, or add the profile "
                                  "to ~/.aws/config") from None
            region = session.region_name
            if region is None:
                raise BrokerError(f"{self.describe()}: no AWS region is set",
                                  hint=f"set {self._setting('region')} in headwater.yaml, or "
                                  "AWS_REGION in the environment")
            if self.endpoint_url is None and region not in _known_regions(session):
                raise BrokerError(f"{self.describe()}: unknown AWS region '{region}'",
                                  hint=f"fix {self._setting('region')} (e.g. us-east-1, "
                                  f"eu-west-1), or set {self._setting('endpoint_url')} for a "
                                  "private endpoint")
            config = Config(connect_timeout=self.connect_timeout, read_timeout=30,
                            retries={"total_max_attempts": 1}, max_pool_connections=20)
            try:
                client = session.client(service, endpoint_url=self.endpoint_url, config=config)
            except NoRegionError:  # pragma: no cover - region checked above
                raise BrokerError(f"{self.describe()}: no AWS region is set",
                                  hint=f"set {self._setting('region')}") from None
            self._clients[service] = client
            return client

    def _call(self, service: str, op: str, what: str, **kw: Any) -> Any:
        """One AWS call, retried with backoff while the endpoint is unreachable or throttles;
        everything else as a :class:`BrokerError` that says what to fix (``_NotFound`` for a
        missing resource, for the caller to name)."""
        require("boto3", "kinesis")
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        delays = backoff(self.retries)
        while True:
            try:
                return getattr(self._client(service), op)(**kw)
            except (NoCredentialsError, PartialCredentialsError):
                raise BrokerError(
                    f"{self.describe()}: no AWS credentials to {what}",
                    hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in "
                    f"the environment, or {self._setting('aws_access_key_id')} and "
                    f"{self._setting('aws_secret_access_key')} with ${{ENV}}") from None
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, message = error.get("Code", ""), error.get("Message", "") or str(exc)
                if code == "ResourceNotFoundException":
                    raise _NotFound(message) from None
                if code in _DENIED:
                    raise BrokerError(
                        f"{self.describe()} refused the credentials to {what} ({code})",
                        hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the "
                        f"profile) and the IAM policy (kinesis:* on the stream, dynamodb:* on "
                        f"table {self.lease_table})") from None
                if code not in _THROTTLED:
                    raise BrokerError(f"{self.describe()} refused to {what}: {code}: {message}",
                                      hint="check the request against the stream with `aws "
                                      "kinesis describe-stream-summary`") from None
                failure: Exception = exc
            except (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError,
                    ReadTimeoutError) as exc:
                failure = exc
            delay = next(delays, None)
            if delay is None:
                raise self._unreachable(what, failure) from None
            log.warning("kinesis_retry", broker=self.describe(), action=what,
                        error=str(failure), wait_s=round(delay, 2))
            time.sleep(delay)

    def _unreachable(self, what: str, exc: Exception) -> BrokerError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            return BrokerError(
                f"{self.describe()} kept throttling while trying to {what} "
                f"({self.retries + 1} attempts)",
                hint="add shards (UpdateShardCount) or slow the producers; "
                f"{self._setting('retries')} sets how long headwater keeps trying")
        return BrokerError(
            f"cannot reach {self.describe()} to {what} after {self.retries + 1} attempts "
            f"({exc})",
            hint=f"check the network, or fix {self._setting('endpoint_url')} / "
            f"{self._setting('region')} in headwater.yaml; {self._setting('retries')} and "
            f"{self._setting('connect_timeout')} set how long headwater keeps trying")

    # -- topics ---------------------------------------------------------------------------------

    def stream_name(self, topic: str) -> str:
        """The Kinesis stream of ``topic``."""
        name = f"{self.stream_prefix}{topic}"
        if not isinstance(topic, str) or not topic or not _STREAM_NAME.match(name):
            raise BrokerError(f"topic {topic!r} cannot be a Kinesis stream name ('{name}')",
                              hint="use letters, digits, '_', '.' and '-' (at most 128 "
                              "characters with the stream prefix)")
        return name

    def _unknown(self, topic: str) -> BrokerError:
        return unknown_topic(topic, f"on {self.describe()}", [t.name for t in self.topics()],
                             f"no stream '{self.stream_name(topic)}'; ")

    def _kinesis(self, op: str, what: str, topic: str, **kw: Any) -> Any:
        try:
            return self._call("kinesis", op, what, **kw)
        except _NotFound:
            raise self._unknown(topic) from None

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        stream = self.stream_name(topic)
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise BrokerError(f"topic '{topic}': partitions must be a whole number >= 1, "
                              f"got {partitions!r}", hint="use 1 or more shards")
        what = f"create topic '{topic}'"
        try:
            self._call("kinesis", "describe_stream_summary", what, StreamName=stream)
            return
        except _NotFound:
            pass
        try:
            self._call("kinesis", "create_stream", what, StreamName=stream,
                       ShardCount=partitions)
        except BrokerError as exc:
            if "ResourceInUseException" not in exc.message:  # created meanwhile: fine
                raise
        self._wait_active(topic)
        self._kinesis("add_tags_to_stream", what, topic, StreamName=stream,
                      Tags={_TAG: str(partitions)})
        self._routing.pop(topic, None)

    def _wait_active(self, topic: str) -> None:
        deadline = time.monotonic() + 300
        while True:
            summary = self._kinesis("describe_stream_summary", f"wait for topic '{topic}'",
                                    topic, StreamName=self.stream_name(topic))
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"stream '{self.stream_name(topic)}' of {self.describe()} "
                                  "did not become ACTIVE within 5 minutes",
                                  hint="check it with `aws kinesis describe-stream-summary`")
            time.sleep(1.0)

    def topics(self) -> list[TopicInfo]:
        names: list[str] = []
        kw: dict[str, Any] = {}
        while True:
            page = self._call("kinesis", "list_streams", "list topics", **kw)
            names += page.get("StreamNames", [])
            if not page.get("HasMoreStreams") or not names:
                break
            kw = {"ExclusiveStartStreamName": names[-1]}
        out = []
        for stream in names:
            if not stream.startswith(self.stream_prefix):
                continue
            try:
                summary = self._call("kinesis", "describe_stream_summary", "list topics",
                                     StreamName=stream)["StreamDescriptionSummary"]
            except _NotFound:
                continue  # deleted meanwhile
            out.append(TopicInfo(stream[len(self.stream_prefix):],
                                 int(summary.get("OpenShardCount", 0))))
        return sorted(out, key=lambda t: t.name)

    def shards(self, topic: str, *, max_age: float = _SHARD_REFRESH_S) -> list[_Shard]:
        """The shards of ``topic`` (open and closed ones still in retention), by number."""
        cached = self._shards.get(topic)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        stream = self.stream_name(topic)
        found: list[_Shard] = []
        kw: dict[str, Any] = {"StreamName": stream}
        while True:
            page = self._kinesis("list_shards", f"list the shards of '{topic}'", topic, **kw)
            for s in page.get("Shards", []):
                parents = tuple(p for p in (s.get("ParentShardId"),
                                            s.get("AdjacentParentShardId")) if p)
                closed = "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
                found.append(_Shard(s["ShardId"], shard_number(s["ShardId"]), parents, closed,
                                    int(s["HashKeyRange"]["StartingHashKey"])))
            token = page.get("NextToken")
            if not token:
                break
            kw = {"NextToken": token}
        found.sort(key=lambda s: s.number)
        self._shards[topic] = (time.monotonic(), found)
        return found

    def partitions(self, topic: str) -> list[int]:
        return [s.number for s in self.shards(topic)]

    # -- reading a shard to its end -------------------------------------------------------------

    def _iterator(self, topic: str, shard: str, kind: str, **kw: Any) -> str:
        return self._kinesis("get_shard_iterator", f"read topic '{topic}'", topic,
                             StreamName=self.stream_name(topic), ShardId=shard,
                             ShardIteratorType=kind, **kw)["ShardIterator"]

    def _get(self, topic: str, iterator: str, limit: int) -> dict[str, Any]:
        return self._kinesis("get_records", f"read topic '{topic}'", topic,
                             ShardIterator=iterator, Limit=max(1, min(limit, _MAX_GET)))

    def _scan(self, topic: str, shard: _Shard, iterator: str | None) -> tuple[int, str | None]:
        """Read from ``iterator`` to the shard's current end: (records, last sequence number)."""
        count, last = 0, None
        while iterator is not None:
            got = self._get(topic, iterator, _MAX_GET)
            records = got.get("Records", [])
            if records:
                count += len(records)
                last = records[-1]["SequenceNumber"]
            iterator = got.get("NextShardIterator")
            if not records and got.get("MillisBehindLatest", 0) == 0:
                break
        return count, last

    def _last_sequence(self, topic: str, shard: _Shard) -> str | None:
        """The sequence number of the last record in ``shard`` (``None``: empty). Reads the
        recent past first (AT_TIMESTAMP) and goes further back only while it finds nothing."""
        if shard.id in self._ends:
            return self._ends[shard.id]
        last = None
        now = time.time()
        for ago in (*_LOOKBACK_S, None):
            if ago is None:
                iterator = self._iterator(topic, shard.id, "TRIM_HORIZON")
            else:
                iterator = self._iterator(topic, shard.id, "AT_TIMESTAMP",
                                          Timestamp=datetime.fromtimestamp(now - ago, UTC))
            _, last = self._scan(topic, shard, iterator)
            if last is not None:
                break
        if shard.closed and last is not None:
            self._ends[shard.id] = last
        return last

    def end_positions(self, topic: str) -> Positions:
        out: Positions = {}
        for shard in self.shards(topic, max_age=0):
            last = self._last_sequence(topic, shard)
            if last is not None:
                out[shard.number] = last
        return out

    # -- producing ------------------------------------------------------------------------------

    @property
    def max_value_bytes(self) -> int | None:
        return _MAX_RECORD

    def _partitions_tag(self, topic: str) -> int | None:
        """The shard count headwater created ``topic`` with (``None``: made elsewhere)."""
        if topic not in self._routing:
            tags = self._kinesis("list_tags_for_stream", f"read the tags of '{topic}'", topic,
                                 StreamName=self.stream_name(topic)).get("Tags", [])
            value = next((t.get("Value") for t in tags if t.get("Key") == _TAG), None)
            self._routing[topic] = int(value) if value and value.isdigit() else None
        return self._routing[topic]

    def produce(self, topic: str, records: pa.Table) -> int:
        table = normalise(records, topic)
        check_sizes(table, _MAX_RECORD, topic=topic, where="Kinesis (data and partition key)",
                    setting=None)
        n = table.num_rows
        stream = self.stream_name(topic)
        if not n:
            self.shards(topic)  # an unknown topic is an error even for no records
            return 0
        keys, hash_keys = self._keys(topic, table["key"].combine_chunks())
        values = table["value"].combine_chunks()
        sizes = (pc.binary_length(values).to_numpy(zero_copy_only=False).astype(np.int64) +
                 np.fromiter((len(k.encode()) for k in keys), np.int64, n))
        data = values.to_pylist()
        entries = [{"Data": d, "PartitionKey": k} for d, k in zip(data, keys, strict=True)] \
            if hash_keys is None else \
            [{"Data": d, "PartitionKey": k, "ExplicitHashKey": h}
             for d, k, h in zip(data, keys, hash_keys, strict=True)]
        for start, end in _calls(sizes):
            self._put(topic, stream, entries[start:end])
        return n

    def _keys(self, topic: str, keys: pa.Array) -> tuple[list[str], list[str] | None]:
        """Partition keys (text) and, for streams headwater made, the explicit hash keys."""
        present = pc.and_(pc.is_valid(keys), pc.greater(pc.binary_length(keys), 0))
        present = pc.fill_null(present, False)
        try:
            text = keys.cast(pa.string())
        except pa.ArrowInvalid:
            raise BrokerError(f"produce to '{topic}': a record key is not UTF-8 text; Kinesis "
                              "partition keys are text", hint="encode the keys as text "
                              "(e.g. hex or base64)") from None
        longest = pc.max(pc.utf8_length(text)).as_py() or 0
        if longest > 256:
            raise BrokerError(f"produce to '{topic}': a record key has {longest} characters, "
                              "over Kinesis' 256-character partition key limit",
                              hint="use shorter keys (e.g. a hash of the long one)")
        partition_keys = pc.if_else(present, text, _NO_KEY).to_pylist()
        count = self._partitions_tag(topic)
        if count is None:
            return partition_keys, None
        hashes, _ = key_hashes(keys)
        valid = present.to_numpy(zero_copy_only=False)
        slot = (hashes % np.uint32(count)).astype(np.int64)
        missing = np.flatnonzero(~valid)
        slot[missing] = missing % count
        width = 2 ** 128 // count
        step = width >> 32
        bases = [s * width for s in range(count)]
        offsets = np.where(valid, _mix(hashes).astype(np.int64), -1).tolist()
        hash_keys = [str(bases[s] + (h * step if h >= 0 else width // 2))
                     for s, h in zip(slot.tolist(), offsets, strict=True)]
        return partition_keys, hash_keys

    def _put(self, topic: str, stream: str, entries: list[dict[str, Any]]) -> None:
        """One PutRecords call, and the records it rejected sent again (with backoff)."""
        pending = entries
        delays = backoff(self.retries + 4)
        while True:
            reply = self._kinesis("put_records", f"produce to '{topic}'", topic,
                                  StreamName=stream, Records=pending)
            if not reply.get("FailedRecordCount"):
                return
            results = reply["Records"]
            failed = [i for i, r in enumerate(results) if r.get("ErrorCode")]
            errors = {results[i]["ErrorCode"] for i in failed}
            delay = next(delays, None)
            if delay is None or errors - _THROTTLED:
                first = results[failed[0]]
                raise BrokerError(
                    f"produce to '{topic}': {self.describe()} rejected {len(failed)} of "
                    f"{len(pending)} records ({first['ErrorCode']}: "
                    f"{first.get('ErrorMessage', '')}); the others were written",
                    hint="add shards (UpdateShardCount) or slow the producers, then publish "
                    "the rest again")
            log.info("kinesis_put_retry", topic=topic, failed=len(failed), errors=sorted(errors),
                     wait_s=round(delay, 2))
            time.sleep(delay)
            pending = [pending[i] for i in failed]

    # -- consumer groups ------------------------------------------------------------------------

    def consumer(self, topic: str, *, group: str,
                 partitions: Sequence[int] | None = None) -> KinesisConsumer:
        self.stream_name(topic)
        return KinesisConsumer(self, topic, group,
                               None if partitions is None else sorted(set(partitions)))

    def _group_key(self, topic: str, group: str) -> str:
        return f"{self.stream_name(topic)}|{group}"

    def _dynamodb(self, op: str, what: str, **kw: Any) -> Any:
        """A call on the lease table (created on first use)."""
        self._ensure_table(what)
        try:
            return self._call("dynamodb", op, what, **kw)
        except _NotFound:  # deleted while in use: create it again once
            self._table_ready = False
            self._ensure_table(what)
            return self._call("dynamodb", op, what, **kw)

    def _ensure_table(self, what: str) -> None:
        if self._table_ready:
            return
        try:
            status = self._call("dynamodb", "describe_table", what,
                                TableName=self.lease_table)["Table"]["TableStatus"]
        except _NotFound:
            try:
                self._call("dynamodb", "create_table", what, TableName=self.lease_table,
                           BillingMode="PAY_PER_REQUEST",
                           AttributeDefinitions=[{"AttributeName": "lease", "AttributeType": "S"},
                                                 {"AttributeName": "shard", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "lease", "KeyType": "HASH"},
                                      {"AttributeName": "shard", "KeyType": "RANGE"}])
            except BrokerError as exc:
                if "ResourceInUseException" not in exc.message:
                    raise
            status = "CREATING"
        deadline = time.monotonic() + 120
        while status != "ACTIVE":
            if time.monotonic() > deadline:
                raise BrokerError(f"lease table '{self.lease_table}' of {self.describe()} did "
                                  "not become ACTIVE", hint=f"check it, or set "
                                  f"{self._setting('lease_table')} to another table")
            time.sleep(1.0)
            status = self._call("dynamodb", "describe_table", what,
                                TableName=self.lease_table)["Table"]["TableStatus"]
        self._table_ready = True

    def _items(self, topic: str, group: str) -> dict[str, dict[str, Any]]:
        """The group's items by shard id, as plain values."""
        out: dict[str, dict[str, Any]] = {}
        kw: dict[str, Any] = {
            "TableName": self.lease_table, "ConsistentRead": True,
            "KeyConditionExpression": "#l = :l", "ExpressionAttributeNames": {"#l": "lease"},
            "ExpressionAttributeValues": {":l": {"S": self._group_key(topic, group)}}}
        while True:
            page = self._dynamodb("query", f"read group '{group}' of '{topic}'", **kw)
            for item in page.get("Items", []):
                out[item["shard"]["S"]] = {k: _plain(v) for k, v in item.items()}
            if "LastEvaluatedKey" not in page:
                return out
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _update(self, topic: str, group: str, shard: str, expression: str,
                values: Mapping[str, Any] | None = None, condition: str | None = None,
                names: Mapping[str, str] | None = None) -> bool:
        """Update one item; ``False`` when ``condition`` did not hold."""
        kw: dict[str, Any] = {
            "TableName": self.lease_table,
            "Key": {"lease": {"S": self._group_key(topic, group)}, "shard": {"S": shard}},
            "UpdateExpression": expression}
        if values:
            kw["ExpressionAttributeValues"] = {k: _typed(v) for k, v in values.items()}
        if names:
            kw["ExpressionAttributeNames"] = dict(names)
        if condition:
            kw["ConditionExpression"] = condition
        try:
            self._dynamodb("update_item", f"commit group '{group}' on '{topic}'", **kw)
        except BrokerError as exc:
            if "ConditionalCheckFailedException" in exc.message:
                return False
            raise
        return True

    def _start_of(self, item: dict[str, Any] | None) -> tuple[str, Any]:
        """Where a group resumes on a shard, from its item."""
        if item is None:
            return ("TRIM_HORIZON", None)
        if item.get("ended"):
            return ("DONE", None)
        if item.get("checkpoint"):
            return ("AFTER_SEQUENCE_NUMBER", item["checkpoint"])
        if item.get("at_ms") is not None:
            return ("AT_TIMESTAMP", datetime.fromtimestamp(int(item["at_ms"]) / 1000, UTC))
        return ("TRIM_HORIZON", None)

    def groups(self, topic: str) -> list[str]:
        prefix = f"{self.stream_name(topic)}|"
        self.shards(topic)
        found: set[str] = set()
        kw: dict[str, Any] = {"TableName": self.lease_table,
                              "FilterExpression": "begins_with(#l, :p)",
                              "ExpressionAttributeNames": {"#l": "lease"},
                              "ExpressionAttributeValues": {":p": {"S": prefix}},
                              "ProjectionExpression": "#l"}
        while True:
            page = self._dynamodb("scan", f"list the groups of '{topic}'", **kw)
            found.update(i["lease"]["S"][len(prefix):] for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def group_lag(self, topic: str, group: str) -> dict[int, int] | None:
        """Per shard, the records after ``group``'s checkpoint (read up to the shard's end:
        this reads the backlog once)."""
        items = self._items(topic, group)
        out: dict[int, int] = {}
        for shard in self.shards(topic, max_age=0):
            kind, arg = self._start_of(items.get(shard.id))
            if kind == "DONE":
                out[shard.number] = 0
                continue
            kw = {"StartingSequenceNumber": arg} if kind == "AFTER_SEQUENCE_NUMBER" else \
                {"Timestamp": arg} if kind == "AT_TIMESTAMP" else {}
            out[shard.number] = self._scan(topic, shard, self._iterator(topic, shard.id, kind,
                                                                        **kw))[0]
        return out

    def reset_group(self, topic: str, group: str, start: StartAt) -> Positions:
        """Set ``group``'s checkpoints so that it next reads from ``start``: ``earliest``
        (forget them), ``latest`` (the shards' ends), a time (``AT_TIMESTAMP``) or positions."""
        shards = self.shards(topic, max_age=0)
        positions: Positions = {}
        if start == "latest":
            positions = self.end_positions(topic)
        elif isinstance(start, Mapping):
            positions = {int(p): str(o) for p, o in start.items()}
        elif start != "earliest" and not isinstance(start, datetime):
            raise BrokerError(f"cannot reset group '{group}' to {start!r}",
                              hint="use earliest, latest, a time or {partition: offset}")
        for shard in shards:
            self._update(topic, group, shard.id, "REMOVE checkpoint, ended, at_ms")
            if shard.number in positions:
                ended = start == "latest" and shard.closed
                self._update(topic, group, shard.id, "SET checkpoint = :c, ended = :e",
                             {":c": str(positions[shard.number]), ":e": ended})
            elif start == "latest" and shard.closed:
                self._update(topic, group, shard.id, "SET ended = :e", {":e": True})
            elif isinstance(start, datetime):
                when = start if start.tzinfo else start.replace(tzinfo=UTC)
                self._update(topic, group, shard.id, "SET at_ms = :t",
                             {":t": int(when.timestamp() * 1000)})
        return positions


def _known_regions(session: Any) -> set[str]:
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("kinesis", partition_name=partition))
    return regions


def _plain(value: dict[str, Any]) -> Any:
    (kind, inner), = value.items()
    return int(inner) if kind == "N" else inner


def _typed(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def _mix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser: every bit of ``h`` moves every bit of the result.

    >>> _mix(np.array([1, 2], dtype=np.uint32)).tolist()
    [1364076727, 821347078]
    """
    h = h.astype(np.uint32)
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _calls(sizes: np.ndarray) -> list[tuple[int, int]]:
    """Cut records of ``sizes`` bytes into PutRecords calls (500 records, 5 MiB at most).

    >>> _calls(np.array([3 << 20, 3 << 20, 1]))
    [(0, 1), (1, 3)]
    """
    ends = np.cumsum(sizes)
    out, start, n = [], 0, len(sizes)
    while start < n:
        before = int(ends[start - 1]) if start else 0
        fits = int(np.searchsorted(ends, before + _MAX_CALL_BYTES, side="right"))
        end = max(start + 1, min(start + _MAX_CALL_RECORDS, fits))
        out.append((start, end))
        start = end
    return out


@dataclass
class _Reader:
    """One shard being read by a consumer."""

    shard: _Shard
    start: tuple[str, Any]
    iterator: str | None = None
    after: str | None = None  # the last sequence number handed out
    committed: str | None = None
    pending: bool = False  # records handed out and not committed
    ended: bool = False
    not_before: float = 0.0  # monotonic time of the next read (an empty read waits)
    claimed_at: float | None = field(default=None)


class KinesisConsumer(Consumer):
    """A reader of one Kinesis topic for one group: the shards given, or leased."""

    def __init__(self, broker: KinesisBroker, topic: str, group: str,
                 partitions: list[int] | None) -> None:
        self.broker = broker
        self.topic = topic
        self.group = group
        self.scratch = group.startswith(_SCRATCH)
        self.static = partitions is not None or self.scratch
        self._partitions = partitions
        self.owner = f"{group}-{uuid.uuid4().hex[:12]}"
        self._readers: dict[str, _Reader] = {}
        self._held: set[str] = set()  # leased shard ids
        self._ended: set[str] = set()  # shards the group finished (its item says ended)
        self._seek: Callable[[_Shard], tuple[str, Any]] | None = None
        self._items: dict[str, dict[str, Any]] = {}
        self._refreshed = -math.inf
        self._turn = 0

    # -- which shards -----------------------------------------------------------------------

    def assignment(self) -> list[int]:
        if self.scratch and self._partitions is None:
            return self.broker.partitions(self.topic)
        if self.static:
            return list(self._partitions or [])
        return sorted(shard_number(s) for s in self._held)

    def _mine(self, shards: list[_Shard]) -> list[_Shard]:
        if self.scratch and self._partitions is None:
            return shards
        if self.static:
            wanted = set(self._partitions or [])
            return [s for s in shards if s.number in wanted]
        return [s for s in shards if s.id in self._held]

    def _finished(self, shard_id: str) -> bool:
        reader = self._readers.get(shard_id)
        return shard_id in self._ended or (reader is not None and reader.ended)

    def _readable(self, shard: _Shard, known: set[str]) -> bool:
        """Not at its end, and every parent still in retention read to its end."""
        return not self._finished(shard.id) and all(
            p not in known or self._finished(p) for p in shard.parents)

    def _refresh(self, *, force: bool = False) -> list[_Shard]:
        """The shards to read now: reads the group's items and (with leases) renews, takes
        and hands over leases, at most every third of ``lease_duration``."""
        shards = self.broker.shards(self.topic)
        due = time.monotonic() - self._refreshed >= self.broker.lease_duration_s / 3
        if not self.scratch and (force or due):
            self._refreshed = time.monotonic()
            self._items = self.broker._items(self.topic, self.group)
            self._ended |= {s for s, item in self._items.items() if item.get("ended")}
            if not self.static:
                self._lease(shards)
        known = {s.id for s in shards}
        return [s for s in self._mine(shards) if self._readable(s, known)]

    def _lease(self, shards: list[_Shard]) -> None:
        b, now = self.broker, int(time.time() * 1000)
        expires = now + int(b.lease_duration_s * 1000)
        known = {s.id for s in shards}
        for shard_id in sorted(self._held):
            item = self._items.get(shard_id, {})
            claim = item.get("claim")
            if item.get("owner") != self.owner:
                self._lose(shard_id, "taken by another member")
            elif (self._finished(shard_id) and not self._pending(shard_id)) or \
                    (claim and claim != self.owner and self._hand_over(shard_id)):
                self._release(shard_id)
            elif not b._update(self.topic, self.group, shard_id, "SET expires = :x",
                               {":x": expires, ":me": self.owner}, "#o = :me",
                               {"#o": "owner"}):
                self._lose(shard_id, "expired")
        open_ = [s for s in shards if not self._finished(s.id) and
                 all(p not in known or self._finished(p) for p in s.parents)]
        live: dict[str, int] = {self.owner: 0}
        for s in open_:
            item = self._items.get(s.id, {})
            if item.get("owner") and int(item.get("expires", 0)) > now:
                live[item["owner"]] = live.get(item["owner"], 0) + 1
        reading = {s.id for s in open_} & self._held  # held and not at their end
        live[self.owner] = len(reading)
        target = math.ceil(len(open_) / len(live)) if open_ else 0
        free = [s for s in open_ if s.id not in self._held and (
            not self._items.get(s.id, {}).get("owner") or
            int(self._items.get(s.id, {}).get("expires", 0)) <= now)]
        for s in free:
            if len(reading) >= target:
                break
            if b._update(self.topic, self.group, s.id,
                         "SET #o = :me, expires = :x REMOVE claim",
                         {":me": self.owner, ":x": expires, ":now": now},
                         "attribute_not_exists(#o) OR expires <= :now", {"#o": "owner"}):
                self._held.add(s.id)
                reading.add(s.id)
                log.info("kinesis_lease_taken", topic=self.topic, group=self.group, shard=s.id)
        if len(reading) < target:  # ask the busiest member for one of its shards
            busiest = max((o for o in live if o != self.owner), key=lambda o: live[o],
                          default=None)
            if busiest is not None and live[busiest] > target:
                victim = next(s for s in open_ if self._items.get(s.id, {}).get("owner") ==
                              busiest)
                b._update(self.topic, self.group, victim.id, "SET claim = :me",
                          {":me": self.owner, ":them": busiest},
                          "#o = :them AND attribute_not_exists(claim)", {"#o": "owner"})

    def _pending(self, shard_id: str) -> bool:
        reader = self._readers.get(shard_id)
        return reader is not None and reader.pending

    def _hand_over(self, shard_id: str) -> bool:
        """A claimed lease: stop reading the shard; ``True`` once nothing read is uncommitted
        (or the claim is older than a lease, for a member that never commits)."""
        reader = self._readers.get(shard_id)
        if reader is None or not reader.pending:
            return True
        if reader.claimed_at is None:
            reader.claimed_at = time.monotonic()
        return time.monotonic() - reader.claimed_at > self.broker.lease_duration_s

    def _release(self, shard_id: str) -> None:
        self.broker._update(self.topic, self.group, shard_id, "REMOVE #o, expires, claim",
                            {":me": self.owner}, "#o = :me", {"#o": "owner"})
        self._lose(shard_id, "released")

    def _lose(self, shard_id: str, why: str) -> None:
        self._held.discard(shard_id)
        self._readers.pop(shard_id, None)
        log.info("kinesis_lease_dropped", topic=self.topic, group=self.group, shard=shard_id,
                 why=why)

    # -- seeking ----------------------------------------------------------------------------

    def seek(self, start: StartAt) -> None:
        if not (start in ("earliest", "latest") or isinstance(start, datetime | Mapping)):
            raise BrokerError(f"cannot seek to {start!r}",
                              hint="use 'earliest', 'latest', a datetime or {partition: offset}")
        shards = self.broker.shards(self.topic, max_age=0)
        by_id = {s.id: s for s in shards}
        self._readers.clear()
        self._ended.clear()
        if start == "earliest":
            self._seek = lambda s: ("TRIM_HORIZON", None)
        elif start == "latest":
            iterators = {s.id: self.broker._iterator(self.topic, s.id, "LATEST")
                         for s in shards if not s.closed}
            made = time.monotonic()

            def latest(s: _Shard) -> tuple[str, Any]:
                if s.closed:
                    return ("DONE", None)
                if s.id in iterators and time.monotonic() - made < 240:
                    return ("ITERATOR", iterators.pop(s.id))
                return ("LATEST", None) if s.id in by_id else ("TRIM_HORIZON", None)

            self._seek = latest
        elif isinstance(start, datetime):
            when = start if start.tzinfo else start.replace(tzinfo=UTC)
            self._seek = lambda s: ("AT_TIMESTAMP", when)
        else:
            named = {_shard_id(int(p)): str(o) for p, o in start.items()}
            done = _ancestors(named, by_id)

            def placed(s: _Shard) -> tuple[str, Any]:
                if s.id in named:
                    return ("AFTER_SEQUENCE_NUMBER", named[s.id])
                return ("DONE", None) if s.id in done else ("TRIM_HORIZON", None)

            self._seek = placed
        for s in shards:  # placed now: a lease taken later starts here too
            self._reader(s)

    def _reader(self, shard: _Shard) -> _Reader:
        reader = self._readers.get(shard.id)
        if reader is None:
            if self._seek is not None:
                start = self._seek(shard)
            else:
                start = self.broker._start_of(self._items.get(shard.id))
            reader = _Reader(shard, start)
            if start[0] == "AFTER_SEQUENCE_NUMBER":
                reader.committed = reader.after = start[1]
            if start[0] == "DONE":
                reader.ended = True
            self._readers[shard.id] = reader
        return reader

    # -- reading ----------------------------------------------------------------------------

    def poll(self, *, max_records: int = 10_000, timeout: float = 1.0) -> pa.Table:
        deadline = time.monotonic() + timeout
        first = True
        while True:
            shards = self._refresh(force=first and self._refreshed == -math.inf)
            first = False
            out: list[pa.Table] = []
            left = max_records
            order = shards[self._turn % len(shards):] + shards[:self._turn % len(shards)] \
                if shards else []
            self._turn += 1
            for shard in order:
                if left <= 0:
                    break
                reader = self._reader(shard)
                if reader.ended or reader.claimed_at is not None or \
                        time.monotonic() < reader.not_before:
                    continue
                table = self._read(reader, left)
                if table.num_rows:
                    out.append(table)
                    left -= table.num_rows
            if out:
                return pa.concat_tables(out) if len(out) > 1 else out[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _empty()
            time.sleep(min(_IDLE_SLEEP_S, remaining))

    def _read(self, reader: _Reader, limit: int) -> pa.Table:
        """One GetRecords call on the reader's shard."""
        b, shard = self.broker, reader.shard
        if reader.iterator is None:
            reader.iterator = self._open_iterator(reader)
            if reader.iterator is None:
                return _empty()
        from botocore.exceptions import ClientError

        try:
            got = b._get(self.topic, reader.iterator, limit)
        except BrokerError as exc:
            if "ExpiredIteratorException" not in exc.message:
                raise
            reader.iterator = self._open_iterator(reader)
            got = b._get(self.topic, reader.iterator, limit) if reader.iterator else {}
        except ClientError:  # pragma: no cover - _call wraps them all
            raise
        records = got.get("Records", [])
        reader.iterator = got.get("NextShardIterator")
        if not records:
            reader.not_before = time.monotonic() + _IDLE_SLEEP_S
            if reader.iterator is None or (got.get("MillisBehindLatest", 0) == 0 and
                                           self._closed(shard)):
                self._end(reader)
            return _empty()
        seqs = [r["SequenceNumber"] for r in records]
        reader.after = seqs[-1]
        reader.pending = True
        if reader.iterator is None:
            self._end(reader)
        keys = pa.array([r.get("PartitionKey") for r in records], pa.string())
        keys = pc.if_else(pc.equal(keys, _NO_KEY), pa.nulls(len(keys), pa.string()), keys)
        stamps = pa.array([r["ApproximateArrivalTimestamp"] for r in records],
                          pa.timestamp("us", tz="UTC")).cast(_TS, safe=False)
        return records_table(shard.number, pa.array(seqs, _OFFSET), keys.cast(pa.binary()),
                             pa.array([r["Data"] for r in records], pa.binary()), stamps,
                             offset_type=_OFFSET)

    def _closed(self, shard: _Shard) -> bool:
        """Whether ``shard`` is closed (read the shard list again if it was open)."""
        if shard.closed:
            return True
        fresh = {s.id: s for s in self.broker.shards(self.topic, max_age=1.0)}
        return shard.id in fresh and fresh[shard.id].closed

    def _open_iterator(self, reader: _Reader) -> str | None:
        kind, arg = reader.start
        if reader.after is not None:
            kind, arg = "AFTER_SEQUENCE_NUMBER", reader.after
        if kind == "DONE":
            reader.ended = True
            return None
        if kind == "ITERATOR":
            reader.start = ("LATEST", None)
            return arg
        kw = {"StartingSequenceNumber": arg} if kind in ("AFTER_SEQUENCE_NUMBER",
                                                          "AT_SEQUENCE_NUMBER") else \
            {"Timestamp": arg} if kind == "AT_TIMESTAMP" else {}
        return self.broker._iterator(self.topic, reader.shard.id, kind, **kw)

    def _end(self, reader: _Reader) -> None:
        """The shard is read to its end: its children may start; the group learns it ended
        once what was read of it is committed."""
        reader.ended = True
        self.broker._shards.pop(self.topic, None)  # the children appear in a fresh list
        if not reader.pending:
            self._mark_ended(reader)

    def _mark_ended(self, reader: _Reader) -> None:
        if self.scratch:
            return
        values: dict[str, Any] = {":e": True}
        expression = "SET ended = :e"
        if reader.after is not None:
            expression += ", checkpoint = :c"
            values[":c"] = reader.after
        self.broker._update(self.topic, self.group, reader.shard.id, expression, values)
        self._ended.add(reader.shard.id)

    # -- positions --------------------------------------------------------------------------

    def commit(self, positions: Positions) -> None:
        if not positions:
            return
        if self.static and self._partitions is not None:
            bad = sorted(set(positions) - set(self._partitions))
            if bad:
                raise BrokerError(f"this consumer of '{self.topic}' (group '{self.group}') is "
                                  f"not assigned partitions {bad}",
                                  hint=f"it reads partitions {self._partitions}")
        if self.scratch:
            return
        for p, offset in positions.items():
            shard_id, seq = _shard_id(int(p)), str(offset)
            reader = self._readers.get(shard_id)
            caught_up = reader is not None and reader.after is not None and \
                int(seq) >= int(reader.after)
            ended = caught_up and reader is not None and reader.ended
            values: dict[str, Any] = {":c": seq}
            expression = "SET checkpoint = :c"
            if ended:
                expression += ", ended = :e"
                values[":e"] = True
            condition = names = None
            if not self.static:
                values[":me"] = self.owner
                condition, names = "#o = :me OR attribute_not_exists(#o)", {"#o": "owner"}
            if not self.broker._update(self.topic, self.group, shard_id, expression, values,
                                       condition, names):
                log.warning("kinesis_commit_lease_lost", topic=self.topic, group=self.group,
                            shard=shard_id)
                continue
            if reader is not None:
                reader.committed = seq
                if caught_up:
                    reader.pending = False
                if ended:
                    self._ended.add(shard_id)
        if not self.static:
            self._refreshed = -math.inf  # hand claimed leases over soon

    def committed(self) -> Positions:
        """The group's checkpoints: on the assigned shards, or (leases) on every shard."""
        if self.scratch:
            return {}
        items = self.broker._items(self.topic, self.group)
        wanted = None if not self.static else set(self._partitions or [])
        return {shard_number(s): item["checkpoint"] for s, item in sorted(items.items())
                if item.get("checkpoint") and (wanted is None or shard_number(s) in wanted)}

    def close(self) -> None:
        for shard_id in sorted(self._held):
            try:
                self._release(shard_id)
            except BrokerError as exc:  # unreachable: the lease expires by itself
                log.debug("kinesis_release_failed", error=exc.message)
                break
        self._held.clear()
        self._readers.clear()


def _ancestors(named: Mapping[str, str], by_id: Mapping[str, _Shard]) -> set[str]:
    """Every shard that is a parent (transitively) of a shard in ``named``: read already."""
    done: set[str] = set()
    todo = [p for s in named if s in by_id for p in by_id[s].parents]
    while todo:
        shard = todo.pop()
        if shard not in done:
            done.add(shard)
            if shard in by_id:
                todo.extend(by_id[shard].parents)
    return done


def _empty() -> pa.Table:
    return RECORD_SCHEMA.set(1, pa.field("offset", _OFFSET)).empty_table()


def from_spec(spec: KinesisBrokerSpec, root: Path) -> KinesisBroker:
    """The broker a ``KinesisBrokerSpec`` describes (``root`` is not used: nothing is local)."""
    secret = spec.aws_secret_access_key
    token = spec.aws_session_token
    return KinesisBroker(
        region=spec.region, endpoint_url=spec.endpoint_url,
        access_key_id=spec.aws_access_key_id.get_secret_value()
        if spec.aws_access_key_id else None,
        secret_access_key=secret.get_secret_value() if secret else None,
        session_token=token.get_secret_value() if token else None, profile=spec.profile,
        stream_prefix=spec.stream_prefix, lease_table=spec.lease_table,
        lease_duration_s=duration_ms(spec.lease_duration) / 1000, retries=spec.retries,
        connect_timeout=spec.connect_timeout, name=spec._name)

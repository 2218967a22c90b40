"""The embedded durable log: the default broker, files on disk, no server.

Layout under the broker's folder (``.headwater/streams`` by default)::

    <topic>/topic.json                 format version and partition count
    <topic>/writer.lock                held (fcntl) by the one process that writes the topic
    <topic>/groups/<group>.json        a consumer group's committed positions (atomic rename)
    <topic>/p<N>/<base offset>.log     a segment: frames, one per produce call and partition
    <topic>/p<N>/<base offset>.idx     its index: one 32-byte entry per frame

A **frame** is a 32-byte header (magic ``HWL1``, payload length, CRC32, first offset, record
count, newest timestamp) followed by one Arrow IPC record-batch message (offset, key, value,
timestamp). Offsets are contiguous per partition: a frame's records have ``first offset + row``;
they are stored so that a reader hands out the frame's own buffers (zero-copy from the map).

The index entry of a frame (first offset, file position, newest timestamp, count) is written
after the frame, and after its fsync where the policy asks for one: readers, in this process or
others, read only indexed frames, so they never see a half-written one. A writer that opens a
topic checks the active segment frame by frame (length, CRC) and truncates a torn tail left by a
crash, then rebuilds the index from the frames.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.brokers._base import (
    PRODUCE_SCHEMA,
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Consumer,
    Offset,
    Positions,
    StartAt,
    TopicInfo,
    unknown_topic,
)
from headwater.brokers._partition import partition_for
from headwater.brokers._records import normalise
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config import EmbeddedBrokerSpec

log = get_logger(__name__)

FORMAT_VERSION = 1
MAGIC = b"HWL1"
#: magic, payload length, CRC32 (of the rest of the header and the payload), first offset,
#: record count, newest timestamp (ms since the epoch).
HEADER = struct.Struct("<4sIIqiq")
_CRC_FROM = 12  # the CRC covers the header from here on, then the payload
_HEADER_REST = struct.Struct("<qiq")
_NO_HEADER = bytes(HEADER.size)  # written first when the CRC is still being computed
_CRC_ASIDE = 1 << 20  # payloads this big get their CRC computed while they are written
INDEX_DTYPE = np.dtype([("offset", "<i8"), ("position", "<i8"), ("max_ts", "<i8"),
                        ("count", "<i8")])
#: What one frame holds (the partition is implied by where it is).
FRAME_SCHEMA = pa.schema([("offset", pa.int64()), *PRODUCE_SCHEMA])
FsyncPolicy = Literal["always", "batch", "interval", "never"]
FSYNC_POLICIES = ("always", "batch", "interval", "never")
_MAX_FRAME_BYTES = 256 << 20
_RETENTION_EVERY_S = 30.0  # also when a writer opens and whenever a segment is sealed
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$")


# -- frames ------------------------------------------------------------------------------------


def frame_payload(batch: pa.RecordBatch, first_offset: int) -> tuple[pa.Buffer, bytes]:
    """The Arrow IPC message of a frame of ``batch`` (key, value, timestamp) whose records get
    offsets from ``first_offset`` on, and the header fields after the CRC (first offset,
    count, newest timestamp) that the CRC covers too."""
    n = batch.num_rows
    offsets = pa.array(np.arange(first_offset, first_offset + n, dtype=np.int64))
    payload = pa.RecordBatch.from_arrays([offsets, *batch.columns],
                                         schema=FRAME_SCHEMA).serialize()
    max_ts = pc.max(batch.column(2).cast(pa.int64())).as_py() or 0
    return payload, _HEADER_REST.pack(first_offset, n, max_ts)


def frame_header(payload: pa.Buffer, rest: bytes, crc: int | None = None) -> bytes:
    """A frame's 32-byte header (the CRC computed here unless given)."""
    if crc is None:
        crc = zlib.crc32(payload, zlib.crc32(rest))
    return MAGIC + struct.pack("<II", payload.size, crc) + rest


def encode_frame(batch: pa.RecordBatch, first_offset: int) -> bytes:
    """One whole frame, header and payload (what a segment holds)."""
    payload, rest = frame_payload(batch, first_offset)
    return frame_header(payload, rest) + payload.to_pybytes()


def scan_frames(data: bytes | memoryview, first_offset: int) -> tuple[np.ndarray, int]:
    """Walk the frames of a segment from its start, checking each (magic, length, offsets, CRC).

    Returns the index entries of the whole frames and the byte length they cover: whatever
    follows (a frame torn by a crash, garbage) is not a record and must be cut off.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    entries: list[tuple[int, int, int, int]] = []
    pos, expected = 0, first_offset
    while pos + HEADER.size <= size:
        magic, length, crc, first, count, max_ts = HEADER.unpack_from(view, pos)
        end = pos + HEADER.size + length
        if magic != MAGIC or first != expected or count <= 0 or end > size:
            break
        head = zlib.crc32(view[pos + _CRC_FROM:pos + HEADER.size])
        if zlib.crc32(view[pos + HEADER.size:end], head) != crc:
            break
        entries.append((first, pos, max_ts, count))
        pos, expected = end, first + count
    return np.array(entries, dtype=INDEX_DTYPE), pos


# -- files -------------------------------------------------------------------------------------


def _segment_name(base: int, suffix: str) -> str:
    return f"{base:020d}{suffix}"


def _segments(folder: Path) -> list[int]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())


def _read_index(path: Path, start: int = 0) -> np.ndarray:
    """Index entries from entry ``start`` on (a partly written last entry is left out)."""
    try:
        with open(path, "rb") as f:
            f.seek(start * INDEX_DTYPE.itemsize)
            raw = f.read()
    except FileNotFoundError:
        return np.zeros(0, dtype=INDEX_DTYPE)
    whole = len(raw) - len(raw) % INDEX_DTYPE.itemsize
    return np.frombuffer(raw[:whole], dtype=INDEX_DTYPE)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part (rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pwrite_all(fd: int, parts: Sequence[bytes | pa.Buffer], position: int) -> None:
    written = os.pwritev(fd, parts, position)
    total = sum(memoryview(p).nbytes for p in parts)
    if written < total:  # a short write (a signal, a full disk): finish it or fail
        view = memoryview(b"".join(memoryview(p) for p in parts))[written:]
        while view:
            done = os.pwrite(fd, view, position + written)
            view, written = view[done:], written + done


_crc_pool: ThreadPoolExecutor | None = None


def _crc_aside(payload: pa.Buffer, rest: bytes) -> Future[int]:
    """The CRC of a big payload, computed on another thread (zlib releases the GIL) while this
    one writes the payload."""
    global _crc_pool
    if _crc_pool is None:
        _crc_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headwater-crc")
    return _crc_pool.submit(zlib.crc32, payload, zlib.crc32(rest))


def check_name(name: str, what: str) -> str:
    """A topic or group name that is also a safe folder name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise BrokerError(f"{what} name {name!r} is not allowed in the embedded log",
                          hint="use letters, digits, '.', '_' and '-' (not starting with '.' "
                          "or '-'), at most 200 characters")
    return name


# -- writing -----------------------------------------------------------------------------------


class _PartitionWriter:
    """Appends frames to one partition's active segment; rolls segments; applies retention."""

    def __init__(self, folder: Path, *, segment_bytes: int, sync_on_roll: bool) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self.sync_on_roll = sync_on_roll
        self.rolled = False
        self.log_fd = -1
        self.idx_fd = -1
        self.base = 0
        self.size = 0
        self.next_offset = 0
        self.dirty = False
        self.pending: list[bytes] = []
        self._recover()

    def _recover(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(self.folder):  # an index whose segment a crash did not create
            if name.endswith(".idx") and not (self.folder / (name[:-4] + ".log")).exists():
                (self.folder / name).unlink(missing_ok=True)
        segments = _segments(self.folder) or [0]
        for base in segments[:-1]:  # sealed: their index was not fsynced, so check its end
            if not _index_covers_segment(self.folder, base):
                self._repair(base)
        valid, entries = self._repair(segments[-1])
        self._open_segment(segments[-1], valid)
        self.next_offset = segments[-1] + int(entries["count"].sum())

    def _repair(self, base: int) -> tuple[int, np.ndarray]:
        """Check a segment frame by frame; cut off a torn tail; make its index match."""
        log_path = self.folder / _segment_name(base, ".log")
        idx_path = self.folder / _segment_name(base, ".idx")
        data = log_path.read_bytes() if log_path.exists() else b""
        entries, valid = scan_frames(data, base)
        if valid < len(data):
            log.warning("embedded_log_torn_tail", segment=str(log_path), kept_bytes=valid,
                        dropped_bytes=len(data) - valid)
        if not np.array_equal(_read_index(idx_path), entries):
            _write_atomic(idx_path, entries.tobytes())  # index first: readers never pass it
        if valid < len(data):
            os.truncate(log_path, valid)
        return valid, entries

    def _open_segment(self, base: int, size: int) -> None:
        self.close()
        self.idx_fd = os.open(self.folder / _segment_name(base, ".idx"),
                              os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # frames are written at known positions (a header may be patched in after its payload)
        self.log_fd = os.open(self.folder / _segment_name(base, ".log"),
                              os.O_WRONLY | os.O_CREAT, 0o644)
        self.base, self.size = base, size

    def append(self, batch: pa.RecordBatch, *, sync: bool) -> None:
        """Write one frame; its index entry waits for :meth:`publish`."""
        payload, rest = frame_payload(batch, self.next_offset)
        length = HEADER.size + payload.size
        if self.size and self.size + length > self.segment_bytes:
            self.roll()
        position = self.size
        if payload.size >= _CRC_ASIDE:  # the header (with the CRC) goes in after the payload
            crc = _crc_aside(payload, rest)
            _pwrite_all(self.log_fd, [_NO_HEADER, payload], position)
            _pwrite_all(self.log_fd, [frame_header(payload, rest, crc.result())], position)
        else:
            _pwrite_all(self.log_fd, [frame_header(payload, rest), payload], position)
        self.size += length
        if sync:
            os.fsync(self.log_fd)
        else:
            self.dirty = True
        max_ts = _HEADER_REST.unpack(rest)[2]
        self.pending.append(np.array([(self.next_offset, position, max_ts, batch.num_rows)],
                                     dtype=INDEX_DTYPE).tobytes())
        self.next_offset += batch.num_rows

    def publish(self, *, sync: bool = False) -> None:
        """Make the frames written so far visible to readers: append their index entries."""
        if self.pending:
            os.write(self.idx_fd, b"".join(self.pending))
            self.pending.clear()
            if sync:
                os.fsync(self.idx_fd)

    def sync(self) -> None:
        if self.dirty:
            os.fsync(self.log_fd)
            self.dirty = False

    def roll(self) -> None:
        """Seal the active segment and start a new one. Its frames are fsynced (unless the
        policy is ``never``) and indexed first, so a reader that sees the new segment knows
        the old one is complete."""
        if self.sync_on_roll:
            self.sync()
        self.publish()
        self.dirty = False
        self.rolled = True
        self._open_segment(self.next_offset, 0)
        if self.sync_on_roll:
            _fsync_dir(self.folder)

    def apply_retention(self, *, max_bytes: int | None, max_age_ms: int | None) -> int:
        """Delete whole old segments (never the active one); returns how many."""
        self.rolled = False
        if max_bytes is None and max_age_ms is None:
            return 0
        segments = [s for s in _segments(self.folder) if s != self.base]
        sizes = [(self.folder / _segment_name(s, ".log")).stat().st_size for s in segments]
        total = sum(sizes) + self.size
        cutoff = int(time.time() * 1000) - max_age_ms if max_age_ms is not None else None
        deleted = 0
        for base, size in zip(segments, sizes, strict=True):
            too_big = max_bytes is not None and total > max_bytes
            too_old = cutoff is not None and _newest(self.folder, base) < cutoff
            if not (too_big or too_old):
                break
            (self.folder / _segment_name(base, ".log")).unlink(missing_ok=True)
            (self.folder / _segment_name(base, ".idx")).unlink(missing_ok=True)
            total -= size
            deleted += 1
        return deleted

    def close(self) -> None:
        for fd in (self.log_fd, self.idx_fd):
            if fd >= 0:
                os.close(fd)
        self.log_fd = self.idx_fd = -1


def _index_covers_segment(folder: Path, base: int) -> bool:
    """Whether a sealed segment's index ends where its last frame ends (a cheap check)."""
    idx_path = folder / _segment_name(base, ".idx")
    log_path = folder / _segment_name(base, ".log")
    try:
        if idx_path.stat().st_size % INDEX_DTYPE.itemsize:
            return False
        size = log_path.stat().st_size
        entries = _read_index(idx_path, max(0, idx_path.stat().st_size // INDEX_DTYPE.itemsize - 1))
        if not len(entries):
            return size == 0
        position = int(entries[-1]["position"])
        with open(log_path, "rb") as f:
            f.seek(position)
            header = f.read(HEADER.size)
    except FileNotFoundError:
        return False
    return len(header) == HEADER.size and position + HEADER.size + HEADER.unpack(header)[1] == size


def _newest(folder: Path, base: int) -> int:
    entries = _read_index(folder / _segment_name(base, ".idx"))
    return int(entries["max_ts"].max()) if len(entries) else -(1 << 62)


class _TopicWriter:
    """The one writer of a topic in this process: holds the topic's writer lock."""

    def __init__(self, folder: Path, partitions: int, broker: EmbeddedBroker) -> None:
        self.folder = folder
        self.broker = broker
        self.lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._next_retention = 0.0
        self._lock_fd = os.open(folder / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self._lock_fd)
            raise BrokerError(
                f"topic '{folder.name}' in {folder.parent} is being written by another "
                f"writer (pid {holder})",
                hint="the embedded log takes one writer per topic: produce from that process "
                "or stop it, or use a server broker (nats, kafka) for several writers") from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)
        self.partitions = [
            _PartitionWriter(folder / f"p{p}", segment_bytes=broker.segment_bytes,
                             sync_on_roll=broker.fsync != "never")
            for p in range(partitions)
        ]
        for writer in self.partitions:
            self._retention(writer)

    def write(self, parts: Mapping[int, list[pa.RecordBatch]]) -> None:
        policy = self.broker.fsync
        with self.lock:
            if self._lock_fd < 0:
                raise BrokerError(f"the writer of topic '{self.folder.name}' is closed",
                                  hint="open the broker again")
            for p, batches in parts.items():
                writer = self.partitions[p]
                for batch in batches:
                    writer.append(batch, sync=policy == "always")
                if policy != "batch":
                    writer.publish(sync=policy == "always")
            if policy == "batch":  # every partition fsynced, then all made visible
                for p in parts:
                    self.partitions[p].sync()
                for p in parts:
                    self.partitions[p].publish()
            due = time.monotonic() >= self._next_retention
            for writer in self.partitions:
                if due or writer.rolled:
                    self._retention(writer)
            if policy == "interval" and self._timer is None:
                self._timer = threading.Timer(self.broker.fsync_interval_ms / 1000, self._tick)
                self._timer.daemon = True
                self._timer.start()

    def _retention(self, writer: _PartitionWriter) -> None:
        self._next_retention = time.monotonic() + _RETENTION_EVERY_S
        deleted = writer.apply_retention(max_bytes=self.broker.retention_bytes,
                                         max_age_ms=self.broker.retention_ms)
        if deleted:
            log.info("embedded_log_retention", partition=str(writer.folder), segments=deleted)

    def _tick(self) -> None:
        with self.lock:
            self._timer = None
            for writer in self.partitions:
                if writer.log_fd >= 0:
                    writer.sync()

    def close(self) -> None:
        with self.lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            for writer in self.partitions:
                if self.broker.fsync != "never" and writer.log_fd >= 0:
                    writer.sync()
                writer.close()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = -1


# -- reading -----------------------------------------------------------------------------------


class _Segment:
    """One segment as a reader sees it: its index (grown as the writer appends) and a map."""

    def __init__(self, folder: Path, base: int, *, check_crc: bool) -> None:
        self.base = base
        self.check_crc = check_crc
        self.log_path = folder / _segment_name(base, ".log")
        self.idx_path = folder / _segment_name(base, ".idx")
        self.entries = np.zeros(0, dtype=INDEX_DTYPE)
        self._buffer: pa.Buffer | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Read the index entries appended since the last look; True if there were any."""
        new = _read_index(self.idx_path, len(self.entries))
        if len(new):
            self.entries = np.concatenate([self.entries, new])
        return bool(len(new))

    @property
    def end(self) -> int:
        """The offset after the last indexed record."""
        if not len(self.entries):
            return self.base
        last = self.entries[-1]
        return int(last["offset"] + last["count"])

    def frame(self, i: int) -> pa.RecordBatch:
        """The records of frame ``i`` (zero-copy from the memory map)."""
        position = int(self.entries[i]["position"])
        buffer = self._buffer
        if buffer is None or buffer.size < position + HEADER.size:
            buffer = self._map()
        header = buffer.slice(position, HEADER.size).to_pybytes()
        magic, length, crc, *_ = HEADER.unpack(header)
        if buffer.size < position + HEADER.size + length:
            buffer = self._map()
        payload = buffer.slice(position + HEADER.size, length)
        if magic != MAGIC or (
                self.check_crc and zlib.crc32(payload, zlib.crc32(header[_CRC_FROM:])) != crc):
            raise BrokerError(f"corrupt frame in {self.log_path} at byte {position}",
                              hint="restore the file from a backup, or delete this segment "
                              "(and the records in it) and its .idx file")
        return pa.ipc.read_record_batch(payload, FRAME_SCHEMA)

    def _map(self) -> pa.Buffer:
        with pa.memory_map(str(self.log_path)) as mapped:
            self._buffer = mapped.read_buffer()  # the buffer keeps the mapping alive
        return self._buffer


class _PartitionReader:
    """Reads one partition from an offset on, segment by segment, frames sliced to records."""

    def __init__(self, folder: Path, partition: int, *, check_crc: bool) -> None:
        self.folder = folder
        self.partition = partition
        self.check_crc = check_crc
        self._segments: dict[int, _Segment] = {}
        self._bases: list[int] = []
        self._partition_column = pa.array(np.zeros(0, dtype=np.int32))

    def _segment(self, base: int) -> _Segment:
        seg = self._segments.get(base)
        if seg is None:
            seg = self._segments[base] = _Segment(self.folder, base, check_crc=self.check_crc)
        return seg

    def bases(self) -> list[int]:
        """The segments on disk now (retention deletes old ones, the writer adds new ones)."""
        self._bases = _segments(self.folder)
        for gone in set(self._segments) - set(self._bases):
            del self._segments[gone]
        return self._bases

    def earliest(self) -> int:
        """The oldest offset still kept (what ``earliest`` starts at)."""
        bases = self.bases()
        return bases[0] if bases else 0

    def end(self) -> int:
        """The offset the next record produced will get."""
        bases = self.bases()
        if not bases:
            return 0
        seg = self._segment(bases[-1])
        seg.refresh()
        return seg.end

    def offset_for_time(self, ms: int) -> int:
        """The first offset whose timestamp is at or after ``ms`` (the end if none is).

        Binary search over each segment's running maximum of the frames' newest timestamps,
        then within the one frame found.
        """
        for base in self.bases():
            seg = self._segment(base)
            seg.refresh()
            if not len(seg.entries):
                continue
            newest = np.maximum.accumulate(seg.entries["max_ts"])
            if newest[-1] < ms:
                continue
            i = int(np.searchsorted(newest, ms, side="left"))
            ts = seg.frame(i).column("timestamp").cast(pa.int64()).to_numpy()
            return int(seg.entries[i]["offset"]) + int(np.argmax(ts >= ms))
        return self.end()

    def read(self, offset: int, max_records: int) -> tuple[list[pa.RecordBatch], int]:
        """Records from ``offset`` on (at most ``max_records``) and the offset after them."""
        try:
            return self._read(offset, max_records)
        except FileNotFoundError:  # retention deleted a segment while we were at it
            self.bases()
            return self._read(offset, max_records)

    def _read(self, offset: int, max_records: int) -> tuple[list[pa.RecordBatch], int]:
        out: list[pa.RecordBatch] = []
        bases = self._bases
        if not bases or offset < bases[0]:
            bases = self.bases()
            if not bases:
                return out, offset
            if offset < bases[0]:
                log.warning("embedded_log_records_expired", partition=str(self.folder),
                            wanted=offset, earliest=bases[0])
                offset = bases[0]
        k = bisect.bisect_right(bases, offset) - 1
        while max_records > 0:
            seg = self._segment(bases[k])
            if offset >= seg.end:
                seg.refresh()
            if offset < seg.end:
                i = int(np.searchsorted(seg.entries["offset"], offset, side="right")) - 1
                while max_records > 0 and i < len(seg.entries):
                    first, count = int(seg.entries[i]["offset"]), int(seg.entries[i]["count"])
                    take = min(first + count - offset, max_records)
                    out.append(self._records(seg.frame(i).slice(offset - first, take)))
                    offset += take
                    max_records -= take
                    i += 1
                continue
            if k + 1 >= len(bases):
                bases = self.bases()  # has the writer sealed this segment since?
                # retention may have deleted segments meanwhile, ours too: place offset again
                k = bisect.bisect_right(bases, offset) - 1
                if k < 0:
                    break
                if bases[k] != seg.base:
                    continue
            if k + 1 >= len(bases):
                break
            if bases[k + 1] != offset and not seg.refresh():
                # sealed (so indexed to its end) and short of the next: frames lost to a power
                # cut under fsync never
                log.warning("embedded_log_gap", partition=str(self.folder), lost_from=offset,
                            lost_to=bases[k + 1] - 1)
                offset = bases[k + 1]
            if bases[k + 1] == offset:
                k += 1
        return out, offset

    def _records(self, frame: pa.RecordBatch) -> pa.RecordBatch:
        """A frame's records with their partition (a slice of one constant column)."""
        n = frame.num_rows
        if len(self._partition_column) < n:
            self._partition_column = pa.array(np.full(max(n, 1 << 16), self.partition,
                                                      dtype=np.int32))
        return pa.RecordBatch.from_arrays([self._partition_column.slice(0, n), *frame.columns],
                                          schema=RECORD_SCHEMA)


# -- the broker --------------------------------------------------------------------------------


class EmbeddedBroker(Broker):
    """The embedded durable log: partitioned segment files of Arrow batches under ``path``.

    Parameters (recorded; nothing is opened until used):

    - ``fsync``: when appends reach the disk: ``always`` (every frame and its index entry),
      ``batch`` (each partition once per ``produce`` call, the default), ``interval``
      (within ``fsync_interval_ms``, by a timer) or ``never`` (the operating system decides).
      A kill -9 loses nothing that ``produce`` acknowledged under any policy; a power cut may
      lose what was not fsynced yet.
    - ``segment_bytes``: a partition's active segment is sealed and a new one started past this.
    - ``retention_bytes`` / ``retention_ms``: per partition, whole old segments are deleted while
      the partition is bigger, or while a segment's newest record is older (``None``: keep all).
    - ``check_crcs``: readers verify every frame's CRC too (a writer always checks the active
      segment when it opens it).

    >>> import tempfile, pyarrow as pa
    >>> broker = EmbeddedBroker(tempfile.mkdtemp())
    >>> broker.create_topic("events", partitions=2)
    >>> broker.produce("events", pa.table({"key": [b"a", b"b"], "value": [b"1", b"2"]}))
    2
    >>> broker.consumer("events", group="g").poll(timeout=0).num_rows
    2
    >>> broker.close()
    """

    kind = "embedded"

    def __init__(self, path: str | Path, *, fsync: FsyncPolicy = "batch",
                 fsync_interval_ms: int = 1000, segment_bytes: int = 256 << 20,
                 retention_bytes: int | None = None, retention_ms: int | None = None,
                 check_crcs: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.fsync_interval_ms = fsync_interval_ms
        self.segment_bytes = segment_bytes
        self.retention_bytes = retention_bytes
        self.retention_ms = retention_ms
        self.check_crcs = check_crcs
        self._writers: dict[str, _TopicWriter] = {}
        self._known: dict[str, tuple[Path, int]] = {}  # topic -> folder, partitions
        self._lock = threading.Lock()

    # topics

    def _topic(self, topic: str) -> tuple[Path, int]:
        known = self._known.get(topic)
        if known is not None:
            return known
        folder = self.path / check_name(topic, "topic")
        try:
            meta = json.loads((folder / "topic.json").read_text())
        except FileNotFoundError:
            raise unknown_topic(topic, f"in the embedded log at {self.path}",
                                list(self._names())) from None
        if meta.get("format", 0) > FORMAT_VERSION:
            raise BrokerError(f"topic '{topic}' at {folder} has log format {meta['format']}, "
                              f"newer than this headwater reads ({FORMAT_VERSION})",
                              hint="upgrade headwater")
        self._known[topic] = folder, int(meta["partitions"])
        return self._known[topic]

    def _names(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        return [n for n in names if (self.path / n / "topic.json").exists()]

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        folder = self.path / check_name(topic, "topic")
        if (folder / "topic.json").exists():
            return
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise BrokerError(f"topic '{topic}': partitions must be a whole number >= 1, "
                              f"got {partitions!r}", hint="use 1 or more partitions")
        for p in range(partitions):
            (folder / f"p{p}").mkdir(parents=True, exist_ok=True)
        (folder / "groups").mkdir(exist_ok=True)
        from headwater._version import __version__

        _write_atomic(folder / "topic.json", json.dumps(
            {"format": FORMAT_VERSION, "partitions": partitions, "headwater": __version__,
             "created": datetime.now(UTC).isoformat()}).encode())

    def topics(self) -> list[TopicInfo]:
        out = []
        for name in self._names():
            folder, n = self._topic(name)
            records = size = 0
            for p in range(n):
                reader = self._reader(folder, p)
                records += reader.end() - reader.earliest()
                size += sum(f.stat().st_size for f in (folder / f"p{p}").glob("*.log"))
            out.append(TopicInfo(name, n, records=records, bytes=size))
        return out

    def partitions(self, topic: str) -> list[int]:
        return list(range(self._topic(topic)[1]))

    def groups(self, topic: str) -> list[str]:
        folder, _ = self._topic(topic)
        return sorted(p.stem for p in (folder / "groups").glob("*.json"))

    # writing

    def produce(self, topic: str, records: pa.Table) -> int:
        folder, n = self._topic(topic)
        table = normalise(records, topic)
        if table.num_rows == 0:
            return 0
        parts = _split(table, n)
        with self._lock:
            writer = self._writers.get(topic)
            if writer is None:
                if self.fsync not in FSYNC_POLICIES:
                    raise BrokerError(f"unknown fsync policy {self.fsync!r}",
                                      hint=f"use one of {', '.join(FSYNC_POLICIES)}")
                writer = self._writers[topic] = _TopicWriter(folder, n, self)
        writer.write(parts)
        return table.num_rows

    # reading

    def _reader(self, folder: Path, partition: int) -> _PartitionReader:
        return _PartitionReader(folder / f"p{partition}", partition, check_crc=self.check_crcs)

    def consumer(self, topic: str, *, group: str,
                 partitions: Sequence[int] | None = None) -> EmbeddedConsumer:
        folder, n = self._topic(topic)
        check_name(group, "consumer group")
        chosen = list(range(n)) if partitions is None else sorted(set(partitions))
        bad = [p for p in chosen if not 0 <= p < n]
        if bad:
            raise BrokerError(f"topic '{topic}' has partitions 0..{n - 1}, not {bad}",
                              hint="`headwater stream topics` shows the partition counts")
        return EmbeddedConsumer(self, topic, group, folder, chosen)

    def end_positions(self, topic: str) -> Positions:
        folder, n = self._topic(topic)
        ends = {p: self._reader(folder, p).end() - 1 for p in range(n)}
        return {p: e for p, e in ends.items() if e >= 0}

    def reset_group(self, topic: str, group: str, start: StartAt) -> Positions:
        consumer = self.consumer(topic, group=group)
        consumer.seek(start)
        positions: Positions = {p: o - 1 for p, o in consumer.next_offsets().items()}
        _commit(consumer.folder, group, positions, replace=True)
        return positions

    def describe(self) -> str:
        return f"embedded log at {self.path} (fsync {self.fsync})"

    def close(self) -> None:
        with self._lock:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()


def _split(table: pa.Table, partitions: int) -> dict[int, list[pa.RecordBatch]]:
    """Per partition, the table's rows in their order, as frames of bounded size."""
    if partitions == 1:
        groups = {0: table}
    else:
        parts = partition_for(table["key"], partitions)
        counts = np.bincount(parts, minlength=partitions)
        small = parts.astype(np.uint16) if partitions <= 1 << 16 else parts  # radix sort
        ordered = table.take(pa.array(np.argsort(small, kind="stable")))
        groups, start = {}, 0
        for p in np.nonzero(counts)[0].tolist():
            groups[p] = ordered.slice(start, int(counts[p]))
            start += int(counts[p])
    out: dict[int, list[pa.RecordBatch]] = {}
    for p, part in groups.items():
        step = -(-part.num_rows // max(1, -(-part.nbytes // _MAX_FRAME_BYTES)))
        out[p] = [part.slice(i, step).combine_chunks().to_batches()[0]
                  for i in range(0, part.num_rows, step)]
    return out


# -- consuming ---------------------------------------------------------------------------------


def _group_file(folder: Path, group: str) -> Path:
    return folder / "groups" / f"{group}.json"


@contextlib.contextmanager
def _group_lock(folder: Path, group: str) -> Iterator[None]:
    (folder / "groups").mkdir(exist_ok=True)
    fd = os.open(folder / "groups" / f"{group}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load_group(folder: Path, group: str) -> dict[int, int]:
    try:
        data = json.loads(_group_file(folder, group).read_text())
    except FileNotFoundError:
        return {}
    return {int(p): int(o) for p, o in data["positions"].items()}


def _commit(folder: Path, group: str, positions: Mapping[int, Offset], *,
            replace: bool = False) -> None:
    with _group_lock(folder, group):
        merged = {} if replace else _load_group(folder, group)
        merged.update({int(p): int(o) for p, o in positions.items()})
        _write_atomic(_group_file(folder, group), json.dumps(
            {"format": FORMAT_VERSION, "updated": datetime.now(UTC).isoformat(),
             "positions": {str(p): o for p, o in sorted(merged.items())}}).encode())


class EmbeddedConsumer(Consumer):
    """A reader of one embedded topic for one group, on the partitions it was given."""

    def __init__(self, broker: EmbeddedBroker, topic: str, group: str, folder: Path,
                 partitions: list[int]) -> None:
        self.topic = topic
        self.group = group
        self.folder = folder
        self._partitions = partitions
        self._readers = {p: broker._reader(folder, p) for p in partitions}
        self._next: dict[int, int] | None = None
        self._turn = 0

    def assignment(self) -> list[int]:
        return list(self._partitions)

    def next_offsets(self) -> dict[int, int]:
        """Per assigned partition, the offset the next ``poll`` reads from."""
        if self._next is None:
            committed = self.committed()
            self._next = {p: int(committed[p]) + 1 if p in committed else r.earliest()
                          for p, r in self._readers.items()}
        return dict(self._next)

    def seek(self, start: StartAt) -> None:
        readers = self._readers
        if start == "earliest":
            self._next = {p: r.earliest() for p, r in readers.items()}
        elif start == "latest":
            self._next = {p: r.end() for p, r in readers.items()}
        elif isinstance(start, datetime):
            when = start if start.tzinfo else start.replace(tzinfo=UTC)
            ms = int(when.timestamp() * 1000)
            self._next = {p: r.offset_for_time(ms) for p, r in readers.items()}
        elif isinstance(start, Mapping):
            self._next = {p: int(start[p]) + 1 if p in start else r.earliest()
                          for p, r in readers.items()}
        else:
            raise BrokerError(f"cannot seek to {start!r}",
                              hint="use 'earliest', 'latest', a datetime or {partition: offset}")

    def poll(self, *, max_records: int = 10_000, timeout: float = 1.0) -> pa.Table:
        nxt = self.next_offsets()
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            batches: list[pa.RecordBatch] = []
            order = self._partitions[self._turn:] + self._partitions[:self._turn]
            self._turn = (self._turn + 1) % max(1, len(self._partitions))
            left = max_records
            for p in order:
                if left <= 0:
                    break
                got, nxt[p] = self._readers[p].read(nxt[p], left)
                batches.extend(got)
                left -= sum(b.num_rows for b in got)
            self._next = dict(nxt)
            if batches or time.monotonic() >= deadline:
                return pa.Table.from_batches(batches, schema=RECORD_SCHEMA)
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.05)

    def commit(self, positions: Positions) -> None:
        bad = [p for p in positions if p not in self._readers]
        if bad:
            raise BrokerError(f"this consumer of '{self.topic}' (group '{self.group}') is not "
                              f"assigned partitions {sorted(bad)}",
                              hint=f"it reads partitions {self._partitions}")
        if positions:
            _commit(self.folder, self.group, positions)

    def committed(self) -> Positions:
        stored = _load_group(self.folder, self.group)
        return {p: o for p, o in stored.items() if p in self._readers}


def from_spec(spec: EmbeddedBrokerSpec, root: Path) -> EmbeddedBroker:
    """The broker an ``EmbeddedBrokerSpec`` describes; a relative path is under ``root``."""
    path = Path(spec.path).expanduser()
    return EmbeddedBroker(path if path.is_absolute() else Path(root) / path, fsync=spec.fsync,
                          fsync_interval_ms=spec.fsync_interval_ms,
                          segment_bytes=spec.segment_bytes, retention_bytes=spec.retention_bytes,
                          retention_ms=spec.retention_ms, check_crcs=spec.check_crcs)

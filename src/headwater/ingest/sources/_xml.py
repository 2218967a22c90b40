"""XML: one record per element at a record path, every value as text.

lxml's ``iterparse`` streams the document (memory stays bounded: each record is cleared once
read). Child elements become columns (``parent_child`` for nested ones), attributes become
``@name`` columns. XML is the one format without a columnar parser: records are gathered in
lxml's C parser and Python, then handed to Arrow a batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from headwater.core import POSITION, Batch, FileFormatError
from headwater.ingest.sources._detect import Detected
from headwater.ingest.sources._stream import RawReader


def read_xml(path: Path, detected: Detected, *, record_path: str | None = None,
             batch_rows: int = 250_000) -> Iterator[Batch]:
    """Yield batches of the records at ``record_path`` (``orders/order``; default: the
    repeated child of the root); ``_hw_pos`` is the 1-based record number."""
    from lxml import etree

    steps = [s for s in (record_path or "").strip("/").split("/") if s]
    raw = RawReader(path, detected.compression)
    columns: dict[str, list[str | None]] = {}
    count = 0
    first = 1
    depth_wanted = 0  # the depth of the first match: records do not nest
    try:
        events = etree.iterparse(_Reader(raw), events=("start", "end"), huge_tree=True,
                                 remove_comments=True, remove_pis=True)
        stack: list[str] = []
        for event, element in events:
            if event == "start":
                stack.append(_local(element.tag))
                if not steps and len(stack) == 2:
                    steps = stack[:]  # the root's first child names the records
                continue
            if steps and (depth_wanted in (0, len(stack))) and _matches(stack, steps):
                depth_wanted = len(stack)
                record = _record(element)
                for name, value in record.items():
                    column = columns.get(name)
                    if column is None:
                        column = columns[name] = [None] * count
                    column.append(value)
                count += 1
                for column in columns.values():
                    if len(column) < count:
                        column.append(None)
                element.clear(keep_tail=False)
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
                if count >= batch_rows:
                    yield _batch(columns, count, first)
                    first += count
                    columns = {name: [] for name in columns}
                    count = 0
            stack.pop()
    except etree.XMLSyntaxError as exc:
        raise FileFormatError(f"{path}: not well-formed XML at line {exc.lineno}: {exc.msg}",
                              hint="fix the document (an unclosed tag or a stray '&' is "
                                   "common), or fetch it again if it was cut off") from exc
    finally:
        raw.close()
    if count or first == 1:
        if first == 1 and count == 0 and not steps:
            raise FileFormatError(f"{path}: no records (the root element has no children)",
                                  hint="set record_path: to the element of one record")
        yield _batch(columns, count, first)


class _Reader:
    """File-like ``read`` over a RawReader (lxml pulls decompressed bytes from it)."""

    def __init__(self, raw: RawReader) -> None:
        self.raw = raw

    def read(self, size: int = 1 << 20) -> bytes:
        return self.raw.read(max(size, 1 << 16))


def _record(element) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for name, value in element.attrib.items():
        values[f"@{_local(name)}"] = value
    children = list(element)
    if not children:
        text = element.text
        values[_local(element.tag)] = text.strip() if text and text.strip() else text
        return values
    for child in children:
        if not isinstance(child.tag, str):
            continue
        _flatten(child, _local(child.tag), values)
    return values


def _flatten(element, prefix: str, values: dict[str, str | None]) -> None:
    for name, value in element.attrib.items():
        values[f"{prefix}_@{_local(name)}"] = value
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        name = prefix
        n = 2
        while name in values:  # repeated elements: name, name_2, ...
            name, n = f"{prefix}_{n}", n + 1
        values[name] = element.text
        return
    for child in children:
        _flatten(child, f"{prefix}_{_local(child.tag)}", values)


def _batch(columns: dict[str, list[str | None]], count: int, first: int) -> Batch:
    arrays = {name: pa.array(values, pa.string()) for name, values in columns.items()}
    arrays[POSITION] = pa.array(np.arange(first, first + count, dtype=np.int64))
    return Batch(pa.table(arrays))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else str(tag)


def _matches(stack: list[str], steps: list[str]) -> bool:
    """The element path ends with ``steps`` (``*`` matches any element)."""
    if len(stack) < len(steps):
        return False
    tail = stack[len(stack) - len(steps):]
    return all(want in ("*", got) for got, want in zip(tail, steps, strict=True))

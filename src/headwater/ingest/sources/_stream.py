"""Bytes out of a file: decompression (gzip, zstd, bz2, xz) and decoding to UTF-8, in blocks."""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from headwater.core import FileFormatError

#: Magic bytes of the compressions headwater reads, and what to call them.
COMPRESSIONS: dict[str, bytes] = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
}

#: Byte-order marks, longest first (UTF-32 LE starts with the UTF-16 LE mark).
BOMS: list[tuple[bytes, str]] = [
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]

_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError,
)


def sniff_compression(head: bytes) -> str | None:
    """The compression whose magic bytes ``head`` starts with, or None."""
    for name, magic in COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    return None


class RawReader:
    """A file's decompressed bytes; decompression errors become ``FileFormatError``."""

    def __init__(self, path: Path, compression: str | None) -> None:
        self.path = path
        self.compression = compression
        self._stream = _open(path, compression)
        self.consumed = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes; ``b""`` at the end of the file."""
        with self._reading():
            data = self._stream.read(size)
        self.consumed += len(data)
        return data

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` with the next decompressed bytes (no copy); 0 at the end of the file."""
        with self._reading():
            n = self._stream.readinto(view)  # type: ignore[attr-defined]
        self.consumed += n
        return n

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Decompression errors as ``FileFormatError`` (where, and what to do)."""
        try:
            yield
        except _DECOMPRESS_ERRORS as exc:
            raise FileFormatError(
                f"{self.path}: the {self.compression or 'file'} data is corrupt or truncated "
                f"after {self.consumed:,} bytes ({exc})",
                hint="the file was probably cut off while copying: fetch it again; the other "
                     "files of this run still load",
            ) from exc
        except Exception as exc:
            if self.compression == "zstd" and type(exc).__name__ == "ZstdError":
                raise FileFormatError(
                    f"{self.path}: the zstd data is corrupt or truncated after "
                    f"{self.consumed:,} bytes ({exc})",
                    hint="fetch the file again; the other files of this run still load",
                ) from exc
            raise

    def close(self) -> None:
        """Close the underlying file."""
        self._stream.close()

    def __enter__(self) -> RawReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(path: Path, compression: str | None) -> BinaryIO:
    if compression is None:
        return open(path, "rb")
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "bz2":
        return bz2.open(path, "rb")
    if compression == "xz":
        return lzma.open(path, "rb")
    if compression == "zstd":
        import zstandard

        raw = open(path, "rb")  # noqa: SIM115 - the stream reader closes it
        return zstandard.ZstdDecompressor().stream_reader(  # type: ignore[return-value]
            raw, read_across_frames=True, closefd=True)
    raise FileFormatError(f"{path}: unknown compression {compression!r}",
                          hint="use gzip, zstd, bz2 or xz")


class Utf8Blocks:
    """A text file's bytes as UTF-8 blocks: BOM removed, other encodings transcoded.

    UTF-8 input passes through untouched (invalid bytes are left for the parser to reject line
    by line). When the encoding was only *assumed* UTF-8 because the sample was plain ASCII,
    ``switch_to`` moves the rest of the file to a single-byte encoding (cp1252, else Latin-1).
    """

    def __init__(self, raw: RawReader, encoding: str, *, bom: int = 0) -> None:
        self.raw = raw
        self.encoding = encoding
        self._skip = bom
        self._decoder: codecs.IncrementalDecoder | None = None
        self._pending = b""  # read but not yet handed out by readinto
        if not _is_utf8(encoding):
            self._decoder = _decoder(encoding)

    def read(self, size: int) -> bytes:
        """Up to about ``size`` bytes of UTF-8; ``b""`` at the end."""
        data = self.raw.read(size)
        if self._skip:
            while len(data) < self._skip:
                more = self.raw.read(size)
                if not more:
                    break
                data += more
            data = data[self._skip:]
            self._skip = 0
        if self._decoder is None:
            return data
        final = not data
        try:
            text = self._decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            offset = self.raw.consumed - len(data) + exc.start
            raise FileFormatError(
                f"{self.raw.path}: byte {offset:,} ({data[exc.start:exc.start + 4]!r}) is not "
                f"valid {self.encoding}",
                hint="set the source's encoding: (e.g. utf-8, cp1252, latin-1, utf-16) to the "
                     "file's real encoding",
            ) from exc
        if final:
            return b""
        encoded = text.encode("utf-8")
        # A block may decode to nothing (a split multi-byte character): read on.
        return encoded if encoded else self.read(size)

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` with the next UTF-8 bytes; 0 at the end."""
        if not self._pending:
            self._pending = self.read(len(view))
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def switch_to(self, encoding: str) -> None:
        """Decode the rest of the file as ``encoding`` (a single-byte encoding)."""
        self.encoding = encoding
        self._decoder = _decoder(encoding)


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: the five bytes cp1252 leaves undefined are read as Latin-1."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error("headwater-latin1", _latin1_fallback)


def _decoder(encoding: str) -> codecs.IncrementalDecoder:
    single_byte = encoding.replace("-", "").replace("_", "").lower() in {"cp1252", "windows1252"}
    errors = "headwater-latin1" if single_byte else "strict"
    return codecs.getincrementaldecoder(encoding)(errors=errors)


def transcode(data: bytes, encoding: str) -> bytes:
    """``data`` in ``encoding`` (cp1252's undefined bytes read as Latin-1) as UTF-8."""
    return _decoder(encoding).decode(data, final=True).encode("utf-8")


def blocks(stream: Utf8Blocks | RawReader, size: int) -> Iterator[bytes]:
    """Blocks of ``size`` bytes until the end."""
    while True:
        data = stream.read(size)
        if not data:
            return
        yield data


def _is_utf8(encoding: str) -> bool:
    return encoding.replace("_", "-").lower() in {"utf-8", "utf8", "utf-8-sig", "ascii", "us-ascii"}

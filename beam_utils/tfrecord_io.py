"""TFRecord framing: reading records with their CRCs checked, and the fast CRC32C.

A TFRecord file is a sequence of ``length (uint64) | masked crc32c(length) |
data | masked crc32c(data)``. :func:`iter_records` reads one file (plain or
gzip, detected from its first bytes) and raises :class:`InputError` naming the
file, the record index and the byte offset on a truncated record or a CRC
mismatch.

Beam's own TFRecord writer computes CRC32C through python-snappy's private
extension when present and otherwise through pure-Python ``crcmod`` (slow, with
a warning). python-snappy 0.7 no longer ships that extension, so
:func:`use_fast_crc32c` points Beam at ``google-crc32c`` (a compiled extension
that is part of Beam's GCP dependencies).
"""

from __future__ import annotations

import contextlib
import gzip
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

import google_crc32c

from conveyor.beam_utils.errors import InputError

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
GZIP_MAGIC = b"\x1f\x8b"


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def use_fast_crc32c() -> bool:
    """Makes Beam's TFRecord IO use ``google-crc32c``; returns True if it is compiled.

    Idempotent and cheap; call it where TFRecords are written (in the launching
    process and in workers, e.g. from a DoFn's ``setup``).
    """
    from apache_beam.io import tfrecordio

    fn = tfrecordio._default_crc32c_fn
    if getattr(fn, "fn", None) is not _crc32c_value:
        fn.fn = _crc32c_value
    return google_crc32c.implementation == "c"


def _crc32c_value(data: bytes) -> int:
    return google_crc32c.value(bytes(data))


def is_gzip(fileobj: BinaryIO) -> bool:
    """True if the (seekable) file starts with the gzip magic bytes; rewinds it."""
    head = fileobj.read(2)
    fileobj.seek(0)
    return head == GZIP_MAGIC


def iter_records(fileobj: BinaryIO, source: str, chunk_size: int = 1 << 22) -> Iterator[bytes]:
    """Yields the records of one TFRecord stream, checking both CRCs of each.

    Args:
      fileobj: an uncompressed binary stream (wrap gzip first, see :func:`open_records`).
      source: the file's name, for error messages.
    """
    buf = b""
    pos = 0  # position in buf
    offset = 0  # byte offset in the file of buf[0]
    index = 0
    eof = False
    while True:
        if len(buf) - pos < _HEADER.size and not eof:
            buf, offset, pos = buf[pos:], offset + pos, 0
            more = fileobj.read(chunk_size)
            eof = not more
            buf += more
            continue
        if pos == len(buf) and eof:
            return
        if len(buf) - pos < _HEADER.size:
            raise InputError(
                f"{source}: truncated TFRecord: record {index} at byte {offset + pos} "
                f"has {len(buf) - pos} of the {_HEADER.size} header bytes"
            )
        length, length_crc = _HEADER.unpack_from(buf, pos)
        if masked_crc32c(buf[pos : pos + 8]) != length_crc:
            raise InputError(
                f"{source}: corrupt TFRecord: record {index} at byte {offset + pos} "
                "fails its length CRC check"
            )
        end = pos + _HEADER.size + length + _FOOTER.size
        while len(buf) < end and not eof:
            buf, offset, pos, end = buf[pos:], offset + pos, 0, end - pos
            more = fileobj.read(max(chunk_size, end - len(buf)))
            eof = not more
            buf += more
        if len(buf) < end:
            raise InputError(
                f"{source}: truncated TFRecord: record {index} at byte {offset + pos} "
                f"needs {length} data bytes, the file ends first"
            )
        data = buf[pos + _HEADER.size : end - _FOOTER.size]
        (data_crc,) = _FOOTER.unpack_from(buf, end - _FOOTER.size)
        if masked_crc32c(data) != data_crc:
            raise InputError(
                f"{source}: corrupt TFRecord: record {index} at byte {offset + pos} "
                "fails its data CRC check"
            )
        yield data
        index += 1
        pos = end


class RecordChunk(NamedTuple):
    """Consecutive whole records of a TFRecord stream, framed.

    ``records[i]`` is record ``first + i`` of the stream (from 0); its header
    starts at ``buffer[heads[i]]``, byte ``offset + heads[i]`` of the stream.
    """

    buffer: bytes
    records: list[bytes]
    heads: list[int]
    first: int
    offset: int

    def check_crcs(self, source: str) -> None:
        """Raises :class:`InputError` naming the first record whose CRCs do not match."""
        buf = self.buffer
        for i, (head, record) in enumerate(zip(self.heads, self.records)):
            where = f"record {self.first + i} at byte {self.offset + head}"
            if masked_crc32c(buf[head : head + 8]) != _HEADER.unpack_from(buf, head)[1]:
                raise InputError(f"{source}: corrupt TFRecord: {where} fails its length CRC check")
            end = head + _HEADER.size + len(record)
            if masked_crc32c(record) != _FOOTER.unpack_from(buf, end)[0]:
                raise InputError(f"{source}: corrupt TFRecord: {where} fails its data CRC check")


def iter_record_chunks(
    stream: BinaryIO, source: str, chunk_size: int = 8 << 20, check_crcs: bool = True
) -> Iterator[RecordChunk]:
    """Frames an uncompressed TFRecord stream into :class:`RecordChunk` s of about ``chunk_size`` bytes.

    Each chunk holds whole records only (a record larger than ``chunk_size``
    makes a chunk of its own). With ``check_crcs`` both CRCs of every record
    are checked; a gzip stream's own CRC-32 already covers its bytes, so
    callers may skip them there and call :meth:`RecordChunk.check_crcs` only
    for records they cannot decode. Raises :class:`InputError` naming the
    record and byte offset for a truncated stream.
    """
    unpack = _HEADER.unpack_from
    header, footer = _HEADER.size, _FOOTER.size
    carry = b""
    offset = 0  # stream offset of carry[0]
    first = 0
    eof = False
    while not eof:
        more = stream.read(chunk_size)
        eof = not more
        buf = carry + more if carry else more
        size = len(buf)
        records: list[bytes] = []
        heads: list[int] = []
        pos = 0
        while pos + header <= size:
            start = pos + header
            end = start + unpack(buf, pos)[0]
            if end + footer > size:
                break
            heads.append(pos)
            records.append(buf[start:end])
            pos = end + footer
        if eof and pos < size:
            have = size - pos
            need = header if have < header else header + unpack(buf, pos)[0] + footer
            raise InputError(
                f"{source}: truncated TFRecord: record {first + len(records)} at byte {offset + pos} "
                f"needs {need} bytes, the file has {have}"
            )
        carry = buf[pos:]
        if not records:
            continue
        chunk = RecordChunk(buf, records, heads, first, offset)
        if check_crcs:
            chunk.check_crcs(source)
        yield chunk
        first += len(records)
        offset += pos


@contextlib.contextmanager
def open_stream(fileobj: BinaryIO, source: str, gzip_compressed: bool):
    """The uncompressed bytes of a TFRecord file: ``fileobj`` itself, or for
    gzip a stream decompressed by ISA-L on a thread of its own (the stream's
    CRC-32 checked at its end). A damaged gzip stream raises :class:`InputError`."""
    if not gzip_compressed:
        yield fileobj
        return
    from isal import igzip_threaded

    with igzip_threaded.open(fileobj, "rb", threads=1) as stream:
        yield _CheckedGzipStream(stream, source)


def _gzip_errors() -> tuple:
    from isal import isal_zlib

    return (OSError, EOFError, ValueError, isal_zlib.error)


class _CheckedGzipStream:
    """A decompressing stream whose read errors name the file."""

    def __init__(self, stream, source: str):
        self._stream = stream
        self._source = source

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except _gzip_errors() as e:
            raise InputError(f"{self._source}: corrupt gzip stream: {e}") from e


def open_records(fileobj: BinaryIO, source: str) -> Iterator[bytes]:
    """Records of a plain or gzip TFRecord file (gzip detected from the first bytes)."""
    if is_gzip(fileobj):
        stream = gzip.GzipFile(fileobj=fileobj, mode="rb")
        try:
            yield from iter_records(stream, source)
        except (OSError, EOFError) as e:  # gzip stream damaged
            raise InputError(f"{source}: corrupt gzip stream: {e}") from e
    else:
        yield from iter_records(fileobj, source)


_LENGTH = struct.Struct("<Q")


def frame(records) -> bytes:
    """The TFRecord bytes of a sequence of records (length, CRCs and data of each)."""
    parts = []
    for rec in records:
        head = _LENGTH.pack(len(rec))
        parts.append(head)
        parts.append(_FOOTER.pack(masked_crc32c(head)))
        parts.append(rec)
        parts.append(_FOOTER.pack(masked_crc32c(rec)))
    return b"".join(parts)


def write_records(path: str, records, compress: bool = True) -> None:
    """Writes TFRecords to a local file (for tests and tools; pipelines use WriteExamples)."""
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(frame(records))

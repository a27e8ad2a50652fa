"""TFRecord framing: reading records with their CRCs checked, and the fast CRC32C.

A TFRecord file is a sequence of ``length (uint64) | masked crc32c(length) |
data | masked crc32c(data)``. :func:`open_stream` gives a file's uncompressed
bytes (gzip, detected from the first bytes, is decompressed by ISA-L on a
thread of its own); :func:`iter_record_chunks` frames them into chunks of
whole records (header offsets in numpy; the lengths are walked and the CRCs
checked in C, by ``_wire.c``) and :func:`iter_records` /
:func:`open_records` yield the records one by one. Errors are
:class:`InputError` naming the file, the record (numbered from 1, as rejected
rows are) and the byte offset of a truncated record or a CRC mismatch.

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
import numpy as np

from conveyor.beam_utils import _wire
from conveyor.beam_utils.errors import InputError

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
GZIP_MAGIC = b"\x1f\x8b"


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    return _wire.masked_crc32c(data)


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


def iter_records(fileobj: BinaryIO, source: str) -> Iterator[bytes]:
    """Yields the records of one TFRecord stream, checking both CRCs of each.

    Args:
      fileobj: an uncompressed binary stream (wrap gzip first, see :func:`open_records`).
      source: the file's name, for error messages.
    """
    for chunk in iter_record_chunks(fileobj, source, chunk_size=1 << 22):
        yield from chunk.records()


class RecordChunk(NamedTuple):
    """Consecutive whole records of a TFRecord stream, framed.

    Record ``i`` of the chunk (record ``first + i`` of the stream, from 0) has
    its header at ``buffer[heads[i]]`` (byte ``offset + heads[i]`` of the
    stream) and its data 12 bytes after it (see :meth:`spans`); ``heads`` has
    one more entry, the end of the last record.
    """

    buffer: bytes
    heads: np.ndarray
    first: int
    offset: int

    def __len__(self) -> int:
        return len(self.heads) - 1

    def spans(self, begin: int = 0, end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The data offsets in ``buffer`` and the lengths of records ``begin`` to ``end``."""
        heads = self.heads[begin : (len(self) if end is None else end) + 1]
        return heads[:-1] + _HEADER.size, np.diff(heads) - (_HEADER.size + _FOOTER.size)

    def records(self, begin: int = 0, end: int | None = None) -> list[bytes]:
        """Records ``begin`` to ``end`` (indices in the chunk) as bytes."""
        buf = self.buffer
        starts, lengths = self.spans(begin, end)
        return [buf[s : s + n] for s, n in zip(starts.tolist(), lengths.tolist())]

    def check_crcs(self, source: str, begin: int = 0, end: int | None = None) -> None:
        """Raises :class:`InputError` naming the first of records ``begin`` to
        ``end`` whose CRCs do not match (checked in C)."""
        heads = self.heads[begin : (len(self) if end is None else end) + 1]
        bad, which = _wire.check_crcs(self.buffer, heads)
        if bad >= 0:
            at = self.offset + int(heads[bad])
            where = f"record {self.first + begin + bad + 1} at byte {at}"
            hint = _not_a_tfrecord_hint(self.buffer) if at == 0 and which == "length" else ""
            raise InputError(
                f"{source}: corrupt TFRecord: {where} fails its {which} CRC check{hint}"
            )


def _not_a_tfrecord_hint(head: bytes) -> str:
    """What a stream whose first record's header is bad may be instead (for the
    message; a first record whose header is sound but data is not is a damaged
    TFRecord)."""
    if len(head) >= 2 and head[0] == 0x78 and ((head[0] << 8) | head[1]) % 31 == 0:
        return (
            "; it looks ZLIB-compressed, which Conveyor does not read: "
            "decompress it, or write it plain or with GZIP"
        )
    return "; is it a TFRecord file?"


def iter_record_chunks(
    stream: BinaryIO,
    source: str,
    chunk_size: int = 8 << 20,
    check_crcs: bool = True,
    multiple: int = 1,
) -> Iterator[RecordChunk]:
    """Frames an uncompressed TFRecord stream into :class:`RecordChunk` s of about ``chunk_size`` bytes.

    Each chunk holds whole records, a multiple of ``multiple`` of them but for
    the last chunk (so that batches of that many records never straddle two
    chunks). With ``check_crcs`` both CRCs of every record are checked (in C,
    about 10 GB/s). Raises :class:`InputError` naming the record and byte
    offset for a truncated stream.
    """
    unpack = _HEADER.unpack_from
    header, framing = _HEADER.size, _HEADER.size + _FOOTER.size
    buf = b""
    heads = np.empty(0, dtype=np.int64)  # framed, not yet emitted, records of buf
    pos = 0  # where framing resumes in buf
    offset = 0  # stream offset of buf[0]
    first = 0
    eof = False
    while not eof:
        more = stream.read(chunk_size)
        eof = not more
        if more:
            buf = buf + more if buf else more
        size = len(buf)
        found, pos = _wire.frame(buf, pos)  # the whole records from pos on, in C
        if found:
            found = np.frombuffer(found, dtype=np.int64)
            heads = np.concatenate([heads, found]) if len(heads) else found
        if pos + header <= size:
            # The record runs past what is read so far: trust its length only if
            # its CRC matches, or a damaged header would read the rest of the file.
            length, length_crc = unpack(buf, pos)
            if masked_crc32c(buf[pos : pos + 8]) != length_crc:
                hint = _not_a_tfrecord_hint(buf) if offset + pos == 0 else ""
                raise InputError(
                    f"{source}: corrupt TFRecord: record {first + len(heads) + 1} at byte {offset + pos} "
                    f"fails its length CRC check{hint}"
                )
        if eof and pos < size:
            have = size - pos
            need = header if have < header else framing + unpack(buf, pos)[0]
            hint = _not_a_tfrecord_hint(buf) if offset + pos == 0 else ""
            raise InputError(
                f"{source}: truncated TFRecord: record {first + len(heads) + 1} at byte {offset + pos} "
                f"needs {need} bytes, the file has {have}{hint}"
            )
        n = len(heads) if eof else len(heads) - len(heads) % multiple
        if not n:
            continue
        cut = int(heads[n]) if n < len(heads) else pos
        chunk = RecordChunk(buf, np.append(heads[:n], cut), first, offset)
        if check_crcs:
            chunk.check_crcs(source)
        yield chunk
        first += n
        offset += cut
        buf, pos = buf[cut:], pos - cut
        heads = heads[n:] - cut


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
    with open_stream(fileobj, source, is_gzip(fileobj)) as stream:
        yield from iter_records(stream, source)


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

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

import gzip
import struct
from collections.abc import Iterator
from typing import BinaryIO

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

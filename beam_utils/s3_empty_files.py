"""Lets Beam's S3 filesystem write empty files (apache/beam#21369, open in Beam 2.61).

Beam's S3 writer uploads a file as a multipart upload and sends no part at all
for a file of zero bytes; S3 (AWS, and s3proxy alike) refuses to complete an
upload without parts (``MalformedXML``), so any empty output (a shard with no
rows, an empty rejected-rows file) failed the write. :func:`install` makes the
writer upload one empty part in that case, which S3 accepts (the last part of an
upload has no minimum size).

Importing this module installs it (so does importing :mod:`conveyor.beam_utils.publish`, as
every launcher does, which covers the in-memory runner and LOOPBACK workers). SDK workers
started through Beam's ``sdk_worker_main`` (its containers' boot, Dataflow) import it with the
Beam flag ``--beam_plugins=conveyor.beam_utils.s3_empty_files``, which
``orchestration/engines/s3proxy.py`` writes among its flags. Workers of Beam's
``worker_pool_main`` do not run ``sdk_worker_main``: they load no plugins (and get no S3
options for FileSystems either).
"""

from __future__ import annotations

__all__ = ["install"]


def install() -> bool:
    """Patches Beam's S3 uploader once per process; False when Beam's AWS extra is missing."""
    try:
        from apache_beam.io.aws import s3io
    except ImportError:  # no apache-beam[aws]: nothing writes to S3 here
        return False
    uploader = s3io.S3Uploader
    if getattr(uploader.finish, "_conveyor_empty_part", False):
        return True
    original = uploader.finish

    def finish(self):
        if not self.parts and not self.buffer and self.last_error is None:
            self._write_to_s3(b"")
        return original(self)

    finish._conveyor_empty_part = True
    finish.__doc__ = original.__doc__
    uploader.finish = finish
    return True


install()

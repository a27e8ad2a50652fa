"""A Beam filesystem for tests: ``teststore://bucket/key``, an object store kept in memory.

Like GCS or S3 it has no folders, only keys. Beam finds a FileSystem subclass by
its scheme, so importing this module registers it; tests use it through the
``object_store`` fixture (tests/conftest.py), which empties it around each test.
"""

from __future__ import annotations

import io

from apache_beam.io.filesystem import FileMetadata, FileSystem


class ObjectStore(FileSystem):
    """``teststore://`` objects: :attr:`objects` holds ``{path: bytes}``, :attr:`updated` their times."""

    objects: dict = {}
    #: ``{path: last update in seconds}``; 0.0 for a path not in it.
    updated: dict = {}

    @classmethod
    def scheme(cls):
        return "teststore"

    def join(self, base, *paths):
        return "/".join([base.rstrip("/"), *paths])

    def split(self, path):
        return tuple(path.rsplit("/", 1))

    def has_dirs(self):
        return False

    def mkdirs(self, path):
        pass

    def _list(self, dir_or_prefix):
        for path in sorted(self.objects):
            if path.startswith(dir_or_prefix):
                yield self.metadata(path)

    def create(self, path, mime_type=None, compression_type=None):
        return _Writer(self.objects, path)

    def open(self, path, mime_type=None, compression_type=None):
        return io.BytesIO(self.objects[path])

    def copy(self, sources, destinations):
        for s, d in zip(sources, destinations, strict=True):
            self.objects[d] = self.objects[s]

    def rename(self, sources, destinations):
        for s, d in zip(sources, destinations, strict=True):
            self.objects[d] = self.objects.pop(s)

    def exists(self, path):
        return path in self.objects

    def size(self, path):
        return len(self.objects[path])

    def last_updated(self, path):
        return self.updated.get(path, 0.0)

    def metadata(self, path):
        return FileMetadata(path, len(self.objects[path]), self.last_updated(path))

    def checksum(self, path):
        return str(len(self.objects[path]))

    def delete(self, paths):
        for p in paths:
            for k in [k for k in self.objects if k == p or k.startswith(p.rstrip("/") + "/")]:
                del self.objects[k]

    def report_lineage(self, path, lineage, level=None):
        pass


class _Writer(io.BytesIO):
    """An object being written: stored under its path when closed."""

    def __init__(self, objects: dict, path: str):
        super().__init__()
        self._objects, self._path = objects, path

    def close(self):
        self._objects[self._path] = self.getvalue()
        super().close()

"""TFX's ``tfx.dsl.io.fileio``: file operations on local paths and remote filesystems
(``gs://``, ``s3://``, ``hdfs://``...), through TensorFlow's ``tf.io.gfile``.

Example::

    from conveyor import tfx

    fileio = tfx.dsl.io.fileio
    if not fileio.exists(serving_dir):
        fileio.makedirs(serving_dir)
    with fileio.open(os.path.join(serving_dir, "notes.txt"), "w") as f:
        f.write("trained")
"""

from __future__ import annotations

__all__ = [
    "copy",
    "exists",
    "glob",
    "isdir",
    "listdir",
    "makedirs",
    "mkdir",
    "open",
    "remove",
    "rename",
    "rmtree",
    "stat",
    "walk",
]


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def open(path: str, mode: str = "r"):  # noqa: A001 - TFX's name
    """The file at ``path``, opened in ``mode`` (a context manager)."""
    return _gfile().GFile(path, mode)


def copy(src: str, dst: str, overwrite: bool = False) -> None:
    """Copies a file; an existing ``dst`` is an error unless ``overwrite``."""
    _gfile().copy(src, dst, overwrite=overwrite)


def exists(path: str) -> bool:
    """Whether ``path`` exists."""
    return _gfile().exists(path)


def glob(pattern: str) -> list[str]:
    """The paths ``pattern`` matches."""
    return _gfile().glob(pattern)


def isdir(path: str) -> bool:
    """Whether ``path`` is a folder."""
    return _gfile().isdir(path)


def listdir(path: str) -> list[str]:
    """The names in the folder ``path``."""
    return _gfile().listdir(path)


def makedirs(path: str) -> None:
    """Makes the folder ``path`` and its parents (none is an error if it exists)."""
    _gfile().makedirs(path)


def mkdir(path: str) -> None:
    """Makes the folder ``path`` (its parent must exist)."""
    _gfile().mkdir(path)


def remove(path: str) -> None:
    """Removes the file ``path``."""
    _gfile().remove(path)


def rename(src: str, dst: str, overwrite: bool = False) -> None:
    """Renames ``src`` to ``dst``; an existing ``dst`` is an error unless ``overwrite``."""
    _gfile().rename(src, dst, overwrite=overwrite)


def rmtree(path: str) -> None:
    """Removes the folder ``path`` and everything in it."""
    _gfile().rmtree(path)


def stat(path: str):
    """The file's statistics (``length``, ``mtime_nsec``, ``is_directory``)."""
    return _gfile().stat(path)


def walk(top: str, topdown: bool = True, onerror=None):
    """``(folder, subfolders, files)`` for every folder under ``top``, as ``os.walk``."""
    return _gfile().walk(top, topdown=topdown, onerror=onerror)

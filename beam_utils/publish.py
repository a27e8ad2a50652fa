"""Publishing a finished artifact folder through Beam's ``FileSystems``, on any filesystem.

A component writes into a staging folder; the launcher publishes it at its final
URI only when the component succeeds, so nothing half written looks complete:

- where the filesystem has folders (a local disk, HDFS) the staging folder is
  renamed to the final one: one atomic step;
- where it has none (S3, GCS: :meth:`FileSystem.has_dirs` is False, and a
  "rename" is a copy of each object then a delete), the files are copied to the
  final URI, then a completion marker (:data:`MARKER`, a small JSON object
  naming the files) is written LAST inside it. A reader takes such a folder
  for an artifact only when the marker is there (:func:`is_complete`); a
  process killed mid-copy leaves files without a marker, which readers ignore.

The staging folder may be on another filesystem than the final URI (a local
folder for the parts that cannot write to an object store, TensorFlow's
SavedModels without tensorflow-io): the files are then streamed across.

Example::

    from conveyor.beam_utils import publish

    publish.prepare_staging("s3://bucket/root/Gen/examples/.7.tmp")
    ...  # the component writes there
    publish.publish("s3://bucket/root/Gen/examples/.7.tmp", "s3://bucket/root/Gen/examples/7")
    publish.is_complete("s3://bucket/root/Gen/examples/7")  # True
"""

from __future__ import annotations

import json
import os
import shutil
import time

from conveyor.beam_utils import s3_empty_files

# Every process that publishes also writes artifacts to S3 through Beam: let it write empty files.
s3_empty_files.install()

__all__ = [
    "MARKER",
    "copy_tree",
    "has_folders",
    "is_complete",
    "is_remote",
    "list_files",
    "localize",
    "marker_uri",
    "prepare_staging",
    "publish",
    "remove_tree",
]

#: The completion marker written last inside an artifact published on an object store.
MARKER = ".conveyor-complete"

_CHUNK = 8 << 20


def is_remote(uri: str) -> bool:
    """True for a URI with a scheme (``s3://``, ``gs://``): it goes through Beam's FileSystems."""
    return "://" in uri


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def has_folders(uri: str) -> bool:
    """Whether ``uri``'s filesystem has real folders, so a folder renames atomically."""
    if not is_remote(uri):
        return True
    return _fs().get_filesystem(uri).has_dirs()


def marker_uri(uri: str) -> str:
    """The completion marker of the artifact folder ``uri``."""
    return uri.rstrip("/") + "/" + MARKER


def list_files(uri: str) -> list[str]:
    """Every file under the folder ``uri`` (full paths, sorted); [] when there is none."""
    if not is_remote(uri):
        found = []
        for folder, _, names in os.walk(uri):
            found += [os.path.join(folder, n) for n in names]
        return sorted(found)
    prefix = uri.rstrip("/") + "/"
    try:
        metadata = _fs().match([prefix + "**"])[0].metadata_list
    except Exception:  # some filesystems raise rather than match nothing
        return []
    # An object store may list a folder placeholder (the key ending in "/") beside the files.
    return sorted(m.path for m in metadata if not m.path.endswith("/"))


def is_complete(uri: str) -> bool:
    """Whether the artifact folder ``uri`` was published whole.

    On a filesystem with folders an artifact appears only by the final rename,
    so it is complete when it exists; on an object store its marker must be there.
    """
    if not is_remote(uri):
        return os.path.exists(uri)
    if has_folders(uri):
        return _fs().exists(uri)
    return _fs().exists(marker_uri(uri))


def remove_tree(uri: str) -> None:
    """Removes the folder ``uri`` and everything under it (nothing to do if it is not there).

    On an object store the marker goes first, so a folder half removed never looks complete.
    """
    if not is_remote(uri):
        shutil.rmtree(uri, ignore_errors=True)
        return
    fs = _fs()
    marker = marker_uri(uri)
    if fs.exists(marker):
        fs.delete([marker])
    files = list_files(uri)
    if files:
        fs.delete(files)
    if has_folders(uri) and fs.exists(uri):
        fs.delete([uri])


def prepare_staging(uri: str) -> None:
    """Makes ``uri`` an empty folder to write an artifact into (removing what a killed attempt left)."""
    remove_tree(uri)
    if not is_remote(uri):
        os.makedirs(uri)
    elif has_folders(uri):
        _fs().mkdirs(uri)


def _copy_file(source: str, destination: str) -> None:
    fs = _fs()
    if (
        is_remote(source)
        and is_remote(destination)
        and source.split("://")[0] == (destination.split("://")[0])
    ):
        fs.copy([source], [destination])  # within one store: a server-side copy
        return
    if not is_remote(destination):
        os.makedirs(os.path.dirname(destination), exist_ok=True)
    with fs.open(source) as reader, fs.create(destination) as writer:
        while True:
            chunk = reader.read(_CHUNK)
            if not chunk:
                break
            writer.write(chunk)


def copy_tree(source: str, destination: str) -> list[str]:
    """Copies every file under the folder ``source`` to the same place under ``destination``
    (any two filesystems); returns the relative names copied."""
    source = source.rstrip("/")
    destination = destination.rstrip("/")
    names = []
    for path in list_files(source):
        name = path[len(source) + 1 :] if is_remote(source) else os.path.relpath(path, source)
        name = name.replace(os.sep, "/")
        if name == MARKER:
            continue
        _copy_file(path, f"{destination}/{name}")
        names.append(name)
    return names


def publish(staging: str, final: str) -> None:
    """Publishes the artifact written in ``staging`` at ``final`` and removes ``staging``.

    Local to local: an atomic rename; a ``final`` folder that already holds files is an
    error (execution ids are unique only within one ML Metadata store, so it is another
    store's artifact: two stores on one root), never overwritten. Onto an object store: the
    files copied, then :data:`MARKER` written last; whatever was at ``final`` before (a
    half-written copy) is removed first.
    """
    if not is_remote(staging) and not is_remote(final):
        if os.path.isdir(final) and os.listdir(final):
            raise FileExistsError(
                f"{final} already holds an artifact, from another ML Metadata store on this "
                "pipeline root: give the pipeline a fresh root or its old metadata store"
            )
        os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
        os.replace(staging, final)
        return
    fs = _fs()
    remove_tree(final)
    if has_folders(final) and is_remote(staging) and has_folders(staging):
        fs.rename([staging], [final])
        return
    names = copy_tree(staging, final)
    if not has_folders(final):
        with fs.create(marker_uri(final)) as writer:
            writer.write(json.dumps({"files": sorted(names), "published": time.time()}).encode())
    remove_tree(staging)


def localize(uri: str, folder: str) -> str:
    """A local copy of the artifact folder ``uri`` under ``folder`` (for readers that cannot
    read the store, TensorFlow's SavedModel loader); ``uri`` itself when it is local."""
    if not is_remote(uri):
        return uri
    target = os.path.join(folder, uri.split("://", 1)[1].strip("/").replace("/", "_"))
    copy_tree(uri, target)
    os.makedirs(target, exist_ok=True)
    return target

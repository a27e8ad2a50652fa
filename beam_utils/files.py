"""Finding input files, telling their format, and the Examples directory layout.

An Examples directory (what ExampleGen writes, in TFX's layout) holds one folder
per split, ``Split-<name>/``, of gzip TFRecord files of ``tf.Example``, plus
Conveyor's ``summary.json`` with the feature types and row counts.
"""

from __future__ import annotations

import json
import posixpath

from conveyor.beam_utils.errors import InputError, UsageError

FORMATS = ("csv", "tfrecord", "parquet")
SUMMARY_FILE = "summary.json"
SPLIT_PREFIX = "Split-"
#: CSV field texts read as "missing" unless told otherwise, the one definition of them
#: (the readers' default and the commands' ``--missing-values``). "NaN" is not among
#: them: in a FLOAT column it is the value NaN. Here, not in ``csv_io``, so the command
#: line's help can show them without importing pyarrow.
DEFAULT_MISSING_VALUES = ("", "NA", "N/A", "#N/A", "NULL", "null", "None")


def detect_format(pattern: str) -> str:
    """The format named by a file pattern's extension: csv, tfrecord or parquet."""
    name = posixpath.basename(pattern).lower()
    for suffix in (".gz", ".gzip", ".bz2", ".zst", ".deflate"):
        if name.endswith(suffix) and (".csv" in name or ".tsv" in name):
            name = name[: -len(suffix)]
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if "tfrecord" in name or name.endswith((".tfr", ".gz")):
        return "tfrecord"
    raise UsageError(
        f"cannot tell the format of {pattern!r} from its name; pass --format csv|tfrecord|parquet"
    )


def is_local(path: str) -> bool:
    """True if Beam resolves ``path`` to the local filesystem."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.localfilesystem import LocalFileSystem

    return isinstance(FileSystems.get_filesystem(path), LocalFileSystem)


def match_files(pattern: str) -> list[str]:
    """The files a pattern names (local or any Beam filesystem), sorted; raises if none."""
    from apache_beam.io.filesystems import FileSystems

    try:
        results = FileSystems.match([pattern])
    except Exception as e:  # Beam raises BeamIOError for a pattern that matches nothing
        raise InputError(f"{pattern}: no such file or pattern ({e.__class__.__name__})") from None
    paths = sorted(m.path for r in results for m in r.metadata_list)
    if not paths:
        raise InputError(f"{pattern}: no such file or pattern")
    return paths


def examples_splits(examples_dir: str) -> dict[str, str]:
    """``{split name: file pattern}`` of an Examples directory (``Split-<name>/``)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(examples_dir, SPLIT_PREFIX + "*")
    found = []
    # An object store lists no folders, and its "*" stops at "/": match the files inside too.
    for each in (pattern, FileSystems.join(pattern, "*")):
        try:
            found += FileSystems.match([each])[0].metadata_list
        except Exception:
            pass
    splits = {}
    for m in found:
        # Directories are not listed by every filesystem; derive split folders from files.
        rel = m.path[len(examples_dir.rstrip("/")) + 1 :]
        folder = rel.split("/", 1)[0]
        if folder.startswith(SPLIT_PREFIX):
            splits[folder[len(SPLIT_PREFIX) :]] = FileSystems.join(examples_dir, folder, "*")
    if not splits:
        import glob
        import os

        for path in sorted(glob.glob(os.path.join(examples_dir, SPLIT_PREFIX + "*"))):
            if os.path.isdir(path):
                splits[os.path.basename(path)[len(SPLIT_PREFIX) :]] = os.path.join(path, "*")
    if not splits:
        raise InputError(
            f"{examples_dir}: not an Examples directory (no {SPLIT_PREFIX}<name>/ folders)"
        )
    return dict(sorted(splits.items()))


def read_summary(examples_dir: str) -> dict | None:
    """The ``summary.json`` of an Examples directory, or None if it has none."""
    from apache_beam.io.filesystems import FileSystems

    path = FileSystems.join(examples_dir, SUMMARY_FILE)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def create_file(path: str, **kwargs):
    """``FileSystems.create(path, **kwargs)`` that also takes a bare local file name.

    Beam's LocalFileSystem.create makes the file's folder and fails on the empty
    folder of a bare name (``schema.pbtxt``): a local path is made absolute first
    (relative to the working directory) and its folder created.
    """
    from apache_beam.io.filesystems import FileSystems

    if "://" not in path:
        import os

        path = os.path.abspath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return FileSystems.create(path, **kwargs)


def write_text(path: str, text: str) -> None:
    """Writes a small text file through Beam's filesystems (local, gs://, ...).

    A local path may be a bare file name (relative to the working directory).
    """
    with create_file(path) as f:
        f.write(text.encode("utf-8"))

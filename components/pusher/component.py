"""The push step as a function: :func:`run_pusher`.

``conveyor push`` and the :class:`~conveyor.components.pusher.node.Pusher`
pipeline component both call it. A blessed model's SavedModel is copied to
``<base_directory>/<version>``, TensorFlow Serving's watched layout (it serves
the highest numbered folder of ``--model_base_path``):

* the version is the epoch second of the push, or one more than the highest
  version already there if that is not less (two pushes in one second, a
  clock set back): each push is the newest version;
* the copy goes to ``<base_directory>/.<version>.tmp-<pid>`` (a hidden folder,
  which TensorFlow Serving does not take for a version), its files synced,
  then is renamed to ``<version>``: a server sees the whole model or none;
* a push removes the temporary folders that pushes killed mid-copy left
  (``.<N>.tmp-<pid>`` whose process is gone), so a rerun leaves one version.
  The pid is looked up on this machine: base directories shared between
  machines or containers should have one pusher at a time.

A model whose ModelBlessing says ``NOT_BLESSED`` or whose InfraBlessing says
``INFRA_NOT_BLESSED`` is not pushed, and nothing is written in the base
directory. There is no Beam pipeline: the work is one folder copied.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from collections.abc import Sequence

from conveyor.beam_utils.errors import InputError
from conveyor.components.pusher.destination import base_directory
from conveyor.dsl import layout

SUMMARY_FILE = "push_summary.json"
_TEMP = re.compile(r"^\.(\d+)\.tmp-(\d+)$")


def _blessed(model_blessing: str | None, infra_blessing: str | None) -> tuple[bool, str]:
    """Whether the blessings allow a push, and why not."""
    if model_blessing is not None and not layout.is_blessed(model_blessing):
        return False, f"model not blessed ({layout.NOT_BLESSED} in {model_blessing})"
    if infra_blessing is not None and not layout.is_infra_blessed(infra_blessing):
        return False, f"model not infra-blessed ({layout.INFRA_NOT_BLESSED} in {infra_blessing})"
    return True, ""


def run_pusher(
    model: str,
    output_dir: str | None,
    *,
    push_destination,
    model_blessing: str | None = None,
    infra_blessing: str | None = None,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Copies a blessed model's SavedModel to ``<base_directory>/<version>``; returns the summary.

    Args:
      model: a Model artifact's folder (its ``Format-Serving`` SavedModel is
        pushed) or a SavedModel folder; local or on a Beam filesystem.
      output_dir: the PushedModel folder, where ``push_summary.json`` goes
        (None: written nowhere).
      push_destination: TFX's ``PushDestination``:
        ``{"filesystem": {"base_directory": DIR}}``, as a dict, JSON or
        protobuf message (see :mod:`~conveyor.components.pusher.destination`).
      model_blessing: a ModelBlessing folder; ``NOT_BLESSED`` there: no push.
      infra_blessing: an InfraBlessing folder; ``INFRA_NOT_BLESSED`` there: no push.
      beam_args: Beam flags, for the filesystems' options (a model on ``gs://``...).

    Returns:
      ``{"pushed": 1 or 0, "pushed_destination": "<base>/<version>" or "",
      "pushed_version": "<version>" or "", "reason", "model", "base_directory"}``.

    Raises:
      PipelineDefinitionError: a bad ``push_destination``.
      InputError: no such model folder or no SavedModel in it; a blessing
        folder without its marker.
    """
    from apache_beam.io.filesystems import FileSystems

    base = base_directory(push_destination)
    if beam_args:
        from conveyor.beam_utils.options import pipeline_options

        FileSystems.set_options(pipeline_options(beam_args))
    model_dir = layout.serving_model_dir(model)
    if not any(
        FileSystems.exists(FileSystems.join(model_dir, name))
        for name in ("saved_model.pb", "saved_model.pbtxt")
    ):
        # An object store has no folders: a model there is known by its files.
        if "://" not in model and not os.path.exists(model):
            raise InputError(f"{model}: no such model folder")
        raise InputError(f"{model_dir}: not a SavedModel (no saved_model.pb)")
    blessed, reason = _blessed(model_blessing, infra_blessing)
    summary = {
        "pushed": 0,
        "pushed_destination": "",
        "pushed_version": "",
        "reason": reason,
        "model": model_dir,
        "base_directory": base,
    }
    if blessed:
        version, final = push(model_dir, base)
        summary.update(
            pushed=1,
            pushed_destination=final,
            pushed_version=str(version),
            reason=f"pushed to {final}",
        )
    if output_dir is not None:
        from conveyor.beam_utils import files

        files.write_text(
            FileSystems.join(output_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n"
        )
    return summary


def push(model_dir: str, base: str) -> tuple[int, str]:
    """Copies ``model_dir`` to a new version folder of ``base``; returns ``(version, folder)``."""
    if os.path.exists(base) and not os.path.isdir(base):
        raise InputError(f"{base}: exists and is not a folder")
    if "://" not in model_dir:
        inside = os.path.realpath(base) + os.sep
        if inside.startswith(os.path.realpath(model_dir) + os.sep):
            raise InputError(f"{base}: is inside the model folder {model_dir}")
    os.makedirs(base, exist_ok=True)
    remove_stale_copies(base)
    version = next_version(base)
    temp = os.path.join(base, f".{version}.tmp-{os.getpid()}")
    try:
        _copy_tree(model_dir, temp)
        while True:
            final = os.path.join(base, str(version))
            if not os.path.lexists(final):
                try:
                    os.rename(temp, final)
                    break
                except OSError as e:  # another push took it meanwhile
                    if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            version += 1
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _fsync_dir(base)
    return version, final


def versions(base: str) -> list[int]:
    """The versions in ``base``: its folders named by a number, sorted."""
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(base, n)))


def next_version(base: str) -> int:
    """The epoch second now, or one more than the highest version in ``base`` if not less."""
    existing = versions(base)
    now = int(time.time())
    return max(now, existing[-1] + 1) if existing else now


def remove_stale_copies(base: str) -> list[str]:
    """Removes ``.<N>.tmp-<pid>`` folders whose process is gone; returns their paths."""
    removed = []
    for name in sorted(os.listdir(base)):
        m = _TEMP.match(name)
        if m and int(m.group(2)) != os.getpid() and not _alive(int(m.group(2))):
            path = os.path.join(base, name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a killed process its parent has not reaped yet is gone too
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _source_files(model_dir: str) -> tuple[list[str], list[str]]:
    """``(folders, files)`` of a SavedModel folder, relative to it (folders first-level first)."""
    if "://" not in model_dir:
        folders, found = [], []
        for root, dirs, names in os.walk(model_dir):
            dirs.sort()
            rel = os.path.relpath(root, model_dir)
            folders += [os.path.normpath(os.path.join(rel, d)) for d in dirs]
            found += [os.path.normpath(os.path.join(rel, n)) for n in sorted(names)]
        return folders, found
    from apache_beam.io.filesystems import FileSystems

    prefix = model_dir.rstrip("/") + "/"
    matched = FileSystems.match([prefix + "**"])[0].metadata_list
    rels = sorted(m.path[len(prefix) :] for m in matched if not m.path.endswith("/"))
    folders = sorted({os.path.dirname(r) for r in rels} - {""})
    return folders, rels


def _copy_file(source: str, target: str) -> None:
    """Copies one file and syncs it (a remote source through Beam's filesystems)."""
    if "://" in source:
        from conveyor.beam_utils.file_readers import open_binary

        with open_binary(source) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
            dst.flush()
            os.fsync(dst.fileno())
        return
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copymode(source, target)


def _copy_tree(model_dir: str, target: str) -> None:
    folders, names = _source_files(model_dir)
    os.mkdir(target)
    for folder in folders:
        os.makedirs(os.path.join(target, folder), exist_ok=True)
    join = (lambda r: model_dir.rstrip("/") + "/" + r) if "://" in model_dir else None
    for rel in names:
        source = join(rel) if join else os.path.join(model_dir, rel)
        _copy_file(source, os.path.join(target, rel))
    for folder in [*reversed(folders), ""]:
        _fsync_dir(os.path.join(target, folder))


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def summary_line(summary: dict) -> str:
    """The line ``conveyor push`` prints."""
    if summary["pushed"]:
        return (
            f"pushed {summary['model']} as version {summary['pushed_version']}: "
            + (summary["pushed_destination"])
        )
    return f"not pushed: {summary['reason']}"

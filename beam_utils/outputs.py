"""How every ``conveyor`` command writes its output: write beside, then replace.

A command writes into a fresh staging folder (or file) beside its output,
``<parent>/.<name>.tmp-<pid>-<random>`` (a file keeps its extension:
``.schema.tmp-<pid>-<random>.pbtxt``). Only when the command finishes, with
success or with a failed check (``validate`` and ``evaluate`` exit 1 with a
complete output), is the previous output removed and the staging folder
renamed into its place; on an error, Ctrl-C or SIGTERM the staging folder is
removed and the previous output stays as it was. So a rerun leaves exactly the
new output, never old files mixed in (an old run's extra shards counted twice).

Before any work starts the output is checked, and a problem is a
:class:`~conveyor.beam_utils.errors.UsageError` naming the path (exit status 2):
a directory output that is an existing file, a file output that is a
directory, a parent that is a file or cannot be written, an output that is or
holds one of the command's inputs (replacing it would delete the input).
A bare name (``schema.pbtxt``, ``out``) is relative to the working directory.

Local paths are replaced with ``os.rename``/``os.replace`` on the same
filesystem as the output (the old output is renamed aside first, so the swap
is two renames, then the old copy is deleted). Paths with a scheme (``gs://``,
``s3://``, any Beam filesystem) go through Beam's ``FileSystems``: the old
output's files are deleted and the staged files renamed into place
(``FileSystems.rename``, which object stores carry out as copy then delete),
so there the swap is not atomic: a reader during it may see part of the
output, and a failure during it leaves the staging folder for a rerun. The
writability of such a path is not checked beforehand; the store's error comes
when the command writes.

Use::

    with staged_output(args.output, inputs=[args.examples]) as out:
        run_something(..., output_dir=out)

A process killed with SIGKILL leaves its ``.<name>.tmp-*`` folder behind; it is
safe to delete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator

from conveyor.beam_utils.errors import UsageError

_GLOB_CHARS = "*?["


def is_remote(path: str) -> bool:
    """True for a path with a scheme (``gs://...``), which goes through Beam's FileSystems."""
    return "://" in path


def _tag(kind: str) -> str:
    return f"{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _beside(name: str, tag: str, is_file: bool) -> str:
    """The hidden name beside ``name``: ``.out.tmp-1-ab``; a file keeps its extension."""
    if is_file:
        dot = name.find(".", 1)
        if dot > 0:
            return f".{name[:dot]}.{tag}{name[dot:]}"
    return f".{name}.{tag}"


def _input_root(pattern: str) -> str:
    """The part of an input path or glob that is a plain path: ``a/b*/c`` -> ``a``."""
    cut = min((pattern.find(c) for c in _GLOB_CHARS if c in pattern), default=-1)
    if cut < 0:
        return pattern
    head = pattern[:cut]
    if "/" not in head:
        return "."
    return head.rsplit("/", 1)[0] or "/"


def _check_not_precious(path: str, target: str) -> None:
    """Refuses to replace the working directory, a folder holding it, the home folder or /."""
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    if (
        target == home
        or target == os.path.dirname(target)
        or cwd == target
        or cwd.startswith(target.rstrip(os.sep) + os.sep)
    ):
        raise UsageError(
            f"{path}: is the working directory, the home directory or a folder holding it; "
            "the output replaces its folder as a whole, so give a folder of its own"
        )


def _check_inputs(path: str, target: str, inputs: Iterable[str | None]) -> None:
    for given in inputs:
        if not given:
            continue
        root = _input_root(given)
        if is_remote(target) != is_remote(root):
            continue
        if is_remote(target):
            inp, out = root.rstrip("/"), target.rstrip("/")
            inside = inp == out or inp.startswith(out + "/")
        else:
            inp = os.path.realpath(root)
            inside = inp == target or inp.startswith(target.rstrip(os.sep) + os.sep)
        if inside:
            raise UsageError(
                f"{path}: the output would replace {given}, which this command reads; "
                "choose another output"
            )


def check_output(path: str, is_file: bool = False, inputs: Iterable[str | None] = ()) -> str:
    """Checks that ``path`` can be written as a directory (or a file); returns it resolved.

    A local path comes back absolute, with symbolic links resolved (an output
    that is a link to a folder replaces that folder). Raises
    :class:`UsageError` naming ``path`` when it cannot be (see the module
    docstring); writes nothing.
    """
    if not path or not path.strip():
        raise UsageError("the output path is empty")
    if is_remote(path):
        target = _check_remote(path, is_file)
        _check_inputs(path, target, inputs)
        return target
    target = os.path.realpath(path)
    if is_file:
        if path.endswith(("/", os.sep)) or os.path.isdir(target):
            raise UsageError(f"{path}: is a directory; the output is a file, give its name")
    elif os.path.exists(target) and not os.path.isdir(target):
        raise UsageError(f"{path}: exists and is not a directory")
    ancestor = os.path.dirname(target)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise UsageError(f"{path}: cannot be created, {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: cannot write in {ancestor} (permission denied)")
    if not is_file and os.path.isdir(target):
        if not os.access(target, os.W_OK | os.X_OK):
            raise UsageError(f"{path}: cannot replace it (permission denied)")
        _check_not_precious(path, target)
    _check_inputs(path, target, inputs)
    return target


def _make_parents(folder: str, path: str) -> list[str]:
    """Creates ``folder`` and its missing parents; returns those it created, deepest first."""
    created = []
    f = folder
    while not os.path.isdir(f):
        created.append(f)
        f = os.path.dirname(f)
    try:
        for f in reversed(created):
            os.mkdir(f)
    except OSError as e:
        _remove_empty(created)
        raise UsageError(f"{path}: cannot create {f} ({e.strerror})") from None
    return created


def _remove_empty(folders: list[str]) -> None:
    for f in folders:
        try:
            os.rmdir(f)
        except OSError:
            pass


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass


@contextlib.contextmanager
def staged_output(
    path: str, is_file: bool = False, inputs: Iterable[str | None] = ()
) -> Iterator[str]:
    """Yields a fresh staging path to write the output into; puts it in place at the end.

    Args:
      path: the output directory (or file, with ``is_file``) the user named.
      is_file: the output is one file (``os.replace``-d over the old one).
      inputs: paths or globs the command reads; an output that is or contains
        one of them is refused.

    The staging path is absolute for local outputs. When the ``with`` body
    returns (whatever exit status the command will give), the staged output
    replaces ``path``; when it raises (KeyboardInterrupt and SystemExit
    included), the staging is removed, ``path`` is left as it was, and the
    exception goes on. Raises :class:`UsageError` before the body runs when
    ``path`` cannot be written (see :func:`check_output`).
    """
    target = check_output(path, is_file, inputs)
    if is_remote(target):
        with _staged_remote(path, target, is_file) as staging:
            yield staging
        return
    parent, name = os.path.split(target)
    created = _make_parents(parent, path)
    staging = os.path.join(parent, _beside(name, _tag("tmp"), is_file))
    if not is_file:
        try:
            os.mkdir(staging)
        except OSError as e:
            _remove_empty(created)
            raise UsageError(f"{path}: cannot write beside it in {parent} ({e.strerror})") from None
    try:
        yield staging
        _replace_local(staging, target, name, is_file, path)
    except BaseException:
        _remove(staging)
        _remove_empty(created)
        raise


def _replace_local(staging: str, target: str, name: str, is_file: bool, path: str) -> None:
    if is_file:
        if not os.path.exists(staging):
            raise RuntimeError(f"{path}: the command finished without writing it")
        os.replace(staging, target)
        return
    old = None
    if os.path.lexists(target):
        old = os.path.join(os.path.dirname(target), _beside(name, _tag("old"), False))
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        _delete_old(old, path)


def _delete_old(old: str, path: str) -> None:
    failed = []

    def note(function, name, excinfo):
        failed.append(name)

    if sys.version_info >= (3, 12):
        shutil.rmtree(old, onexc=note)
    else:
        shutil.rmtree(old, onerror=note)
    if failed:
        print(
            f"warning: {path} is replaced, but the previous output could not all be deleted: "
            f"what is left is in {old}",
            file=sys.stderr,
        )


@contextlib.contextmanager
def live_output(path: str, inputs: Iterable[str | None] = ()) -> Iterator[str]:
    """For a command that runs until stopped (``monitor``) and whose files are read as they come.

    The output is checked as by :func:`staged_output`; a previous output is then
    renamed aside and an empty folder put in its place, which the command
    writes into directly (the yielded path). When the body ends normally or is
    stopped (KeyboardInterrupt, SystemExit: a monitor's usual end), the previous
    output is deleted. When it raises another error, the previous output is put
    back if the run wrote nothing, else deleted (the run's files are its output).
    Local paths only; for a remote path (``gs://``) the previous output's files
    are deleted before the body runs.
    """
    target = check_output(path, False, inputs)
    if is_remote(target):
        _remote_delete_tree(target)
        yield target
        return
    parent, name = os.path.split(target)
    created = _make_parents(parent, path)
    fresh = os.path.join(parent, _beside(name, _tag("tmp"), False))
    try:
        os.mkdir(fresh)
    except OSError as e:
        _remove_empty(created)
        raise UsageError(f"{path}: cannot write beside it in {parent} ({e.strerror})") from None
    old = None
    if os.path.lexists(target):
        old = os.path.join(parent, _beside(name, _tag("old"), False))
        os.rename(target, old)
    os.rename(fresh, target)
    try:
        yield target
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        if _is_empty_dir(target):
            os.rmdir(target)
            if old is not None:
                os.rename(old, target)
                old = None
            else:
                _remove_empty(created)
        raise
    finally:
        if old is not None:
            _delete_old(old, path)


def _is_empty_dir(path: str) -> bool:
    try:
        return os.path.isdir(path) and not os.listdir(path)
    except OSError:
        return False


# -- outputs on Beam filesystems (gs://, s3://, ...) ------------------------------


def _split_remote(path: str, target: str) -> tuple[str, str]:
    scheme, rest = target.split("://", 1)
    rest = rest.rstrip("/")
    if "/" not in rest:
        raise UsageError(
            f"{path}: the output must be a folder or file inside a bucket, not its root"
        )
    parent, name = rest.rsplit("/", 1)
    return f"{scheme}://{parent}", name


def _remote_files(root: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        return [m.path for m in FileSystems.match([root.rstrip("/") + "/**"])[0].metadata_list]
    except Exception:  # nothing there: some filesystems raise rather than match nothing
        return []


def _remote_exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    try:
        return FileSystems.exists(path)
    except Exception:
        return False


def _check_remote(path: str, is_file: bool) -> str:
    target = path.rstrip("/") if not is_file else path
    _split_remote(path, target)
    if is_file:
        if path.endswith("/") or _remote_files(target):
            raise UsageError(f"{path}: is a directory; the output is a file, give its name")
    elif _remote_exists(target) and not _remote_files(target):
        from apache_beam.io.filesystems import FileSystems

        # On an object store an object at the very path is a file; a filesystem with
        # real folders (HDFS) says the same of an empty folder, so there it is allowed.
        if not FileSystems.get_filesystem(target).has_dirs():
            raise UsageError(f"{path}: exists and is not a directory")
    return target


def _remote_delete_tree(root: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    files = _remote_files(root)
    if files:
        FileSystems.delete(files)
    if _remote_exists(root):  # a filesystem with folders keeps the empty one
        FileSystems.delete([root])


@contextlib.contextmanager
def _staged_remote(path: str, target: str, is_file: bool) -> Iterator[str]:
    from apache_beam.io.filesystems import FileSystems

    parent, name = _split_remote(path, target)
    staging = f"{parent}/{_beside(name, _tag('tmp'), is_file)}"
    try:
        yield staging
    except BaseException:
        try:
            if is_file:
                if _remote_exists(staging):
                    FileSystems.delete([staging])
            else:
                _remote_delete_tree(staging)
        except Exception:
            pass
        raise
    if is_file:
        if not _remote_exists(staging):
            raise RuntimeError(f"{path}: the command finished without writing it")
        if _remote_exists(target):
            FileSystems.delete([target])
        FileSystems.rename([staging], [target])
        return
    new = _remote_files(staging)
    if _remote_files(target) or _remote_exists(target):
        _remote_delete_tree(target)
    if new:
        FileSystems.rename(new, [target + f[len(staging) :] for f in new])
    if _remote_exists(staging):
        FileSystems.delete([staging])

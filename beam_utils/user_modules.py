"""User code: importing a user's Python file by path, and reporting what it raises.

A user's module file (a pipeline definition, a preprocessing_fn, a trainer's
``run_fn``) is imported with :func:`import_file`. When it, or a function it
defines, raises, :func:`user_code_error` turns the exception into a
:class:`UserCodeError`: one message that says what failed, with the frames of
the traceback that lie in the user's file (file, line, function, source) and
none of Beam's, TensorFlow's or ours.

:func:`release_shared_objects` frees what Beam's ``Shared`` cache keeps alive
after a pipeline (a loaded SavedModel, tf.Transform's graph) while TensorFlow
is still up, rather than at interpreter exit.

Nothing here imports Beam or TensorFlow at module level.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import NamedTuple

from conveyor.beam_utils.errors import InputError


class Frame(NamedTuple):
    """One frame of a traceback in the user's code."""

    filename: str
    lineno: int
    name: str
    line: str

    def format(self) -> str:
        text = f'  File "{self.filename}", line {self.lineno}, in {self.name}'
        return text + (f"\n    {self.line}" if self.line else "")

    @property
    def where(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.name}"


class UserCodeError(InputError):
    """The user's code raised: importing a module file, or a function it defines.

    An :class:`InputError`, so the command line prints the message and exits with
    status 2: the input that must change is the user's module, not the data or
    the command (status 1 is kept for a check that fails, such as an evaluation
    that does not bless).

    The message's first line says what failed, the error and, at its end, the
    innermost user frame (``[at FILE:LINE in FUNCTION]``), so it reads whole
    where only one line is shown; the user's frames follow, outermost first.

    Attributes:
      what: what ran (``"preprocessing_fn (prep.py)"``, ``"run_fn (trainer.py)"``, ``"prep.py"``).
      path: the user's module file, or None.
      error_type: the name of the exception the user's code raised (``"ZeroDivisionError"``).
      error: its message.
      frames: the :class:`Frame` s of the traceback in the user's code, outermost first.
    """

    def __init__(
        self,
        what: str,
        error_type: str,
        error: str,
        frames: Iterable[Frame] = (),
        *,
        path: str | None = None,
        when: str = "",
    ):
        self.what = what
        self.path = path
        self.error_type = error_type
        self.error = error
        self.frames = list(frames)
        self.when = when
        super().__init__(self._message())

    def _message(self) -> str:
        detail = ": ".join(x for x in (self.error_type, self.error) if x)
        if self.when:
            head = f"{self.what} {self.when}" + (f": {detail}" if detail else "")
        else:
            head = f"{self.what} raised {detail}"
        if self.frames:
            head += f" [at {self.frames[-1].where}]"
        return "\n".join([head, *(f.format() for f in self.frames)])

    def __reduce__(self):  # picklable (a Beam worker may raise it)
        return (
            _rebuild,
            (type(self), self.what, self.error_type, self.error, self.frames, self.path, self.when),
        )


def _rebuild(cls, what, error_type, error, frames, path, when):
    return cls(what, error_type, error, [Frame(*f) for f in frames], path=path, when=when)


# ------------------------------------------------------------------ frames


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, then what caused it (``__cause__``, else ``__context__``), and so on."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _own_dirs() -> tuple[str, ...]:
    """Conveyor's own source folders (a user's module may sit beside them in a checkout)."""
    here = os.path.dirname(os.path.realpath(__file__))  # .../beam_utils
    root = os.path.dirname(here)
    return tuple(os.path.join(root, d) for d in ("beam_utils", "components", "orchestration"))


@functools.lru_cache(maxsize=1 << 16)
def is_user_file(filename: str, path: str | None) -> bool:
    """Whether ``filename`` is the user's code: the module ``path``, or a file beside or below it.

    A module file often imports helpers from its folder; their frames are the
    user's too. Installed packages (``site-packages``) and Conveyor's own files
    are not, wherever they are. Answers are remembered: Transform asks for every
    frame of every op a ``preprocessing_fn`` makes, the same few hundred files.
    """
    if not path or not filename or filename.startswith("<"):
        return False
    if _same_file(filename, path):
        return True
    if not os.path.isabs(filename) or not os.path.isfile(filename):
        return False  # compiled code names its file relative to its package ("apache_beam/...")
    real = os.path.realpath(filename)
    folder = os.path.dirname(os.path.realpath(path))
    if not real.startswith(folder + os.sep):
        return False
    if {"site-packages", "dist-packages"} & set(real.split(os.sep)):
        return False
    return not any(real.startswith(d + os.sep) for d in _own_dirs())


def user_frames(exc: BaseException, path: str | None) -> list[Frame]:
    """The frames of ``exc``'s traceback (and of what caused it) in the user's code (see
    :func:`is_user_file`; ``path`` is the user's module).

    Outermost first; a frame that shows up in several exceptions of the chain
    (TensorFlow and Beam re-raise) is listed once.
    """
    if not path:
        return []
    frames: list[Frame] = []
    seen = set()
    chain = list(exception_chain(exc))
    for e in reversed(chain):  # the original error's frames carry the deepest user frames
        for fr in traceback.extract_tb(e.__traceback__):
            if is_user_file(fr.filename, path):
                key = (fr.filename, fr.lineno, fr.name)
                if key not in seen:
                    seen.add(key)
                    frames.append(
                        Frame(fr.filename, fr.lineno or 0, fr.name, (fr.line or "").strip())
                    )
    return frames


def innermost_user_error(exc: BaseException, path: str | None) -> BaseException:
    """The exception of the chain that the user's code raised (its frames are in ``path``).

    TensorFlow and Beam wrap the user's exception in their own; the message a
    user needs is the one their code raised.
    """
    found = exc
    for e in exception_chain(exc):
        if any(is_user_file(fr.filename, path) for fr in traceback.extract_tb(e.__traceback__)):
            found = e
    return found


def error_text(exc: BaseException) -> str:
    """The exception's message, without AutoGraph's "in user code:" preamble."""
    message = str(exc).strip()
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        message = repr(exc.args[0])
    if "in user code:" in message:
        # AutoGraph prefixes its own frames; the last line is the error itself.
        message = message.splitlines()[-1].strip()
    return message


def user_code_error(
    exc: BaseException, what: str, path: str | None, when: str = ""
) -> UserCodeError:
    """A :class:`UserCodeError` for ``exc``, raised by the user's code in ``path``."""
    if isinstance(exc, UserCodeError):
        return exc
    root = innermost_user_error(exc, path)
    return UserCodeError(
        what, type(root).__name__, error_text(root), user_frames(exc, path), path=path, when=when
    )


# ------------------------------------------------------------------ importing


def import_file(path: str, prefix: str) -> ModuleType:
    """Imports ``path`` as module ``<prefix><file stem>``, with its folder on ``sys.path``.

    The folder goes on the path so the file can import its neighbours; the module
    is registered in ``sys.modules`` so pickling its functions by reference works
    in this process. Its ``if __name__ == "__main__":`` block does not run.

    Raises:
      UserCodeError: the file does not compile, or raised while it was imported
        (an ImportError, ...); the message names the file and the line.
    """
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    name = prefix + stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: not a Python module file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    add_module_folder(path)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise module_import_error(e, path) from None
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def add_module_folder(path: str | None) -> None:
    """Puts the folder of the module file ``path`` first on ``sys.path`` (once), so the helper
    modules a user keeps beside it import while its functions run (TFX's users do).

    A remote path (``gs://...``) or a folder that is not here is left out.
    """
    if not path or "://" in path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder) and folder not in sys.path:
        sys.path.insert(0, folder)


def function_file(dotted: str) -> tuple[str, str]:
    """``(module source file, function name)`` of TFX's Python path ``"package.module.function"``.

    The module is found, not imported, where this runs (the pipeline's ``sys.path``).

    Raises:
      ImportError: the module is not found, or is not a Python source file.

    Example::

        function_file("my_models.penguin.run_fn")   # ('/src/my_models/penguin.py', 'run_fn')
    """
    module, _, name = dotted.rpartition(".")
    if not module or not name:
        raise ImportError(f"{dotted!r} is not a Python path to a function ('module.function')")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise ImportError(f"cannot find module {module!r} of {dotted!r}: {e}") from None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise ImportError(f"module {module!r} of {dotted!r} is not importable from here")
    if not spec.origin.endswith(".py"):
        raise ImportError(f"module {module!r} is {spec.origin}, not a Python source file")
    return os.path.abspath(spec.origin), name


def module_import_error(exc: BaseException, path: str) -> UserCodeError:
    """The :class:`UserCodeError` for a module file that did not compile or import."""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = Frame(exc.filename, exc.lineno or 0, "<module>", (exc.text or "").strip())
        if _same_file(exc.filename, path):
            return UserCodeError(
                path,
                type(exc).__name__,
                exc.msg or str(exc),
                [where],
                path=path,
                when="does not compile",
            )
        # A file it imports does not compile: the import line, then that file's line.
        return UserCodeError(
            path,
            type(exc).__name__,
            exc.msg or str(exc),
            [*user_frames(exc, path), where],
            path=path,
            when="raised on import",
        )
    return user_code_error(exc, path, path, when="raised on import")


# ------------------------------------------------------------------ Beam's shared objects


class _Placeholder:
    """A weak-referenceable nothing, acquired to displace Beam's kept-alive object."""


def release_shared_objects() -> None:
    """Frees the objects Beam's ``Shared`` cache keeps alive, while TensorFlow still runs.

    Beam's ``apache_beam.utils.shared`` holds a strong reference to the object
    acquired last (RunInference's loaded model, tf.Transform's loaded graph) until
    another object is acquired. Left alone it is freed at interpreter exit, after
    TensorFlow's modules are torn down, and every TensorFlow function in it prints
    "Exception ignored in: <function AtomicFunction.__del__ ...>". Acquiring a
    placeholder displaces it, as the ``Shared`` docs describe, and a collection
    frees it now. A later pipeline loads its model again as usual.
    """
    import gc

    shared = sys.modules.get("apache_beam.utils.shared")
    if shared is not None:
        placeholder = _Placeholder()
        shared.Shared().acquire(lambda: placeholder)
    gc.collect()


_AT_EXIT: list = []


def release_shared_objects_at_exit() -> None:
    """Runs :func:`release_shared_objects` when this process exits (once, however often called).

    ``atexit`` hooks run before the interpreter tears modules down, so this
    covers a Beam worker process too, where no pipeline-level code runs at the end.
    """
    if not _AT_EXIT:
        import atexit

        _AT_EXIT.append(atexit.register(release_shared_objects))

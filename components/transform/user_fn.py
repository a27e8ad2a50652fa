"""The user's ``preprocessing_fn``: loading it from a module file, and its errors.

A module file is read once, on the machine that builds the pipeline, and its
*source text* travels with the pipeline: :class:`PreprocessingFn` pickles as
``(source, path, name)`` and re-executes the source on first call in a worker
process, so a remote worker needs neither the file nor the module on its path.

Every call hands the function a dict that names a missing feature when the
function asks for one (``inputs["nope"]`` raises :class:`MissingFeatureError`
instead of a bare ``KeyError``). :func:`trace_error` turns an exception raised
while tracing into a short message that points into the user's code.

Nothing here imports TensorFlow, so the CLI can validate a module file cheaply.
"""

from __future__ import annotations

import hashlib
import os
import traceback
import types
from collections.abc import Callable, Mapping

from conveyor.beam_utils.errors import InputError

DEFAULT_FN_NAME = "preprocessing_fn"


class MissingFeatureError(InputError):
    """The preprocessing_fn asked for a feature that the input does not have."""

    def __init__(self, feature: str, available: list[str], where: str = "the input schema"):
        self.feature = feature
        self.available = available
        super().__init__(
            f"preprocessing_fn needs feature {feature!r}, which is not in {where} "
            f"(features: {', '.join(available) or 'none'})"
        )


class PreprocessingFnError(InputError):
    """The preprocessing_fn raised while it was being traced."""


class _Inputs(dict):
    """The inputs dict the user's function receives; a missing key names the feature."""

    def __missing__(self, key):
        raise MissingFeatureError(str(key), sorted(self))


class PreprocessingFn:
    """A picklable wrapper around the user's ``preprocessing_fn``.

    Build it with :func:`load_preprocessing_fn` (a module file) or
    :meth:`from_callable`. Calling it calls the user's function with a dict that
    raises :class:`MissingFeatureError` for an absent feature.
    """

    def __init__(self, *, source: str | None = None, path: str | None = None,
                 name: str = DEFAULT_FN_NAME, fn: Callable | None = None):
        if (source is None) == (fn is None):
            raise ValueError("give a module source or a callable")
        self.source = source
        self.path = path
        self.name = name
        self._fn = fn

    @classmethod
    def from_callable(cls, fn: Callable) -> PreprocessingFn:
        if isinstance(fn, PreprocessingFn):
            return fn
        if not callable(fn):
            raise TypeError(f"preprocessing_fn must be callable, not {type(fn).__name__}")
        code = getattr(fn, "__code__", None)
        return cls(fn=fn, path=code.co_filename if code else None, name=getattr(fn, "__name__", repr(fn)))

    @property
    def description(self) -> str:
        """``name`` and where it comes from, for messages."""
        return f"{self.name} ({self.path})" if self.path else self.name

    @property
    def fingerprint(self) -> str:
        """A digest of the module source (or the callable's code), for cache keys."""
        h = hashlib.sha256()
        if self.source is not None:
            h.update(self.source.encode("utf-8"))
        else:
            code = getattr(self._fn, "__code__", None)
            h.update(code.co_code if code else repr(self._fn).encode())
        h.update(self.name.encode())
        return h.hexdigest()[:16]

    def function(self) -> Callable:
        """The user's function itself (the module is executed on first use)."""
        if self._fn is None:
            self._fn = _exec_module(self.source, self.path, self.name)
        return self._fn

    def __call__(self, inputs: Mapping):
        outputs = self.function()(_Inputs(inputs))
        if not isinstance(outputs, Mapping) or not outputs:
            raise PreprocessingFnError(
                f"{self.description} must return a non-empty dict of feature name to tensor, "
                f"not {type(outputs).__name__}" + (" (empty)" if isinstance(outputs, Mapping) else "")
            )
        return outputs

    def __getstate__(self):
        if self.source is not None:
            return {"source": self.source, "path": self.path, "name": self.name, "fn": None}
        return {"source": None, "path": self.path, "name": self.name, "fn": self._fn}

    def __setstate__(self, state):
        self.source = state["source"]
        self.path = state["path"]
        self.name = state["name"]
        self._fn = state["fn"]

    def __repr__(self):
        return f"PreprocessingFn({self.description})"


def _exec_module(source: str, path: str, name: str) -> Callable:
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    module = types.ModuleType(f"conveyor_user_module_{digest}")
    module.__file__ = path
    try:
        code = compile(source, path, "exec")
        exec(code, module.__dict__)  # noqa: S102 - running the user's module is the point
    except SyntaxError as e:
        raise InputError(f"{path}: syntax error at line {e.lineno}: {e.msg}") from None
    except Exception as e:
        raise InputError(f"{path}: the module raised on import: {type(e).__name__}: {e}"
                         f"{_user_frames(e, path)}") from None
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise InputError(
            f"{path}: defines no function {name!r}"
            + (f" (it defines: {', '.join(defined)})" if defined else "")
        )
    if not callable(fn):
        raise InputError(f"{path}: {name!r} is a {type(fn).__name__}, not a function")
    return fn


def load_preprocessing_fn(path: str, name: str = DEFAULT_FN_NAME) -> PreprocessingFn:
    """Reads a module file and checks that it defines ``name``.

    The file may be on any Beam filesystem. Raises :class:`InputError` naming the
    file if it does not exist, does not import, or lacks the function.
    """
    from apache_beam.io.filesystems import FileSystems

    try:
        exists = FileSystems.exists(path)
    except Exception:
        exists = False
    if not exists:
        raise InputError(f"{path}: no such module file")
    if "://" not in path and os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a module file")
    with FileSystems.open(path) as f:
        raw = f.read()
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 Python source file") from None
    fn = PreprocessingFn(source=source, path=path, name=name)
    fn.function()  # import now: a broken module fails before any pipeline is built
    return fn


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _user_frames(exc: BaseException, path: str | None) -> str:
    """The traceback lines of ``exc`` (and what caused it) that lie in ``path``."""
    if not path:
        return ""
    real = os.path.realpath(path)
    lines = []
    for e in _chain(exc):
        for fr in traceback.extract_tb(e.__traceback__):
            if fr.filename == path or os.path.realpath(fr.filename) == real:
                text = f'  File "{fr.filename}", line {fr.lineno}, in {fr.name}'
                if fr.line:
                    text += f"\n    {fr.line.strip()}"
                if text not in lines:
                    lines.append(text)
    return ("\n" + "\n".join(lines)) if lines else ""


def find_missing_feature(exc: BaseException) -> MissingFeatureError | None:
    """The :class:`MissingFeatureError` behind ``exc``, if that is what it is."""
    for e in _chain(exc):
        if isinstance(e, MissingFeatureError):
            return e
    return None


def trace_error(exc: BaseException, fn: PreprocessingFn) -> InputError:
    """An :class:`InputError` that says what the user's function raised and where."""
    missing = find_missing_feature(exc)
    if missing is not None:
        return MissingFeatureError(missing.feature, missing.available) if missing is not exc else missing
    root = exc
    for e in _chain(exc):  # the original error, not TensorFlow's re-raise of it
        if _user_frames(e, fn.path):
            root = e
    message = str(root).strip()
    # AutoGraph prefixes "in user code:" and its own frames; keep the last line, the error.
    if "in user code:" in message:
        message = message.strip().splitlines()[-1].strip()
    return PreprocessingFnError(
        f"{fn.description} failed while tracing: {type(root).__name__}: {message}"
        f"{_user_frames(exc, fn.path)}"
    )

"""The user's ``preprocessing_fn``: loading it from a module file, and its errors.

A module file is read once, on the machine that builds the pipeline, and its
*source text* travels with the pipeline: :class:`PreprocessingFn` pickles as
``(source, path, name)`` and re-executes the source on first call in a worker
process, so a remote worker needs neither the file nor the module on its path.

Every call hands the function a dict that names a missing feature when the
function asks for one (``inputs["nope"]`` raises :class:`MissingFeatureError`
instead of a bare ``KeyError``). :func:`trace_error` turns an exception raised
while tracing into a short message that points into the user's code, and
:func:`runtime_error` does the same for a TensorFlow op of the function that
fails on the data while the pipeline runs: each trace records which line of the
user's module created each op, so the op named in TensorFlow's error leads back
to that line.

Nothing here imports TensorFlow, so the CLI can validate a module file cheaply.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import re
import sys
import traceback
import types
from collections.abc import Callable, Mapping

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.user_modules import (
    Frame,
    UserCodeError,
    add_module_folder,
    exception_chain,
    is_user_file,
    module_import_error,
    user_code_error,
    user_frames,
)
from conveyor.components.trainer import install_keras_tuner_hook
from conveyor.dsl import layout

DEFAULT_FN_NAME = "preprocessing_fn"


class MissingFeatureError(InputError):
    """The preprocessing_fn asked for a feature that the input does not have.

    ``frames`` are the lines of the user's module that asked for it, outermost first.
    """

    def __init__(
        self,
        feature: str,
        available: list[str],
        where: str = "the input schema",
        frames: list[Frame] | tuple = (),
    ):
        self.feature = feature
        self.available = available
        self.where = where
        self.frames = list(frames)
        message = (
            f"preprocessing_fn needs feature {feature!r}, which is not in {where} "
            f"(features: {', '.join(available) or 'none'})"
        )
        if self.frames:
            message += f" [at {self.frames[-1].where}]"
        super().__init__("\n".join([message, *(f.format() for f in self.frames)]))

    def __reduce__(self):
        return (MissingFeatureError, (self.feature, self.available, self.where, self.frames))


class PreprocessingFnError(UserCodeError):
    """The preprocessing_fn raised while it was being traced, or its ops failed on the data."""


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

    def __init__(
        self,
        *,
        source: str | None = None,
        path: str | None = None,
        name: str = DEFAULT_FN_NAME,
        fn: Callable | None = None,
    ):
        if (source is None) == (fn is None):
            raise ValueError("give a module source or a callable")
        self.source = source
        self.path = path
        self.name = name
        self._fn = fn
        self._op_sites: dict[str, list[Frame]] = {}

    @classmethod
    def from_callable(cls, fn: Callable) -> PreprocessingFn:
        """``fn`` as a PreprocessingFn (itself if it is one); raises TypeError if not callable."""
        if isinstance(fn, PreprocessingFn):
            return fn
        if not callable(fn):
            raise TypeError(f"preprocessing_fn must be callable, not {type(fn).__name__}")
        code = getattr(fn, "__code__", None)
        return cls(
            fn=fn, path=code.co_filename if code else None, name=getattr(fn, "__name__", repr(fn))
        )

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
        """Calls the user's function on ``inputs`` (tensors by feature name) and checks its outputs.

        Raises:
          PreprocessingFnError: it returned no dict of outputs, or a dense output
            without a batch dimension or with an unknown dimension.
        """
        fn = self.function()
        graph, before = _graph_and_op_count()
        try:
            outputs = fn(_Inputs(inputs))
        finally:
            if graph is not None:
                self._record_op_sites(graph, before)
        if not isinstance(outputs, Mapping) or not outputs:
            code = getattr(fn, "__code__", None)
            frames = (
                [Frame(self.path, code.co_firstlineno, self.name, "")] if code and self.path else []
            )
            raise PreprocessingFnError(
                self.description,
                "",
                "",
                frames,
                path=self.path,
                when="must return a non-empty dict of feature name to tensor, not "
                + type(outputs).__name__
                + (" (empty)" if isinstance(outputs, Mapping) else ""),
            )
        self._check_output_shapes(outputs)
        return outputs

    def _check_output_shapes(self, outputs: Mapping) -> None:
        """A dense output needs a batch dimension and known other dimensions (a tf.Example feature).

        tf.Transform refuses such an output later, in a pipeline step, without
        saying where it came from; here the op that made it names the line.
        """
        tf = sys.modules.get("tensorflow")
        if tf is None:
            return
        for name, value in outputs.items():
            if not isinstance(value, tf.Tensor):
                continue  # SparseTensor, RaggedTensor: tf.Transform checks those itself
            shape = value.shape
            if shape.rank is None:
                problem = "every dimension but the first (the batch) must be known"
                shown = "of unknown shape"
            elif shape.rank == 0:
                problem = "it needs a batch dimension (one value per example)"
                shown = "of shape ()"
            elif any(d is None for d in shape.as_list()[1:]):
                problem = "every dimension but the first (the batch) must be known"
                shown = f"of shape {tuple(shape.as_list())}"
            else:
                continue
            frames = self._frames_of(getattr(value, "op", None))
            raise PreprocessingFnError(
                self.description,
                "",
                f"{problem} (tf.reshape it, or return a tf.SparseTensor)",
                frames,
                path=self.path,
                when=f"returns {name!r} {shown}",
            )

    def _frames_of(self, op) -> list[Frame]:
        if op is None or not self.path:
            return []
        try:
            stack = op.traceback
        except Exception:
            return []
        return [
            Frame(
                f.filename,
                f.lineno,
                f.name,
                (getattr(f, "line", "") or linecache.getline(f.filename, f.lineno)).strip(),
            )
            for f in stack
            if is_user_file(f.filename, self.path)
        ]

    def _record_op_sites(self, graph, before: int) -> None:
        """Remembers, for each op the call created, the lines of the user's module that created it."""
        if not self.path:
            return
        try:
            ops = graph.get_operations()[before:]
        except Exception:  # not a graph being traced
            return
        for op in ops:
            frames = self._frames_of(op)
            if frames:
                self._op_sites[op.name] = frames

    def op_site(self, op_name: str) -> list[Frame]:
        """The lines of the user's module that created the op ``op_name`` (empty if unknown)."""
        sites = getattr(self, "_op_sites", {})
        if op_name in sites:
            return sites[op_name]
        # A nested op (a tf.while body, a tft analyzer's internals) is named under its parent.
        parts = op_name.split("/")
        for i in range(len(parts) - 1, 0, -1):
            if "/".join(parts[:i]) in sites:
                return sites["/".join(parts[:i])]
        return []

    def __getstate__(self):
        if self.source is not None:
            return {"source": self.source, "path": self.path, "name": self.name, "fn": None}
        return {"source": None, "path": self.path, "name": self.name, "fn": self._fn}

    def __setstate__(self, state):
        self.source = state["source"]
        self.path = state["path"]
        self.name = state["name"]
        self._fn = state["fn"]
        self._op_sites = {}

    def __repr__(self):
        return f"PreprocessingFn({self.description})"


def _graph_and_op_count():
    """The graph being traced (when TensorFlow is in use) and how many ops it holds."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None, 0
    try:
        graph = tf.compat.v1.get_default_graph()
        return graph, len(graph.get_operations())
    except Exception:
        return None, 0


def _exec_module(source: str, path: str, name: str) -> Callable:
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    module = types.ModuleType(f"conveyor_user_module_{digest}")
    module.__file__ = path
    add_module_folder(path)  # its helpers beside it import, here and in a worker on this machine
    install_keras_tuner_hook()  # TFX's module files import KerasTuner beside preprocessing_fn
    try:
        code = compile(source, path, "exec")
        exec(code, module.__dict__)  # noqa: S102 - running the user's module is the point
    except Exception as e:
        raise module_import_error(e, path) from None
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(
            k
            for k, v in vars(module).items()
            if callable(v)
            and not k.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
        )
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


def find_missing_feature(exc: BaseException) -> MissingFeatureError | None:
    """The :class:`MissingFeatureError` behind ``exc``, if that is what it is."""
    for e in exception_chain(exc):
        if isinstance(e, MissingFeatureError):
            return e
    return None


def trace_error(exc: BaseException, fn: PreprocessingFn) -> InputError:
    """An :class:`InputError` that says what the user's function raised while traced, and where."""
    missing = find_missing_feature(exc)
    if missing is not None:
        frames = missing.frames or user_frames(exc, fn.path)
        return MissingFeatureError(missing.feature, missing.available, missing.where, frames)
    for e in exception_chain(exc):
        if isinstance(e, UserCodeError):  # ours, raised from the call (an output's shape, ...)
            return e
    err = user_code_error(exc, fn.description, fn.path, when="failed while tracing")
    return PreprocessingFnError(
        err.what, err.error_type, err.error, err.frames, path=fn.path, when=err.when
    )


# TensorFlow's runtime errors: "Detected at node 'x' defined at ...", "[[{{node x}}]]".
_NODE = re.compile(r"Detected at node '?([^'\s]+?)'? defined at|\{\{node ([^}]+)\}\}")
_STEP = re.compile(r"\[while running '([^']+)'\]")
_SPLIT = re.compile(r"(?:AnalyzeAndTransform|Transform)\[([^\]]+)\]")
_TYPE = re.compile(r"(\w+Error): Graph execution error")
_FRAME_TEXT = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_RAISED_TEXT = re.compile(r"^((?:\w+\.)*\w*(?:Error|Exception)): (.*)$", re.MULTILINE)
_DECORATION = re.compile(
    r"^(Graph execution error:|Detected at node|<stack traces unavailable>|File \"|Node: |\[\[|"
    r"Traceback \(most recent call last\))"
)


def _op_error(exc: BaseException):
    """``(error type name, TensorFlow's error text)`` of a TF op error in the chain, or None."""
    tf = sys.modules.get("tensorflow")
    op_error = getattr(getattr(tf, "errors", None), "OpError", None) if tf is not None else None
    for e in exception_chain(exc):
        if op_error is not None and isinstance(e, op_error):
            return type(e).__name__, _first_op_message(getattr(e, "message", None) or str(e))
    for e in exception_chain(exc):  # from another process: only the text is left
        text = str(e)
        if "Graph execution error" in text or "Detected at node" in text:
            m = _TYPE.search(text)
            start = text.find("Graph execution error")
            return (m.group(1) if m else "TensorFlow error"), _first_op_message(
                text[max(start, 0) :]
            )
    return None


def _first_op_message(text: str) -> str:
    """TensorFlow's error text up to its ``[[{{node ...}}]]`` line (what wrappers add is cut)."""
    end = text.find("[[")
    if end < 0:
        return text
    line_end = text.find("\n", end)
    return text if line_end < 0 else text[:line_end]


def _op_message(text: str) -> str:
    """The error itself out of TensorFlow's text (no node lines, stacks or op names)."""
    kept = []
    lines = text.splitlines()
    skip_code = False
    for raw in lines:
        line = raw.strip()
        if line.startswith("[["):
            break  # what follows is the op's function name and the wrappers' text
        if skip_code:
            skip_code = False
            if raw.startswith("      "):
                continue
        if not line or _DECORATION.match(line):
            skip_code = line.startswith('File "')
            continue
        kept.append(re.sub(r"^(\{\{function_node [^}]*\}\}\s*)+", "", line))
    return " ".join(kept).strip()


def _split_of(exc: BaseException) -> str:
    """`` of Split-<name>`` from the pipeline step that failed, if it says."""
    for e in exception_chain(exc):
        step = _STEP.search(str(e))
        if step:
            split = _SPLIT.search(step.group(1))
            return f" of {layout.SPLIT_PREFIX}{split.group(1)}" if split else ""
    return ""


def _refused_by_tft(exc: BaseException):
    """The ValueError/TypeError tf.Transform raised about the function's graph, or None."""
    for e in exception_chain(exc):
        if isinstance(e, (ValueError, TypeError)) and not isinstance(e, InputError):
            frames = traceback.extract_tb(e.__traceback__)
            if frames and f"{os.sep}tensorflow_transform{os.sep}" in frames[-1].filename:
                return e
    return None


def runtime_error(exc: BaseException, fn: PreprocessingFn) -> InputError | None:
    """What the user must fix when a Transform pipeline of ``fn`` fails, or None.

    ``exc`` is what the pipeline raised. That is the user's when:

    * an error of ours about the function is in it (:class:`UserCodeError`,
      :class:`MissingFeatureError`), as when tf.Transform traces it again;
    * a TensorFlow op of the function failed on the data: the frames are the
      lines of the user's module that created the op (recorded while tracing), or
      those a ``tf.py_function``'s traceback names;
    * tf.Transform refused what the function built (a ValueError or TypeError
      raised by tf.Transform's own code).

    Anything else (a failure to read or write, a bug) is not the user's module
    to fix and gives None.
    """
    for e in exception_chain(exc):
        if isinstance(e, (UserCodeError, MissingFeatureError)):
            return e
    found = _op_error(exc)
    if found is None:
        refused = _refused_by_tft(exc)
        if refused is None:
            return None
        message = re.sub(r"(?: \[while running '[^\n]*?'\])+$", "", str(refused).strip())
        return PreprocessingFnError(
            fn.description,
            type(refused).__name__,
            message,
            path=fn.path,
            when="was refused by tf.Transform" + _split_of(exc).replace(" of ", " on "),
        )
    error_type, text = found
    node = _NODE.search(text)
    op_name = (node.group(1) or node.group(2)) if node else None
    frames = list(fn.op_site(op_name)) if op_name else []
    message = _op_message(text)
    if "Traceback (most recent call last)" in text:
        # A tf.py_function's Python error: its own type, message and frames in the user's file.
        raised = list(_RAISED_TEXT.finditer(text))
        if raised:
            error_type, message = (
                raised[-1].group(1).rsplit(".", 1)[-1],
                raised[-1].group(2).strip(),
            )
        lines = text.splitlines()
        for i, line in enumerate(lines):
            m = _FRAME_TEXT.search(line)
            if m and is_user_file(m.group(1), fn.path):
                code = lines[i + 1].strip() if i + 1 < len(lines) else ""
                frame = Frame(
                    m.group(1),
                    int(m.group(2)),
                    m.group(3),
                    "" if code.startswith("File ") else code,
                )
                if frame not in frames:
                    frames.append(frame)
    if op_name:
        message += f" (op {op_name!r})"
    return PreprocessingFnError(
        fn.description,
        error_type,
        message,
        frames,
        path=fn.path,
        when="failed on the examples" + _split_of(exc),
    )

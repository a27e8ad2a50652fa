"""Loading a pipeline from a Python file or from a pickle written by a runner."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import os
import runpy
import sys
import threading

from conveyor.beam_utils.user_modules import import_file, user_code_error
from conveyor.dsl import Pipeline

__all__ = ["captured_by_loader", "load_pipeline", "save_pipeline"]

#: While :func:`load_pipeline` runs a pipeline file: the pipelines runners were handed, and
#: whether the first hand-over ends the file's run (its ``__main__`` code). None when no file
#: is being loaded: a context variable, so a thread that is not loading one runs pipelines.
_CAPTURED: contextvars.ContextVar[tuple[list, bool] | None] = contextvars.ContextVar(
    "conveyor_captured_pipelines", default=None
)

#: ``sys.argv`` and ``sys.modules["__main__"]`` are the process's: one ``__main__`` run at a time.
_MAIN_LOCK = threading.Lock()


class _HandedOver(BaseException):
    """Ends a pipeline file's ``__main__`` code at its runner call: what follows it (using the
    run's result, submitting the spec written) is not the pipeline's definition. A
    BaseException, so the file's ``except Exception`` and absl's ``app.run`` let it through."""


def captured_by_loader(pipeline) -> bool:
    """Whether a runner's ``run(pipeline)`` is the definition of a pipeline file being loaded.

    Every runner calls it first. While :func:`load_pipeline` runs a file that hands its
    pipeline to a runner (TFX's style: ``LocalDagRunner().run(create_pipeline(...))`` under
    ``if __name__ == "__main__":``, or ``DAG = AirflowDagRunner(config).run(...)`` at module
    level), the pipeline is recorded for the loader and the runner neither runs nor writes
    anything, as under TFX's ``tfx pipeline create``: at module level the runner returns None
    (True here); in ``__main__`` code the file's run ends there.
    """
    state = _CAPTURED.get()
    if state is None:
        return False
    found, stop = state
    found.append(pipeline)
    if stop:
        raise _HandedOver()
    return True


@contextlib.contextmanager
def _capturing(stop: bool = False):
    found: list = []
    token = _CAPTURED.set((found, stop))
    try:
        yield found
    finally:
        _CAPTURED.reset(token)


def load_pipeline(path: str) -> Pipeline:
    """The pipeline a file defines.

    A ``.pkl`` file is a pipeline pickled by a runner. A ``.py`` file is imported
    under its own name (its ``if __name__ == "__main__":`` block does not run) and
    gives, first that applies: its ``create_pipeline()`` function's Pipeline (when it
    takes no arguments); its one module-level ``Pipeline`` (any name); the pipeline it
    hands a runner at module level. A file with none of those (a TFX pipeline file,
    whose ``_create_pipeline`` is called only in its ``__main__`` block) is then run
    as ``__main__``, with ``sys.argv`` just the file, up to the first pipeline its
    code hands a runner; no runner runs it (:func:`captured_by_loader`).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the
    file when it defines no pipeline, or several.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such pipeline file")
    if path.endswith(".pkl"):
        import cloudpickle

        with open(path, "rb") as f:
            return cloudpickle.load(f)
    with _capturing() as handed:
        module = import_file(path, "conveyor_pipeline_")
    factory = getattr(module, "create_pipeline", None)
    if callable(factory) and _takes_no_arguments(factory):
        pipeline = factory()
        if isinstance(pipeline, Pipeline):
            return pipeline
    found = _distinct(vars(module).values())
    if not found:
        found = _distinct(handed)
    if not found:
        _forget_absl_flags(module.__name__)
        found = _distinct(_run_as_main(path))
    if len(found) != 1:
        raise ValueError(
            f"{path}: expected one Pipeline (a module-level Pipeline, create_pipeline(), or "
            f"one handed to a runner's run()), found {len(found)}"
        )
    return found[0]


def _takes_no_arguments(function) -> bool:
    try:
        inspect.signature(function).bind()
    except (TypeError, ValueError):
        return False
    return True


def _distinct(values) -> list:
    """The Pipelines among ``values``, each once (by identity), in order."""
    out: list = []
    for p in values:
        if isinstance(p, Pipeline) and all(p is not q for q in out):
            out.append(p)
    return out


def _forget_absl_flags(module_name: str) -> None:
    """Removes the absl flags defined from ``module_name`` (the file's import, or its
    ``__main__`` run, which absl names by ``sys.argv[0]``), so that the file may define them
    again (absl refuses a flag defined twice from two modules)."""
    absl_flags = sys.modules.get("absl.flags")
    if absl_flags is None:
        return
    flags = absl_flags.FLAGS
    for flag in flags.flags_by_module_dict().get(module_name, []):
        for name in {flag.name, flag.short_name} - {None}:
            try:
                delattr(flags, name)
            except AttributeError:
                pass


def _run_as_main(path: str) -> list:
    """The first pipeline the file's ``__main__`` code hands a runner (which runs none)."""
    with _MAIN_LOCK:
        argv = sys.argv
        sys.argv = [path]
        try:
            with _capturing(stop=True) as handed:
                try:
                    runpy.run_path(path, run_name="__main__")
                except _HandedOver:
                    pass
                except SystemExit as e:  # absl's app.run(main) exits when main returns
                    if e.code not in (None, 0):
                        raise ValueError(
                            f"{path}: exited with status {e.code} when run to find its pipeline"
                        ) from None
                except Exception as e:
                    what = f"{os.path.basename(path)} (run as __main__)"
                    raise user_code_error(e, what, path) from None
        finally:
            sys.argv = argv
            # absl files flags defined from __main__ under sys.argv[0]: forget them too, so
            # that the next load of this file may define them again.
            _forget_absl_flags(path)
    return handed


def save_pipeline(pipeline: Pipeline, path: str) -> str:
    """Pickles a pipeline for launcher processes; returns the path."""
    import cloudpickle

    # Component classes from user code (a pipeline file, a notebook, a test) may not
    # be importable in the launcher process: ship them by value.
    for component in pipeline.components:
        module = sys.modules.get(type(component).__module__)
        if module is not None and not module.__name__.startswith("conveyor."):
            if module.__name__ != "__main__":
                cloudpickle.register_pickle_by_value(module)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    # Owner-only: the pipeline may carry credentials (a MySQL metadata_connection_config's
    # password, Beam flags with S3 keys) that its launcher processes need.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        cloudpickle.dump(pipeline, f)
    os.replace(tmp, path)
    return path

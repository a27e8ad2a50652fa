"""Loading a pipeline from a Python file or from a pickle written by a runner."""

from __future__ import annotations

import contextlib
import contextvars
import os
import runpy
import sys

from conveyor.beam_utils.user_modules import import_file, user_code_error
from conveyor.dsl import Pipeline

__all__ = ["captured_by_loader", "load_pipeline", "save_pipeline"]

#: The pipelines that runners were handed while :func:`load_pipeline` runs a pipeline file
#: (None when no file is being loaded): a context variable, so a thread or task that is not
#: loading one runs its pipelines as usual.
_CAPTURED: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "conveyor_captured_pipelines", default=None
)


def captured_by_loader(pipeline) -> bool:
    """Whether a runner's ``run(pipeline)`` is the definition of a pipeline file being loaded.

    Every runner calls it first. While :func:`load_pipeline` runs a file that hands its
    pipeline to a runner (TFX's style: ``LocalDagRunner().run(create_pipeline(...))`` under
    ``if __name__ == "__main__":``, or ``DAG = AirflowDagRunner(config).run(...)`` at module
    level), the pipeline is recorded for the loader and True returned: the runner then returns
    None without running or writing anything, as TFX's ``tfx pipeline create`` does.
    """
    found = _CAPTURED.get()
    if found is None:
        return False
    found.append(pipeline)
    return True


@contextlib.contextmanager
def _capturing():
    found: list = []
    token = _CAPTURED.set(found)
    try:
        yield found
    finally:
        _CAPTURED.reset(token)


def load_pipeline(path: str) -> Pipeline:
    """The pipeline a file defines.

    A ``.pkl`` file is a pipeline pickled by a runner. A ``.py`` file is imported
    under its own name (its ``if __name__ == "__main__":`` block does not run) and
    gives, first that applies: its ``create_pipeline()`` function's Pipeline; its
    one module-level ``Pipeline`` (any name); the pipeline it hands a runner at
    module level. A file with none of those (a TFX pipeline file, whose
    ``_create_pipeline`` is called only in its ``__main__`` block) is then run as
    ``__main__``, with ``sys.argv`` just the file, and gives the pipeline its code
    hands a runner there; no runner runs it (:func:`captured_by_loader`).

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
    if callable(getattr(module, "create_pipeline", None)):
        pipeline = module.create_pipeline()
        if isinstance(pipeline, Pipeline):
            return pipeline
    found = _distinct(v for v in vars(module).values() if isinstance(v, Pipeline))
    if not found:
        found = _distinct(handed)
    if not found:
        found = _distinct(_run_as_main(path))
    if len(found) != 1:
        raise ValueError(
            f"{path}: expected one Pipeline (a module-level Pipeline, create_pipeline(), or "
            f"one handed to a runner's run()), found {len(found)}"
        )
    return found[0]


def _distinct(pipelines) -> list:
    out: list = []
    for p in pipelines:
        if isinstance(p, Pipeline) and all(p is not q for q in out):
            out.append(p)
    return out


def _run_as_main(path: str) -> list:
    """The pipelines the file's ``__main__`` code hands runners (which run none of them)."""
    argv = sys.argv
    sys.argv = [path]
    try:
        with _capturing() as handed:
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as e:  # absl's app.run(main) exits when main returns
                if e.code not in (None, 0) and not handed:
                    raise ValueError(
                        f"{path}: exited with status {e.code} when run to find its pipeline"
                    ) from None
            except Exception as e:
                raise user_code_error(
                    e, f"{os.path.basename(path)} (run as __main__)", path
                ) from None
    finally:
        sys.argv = argv
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

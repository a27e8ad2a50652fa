"""Loading a pipeline from a Python file or from a pickle written by a runner."""

from __future__ import annotations

import os
import sys

from conveyor.beam_utils.user_modules import import_file
from conveyor.dsl import Pipeline


def load_pipeline(path: str) -> Pipeline:
    """The pipeline a file defines.

    A ``.pkl`` file is a pipeline pickled by a runner. A ``.py`` file must define
    a module-level ``Pipeline`` (any name) or a ``create_pipeline()`` function
    returning one; it is imported under its own name, so its
    ``if __name__ == "__main__":`` block does not run.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such pipeline file")
    if path.endswith(".pkl"):
        import cloudpickle

        with open(path, "rb") as f:
            return cloudpickle.load(f)
    module = import_file(path, "conveyor_pipeline_")
    if callable(getattr(module, "create_pipeline", None)):
        pipeline = module.create_pipeline()
        if isinstance(pipeline, Pipeline):
            return pipeline
    found = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if len(found) != 1:
        raise ValueError(
            f"{path}: expected one Pipeline (or create_pipeline()), found {len(found)}"
        )
    return found[0]


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

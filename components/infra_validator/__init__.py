"""Infra validation: does the model load and answer in a clean serving process? (TFX's InfraValidator)

:func:`run_infra_validator` loads a SavedModel in a fresh local TensorFlow
process that sees none of the pipeline's code (``python -I -S`` in an empty
folder with a clean environment), and, given examples, calls its signatures on
a few of them (LOAD_AND_QUERY; LOAD_ONLY without), within a deadline. It
writes ``INFRA_BLESSED`` or ``INFRA_NOT_BLESSED`` (with the reason): a model
that fails to load, a signature that fails, a timeout are a verdict, not an
error. The ``conveyor infra-validate`` command and the :class:`InfraValidator`
pipeline component call it.

TensorFlow Serving's binary is not part of Conveyor: the one serving runtime
is the local TensorFlow of this environment (``{"local_tensorflow": {}}``;
TFX's ``tensorflow_serving`` spec is mapped to it, with a note in the summary).

Example::

    from conveyor.components.infra_validator import run_infra_validator

    summary = run_infra_validator(
        "out/Trainer/model/7", "out/infra", examples="out/ExampleGen/examples/3",
        request_spec={"split_name": "eval", "num_examples": 2},
        validation_spec={"max_loading_time_seconds": 60, "num_tries": 1})
    print(summary["blessed"], summary["reason"])

Names are imported on first use, so ``conveyor.components.infra_validator.cli``
loads without Beam or TensorFlow.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "InfraValidator": "node",
    "run_infra_validator": "component",
    "request_examples": "component",
    "LOAD_ONLY": "config",
    "LOAD_AND_QUERY": "config",
}

__all__ = [
    "LOAD_AND_QUERY",
    "LOAD_ONLY",
    "InfraValidator",
    "request_examples",
    "run_infra_validator",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

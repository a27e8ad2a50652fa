"""Pushing a blessed model to where a server picks it up (TFX's Pusher).

:func:`run_pusher` copies a model's SavedModel to
``<base_directory>/<version>`` (the epoch second of the push), TensorFlow
Serving's watched layout, atomically: a hidden copy beside, then a rename. A
model not blessed by the Evaluator (``NOT_BLESSED``) or the InfraValidator
(``INFRA_NOT_BLESSED``) is not pushed. The ``conveyor push`` command and the
:class:`Pusher` pipeline component call it.

Example::

    from conveyor.components.pusher import run_pusher

    summary = run_pusher(
        "out/Trainer/model/7", "out/pushed",
        push_destination={"filesystem": {"base_directory": "serving/flights"}},
        model_blessing="out/Evaluator/blessing/8",
        infra_blessing="out/InfraValidator/blessing/9")
    print(summary["pushed"], summary["pushed_destination"])

Names are imported on first use, so ``conveyor.components.pusher.cli`` loads
without Beam.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "Pusher": "node",
    "run_pusher": "component",
    "next_version": "component",
    "remove_stale_copies": "component",
    "versions": "component",
}

__all__ = ["Pusher", "next_version", "remove_stale_copies", "run_pusher", "versions"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

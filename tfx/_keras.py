"""Keras 2 for TFX module files: what TFX 1.16 gets from TensorFlow Transform, made certain.

TFX 1.16 depends on ``tf-keras`` 2.16 and on TensorFlow Transform 1.16, whose
``keras_lib`` sets ``TF_USE_LEGACY_KERAS=1`` (when it is unset) as TFX's
components import it; so under TFX, ``tf.keras`` in a module file is Keras 2
and ``model.save(dir, save_format="tf", signatures=...)`` works. Here that
depended on import order: a process that touched ``tf.keras`` before importing
TensorFlow Transform got Keras 3, which refuses ``save_format``. Importing
``conveyor.tfx`` selects Keras 2 first, for this process and the subprocesses
it starts (Beam workers, the steps' commands), and lets KerasTuner follow
(:mod:`conveyor.components.trainer.keras_backend`). Code that imports ``keras``
itself still gets Keras 3.
"""

from __future__ import annotations

import logging
import os

from conveyor.components.trainer import install_keras_tuner_hook, legacy_keras_selected

__all__ = ["select_legacy_keras"]

_VARIABLE = "TF_USE_LEGACY_KERAS"
_log = logging.getLogger(__name__)


def select_legacy_keras() -> bool:
    """Sets ``TF_USE_LEGACY_KERAS=1`` (unless the user set it) and makes ``tf.keras`` Keras 2.

    Returns whether ``tf.keras`` is Keras 2 for this process. A value the user
    set is kept (a warning says TFX's Keras module files need Keras 2). A
    ``tf.keras`` TensorFlow already resolved to Keras 3, with the variable
    unset, is pointed at Keras 2 (:func:`_repoint_tf_keras`).
    """
    import importlib.util

    if importlib.util.find_spec("tf_keras") is None:
        _log.warning(
            "tf_keras is not installed: tf.keras is Keras 3, which TFX's module files do not run on"
        )
        return False
    if _VARIABLE not in os.environ:
        os.environ[_VARIABLE] = "1"
        if not legacy_keras_selected():
            _repoint_tf_keras()
    elif not legacy_keras_selected():
        _log.warning(
            "%s=%s keeps tf.keras on Keras 3; TFX's Keras module files need Keras 2 "
            "(model.save(..., save_format='tf')): unset it or set it to 1",
            _VARIABLE,
            os.environ[_VARIABLE],
        )
    install_keras_tuner_hook()
    return legacy_keras_selected()


def _repoint_tf_keras() -> None:
    """Points ``tf.keras`` at Keras 2 when TensorFlow already resolved it to Keras 3.

    TFX's pipeline files import TensorFlow Model Analysis before ``tfx``; TFMA
    0.47 reads ``tf.keras`` on import, which TensorFlow then resolves to Keras 3
    for good (the variable is read once). TensorFlow's own loader resolves
    ``tf.keras`` by setting the attribute; this does the same with Keras 2, and
    for ``import tensorflow.keras...``. Code that already holds Keras 3's
    ``tf.keras`` keeps it.
    """
    import sys

    import tf_keras.api._v2.keras as keras_2

    tf = sys.modules["tensorflow"]
    tf.keras = keras_2
    sys.modules["tensorflow.keras"] = keras_2
    _log.info("tf.keras was resolved to Keras 3 before conveyor.tfx was imported: now Keras 2")

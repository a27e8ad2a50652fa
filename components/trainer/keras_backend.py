"""Which Keras KerasTuner is built on: the one the module file that imports it uses.

TensorFlow 2.16 ships Keras 3 as ``keras`` and, with ``TF_USE_LEGACY_KERAS=1``
(which TensorFlow Transform 1.16 sets when it is imported, and
``conveyor.tfx`` sets before TensorFlow loads), Keras 2 (the ``tf_keras``
package) as ``tf.keras``. keras-tuner 1.4.8 picks its Keras once, when it is
first imported, and always picks Keras 3 when Keras 3 is installed; a
KerasTuner tuner then refuses a ``tf.keras`` model ("did not return a valid
Keras Model instance"). TFX's module files build ``tf.keras`` models and tune
them with KerasTuner, so that would fail here.

:func:`install_keras_tuner_hook` makes the first import of ``keras_tuner`` (or
its old name ``kerastuner``) look at the module file importing it: if that file
uses ``tf.keras`` (``tf.keras.…``, ``from tensorflow import keras``, as TFX's
do) and does not import ``keras`` itself, while ``tf.keras`` is Keras 2,
KerasTuner is built on ``tf_keras``; otherwise (Conveyor's own code, a module
importing ``keras``) it is left on Keras 3, as keras-tuner chooses. Once
imported, KerasTuner keeps its Keras for the life of the process, so the first
importer decides; :func:`keras_tuner_backend` says which one it got.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import linecache
import os
import sys

__all__ = ["install_keras_tuner_hook", "keras_tuner_backend", "legacy_keras_selected"]

_NAMES = ("keras_tuner", "kerastuner")
# Frames of the import machinery and of this module: not the importer.
_SKIP = ("<frozen importlib", os.path.dirname(importlib.__file__) + os.sep, __file__)
# Conveyor's own code importing KerasTuner first leaves keras-tuner's own choice.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OWN = tuple(
    os.path.join(_ROOT, d) + os.sep
    for d in ("beam_utils", "dsl", "components", "orchestration", "tfx")
)


def legacy_keras_selected() -> bool:
    """Whether ``tf.keras`` is (or, once TensorFlow loads, will be) Keras 2 (``tf_keras``)."""
    tf = sys.modules.get("tensorflow")
    resolved = getattr(tf, "__dict__", {}).get("keras") if tf is not None else None
    name = getattr(resolved, "__name__", "") if isinstance(resolved, type(sys)) else ""
    if name:  # tf.keras already resolved: what it resolved to is what the process uses
        return name.startswith("tf_keras")
    return os.environ.get("TF_USE_LEGACY_KERAS") in ("1", "true", "True")


def keras_tuner_backend() -> str | None:
    """``"tf_keras"`` or ``"keras"``: the Keras KerasTuner was built on; None before it is imported."""
    kt_keras = sys.modules.get("keras_tuner.src.backend.keras")
    if kt_keras is None:
        return None
    model = getattr(kt_keras, "Model", None)
    return "tf_keras" if getattr(model, "__module__", "").startswith("tf_keras") else "keras"


def _uses_tf_keras(source: str) -> bool:
    """Whether module text uses ``tf.keras`` (Keras 2 here) and does not import ``keras`` itself."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    tf_names, uses = set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "keras" or a.name.startswith("keras."):
                    return False
                if a.name == "tensorflow":
                    tf_names.add(a.asname or a.name)
                uses = uses or a.name.startswith("tensorflow.keras")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "keras" or node.module.startswith("keras."):
                return False
            uses = uses or node.module.startswith("tensorflow.keras")
            uses = uses or (
                node.module == "tensorflow" and any(a.name == "keras" for a in node.names)
            )
    if uses:
        return True
    return any(
        isinstance(n, ast.Attribute)
        and n.attr == "keras"
        and isinstance(n.value, ast.Name)
        and n.value.id in tf_names
        for n in ast.walk(tree)
    )


def _importer_uses_tf_keras() -> bool:
    """Whether the module importing KerasTuner builds its models with ``tf.keras``."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        package = frame.f_globals.get("__name__", "")
        if not filename.startswith(_SKIP) and package.split(".")[0] not in _NAMES:
            if os.path.abspath(filename).startswith(_OWN):
                return False
            lines = linecache.getlines(filename, frame.f_globals)
            if lines:
                return _uses_tf_keras("".join(lines))
            # No source to read (exec'd text): what it has imported so far.
            value = frame.f_globals.get("keras")
            return getattr(value, "__name__", "").startswith("tf_keras")
        frame = frame.f_back
    return False


class _Loader(importlib.abc.Loader):
    """Runs KerasTuner's own loader with ``keras`` naming ``tf_keras`` meanwhile."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        import tf_keras

        before = sys.modules.get("keras")
        sys.modules["keras"] = tf_keras
        try:
            self._loader.exec_module(module)
        finally:
            if before is None:
                sys.modules.pop("keras", None)
            else:
                sys.modules["keras"] = before


class _KerasTunerFinder(importlib.abc.MetaPathFinder):
    """Decides KerasTuner's Keras on its first import (then steps aside)."""

    def find_spec(self, fullname, path=None, target=None):
        # kerastuner (the old name) imports keras_tuner: decided there.
        if fullname != "keras_tuner" or "keras_tuner" in sys.modules:
            return None
        _uninstall()
        if not legacy_keras_selected() or not _importer_uses_tf_keras():
            return None
        try:
            import tf_keras  # noqa: F401
        except ImportError:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _KerasTunerFinder)]


def install_keras_tuner_hook() -> bool:
    """Installs the import hook unless KerasTuner is already imported; True when installed.

    Cheap and idempotent: it imports nothing. The module files' loaders
    (Trainer, Tuner, Transform) and ``conveyor.tfx`` call it.
    """
    if "keras_tuner" in sys.modules:
        return False
    if not any(isinstance(f, _KerasTunerFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasTunerFinder())
    return True

"""TFX's standard artifact classes (``tfx.types.standard_artifacts``) and its value artifacts.

Each is a subclass of :class:`conveyor.dsl.artifacts.Artifact` with TFX's type
name and properties, so ``Channel(type=Examples)``, ``InputArtifact[Examples]``
and ``Artifact("Examples", uri)`` all name the same type.

Value artifacts (:class:`ValueArtifact`: ``String``, ``Integer``, ``Float``,
``Boolean``, ``JsonValue``, ``Bytes``) hold one small value in the file
``value`` in their folder (``<uri>/value``; a ``uri`` that is a file is read as
the value itself), encoded as TFX encodes it. ``.value`` reads it (from the
file, else from the ``value`` property), ``.value = v`` writes it.

Example::

    from conveyor.dsl.artifact_types import Examples, Integer

    examples = Examples(uri="/data/examples")
    examples.splits = ["train", "eval"]         # split_names == '["train", "eval"]'
    examples.span = 3

    count = Integer(uri="/tmp/count")
    count.value = 42                            # writes /tmp/count/value: "42"
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

from conveyor.dsl.artifacts import Artifact, Property, PropertyType

__all__ = [
    "Artifact",
    "Boolean",
    "Bytes",
    "ExampleAnomalies",
    "ExampleStatistics",
    "Examples",
    "Float",
    "HyperParameters",
    "InferenceResult",
    "InfraBlessing",
    "Integer",
    "JsonValue",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "ModelRun",
    "Property",
    "PropertyType",
    "PushedModel",
    "Schema",
    "String",
    "TransformCache",
    "TransformGraph",
    "ValueArtifact",
    "decode_split_names",
    "encode_split_names",
]

SPAN_PROPERTY = Property(type=PropertyType.INT)
VERSION_PROPERTY = Property(type=PropertyType.INT)
SPLIT_NAMES_PROPERTY = Property(type=PropertyType.STRING)


def encode_split_names(splits: Sequence[str]) -> str:
    """Split names as TFX records them: a JSON list (``'["train", "eval"]'``)."""
    splits = list(splits)
    if not all(isinstance(s, str) for s in splits):
        raise TypeError(f"split names are strings, not {splits!r}")
    return json.dumps(splits)


def decode_split_names(split_names: str) -> list[str]:
    """The list of a ``split_names`` property (``''``: no splits)."""
    if not split_names:
        return []
    names = json.loads(split_names)
    if not isinstance(names, list):
        raise ValueError(f"split_names is a JSON list of names, not {split_names!r}")
    return names


class _Splits:
    """``splits``: the ``split_names`` property as a list (TFX's ``Examples.splits``)."""

    @property
    def splits(self) -> list[str]:
        return decode_split_names(self.split_names)

    @splits.setter
    def splits(self, splits: Sequence[str]) -> None:
        self.split_names = encode_split_names(splits)


class Examples(_Splits, Artifact):
    """Training data, one folder per split (``<uri>/Split-<name>``); span, version, split_names."""

    TYPE_NAME = "Examples"
    PROPERTIES = {
        "span": SPAN_PROPERTY,
        "version": VERSION_PROPERTY,
        "split_names": SPLIT_NAMES_PROPERTY,
    }

    def path(self, *, split: str) -> str:
        """The folder of one split (it must be one of :attr:`splits`)."""
        if split not in self.splits:
            raise ValueError(f"split {split!r} is not one of this artifact's splits {self.splits}")
        return self.split_uri(split)


class ExampleStatistics(_Splits, Artifact):
    """Statistics of each split (TFDV's DatasetFeatureStatisticsList)."""

    TYPE_NAME = "ExampleStatistics"
    PROPERTIES = {"span": SPAN_PROPERTY, "split_names": SPLIT_NAMES_PROPERTY}


class ExampleAnomalies(_Splits, Artifact):
    """Anomalies found in each split against a schema."""

    TYPE_NAME = "ExampleAnomalies"
    PROPERTIES = {"span": SPAN_PROPERTY, "split_names": SPLIT_NAMES_PROPERTY}


class Schema(Artifact):
    """A schema (``schema.pbtxt``)."""

    TYPE_NAME = "Schema"


class TransformGraph(Artifact):
    """A tf.Transform output: the transform graph and metadata."""

    TYPE_NAME = "TransformGraph"


class TransformCache(Artifact):
    """tf.Transform's analyzer cache."""

    TYPE_NAME = "TransformCache"


class Model(Artifact):
    """A trained model (``Format-Serving/``)."""

    TYPE_NAME = "Model"


class ModelRun(Artifact):
    """A training run's logs (TensorBoard)."""

    TYPE_NAME = "ModelRun"


class ModelEvaluation(Artifact):
    """An evaluation's metrics and plots."""

    TYPE_NAME = "ModelEvaluation"


class ModelBlessing(Artifact):
    """Whether a model was blessed: a ``BLESSED`` or ``NOT_BLESSED`` file, custom property ``blessed``."""

    TYPE_NAME = "ModelBlessing"


class InferenceResult(Artifact):
    """Predictions of a model on examples."""

    TYPE_NAME = "InferenceResult"


class InfraBlessing(Artifact):
    """Whether a model loaded and served in the serving runtime."""

    TYPE_NAME = "InfraBlessing"


class PushedModel(Artifact):
    """A model pushed to a serving destination."""

    TYPE_NAME = "PushedModel"


class HyperParameters(Artifact):
    """Hyperparameters (a Tuner's best ones)."""

    TYPE_NAME = "HyperParameters"


# -- value artifacts ----------------------------------------------------------------------

#: The custom property TFX marks a value artifact holding ``None`` with.
IS_NULL_KEY = "__is_null__"
#: The file in a value artifact's folder that holds its value.
VALUE_FILE = "value"


class ValueArtifact(Artifact):
    """An artifact holding one small value (TFX's ``ValueArtifact``); subclasses encode and decode.

    The value lives in ``<uri>/value`` (or at ``uri`` itself when that is a
    file). :meth:`read` reads it, :meth:`write` writes it (the folder is made
    if missing); ``.value`` reads once and remembers, ``.value = v`` writes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_has_value", False)
        object.__setattr__(self, "_value", None)

    def encode(self, value) -> bytes:
        """The file's bytes for ``value`` (a subclass's; a ``TypeError`` if it is not its type)."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode()")

    def decode(self, serialized_value: bytes):
        """The value the file's bytes hold."""
        raise NotImplementedError(f"{type(self).__name__} must implement decode()")

    def value_path(self) -> str:
        """The file that holds the value."""
        if os.path.isfile(self.uri):
            return self.uri
        return os.path.join(self.uri, VALUE_FILE)

    def read(self):
        """Reads the value from its file (else its recorded ``value`` property)."""
        if not self._has_value:
            path = self.value_path()
            if self.get_int_custom_property(IS_NULL_KEY):
                value = None
            elif os.path.exists(path):
                with open(path, "rb") as f:
                    value = self.decode(f.read())
            elif "value" in self.properties:
                value = self.properties["value"]
            else:
                raise FileNotFoundError(
                    f"{self.type_name} artifact at {self.uri}: no value file {path} "
                    "(the value was never written)"
                )
            object.__setattr__(self, "_value", value)
            object.__setattr__(self, "_has_value", True)
        return self._value

    def write(self, value) -> None:
        """Writes ``value`` to the file (``None``: an empty file and ``__is_null__`` = 1)."""
        data = b"" if value is None else self.encode(value)
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.set_int_custom_property(IS_NULL_KEY, int(value is None))
        path = self.value_path()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_has_value", True)

    @property
    def value(self):
        """The value (read from the file the first time)."""
        return self.read()

    @value.setter
    def value(self, value) -> None:
        self.write(value)


def _expect(value, kinds, what: str):
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise TypeError(f"{what} holds {_names(kinds)}, not {value!r} ({type(value).__name__})")


def _as_tuple(kinds) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kinds))


class String(ValueArtifact):
    """A string, UTF-8 in the file."""

    TYPE_NAME = "String"

    def encode(self, value: str) -> bytes:
        _expect(value, str, "String")
        return value.encode("utf-8")

    def decode(self, serialized_value: bytes) -> str:
        return serialized_value.decode("utf-8")


class Integer(ValueArtifact):
    """An int, as decimal text."""

    TYPE_NAME = "Integer"

    def encode(self, value: int) -> bytes:
        _expect(value, int, "Integer")
        return str(int(value)).encode("utf-8")

    def decode(self, serialized_value: bytes) -> int:
        return int(serialized_value)


class Float(ValueArtifact):
    """A float, as Python writes it (``Infinity``, ``-Infinity``, ``NaN`` spelled so)."""

    TYPE_NAME = "Float"

    def encode(self, value: float) -> bytes:
        _expect(value, (float, int), "Float")
        value = float(value)
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "Infinity" if value > 0 else "-Infinity"
        else:
            text = repr(value)
        return text.encode("utf-8")

    def decode(self, serialized_value: bytes) -> float:
        return float(serialized_value)


class Boolean(ValueArtifact):
    """A bool, as ``1`` or ``0``."""

    TYPE_NAME = "Boolean"

    def encode(self, value: bool) -> bytes:
        _expect(value, bool, "Boolean")
        return b"1" if value else b"0"

    def decode(self, serialized_value: bytes) -> bool:
        return int(serialized_value) != 0


class JsonValue(ValueArtifact):
    """A JSON value (dict, list, number, string, bool or None), as JSON text."""

    TYPE_NAME = "JsonValue"

    def encode(self, value) -> bytes:
        try:
            return json.dumps(value, sort_keys=True).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise TypeError(f"JsonValue holds a JSON value, not {value!r}: {e}") from None

    def decode(self, serialized_value: bytes):
        return json.loads(serialized_value)


class Bytes(ValueArtifact):
    """Raw bytes."""

    TYPE_NAME = "Bytes"

    def encode(self, value: bytes) -> bytes:
        _expect(value, bytes, "Bytes")
        return value

    def decode(self, serialized_value: bytes) -> bytes:
        return serialized_value

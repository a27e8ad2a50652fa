"""Artifact types and the artifacts a pipeline's components pass to each other.

An artifact is a directory (its ``uri``) with a type, recorded in ML Metadata.
The types carry TFX's names so lineage reads the same way in both systems.

Two ways to make one, both used everywhere:

- ``Artifact("Examples", uri)``: the base class with a type name;
- a class per type, as in TFX: subclass :class:`Artifact` with a ``TYPE_NAME``
  and typed ``PROPERTIES``; defining the class registers the type, so
  :func:`check_type`, channels, components and ML Metadata accept its name and
  record its properties typed. The standard ones (``Examples``, ``Model``,
  ``String``, ...) are in :mod:`conveyor.dsl.artifact_types`.

Example::

    from conveyor.dsl.artifacts import Artifact, Property, PropertyType

    class MyStats(Artifact):
        TYPE_NAME = "MyStats"
        PROPERTIES = {"span": Property(type=PropertyType.INT)}

    stats = MyStats(uri="/tmp/stats")
    stats.span = 3                              # properties["span"] == 3
    stats.set_string_custom_property("note", "hand-made")

Properties and custom properties are one dict here (``properties``); in ML
Metadata the declared ``PROPERTIES`` are the type's typed properties and the
rest its artifacts' custom properties.
"""

from __future__ import annotations

import enum
import json
from typing import Any, ClassVar

__all__ = [
    "ARTIFACT_TYPES",
    "Artifact",
    "Property",
    "PropertyType",
    "artifact_class",
    "check_type",
    "make_artifact",
    "registered_types",
]

#: The standard artifact types (TFX's names); classes in :mod:`conveyor.dsl.artifact_types`.
ARTIFACT_TYPES = (
    "Examples",
    "ExampleStatistics",
    "Schema",
    "ExampleAnomalies",
    "TransformGraph",
    "TransformCache",
    "Model",
    "ModelRun",
    "ModelEvaluation",
    "ModelBlessing",
    "InferenceResult",
    "InfraBlessing",
    "PushedModel",
    "HyperParameters",
    "String",
    "Integer",
    "Float",
    "Boolean",
    "JsonValue",
    "Bytes",
)


class PropertyType(enum.Enum):
    """The type of an artifact property (TFX's): INT, FLOAT, STRING or JSON_VALUE."""

    INT = 1
    FLOAT = 2
    STRING = 3
    JSON_VALUE = 4


class Property:
    """A declared, typed property of an artifact type (TFX's ``Property(type=...)``).

    Args:
      type: a :class:`PropertyType`.
    """

    def __init__(self, type: PropertyType):
        if not isinstance(type, PropertyType):
            raise ValueError(
                f"Property(type=...) takes a PropertyType ({', '.join(t.name for t in PropertyType)}), "
                f"not {type!r}"
            )
        self.type = type

    def default(self):
        """The value of an unset property, as TFX reads it: 0, 0.0, '' or None."""
        return {
            PropertyType.INT: 0,
            PropertyType.FLOAT: 0.0,
            PropertyType.STRING: "",
        }.get(self.type)

    def check(self, name: str, value):
        """``value`` as this property stores it; a ``TypeError`` naming ``name`` if it does not fit."""
        t = self.type
        if t is PropertyType.INT and isinstance(value, int):
            return int(value)
        if (
            t is PropertyType.FLOAT
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            return float(value)
        if t is PropertyType.STRING and isinstance(value, (str, bytes)):
            return value.decode() if isinstance(value, bytes) else value
        if t is PropertyType.JSON_VALUE:
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                pass
            else:
                return value
        raise TypeError(
            f"property {name!r} is {t.name}: {value!r} ({type(value).__name__}) does not fit"
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, Property) and other.type is self.type

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Property(type=PropertyType.{self.type.name})"


#: ``{type name: class}`` of every artifact class defined (standard and custom).
_REGISTRY: dict[str, type] = {}
#: Attribute names of the instances themselves: a property may not take one.
_OWN_FIELDS = ("type_name", "uri", "id", "properties")


def _register(cls) -> None:
    """Registers ``cls`` if it declares its own ``TYPE_NAME``; checks its ``PROPERTIES``."""
    name = cls.__dict__.get("TYPE_NAME")
    if name is None:
        return
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__qualname__}.TYPE_NAME must be a non-empty string, not {name!r}")
    props = cls.__dict__.get("PROPERTIES")
    if props is not None:
        if not isinstance(props, dict):
            raise ValueError(f"{cls.__qualname__}.PROPERTIES must be a dict of name: Property")
        for key, prop in props.items():
            if not isinstance(key, str) or not isinstance(prop, Property):
                raise ValueError(
                    f"{cls.__qualname__}.PROPERTIES[{key!r}] must be a Property(type=PropertyType...), "
                    f"not {prop!r}"
                )
            if key in _OWN_FIELDS or key.startswith("_") or hasattr(Artifact, key):
                raise ValueError(
                    f"{cls.__qualname__}.PROPERTIES: {key!r} is an attribute of every artifact; "
                    "name the property otherwise"
                )
    _REGISTRY[name] = cls


class _ArtifactMeta(type):
    """Registers each artifact class by its ``TYPE_NAME`` when it is defined, and again when
    ``TYPE_NAME`` or ``PROPERTIES`` is set on it (a class rebuilt by a pickle gets its
    attributes after it is made)."""

    def __init__(cls, name, bases, namespace, **kwargs):
        super().__init__(name, bases, namespace, **kwargs)
        _register(cls)

    def __setattr__(cls, name, value):
        super().__setattr__(name, value)
        if name in ("TYPE_NAME", "PROPERTIES"):
            _register(cls)


def _standard_loaded() -> None:
    import conveyor.dsl.artifact_types  # noqa: F401  (defines and registers the standard classes)


def registered_types() -> tuple[str, ...]:
    """Every artifact type name known here: the standard ones and the custom classes defined."""
    _standard_loaded()
    return tuple(_REGISTRY)


def artifact_class(type_name: str):
    """The class registered for ``type_name`` (None if none is)."""
    if type_name not in _REGISTRY:
        _standard_loaded()
    return _REGISTRY.get(type_name)


def check_type(name: str) -> str:
    """Returns ``name`` if it is a known artifact type (standard, or a class defined); raises otherwise."""
    if not isinstance(name, str) or artifact_class(name) is None:
        raise ValueError(
            f"unknown artifact type {name!r}; known: {', '.join(registered_types())} "
            "(a custom type is a subclass of conveyor.dsl.artifacts.Artifact with a TYPE_NAME)"
        )
    return name


def declared_properties(type_name: str) -> dict[str, Property]:
    """The typed properties the type's class declares (``{}`` for none or an unknown type)."""
    cls = artifact_class(type_name)
    out: dict[str, Property] = {}
    for klass in reversed(cls.__mro__ if cls is not None else ()):
        out.update(klass.__dict__.get("PROPERTIES") or {})
    return out


def make_artifact(type_name: str, uri: str, id: int | None = None, properties: dict | None = None):
    """An artifact of the type's registered class (``Examples`` for ``"Examples"``), else of
    :class:`Artifact` itself."""
    cls = artifact_class(type_name)
    if cls is None or cls.__dict__.get("TYPE_NAME") != type_name:
        return Artifact(type_name, uri, id, properties)
    return cls(uri=uri, id=id, properties=properties)


class Artifact(metaclass=_ArtifactMeta):
    """One artifact: its type, where it lives, and its ML Metadata id once recorded.

    ``Artifact("Model", uri)`` makes one of any type; a subclass with a
    ``TYPE_NAME`` (TFX's way, see the module's example) is that type, made as
    ``MyType()`` or ``MyType(uri=...)``. A declared property reads as an
    attribute (``examples.span``; unset: 0, 0.0, '' or None by its type) and
    is type-checked when set.

    Attributes:
      type_name: the type's name (a registered one: :func:`check_type`).
      uri: the artifact's directory.
      id: the ML Metadata artifact id (None until recorded).
      properties: small values recorded with it (split names, row counts...),
        declared properties and custom ones alike.
    """

    TYPE_NAME: ClassVar[str | None] = None
    PROPERTIES: ClassVar[dict[str, Property] | None] = None

    def __init__(
        self,
        type_name: str | None = None,
        uri: str = "",
        id: int | None = None,
        properties: dict | None = None,
    ):
        own = type(self).TYPE_NAME
        if own is not None:
            if type_name is not None and type_name != own:
                raise TypeError(
                    f"{type(self).__name__} is the type {own!r}: make it as "
                    f"{type(self).__name__}(uri=...), or Artifact({type_name!r}, uri) for another type"
                )
            type_name = own
        elif type_name is None:
            raise TypeError("Artifact needs its type: Artifact('Model', uri), or a subclass")
        object.__setattr__(self, "type_name", type_name)
        object.__setattr__(self, "uri", uri)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "properties", dict(properties or {}))

    # -- declared properties as attributes --------------------------------------------

    def _declared(self) -> dict[str, Property]:
        return declared_properties(self.__dict__.get("type_name", ""))

    def __getattr__(self, name: str):
        # Only called when normal lookup fails; the fields themselves are never looked up here.
        if name.startswith("_") or name in _OWN_FIELDS:
            raise AttributeError(name)
        prop = self._declared().get(name)
        if prop is None:
            raise AttributeError(
                f"{type(self).__name__} ({self.__dict__.get('type_name')}) has no property {name!r}"
            )
        return self.properties.get(name, prop.default())

    def __setattr__(self, name: str, value) -> None:
        prop = None if name in _OWN_FIELDS else self._declared().get(name)
        if prop is None:
            object.__setattr__(self, name, value)
        else:
            self.properties[name] = prop.check(name, value)

    @property
    def type(self):
        """The artifact's class (TFX's ``artifact.type``)."""
        return artifact_class(self.type_name) or type(self)

    # -- TFX's custom property accessors (one dict with the declared properties) ----

    def set_string_custom_property(self, key: str, value: str) -> None:
        """Sets a custom property of string type."""
        self.properties[key] = str(value)

    def set_int_custom_property(self, key: str, value: int) -> None:
        """Sets a custom property of int type."""
        self.properties[key] = int(value)

    def set_float_custom_property(self, key: str, value: float) -> None:
        """Sets a custom property of float type."""
        self.properties[key] = float(value)

    def set_json_value_custom_property(self, key: str, value) -> None:
        """Sets a custom property holding a JSON value (a dict, list, number, string or None)."""
        self.properties[key] = Property(PropertyType.JSON_VALUE).check(key, value)

    def has_custom_property(self, key: str) -> bool:
        """Whether the property ``key`` is set."""
        return key in self.properties

    def get_string_custom_property(self, key: str) -> str:
        """A custom property as a string ('' if unset)."""
        value = self.properties.get(key)
        return "" if value is None else value if isinstance(value, str) else str(value)

    def get_int_custom_property(self, key: str) -> int:
        """A custom property as an int (0 if unset)."""
        value = self.properties.get(key)
        return 0 if value is None else int(float(value)) if isinstance(value, str) else int(value)

    def get_float_custom_property(self, key: str) -> float:
        """A custom property as a float (0.0 if unset)."""
        value = self.properties.get(key)
        return 0.0 if value is None else float(value)

    def get_json_value_custom_property(self, key: str):
        """A custom property's JSON value (text that parses as JSON is parsed; None if unset)."""
        value = self.properties.get(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_custom_property(self, key: str) -> Any:
        """A custom property as recorded (None if unset)."""
        return self.properties.get(key)

    def copy_from(self, other: Artifact) -> None:
        """Takes ``other``'s uri and properties (of the same type)."""
        if other.type_name != self.type_name:
            raise TypeError(f"cannot copy a {other.type_name} artifact into a {self.type_name}")
        self.uri = other.uri
        self.properties = dict(other.properties)

    # -- the rest ------------------------------------------------------------------------

    def split_uri(self, split: str) -> str:
        """``<uri>/Split-<split>``, TFX's folder for one split."""
        return f"{self.uri}/Split-{split}"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        return (self.type_name, self.uri, self.id, self.properties) == (
            other.type_name,
            other.uri,
            other.id,
            other.properties,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = (
            f"{type(self).__name__}("
            if type(self).TYPE_NAME
            else f"Artifact(type_name={self.type_name!r}, "
        )
        return f"{head}uri={self.uri!r}, id={self.id!r}, properties={self.properties!r})"

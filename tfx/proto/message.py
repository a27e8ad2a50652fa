"""A small message base with protobuf's manners, for TFX's config messages.

A :class:`Message` subclass declares its fields as class attributes, in the
order of the ``.proto`` file::

    class StaticRange(Message):
        start_span_number = Int32()
        end_span_number = Int32()

    class RangeConfig(Message):
        static_range = MessageField(StaticRange, oneof="range")
        rolling_range = MessageField(RollingRange, oneof="range")

What it does as protobuf's generated classes do:

- a keyword constructor; an unknown field is a ``TypeError`` naming it and the
  fields there are; a value of the wrong type is a ``TypeError`` naming the field;
- message fields take a message or a dict (``RangeConfig(static_range={...})``);
  repeated fields a list of either, and have ``add(**fields)``;
- reading an unset field gives its default (``0``, ``""``, ``False``, an empty
  message, which becomes set when a field of it is set);
- ``oneof`` groups (setting one member clears the others; ``WhichOneof``),
  ``HasField``, ``ClearField``, ``CopyFrom``, ``MergeFrom``, equality;
- ``to_dict()`` / ``to_json()`` and ``from_dict()`` / ``from_json()`` (snake_case
  or camelCase keys on the way in); :mod:`conveyor.tfx.proto.json_format` has
  protobuf's ``Parse``, ``ParseDict``, ``MessageToDict`` and ``MessageToJson``.

A message is also a read-only ``Mapping`` of its set fields (nested messages
are Mappings, repeated fields lists), so Conveyor's nodes, which take their
configs as dicts, take these messages as they are.
"""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "Bool",
    "Bytes",
    "Double",
    "EnumField",
    "Float",
    "Int32",
    "Int64",
    "MapField",
    "Message",
    "MessageField",
    "ProtoEnum",
    "Repeated",
    "String",
    "StructField",
    "UInt32",
    "camel_to_snake",
    "snake_to_camel",
]


def camel_to_snake(name: str) -> str:
    """``splitConfig`` -> ``split_config`` (protobuf's JSON names back to field names)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def snake_to_camel(name: str) -> str:
    """``split_config`` -> ``splitConfig`` (protobuf's JSON name of a field)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class ProtoEnum(enum.IntEnum):
    """A protobuf enum: members are ints; ``Name(number)`` and ``Value(name)`` as protobuf has them."""

    @classmethod
    def Name(cls, number: int) -> str:  # noqa: N802 - protobuf's name
        """The member name of ``number``; ValueError if none."""
        try:
            return cls(number).name
        except ValueError:
            raise ValueError(f"enum {cls.__name__} has no value {number!r}") from None

    @classmethod
    def Value(cls, name: str) -> int:  # noqa: N802 - protobuf's name
        """The number of the member ``name``; ValueError if none."""
        try:
            return int(cls[name])
        except KeyError:
            raise ValueError(
                f"enum {cls.__name__} has no member {name!r}; members: {', '.join(cls.__members__)}"
            ) from None

    @classmethod
    def keys(cls) -> list[str]:
        """The member names (protobuf's ``EnumTypeWrapper.keys``)."""
        return list(cls.__members__)

    @classmethod
    def values(cls) -> list[int]:
        """The member numbers (protobuf's ``EnumTypeWrapper.values``)."""
        return [int(m) for m in cls]


# -- fields ---------------------------------------------------------------------------


class Field:
    """A declared field: its name (set by the message class), kind and ``oneof`` group."""

    kind = "value"

    def __init__(self, oneof: str | None = None):
        self.oneof = oneof
        self.name = ""
        self.owner = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name
        self.owner = owner.__qualname__

    @property
    def where(self) -> str:
        """``Message.field``, for messages."""
        return f"{self.owner}.{self.name}"

    def default(self):
        """The value an unset field reads as."""
        raise NotImplementedError

    def check(self, value):
        """The value to store for ``value``; TypeError (naming the field) if it does not fit."""
        raise NotImplementedError

    def is_default(self, value) -> bool:
        """Whether ``value`` is the field's default (an empty list or map is not printed)."""
        return value == self.default()

    def plain(self, value, camel: bool):
        """``value`` as JSON-ready data."""
        return value

    # The descriptor protocol: msg.field reads and writes through the message's values.
    def __get__(self, message, owner=None):
        if message is None:
            return self
        return message._get(self)

    def __set__(self, message, value) -> None:
        message._set(self, value)

    def _wrong(self, value, expected: str) -> TypeError:
        return TypeError(f"{self.where}: expects {expected}, not {type(value).__name__} {value!r}")


class _Scalar(Field):
    python_types: tuple = ()
    expected = ""
    zero: Any = None

    def default(self):
        return self.zero

    def check(self, value):
        if isinstance(value, bool) and bool not in self.python_types:
            raise self._wrong(value, self.expected)
        if not isinstance(value, self.python_types):
            raise self._wrong(value, self.expected)
        return value


class String(_Scalar):
    """A ``string`` field (text; UTF-8 bytes are decoded)."""

    python_types = (str,)
    expected = "a str"
    zero = ""

    def check(self, value):
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise self._wrong(value, "a str (or UTF-8 bytes)") from None
        return super().check(value)


class Bytes(_Scalar):
    """A ``bytes`` field."""

    python_types = (bytes,)
    expected = "bytes"
    zero = b""

    def plain(self, value, camel):
        import base64

        return base64.b64encode(value).decode("ascii")


class Bool(_Scalar):
    """A ``bool`` field."""

    python_types = (bool,)
    expected = "a bool"
    zero = False


class _Integer(_Scalar):
    python_types = (int,)
    zero = 0
    low, high = -(2**31), 2**31 - 1
    type_name = "int32"

    @property
    def expected(self):
        return f"an int ({self.type_name})"

    def check(self, value):
        value = super().check(value)
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.where}: {value} is out of range for {self.type_name}")
        return int(value)


class Int32(_Integer):
    """An ``int32`` field."""


class Int64(_Integer):
    """An ``int64`` field (text in protobuf's JSON, as protobuf writes it)."""

    low, high = -(2**63), 2**63 - 1
    type_name = "int64"

    def plain(self, value, camel):
        return str(value)


class UInt32(_Integer):
    """A ``uint32`` field."""

    low, high = 0, 2**32 - 1
    type_name = "uint32"


class Float(_Scalar):
    """A ``float`` field (an int is taken too)."""

    python_types = (int, float)
    expected = "a number"
    zero = 0.0

    def check(self, value):
        return float(super().check(value))


class Double(Float):
    """A ``double`` field."""


class EnumField(Field):
    """A field of a :class:`ProtoEnum`: takes a member, its number or its name."""

    def __init__(self, enum_type: type[ProtoEnum], oneof: str | None = None):
        super().__init__(oneof)
        self.enum_type = enum_type

    def default(self):
        members = list(self.enum_type)
        return next((m for m in members if int(m) == 0), members[0])

    def check(self, value):
        e = self.enum_type
        if isinstance(value, str) and value in e.__members__:
            return e[value]
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return e(value)
            except ValueError:
                pass
        raise TypeError(
            f"{self.where}: expects a {e.__name__} ({', '.join(e.__members__)}), not {value!r}"
        )

    def plain(self, value, camel):
        return value.name


class StructField(Field):
    """A ``google.protobuf.Any`` / ``Struct`` field: any JSON-ready value, kept as it is."""

    def default(self):
        return None

    def check(self, value):
        return value

    def is_default(self, value) -> bool:
        return value is None


class MessageField(Field):
    """A field holding a message of class ``message_type``; takes the message or a dict."""

    kind = "message"

    def __init__(self, message_type: type[Message], oneof: str | None = None):
        super().__init__(oneof)
        self.message_type = message_type

    def default(self):
        return self.message_type()

    def check(self, value):
        t = self.message_type
        if isinstance(value, t):
            return value
        if isinstance(value, Mapping):
            return t.from_dict(value, where=self.where)
        raise self._wrong(value, f"a {t.__qualname__} (or a dict of its fields)")

    def is_default(self, value) -> bool:
        return False  # a set message is there, empty or not

    def plain(self, value, camel):
        return value._plain(camel, defaults=False)


class Repeated(Field):
    """A ``repeated`` field of ``element`` (a scalar field or a message class)."""

    kind = "repeated"

    def __init__(self, element):
        super().__init__(None)
        self.element = MessageField(element) if isinstance(element, type) else element

    def __set_name__(self, owner, name):
        super().__set_name__(owner, name)
        self.element.__set_name__(owner, name)

    def default(self):
        return []

    def check(self, value):
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise self._wrong(value, "a list")
        return [self.element.check(v) for v in value]

    def is_default(self, value) -> bool:
        return len(value) == 0

    def plain(self, value, camel):
        return [self.element.plain(v, camel) for v in value]


class MapField(Field):
    """A ``map<string, V>`` field: a dict whose values ``value`` checks."""

    kind = "map"

    def __init__(self, value: Field):
        super().__init__(None)
        self.value = value

    def __set_name__(self, owner, name):
        super().__set_name__(owner, name)
        self.value.__set_name__(owner, name)

    def default(self):
        return {}

    def check(self, value):
        if not isinstance(value, Mapping):
            raise self._wrong(value, "a dict")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{self.where}: keys are str, not {k!r}")
            out[k] = self.value.check(v)
        return out

    def is_default(self, value) -> bool:
        return len(value) == 0

    def plain(self, value, camel):
        return {k: self.value.plain(v, camel) for k, v in value.items()}


class RepeatedField(list):
    """A repeated field's value: a list that checks what goes in and has protobuf's ``add``."""

    def __init__(self, field: Repeated, owner: Message, items=()):
        super().__init__(items)
        self._field = field
        self._owner = owner

    def _checked(self, value):
        return self._field.element.check(value)

    def _touch(self) -> None:
        self._owner._touch()

    def add(self, **fields) -> Message:
        """Appends a new message made of ``fields`` and returns it (message elements only)."""
        element = self._field.element
        if not isinstance(element, MessageField):
            raise TypeError(f"{self._field.where}: add() is for message fields; use append()")
        item = element.message_type(**fields)
        super().append(item)
        self._touch()
        return item

    def append(self, value) -> None:
        """Appends ``value`` (checked; a dict for a message element)."""
        super().append(self._checked(value))
        self._touch()

    def extend(self, values) -> None:
        """Appends each of ``values`` (checked)."""
        super().extend(self._field.check(values))
        self._touch()

    def insert(self, index, value) -> None:
        """Inserts ``value`` (checked) before ``index``."""
        super().insert(index, self._checked(value))
        self._touch()

    def __setitem__(self, index, value) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, self._field.check(value))
        else:
            super().__setitem__(index, self._checked(value))
        self._touch()

    def __iadd__(self, values):
        self.extend(values)
        return self

    def __reduce__(self):
        return (list, (list(self),))


# -- messages -------------------------------------------------------------------------


class Message(Mapping):
    """The base of TFX's config messages (see the module docstring).

    Example::

        split = SplitConfig(splits=[SplitConfig.Split(name="train", hash_buckets=3),
                                    {"name": "eval", "hash_buckets": 1}])
        split.splits.add(name="test", hash_buckets=1)
        split.to_dict()  # {"splits": [{"name": "train", "hash_buckets": 3}, ...]}
    """

    _fields: dict[str, Field] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[name] = value
        cls._fields = fields

    def __init__(self, **fields):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_parent", None)
        for name, value in fields.items():
            if value is None:
                continue  # protobuf's constructors take None as "not set"
            setattr(self, name, value)

    # -- fields ---------------------------------------------------------------

    @classmethod
    def _field(cls, name: str) -> Field:
        try:
            return cls._fields[name]
        except KeyError:
            close = difflib.get_close_matches(name, cls._fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"{cls.__qualname__} has no field {name!r}{hint}; its fields: "
                f"{', '.join(cls._fields) or 'none'}"
            ) from None

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        self._field(name).__set__(self, value)

    def __getattr__(self, name: str):
        # Only called for names that are not fields or attributes: protobuf's AttributeError.
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            f"{type(self).__qualname__} has no field {name!r}; its fields: "
            f"{', '.join(self._fields) or 'none'}"
        )

    def _get(self, field: Field):
        values = self._values
        if field.name in values:
            return values[field.name]
        if field.kind == "message":
            child = field.message_type()
            object.__setattr__(child, "_parent", (self, field.name))
            return child  # set in this message once a field of it is set
        if field.kind == "repeated":
            values[field.name] = RepeatedField(field, self)
            return values[field.name]
        if field.kind == "map":
            values[field.name] = {}
            return values[field.name]
        return field.default()

    def _set(self, field: Field, value) -> None:
        if value is None:
            self.ClearField(field.name)
            return
        checked = field.check(value)
        if field.kind == "repeated":
            checked = RepeatedField(field, self, checked)
        if field.oneof:
            for other in self._fields.values():
                if other.oneof == field.oneof and other is not field:
                    self._values.pop(other.name, None)
        self._values[field.name] = checked
        self._touch()

    def _touch(self) -> None:
        """A field was set: a default sub-message read from a parent becomes set in it."""
        parent = self._parent
        if parent is not None:
            message, name = parent
            object.__setattr__(self, "_parent", None)
            message._set(message._fields[name], self)

    def _present(self) -> list[str]:
        """The names of the fields that are set (a scalar set to its zero included)."""
        out = []
        for name, field in self._fields.items():
            if name not in self._values:
                continue
            value = self._values[name]
            if field.kind in ("repeated", "map") and field.is_default(value):
                continue
            out.append(name)
        return out

    # -- protobuf's methods ---------------------------------------------------

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's name
        """Whether a message field, or a member of a ``oneof``, is set (ValueError for others)."""
        field = self._field(name)
        if field.kind != "message" and not field.oneof:
            raise ValueError(
                f"{type(self).__qualname__}.{name} is a {type(field).__name__} field: "
                "HasField is for message fields and oneof members"
            )
        return name in self._values

    def ClearField(self, name: str) -> None:  # noqa: N802 - protobuf's name
        """Unsets a field (a oneof's name clears its member)."""
        if name not in self._fields:
            group = [f.name for f in self._fields.values() if f.oneof == name]
            if not group:
                self._field(name)  # raises, naming the fields
            for member in group:
                self._values.pop(member, None)
            return
        self._values.pop(name, None)

    def WhichOneof(self, group: str) -> str | None:  # noqa: N802 - protobuf's name
        """The member of ``oneof group`` that is set, or None."""
        members = [f.name for f in self._fields.values() if f.oneof == group]
        if not members:
            raise ValueError(f"{type(self).__qualname__} has no oneof {group!r}")
        return next((m for m in members if m in self._values), None)

    def ListFields(self) -> list[tuple[Field, Any]]:  # noqa: N802 - protobuf's name
        """``(field, value)`` of each set field, in declaration order."""
        return [(self._fields[n], self._values[n]) for n in self._present()]

    def Clear(self) -> None:  # noqa: N802 - protobuf's name
        """Unsets every field."""
        self._values.clear()

    def CopyFrom(self, other: Message) -> None:  # noqa: N802 - protobuf's name
        """Makes this message a copy of ``other`` (a message of the same class)."""
        if type(other) is not type(self):
            raise TypeError(
                f"{type(self).__qualname__}.CopyFrom takes a {type(self).__qualname__}, "
                f"not {type(other).__qualname__}"
            )
        self.Clear()
        self.MergeFrom(other)

    def MergeFrom(self, other: Message) -> None:  # noqa: N802 - protobuf's name
        """Protobuf's merge: set scalars overwrite, messages merge, repeated fields append."""
        if type(other) is not type(self):
            raise TypeError(
                f"{type(self).__qualname__}.MergeFrom takes a {type(self).__qualname__}, "
                f"not {type(other).__qualname__}"
            )
        for name in other._present():
            field, value = self._fields[name], other._values[name]
            if field.kind == "message":
                mine = self._values.get(name)
                if mine is None:
                    setattr(self, name, value.copy())
                else:
                    mine.MergeFrom(value)
            elif field.kind == "repeated":
                items = [v.copy() if isinstance(v, Message) else v for v in value]
                getattr(self, name).extend(items)
            elif field.kind == "map":
                getattr(self, name).update(field.check(value))
                self._touch()
            else:
                setattr(self, name, value)

    def copy(self) -> Message:
        """A deep copy."""
        new = type(self)()
        new.MergeFrom(self)
        return new

    # -- dicts and JSON -------------------------------------------------------

    def _plain(self, camel: bool, defaults: bool) -> dict:
        out = {}
        for name, field in self._fields.items():
            key = snake_to_camel(name) if camel else name
            if name in self._values and name in self._present():
                out[key] = field.plain(self._values[name], camel)
            elif defaults and field.kind not in ("message",) and not field.oneof:
                value = field.default()
                if field.kind == "value" and value is None:
                    continue
                out[key] = field.plain(value, camel)
        return out

    def to_dict(self, camel_case: bool = False, including_defaults: bool = False) -> dict:
        """The set fields as plain data (snake_case names; ``camel_case`` for protobuf's JSON
        names); enums by name. ``including_defaults`` adds unset scalars and lists."""
        return self._plain(camel_case, including_defaults)

    def to_json(self, indent: int | None = 2, camel_case: bool = False) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(camel_case), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(
        cls, data: Mapping, where: str | None = None, ignore_unknown_fields: bool = False
    ) -> Message:
        """A message from a dict of its fields (snake_case or camelCase names, nested dicts).

        An unknown name is a TypeError naming it (left out with ``ignore_unknown_fields``).
        """
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{where or cls.__qualname__}: expects a dict of {cls.__qualname__}'s fields, "
                f"not {type(data).__name__}"
            )
        message = cls()
        for key, value in data.items():
            name = key if key in cls._fields else camel_to_snake(str(key))
            if name not in cls._fields:
                if ignore_unknown_fields:
                    continue
                cls._field(str(key))  # raises, naming it
            field = cls._fields[name]
            value = _from_plain(field, value, ignore_unknown_fields)
            setattr(message, name, value)
        return message

    @classmethod
    def from_json(cls, text: str | bytes, ignore_unknown_fields: bool = False) -> Message:
        """A message from JSON text (protobuf's JSON: camelCase or snake_case names)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{cls.__qualname__}: not JSON ({e.msg}): {text!r:.200}") from None
        return cls.from_dict(data, ignore_unknown_fields=ignore_unknown_fields)

    # -- the Mapping view, equality, printing ---------------------------------

    def __getitem__(self, name: str):
        if name not in self._present():
            raise KeyError(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())

    def __bool__(self) -> bool:
        return True  # a message is a value, as in protobuf: an empty one is not false

    def __contains__(self, name) -> bool:
        return name in self._present()

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._plain(False, True) == other._plain(False, True)

    def __ne__(self, other) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # mutable, as protobuf's messages

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.items())
        return f"{type(self).__qualname__}({inner})"

    def __str__(self) -> str:
        return _text(self, 0)

    def __getstate__(self):
        return self.to_dict()

    def __setstate__(self, state):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_parent", None)
        filled = type(self).from_dict(state)
        self._values.update(filled._values)
        for value in self._values.values():
            if isinstance(value, RepeatedField):
                value._owner = self

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()


def _from_plain(field: Field, value, ignore_unknown: bool):
    """A JSON value turned into what ``field`` takes (nested dicts, enum names, int64 text)."""
    if value is None:
        return None
    if field.kind == "message" and isinstance(value, Mapping):
        return field.message_type.from_dict(value, field.where, ignore_unknown)
    if field.kind == "repeated":
        if isinstance(value, (list, tuple)):
            return [_from_plain(field.element, v, ignore_unknown) for v in value]
        return value  # the field's check names what is wrong
    if isinstance(field, _Integer) and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if isinstance(field, Bytes) and isinstance(value, str):
        import base64

        return base64.b64decode(value)
    return value


def _text(message: Message, depth: int) -> str:
    """Protobuf's text format, near enough to read."""
    pad = "  " * depth
    lines = []
    for field, value in message.ListFields():
        items = value if field.kind == "repeated" else [value]
        element = field.element if field.kind == "repeated" else field
        for item in items:
            if isinstance(item, Message):
                lines.append(f"{pad}{field.name} {{\n{_text(item, depth + 1)}{pad}}}\n")
            elif isinstance(element, EnumField):
                lines.append(f"{pad}{field.name}: {item.name}\n")
            else:
                lines.append(f"{pad}{field.name}: {json.dumps(item, default=str)}\n")
    return "".join(lines)

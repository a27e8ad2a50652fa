"""Protobuf's ``json_format`` for Conveyor's TFX messages: ``Parse``, ``ParseDict``,
``MessageToDict``, ``MessageToJson``.

A message of :mod:`conveyor.tfx.proto` is Conveyor's own class, not a
protobuf one, so ``google.protobuf.json_format`` does not read it; these
functions take the same arguments and work on both (a real protobuf message
is handed to protobuf's own ``json_format``).

Example::

    from conveyor.tfx import proto
    from conveyor.tfx.proto import json_format

    output = json_format.Parse(
        '{"splitConfig": {"splits": [{"name": "train", "hashBuckets": 3}]}}', proto.Output())
    json_format.MessageToDict(output, preserving_proto_field_name=True)
    # {'split_config': {'splits': [{'name': 'train', 'hash_buckets': 3}]}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from conveyor.tfx.proto.message import Message

__all__ = ["MessageToDict", "MessageToJson", "Parse", "ParseDict", "ParseError"]


class ParseError(ValueError):
    """JSON that does not fit the message: an unknown field, a value of the wrong type."""


def _protobuf(message) -> bool:
    return hasattr(message, "DESCRIPTOR") and hasattr(message, "ListFields")


def ParseDict(js_dict: Mapping, message, ignore_unknown_fields: bool = False):  # noqa: N802
    """Merges ``js_dict`` (camelCase or snake_case names) into ``message``; returns it."""
    if _protobuf(message):
        from google.protobuf import json_format

        return json_format.ParseDict(js_dict, message, ignore_unknown_fields)
    if not isinstance(message, Message):
        raise TypeError(f"ParseDict: a message, not {type(message).__name__}")
    try:
        parsed = type(message).from_dict(js_dict, ignore_unknown_fields=ignore_unknown_fields)
    except (TypeError, ValueError) as e:
        raise ParseError(f"{type(message).__qualname__}: {e}") from None
    message.MergeFrom(parsed)
    return message


def Parse(text: str | bytes, message, ignore_unknown_fields: bool = False):  # noqa: N802
    """Merges the JSON ``text`` into ``message``; returns it."""
    if _protobuf(message):
        from google.protobuf import json_format

        return json_format.Parse(text, message, ignore_unknown_fields)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(f"{type(message).__qualname__}: not JSON ({e.msg})") from None
    return ParseDict(data, message, ignore_unknown_fields)


def MessageToDict(  # noqa: N802
    message,
    preserving_proto_field_name: bool = False,
    always_print_fields_with_no_presence: bool = False,
    including_default_value_fields: bool = False,
    **kwargs,
) -> dict:
    """The message as a dict: protobuf's camelCase names unless ``preserving_proto_field_name``;
    unset scalars and lists too with ``always_print_fields_with_no_presence`` (or its old name,
    ``including_default_value_fields``)."""
    if _protobuf(message):
        from google.protobuf import json_format

        return json_format.MessageToDict(
            message, preserving_proto_field_name=preserving_proto_field_name, **kwargs
        )
    if not isinstance(message, Message):
        raise TypeError(f"MessageToDict: a message, not {type(message).__name__}")
    return message.to_dict(
        camel_case=not preserving_proto_field_name,
        including_defaults=always_print_fields_with_no_presence or including_default_value_fields,
    )


def MessageToJson(  # noqa: N802
    message,
    preserving_proto_field_name: bool = False,
    indent: int | None = 2,
    sort_keys: bool = False,
    **kwargs,
) -> str:
    """:func:`MessageToDict` as JSON text."""
    if _protobuf(message):
        from google.protobuf import json_format

        return json_format.MessageToJson(
            message,
            preserving_proto_field_name=preserving_proto_field_name,
            indent=indent,
            sort_keys=sort_keys,
            **kwargs,
        )
    data = MessageToDict(message, preserving_proto_field_name, **kwargs)
    return json.dumps(data, indent=indent, sort_keys=sort_keys)

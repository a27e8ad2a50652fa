"""Pusher's ``push_destination``: TFX's ``PushDestination``, as a dict, JSON or protobuf message.

The one destination is TFX's ``filesystem``:
``{"filesystem": {"base_directory": DIR}}``, a local folder that TensorFlow
Serving watches (``--model_base_path``). ``versioning`` may be ``AUTO`` or
``UNIX_TIMESTAMP`` (the same here: the version is the epoch second of the
push); ``SEMANTIC_VERSION`` and object stores (``gs://``) are refused, naming
the field. The camelCase names of ``MessageToJson`` (``baseDirectory``) are
read too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from conveyor.dsl import PipelineDefinitionError

#: TFX's ``PushDestination.Filesystem.Versioning`` values taken, by name and number.
_VERSIONING = {"AUTO": 0, "UNIX_TIMESTAMP": 1}
_REFUSED_VERSIONING = {"SEMANTIC_VERSION": 2}

_EXAMPLE = "{'filesystem': {'base_directory': DIR}}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def as_dict(value) -> dict | None:
    """``push_destination`` as a plain dict with snake_case names (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise PipelineDefinitionError(
                f"push_destination: not JSON ({e.msg}): {value!r}; give {_EXAMPLE}"
            ) from None
    elif hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        from google.protobuf import json_format

        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    if not isinstance(value, Mapping):
        raise PipelineDefinitionError(
            f"push_destination: a dict, JSON text or protobuf message, not {type(value).__name__}"
        )
    return {
        _snake(str(k)): ({_snake(str(a)): b for a, b in v.items()} if isinstance(v, Mapping) else v)
        for k, v in value.items()
    }


def base_directory(value) -> str:
    """The folder a ``push_destination`` names, absolute; raises PipelineDefinitionError if bad."""
    spec = as_dict(value)
    if spec is None:
        raise PipelineDefinitionError(f"push_destination: required; give {_EXAMPLE}")
    for key in spec:
        if key != "filesystem":
            raise PipelineDefinitionError(
                f"push_destination.{key}: unknown field; the destination is filesystem ({_EXAMPLE})"
            )
    if "filesystem" not in spec:
        raise PipelineDefinitionError(f"push_destination: names no filesystem; give {_EXAMPLE}")
    fs = spec["filesystem"]
    if not isinstance(fs, Mapping):
        raise PipelineDefinitionError(
            f"push_destination.filesystem: a message (a dict), not {type(fs).__name__}"
        )
    for key in fs:
        if key not in ("base_directory", "versioning"):
            raise PipelineDefinitionError(
                f"push_destination.filesystem.{key}: unknown field; it takes base_directory, "
                "versioning"
            )
    versioning = fs.get("versioning", "AUTO")
    if not isinstance(versioning, (str, int)) or isinstance(versioning, bool):
        raise PipelineDefinitionError(
            f"push_destination.filesystem.versioning: AUTO or UNIX_TIMESTAMP, not {versioning!r}"
        )
    if versioning in _REFUSED_VERSIONING or versioning in _REFUSED_VERSIONING.values():
        raise PipelineDefinitionError(
            "push_destination.filesystem.versioning: SEMANTIC_VERSION is not supported; "
            "versions are the epoch second of the push (AUTO, UNIX_TIMESTAMP)"
        )
    if versioning not in _VERSIONING and versioning not in _VERSIONING.values():
        raise PipelineDefinitionError(
            f"push_destination.filesystem.versioning: AUTO or UNIX_TIMESTAMP, not {versioning!r}"
        )
    base = fs.get("base_directory")
    if not isinstance(base, str) or not base.strip():
        raise PipelineDefinitionError(
            f"push_destination.filesystem.base_directory: a folder, not {base!r}"
        )
    if "://" in base:
        raise PipelineDefinitionError(
            f"push_destination.filesystem.base_directory: {base}: a local folder; pushing to "
            "an object store is not supported (the push is a rename, which object stores lack)"
        )
    return os.path.abspath(os.path.expanduser(base))

"""InfraValidator's three specs, TFX's ``ServingSpec``, ``ValidationSpec`` and ``RequestSpec``.

Each is given as a dict (TFX's field names; the camelCase names of
``MessageToJson`` too), as JSON text, or as a protobuf message (TFX's
``infra_validator_pb2``, read with ``MessageToDict``). A field this
implementation does not know or does not support raises
:class:`~conveyor.dsl.PipelineDefinitionError` naming it
(``serving_spec.kubernetes: ...``).

The serving binary: TensorFlow Serving's ``tensorflow_model_server`` is not
part of Conveyor, so the one runtime is **a local TensorFlow process**: the
SavedModel is loaded with ``tf.saved_model.load`` and its signatures called,
in a fresh Python process of this environment that sees none of the
pipeline's code. ``{"local_tensorflow": {}}`` asks for it; TFX's
``{"tensorflow_serving": {"tags": [...]}, "local_docker": {}}`` is mapped to it
(the image tags and Docker settings are not used, which the summary notes).
``kubernetes`` is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from conveyor.dsl import PipelineDefinitionError

#: The serving runtime Conveyor has: TensorFlow in a fresh local process.
LOCAL_TENSORFLOW = "local_tensorflow"
#: TFX's serving binary, validated with the local runtime.
TENSORFLOW_SERVING = "tensorflow_serving"

#: TFX's defaults (``ValidationSpec``, ``RequestSpec``, ``TensorFlowServingRequestSpec``).
DEFAULT_MAX_LOADING_TIME_SECONDS = 300
DEFAULT_NUM_TRIES = 5
DEFAULT_TAGS = ("serve",)
DEFAULT_SIGNATURE_NAMES = ("serving_default",)
DEFAULT_SPLIT = "eval"
DEFAULT_NUM_EXAMPLES = 1

#: The two modes, TFX's names.
LOAD_ONLY = "LOAD_ONLY"
LOAD_AND_QUERY = "LOAD_AND_QUERY"

_LOCAL_DOCKER_FIELDS = ("client_timeout_seconds", "client_base_url", "client_api_version")


@dataclass(frozen=True)
class Serving:
    """What a ``serving_spec`` asks for: the runtime, the binary it names, and a note if mapped."""

    runtime: str
    requested: str
    model_name: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Validation:
    """A ``validation_spec``: the deadline of one try (loading and queries) and the tries."""

    max_loading_time_seconds: float = DEFAULT_MAX_LOADING_TIME_SECONDS
    num_tries: int = DEFAULT_NUM_TRIES


@dataclass(frozen=True)
class Request:
    """A ``request_spec``: the model's tags, the signatures to query, the examples to send."""

    tags: tuple[str, ...] = DEFAULT_TAGS
    signature_names: tuple[str, ...] = DEFAULT_SIGNATURE_NAMES
    split_name: str = DEFAULT_SPLIT
    num_examples: int = DEFAULT_NUM_EXAMPLES


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def as_dict(value, field: str) -> dict | None:
    """A spec as a plain dict with TFX's snake_case field names (None stays None).

    Takes a Mapping, JSON text or a protobuf message; raises PipelineDefinitionError otherwise.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise PipelineDefinitionError(f"{field}: not JSON ({e.msg}): {value!r}") from None
    elif hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        from google.protobuf import json_format

        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    if not isinstance(value, Mapping):
        raise PipelineDefinitionError(
            f"{field}: a dict, JSON text or protobuf message, not {type(value).__name__}"
        )
    return {_snake(str(k)): _plain(v, f"{field}.{k}") for k, v in value.items()}


def _plain(value, field: str):
    if isinstance(value, Mapping):
        return as_dict(value, field)
    if isinstance(value, (list, tuple)):
        return [_plain(v, field) for v in value]
    return value


def _no_other_fields(spec: Mapping, allowed, field: str, hint: str) -> None:
    for key in spec:
        if key not in allowed:
            raise PipelineDefinitionError(f"{field}.{key}: unknown field; {hint}")


def _sub(spec: Mapping, key: str, field: str) -> dict:
    value = spec[key]
    if value is None or value is True:  # {"local_tensorflow": None} reads as the empty message
        return {}
    if not isinstance(value, Mapping):
        raise PipelineDefinitionError(
            f"{field}.{key}: a message (a dict), not {type(value).__name__}"
        )
    return dict(value)


def _strings(value, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise PipelineDefinitionError(f"{field}: a list of names, not {value!r}")
    return tuple(value)


def _number(value, field: str, *, integer: bool, minimum: float) -> float | int:
    if isinstance(value, str) and re.fullmatch(r"\d+", value):  # int64 fields in MessageToDict
        value = int(value)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise PipelineDefinitionError(f"{field}: {kind} >= {minimum:g}, not {value!r}")
    return value


def serving_spec(value) -> Serving:
    """The runtime a ``serving_spec`` asks for (see the module docstring); raises if unsupported."""
    spec = as_dict(value, "serving_spec")
    if spec is None:
        raise PipelineDefinitionError(
            "serving_spec: required; give {'local_tensorflow': {}} (a local TensorFlow process)"
        )
    _no_other_fields(
        spec,
        (LOCAL_TENSORFLOW, TENSORFLOW_SERVING, "local_docker", "kubernetes", "model_name"),
        "serving_spec",
        "InfraValidator takes local_tensorflow, or TFX's tensorflow_serving (with local_docker), "
        "and model_name",
    )
    if "kubernetes" in spec:
        raise PipelineDefinitionError(
            "serving_spec.kubernetes: not supported: Conveyor validates in a local TensorFlow "
            "process (TensorFlow Serving is not part of it); give {'local_tensorflow': {}}"
        )
    binaries = [k for k in (LOCAL_TENSORFLOW, TENSORFLOW_SERVING) if k in spec]
    if not binaries:
        raise PipelineDefinitionError(
            "serving_spec: names no serving binary; give {'local_tensorflow': {}} "
            "(or TFX's tensorflow_serving, validated with the local TensorFlow runtime)"
        )
    if len(binaries) == 2:
        raise PipelineDefinitionError(
            "serving_spec: local_tensorflow and tensorflow_serving are two binaries; give one"
        )
    model_name = spec.get("model_name")
    if model_name is not None and not isinstance(model_name, str):
        raise PipelineDefinitionError(f"serving_spec.model_name: a string, not {model_name!r}")
    (binary,) = binaries
    body = _sub(spec, binary, "serving_spec")
    if binary == LOCAL_TENSORFLOW:
        _no_other_fields(
            body,
            (),
            "serving_spec.local_tensorflow",
            "it takes none: give {'local_tensorflow': {}}",
        )
        if "local_docker" in spec:
            raise PipelineDefinitionError(
                "serving_spec.local_docker: goes with tensorflow_serving; local_tensorflow "
                "runs no container"
            )
        return Serving(LOCAL_TENSORFLOW, LOCAL_TENSORFLOW, model_name)
    _no_other_fields(
        body, ("tags", "image_name"), "serving_spec.tensorflow_serving", "it takes tags, image_name"
    )
    tags = _strings(body["tags"], "serving_spec.tensorflow_serving.tags") if "tags" in body else ()
    image = body.get("image_name") or "tensorflow/serving"
    if "local_docker" in spec:
        docker = _sub(spec, "local_docker", "serving_spec")
        _no_other_fields(
            docker,
            _LOCAL_DOCKER_FIELDS,
            "serving_spec.local_docker",
            f"it takes {', '.join(_LOCAL_DOCKER_FIELDS)}",
        )
    images = ", ".join(f"{image}:{t}" for t in tags) or image
    note = (
        "serving_spec.tensorflow_serving: TensorFlow Serving's binary is not part of Conveyor; "
        f"validated with the local TensorFlow runtime of this environment instead of {images}"
        + (" in Docker" if "local_docker" in spec else "")
    )
    return Serving(LOCAL_TENSORFLOW, TENSORFLOW_SERVING, model_name, note)


def validation_spec(value) -> Validation:
    """A ``validation_spec`` (None: TFX's defaults, 300 s and 5 tries); a 0 field is the default."""
    spec = as_dict(value, "validation_spec") or {}
    _no_other_fields(
        spec,
        ("max_loading_time_seconds", "num_tries"),
        "validation_spec",
        "it takes max_loading_time_seconds, num_tries",
    )
    seconds = spec.get("max_loading_time_seconds") or DEFAULT_MAX_LOADING_TIME_SECONDS
    tries = spec.get("num_tries") or DEFAULT_NUM_TRIES
    return Validation(
        _number(seconds, "validation_spec.max_loading_time_seconds", integer=False, minimum=0.001),
        _number(tries, "validation_spec.num_tries", integer=True, minimum=1),
    )


def request_spec(value) -> Request:
    """A ``request_spec`` (None: TFX's defaults: tags serve, serving_default, 1 example of eval)."""
    spec = as_dict(value, "request_spec") or {}
    _no_other_fields(
        spec,
        (TENSORFLOW_SERVING, "split_name", "num_examples", "make_warmup"),
        "request_spec",
        "it takes tensorflow_serving, split_name, num_examples, make_warmup",
    )
    if spec.get("make_warmup"):
        raise PipelineDefinitionError(
            "request_spec.make_warmup: not supported: Conveyor's InfraValidator outputs no "
            "model with warmup requests"
        )
    tfs = _sub(spec, TENSORFLOW_SERVING, "request_spec") if TENSORFLOW_SERVING in spec else {}
    _no_other_fields(
        tfs,
        ("tags", "signature_names"),
        "request_spec.tensorflow_serving",
        "it takes tags, signature_names",
    )
    field = "request_spec.tensorflow_serving"
    tags = _strings(tfs["tags"], f"{field}.tags") if tfs.get("tags") else DEFAULT_TAGS
    names = (
        _strings(tfs["signature_names"], f"{field}.signature_names")
        if tfs.get("signature_names")
        else DEFAULT_SIGNATURE_NAMES
    )
    split = spec.get("split_name") or DEFAULT_SPLIT
    if not isinstance(split, str):
        raise PipelineDefinitionError(f"request_spec.split_name: a split name, not {split!r}")
    n = _number(
        spec.get("num_examples") or DEFAULT_NUM_EXAMPLES,
        "request_spec.num_examples",
        integer=True,
        minimum=1,
    )
    return Request(tags, names, split, n)

"""InfraValidator's messages (TFX's ``infra_validator.proto``): ``ServingSpec``,
``ValidationSpec``, ``RequestSpec`` and what they hold.

Example::

    from conveyor.tfx import proto

    serving_spec = proto.ServingSpec(
        tensorflow_serving=proto.TensorFlowServing(tags=["latest"]),
        local_docker=proto.LocalDockerConfig())
    request_spec = proto.RequestSpec(
        tensorflow_serving=proto.TensorFlowServingRequestSpec(signature_names=["serving_default"]),
        num_examples=2)
"""

from __future__ import annotations

from conveyor.tfx.proto.message import (
    Bool,
    Int32,
    MapField,
    Message,
    MessageField,
    Repeated,
    String,
)

__all__ = [
    "EnvVar",
    "EnvVarSource",
    "KubernetesConfig",
    "LocalDockerConfig",
    "PodOverrides",
    "RequestSpec",
    "SecretKeySelector",
    "ServingSpec",
    "TensorFlowServing",
    "TensorFlowServingRequestSpec",
    "ValidationSpec",
]


class TensorFlowServing(Message):
    """TensorFlow Serving as the serving binary: its image and tags or digests."""

    image_name = String()
    tags = Repeated(String())
    digests = Repeated(String())


class LocalDockerConfig(Message):
    """A model server in the local Docker."""

    client_base_url = String()
    client_api_version = String()
    client_timeout_seconds = Int32()


class SecretKeySelector(Message):
    """A key of a Kubernetes secret."""

    name = String()
    key = String()


class EnvVarSource(Message):
    """Where an environment variable's value comes from."""

    secret_key_ref = MessageField(SecretKeySelector)


class EnvVar(Message):
    """An environment variable of the serving container."""

    name = String()
    value = String()
    value_from = MessageField(EnvVarSource)


class PodOverrides(Message):
    """Annotations and environment of the serving pod."""

    annotations = MapField(String())
    env = Repeated(EnvVar)


class KubernetesConfig(Message):
    """A model server in a Kubernetes pod."""

    service_account_name = String()
    active_deadline_seconds = Int32()
    serving_pod_overrides = MessageField(PodOverrides)


class ServingSpec(Message):
    """What serves the model (``tensorflow_serving``) and where (``local_docker``, ``kubernetes``)."""

    tensorflow_serving = MessageField(TensorFlowServing, oneof="serving_binary")
    local_docker = MessageField(LocalDockerConfig, oneof="serving_platform")
    kubernetes = MessageField(KubernetesConfig, oneof="serving_platform")
    model_name = String()


class ValidationSpec(Message):
    """How long loading may take and how many tries a model gets."""

    max_loading_time_seconds = Int32()
    num_tries = Int32()


class TensorFlowServingRequestSpec(Message):
    """The SavedModel's tag set and the signatures to query."""

    tag_set = Repeated(String())
    signature_names = Repeated(String())


class RequestSpec(Message):
    """The requests to send the loaded model: made of ``num_examples`` of ``split_name``."""

    tensorflow_serving = MessageField(TensorFlowServingRequestSpec, oneof="kind")
    split_name = String()
    num_examples = Int32()
    make_warmup = Bool()

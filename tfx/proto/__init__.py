"""TFX's ``tfx.v1.proto`` messages, as Conveyor's own classes with the fields of TFX's ``.proto``
files (:mod:`~conveyor.tfx.proto.message` says what they do as protobuf's do).

Every Conveyor node that takes a config as a dict takes these messages as
they are (a message is a Mapping of its set fields), and so do the
components of :mod:`conveyor.tfx.components`.

Example::

    from conveyor.tfx import proto

    output_config = proto.Output(split_config=proto.SplitConfig(splits=[
        proto.SplitConfig.Split(name="train", hash_buckets=3),
        proto.SplitConfig.Split(name="eval", hash_buckets=1)]))
    output_config.to_json()
    proto.Output.from_json('{"splitConfig": {"splits": [{"name": "train", "hashBuckets": 3}]}}')

The modules are named as TFX's generated ones (``example_gen_pb2``,
``trainer_pb2``...), so ``from tfx.proto import trainer_pb2`` becomes
``from conveyor.tfx.proto import trainer_pb2``.
"""

from conveyor.tfx.proto import json_format
from conveyor.tfx.proto.bulk_inferrer_pb2 import (
    ClassifyOutput,
    DataSpec,
    ModelSpec,
    OutputColumnsSpec,
    OutputExampleSpec,
    PredictOutput,
    PredictOutputCol,
    RegressOutput,
)
from conveyor.tfx.proto.evaluator_pb2 import FeatureSlicingSpec, SingleSlicingSpec
from conveyor.tfx.proto.example_gen_pb2 import (
    CustomConfig,
    FileFormat,
    Input,
    Output,
    PayloadFormat,
    SplitConfig,
)
from conveyor.tfx.proto.infra_validator_pb2 import (
    EnvVar,
    EnvVarSource,
    KubernetesConfig,
    LocalDockerConfig,
    PodOverrides,
    RequestSpec,
    SecretKeySelector,
    ServingSpec,
    TensorFlowServing,
    TensorFlowServingRequestSpec,
    ValidationSpec,
)
from conveyor.tfx.proto.message import Message
from conveyor.tfx.proto.pusher_pb2 import PushDestination, Versioning
from conveyor.tfx.proto.range_config_pb2 import RangeConfig, RollingRange, StaticRange
from conveyor.tfx.proto.trainer_pb2 import EvalArgs, TrainArgs
from conveyor.tfx.proto.transform_pb2 import SplitsConfig
from conveyor.tfx.proto.tuner_pb2 import TuneArgs

#: TFX's top-level name for ``PushDestination.Filesystem``.
Filesystem = PushDestination.Filesystem

__all__ = [
    "ClassifyOutput",
    "CustomConfig",
    "DataSpec",
    "EnvVar",
    "EnvVarSource",
    "EvalArgs",
    "FeatureSlicingSpec",
    "FileFormat",
    "Filesystem",
    "Input",
    "KubernetesConfig",
    "LocalDockerConfig",
    "Message",
    "ModelSpec",
    "Output",
    "OutputColumnsSpec",
    "OutputExampleSpec",
    "PayloadFormat",
    "PodOverrides",
    "PredictOutput",
    "PredictOutputCol",
    "PushDestination",
    "RangeConfig",
    "RegressOutput",
    "RequestSpec",
    "RollingRange",
    "SecretKeySelector",
    "ServingSpec",
    "SingleSlicingSpec",
    "SplitConfig",
    "SplitsConfig",
    "StaticRange",
    "TensorFlowServing",
    "TensorFlowServingRequestSpec",
    "TrainArgs",
    "TuneArgs",
    "ValidationSpec",
    "Versioning",
    "json_format",
]

#: tfx.v1.proto names of components Conveyor does not have.
_NOT_HERE = {
    "ExampleDiffConfig": "ExampleDiff",
    "PairedExampleSkew": "ExampleDiff",
    "FeatureComparator": "DistributionValidator",
    "DistributionValidatorConfig": "DistributionValidator",
}


def __getattr__(name: str):
    if name in _NOT_HERE:
        raise AttributeError(
            f"conveyor.tfx.proto has no {name}: it configures TFX's {_NOT_HERE[name]} "
            "component, which Conveyor does not have"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

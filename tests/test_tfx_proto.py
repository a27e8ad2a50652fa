"""conveyor.tfx.proto: TFX's config messages, their constructor forms, JSON, and Conveyor's nodes."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from conveyor.tfx import proto
from conveyor.tfx.proto import json_format

#: tfx.v1.proto's names that Conveyor has (TFX 1.x; ExampleDiff/DistributionValidator left out).
V1_PROTO_NAMES = [
    "ModelSpec", "DataSpec", "OutputExampleSpec", "OutputColumnsSpec", "ClassifyOutput",
    "RegressOutput", "PredictOutput", "PredictOutputCol", "FeatureSlicingSpec",
    "SingleSlicingSpec", "CustomConfig", "Input", "Output", "SplitConfig", "PayloadFormat",
    "ServingSpec", "ValidationSpec", "TensorFlowServing", "LocalDockerConfig",
    "KubernetesConfig", "PodOverrides", "EnvVar", "EnvVarSource", "SecretKeySelector",
    "RequestSpec", "TensorFlowServingRequestSpec", "PushDestination", "Versioning",
    "Filesystem", "RangeConfig", "RollingRange", "StaticRange", "TrainArgs", "EvalArgs",
    "SplitsConfig", "TuneArgs",
]  # fmt: skip


@pytest.mark.parametrize("name", V1_PROTO_NAMES)
def test_tfx_v1_proto_names_exist(name):
    assert hasattr(proto, name)


def test_a_component_conveyor_lacks_has_no_config_and_says_why():
    with pytest.raises(AttributeError, match="ExampleDiff component, which Conveyor does not"):
        proto.ExampleDiffConfig  # noqa: B018


def _output():
    return proto.Output(
        split_config=proto.SplitConfig(
            splits=[
                proto.SplitConfig.Split(name="train", hash_buckets=3),
                proto.SplitConfig.Split(name="eval", hash_buckets=1),
            ]
        )
    )


def test_nested_messages_from_classes_dicts_and_add_are_equal():
    from_dicts = proto.Output(
        split_config={
            "splits": [{"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}]
        }
    )
    added = proto.Output()
    added.split_config.splits.add(name="train", hash_buckets=3)
    added.split_config.splits.append(proto.SplitConfig.Split(name="eval", hash_buckets=1))
    assert from_dicts == _output() == added
    assert added.HasField("split_config")
    assert added.split_config.splits[1].name == "eval"
    assert _output() != proto.Output()


def test_unknown_fields_and_wrong_types_are_type_errors_naming_them():
    with pytest.raises(
        TypeError, match=r"SplitConfig\.Split has no field 'hash_bucket'.*hash_buckets"
    ):
        proto.SplitConfig.Split(name="train", hash_bucket=3)
    with pytest.raises(TypeError, match=r"TrainArgs\.num_steps: expects an int"):
        proto.TrainArgs(num_steps="100")
    with pytest.raises(TypeError, match=r"Input\.splits: expects a list"):
        proto.Input(splits="train/*")
    with pytest.raises(TypeError, match=r"StaticRange has no field 'end_span'"):
        proto.RangeConfig(static_range={"start_span_number": 1, "end_span": 2})
    with pytest.raises(ValueError, match="out of range for uint32"):
        proto.SplitConfig.Split(hash_buckets=-1)
    with pytest.raises(AttributeError, match="TrainArgs has no field 'steps'"):
        proto.TrainArgs().steps  # noqa: B018


def test_unset_fields_read_as_defaults_and_a_sub_message_set_through_is_set():
    args = proto.TrainArgs()
    assert (args.num_steps, list(args.splits)) == (0, [])
    config = proto.RangeConfig()
    assert config.static_range.end_span_number == 0
    assert not config.HasField("static_range")  # reading does not set it
    config.static_range.start_span_number = 0
    assert config.HasField("static_range")
    assert config.to_dict() == {"static_range": {"start_span_number": 0}}  # a zero set is shown


def test_oneof_members_replace_each_other():
    config = proto.RangeConfig(
        static_range=proto.StaticRange(start_span_number=1, end_span_number=2)
    )
    assert config.WhichOneof("range") == "static_range"
    config.rolling_range = proto.RollingRange(num_spans=2)
    assert config.WhichOneof("range") == "rolling_range"
    assert not config.HasField("static_range")
    config.ClearField("range")
    assert config.WhichOneof("range") is None


def test_enums_by_member_number_or_name():
    a = proto.PushDestination.Filesystem(
        base_directory="/s", versioning=proto.Versioning.UNIX_TIMESTAMP
    )
    b = proto.PushDestination.Filesystem(base_directory="/s", versioning=1)
    c = proto.PushDestination.Filesystem(base_directory="/s", versioning="UNIX_TIMESTAMP")
    assert a == b == c
    assert a.to_dict()["versioning"] == "UNIX_TIMESTAMP"
    assert proto.PayloadFormat.Value("FORMAT_TF_EXAMPLE") == 6
    assert proto.PayloadFormat.Name(6) == "FORMAT_TF_EXAMPLE"
    with pytest.raises(TypeError, match="expects a Versioning"):
        proto.PushDestination.Filesystem(versioning=7)


def test_json_both_ways_with_protobuf_names():
    text = _output().to_json()
    assert json.loads(text) == {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}]
        }
    }
    assert proto.Output.from_json(text) == _output()
    camel = json_format.MessageToJson(_output())
    assert '"hashBuckets": 3' in camel and '"splitConfig"' in camel
    assert json_format.Parse(camel, proto.Output()) == _output()
    assert json_format.MessageToDict(_output(), preserving_proto_field_name=True) == json.loads(
        text
    )
    with pytest.raises(json_format.ParseError, match="no field 'hashBucket'"):
        json_format.Parse('{"splitConfig": {"splits": [{"hashBucket": 1}]}}', proto.Output())
    ignored = json_format.Parse('{"numSteps": 5, "other": 1}', proto.TrainArgs(), True)
    assert ignored.num_steps == 5
    defaults = json_format.MessageToDict(
        proto.TrainArgs(), always_print_fields_with_no_presence=True
    )
    assert defaults == {"splits": [], "numSteps": 0}


def test_json_format_hands_real_protobuf_messages_to_protobuf():
    import tensorflow_model_analysis as tfma

    config = json_format.Parse('{"modelSpecs": [{"labelKey": "species"}]}', tfma.EvalConfig())
    assert config.model_specs[0].label_key == "species"


def test_copies_pickles_merges_and_text():
    out = _output()
    assert pickle.loads(pickle.dumps(out)) == out
    deep = copy.deepcopy(out)
    deep.split_config.splits[0].hash_buckets = 9
    assert out.split_config.splits[0].hash_buckets == 3
    merged = proto.TrainArgs(splits=["train"])
    merged.MergeFrom(proto.TrainArgs(splits=["more"], num_steps=4))
    assert merged == proto.TrainArgs(splits=["train", "more"], num_steps=4)
    assert 'name: "train"' in str(out) and "hash_buckets: 3" in str(out)
    with pytest.raises(TypeError, match="CopyFrom takes a TrainArgs"):
        proto.TrainArgs().CopyFrom(proto.EvalArgs())


def test_conveyor_nodes_take_the_messages_where_they_take_dicts():
    from conveyor.components.example_gen.inputs import as_config
    from conveyor.components.infra_validator import config as infra
    from conveyor.components.pusher import destination

    assert as_config(_output(), "output_config") == _output().to_dict()
    serving = proto.ServingSpec(
        tensorflow_serving=proto.TensorFlowServing(tags=["latest"]),
        local_docker=proto.LocalDockerConfig(),
    )
    assert infra.serving_spec(serving).runtime == "local_tensorflow"
    request = proto.RequestSpec(
        tensorflow_serving=proto.TensorFlowServingRequestSpec(signature_names=["serving_default"]),
        split_name="eval",
        num_examples=2,
    )
    assert infra.request_spec(request).num_examples == 2
    push = proto.PushDestination(filesystem=proto.Filesystem(base_directory="/srv/models"))
    assert destination.base_directory(push) == "/srv/models"

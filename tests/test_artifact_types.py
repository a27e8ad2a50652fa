"""Class-based artifact types: TFX's standard classes, value artifacts, custom types in ML Metadata."""

import math
import pickle

import pytest

from conveyor.dsl import Channel, PipelineDefinitionError
from conveyor.dsl import artifact_types as sa
from conveyor.dsl.artifacts import (
    ARTIFACT_TYPES,
    Artifact,
    Property,
    PropertyType,
    artifact_class,
    check_type,
    make_artifact,
)
from conveyor.dsl.placeholders import ArtifactPlaceholder, ChannelWrappedPlaceholder
from conveyor.orchestration.metadata import Metadata


class Histogram(Artifact):
    """A custom type as a TFX user writes one."""

    TYPE_NAME = "test.Histogram"
    PROPERTIES = {
        "span": Property(type=PropertyType.INT),
        "scale": Property(type=PropertyType.FLOAT),
        "label": Property(type=PropertyType.STRING),
        "bins": Property(type=PropertyType.JSON_VALUE),
    }


TFX_STANDARD = {
    "Examples": {"span", "version", "split_names"},
    "ExampleStatistics": {"span", "split_names"},
    "ExampleAnomalies": {"span", "split_names"},
    "Schema": set(),
    "TransformGraph": set(),
    "TransformCache": set(),
    "Model": set(),
    "ModelRun": set(),
    "ModelEvaluation": set(),
    "ModelBlessing": set(),
    "InferenceResult": set(),
    "InfraBlessing": set(),
    "PushedModel": set(),
    "HyperParameters": set(),
}


def test_standard_classes_have_tfx_names_and_properties():
    for name, props in TFX_STANDARD.items():
        cls = getattr(sa, name)
        assert cls.TYPE_NAME == name and issubclass(cls, Artifact)
        assert set(cls.PROPERTIES or {}) == props, name
        assert artifact_class(name) is cls and name in ARTIFACT_TYPES
    for name in ("String", "Integer", "Float", "Boolean", "JsonValue", "Bytes"):
        cls = getattr(sa, name)
        assert issubclass(cls, sa.ValueArtifact) and cls.TYPE_NAME == name
        assert check_type(name) == name


def test_artifact_with_a_type_name_keeps_working_and_equals_the_class_form(tmp_path):
    plain = Artifact("Examples", "/data/e", 3, {"split_names": '["train"]'})
    typed = sa.Examples(uri="/data/e", id=3, properties={"split_names": '["train"]'})
    assert plain == typed and plain.type_name == typed.type_name == "Examples"
    assert plain.split_uri("train") == "/data/e/Split-train"
    # a declared property reads as an attribute on both forms; unset ones read TFX's defaults
    assert plain.split_names == typed.split_names == '["train"]'
    assert typed.splits == ["train"] and typed.span == 0 and typed.version == 0
    assert plain.type is sa.Examples
    assert "Artifact(type_name='Examples'" in repr(plain) and repr(typed).startswith("Examples(")
    with pytest.raises(TypeError, match="Artifact needs its type"):
        Artifact()
    with pytest.raises(TypeError, match=r"Examples is the type 'Examples'.*Examples\(uri=\.\.\.\)"):
        sa.Examples("/data/e")


def test_examples_splits_and_path():
    e = sa.Examples(uri="/d")
    e.splits = ["train", "eval"]
    assert e.split_names == '["train", "eval"]' and e.properties["split_names"] == e.split_names
    assert e.path(split="eval") == "/d/Split-eval"
    with pytest.raises(ValueError, match="split 'test' is not one of"):
        e.path(split="test")
    with pytest.raises(TypeError, match="split names are strings"):
        e.splits = ["train", 3]


def test_properties_are_typed_and_custom_properties_have_tfx_accessors():
    h = Histogram(uri="/h")
    h.span = 4
    h.scale = 2  # an int is a float here
    h.label = "x"
    h.bins = [1, 2, 3]
    assert h.properties == {"span": 4, "scale": 2.0, "label": "x", "bins": [1, 2, 3]}
    with pytest.raises(TypeError, match="property 'span' is INT: 'four'"):
        h.span = "four"
    with pytest.raises(TypeError, match="property 'label' is STRING"):
        h.label = 3
    with pytest.raises(AttributeError, match="has no property 'colour'"):
        h.colour  # noqa: B018
    h.set_string_custom_property("note", "hand-made")
    h.set_int_custom_property("rows", "12")
    h.set_float_custom_property("ratio", 1)
    h.set_json_value_custom_property("extra", {"a": [1]})
    assert h.get_string_custom_property("note") == "hand-made"
    assert h.get_int_custom_property("rows") == 12 and h.get_float_custom_property("ratio") == 1.0
    assert h.get_json_value_custom_property("extra") == {"a": [1]}
    assert h.get_custom_property("missing") is None and not h.has_custom_property("missing")
    assert h.get_string_custom_property("missing") == "" and h.get_int_custom_property("x") == 0
    assert h.get_float_custom_property("x") == 0.0
    copy = Histogram(uri="/other")
    copy.copy_from(h)
    assert copy == h
    with pytest.raises(TypeError, match="cannot copy a test.Histogram artifact into a Model"):
        sa.Model(uri="/m").copy_from(h)
    assert pickle.loads(pickle.dumps(h)) == h


def test_a_custom_class_registers_its_type():
    assert check_type("test.Histogram") == "test.Histogram"
    assert artifact_class("test.Histogram") is Histogram
    ch = Channel(type=Histogram)
    assert ch.type_name == "test.Histogram" and ch.type is Histogram
    assert isinstance(make_artifact("test.Histogram", "/u", 1, {"span": 2}), Histogram)
    assert type(make_artifact("NoSuchType", "/u")) is Artifact
    with pytest.raises(ValueError, match=r"unknown artifact type 'NoSuchType'.*test\.Histogram"):
        check_type("NoSuchType")
    with pytest.raises(PipelineDefinitionError, match="unknown artifact type 'Nope'"):
        Channel(type="Nope")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"TYPE_NAME": ""}, "TYPE_NAME must be a non-empty string"),
        ({"TYPE_NAME": "t.Bad", "PROPERTIES": ["span"]}, "PROPERTIES must be a dict"),
        (
            {"TYPE_NAME": "t.Bad", "PROPERTIES": {"span": int}},
            r"PROPERTIES\['span'\] must be a Property",
        ),
        (
            {"TYPE_NAME": "t.Bad", "PROPERTIES": {"uri": Property(PropertyType.STRING)}},
            "'uri' is an attribute of every artifact",
        ),
    ],
)
def test_bad_artifact_classes_say_what_is_wrong(body, message):
    with pytest.raises(ValueError, match=message):
        type("Bad", (Artifact,), body)
    assert artifact_class("t.Bad") is None


def test_property_needs_a_property_type():
    with pytest.raises(ValueError, match="Property\\(type=...\\) takes a PropertyType"):
        Property(type=int)


# -- value artifacts --------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, value, text",
    [
        (sa.String, "héllo", "héllo".encode()),
        (sa.String, "123", b"123"),
        (sa.Integer, -42, b"-42"),
        (sa.Float, 0.1, b"0.1"),
        (sa.Float, float("inf"), b"Infinity"),
        (sa.Float, float("-inf"), b"-Infinity"),
        (sa.Boolean, True, b"1"),
        (sa.Boolean, False, b"0"),
        (sa.JsonValue, {"b": [1, 2], "a": None}, b'{"a": null, "b": [1, 2]}'),
        (sa.Bytes, b"\x00\xff", b"\x00\xff"),
    ],
)
def test_value_artifacts_write_and_read_their_file(tmp_path, cls, value, text):
    art = cls(uri=str(tmp_path / "v"))
    art.value = value
    assert (tmp_path / "v" / "value").read_bytes() == text
    again = cls(uri=str(tmp_path / "v"))
    assert again.value == value and type(again.value) is type(value)
    # TFX writes the value at the uri itself: a uri that is a file is read so too
    assert cls(uri=str(tmp_path / "v" / "value")).read() == value


def test_value_artifact_edge_cases(tmp_path):
    nan = sa.Float(uri=str(tmp_path / "nan"))
    nan.value = float("nan")
    assert (tmp_path / "nan" / "value").read_text() == "NaN"
    assert math.isnan(sa.Float(uri=str(tmp_path / "nan")).value)
    none = sa.String(uri=str(tmp_path / "none"))
    none.value = None
    assert none.get_int_custom_property("__is_null__") == 1
    assert (tmp_path / "none" / "value").read_bytes() == b""
    assert sa.String(uri=none.uri, properties=none.properties).value is None
    with pytest.raises(TypeError, match="Integer holds int, not True"):
        sa.Integer(uri=str(tmp_path / "i")).value = True
    with pytest.raises(TypeError, match="String holds str, not 3"):
        sa.String(uri=str(tmp_path / "s")).value = 3
    with pytest.raises(TypeError, match="JsonValue holds a JSON value"):
        sa.JsonValue(uri=str(tmp_path / "j")).value = {1, 2}
    with pytest.raises(FileNotFoundError, match="the value was never written"):
        sa.Integer(uri=str(tmp_path / "missing")).read()
    # without its file, the recorded value property is the value
    assert sa.Integer(uri=str(tmp_path / "gone"), properties={"value": 7}).value == 7


def test_future_value_reads_a_value_artifact_as_its_class_decodes_it(tmp_path):
    art = sa.String(uri=str(tmp_path / "s"))
    art.value = "123"
    ch = Channel(type=sa.String)
    placeholder = ArtifactPlaceholder(ChannelWrappedPlaceholder(ch), 0).value
    pred = placeholder == "123"
    holds, seen = pred.evaluate(lambda channel: [sa.String(uri=art.uri)])
    assert holds and list(seen.values()) == ["123"]  # the text, not the number 123


# -- ML Metadata ------------------------------------------------------------------------


def test_metadata_records_a_custom_type_with_typed_properties(tmp_path):
    md = Metadata(str(tmp_path / "metadata.sqlite"))
    ex = md.start_execution("conveyor.Test", "typed", "r1", "Test", {}, "key")
    h = Histogram(uri=str(tmp_path / "h"))
    h.span, h.scale, h.label, h.bins = 2, 0.5, "lab", {"edges": [0, 1]}
    h.set_int_custom_property("rows", 10)
    md.finish_execution(ex, "COMPLETE", {"histogram": h})

    [mlmd_type] = md.store.get_artifact_types_by_id(
        [md.store.get_artifacts_by_id([h.id])[0].type_id]
    )
    from ml_metadata.proto import metadata_store_pb2 as pb

    assert mlmd_type.name == "test.Histogram"
    assert dict(mlmd_type.properties) == {
        "span": pb.INT,
        "scale": pb.DOUBLE,
        "label": pb.STRING,
        "bins": pb.STRUCT,
    }
    [raw] = md.store.get_artifacts_by_id([h.id])
    assert raw.properties["span"].int_value == 2
    assert raw.properties["scale"].double_value == 0.5
    assert raw.properties["label"].string_value == "lab"
    assert raw.properties["bins"].HasField("struct_value")
    assert raw.custom_properties["rows"].int_value == 10 and "rows" not in raw.properties

    read = md.outputs_of_execution(ex)["histogram"]
    assert isinstance(read, Histogram)
    assert (
        read.span == 2
        and read.bins == {"edges": [0, 1]}
        and read.get_int_custom_property("rows") == 10
    )
    assert [a.id for a in md.artifacts_of_type("test.Histogram")] == [h.id]
    # a store opened later knows the type (and a value that does not fit the type stays custom)
    md2 = Metadata(str(tmp_path / "metadata.sqlite"))
    ex2 = md2.start_execution("conveyor.Test", "typed", "r2", "Test", {}, "key2")
    odd = Histogram(uri=str(tmp_path / "h2"), properties={"span": "not an int"})
    md2.finish_execution(ex2, "COMPLETE", {"histogram": odd})
    [raw2] = md2.store.get_artifacts_by_id([odd.id])
    assert (
        "span" not in raw2.properties
        and raw2.custom_properties["span"].string_value == "not an int"
    )


def test_metadata_reads_standard_artifacts_as_their_classes(tmp_path):
    md = Metadata(str(tmp_path / "metadata.sqlite"))
    ex = md.start_execution("conveyor.Test", "std", "r1", "Test", {}, "key")
    out = {
        "examples": Artifact("Examples", str(tmp_path / "e"), properties={"span": 1}),
        "count": sa.Integer(uri=str(tmp_path / "c"), properties={"value": 5}),
    }
    md.finish_execution(ex, "COMPLETE", out)
    read = md.outputs_of_execution(ex)
    assert isinstance(read["examples"], sa.Examples) and read["examples"].span == 1
    assert isinstance(read["count"], sa.Integer) and read["count"].value == 5

"""Python function components (``@component``): definition rules, runs in-process and in child
processes, value outputs in Cond and as parameters downstream, Beam, caching and ML Metadata."""

import importlib
import json
import os
import sys

import pytest
from orchestration_components import Produce

from conveyor.dsl import Cond, Pipeline, PipelineDefinitionError, RuntimeParameter
from conveyor.dsl.artifact_types import Examples, Float, Integer, Model
from conveyor.dsl.artifacts import Artifact, Property, PropertyType
from conveyor.dsl.function_component import (
    AsyncOutputArtifact,
    BeamComponentParameter,
    FunctionComponent,
    InputArtifact,
    OutputArtifact,
    OutputDict,
    Parameter,
    component,
)
from conveyor.orchestration import LocalDagRunner, Metadata, PipelineRunError


class Histogram(Artifact):
    """A custom artifact type with typed properties."""

    TYPE_NAME = "test_fc.Histogram"
    PROPERTIES = {
        "bins": Property(type=PropertyType.INT),
        "mean": Property(type=PropertyType.FLOAT),
    }


@component
def Measure(
    examples: InputArtifact[Examples],
    histogram: OutputArtifact[Histogram],
    bins: Parameter[int] = 4,
    note: Parameter[str] = None,
) -> OutputDict(accuracy=float, rows=int, label=str, ok=bool):
    """Reads Produce's numbers; a histogram artifact and four simple values."""
    with open(os.path.join(examples.uri, "data.json")) as f:
        data = json.load(f)
    histogram.bins = bins
    histogram.mean = sum(data) / len(data)
    histogram.set_string_custom_property("note", note or "none")
    with open(os.path.join(histogram.uri, "counts.json"), "w") as f:
        json.dump([sum(1 for x in data if x % bins == b) for b in range(bins)], f)
    return {"accuracy": len(data) / 10, "rows": len(data), "label": "m", "ok": True}


@component
def Gate(
    accuracy: float,
    threshold: Parameter[float],
    report: OutputArtifact[Model],
    histogram: InputArtifact[Histogram] = None,
    rows: int = None,
) -> OutputDict(passed=bool, seen=str):
    """A value input, a parameter read from an upstream value, an optional artifact input."""
    with open(os.path.join(report.uri, "report.json"), "w") as f:
        json.dump({"accuracy": accuracy, "threshold": threshold, "rows": rows}, f)
    seen = "none" if histogram is None else f"{type(histogram).__name__}:{histogram.bins}"
    return {"passed": accuracy >= threshold, "seen": seen}


@component
def Broken(examples: InputArtifact[Examples]) -> OutputDict(x=int):
    raise ValueError("the user's function broke on purpose")


@component
def WrongType(examples: InputArtifact[Examples]) -> OutputDict(x=int):
    return {"x": "not an int"}


def _pipeline(root, n=6, enable_cache=True, name="fc"):
    produce = Produce(n=n)
    measure = Measure(examples=produce.outputs["examples"], bins=3)
    accuracy = measure.outputs["accuracy"].future()[0].value
    with Cond(accuracy > 0.5):
        high = Gate(
            accuracy=measure.outputs["accuracy"],
            threshold=accuracy,
            histogram=measure.outputs["histogram"],
            rows=measure.outputs["rows"],
        ).with_id("high")
    with Cond(accuracy <= 0.5):
        low = Gate(accuracy=measure.outputs["accuracy"], threshold=0.1).with_id("low")
    return Pipeline(name, str(root), [produce, measure, high, low], enable_cache=enable_cache)


# -- definition ---------------------------------------------------------------------------


def test_the_decorated_function_is_a_component_class():
    assert issubclass(Measure, FunctionComponent) and Measure.__name__ == "Measure"
    assert Measure.__module__ == __name__ and Measure.__doc__.startswith("Reads Produce")
    assert {k: (s.type_name, s.optional) for k, s in Measure.INPUTS.items()} == {
        "examples": ("Examples", False)
    }
    assert Measure.OUTPUTS == {
        "histogram": "test_fc.Histogram",
        "accuracy": "Float",
        "rows": "Integer",
        "label": "String",
        "ok": "Boolean",
    }
    assert Measure.PARAMETERS == {"bins": 4, "note": None}
    assert {k: (s.type_name, s.optional) for k, s in Gate.INPUTS.items()} == {
        "accuracy": ("Float", False),
        "histogram": ("test_fc.Histogram", True),
        "rows": ("Integer", True),
    }
    produce = Produce()
    node = Measure(examples=produce.outputs["examples"])
    assert node.id == "Measure" and node.parameters == {"bins": 4, "note": None}
    assert node.with_id("m2") is node and node.id == "m2"
    assert node.outputs["accuracy"].type_name == "Float" and node.upstream == [produce]
    # a parameter read from another component's output waits for it
    gate = Gate(
        accuracy=node.outputs["accuracy"], threshold=node.outputs["accuracy"].future()[0].value
    )
    assert gate.upstream == [node]
    # a RuntimeParameter of the parameter's type is taken
    Measure(examples=produce.outputs["examples"], bins=RuntimeParameter("bins", int, default=2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "missing required input 'examples'"),
        ({"examples": "data/"}, "input 'examples' must be another component's output"),
        ({"examples": None, "bins": "three"}, r"parameter 'bins' is Parameter\[int\], not 'three'"),
        ({"bins": True}, r"parameter 'bins' is Parameter\[int\], not True"),
        (
            {"bins": RuntimeParameter("b", str)},
            r"Parameter\[int\]; RuntimeParameter\('b', str\) is a str",
        ),
        ({"colour": 1}, "unknown argument 'colour'"),
    ],
)
def test_node_arguments_are_checked(kwargs, message):
    produce = Produce()
    kwargs = {"examples": produce.outputs["examples"], **kwargs}
    if kwargs["examples"] is None:
        del kwargs["examples"]
    if message.startswith("missing"):
        kwargs.pop("examples")
    with pytest.raises(PipelineDefinitionError, match=message):
        Measure(**kwargs)


def test_node_argument_errors_for_values_and_positions():
    with pytest.raises(
        PipelineDefinitionError, match="'accuracy' is a value input .*Parameter\\[float\\]"
    ):
        Gate(accuracy=0.5, threshold=0.1)
    with pytest.raises(PipelineDefinitionError, match="keyword arguments only"):
        Measure(Produce().outputs["examples"])
    with pytest.raises(PipelineDefinitionError, match="missing required parameter 'threshold'"):
        Gate(accuracy=Measure(examples=Produce().outputs["examples"]).outputs["accuracy"])
    measure = Measure(examples=Produce().outputs["examples"])
    with pytest.raises(
        PipelineDefinitionError, match="input 'accuracy' expects Float, but .* is Integer"
    ):
        Gate(accuracy=measure.outputs["rows"], threshold=0.1)
    with pytest.raises(PipelineDefinitionError, match="is a predicate"):
        Gate(
            accuracy=measure.outputs["accuracy"],
            threshold=measure.outputs["accuracy"].future()[0].value > 1,
        )


def _bad_functions():
    """(function source, expected error) pairs, each defined at module level of its own module."""
    return [
        ("def f(x): pass", "argument 'x' has no annotation"),
        ("def f(m: OutputArtifact[Model] = None): pass", "an output artifact cannot be optional"),
        ("def f(m: InputArtifact[Model] = 3): pass", "an optional input's default must be None"),
        ("def f(n: Parameter[int] = 'a'): pass", "the default 'a' is not a int"),
        ("def f(n: int = 'a'): pass", "the default 'a' is not a int"),
        ("def f(m: Model): pass", r"InputArtifact\[Model\] or OutputArtifact\[Model\]"),
        ("def f(m: set): pass", "unknown annotation"),
        ("def f() -> int: pass", "the return annotation is None, OutputDict"),
        ("def f() -> OutputDict(m=Model): pass", "returned value 'm' must be int, float"),
        ("def f(p: BeamComponentParameter[object] = None): pass", "use_beam=True"),
        ("def f(*args: int): pass", r"\*args, \*\*kwargs"),
        ("def f(id: Parameter[str]): pass", "argument name 'id' is taken"),
        ("def f(m: AsyncOutputArtifact[Model]): pass", "AsyncOutputArtifact is not supported"),
        ("def f(x: int) -> OutputDict(x=int): pass", r"\['x'\] is both an argument and a returned"),
    ]


@pytest.mark.parametrize("source, message", _bad_functions())
def test_bad_functions_are_refused_when_decorated(source, message):
    namespace = {
        "OutputArtifact": OutputArtifact,
        "InputArtifact": InputArtifact,
        "Parameter": Parameter,
        "OutputDict": OutputDict,
        "BeamComponentParameter": BeamComponentParameter,
        "AsyncOutputArtifact": AsyncOutputArtifact,
        "Model": Model,
    }
    exec(source, namespace)
    with pytest.raises(PipelineDefinitionError, match=message):
        component(namespace["f"])


def test_decorator_refusals():
    def nested(x: int):
        pass

    with pytest.raises(PipelineDefinitionError, match="define the function at module level"):
        component(nested)
    with pytest.raises(PipelineDefinitionError, match="component_annotation=.*not supported"):
        component(component_annotation=object)
    with pytest.raises(PipelineDefinitionError, match="take one BeamComponentParameter"):
        component(use_beam=True)(Broken.FUNCTION)
    with pytest.raises(PipelineDefinitionError, match=r"Parameter\[T\] takes int, float"):
        Parameter[list]
    with pytest.raises(
        PipelineDefinitionError, match=r"InputArtifact\[T\] takes an artifact class"
    ):
        InputArtifact[int]


def test_fingerprint_includes_the_function_source(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "fc_module_v.py"
    body = (
        "from conveyor.dsl.function_component import Parameter, component\n"
        "@component\n"
        "def Twice(n: Parameter[int] = 1) -> None:\n"
        "    return {}\n"
    )
    path.write_text(body)
    first = importlib.import_module("fc_module_v").Twice().fingerprint()
    assert importlib.import_module("fc_module_v").Twice().fingerprint() == first
    path.write_text(body.replace("return {}", "return None"))
    sys.modules.pop("fc_module_v")
    assert importlib.import_module("fc_module_v").Twice().fingerprint() != first


# -- running ------------------------------------------------------------------------------


def _states(result) -> dict:
    return {cid: s["state"] for cid, s in result["components"].items()}


def _execution(md, pipeline, run_id, cid):
    [ex] = [
        e
        for e in md.executions_of_run(pipeline, run_id)
        if e.properties["component_id"].string_value == cid
    ]
    return ex


def _check_run(pipeline, result):
    md = Metadata(pipeline.metadata_path)
    run_id = result["run_id"]
    measured = md.latest_outputs("fc", run_id, "Measure")
    hist = measured["histogram"]
    assert isinstance(hist, Histogram) and hist.bins == 3 and hist.mean == 2.5
    assert hist.get_string_custom_property("note") == "none"
    with open(os.path.join(hist.uri, "counts.json")) as f:
        assert json.load(f) == [2, 2, 2]
    # the custom type and its typed properties in ML Metadata
    [raw] = md.store.get_artifacts_by_id([hist.id])
    [mlmd_type] = md.store.get_artifact_types_by_id([raw.type_id])
    assert mlmd_type.name == "test_fc.Histogram" and set(mlmd_type.properties) == {"bins", "mean"}
    assert raw.properties["bins"].int_value == 3 and raw.properties["mean"].double_value == 2.5
    assert raw.custom_properties["note"].string_value == "none"
    # the returned values: value artifacts, their file and their value property
    acc = measured["accuracy"]
    assert isinstance(acc, Float) and acc.value == 0.6 and acc.properties["value"] == 0.6
    with open(os.path.join(acc.uri, "value")) as f:
        assert f.read() == "0.6"
    assert isinstance(measured["rows"], Integer) and measured["rows"].value == 6
    assert measured["label"].value == "m" and measured["ok"].value is True
    # Gate 'high' ran (0.6 > 0.5) with the threshold read from Measure's accuracy
    high = md.latest_outputs("fc", run_id, "high")
    with open(os.path.join(high["report"].uri, "report.json")) as f:
        assert json.load(f) == {"accuracy": 0.6, "threshold": 0.6, "rows": 6}
    assert high["passed"].value is True and high["seen"].value == "Histogram:3"
    params = json.loads(
        _execution(md, "fc", run_id, "high").custom_properties["parameters"].string_value
    )
    assert params == {"threshold": 0.6}
    ex = _execution(md, "fc", run_id, "Measure")
    [ex_type] = md.store.get_execution_types_by_id([ex.type_id])
    assert ex_type.name == "conveyor.Measure"
    assert json.loads(ex.custom_properties["parameters"].string_value) == {"bins": 3, "note": None}
    assert result["components"]["low"]["reason"].startswith("skipped: condition false")


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "child_processes"])
def test_a_pipeline_of_function_components_runs_and_reruns_cached(tmp_path, in_process):
    pipeline = _pipeline(tmp_path / "root")
    result = LocalDagRunner(in_process=in_process, quiet=True).run(pipeline)
    assert _states(result) == {
        "Produce": "COMPLETE",
        "Measure": "COMPLETE",
        "high": "COMPLETE",
        "low": "SKIPPED",
    }
    _check_run(pipeline, result)
    again = LocalDagRunner(in_process=in_process, quiet=True).run(_pipeline(tmp_path / "root"))
    assert _states(again) == {
        "Produce": "CACHED",
        "Measure": "CACHED",
        "high": "CACHED",
        "low": "SKIPPED",
    }
    # fewer rows: the other branch, and the parameter read from the new accuracy
    other = LocalDagRunner(in_process=in_process, quiet=True).run(_pipeline(tmp_path / "root", n=4))
    assert _states(other) == {
        "Produce": "COMPLETE",
        "Measure": "COMPLETE",
        "high": "SKIPPED",
        "low": "COMPLETE",
    }
    md = Metadata(pipeline.metadata_path)
    low = md.latest_outputs("fc", other["run_id"], "low")
    assert low["passed"].value is True and low["seen"].value == "none"


def test_a_failing_function_fails_its_node_with_the_users_error(tmp_path):
    produce = Produce()
    for node, message in (
        (Broken(examples=produce.outputs["examples"]), "the user's function broke on purpose"),
        (WrongType(examples=produce.outputs["examples"]), "returned 'x' is 'not an int'"),
    ):
        pipeline = Pipeline("bad", str(tmp_path / node.id), [produce, node])
        with pytest.raises(PipelineRunError, match=message):
            LocalDagRunner(in_process=True, quiet=True).run(pipeline)
        rows = Metadata(pipeline.metadata_path).run_status("bad", _last_run(pipeline))
        assert {r["component_id"]: r["state"] for r in rows}[node.id] == "FAILED"


def _last_run(pipeline):
    return Metadata(pipeline.metadata_path).runs(pipeline.name)[0]["run_id"]


@component(use_beam=True)
def BeamSum(
    examples: InputArtifact[Examples],
    beam_pipeline: BeamComponentParameter[object] = None,
) -> OutputDict(total=int, mode=str):
    """Sums Produce's numbers in a Beam pipeline made with the pipeline's Beam flags."""
    import apache_beam as beam

    with open(os.path.join(examples.uri, "data.json")) as f:
        data = json.load(f)
    out = os.path.join(examples.uri, "..", "beam_sum")
    with beam_pipeline as p:
        (
            p
            | beam.Create(data)
            | beam.CombineGlobally(sum)
            | beam.Map(lambda s: open(out, "w").write(str(s)))
        )
    with open(out) as f:
        total = int(f.read())
    os.remove(out)
    mode = beam_pipeline.options.get_all_options()["direct_running_mode"]
    return {"total": total, "mode": mode}


def test_use_beam_hands_the_function_a_pipeline_with_the_pipelines_beam_args(tmp_path):
    produce = Produce(n=5)
    node = BeamSum(examples=produce.outputs["examples"]).with_beam_pipeline_args(
        ["--direct_num_workers=1"]
    )
    pipeline = Pipeline(
        "beam",
        str(tmp_path / "root"),
        [produce, node],
        beam_pipeline_args=["--direct_running_mode=multi_threading"],
    )
    result = LocalDagRunner(in_process=True, quiet=True).run(pipeline)
    assert _states(result) == {"Produce": "COMPLETE", "BeamSum": "COMPLETE"}
    out = Metadata(pipeline.metadata_path).latest_outputs("beam", result["run_id"], "BeamSum")
    assert out["total"].value == 10 and out["mode"].value == "multi_threading"


def test_a_node_pickles_by_module_and_name_for_other_processes(tmp_path):
    """Plain pickle (no code shipped): the launcher side imports the class by its module and name."""
    import pickle
    import subprocess

    produce = Produce(n=2)
    node = Measure(examples=produce.outputs["examples"], bins=2).with_id("m")
    path = tmp_path / "node.pkl"
    path.write_bytes(pickle.dumps(node))
    code = (
        "import pickle, sys\n"
        f"node = pickle.load(open({str(path)!r}, 'rb'))\n"
        "print(type(node).__module__, type(node).__qualname__, node.id, node.parameters['bins'],"
        " node.fingerprint())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out == [__name__, "Measure", "m", "2", node.fingerprint()]

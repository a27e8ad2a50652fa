"""A RuntimeParameter's ``description`` reaches the Kubeflow spec and the Airflow DAG's params."""

from __future__ import annotations

import json

from conveyor import tfx

DESCRIPTION = "How many steps the model trains;\n  more is slower."


@tfx.dsl.components.component
def Steps(steps: tfx.dsl.components.Parameter[int]) -> tfx.dsl.components.OutputDict(doubled=int):
    """Doubles the steps it is given."""
    return {"doubled": steps * 2}


def _pipeline(tmp_path):
    steps = tfx.dsl.experimental.RuntimeParameter(
        name="train_steps", ptype=int, default=100, description=DESCRIPTION
    )
    bare = tfx.dsl.experimental.RuntimeParameter(name="eval_steps", ptype=int, default=5)
    return tfx.dsl.Pipeline(
        pipeline_name="described",
        pipeline_root=str(tmp_path / "root"),
        components=[Steps(steps=steps), Steps(steps=bare).with_id("Eval")],
    )


def test_kubeflow_spec_carries_the_description(tmp_path):
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="registry.test/described:1"
        ),
        output_dir=str(tmp_path),
        output_filename="described.json",
    )
    spec = runner.run(_pipeline(tmp_path))
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert (
        params["train_steps"]["description"] == "How many steps the model trains; more is slower."
    )
    assert params["train_steps"]["defaultValue"] == 100
    assert "description" not in params["eval_steps"]
    assert json.loads((tmp_path / "described.json").read_text()) == spec


def test_airflow_dag_params_carry_the_description(tmp_path):
    from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig

    config = AirflowPipelineConfig(output=str(tmp_path / "dags" / "described.py"))
    written = AirflowDagRunner(config).run(_pipeline(tmp_path))
    source = open(written).read()
    assert repr({"type": "integer", "default": 100, "description": DESCRIPTION}) in source
    assert repr({"type": "integer", "default": 5}) in source


def test_a_folder_named_airflow_is_not_taken_for_airflow(tmp_path, monkeypatch):
    import sys

    from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig

    (tmp_path / "scratch" / "airflow").mkdir(parents=True)  # a namespace package "airflow"
    monkeypatch.syspath_prepend(str(tmp_path / "scratch"))
    monkeypatch.delitem(sys.modules, "airflow", raising=False)
    config = AirflowPipelineConfig(output=str(tmp_path / "dags" / "described.py"))
    assert AirflowDagRunner(config).run(_pipeline(tmp_path)) == config.output
    monkeypatch.delitem(sys.modules, "airflow", raising=False)

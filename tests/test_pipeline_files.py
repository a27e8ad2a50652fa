"""``load_pipeline`` finds the pipeline of every style of pipeline file, and runs none.

Conveyor's own style (a module-level ``Pipeline`` or ``create_pipeline()``) and
TFX's: a private ``_create_pipeline`` called only in the ``__main__`` block and
handed to a runner there (the LocalDagRunner, the BeamDagRunner, Kubeflow's),
behind absl's ``app.run(main)``, or at module level as Airflow's
``DAG = AirflowDagRunner(config).run(...)``. Each runner only hands the pipeline
to the loader: nothing runs, no run is recorded and no file is written.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from conveyor.beam_utils.user_modules import UserCodeError
from conveyor.dsl import Pipeline
from conveyor.orchestration.loader import captured_by_loader, load_pipeline

#: The components of every file below: nothing that needs data, so that a run the loader
#: failed to stop would fail loudly (no input) rather than quietly.
HEAD = """
import os, sys
from conveyor import tfx

def _create_pipeline(root):
    gen = tfx.components.CsvExampleGen(input_base=os.path.join(root, "no-data"))
    stats = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    return tfx.dsl.Pipeline(pipeline_name="styled", pipeline_root=root,
                            components=[gen, stats])
"""

#: ``{style: the file's code after HEAD}``; ``ROOT`` is the pipeline root.
STYLES = {
    "local_dag_runner_in_main": """
if __name__ == "__main__":
    tfx.orchestration.LocalDagRunner().run(_create_pipeline(ROOT))
""",
    "beam_dag_runner_in_main": """
if __name__ == "__main__":
    from conveyor.tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
    BeamDagRunner().run(_create_pipeline(ROOT))
""",
    "absl_app_run": """
from absl import app

def main(argv):
    assert argv == [__file__], argv  # the loader's argv: the file only
    tfx.orchestration.LocalDagRunner().run(_create_pipeline(ROOT))

if __name__ == "__main__":
    app.run(main)
""",
    "airflow_at_module_level": """
import datetime
from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig
DAG = AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config={
    "schedule_interval": None, "start_date": datetime.datetime(2026, 1, 1)})).run(
        _create_pipeline(ROOT))
""",
    "kubeflow_v2_in_main": """
if __name__ == "__main__":
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image="x:1"),
        output_dir=os.path.join(ROOT, "kfp"), output_filename="styled.json")
    runner.run(_create_pipeline(ROOT))
""",
    "module_level_pipeline": """
pipeline = _create_pipeline(ROOT)
""",
    "create_pipeline_function": """
def create_pipeline():
    return _create_pipeline(ROOT)
""",
}


def _write(tmp_path, body: str, name: str = "styled_pipeline.py") -> tuple[str, str]:
    root = str(tmp_path / "root")
    path = tmp_path / name
    path.write_text(HEAD + f"ROOT = {root!r}\n" + textwrap.dedent(body))
    return str(path), root


def _listing(folder) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
    )


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_of_file_gives_its_pipeline_and_runs_nothing(style, tmp_path):
    path, root = _write(tmp_path, STYLES[style])
    argv = list(sys.argv)
    pipeline = load_pipeline(path)
    assert isinstance(pipeline, Pipeline)
    assert pipeline.name == "styled" and pipeline.root == root
    assert [c.id for c in pipeline.components] == ["CsvExampleGen", "StatisticsGen"]
    # Nothing ran and nothing was written: no store, no run folder, no DAG file, no spec.
    assert not os.path.exists(root), _listing(root)
    assert sys.argv == argv
    # Outside the loader the runners run as before: the hook hands nothing over.
    assert captured_by_loader(pipeline) is False


def test_a_file_that_hands_no_pipeline_over_is_an_error_naming_it(tmp_path):
    path, _ = _write(tmp_path, 'if __name__ == "__main__":\n    print("nothing")\n')
    with pytest.raises(ValueError, match=r"styled_pipeline\.py: expected one Pipeline.*found 0"):
        load_pipeline(path)


def test_the_main_code_ends_at_its_first_runner_call(tmp_path):
    """What follows the runner call (using its result, submitting what it wrote, a second
    run) is not the pipeline's definition, and must not run at every load."""
    body = """
if __name__ == "__main__":
    result = tfx.orchestration.LocalDagRunner().run(_create_pipeline(ROOT))
    print(result["run_id"])
    open(ROOT + ".submitted", "w").close()
    tfx.orchestration.LocalDagRunner().run(_create_pipeline(ROOT + "-2"))
"""
    path, root = _write(tmp_path, body)
    pipeline = load_pipeline(path)
    assert pipeline.root == root
    assert not os.path.exists(root + ".submitted") and not os.path.exists(root)


def test_absl_flags_defined_by_the_file_and_create_pipeline_with_arguments(tmp_path):
    """TFX's examples define absl flags at module level and parse them in app.run; the file
    runs twice (imported, then as __main__), and absl refuses a flag defined from two modules
    unless the first definitions are forgotten. A create_pipeline that takes arguments (TFX's
    templates) is not called bare: the __main__ code gives them."""
    body = """
from absl import app, flags

flags.DEFINE_enum("model_framework", "keras", ["keras", "flax"], "Model framework.")
FLAGS = flags.FLAGS

def create_pipeline(root, framework):
    assert framework == "keras"
    return _create_pipeline(root)

def main(argv):
    tfx.orchestration.LocalDagRunner().run(create_pipeline(ROOT, FLAGS.model_framework))

if __name__ == "__main__":
    app.run(main)
"""
    path, root = _write(tmp_path, body, name="absl_flags_pipeline.py")
    for _ in range(2):  # loading twice in one process, as the UI and the CLI may
        assert load_pipeline(path).root == root
    assert not os.path.exists(root)


def test_a_main_block_that_raises_is_a_user_code_error_with_its_line(tmp_path):
    body = """
if __name__ == "__main__":
    raise RuntimeError("no PIPELINE_ROOT set")
"""
    path, _ = _write(tmp_path, body)
    with pytest.raises(UserCodeError, match="no PIPELINE_ROOT set") as caught:
        load_pipeline(path)
    assert caught.value.path == path
    assert any(f.filename == path for f in caught.value.frames)


def test_a_main_that_exits_with_an_error_status_is_an_error_naming_the_file(tmp_path):
    body = 'if __name__ == "__main__":\n    sys.exit(3)\n'
    path, _ = _write(tmp_path, body)
    with pytest.raises(ValueError, match=r"styled_pipeline\.py: exited with status 3"):
        load_pipeline(path)

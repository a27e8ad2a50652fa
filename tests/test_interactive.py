"""InteractiveContext: components run from a notebook, shown inline, exported to a pipeline file."""

import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
from orchestration_components import Produce, Sum

from conveyor.orchestration import Artifact, Metadata
from conveyor.orchestration.interactive import InteractiveContext, render_html
from conveyor.orchestration.launcher import ComponentError
from conveyor.orchestration.notebook_export import NotebookExportError, export_notebook

NOTEBOOK = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "testdata",
    "notebooks",
    "toy_interactive.ipynb",
)


def test_context_runs_components_and_records_them(tmp_path):
    default = InteractiveContext()
    try:
        assert os.path.isfile(os.path.join(default.pipeline_root, "metadata.sqlite"))
    finally:
        shutil.rmtree(default.pipeline_root)

    context = InteractiveContext(
        "nb", str(tmp_path / "root"), str(tmp_path / "md" / "store.sqlite")
    )
    produce = Produce(n=4)
    total = Sum(examples=produce.outputs["examples"])
    with pytest.raises(ComponentError, match="has not produced"):
        context.run(total)
    first = context.run(produce)
    assert first.state == "COMPLETE" and first.component is produce
    result = context.run(Sum(examples=first.component.outputs["examples"]))
    assert result.state == "COMPLETE"
    assert json.load(open(os.path.join(result.outputs["statistics"].uri, "sum.json"))) == 6
    assert context.run(produce).state == "CACHED"
    assert context.run(produce, enable_cache=False).state == "COMPLETE"

    md = Metadata(str(tmp_path / "md" / "store.sqlite"))
    rows = md.run_status("nb", context.run_id)
    assert [(r["component_id"], r["state"]) for r in rows] == [
        ("Produce", "COMPLETE"),
        ("Sum", "COMPLETE"),
        ("Produce", "CACHED"),
        ("Produce", "COMPLETE"),
    ]
    upstream = md.lineage(result.outputs["statistics"].id)
    assert [(cid, a.type_name) for cid, a in upstream] == [("Produce", "Examples")]
    page = context.show(produce.outputs["examples"])  # not in IPython: the HTML comes back
    assert "data.json" in page


def test_show_statistics_schema_and_anomalies_of_real_components(tmp_path):
    from conveyor.beam_utils.datasets import penguins_csv
    from conveyor.components import ExampleGen, ExampleValidator, SchemaGen, StatisticsGen

    context = InteractiveContext(pipeline_root=str(tmp_path))
    gen = ExampleGen(input_base=penguins_csv(), missing_values=["NA"])
    context.run(gen)
    stats = StatisticsGen(examples=gen.outputs["examples"])
    context.run(stats)
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    context.run(schema)
    validator = ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"]
    )
    context.run(validator)

    shown = context.show(stats.outputs["statistics"])
    assert shown.index("<h2>Split train") < shown.index("<h2>Split eval")
    assert "Drift between train and eval" in shown and "body_mass_g" in shown
    assert "https://" not in shown and "facets" not in shown
    table = context.show(schema.outputs["schema"])
    assert "<table" in table and "species" in table and "body_mass_g" in table
    assert "Anomalies (eval, train)" in context.show(validator.outputs["anomalies"])


def test_show_evaluation_slice_table_and_plots(tmp_path):
    uri = tmp_path / "evaluation"
    (uri / "plots").mkdir(parents=True)
    (uri / "metrics.json").write_text(
        json.dumps(
            [
                {"slice": {}, "metrics": {"example_count": 10, "auc": 0.9}},
                {"slice": {"island": "Dream"}, "metrics": {"example_count": 4, "auc": 0.75}},
            ]
        )
    )
    (uri / "validation.json").write_text(json.dumps({"blessed": True, "failures": []}))
    (uri / "plots" / "Overall_roc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = render_html(Artifact("ModelEvaluation", str(uri)))
    assert "Overall" in page and "island=Dream" in page and "0.75" in page
    assert (
        "blessed: <b>True</b>" in page
        and "data:image/png;base64," in page
        and "Overall_roc.png" in page
    )


def _execute(notebook_path, cwd):
    import nbclient

    nb = nbformat.read(notebook_path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb


def test_notebook_runs_and_exports_to_pipelines_that_run(tmp_path):
    nb = _execute(NOTEBOOK, tmp_path)
    executed = tmp_path / "toy_interactive.ipynb"
    nbformat.write(nb, str(executed))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    root = next(line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("ROOT "))
    run_id = next(line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("RUN "))
    assert "RAN Sum" in text
    shown = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert shown and "data.json" in shown[-1].data["text/html"]
    try:
        rows = Metadata(os.path.join(root, "metadata.sqlite")).run_status("toy_notebook", run_id)
        assert [(r["component_id"], r["state"]) for r in rows] == [
            ("Produce", "COMPLETE"),
            ("Sum", "COMPLETE"),
        ]
    finally:
        shutil.rmtree(root)

    for runner in ("local", "beam"):
        folder = tmp_path / runner
        path = export_notebook(str(executed), str(folder / "pipeline.py"), runner=runner)
        source = open(path).read()
        assert "context" not in source and "scratch" not in source and "show(" not in source
        assert "components=[produce, total]" in source
        proc = subprocess.run(
            [sys.executable, path], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        md = Metadata(str(folder / "toy_notebook_root" / "metadata.sqlite"))
        [run] = md.runs("toy_notebook")
        assert sorted(run["states"]) == ["COMPLETE", "COMPLETE"]
        sums = md.latest_outputs("toy_notebook", run["run_id"], "Sum")["statistics"]
        assert json.load(open(os.path.join(sums.uri, "sum.json"))) == 10

    dag_path = export_notebook(
        str(executed), str(tmp_path / "airflow" / "pipeline.py"), runner="airflow"
    )
    proc = subprocess.run(
        [sys.executable, dag_path, str(tmp_path / "dags" / "toy.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DAG(" in (tmp_path / "dags" / "toy.py").read_text()


def _notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    return str(path)


def test_export_rejects_what_a_pipeline_file_cannot_express(tmp_path):
    ctx = "from conveyor.orchestration.interactive import InteractiveContext\ncontext = InteractiveContext()"
    mixed = _notebook(
        tmp_path, ctx, "p = Produce()\ncontext.run(p)\ncontext.show(p.outputs['examples'])"
    )
    with pytest.raises(NotebookExportError, match="both runs components and shows outputs"):
        export_notebook(mixed, str(tmp_path / "out.py"))
    other_use = _notebook(tmp_path, ctx, "p = Produce()\ncontext.run(p)\nprint(context.run_id)")
    with pytest.raises(NotebookExportError, match="uses the InteractiveContext"):
        export_notebook(other_use, str(tmp_path / "out.py"))
    with pytest.raises(NotebookExportError, match="no context.run"):
        export_notebook(_notebook(tmp_path, ctx), str(tmp_path / "out.py"))
    with pytest.raises(ValueError, match="unknown runner"):
        export_notebook(_notebook(tmp_path, ctx), str(tmp_path / "out.py"), runner="kubeflow")
    inline = _notebook(tmp_path, ctx, "context.run(Produce(n=2))\nr = context.run(Produce(id='b'))")
    source = open(export_notebook(inline, str(tmp_path / "out.py"))).read()
    assert (
        "_component_1 = Produce(n=2)" in source
        and "r = SimpleNamespace(component=_component_2)" in source
    )
    assert "components=[_component_1, _component_2]" in source

"""Running components one at a time from a notebook, and looking at what they made.

Example (each line a notebook cell)::

    from conveyor.components import ExampleGen, StatisticsGen, SchemaGen
    from conveyor.orchestration.interactive import InteractiveContext

    context = InteractiveContext()
    gen = ExampleGen(input_base="data/penguins.csv")
    context.run(gen)
    stats = StatisticsGen(examples=gen.outputs["examples"])
    context.run(stats)
    context.show(stats.outputs["statistics"])
    context.export_to_pipeline("penguins.ipynb", "penguins_pipeline.py", runner="local")

Every execution is recorded in ML Metadata (SQLite inside the context's root
unless ``metadata_path`` says otherwise) as one pipeline run of the context, so
a component's inputs are the latest outputs of the components run before it,
and lineage reads as for a pipeline run.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field

from conveyor.beam_utils.errors import InputError
from conveyor.dsl import Channel, Component, Pipeline, layout
from conveyor.dsl.artifacts import Artifact


@dataclass
class ExecutionResult:
    """What :meth:`InteractiveContext.run` returns.

    Attributes:
      component: the component that ran; pass ``component.outputs[key]`` on.
      state: ``COMPLETE`` or ``CACHED``.
      execution_id: its ML Metadata execution.
      outputs: ``{key: Artifact}``.
      seconds: how long it took.
    """

    component: Component
    state: str
    execution_id: int | None
    outputs: dict[str, Artifact] = field(default_factory=dict)
    seconds: float = 0.0

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(a.type_name)}</td><td><code>{html.escape(a.uri)}"
            f"</code></td></tr>"
            for k, a in self.outputs.items()
        )
        return (
            f"<div><b>{html.escape(self.component.id)}</b> ({html.escape(type(self.component).__name__)}): "
            f"{self.state}, execution {self.execution_id}, {self.seconds:.1f}s"
            f"<table><tr><th>output</th><th>type</th><th>uri</th></tr>{rows}</table></div>"
        )

    def __repr__(self) -> str:
        outs = ", ".join(f"{k}={a.uri}" for k, a in self.outputs.items())
        return f"ExecutionResult({self.component.id}: {self.state}, execution {self.execution_id}, {outs})"


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _register_skip_magic() -> None:
    """``%%skip`` in a notebook: the cell is not run (nor exported)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def skip(line, cell):  # noqa: ARG001 - IPython's cell magic signature
        return None

    shell.register_magic_function(skip, magic_kind="cell", magic_name="skip")


class InteractiveContext:
    """Runs components now, in this process, recording them in ML Metadata.

    Args:
      pipeline_name: the pipeline context in ML Metadata (default ``interactive``).
      pipeline_root: where artifacts go (default: a new temporary directory).
      metadata_path: the SQLite ML Metadata file (default ``<root>/metadata.sqlite``).
      beam_pipeline_args: Beam flags for every component.
    """

    def __init__(
        self,
        pipeline_name: str | None = None,
        pipeline_root: str | None = None,
        metadata_path: str | None = None,
        beam_pipeline_args: list[str] | None = None,
    ):
        from conveyor.orchestration.metadata import Metadata, sqlite_config

        self.pipeline_name = pipeline_name or "interactive"
        self.pipeline_root = os.path.abspath(
            pipeline_root or tempfile.mkdtemp(prefix="conveyor-interactive-")
        )
        os.makedirs(self.pipeline_root, exist_ok=True)
        self.metadata_path = os.path.abspath(
            metadata_path or os.path.join(self.pipeline_root, "metadata.sqlite")
        )
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.run_id = "interactive-" + time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self._connection_config = sqlite_config(self.metadata_path)
        self.metadata = Metadata(self._connection_config)
        _register_skip_magic()

    def __repr__(self) -> str:
        return (
            f"InteractiveContext({self.pipeline_name!r}, root={self.pipeline_root!r}, "
            f"metadata={self.metadata_path!r}, run={self.run_id!r})"
        )

    def _pipeline_for(self, component: Component) -> Pipeline:
        """The component and everything upstream of it, as a pipeline run_component understands."""
        found: dict[int, Component] = {}
        stack = [component]
        while stack:
            c = stack.pop()
            if id(c) not in found:
                found[id(c)] = c
                stack.extend(c.upstream)
        return Pipeline(
            self.pipeline_name,
            self.pipeline_root,
            list(found.values()),
            beam_pipeline_args=self.beam_pipeline_args,
            metadata_connection_config=self._connection_config,
        )

    def run(self, component: Component, enable_cache: bool = True) -> ExecutionResult:
        """Runs ``component`` now; its inputs are what this context ran last for their producers.

        Raises :class:`~conveyor.orchestration.launcher.ComponentError` if it fails
        (or if an upstream component has not been run in this context yet).
        """
        from conveyor.orchestration.launcher import run_component

        pipeline = self._pipeline_for(component)
        status = run_component(
            pipeline, component.id, self.run_id, enable_cache=enable_cache, md=self.metadata
        )
        execution_id = None
        for row in self.metadata.run_status(self.pipeline_name, self.run_id):
            if row["component_id"] == component.id:
                execution_id = row["execution_id"]
        outputs = self.metadata.latest_outputs(self.pipeline_name, self.run_id, component.id) or {}
        return ExecutionResult(component, status["state"], execution_id, outputs, status["seconds"])

    # -- show -------------------------------------------------------------------

    def artifact(self, what) -> Artifact:
        """The artifact a channel (``component.outputs[key]``) stands for in this context."""
        if isinstance(what, Artifact):
            return what
        if isinstance(what, ExecutionResult):
            if len(what.outputs) != 1:
                raise ValueError(
                    f"{what.component.id} has outputs {sorted(what.outputs)}: show one of them"
                )
            return next(iter(what.outputs.values()))
        if not isinstance(what, Channel):
            raise TypeError(
                f"show() takes a component's output (component.outputs[key]), not {type(what).__name__}"
            )
        produced = self.metadata.latest_outputs(self.pipeline_name, self.run_id, what.producer.id)
        if not produced or what.key not in produced:
            raise ValueError(
                f"{what.producer.id} has not been run in this context: context.run() it first"
            )
        return produced[what.key]

    def show(self, what) -> str | None:
        """Renders an output inline: statistics (Conveyor's own tables), a schema, anomalies, an evaluation.

        In IPython the rendering is displayed and None returned; elsewhere the HTML
        is returned.
        """
        page = render_html(self.artifact(what))
        if _in_ipython():
            from IPython.display import HTML, display

            display(HTML(page))
            return None
        return page

    def export_to_pipeline(
        self,
        notebook_path: str,
        export_path: str,
        runner: str = "local",
        pipeline_root: str | None = None,
    ) -> str:
        """Writes the notebook's code as a pipeline file run by ``runner``; returns its path.

        See :func:`conveyor.orchestration.notebook_export.export_notebook`.
        """
        from conveyor.orchestration.notebook_export import export_notebook

        return export_notebook(
            notebook_path, export_path, runner=runner, pipeline_root=pipeline_root
        )


# -- renderings -------------------------------------------------------------------


def render_html(artifact: Artifact) -> str:
    """An HTML rendering of an artifact, by its type."""
    renderers = {
        "ExampleStatistics": statistics_html,
        "Schema": schema_html,
        "ExampleAnomalies": anomalies_html,
        "ModelEvaluation": evaluation_html,
    }
    render = renderers.get(artifact.type_name, files_html)
    return render(artifact.uri)


def _splits(uri: str, file_name: str) -> dict[str, str]:
    try:
        return layout.split_files(uri, file_name)
    except InputError:
        return {}


def statistics_html(uri: str) -> str:
    """Conveyor's statistics view of the splits' ``FeatureStats.pb`` (train first): a table
    per split, and the drift between the first two. Self-contained: no script or style
    is loaded from the network."""
    from conveyor.beam_utils.proto_io import read_statistics
    from conveyor.components.statistics import TABLE_CSS, statistics_view
    from conveyor.components.statistics import statistics_html as render

    paths = layout.split_files(uri, layout.STATS_FILE)
    names = sorted(paths, key=lambda s: (s != "train", s))
    view = statistics_view({split: read_statistics(paths[split]) for split in names})
    return f"<style>{TABLE_CSS}</style>" + render(view)


def schema_frame(uri: str):
    """A pandas DataFrame of a schema: one row per feature (type, presence, valency, domain)."""
    import pandas as pd
    from tensorflow_metadata.proto.v0 import schema_pb2

    from conveyor.beam_utils.proto_io import read_schema

    schema = read_schema(layout.schema_path(uri))
    domains = {d.name: list(d.value) for d in schema.string_domain}
    rows = []
    for f in schema.feature:
        presence = "required" if f.presence.min_fraction == 1.0 else "optional"
        if f.HasField("shape"):
            valency = "[" + ",".join(str(d.size) for d in f.shape.dim) + "]"
        elif f.HasField("value_count"):
            vc = f.value_count
            valency = "single" if vc.min == vc.max == 1 else f"{vc.min}..{vc.max or ''}"
        else:
            valency = ""
        domain = ""
        if f.HasField("domain"):
            values = domains.get(f.domain, [])
            domain = f"{f.domain}: " + ", ".join(values[:10]) + (" ..." if len(values) > 10 else "")
        elif f.HasField("int_domain"):
            domain = f"[{f.int_domain.min}, {f.int_domain.max}]"
        elif f.HasField("float_domain"):
            domain = f"[{f.float_domain.min:g}, {f.float_domain.max:g}]"
        rows.append(
            {
                "feature": f.name,
                "type": schema_pb2.FeatureType.Name(f.type),
                "presence": presence,
                "valency": valency,
                "domain": domain,
            }
        )
    return pd.DataFrame(rows, columns=["feature", "type", "presence", "valency", "domain"])


def schema_html(uri: str) -> str:
    frame = schema_frame(uri)
    return f"<h4>Schema: {len(frame)} features</h4>" + frame.to_html(index=False)


def anomalies_frame(uri: str):
    """A pandas DataFrame of every split's anomalies: split, feature, severity, type, description."""
    import pandas as pd
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from conveyor.beam_utils.proto_io import read_anomalies

    info_t = anomalies_pb2.AnomalyInfo
    rows = []
    for split, path in _splits(uri, layout.ANOMALIES_FILE).items():
        anomalies = read_anomalies(path)
        items = sorted(anomalies.anomaly_info.items())
        if anomalies.dataset_anomaly_info.reason:
            items.append(("(dataset)", anomalies.dataset_anomaly_info))
        for name, info in items:
            severity = info_t.Severity.Name(info.severity) if info.severity else "ERROR"
            for reason in info.reason:
                rows.append(
                    {
                        "split": split,
                        "feature": name,
                        "severity": severity,
                        "type": info_t.Type.Name(reason.type),
                        "description": reason.description,
                    }
                )
    return pd.DataFrame(rows, columns=["split", "feature", "severity", "type", "description"])


def anomalies_html(uri: str) -> str:
    frame = anomalies_frame(uri)
    splits = ", ".join(_splits(uri, layout.ANOMALIES_FILE))
    if frame.empty:
        return f"<h4>Anomalies ({html.escape(splits)}): none</h4>"
    return f"<h4>Anomalies ({html.escape(splits)}): {len(frame)}</h4>" + frame.to_html(index=False)


def evaluation_frame(uri: str):
    """A pandas DataFrame of ``metrics.json``: one row per slice, one column per metric."""
    import pandas as pd

    with open(os.path.join(uri, "metrics.json")) as f:
        entries = json.load(f)
    rows = []
    for entry in entries:
        slice_ = entry.get("slice") or {}
        row = {"slice": ", ".join(f"{k}={v}" for k, v in slice_.items()) or "Overall"}
        row.update(
            {k: v for k, v in entry.get("metrics", {}).items() if isinstance(v, (int, float, str))}
        )
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_html(uri: str) -> str:
    """The slice table, the verdict, and the plots (PNG) inline."""
    parts = ["<h4>Evaluation</h4>"]
    validation = os.path.join(uri, "validation.json")
    if os.path.exists(validation):
        with open(validation) as f:
            verdict = json.load(f)
        parts.append(f"<p>blessed: <b>{verdict.get('blessed')}</b></p>")
    parts.append(evaluation_frame(uri).to_html(index=False))
    plots = os.path.join(uri, "plots")
    if os.path.isdir(plots):
        for name in sorted(os.listdir(plots)):
            if name.endswith(".png"):
                with open(os.path.join(plots, name), "rb") as f:
                    data = base64.b64encode(f.read()).decode("ascii")
                parts.append(
                    f"<figure style='display:inline-block'><img src='data:image/png;base64,{data}' "
                    f"width='360'/><figcaption>{html.escape(name)}</figcaption></figure>"
                )
    return "".join(parts)


def files_html(uri: str) -> str:
    """The files of an artifact of another type, with their sizes."""
    rows = []
    for root, dirs, files in os.walk(uri):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rows.append(
                f"<tr><td><code>{html.escape(os.path.relpath(path, uri))}</code></td>"
                f"<td>{os.path.getsize(path)}</td></tr>"
            )
    return (
        f"<h4><code>{html.escape(uri)}</code></h4><table><tr><th>file</th><th>bytes</th></tr>"
        + "".join(rows)
        + "</table>"
    )

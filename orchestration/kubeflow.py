"""``KubeflowDagRunner``: writes a pipeline as a Kubeflow Pipelines (v2) pipeline spec.

The spec is compiled by the ``kfp`` SDK's own compiler (``pip install
'conveyor[kubeflow]'``). It has one container task per component, running
``conveyor component run`` in the configured image (the repository's
``Dockerfile`` builds one), ordered by the pipeline's edges with ``.after()``.
Components pass artifacts as Conveyor does everywhere: by URI under the
pipeline root, found through the pipeline's ML Metadata store. The root is a
parameter of the Kubeflow pipeline (default: the pipeline's own root), so it
must be storage every pod sees (a shared volume), and so must the metadata
store (SQLite under the root, or the pipeline's ``metadata_connection_config``).
The tasks of one Kubeflow run share its job id as their Conveyor run id.

Example::

    from conveyor.orchestration.kubeflow import KubeflowDagConfig, KubeflowDagRunner

    KubeflowDagRunner(KubeflowDagConfig(
        output="flights.yaml", image="registry.example/conveyor:0.1.0",
        pipeline_path="orchestration/templates/flights/pipeline.py",
    )).run(pipeline)

or ``conveyor pipeline compile --engine kubeflow --pipeline-path FILE --output flights.yaml``.
"""

# No ``from __future__ import annotations``: kfp reads the component functions'
# annotations as types, and would take the string "str" for an artifact type.
import os
import re
from dataclasses import dataclass, field

from conveyor.dsl import Pipeline

#: The name of the Kubeflow pipeline's parameter that sets the pipeline root.
ROOT_PARAMETER = "pipeline_root"


@dataclass
class KubeflowDagConfig:
    """How to write the pipeline spec.

    Attributes:
      output: the YAML file to write.
      pipeline_path: the pipeline's file as the container sees it; a relative path
        is relative to the image's working directory (``/app`` in the repository's
        Dockerfile, which copies the project there).
      image: the container image with Conveyor installed.
      conveyor: the ``conveyor`` executable in the image.
      beam_args: Beam flags for every component, after the pipeline's own.
      description: the Kubeflow pipeline's description.
    """

    output: str
    pipeline_path: str
    image: str = "conveyor:latest"
    conveyor: str = "conveyor"
    beam_args: list[str] = field(default_factory=list)
    description: str | None = None


def _kfp_name(component_id: str) -> str:
    return "conveyor-" + (
        re.sub(r"[^a-z0-9]+", "-", component_id.lower()).strip("-") or "component"
    )


class KubeflowDagRunner:
    """Compiles a pipeline into a Kubeflow Pipelines spec (it does not submit it)."""

    def __init__(self, config: KubeflowDagConfig):
        self.config = config

    def run(self, pipeline: Pipeline) -> str:
        """Writes the pipeline spec; returns its path."""
        try:
            from kfp import compiler, dsl
        except ImportError:
            raise ImportError(
                "compiling for Kubeflow needs the kfp SDK: pip install 'conveyor[kubeflow]' "
                "(or pip install -c constraints.txt kfp)"
            ) from None
        cfg = self.config
        if not cfg.pipeline_path:
            raise ValueError(
                "KubeflowDagConfig.pipeline_path: the pipeline file inside the image is required"
            )
        names = [_kfp_name(c.id) for c in pipeline.components]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ValueError(
                f"component ids map to the same Kubeflow component name(s) {clashes}; rename them"
            )

        ops = {c.id: self._container_component(dsl, c.id) for c in pipeline.components}

        # The parameter's name is ROOT_PARAMETER.
        def conveyor_pipeline(pipeline_root: str = pipeline.root):
            tasks = {}
            for c in pipeline.components:
                task = ops[c.id](
                    pipeline_root=pipeline_root, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER
                )
                task.set_display_name(c.id)
                # Conveyor caches through its own metadata; the run id differs per run anyway.
                task.set_caching_options(False)
                ups = [tasks[u.id] for u in c.upstream]
                if ups:
                    task.after(*ups)
                tasks[c.id] = task

        description = cfg.description or (
            f"Conveyor pipeline {pipeline.name!r}: " + ", ".join(c.id for c in pipeline.components)
        )
        kfp_pipeline = dsl.pipeline(
            name=_kfp_pipeline_name(pipeline.name), description=description
        )(conveyor_pipeline)
        output = os.path.abspath(cfg.output)
        from conveyor.beam_utils.outputs import staged_output

        with staged_output(output, is_file=True) as staged:
            compiler.Compiler().compile(kfp_pipeline, staged)
        return output

    def _container_component(self, dsl, component_id: str):
        cfg = self.config
        tail = ["--", *cfg.beam_args] if cfg.beam_args else []

        def component(pipeline_root: str, run_id: str):
            return dsl.ContainerSpec(
                image=cfg.image,
                command=[cfg.conveyor],
                args=[
                    "component",
                    "run",
                    "--pipeline-path",
                    cfg.pipeline_path,
                    "--component",
                    component_id,
                    "--run-id",
                    run_id,
                    "--pipeline-root",
                    pipeline_root,
                    *tail,
                ],
            )

        component.__name__ = _kfp_name(component_id).replace("-", "_")
        component.__doc__ = f"Runs the Conveyor component {component_id!r}."
        return dsl.container_component(component)


def _kfp_pipeline_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "conveyor-pipeline"

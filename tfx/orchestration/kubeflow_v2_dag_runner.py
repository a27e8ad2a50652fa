"""TFX's ``KubeflowV2DagRunner`` and ``KubeflowV2DagRunnerConfig`` on Conveyor's
:class:`~conveyor.orchestration.KubeflowDagRunner`: a Kubeflow Pipelines (v2) spec.

The spec has one container task per component running ``conveyor component
run`` in ``default_image`` on the pipeline, which Conveyor pickles beside the
spec (``<spec stem>.pipeline.pkl``): build the image with that file at the same
path relative to the image's working folder, or give ``pipeline_path`` (the
pipeline file, or the pickle, as the container sees it).

Example::

    from conveyor import tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="registry.example/penguins:1"),
        output_filename="penguins.json")
    spec = runner.run(pipeline)   # the spec, as a dict; also written to penguins.json
"""

from __future__ import annotations

import json
import os
import tempfile

from conveyor.dsl import PipelineDefinitionError

__all__ = ["KubeflowV2DagRunner", "KubeflowV2DagRunnerConfig"]


def _refuse(where: str, argument: str, why: str) -> PipelineDefinitionError:
    return PipelineDefinitionError(f"{where}: {argument}: {why}")


class KubeflowV2DagRunnerConfig:
    """TFX's Kubeflow V2 config.

    Args (TFX's): ``default_image`` (one image; a per-component dict is
    refused), ``display_name`` (the pipeline's description in the spec);
    ``default_commands`` and ``use_pipeline_spec_2_1=True`` are refused.
    Conveyor's: ``pipeline_path`` (the pipeline in the container; default: the
    pickle written beside the spec, by its path relative to the current folder),
    ``conveyor`` (the executable in the image), ``beam_args``.
    """

    def __init__(
        self,
        display_name: str | None = None,
        default_image: str | None = None,
        default_commands: list[str] | None = None,
        use_pipeline_spec_2_1: bool = False,
        pipeline_path: str | None = None,
        conveyor: str = "conveyor",
        beam_args: list[str] | None = None,
        **kwargs,
    ):
        where = "KubeflowV2DagRunnerConfig"
        if kwargs:
            raise _refuse(where, ", ".join(sorted(kwargs)), "not supported")
        if default_image is not None and not isinstance(default_image, str):
            raise _refuse(where, "default_image", "one image for every component (a str)")
        if default_commands is not None:
            raise _refuse(
                where,
                "default_commands",
                "each task runs `conveyor component run`; give the executable as conveyor=",
            )
        if use_pipeline_spec_2_1:
            raise _refuse(where, "use_pipeline_spec_2_1", "the spec is what kfp's compiler writes")
        self.display_name = display_name
        self.default_image = default_image or "conveyor:latest"
        self.pipeline_path = pipeline_path
        self.conveyor = conveyor
        self.beam_args = list(beam_args or [])


class KubeflowV2DagRunner:
    """TFX's Kubeflow V2 runner: compiles the pipeline into a spec (it submits nothing).

    Args: ``config``, ``output_dir`` (default: the current folder),
    ``output_filename`` (default ``pipeline.json``, as TFX; ``.yaml`` works too).
    """

    def __init__(
        self,
        config: KubeflowV2DagRunnerConfig | None = None,
        output_dir: str | None = None,
        output_filename: str | None = None,
    ):
        self.config = config or KubeflowV2DagRunnerConfig()
        self.output_dir = output_dir
        self.output_filename = output_filename

    def output_path(self, pipeline) -> str:
        """Where the spec is written."""
        name = self.output_filename or "pipeline.json"
        return os.path.abspath(os.path.join(self.output_dir or os.getcwd(), name))

    def run(self, pipeline, parameter_values: dict | None = None, write_out: bool = True) -> dict:
        """Compiles the spec; writes it and the pickled pipeline (``write_out``; False writes
        nothing) and returns the spec as a dict.

        ``parameter_values`` (values for runtime parameters) is refused: the
        spec keeps their defaults; set them when submitting the run.
        """
        from conveyor.orchestration.loader import captured_by_loader, save_pipeline

        if captured_by_loader(pipeline):  # 'conveyor pipeline create' reading this file
            return None
        if parameter_values:
            raise _refuse(
                "KubeflowV2DagRunner.run",
                "parameter_values",
                "give runtime parameter values when the run is submitted",
            )
        output = self.output_path(pipeline)
        pipeline_path = self.config.pipeline_path
        if pipeline_path is None:
            pickle_path = os.path.splitext(output)[0] + ".pipeline.pkl"
            if write_out:
                save_pipeline(pipeline, pickle_path)
            pipeline_path = os.path.relpath(pickle_path)
        if write_out:
            return self._compile(pipeline, output, pipeline_path)
        # Nothing written beside the output: the spec is compiled aside and only returned.
        with tempfile.TemporaryDirectory(prefix="conveyor-kfp-") as tmp:
            return self._compile(
                pipeline, os.path.join(tmp, os.path.basename(output)), pipeline_path
            )

    def _compile(self, pipeline, target: str, pipeline_path: str) -> dict:
        from conveyor.orchestration.kubeflow import KubeflowDagConfig, KubeflowDagRunner

        cfg = KubeflowDagConfig(
            output=target,
            pipeline_path=pipeline_path,
            image=self.config.default_image,
            conveyor=self.config.conveyor,
            beam_args=self.config.beam_args,
            description=self.config.display_name,
        )
        written = KubeflowDagRunner(cfg).run(pipeline)
        with open(written) as f:
            if written.endswith(".json"):
                return json.load(f)
            import yaml

            return yaml.safe_load(f)

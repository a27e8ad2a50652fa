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

Conditions: a component that may be skipped (it was made in a ``Cond`` block,
or needs an output of one that may be) is a check task, ``conveyor component
check``, whose output (``true`` or ``false``; on ``false`` it records the
component SKIPPED) a ``dsl.If`` group reads: the component's task runs only in
that group, whose name shows the condition. Components after it depend on it
through ``dsl.OneOf`` of its task's state and the state of a small task of the
``dsl.Else`` group (Kubeflow lets nothing outside a condition depend on a task
inside it); ``conveyor component run`` then skips those that need its outputs.

Container components (``create_container_component``) run their command in
their own image, as a container task; Conveyor's image runs a ``prepare`` task
before it (skipped or cached: the command does not run; else the execution is
recorded RUNNING and the command's placeholders filled, each an output the
container task takes) and a ``publish`` task after it that records the outputs
(:mod:`conveyor.orchestration.container_steps`). The outputs are written under
the pipeline root, so the image's pods must see that storage too. A command
that fails fails the Kubeflow run; its execution stays RUNNING in ML Metadata.

The pipeline's runtime parameters are parameters of the Kubeflow pipeline (the
compiled pipeline function takes them, typed, with their defaults; one without
default is required), passed to every task as ``--runtime-parameter NAME=VALUE``.

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
import inspect
import os
import re
from dataclasses import dataclass, field

from conveyor.dsl import Pipeline
from conveyor.dsl.conditions import conditions_of
from conveyor.dsl.container_component import ContainerComponent
from conveyor.dsl.runtime import runtime_parameters_of

#: The name of the Kubeflow pipeline's parameter that sets the pipeline root.
ROOT_PARAMETER = "pipeline_root"
#: What a check task writes when its component runs (else ``false``).
RUNS = "true"
#: Inputs and outputs of Conveyor's own: a runtime parameter may not be named so.
_RESERVED = (ROOT_PARAMETER, "run_id")
_OWN_PREFIX = "conveyor_"


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
        """Writes the pipeline spec; returns its path (None, and nothing written, when a
        pipeline file is being loaded: :func:`~conveyor.orchestration.loader.captured_by_loader`)."""
        from conveyor.orchestration.loader import captured_by_loader

        if captured_by_loader(pipeline):
            return None
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
        params = runtime_parameters_of(pipeline)
        bad = [n for n in params if n in _RESERVED or n.startswith(_OWN_PREFIX)]
        if bad:
            raise ValueError(
                f"runtime parameter(s) {bad} clash with the Kubeflow pipeline's own inputs "
                f"({', '.join(_RESERVED)}, {_OWN_PREFIX}*): rename them"
            )
        plan = _Plan(pipeline)
        names = [_kfp_name(c.id) for c in pipeline.components]
        names += [
            _kfp_name(cid) + suffix for cid in plan.skippable for suffix in ("-check", "-skipped")
        ]
        names += [
            _kfp_name(cid) + suffix
            for cid in plan.containers
            for suffix in ("-prepare", "-publish")
        ]
        names += [_kfp_name(cid) + "-done" for cid in plan.containers]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ValueError(
                f"component ids map to the same Kubeflow component name(s) {clashes}; rename them"
            )
        ops = _Ops(dsl, cfg, params, plan)
        kfp_pipeline = dsl.pipeline(
            name=_kfp_pipeline_name(pipeline.name),
            description=cfg.description
            or (
                f"Conveyor pipeline {pipeline.name!r}: "
                + ", ".join(c.id for c in pipeline.components)
            ),
        )(_pipeline_function(dsl, pipeline, params, plan, ops))
        output = os.path.abspath(cfg.output)
        from conveyor.beam_utils.outputs import staged_output

        with staged_output(output, is_file=True) as staged:
            compiler.Compiler().compile(kfp_pipeline, staged)
        return output


class _Plan:
    """Which components may be skipped, and who waits for them through a state."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.skippable: list[str] = []
        for c in pipeline.components:  # topological order: producers first
            if conditions_of(c) or self.skipped_producers(c):
                self.skippable.append(c.id)
        #: Container components: a prepare task, the command in its image, a publish task.
        self.containers = [c.id for c in pipeline.components if isinstance(c, ContainerComponent)]
        #: Components whose last task is inside a condition group: others wait for their state.
        self.gated = self.skippable + [c for c in self.containers if c not in self.skippable]
        #: For each component, the gated components it waits for (by their state).
        self.after = {
            c.id: [u.id for u in c.upstream if u.id in self.gated] for c in pipeline.components
        }
        self.with_state = {u for ups in self.after.values() for u in ups}

    def skipped_producers(self, c) -> list[str]:
        """The skippable producers of the component's required inputs."""
        return sorted(
            {
                ch.producer.id
                for key, ch in c.inputs.items()
                if not c.INPUTS[key].optional
                and getattr(ch, "producer", None) is not None
                and ch.producer.id in self.skippable
            }
        )

    def condition_text(self, c) -> str:
        parts = [repr(p) for p in conditions_of(c)]
        ups = self.skipped_producers(c)
        if ups:
            parts.append(f"{', '.join(ups)} not skipped")
        return " and ".join(parts)


class _Ops:
    """The container components: each component's task, and a check and an Else task for each
    one that may be skipped."""

    def __init__(self, dsl, cfg: KubeflowDagConfig, params: dict, plan: _Plan):
        self.dsl, self.cfg, self.params, self.plan = dsl, cfg, params, plan
        self.run, self.check, self.skipped = {}, {}, {}
        self.prepare, self.container, self.publish = {}, {}, {}
        for c in plan.pipeline.components:
            if c.id in plan.containers:
                self._container_ops(c)
                continue
            gated = c.id in plan.skippable
            self.run[c.id] = self._conveyor(
                c.id, "run", after=[] if gated else plan.after[c.id], state=c.id in plan.with_state
            )
            if gated:
                self.check[c.id] = self._conveyor(c.id, "check", after=plan.after[c.id])
                self.skipped[c.id] = self._skipped(c.id)

    def _container_ops(self, c) -> None:
        """A container component's prepare task (Conveyor's image), its command (its own image),
        its publish task and the Else task that stands for it when it is done already."""
        dsl = self.dsl
        templated = [i for i, item in enumerate(c.COMMAND) if not isinstance(item, str)]
        self.prepare[c.id] = self._steps(c.id, "prepare", self.plan.after[c.id], templated)
        self.publish[c.id] = self._steps(c.id, "publish", [], [])
        names = {i: f"{_OWN_PREFIX}arg_{i}" for i in templated}

        def body(v: dict):
            command = [v[names[i]] if i in names else item for i, item in enumerate(c.COMMAND)]
            return dsl.ContainerSpec(image=c.IMAGE, command=command)

        doc = f"The container component {c.id!r}: its command in {c.IMAGE}."
        inputs = [(names[i], str) for i in templated]
        self.container[c.id] = _container(dsl, _kfp_name(c.id), doc, inputs, body)
        self.skipped[c.id] = self._skipped(c.id, suffix="-done", state="DONE")

    def _steps(self, component_id: str, step: str, after: list[str], templated: list[int]):
        """``python -m conveyor.orchestration.container_steps prepare|publish`` of one component."""
        cfg, dsl = self.cfg, self.dsl
        inputs = self._inputs(after)
        if step == "publish":
            inputs.append((f"{_OWN_PREFIX}execution", str))
            outputs = ["conveyor_state"]
        else:
            outputs = ["conveyor_decision", f"{_OWN_PREFIX}execution"]
            outputs += [f"{_OWN_PREFIX}arg_{i}" for i in templated]
        inputs += [(o, dsl.OutputPath(str)) for o in outputs]

        def body(v: dict):
            args = ["-m", "conveyor.orchestration.container_steps", step]
            args += ["--pipeline-path", cfg.pipeline_path, "--component", component_id]
            args += ["--run-id", v["run_id"], "--pipeline-root", v[ROOT_PARAMETER]]
            for name in sorted(self.params):
                args += ["--runtime-parameter", dsl.ConcatPlaceholder([f"{name}=", v[name]])]
            if step == "publish":
                args += ["--execution-id", v[f"{_OWN_PREFIX}execution"]]
                args += ["--state-file", v["conveyor_state"]]
            else:
                args += ["--decision-file", v["conveyor_decision"]]
                args += ["--execution-file", v[f"{_OWN_PREFIX}execution"]]
                for i in templated:
                    args += [
                        "--arg-file",
                        dsl.ConcatPlaceholder([f"{i}=", v[f"{_OWN_PREFIX}arg_{i}"]]),
                    ]
            return dsl.ContainerSpec(image=cfg.image, command=["python"], args=args)

        doc = (
            f"Conveyor's step before the container component {component_id!r}: whether its command "
            f"runs ({RUNS}) and its filled placeholders"
            if step == "prepare"
            else f"Conveyor's step after the container component {component_id!r}: records its outputs"
        )
        return _container(dsl, f"{_kfp_name(component_id)}-{step}", doc, inputs, body)

    def _inputs(self, after: list[str]) -> list[tuple[str, object]]:
        inputs = [(ROOT_PARAMETER, str), ("run_id", str)]
        inputs += [(name, p.ptype) for name, p in sorted(self.params.items())]
        return inputs + [(f"{_OWN_PREFIX}after_{i}", str) for i in range(len(after))]

    def _conveyor(self, component_id: str, action: str, after: list[str], state: bool = False):
        """``conveyor component run`` (or ``check``) of one component, in the image."""
        cfg, dsl = self.cfg, self.dsl
        inputs = self._inputs(after)
        output = "conveyor_decision" if action == "check" else "conveyor_state" if state else None
        if output:
            inputs.append((output, dsl.OutputPath(str)))
        tail = ["--", *cfg.beam_args] if cfg.beam_args and action == "run" else []

        def body(v: dict):
            args = ["component", action, "--pipeline-path", cfg.pipeline_path]
            args += ["--component", component_id, "--run-id", v["run_id"]]
            args += ["--pipeline-root", v[ROOT_PARAMETER]]
            for name in sorted(self.params):
                args += ["--runtime-parameter", dsl.ConcatPlaceholder([f"{name}=", v[name]])]
            if output:
                flag = "--decision-file" if action == "check" else "--state-file"
                args += [flag, v[output]]
            return dsl.ContainerSpec(image=cfg.image, command=[cfg.conveyor], args=args + tail)

        suffix = "-check" if action == "check" else ""
        doc = (
            f"Whether the Conveyor component {component_id!r} runs: writes {RUNS} or false "
            "(and records it SKIPPED)."
            if action == "check"
            else f"Runs the Conveyor component {component_id!r}."
        )
        return _container(dsl, _kfp_name(component_id) + suffix, doc, inputs, body)

    def _skipped(self, component_id: str, suffix: str = "-skipped", state: str = "SKIPPED"):
        """The Else task: gives the state SKIPPED to the components after it (its check recorded
        it); DONE for a container component whose prepare task found it skipped or cached."""
        cfg, dsl = self.cfg, self.dsl

        def body(v: dict):
            script = f'printf {state} > "$0"'
            return dsl.ContainerSpec(
                image=cfg.image, command=["sh", "-c", script, v["conveyor_state"]]
            )

        doc = (
            f"The Conveyor component {component_id!r} was skipped."
            if state == "SKIPPED"
            else f"The container component {component_id!r} was done already (cached or skipped)."
        )
        inputs = [("conveyor_state", dsl.OutputPath(str))]
        return _container(dsl, _kfp_name(component_id) + suffix, doc, inputs, body)


def _container(dsl, name: str, doc: str, inputs: list[tuple[str, object]], body):
    """A kfp container component with these typed inputs (kfp reads the function's signature)."""
    names = [n for n, _ in inputs]

    def component(*args):
        return body(dict(zip(names, args)))

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    component.__signature__ = inspect.Signature(
        [inspect.Parameter(n, kind, annotation=t) for n, t in inputs]
    )
    component.__name__ = name.replace("-", "_")
    component.__doc__ = doc
    return dsl.container_component(component)


def _pipeline_function(dsl, pipeline: Pipeline, params: dict, plan: _Plan, ops: _Ops):
    """The kfp pipeline function: its parameters are the root and the runtime parameters."""
    required = [n for n, p in sorted(params.items()) if p.default is None]
    optional = [n for n, p in sorted(params.items()) if p.default is not None]
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = [inspect.Parameter(n, kind, annotation=params[n].ptype) for n in required]
    signature.append(inspect.Parameter(ROOT_PARAMETER, kind, annotation=str, default=pipeline.root))
    signature += [
        inspect.Parameter(n, kind, annotation=params[n].ptype, default=params[n].default)
        for n in optional
    ]
    names = [p.name for p in signature]

    def conveyor_pipeline(*args):
        values = dict(zip(names, args))
        common = {"run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER, **values}
        tasks, states = {}, {}
        for c in pipeline.components:
            after = {f"{_OWN_PREFIX}after_{i}": states[u] for i, u in enumerate(plan.after[c.id])}
            plain = [tasks[u.id] for u in c.upstream if u.id not in plan.gated]
            if c.id in plan.containers:
                states[c.id] = _container_tasks(dsl, c, ops, common, after, plain)
                continue
            if c.id not in plan.skippable:
                tasks[c.id] = _settle(ops.run[c.id](**common, **after), c.id, plain)
                continue
            gate = _settle(ops.check[c.id](**common, **after), f"{c.id}: check", plain)
            condition = gate.outputs["conveyor_decision"] == RUNS
            with dsl.If(condition, name=f"{c.id} if {plan.condition_text(c)}"):
                task = tasks[c.id] = _settle(ops.run[c.id](**common), c.id, [])
            if c.id in plan.with_state:
                with dsl.Else(name=f"{c.id} skipped"):
                    skip = _settle(ops.skipped[c.id](), f"{c.id}: skipped", [])
                states[c.id] = dsl.OneOf(
                    task.outputs["conveyor_state"], skip.outputs["conveyor_state"]
                )

    conveyor_pipeline.__signature__ = inspect.Signature(signature)
    # kfp reads parameter descriptions from the function's docstring (its Args section).
    described = [(n, " ".join((params[n].description or "").split())) for n in names if n in params]
    described = [(n, d) for n, d in described if d]
    conveyor_pipeline.__doc__ = f"Conveyor pipeline {pipeline.name!r}." + (
        "\n\nArgs:\n" + "".join(f"    {n}: {d}\n" for n, d in described) if described else ""
    )
    return conveyor_pipeline


def _container_tasks(dsl, c, ops: _Ops, common: dict, after: dict, plain: list):
    """A container component's tasks: prepare, then (if it runs) the command in its image and
    publish; returns the state the components after it wait for."""
    prep = _settle(ops.prepare[c.id](**common, **after), f"{c.id}: prepare", plain)
    args = {n: prep.outputs[n] for n in prep.outputs if n.startswith(f"{_OWN_PREFIX}arg_")}
    with dsl.If(prep.outputs["conveyor_decision"] == RUNS, name=f"{c.id} runs in {c.IMAGE}"):
        command = _settle(ops.container[c.id](**args), c.id, [])
        execution = {f"{_OWN_PREFIX}execution": prep.outputs[f"{_OWN_PREFIX}execution"]}
        publish = _settle(ops.publish[c.id](**common, **execution), f"{c.id}: publish", [command])
    with dsl.Else(name=f"{c.id} done already"):
        done = _settle(ops.skipped[c.id](), f"{c.id}: done already", [])
    return dsl.OneOf(publish.outputs["conveyor_state"], done.outputs["conveyor_state"])


def _settle(task, display_name: str, after: list):
    task.set_display_name(display_name)
    # Conveyor caches through its own metadata; the run id differs per run anyway.
    task.set_caching_options(False)
    if after:
        task.after(*after)
    return task


def _kfp_pipeline_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "conveyor-pipeline"

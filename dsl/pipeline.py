"""A pipeline: a named DAG of components with a root directory and a metadata store.

:class:`Pipeline` checks the wiring when it is built: a cycle, an input whose
producer is not in the pipeline, a type mismatch or a duplicate id is an error
then, not at run time.

Example::

    from conveyor.dsl import Pipeline
    from conveyor.orchestration import LocalDagRunner
    from conveyor.components import ExampleGen, StatisticsGen

    gen = ExampleGen(input_base="data/flights.csv")
    stats = StatisticsGen(examples=gen.outputs["examples"])
    pipeline = Pipeline("flights", root="out/pipeline", components=[gen, stats])
    LocalDagRunner().run(pipeline)
"""

from __future__ import annotations

import os

from conveyor.dsl.component import Component, PipelineDefinitionError

__all__ = ["Pipeline"]


class Pipeline:
    """A named DAG of components with a root directory and an ML Metadata store.

    Args:
      name: the pipeline's name (its ML Metadata context).
      root: where artifacts go: ``<root>/<component_id>/<output_key>/<execution_id>/``.
      components: the components; every producer of an input must be among them.
      beam_pipeline_args: Beam flags for every component.
      enable_cache: reuse outputs of an identical earlier execution.
      metadata_connection_config: an ML Metadata ``ConnectionConfig`` (default:
        SQLite at ``<root>/metadata.sqlite``); a MySQL or MariaDB server that several
        pipelines and teams share:
        ``conveyor.orchestration.metadata.mysql_config(host, port, database, user, password)``.
        It travels with the pipeline (pickled for component processes and Beam steps),
        password included.
    """

    def __init__(
        self,
        name: str,
        root: str,
        components: list[Component],
        beam_pipeline_args: list[str] | None = None,
        enable_cache: bool = True,
        metadata_connection_config=None,
    ):
        if not name or any(c in name for c in "/\\ "):
            raise PipelineDefinitionError(
                f"pipeline name {name!r} must be non-empty, without '/' or spaces"
            )
        self.name = name
        self.root = os.path.abspath(root) if "://" not in root else root
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.enable_cache = enable_cache
        self.metadata_connection_config = metadata_connection_config
        self.components = self._ordered(components)

    @property
    def metadata_path(self) -> str:
        """The default SQLite ML Metadata store: ``<root>/metadata.sqlite``."""
        return os.path.join(self.root, "metadata.sqlite")

    def component(self, component_id: str) -> Component:
        """The component with this id; KeyError naming the pipeline's ids if none."""
        for c in self.components:
            if c.id == component_id:
                return c
        raise KeyError(
            f"pipeline {self.name!r} has no component {component_id!r}; "
            f"components: {[c.id for c in self.components]}"
        )

    @staticmethod
    def _ordered(components: list[Component]) -> list[Component]:
        ids = [c.id for c in components]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise PipelineDefinitionError(
                f"duplicate component id(s) {dup}: pass id=... or use .with_id(...) to tell "
                "them apart"
            )
        members = {id(c) for c in components}
        for c in components:
            for up in c.upstream:
                if id(up) not in members:
                    keys = [k for k, ch in c.inputs.items() if ch.producer is up]
                    what = f"input {keys[0]!r}" if keys else "upstream dependency"
                    raise PipelineDefinitionError(
                        f"{c.id}: {what} comes from {up.id!r}, which is not in the pipeline's components"
                    )
        # Kahn's algorithm, keeping the given order among ready components.
        remaining = list(components)
        done: set[int] = set()
        order = []
        while remaining:
            ready = [c for c in remaining if all(id(u) in done for u in c.upstream)]
            if not ready:
                cycle = " -> ".join(c.id for c in remaining)
                raise PipelineDefinitionError(f"the pipeline has a cycle among: {cycle}")
            for c in ready:
                order.append(c)
                done.add(id(c))
                remaining.remove(c)
        return order

    def downstream_of(self, component: Component) -> list[Component]:
        """The components that wait for ``component``."""
        return [c for c in self.components if any(u is component for u in c.upstream)]

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, components={[c.id for c in self.components]})"

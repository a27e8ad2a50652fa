"""The Importer: a file or folder from outside the pipeline, registered as an artifact.

Example::

    from conveyor.dsl import Importer

    schema = Importer(source_uri="schemas/flights", artifact_type="Schema").with_id("import_schema")
    validator = ExampleValidator(statistics=stats.outputs["statistics"],
                                 schema=schema.outputs["result"])
"""

from __future__ import annotations

import os

from conveyor.dsl.artifacts import Artifact
from conveyor.dsl.component import Component, PipelineDefinitionError, type_name_of

__all__ = ["IMPORT_RESULT_KEY", "Importer"]

#: The Importer's output key (TFX's).
IMPORT_RESULT_KEY = "result"


class Importer(Component):
    """Registers ``source_uri`` in ML Metadata as an artifact of ``artifact_type``; no copy is made.

    Args:
      source_uri: the file or folder (a local path is made absolute; any Beam
        filesystem's URI is taken as it is).
      artifact_type: a type name (``"Schema"``) or a class with a ``TYPE_NAME``.
      reimport: False (the default) reuses the artifact already recorded with
        that uri and type (and the given properties), so what reads it stays
        cached; True records a new artifact every run.
      properties, custom_properties: recorded with the artifact (ints, floats
        and strings keep their types).
      output_key: the output's key (default ``result``, TFX's).

    ``outputs["result"]`` is its channel. Each run records an execution of type
    ``conveyor.Importer`` with the artifact as its output; it is never cached.
    """

    def __init__(
        self,
        source_uri: str,
        artifact_type,
        reimport: bool = False,
        properties: dict | None = None,
        custom_properties: dict | None = None,
        output_key: str | None = None,
    ):
        if not source_uri or not isinstance(source_uri, str):
            raise PipelineDefinitionError(
                f"Importer: source_uri must be a path, not {source_uri!r}"
            )
        type_name = type_name_of(artifact_type)
        self.source_uri = source_uri if "://" in source_uri else os.path.abspath(source_uri)
        self.artifact_type = artifact_type
        self.type_name = type_name
        self.reimport = bool(reimport)
        self.output_key = output_key or IMPORT_RESULT_KEY
        merged = dict(properties or {})
        merged.update(custom_properties or {})
        self.OUTPUTS = {self.output_key: type_name}
        super().__init__()  # id, outputs and what every node has
        self.parameters = {
            "source_uri": self.source_uri,
            "artifact_type": type_name,
            "reimport": self.reimport,
            "properties": dict(properties or {}),
            "custom_properties": dict(custom_properties or {}),
        }
        self.artifact_properties = merged

    def artifact(self) -> Artifact:
        """The artifact to record (not yet recorded: no id)."""
        return Artifact(self.type_name, self.source_uri, None, dict(self.artifact_properties))

    def execute(self, ctx):
        raise TypeError(f"{self.id}: an Importer runs no code; the launcher records its artifact")

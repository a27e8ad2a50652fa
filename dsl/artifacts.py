"""Artifact types and the artifacts a pipeline's components pass to each other.

An artifact is a directory (its ``uri``) with a type, recorded in ML Metadata.
The types carry TFX's names so lineage reads the same way in both systems.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The artifact types components produce and consume.
ARTIFACT_TYPES = (
    "Examples",
    "ExampleStatistics",
    "Schema",
    "ExampleAnomalies",
    "TransformGraph",
    "TransformCache",
    "Model",
    "ModelRun",
    "ModelEvaluation",
    "ModelBlessing",
    "InferenceResult",
    "InfraBlessing",
    "PushedModel",
)


def check_type(name: str) -> str:
    """Returns ``name`` if it is a known artifact type; raises otherwise."""
    if name not in ARTIFACT_TYPES:
        raise ValueError(f"unknown artifact type {name!r}; known: {', '.join(ARTIFACT_TYPES)}")
    return name


@dataclass
class Artifact:
    """One artifact: its type, where it lives, and its ML Metadata id once recorded.

    Attributes:
      type_name: one of :data:`ARTIFACT_TYPES`.
      uri: the artifact's directory.
      id: the ML Metadata artifact id (None until recorded).
      properties: small values recorded with it (split names, row counts...).
    """

    type_name: str
    uri: str
    id: int | None = None
    properties: dict = field(default_factory=dict)

    def split_uri(self, split: str) -> str:
        """``<uri>/Split-<split>``, TFX's folder for one split."""
        return f"{self.uri}/Split-{split}"

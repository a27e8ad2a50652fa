"""TFX's ``tfx.v1.extensions``: the Google Cloud components, each refused when made (Conveyor
runs neither BigQuery nor Vertex AI), naming the argument that asks for them.

Example::

    from conveyor import tfx

    tfx.extensions.google_cloud_big_query.BigQueryExampleGen(query="SELECT 1")
    # PipelineDefinitionError: BigQueryExampleGen: query: BigQuery is not supported ...
"""

import importlib

_SUBMODULES = ("google_cloud_ai_platform", "google_cloud_big_query")

__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""``conveyor ui``: pipelines, runs, artifacts and lineage in a browser, from ML Metadata.

A Starlette application (:func:`create_app`) served by uvicorn; it imports neither
TensorFlow nor Beam. Pages: ``/`` (pipelines), ``/pipelines/<name>`` (runs),
``/pipelines/<name>/runs/<run>`` (the DAG), ``.../nodes/<component>`` (a node),
``/pipelines/<name>/artifacts/<id>`` (an artifact's view) and ``.../lineage``. The JSON
API is under ``/api`` (its OpenAPI document: ``/api/openapi.json``).
"""

from conveyor.orchestration.ui.app import create_app

__all__ = ["create_app"]

"""TFX's ``tfx.v1.extensions.google_cloud_big_query``: BigQuery is not part of Conveyor.

``BigQueryExampleGen(query=...)`` and the BigQuery ``Pusher`` are definition
errors naming their argument; export the table to files (CSV, Parquet,
TFRecord) and read them with ``tfx.components.CsvExampleGen`` or
``conveyor.components.ExampleGen``.

Example::

    from conveyor import tfx

    tfx.extensions.google_cloud_big_query.BigQueryExampleGen(query="SELECT ...")
    # PipelineDefinitionError: BigQueryExampleGen: query: ...
"""

from conveyor.tfx.extensions._refused import refused_component

__all__ = ["BigQueryExampleGen", "Pusher"]

_WHY = (
    "BigQuery is not supported by Conveyor; export the table to files and read them with "
    "CsvExampleGen (or conveyor.components.ExampleGen for Parquet and TFRecord)"
)

BigQueryExampleGen = refused_component("BigQueryExampleGen", "query", _WHY)
Pusher = refused_component("Pusher", "custom_config", "pushing to BigQuery ML: " + _WHY)

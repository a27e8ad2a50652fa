"""``InferSchema``: schema inference as a Beam PTransform.

Statistics are small (one proto per dataset), so the transform is a ``Map``
over a PCollection of ``DatasetFeatureStatisticsList``: it composes with
``GenerateStatistics`` in one pipeline and works per window as well.

Example::

    stats = batches | GenerateStatistics()
    schema = stats | InferSchema(InferOptions(max_string_domain_size=20))
"""

from __future__ import annotations

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from conveyor.components.schema_gen.schema_inference import InferOptions, infer_schema

# A statistics list, or one dataset of it.
_STATISTICS = statistics_pb2.DatasetFeatureStatisticsList | statistics_pb2.DatasetFeatureStatistics


@beam.typehints.with_input_types(_STATISTICS)
@beam.typehints.with_output_types(schema_pb2.Schema)
class InferSchema(beam.PTransform):
    """PCollection of ``DatasetFeatureStatisticsList`` -> PCollection of ``Schema``, one per element.

    Args:
      options: :class:`InferOptions` (TFDV's defaults when omitted).
    """

    def __init__(self, options: InferOptions | None = None):
        super().__init__()
        self._options = options or InferOptions()

    def expand(self, statistics):
        """One ``Schema`` per statistics element."""
        return statistics | "InferSchema" >> beam.Map(infer_schema, self._options)

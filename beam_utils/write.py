"""Writing examples: sharded TFRecord files of ``tf.Example``, as composable Beam PTransforms.

:class:`WriteExamples` writes RecordBatches as sharded gzip TFRecords of
``tf.Example`` in TFX's Examples layout; :class:`WriteRecordLists` writes lists of
serialized records (any kind) as sharded TFRecord files.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.read import ReadExamples
    from conveyor.beam_utils.write import WriteExamples

    with beam.Pipeline() as p:
        read = p | ReadExamples("flights-*.csv", format="csv")
        read.examples | WriteExamples("out/examples", split="train")
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.io import filebasedsink
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from conveyor.beam_utils import files, tfrecord_io


class _RecordListSink(filebasedsink.FileBasedSink):
    """A TFRecord sink whose elements are lists of records: one write per list."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str, num_shards: int):
        super().__init__(
            file_path_prefix=file_path_prefix,
            coder=None,
            file_name_suffix=file_name_suffix,
            num_shards=num_shards,
            mime_type="application/octet-stream",
            compression_type=CompressionTypes.AUTO,  # gzip when the suffix is .gz
        )

    def write_record(self, file_handle, value):
        file_handle.write(tfrecord_io.frame(value))


@beam.typehints.with_input_types(list[bytes])
@beam.typehints.with_output_types(str)
class WriteRecordLists(beam.PTransform):
    """Writes a PCollection of lists of serialized records as sharded TFRecord files.

    A list per element (say, one encoded RecordBatch) keeps Beam's per-element
    cost off each record. Files are ``<prefix>-SSSSS-of-NNNNN<suffix>``, gzip when
    the suffix ends in ``.gz``. The output is the names of the files written.
    """

    def __init__(self, file_path_prefix: str, file_name_suffix: str = ".gz", num_shards: int = 0):
        super().__init__()
        self.file_path_prefix = file_path_prefix
        self.file_name_suffix = file_name_suffix
        self.num_shards = num_shards

    def expand(self, record_lists):
        return record_lists | beam.io.Write(
            _RecordListSink(self.file_path_prefix, self.file_name_suffix, self.num_shards)
        )


class _EncodeExamplesFn(beam.DoFn):
    """RecordBatch -> a list of serialized tf.Examples (tfx-bsl's C++ encoder)."""

    def setup(self):
        from tfx_bsl.coders import example_coder

        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, batch: pa.RecordBatch):
        if batch.num_rows:
            yield self._encoder.encode(batch)


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(str)
class WriteExamples(beam.PTransform):
    """Writes RecordBatches as sharded gzip TFRecords of ``tf.Example``.

    Files are ``<output_dir>/Split-<split>/data_tfrecord-SSSSS-of-NNNNN.gz`` (TFX's
    Examples layout), or ``<output_dir>/data_tfrecord-...`` when ``split`` is None.

    Args:
      output_dir: directory on any Beam filesystem.
      split: the split name, or None.
      num_shards: files to write; 0 lets the runner choose.
      file_prefix: the file name before the shard numbers.

    Returns:
      a PCollection of the names of the files written.
    """

    def __init__(
        self,
        output_dir: str,
        split: str | None = None,
        num_shards: int = 0,
        file_prefix: str = "data_tfrecord",
    ):
        super().__init__()
        self.output_dir = output_dir
        self.split = split
        self.num_shards = num_shards
        self.file_prefix = file_prefix

    def expand(self, batches):
        folder = self.output_dir
        if self.split is not None:
            folder = FileSystems.join(folder, files.SPLIT_PREFIX + self.split)
        return (
            batches
            | "Encode" >> beam.ParDo(_EncodeExamplesFn())
            | "Write"
            >> WriteRecordLists(FileSystems.join(folder, self.file_prefix), ".gz", self.num_shards)
        )

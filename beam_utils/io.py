"""Reading and writing examples as composable Beam PTransforms: the public names in one place.

The code lives in modules of one job each; this module gathers their public
names, so ``from conveyor.beam_utils.io import ReadExamples`` keeps working:

* :mod:`conveyor.beam_utils.read`: :class:`ReadExamples` (CSV, TFRecord or
  Parquet files into canonical ``pyarrow.RecordBatch``, plus rejected rows),
  :class:`ReadResult`, :func:`read_examples_dir`;
* :mod:`conveyor.beam_utils.read_plan`: how files are cut into pieces for
  several workers (:func:`split_size`, :data:`WHOLE_FILES`);
* :mod:`conveyor.beam_utils.file_readers`: opening files and the DoFns that read
  one :class:`ReadTask` (a file or a piece of one);
* :mod:`conveyor.beam_utils.write`: :class:`WriteExamples` (sharded gzip
  TFRecords of ``tf.Example`` in TFX's layout), :class:`WriteRecordLists`;
* :mod:`conveyor.beam_utils.split`: :class:`SplitExamples` (named splits by a
  deterministic hash of each row), :func:`parse_splits`.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.io import ReadExamples, WriteExamples

    with beam.Pipeline() as p:
        read = p | ReadExamples("flights-*.csv", format="csv")
        read.examples | WriteExamples("out/examples", split="train")
        read.rejected | beam.Map(print)
"""

from conveyor.beam_utils.file_readers import METRICS_NAMESPACE, ReadTask, local_copy, open_text
from conveyor.beam_utils.read import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLE_SIZE,
    ReadExamples,
    ReadResult,
    read_examples_dir,
)
from conveyor.beam_utils.read_plan import MAX_SPLIT_BYTES, MIN_SPLIT_BYTES, WHOLE_FILES, split_size
from conveyor.beam_utils.split import SplitExamples, parse_splits
from conveyor.beam_utils.write import WriteExamples, WriteRecordLists

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SAMPLE_SIZE",
    "MAX_SPLIT_BYTES",
    "METRICS_NAMESPACE",
    "MIN_SPLIT_BYTES",
    "WHOLE_FILES",
    "ReadExamples",
    "ReadResult",
    "ReadTask",
    "SplitExamples",
    "WriteExamples",
    "WriteRecordLists",
    "local_copy",
    "open_text",
    "parse_splits",
    "read_examples_dir",
    "split_size",
]

"""Running ExampleGen: one Beam pipeline of :class:`GenerateExamples` over the inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from conveyor.beam_utils.io import ReadExamples
from conveyor.dsl import layout


def run_example_gen(
    examples: Mapping[str, ReadExamples],
    output_dir: str,
    *,
    splits: Mapping[str, int] | None = None,
    hash_columns: Sequence[str] | None = None,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Runs ExampleGen as a Beam pipeline; returns the summary it writes to ``output_dir``.

    Args:
      examples: ``{split: ReadExamples}``. One input (``{None: ReadExamples("flights.csv")}``;
        its key is not used) is split by row hash in the proportions of ``splits``
        (default :data:`~conveyor.components.example_gen.transform.DEFAULT_SPLITS`).
        Several inputs are splits already, each written as the split of its key;
        then ``splits`` must be None.
      output_dir: the Examples directory to write (``Split-<name>/``, ``rejected/``,
        ``summary.json``).
      splits: ``{split: weight}`` for one input.
      hash_columns: columns that decide a row's split (one input); None hashes the whole row.
      beam_args: Beam pipeline flags.

    Returns:
      the summary (see :class:`~conveyor.components.example_gen.transform.GenerateExamples`).

    Raises:
      UsageError: ``splits`` with several inputs, an unknown hash column.
      InputError: an input that cannot be read, inputs whose feature types differ.

    Example::

        summary = run_example_gen({None: ReadExamples("flights.csv")}, "out/examples",
                                  splits={"train": 2, "eval": 1})
    """
    import apache_beam as beam

    from conveyor.beam_utils import files
    from conveyor.beam_utils.options import pipeline_options
    from conveyor.components.example_gen.transform import GenerateExamples

    generate = GenerateExamples(examples, output_dir, splits, hash_columns)
    generate.arrow_schema  # infer now: a bad input fails before the pipeline starts
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        _ = p | generate
    summary = files.read_summary(output_dir)
    if summary is None:
        raise RuntimeError(
            f"ExampleGen finished without writing {output_dir}/{layout.SUMMARY_FILE}"
        )
    return summary

"""ExampleGen: ingest CSV, TFRecord or Parquet into split gzip TFRecord Examples.

One input is hash-split (``{"train": 2, "eval": 1}`` by default); several
inputs, keyed by split name, are written as the splits they are.

The :class:`ExampleGen` node takes TFX's inputs: ``input_base`` (a file, glob
or folder), ``input_config`` (pre-split patterns), ``output_config`` (the hash
split), ``range_config`` (the spans to read), with ``{SPAN}``, ``{VERSION}``
and ``{YYYY}``/``{MM}``/``{DD}`` placeholders in the patterns; a date's span is
:func:`date_to_span_number`.

Example::

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.example_gen import run_example_gen

    summary = run_example_gen({None: ReadExamples("flights.csv")}, "out/examples",
                              splits={"train": 2, "eval": 1})
    print(summary["splits"])   # {'train': 224718, 'eval': 112058}

    gen = ExampleGen(input_base="data", input_config={"splits": [
        {"name": "train", "pattern": "span-{SPAN}/train/*"},
        {"name": "eval", "pattern": "span-{SPAN}/eval/*"}]})   # the latest span

Names are imported on first use, so the CLI can load ``example_gen.cli`` without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_SPLITS": "transform",
    "GenerateExamples": "transform",
    "ExampleGen": "node",
    "date_to_span_number": "spans",
    "run_example_gen": "component",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

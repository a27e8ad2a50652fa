"""ExampleGen: ingest CSV, TFRecord or Parquet into hash-split gzip TFRecord Examples.

Example::

    from conveyor.components.example_gen import run_example_gen
    summary = run_example_gen("flights.csv", "out/examples", splits={"train": 2, "eval": 1})
    print(summary["splits"])   # {'train': 224718, 'eval': 112058}

Names are imported on first use, so the CLI can load ``example_gen.cli`` without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {"GenerateExamples": "component", "run_example_gen": "component", "DEFAULT_SPLITS": "component"}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

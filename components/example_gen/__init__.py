"""ExampleGen: ingest CSV, TFRecord or Parquet into hash-split gzip TFRecord Examples.

Example::

    from conveyor.components.example_gen import run_example_gen
    summary = run_example_gen("flights.csv", "out/examples", splits={"train": 2, "eval": 1})
    print(summary["splits"])   # {'train': 224718, 'eval': 112058}

Names are imported on first use, so the CLI can load ``example_gen.cli`` without Beam.
"""

_EXPORTS = {"GenerateExamples", "run_example_gen", "DEFAULT_SPLITS"}


def __getattr__(name):
    if name in _EXPORTS:
        from conveyor.components.example_gen import component

        return getattr(component, name)
    raise AttributeError(name)

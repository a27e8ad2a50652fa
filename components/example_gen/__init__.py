"""ExampleGen: ingest CSV, TFRecord or Parquet into hash-split gzip TFRecord Examples.

Example::

    from conveyor.components.example_gen import run_example_gen
    summary = run_example_gen("flights.csv", "out/examples", splits={"train": 2, "eval": 1})
    print(summary["splits"])   # {'train': 224718, 'eval': 112058}
"""

from conveyor.components.example_gen.component import (  # noqa: F401
    DEFAULT_SPLITS,
    ExampleGen,
    run_example_gen,
)

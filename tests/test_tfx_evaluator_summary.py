"""The Evaluation artifact's ``overall`` property keeps every metric of the overall slice
(TFX module files' models report SparseCategoricalAccuracy, loss, ... not only AUC)."""

from conveyor.components.evaluation.node import overall_summary


def test_overall_summary_keeps_every_metric_of_the_overall_slice():
    report = {
        "metrics": [
            {
                "slice": {},
                "metrics": {
                    "sparse_categorical_accuracy": 0.97,
                    "example_count": 342,
                    "loss": 0.11,
                    "auc": 0.99,
                    "binary_accuracy": 0.95,
                    "weighted_example_count": 342.0,
                },
            },
            {"slice": {"island": "Dream"}, "metrics": {"example_count": 124}},
        ]
    }
    got = overall_summary(report)
    assert got == report["metrics"][0]["metrics"]
    assert list(got) == sorted(got)  # a stable property value

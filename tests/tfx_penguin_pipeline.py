"""The penguin-species Keras pipeline, a pipeline file in TFX's style: ``from conveyor import tfx``.

CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator; a
SpanRangeStrategy resolver (the latest span) -> Transform -> Tuner -> Trainer
(the Tuner's best hyperparameters); a LatestBlessedModelStrategy resolver for
the baseline; the Evaluator on the model's ``transform_features`` signature
(label ``species_xf``) against that baseline; the InfraValidator; a Python
function component (``CheckBlessings``) reading both blessings and returning
``blessed``, which a ``Cond`` reads to gate the Pusher and a container
component (``Report``, ``sh -c``) receives as a parameter.

The module file is ``tfx_modules/penguin_acceptance_keras.py``. Run it as a
script; the folders come from the environment (``PENGUIN_DATA``,
``PENGUIN_HOME``), as a TFX example takes them from ``$HOME``; ``PENGUIN_STEPS``
sets the training steps (small in tests).
"""

import os

import tensorflow_model_analysis as tfma

from conveyor import tfx

_pipeline_name = "penguin_acceptance"
_here = os.path.dirname(os.path.abspath(__file__))
_module_file = os.path.join(_here, "tfx_modules", "penguin_acceptance_keras.py")
_data_root = os.environ.get("PENGUIN_DATA", os.path.join(os.environ["HOME"], "penguin", "data"))
_tfx_root = os.environ.get("PENGUIN_HOME", os.path.join(os.environ["HOME"], "penguin", "tfx"))
_pipeline_root = os.path.join(_tfx_root, "pipelines", _pipeline_name)
_metadata_path = os.path.join(_tfx_root, "metadata", _pipeline_name, "metadata.db")
_serving_model_dir = os.path.join(_tfx_root, "serving_model", _pipeline_name)
_train_steps = int(os.environ.get("PENGUIN_STEPS", "100"))

# TFX's Beam flags for the local runner: the multi-processing direct runner, one worker per CPU.
_beam_pipeline_args = [
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
]

Standard = tfx.types.standard_artifacts
Parameter = tfx.dsl.components.Parameter
InputArtifact = tfx.dsl.components.InputArtifact


@tfx.dsl.components.component
def CheckBlessings(  # noqa: N802 (a component class, named as TFX names them)
    model_blessing: InputArtifact[Standard.ModelBlessing],
    infra_blessing: InputArtifact[Standard.InfraBlessing],
    required: Parameter[int] = 1,
) -> tfx.dsl.components.OutputDict(blessed=int, has_baseline=int):
    """``blessed`` is 1 when the Evaluator and the InfraValidator both blessed the model
    (``required=0`` always passes); ``has_baseline`` is 1 when the Evaluator had a baseline."""
    evaluated = model_blessing.get_int_custom_property("blessed") == 1
    served = infra_blessing.get_int_custom_property("blessed") == 1
    return {
        "blessed": int((evaluated and served) or not required),
        "has_baseline": int(model_blessing.has_custom_property("baseline_model")),
    }


Report = tfx.dsl.experimental.create_container_component(
    name="Report",
    image="busybox:1.36",
    command=[
        "sh",
        "-c",
        'printf "blessed=%s splits=%s\\n" "$1" "$(ls "$2" | tr "\\n" " ")" > "$3"',
        "sh",
        tfx.dsl.placeholders.InputValuePlaceholder("blessed"),
        tfx.dsl.placeholders.InputUriPlaceholder("examples"),
        tfx.dsl.placeholders.OutputUriPlaceholder("report"),
    ],
    inputs={"examples": Standard.Examples},
    outputs={"report": Standard.String},
    parameters={"blessed": int},
)


def _eval_config(accuracy_threshold: float) -> tfma.EvalConfig:
    """Accuracy on ``species_xf`` from the model's ``transform_features``; no regression."""
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key="species_xf",
                preprocessing_function_names=["transform_features"],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": accuracy_threshold}
                            ),
                            change_threshold=tfma.GenericChangeThreshold(
                                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                absolute={"value": -1e-10},
                            ),
                        ),
                    )
                ]
            )
        ],
    )


def _create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    module_file: str,
    serving_model_dir: str,
    metadata_path: str,
    beam_pipeline_args: list,
    train_steps: int = 100,
    accuracy_threshold: float = 0.3,
) -> tfx.dsl.Pipeline:
    """The penguin pipeline, trained for ``train_steps`` steps (the Tuner's trials for a tenth)."""
    example_gen = tfx.components.CsvExampleGen(input_base=data_root)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    span_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={
            "range_config": tfx.proto.RangeConfig(rolling_range=tfx.proto.RollingRange(num_spans=1))
        },
        examples=tfx.dsl.Channel(type=Standard.Examples, producer_component_id=example_gen.id),
    ).with_id("span_resolver")
    span_resolver.add_upstream_node(example_gen)
    transform = tfx.components.Transform(
        examples=span_resolver.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=module_file,
    )
    tuner = tfx.components.Tuner(
        module_file=module_file,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(num_steps=max(1, train_steps // 10)),
        eval_args=tfx.proto.EvalArgs(num_steps=2),
    )
    trainer = tfx.components.Trainer(
        module_file=module_file,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=tuner.outputs["best_hyperparameters"],
        train_args=tfx.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=3),
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=Standard.Model),
        model_blessing=tfx.dsl.Channel(type=Standard.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=_eval_config(accuracy_threshold),
    )
    infra_validator = tfx.components.InfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        serving_spec=tfx.proto.ServingSpec(
            tensorflow_serving=tfx.proto.TensorFlowServing(tags=["latest"]),
            local_docker=tfx.proto.LocalDockerConfig(),
        ),
        request_spec=tfx.proto.RequestSpec(
            tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec()
        ),
    )
    check = CheckBlessings(
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
    )
    blessed = check.outputs["blessed"].future()[0].value
    with tfx.dsl.Cond(blessed == 1):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
            ),
        )
    report = Report(examples=example_gen.outputs["examples"], blessed=blessed)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            span_resolver,
            transform,
            tuner,
            trainer,
            model_resolver,
            evaluator,
            infra_validator,
            check,
            pusher,
            report,
        ],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path
        ),
        beam_pipeline_args=beam_pipeline_args,
    )


if __name__ == "__main__":
    tfx.orchestration.LocalDagRunner().run(
        _create_pipeline(
            pipeline_name=_pipeline_name,
            pipeline_root=_pipeline_root,
            data_root=_data_root,
            module_file=_module_file,
            serving_model_dir=_serving_model_dir,
            metadata_path=_metadata_path,
            beam_pipeline_args=_beam_pipeline_args,
            train_steps=_train_steps,
        )
    )

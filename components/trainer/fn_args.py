"""What a user's ``run_fn`` / ``tuner_fn`` receives: files, a data accessor, output folders,
the transform graph, hyperparameters, settings (TFX's ``FnArgs``)."""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.beam_utils.errors import InputError

if TYPE_CHECKING:
    from conveyor.beam_utils.io import ReadExamples


@dataclass
class FnArgs:
    """Arguments of ``run_fn(fn_args)`` and ``tuner_fn(fn_args)``: TFX's ``FnArgs`` fields.

    Attributes:
      train_files: file patterns of the training split(s), one per split and Examples
        artifact, as TFX gives them (``[".../Split-train/*"]``: gzip tf.Example TFRecords).
      eval_files: file patterns of the evaluation split(s).
      serving_model_dir: where to save the SavedModel (``<model>/Format-Serving``).
      model_run_dir: for logs and checkpoints (TensorBoard).
      transform_graph_path: a tf.Transform output folder, or None (TFX's older name:
        ``transform_output``).
      schema_path: a ``schema.pbtxt``, or None (TFX's older name: ``schema_file``).
      train_steps, eval_steps: ``train_args.num_steps`` / ``eval_args.num_steps``, or None.
      custom_config: the component's free-form settings (``{}`` when none).
      base_model: the serving SavedModel folder (``<model>/Format-Serving``) of the
        Trainer's ``base_model`` input, a model to start this training from (warm
        start, fine-tuning); None when the input is absent or empty (a resolver
        that found no model yet, as on a pipeline's first run). TFX's name.
      working_dir: a scratch folder of this execution, removed after it (TFX's: a
        tuner's trials go there).
      eval_model_dir: ``<model>/Format-TFMA``, where an eval model goes (TFX's; Keras
        models need none: the Evaluator reads the serving model).
      data_accessor: a :class:`~conveyor.components.trainer.data_accessor.DataAccessor`
        over the examples (``tf_dataset_factory``, ``record_batch_factory``).
      hyperparameters: the ``keras_tuner.HyperParameters`` config (a dict) of the
        Trainer's ``hyperparameters`` input (a Tuner's ``best_hyperparameters``) or
        parameter, or None: ``keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)``.

    Example (a run_fn that starts from the base model when there is one)::

        def run_fn(fn_args):
            if fn_args.base_model:
                model = tf.keras.models.load_model(fn_args.base_model)
            else:
                model = build_model()
            ...
    """

    train_files: list[str] = field(default_factory=list)
    eval_files: list[str] = field(default_factory=list)
    serving_model_dir: str | None = None
    model_run_dir: str | None = None
    transform_graph_path: str | None = None
    schema_path: str | None = None
    train_steps: int | None = None
    eval_steps: int | None = None
    custom_config: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None
    working_dir: str | None = None
    eval_model_dir: str | None = None
    data_accessor: Any = None
    hyperparameters: dict[str, Any] | None = None

    # TFX's older names, so run_fns written for TFX read the same.
    @property
    def transform_output(self) -> str | None:
        """TFX's older name of :attr:`transform_graph_path`."""
        return self.transform_graph_path

    @property
    def schema_file(self) -> str | None:
        """TFX's older name of :attr:`schema_path`."""
        return self.schema_path

    @property
    def serving_model_dir_path(self) -> str:
        """The same as :attr:`serving_model_dir`, by another of TFX's names."""
        return self.serving_model_dir

    def tf_transform_output(self):
        """The ``tft.TFTransformOutput`` of the transform graph (None without one)."""
        if not self.transform_graph_path:
            return None
        import tensorflow_transform as tft

        return tft.TFTransformOutput(self.transform_graph_path)

    def feature_spec(self) -> dict:
        """The feature spec to parse the examples: transformed if there is a graph, else from the schema."""
        tft_output = self.tf_transform_output()
        if tft_output is not None:
            return tft_output.transformed_feature_spec()
        if not self.schema_path:
            raise ValueError(
                "no transform graph and no schema: cannot tell how to parse the examples"
            )
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2
        from tensorflow_transform.tf_metadata import schema_utils

        schema = text_format.Parse(open(self.schema_path).read(), schema_pb2.Schema())
        return schema_utils.schema_as_feature_spec(schema).feature_spec

    def dataset(
        self,
        files: list[str],
        batch_size: int,
        label_key: str | None = None,
        num_epochs: int | None = None,
        shuffle: bool = True,
    ):
        """A ``tf.data.Dataset`` of parsed batches (features, or (features, label))."""
        import tensorflow as tf

        paths = sorted({p for pattern in files for p in glob.glob(pattern)})
        if not paths:
            raise FileNotFoundError(f"no files match {files}")
        spec = self.feature_spec()
        ds = tf.data.TFRecordDataset(paths, compression_type="GZIP")
        if shuffle:
            ds = ds.shuffle(10_000, seed=0)
        ds = (
            ds.repeat(num_epochs)
            .batch(batch_size)
            .map(lambda x: tf.io.parse_example(x, spec), num_parallel_calls=tf.data.AUTOTUNE)
        )
        if label_key is not None:
            ds = ds.map(lambda f: (f, f.pop(label_key)))
        return ds.prefetch(tf.data.AUTOTUNE)


def split_files(examples: Mapping[str, ReadExamples], splits: Sequence[str]) -> list[str]:
    """The file patterns of ``splits`` as ``fn_args.train_files`` holds them: for each split in
    order, one per Examples artifact the reader reads.

    Raises:
      InputError: a split is not in ``examples``, naming it and the splits there are.
    """
    patterns: list[str] = []
    for split in splits:
        if split not in examples:
            have = sorted(str(s) for s in examples)
            raise InputError(f"the examples have no split {split!r} (splits: {have})")
        read = examples[split]
        patterns += list(getattr(read, "file_patterns", None) or [read.file_pattern])
    return patterns


def make_fn_args(
    examples: Mapping[str, ReadExamples],
    train_splits: Sequence[str],
    eval_splits: Sequence[str],
    *,
    telemetry_descriptors: Sequence[str] = ("Trainer",),
    **fields,
) -> FnArgs:
    """The :class:`FnArgs` Trainer and Tuner give: the splits' files, a ``data_accessor`` over
    them, and ``fields`` (any other :class:`FnArgs` field, by name).

    Raises:
      InputError: a split is not in ``examples``.
      TypeError: ``fields`` names no FnArgs field.

    Example::

        reads = {s: read_examples_dir("out/examples", s) for s in ("train", "eval")}
        fn_args = make_fn_args(reads, ["train"], ["eval"], train_steps=100,
                               transform_graph_path="out/transform_graph")
    """
    from conveyor.components.trainer.data_accessor import make_data_accessor

    fields.setdefault("custom_config", {})
    if fields["custom_config"] is None:
        fields["custom_config"] = {}
    return FnArgs(
        train_files=split_files(examples, train_splits),
        eval_files=split_files(examples, eval_splits),
        data_accessor=make_data_accessor(telemetry_descriptors),
        **fields,
    )


def read_hyperparameters(path: str) -> dict:
    """The ``keras_tuner.HyperParameters`` config in a HyperParameters artifact folder (its
    ``best_hyperparameters.txt``, or its one file) or in a JSON file: ``fn_args.hyperparameters``.

    Raises:
      InputError: naming the file, when there is none or it is not a JSON object.
    """
    import json
    import os

    from conveyor.dsl import layout

    file = path
    if os.path.isdir(path):
        file = os.path.join(path, layout.HYPERPARAMETERS_FILE)
        if not os.path.isfile(file):
            files = [n for n in sorted(os.listdir(path)) if not n.startswith(".")]
            if len(files) != 1:
                raise InputError(
                    f"hyperparameters {path}: no {layout.HYPERPARAMETERS_FILE} there "
                    f"(and not one file but {files or 'none'})"
                )
            file = os.path.join(path, files[0])
    elif not os.path.isfile(path):
        raise InputError(f"hyperparameters {path}: no such file or folder")
    try:
        with open(file, encoding="utf-8") as f:
            config = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"hyperparameters {file}: not JSON ({e})") from None
    if not isinstance(config, dict):
        raise InputError(
            f"hyperparameters {file}: a JSON object (HyperParameters.get_config()), "
            f"not {type(config).__name__}"
        )
    return config


def find_transform_graph(path: str) -> str:
    """The tf.Transform graph folder: ``path`` itself, or its ``transform_graph/`` (a
    ``conveyor transform`` output).

    Raises:
      InputError: naming ``path``, when neither holds a ``transform_fn/``.
    """
    import os

    for folder in (path, os.path.join(path, "transform_graph")):
        if os.path.isdir(os.path.join(folder, "transform_fn")):
            return folder
    raise InputError(
        f"{path}: not a tf.Transform graph (no transform_fn/ in it or in its transform_graph/)"
    )

"""What a user's ``run_fn`` receives: files, output folders, the transform graph, settings."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FnArgs:
    """Arguments of ``run_fn(fn_args)``.

    Attributes:
      train_files: file patterns of the training split (gzip tf.Example TFRecords).
      eval_files: file patterns of the evaluation split.
      serving_model_dir: where to save the SavedModel (``<model>/Format-Serving``).
      model_run_dir: for logs and checkpoints (TensorBoard).
      transform_graph_path: a tf.Transform output folder, or None.
      schema_path: a ``schema.pbtxt``, or None.
      train_steps, eval_steps: step counts when given.
      custom_config: the component's free-form settings.
      base_model: the serving SavedModel folder (``<model>/Format-Serving``) of the
        Trainer's ``base_model`` input, a model to start this training from (warm
        start, fine-tuning); None when the input is absent or empty (a resolver
        that found no model yet, as on a pipeline's first run). TFX's name.

    Example (a run_fn that starts from the base model when there is one)::

        def run_fn(fn_args):
            if fn_args.base_model:
                model = tf.keras.models.load_model(fn_args.base_model)
            else:
                model = build_model()
            ...
    """

    train_files: list[str]
    eval_files: list[str]
    serving_model_dir: str
    model_run_dir: str
    transform_graph_path: str | None = None
    schema_path: str | None = None
    train_steps: int | None = None
    eval_steps: int | None = None
    custom_config: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None

    # TFX's names, so run_fns written for TFX read the same.
    @property
    def transform_output(self) -> str | None:
        """TFX's name of :attr:`transform_graph_path`."""
        return self.transform_graph_path

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

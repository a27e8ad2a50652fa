"""Where things are inside an artifact's directory: TFX's on-disk layout, in one place.

Every component writes and reads artifacts through these names, so the layout is
written once: split folders (``Split-<name>/``), the files of statistics,
schemas and anomalies, the serving SavedModel inside a Model and the markers of
a ModelBlessing. Paths may be local or any Beam filesystem (``gs://``...); only
the lookups that touch storage load Beam's filesystems, when they are called.

Example::

    from conveyor.dsl import layout

    layout.split_uri("out/StatisticsGen/statistics/3", "train")
    # 'out/StatisticsGen/statistics/3/Split-train'
    layout.split_files("out/StatisticsGen/statistics/3", layout.STATS_FILE)
    # {'eval': '.../Split-eval/FeatureStats.pb', 'train': '.../Split-train/FeatureStats.pb'}
"""

from __future__ import annotations

import posixpath

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.files import SPLIT_PREFIX, SUMMARY_FILE, examples_splits

__all__ = [
    "ANOMALIES_FILE",
    "ANOMALIES_REPORT_FILE",
    "BLESSED",
    "EVAL_MODEL_DIR",
    "HYPERPARAMETERS_FILE",
    "INFRA_BLESSED",
    "INFRA_NOT_BLESSED",
    "NOT_BLESSED",
    "SCHEMA_FILE",
    "SKIPPED_NOT_BLESSED",
    "SERVING_DIR",
    "SPLIT_PREFIX",
    "STATS_FILE",
    "SUMMARY_FILE",
    "examples_splits",
    "is_blessed",
    "is_infra_blessed",
    "schema_path",
    "serving_model_dir",
    "split_files",
    "split_name",
    "split_uri",
]

#: Statistics of one split (a ``DatasetFeatureStatisticsList``), TFX StatisticsGen's name.
STATS_FILE = "FeatureStats.pb"
#: A Schema artifact's file (text proto), TFX SchemaGen's name.
SCHEMA_FILE = "schema.pbtxt"
#: Anomalies of one split (an ``Anomalies`` proto), TFX ExampleValidator's name.
ANOMALIES_FILE = "SchemaDiff.pb"
#: The readable report written beside each ``SchemaDiff.pb``.
ANOMALIES_REPORT_FILE = "report.txt"
#: Where TFX's Trainer puts the serving SavedModel inside a Model artifact.
SERVING_DIR = "Format-Serving"
#: Where TFX's Trainer puts an eval model inside a Model artifact (``fn_args.eval_model_dir``).
EVAL_MODEL_DIR = "Format-TFMA"
#: A HyperParameters artifact's file (TFX Tuner's): the JSON of ``HyperParameters.get_config()``.
HYPERPARAMETERS_FILE = "best_hyperparameters.txt"
#: The marker files of a ModelBlessing artifact (TFX Evaluator's layout).
BLESSED = "BLESSED"
NOT_BLESSED = "NOT_BLESSED"
#: The marker files of an InfraBlessing artifact (TFX InfraValidator's layout).
INFRA_BLESSED = "INFRA_BLESSED"
INFRA_NOT_BLESSED = "INFRA_NOT_BLESSED"
#: What BulkInferrer writes in its InferenceResult, instead of predictions, for a model that
#: is not blessed.
SKIPPED_NOT_BLESSED = "SKIPPED_NOT_BLESSED"


def _join(*parts: str) -> str:
    # posixpath for local paths and URLs alike: Beam's FileSystems.join does the same for
    # both, and this keeps the module free of Beam at import time.
    return posixpath.join(*parts)


def split_uri(uri: str, split: str) -> str:
    """``<uri>/Split-<split>``: the folder of one split inside an artifact."""
    return _join(uri, SPLIT_PREFIX + split)


def split_name(folder: str) -> str | None:
    """The split a folder name is for (``"Split-train"`` -> ``"train"``), or None."""
    name = posixpath.basename(folder.rstrip("/"))
    return name[len(SPLIT_PREFIX) :] if name.startswith(SPLIT_PREFIX) else None


def schema_path(schema_uri: str) -> str:
    """The ``schema.pbtxt`` of a Schema artifact."""
    return _join(schema_uri, SCHEMA_FILE)


def split_files(uri: str, file_name: str) -> dict[str, str]:
    """``{split: <uri>/Split-<split>/<file_name>}`` for each split folder holding that file.

    Raises:
      InputError: no split folder of ``uri`` holds ``file_name``.
    """
    from apache_beam.io.filesystems import FileSystems

    found = {}
    try:
        matches = FileSystems.match([_join(uri, SPLIT_PREFIX + "*", file_name)])[0].metadata_list
    except Exception:  # Beam raises for a pattern that matches nothing on some filesystems
        matches = []
    for m in matches:
        split = split_name(posixpath.dirname(m.path))
        if split is not None:
            found[split] = split_uri(uri, split) + "/" + file_name
    if not found:
        raise InputError(f"{uri}: no {SPLIT_PREFIX}<name>/{file_name}")
    return dict(sorted(found.items()))


def serving_model_dir(model_uri: str) -> str:
    """``<model_uri>/Format-Serving`` if the Model artifact has one, else ``model_uri``."""
    from apache_beam.io.filesystems import FileSystems

    serving = _join(model_uri, SERVING_DIR)
    # Object stores have no directories: look for the SavedModel file too.
    if FileSystems.exists(serving) or FileSystems.exists(_join(serving, "saved_model.pb")):
        return serving
    return model_uri


def is_blessed(blessing_uri: str) -> bool:
    """Whether a ModelBlessing directory says BLESSED (False for NOT_BLESSED).

    Raises:
      InputError: if it holds neither marker.
    """
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(_join(blessing_uri, NOT_BLESSED)):
        return False
    if FileSystems.exists(_join(blessing_uri, BLESSED)):
        return True
    raise InputError(f"{blessing_uri}: a ModelBlessing without a {BLESSED} or {NOT_BLESSED} file")


def is_infra_blessed(blessing_uri: str) -> bool:
    """Whether an InfraBlessing directory says INFRA_BLESSED (False for INFRA_NOT_BLESSED).

    Raises:
      InputError: if it holds neither marker.
    """
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(_join(blessing_uri, INFRA_NOT_BLESSED)):
        return False
    if FileSystems.exists(_join(blessing_uri, INFRA_BLESSED)):
        return True
    raise InputError(
        f"{blessing_uri}: an InfraBlessing without an {INFRA_BLESSED} or {INFRA_NOT_BLESSED} file"
    )

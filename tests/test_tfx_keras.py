"""conveyor.tfx selects Keras 2 for TFX's Keras module files, and KerasTuner follows.

Each case runs in a fresh interpreter: the choice is made once per process, when
TensorFlow and KerasTuner are first imported.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _run(code: str, tmp_path, env_extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(env_extra or {})
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    script = tmp_path / "case.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# A module file as TFX writes them: tf.keras, the old kerastuner name, model.save(save_format="tf").
TFX_STYLE = """
    from conveyor import tfx  # the one changed line
    import json, os, sys
    import kerastuner
    import numpy as np
    import tensorflow as tf
    from tensorflow import keras
    from conveyor.components.trainer import keras_tuner_backend

    def build(hp):
        inputs = keras.layers.Input(shape=(1,), name="x")
        hidden = keras.layers.Dense(hp.Int("units", 2, 4), activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    x = np.linspace(0, 1, 40).reshape(-1, 1).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    tuner = kerastuner.RandomSearch(build, max_trials=2, objective="val_accuracy",
                                    directory=sys.argv[0] + ".tuner", project_name="p")
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    model = build(tuner.get_best_hyperparameters()[0])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        parsed = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        return {"outputs": model(parsed["x"])}

    out = os.path.join(os.path.dirname(sys.argv[0]), "serving")
    model.save(out, save_format="tf", signatures={"serving_default": serve})
    print(json.dumps({"env": os.environ.get("TF_USE_LEGACY_KERAS"),
                      "tf_keras": keras.Model.__module__.split(".")[0],
                      "keras_tuner": keras_tuner_backend(), "saved": out}))
"""


def test_tfx_module_file_keras_2_tuner_and_save_format_tf(tmp_path):
    got = _run(TFX_STYLE, tmp_path)
    assert got == {
        "env": "1",
        "tf_keras": "tf_keras",
        "keras_tuner": "tf_keras",
        "saved": str(tmp_path / "serving"),
    }
    # The model crosses steps: Evaluator, InfraValidator, BulkInferrer and Pusher load
    # SavedModels with tf.saved_model.load; here in a Keras 3 process without conveyor.tfx.
    loaded = _run(
        f"""
        import json, os
        import tensorflow as tf
        from conveyor.components.inference import read_signature
        from conveyor.components.trainer.component import check_serving_model
        path = {str(tmp_path / "serving")!r}
        model = tf.saved_model.load(path)
        example = tf.train.Example(features=tf.train.Features(feature={{
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[0.9]))}}))
        out = model.signatures["serving_default"](tf.constant([example.SerializeToString()]))
        print(json.dumps({{"check": check_serving_model(path),
                          "inputs": list(read_signature(path, "serving_default").inputs),
                          "shape": out["outputs"].shape.as_list(),
                          "env": os.environ.get("TF_USE_LEGACY_KERAS")}}))
        """,
        tmp_path,
        {"TF_USE_LEGACY_KERAS": "0"},
    )
    assert loaded["shape"] == [1, 2]
    assert loaded["inputs"] == ["examples"]
    assert loaded["check"].startswith("serving_default(examples)")
    assert loaded["env"] == "0"


def test_module_importing_keras_keeps_keras_3_tuner(tmp_path):
    got = _run(
        """
        from conveyor import tfx
        import json, os
        import keras
        import keras_tuner
        from conveyor.components.trainer import keras_tuner_backend
        print(json.dumps({"env": os.environ.get("TF_USE_LEGACY_KERAS"),
                          "keras_tuner": keras_tuner_backend(),
                          "keras": keras.__version__.split(".")[0]}))
        """,
        tmp_path,
    )
    assert got == {"env": "1", "keras_tuner": "keras", "keras": "3"}


def test_users_setting_is_kept(tmp_path):
    code = """
        import json, logging, os
        logging.basicConfig()
        from conveyor import tfx
        from conveyor.tfx._keras import select_legacy_keras
        print(json.dumps({"env": os.environ.get("TF_USE_LEGACY_KERAS"),
                          "selected": select_legacy_keras()}))
        """
    assert _run(code, tmp_path, {"TF_USE_LEGACY_KERAS": "0"}) == {"env": "0", "selected": False}


def test_tf_keras_resolved_to_keras_3_first_is_pointed_at_keras_2(tmp_path):
    # TFX's pipeline files import tensorflow_model_analysis (which reads tf.keras) before tfx.
    got = _run(
        """
        import json, os
        import tensorflow_model_analysis as tfma
        import tensorflow as tf
        before = tf.keras.Model.__module__.split(".")[0]
        from conveyor import tfx
        from tensorflow.keras import layers
        print(json.dumps({"before": before, "after": tf.keras.Model.__module__.split(".")[0],
                          "layers": layers.Dense.__module__.split(".")[0],
                          "env": os.environ.get("TF_USE_LEGACY_KERAS")}))
        """,
        tmp_path,
    )
    assert got == {"before": "keras", "after": "tf_keras", "layers": "tf_keras", "env": "1"}


def test_without_conveyor_tfx_nothing_changes(tmp_path):
    got = _run(
        """
        import json, os, sys
        import conveyor.components.trainer.component  # Conveyor's own Trainer, no conveyor.tfx
        import keras_tuner
        from conveyor.components.trainer import keras_tuner_backend
        print(json.dumps({"env": os.environ.get("TF_USE_LEGACY_KERAS"),
                          "keras_tuner": keras_tuner_backend()}))
        """,
        tmp_path,
    )
    assert got == {"env": None, "keras_tuner": "keras"}

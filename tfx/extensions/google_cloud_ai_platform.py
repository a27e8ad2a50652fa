"""TFX's ``tfx.v1.extensions.google_cloud_ai_platform``: Vertex AI and AI Platform are not part of
Conveyor.

Its ``Trainer``, ``Tuner``, ``Pusher`` and ``BulkInferrer`` run on Google
Cloud, configured by their ``custom_config`` (``TRAINING_ARGS_KEY``...); making
one is a definition error naming ``custom_config``. Use the components of
``tfx.components``, which run where Conveyor runs.

Example::

    from conveyor import tfx

    tfx.extensions.google_cloud_ai_platform.Trainer(module_file="m.py", custom_config={...})
    # PipelineDefinitionError: Trainer: custom_config: ...
"""

from conveyor.tfx.extensions._refused import refused_component

__all__ = [
    "ENABLE_VERTEX_KEY",
    "SERVING_ARGS_KEY",
    "TRAINING_ARGS_KEY",
    "TUNING_ARGS_KEY",
    "VERTEX_REGION_KEY",
    "BulkInferrer",
    "Pusher",
    "Trainer",
    "Tuner",
]

#: The custom_config keys TFX's cloud components read (kept so pipeline files still import).
TRAINING_ARGS_KEY = "ai_platform_training_args"
SERVING_ARGS_KEY = "ai_platform_serving_args"
TUNING_ARGS_KEY = "ai_platform_tuning_args"
ENABLE_VERTEX_KEY = "ai_platform_enable_vertex"
VERTEX_REGION_KEY = "ai_platform_vertex_region"

_WHY = (
    "Vertex AI / AI Platform settings are not supported by Conveyor; use the "
    "tfx.components one, which runs where the pipeline runs"
)

Trainer = refused_component("Trainer", "custom_config", _WHY)
Tuner = refused_component("Tuner", "custom_config", _WHY)
Pusher = refused_component("Pusher", "custom_config", _WHY)
BulkInferrer = refused_component("BulkInferrer", "custom_config", _WHY)

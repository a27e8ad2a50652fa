"""``tfx.dsl.components`` (TFX v1): Python function components on Conveyor.

The names of ``tfx.v1.dsl.components``, from :mod:`conveyor.dsl.function_component`
(``BeamComponentParameters`` is also there, another spelling of TFX's
``BeamComponentParameter``; ``AsyncOutputArtifact`` is refused when a function
is decorated: Conveyor publishes outputs when a component ends).

Example::

    from conveyor import tfx

    @tfx.dsl.components.component
    def Threshold(model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
                  limit: tfx.dsl.components.Parameter[float] = 0.5
                  ) -> tfx.dsl.components.OutputDict(passed=bool):
        return {"passed": True}
"""

from conveyor.dsl.function_component import (
    AsyncOutputArtifact,
    BeamComponentParameter,
    BeamComponentParameters,
    InputArtifact,
    OutputArtifact,
    OutputDict,
    Parameter,
    component,
)

__all__ = [
    "AsyncOutputArtifact",
    "BeamComponentParameter",
    "BeamComponentParameters",
    "InputArtifact",
    "OutputArtifact",
    "OutputDict",
    "Parameter",
    "component",
]

"""TFX's ``tfx.dsl.placeholders``: ``input``, ``output`` and ``exec_property`` for container
components' commands (Conveyor's :mod:`conveyor.dsl.container_component`).

Example::

    from conveyor import tfx
    ph = tfx.dsl.placeholders

    count = tfx.dsl.experimental.create_container_component(
        name="CountLines", image="busybox",
        inputs={"examples": tfx.types.standard_artifacts.Examples},
        outputs={"report": tfx.types.standard_artifacts.String},
        command=["sh", "-c", "wc -l " + ph.input("examples")[0].uri + "/* > "
                 + ph.output("report")[0].uri])
"""

from conveyor.dsl.container_component import (
    ConcatPlaceholder,
    InputPathPlaceholder,
    InputUriPlaceholder,
    InputValuePlaceholder,
    OutputPathPlaceholder,
    OutputUriPlaceholder,
    exec_property,
    input,
    output,
)

__all__ = [
    "ConcatPlaceholder",
    "InputPathPlaceholder",
    "InputUriPlaceholder",
    "InputValuePlaceholder",
    "OutputPathPlaceholder",
    "OutputUriPlaceholder",
    "exec_property",
    "input",
    "output",
]

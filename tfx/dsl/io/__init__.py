"""TFX's ``tfx.dsl.io``: :mod:`.fileio`, file operations a module file uses (local or remote).

Example::

    from conveyor import tfx

    tfx.dsl.io.fileio.makedirs("out/serving")
"""

from conveyor.tfx.dsl.io import fileio

__all__ = ["fileio"]

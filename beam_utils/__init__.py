"""What every Conveyor component shares: example IO, Arrow helpers, splitting, runner options.

Importing this package is cheap; Beam, TensorFlow and tfx-bsl are imported by the
modules that need them (``conveyor.beam_utils.io``, ``...options``, ...).
"""

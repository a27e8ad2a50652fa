"""Packages whose public names are imported on first use.

Conveyor's command line must answer ``--help`` without importing Beam or
TensorFlow, so packages export their names lazily::

    from conveyor.beam_utils.lazy import lazy_exports
    __getattr__, __dir__ = lazy_exports(__name__, {"GenerateStatistics": "transform"})

A module given without a dot is a submodule of the package; a dotted one is
taken as it is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` exporting ``{name: module}`` lazily."""
    exports = dict(exports)

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if "." in module else f"{package}.{module}"
        return getattr(importlib.import_module(full), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__

"""Importing a user's Python file (a pipeline definition, a trainer module) by path."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType


def import_file(path: str, prefix: str) -> ModuleType:
    """Imports ``path`` as module ``<prefix><file stem>``, with its folder on ``sys.path``.

    The folder goes on the path so the file can import its neighbours; the module
    is registered in ``sys.modules`` so pickling its functions by reference works
    in this process. Its ``if __name__ == "__main__":`` block does not run.
    """
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    name = prefix + stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec.loader.exec_module(module)
    return module

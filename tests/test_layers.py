"""The package layering: beam_utils < dsl < components < orchestration < tfx, no upward or circular edge.

Every ``import`` in the source tree counts, including those inside functions
(Conveyor imports heavy modules lazily, but a lazy import is still an edge).
Component folders may use each other only through a folder's public names
(``from conveyor.components.statistics import GenerateStatistics``), never its
modules, and those edges between folders must not form a cycle.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Each top-level package and its rank: a package may import only lower or equal ranks.
LAYERS = {"beam_utils": 0, "dsl": 1, "components": 2, "orchestration": 3, "tfx": 4}


def _modules():
    """``(module name, path)`` for every Python file of the packages."""
    for folder in LAYERS:
        for dirpath, dirs, names in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    module = "conveyor." + (
                        rel[: -len(".__init__")] if rel.endswith("__init__") else rel
                    )
                    yield module, path


def _imports(module: str, path: str):
    """``(imported conveyor module, line)`` of every import statement in a file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                # "from conveyor.components import statistics" names a module too.
                sub = f"{base}.{alias.name}"
                yield (sub if _is_module(sub) else base), node.lineno


def _is_module(module: str) -> bool:
    """Whether a dotted name is a module or package of the tree (not a name inside one)."""
    if not module.startswith("conveyor."):
        return False
    path = os.path.join(ROOT, *module.split(".")[1:])
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "conveyor" and parts[1] in LAYERS else None


def _component(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["conveyor", "components"] else None


EDGES = [(m, p, target, line) for m, p in _modules() for target, line in _imports(m, p)]


def test_the_walk_sees_the_tree():
    """The walk finds every package and real edges (a test of the test)."""
    layers = {_layer(m) for m, _, _, _ in EDGES}
    assert layers == set(LAYERS)
    assert any(_layer(m) == "components" and _layer(t) == "dsl" for m, _, t, _ in EDGES)


def test_no_package_imports_one_above_it():
    upward = [
        f"{os.path.relpath(p, ROOT)}:{line} ({_layer(m)}) imports {t} ({_layer(t)})"
        for m, p, t, line in EDGES
        if _layer(t) and LAYERS[_layer(t)] > LAYERS[_layer(m)]
    ]
    assert upward == []


def _public(target: str, importer: str) -> bool:
    """Whether ``importer`` may import ``target``, a module of a component folder.

    A component folder's public names are its package (``__init__`` and its
    ``__all__``); orchestration also loads the folder's command (``cli``) and
    node (``node``) modules, which the CLI table and the exporters name.
    """
    folder = _component(target)
    allowed = {"conveyor.components", f"conveyor.components.{folder}"}
    if _layer(importer) == "orchestration":
        allowed |= {f"conveyor.components.{folder}.cli", f"conveyor.components.{folder}.node"}
    return target in allowed


def test_components_use_each_other_through_public_names_only():
    private = []
    for m, p, t, line in EDGES:
        mine, theirs = _component(m), _component(t)
        outside = _layer(m) in ("orchestration", "tfx") or (mine and mine != theirs)
        if theirs and outside and not _public(t, m):
            private.append(f"{os.path.relpath(p, ROOT)}:{line} imports {t}")
    assert private == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles found by a depth-first walk (each reported from its first node)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("level", ["packages", "component folders"])
def test_no_circular_edges(level):
    key = _layer if level == "packages" else _component
    graph: dict[str, set[str]] = {}
    for m, _, t, _ in EDGES:
        a, b = key(m), key(t)
        if a and b and a != b:
            graph.setdefault(a, set()).add(b)
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    "package", ["conveyor.dsl", "conveyor.components", "conveyor.orchestration", "conveyor.tfx"]
)
def test_importing_loads_neither_beam_nor_tensorflow(package):
    """The base and the lazy package roots stay light: the CLI and the UI start fast."""
    code = (
        f"import sys, {package}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'tensorflow'})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

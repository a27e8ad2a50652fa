"""The component contract (components/README.md), checked over every component folder.

The README's table of folders is the source: each row names the folder's
PTransforms, its ``run_*`` function, its node(s) and its command, or says why it
has none. This test fails when a folder is missing from the table, a file of the
contract is missing, a public name has no docstring, a public PTransform or
CombineFn has no Beam type hints, a ``run_*`` does not take its input the shared
way, or a node or command is not where the table says.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENTS = os.path.join(ROOT, "components")
README = os.path.join(COMPONENTS, "README.md")


def _table() -> dict[str, dict[str, str]]:
    """The README's folder table: ``{folder: {column: cell}}``."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## The folders", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip().lower() for c in rows[0].strip("|").split("|")]
    table = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        row = dict(zip(header, cells, strict=True))
        table[row["folder"].strip("`/")] = row
    return table


TABLE = _table()
FOLDERS = sorted(
    name
    for name in os.listdir(COMPONENTS)
    if os.path.isfile(os.path.join(COMPONENTS, name, "__init__.py"))
)


#: The steps whose input is not examples, and the name of their first argument.
OTHER_INPUTS = {
    "schema_gen": "statistics",
    "validation": "statistics",
    "monitor": "source",
    "infra_validator": "model",
    "pusher": "model",
}


def _names(cell: str) -> list[str]:
    """The backquoted names of a table cell (``none: why`` gives none)."""
    return re.findall(r"`([^`]+)`", cell) if not _says_none(cell) else []


def _says_none(cell: str) -> bool:
    return cell.lstrip("(").lower().startswith("none")


def _package(folder: str):
    return importlib.import_module(f"conveyor.components.{folder}")


def _has_file(folder: str, name: str) -> bool:
    return os.path.isfile(os.path.join(COMPONENTS, folder, name))


def test_every_folder_is_in_the_table_and_every_row_is_a_folder():
    assert sorted(TABLE) == FOLDERS


def test_the_table_reads_every_column():
    """A test of the test: the parser sees the columns and the reasons for none."""
    row = TABLE["statistics"]
    assert _names(row["ptransforms"]) == ["GenerateStatistics"]
    assert _names(row["node(s)"]) == ["StatisticsGen"]
    assert _says_none(TABLE["monitor"]["node(s)"])


@pytest.mark.parametrize("folder", FOLDERS)
def test_package_exports_documented_public_names(folder):
    package = _package(folder)
    assert package.__doc__ and "Example" in package.__doc__, (
        f"{folder}/__init__.py: docstring with an example"
    )
    exported = getattr(package, "__all__", None)
    assert exported, f"{folder}/__init__.py has no __all__"
    undocumented = []
    for name in exported:
        value = getattr(package, name)  # raises if a name does not resolve
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    assert undocumented == []


def _public_classes(module) -> list[type]:
    return [
        value
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and not name.startswith("_")
        and value.__module__ == module.__name__
    ]


@pytest.mark.parametrize("folder", FOLDERS)
def test_transform_module_holds_the_typed_ptransforms(folder):
    import apache_beam as beam

    named = _names(TABLE[folder]["ptransforms"])
    if not named:
        assert _says_none(TABLE[folder]["ptransforms"].strip("()")), (
            f"{folder}: say why there is no PTransform"
        )
        return
    assert _has_file(folder, "transform.py"), f"{folder}/transform.py is missing"
    package = _package(folder)
    for name in named:
        cls = getattr(package, name)
        assert issubclass(cls, beam.PTransform), f"{folder}: {name} is not a PTransform"
        assert cls.__module__ == f"conveyor.components.{folder}.transform", (
            f"{name} lives in {cls.__module__}"
        )
    modules = {inspect.getmodule(getattr(package, n)) for n in package.__all__} - {None}
    for module in modules:
        for cls in _public_classes(module):
            if (
                issubclass(cls, (beam.PTransform, beam.CombineFn))
                and cls.__name__ in package.__all__
            ):
                hints = cls.__dict__.get("_type_hints")
                typed = hints is not None and (hints.input_types or hints.output_types)
                assert typed, (
                    f"{folder}: {cls.__name__} has no Beam type hints (with_input/output_types)"
                )


@pytest.mark.parametrize("folder", FOLDERS)
def test_component_module_runs_the_step(folder):
    (run_name,) = _names(TABLE[folder]["`run_*`"])
    assert _has_file(folder, "component.py"), f"{folder}/component.py is missing"
    module = importlib.import_module(f"conveyor.components.{folder}.component")
    runs = [
        n
        for n, v in vars(module).items()
        if n.startswith("run_") and inspect.isfunction(v) and v.__module__ == module.__name__
    ]
    assert runs == [run_name]
    run = getattr(module, run_name)
    assert getattr(_package(folder), run_name) is run, f"{run_name} is not exported by the package"
    assert inspect.getdoc(run)
    first, *_ = inspect.signature(run).parameters.values()
    if folder in OTHER_INPUTS:
        assert first.name == OTHER_INPUTS[folder], f"{run_name}'s first argument is {first}"
    else:
        assert first.name == "examples" and "Mapping" in str(first.annotation), (
            f"{run_name}'s first argument must be examples: Mapping[str, ReadExamples], not {first}"
        )
    params = inspect.signature(run).parameters
    assert "beam_args" in params or folder in ("trainer", "tuner"), f"{run_name} takes no beam_args"
    assert "dict" in str(inspect.signature(run).return_annotation), (
        f"{run_name} returns its summary (a dict)"
    )


@pytest.mark.parametrize("folder", FOLDERS)
def test_nodes_are_components_exported_by_conveyor_components(folder):
    import conveyor.components as components
    from conveyor.dsl import Component

    cell = TABLE[folder]["node(s)"]
    nodes = _names(cell)
    if not nodes:
        assert len(cell) > len("none: "), f"{folder}: say why there is no node"
        assert not _has_file(folder, "node.py")
        return
    module = importlib.import_module(f"conveyor.components.{folder}.node")
    for name in nodes:
        cls = getattr(module, name)
        assert issubclass(cls, Component) and inspect.getdoc(cls), f"{folder}: {name}"
        assert getattr(components, name) is cls, (
            f"conveyor.components.{name} is not {folder}'s node"
        )
    defined = [c.__name__ for c in _public_classes(module) if issubclass(c, Component)]
    assert sorted(defined) == sorted(nodes), (
        f"{folder}/node.py defines {defined}; the table says {nodes}"
    )


@pytest.mark.parametrize("folder", FOLDERS)
def test_cli_module_is_the_command(folder):
    from conveyor.orchestration.cli import COMMANDS

    (command,) = _names(TABLE[folder]["command"])
    name = command.split()[-1]
    assert _has_file(folder, "cli.py"), f"{folder}/cli.py is missing"
    module = importlib.import_module(f"conveyor.components.{folder}.cli")
    assert isinstance(module.HELP, str) and module.HELP.strip() and "\n" not in module.HELP
    assert callable(module.add_arguments) and callable(module.run)
    target = COMMANDS[name]
    target = target[0] if isinstance(target, tuple) else target
    assert target.split(":")[0] == module.__name__, (
        f"conveyor {name} runs {target}, not {module.__name__}"
    )


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_artifact_layout_literals(folder):
    """File names and split folders come from conveyor.dsl.layout, not string literals."""
    literals = ("Split-", "FeatureStats.pb", "schema.pbtxt", "SchemaDiff.pb", "Format-Serving")
    found = []
    for dirpath, _, names in os.walk(os.path.join(COMPONENTS, folder)):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(
                    node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
                )
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and any(lit in node.value for lit in literals)
                    and not _is_help_text(node, tree)
                ):
                    found.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def _is_help_text(node: ast.Constant, tree: ast.AST) -> bool:
    """Help text and error messages may name the files a user sees."""
    for parent in ast.walk(tree):
        told = isinstance(parent, ast.Raise) or (
            isinstance(parent, ast.keyword) and parent.arg in ("help", "description", "epilog")
        )
        if told and any(child is node for child in ast.walk(parent)):
            return True
    return False

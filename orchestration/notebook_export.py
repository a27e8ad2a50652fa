"""Turning a notebook that used :class:`InteractiveContext` into a pipeline file.

The code cells become the file, in order, except:

* cells whose source starts with ``# conveyor: skip`` or that contain ``%%skip``;
* cells that call ``context.show(...)`` or ``display(...)`` (looking, not building);
* IPython magics (``%...``, ``!...`` lines; ``%%...`` cells).

In what is left, ``context = InteractiveContext(...)`` becomes ``PIPELINE_NAME``
and ``PIPELINE_ROOT`` constants, each ``context.run(x)`` adds ``x`` to the
pipeline's components, and the file ends with a module-level ``Pipeline(...)``
(so ``conveyor pipeline create --pipeline-path FILE`` loads it) and the chosen
runner's call under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from dataclasses import dataclass, field

RUNNERS = {
    "local": (
        "from conveyor.orchestration.local_runner import LocalDagRunner",
        ["LocalDagRunner().run(pipeline)"],
    ),
    "beam": (
        "from conveyor.orchestration.beam_runner import BeamDagRunner",
        ["BeamDagRunner().run(pipeline)"],
    ),
    "airflow": (
        "from conveyor.orchestration.airflow import AirflowDagConfig, AirflowDagRunner",
        [
            "import sys",
            "",
            "# The DAG file to write (default: beside this file); put it in Airflow's DAG folder.",
            "output = sys.argv[1] if len(sys.argv) > 1 else os.path.splitext(os.path.abspath(__file__))[0]"
            ' + "_dag.py"',
            "print(AirflowDagRunner(AirflowDagConfig(output=output)).run(pipeline))",
        ],
    ),
}


class NotebookExportError(ValueError):
    """The notebook uses the context in a way a pipeline file cannot express."""


def _cells(notebook_path: str) -> list[str]:
    with open(notebook_path, encoding="utf-8") as f:
        nb = json.load(f)
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        out.append("".join(source) if isinstance(source, list) else source)
    return out


def _skipped(source: str) -> bool:
    stripped = source.lstrip()
    return (
        stripped.startswith("# conveyor: skip") or "%%skip" in source or stripped.startswith("%%")
    )


def _without_magics(source: str) -> str:
    """Line magics and shell escapes become blank lines (keeping line numbers)."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    )


def _is_call_to(node, names: set[str], attr: str | None = None) -> bool:
    """``node`` is ``name.attr(...)`` (attr given) or ``name(...)`` / ``mod.name(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if attr is not None:
        return (
            isinstance(func, ast.Attribute)
            and func.attr == attr
            and isinstance(func.value, ast.Name)
            and func.value.id in names
        )
    if isinstance(func, ast.Name):
        return func.id in names
    return isinstance(func, ast.Attribute) and func.attr in names


def _uses_show(tree: ast.AST, context_names: set[str]) -> bool:
    """The cell calls ``context.show(...)`` or IPython's ``display(...)``."""
    for node in ast.walk(tree):
        if _is_call_to(node, context_names, "show"):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "display"
        ):
            return True
    return False


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "notebook"


@dataclass
class _Export:
    """What the export has learnt from the cells so far."""

    notebook_path: str
    export_path: str
    pipeline_root: str | None
    #: Names the InteractiveContext class is imported as, and the context is bound to.
    interactive_names: set[str] = field(default_factory=lambda: {"InteractiveContext"})
    context_names: set[str] = field(default_factory=set)
    #: The context's arguments (``pipeline_name``, ``pipeline_root``, ...) as source text.
    context_kwargs: dict[str, str] = field(default_factory=dict)
    #: The names of the run components, in order (a repeated one counts once).
    components: list[str] = field(default_factory=list)
    #: Whether some ``x = context.run(...)`` needs ``SimpleNamespace``.
    needs_namespace: bool = False
    #: Components run as an expression, named ``_component_<n>``.
    unnamed: int = 0

    def error(self, cell: int, text: str) -> NotebookExportError:
        return NotebookExportError(f"{self.notebook_path}: cell {cell}: {text}")


def _context_import(stmt, state: _Export, source: str, cell: int) -> list[str] | None:
    """An import of ``InteractiveContext`` loses that name (and the line if it was the only one)."""
    kept = [a for a in stmt.names if a.name != "InteractiveContext"]
    if len(kept) == len(stmt.names):
        return None
    state.interactive_names |= {
        a.asname or a.name for a in stmt.names if a.name == "InteractiveContext"
    }
    if isinstance(stmt, ast.ImportFrom) and kept:
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in kept)
        return [f"from {'.' * stmt.level}{stmt.module or ''} import {names}"]
    return [] if not kept else None


#: InteractiveContext's parameters in order, for its positional arguments.
_CONTEXT_PARAMS = ["pipeline_name", "pipeline_root", "metadata_path", "beam_pipeline_args"]


def _context_assignment(stmt, state: _Export, source: str, cell: int) -> list[str]:
    """``context = InteractiveContext(...)`` becomes the PIPELINE_NAME and PIPELINE_ROOT constants."""
    if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
        raise state.error(
            cell, "assign the InteractiveContext to one name (context = InteractiveContext(...))"
        )
    state.context_names.add(stmt.targets[0].id)
    call = stmt.value
    for param, arg in zip(_CONTEXT_PARAMS, call.args):
        state.context_kwargs[param] = ast.get_source_segment(source, arg)
    for kw in call.keywords:
        state.context_kwargs[kw.arg] = ast.get_source_segment(source, kw.value)
    return _constants(
        state.context_kwargs, state.notebook_path, state.export_path, state.pipeline_root
    )


def _context_run(stmt, state: _Export, source: str, cell: int) -> list[str]:
    """``context.run(x)`` adds ``x`` to the pipeline: a name as it is, an expression
    bound to ``_component_<n>``; ``r = context.run(x)`` keeps ``r.component`` working."""
    if not stmt.value.args:
        raise state.error(cell, "context.run() without a component")
    arg = stmt.value.args[0]
    if isinstance(arg, ast.Name):
        ref, new = arg.id, []
    else:
        state.unnamed += 1
        ref = f"_component_{state.unnamed}"
        new = [f"{ref} = {ast.get_source_segment(source, arg)}"]
    state.components.append(ref)
    if isinstance(stmt, ast.Assign):
        state.needs_namespace = True
        targets = " = ".join(ast.get_source_segment(source, t) for t in stmt.targets)
        new.append(f"{targets} = SimpleNamespace(component={ref})")
    return new


#: The top-level statements the export rewrites: (which, how). A rewrite gives the
#: statement's new lines, or None to keep it as it is.
_REWRITES = [
    (lambda stmt, state: isinstance(stmt, (ast.Import, ast.ImportFrom)), _context_import),
    (
        lambda stmt, state: (
            isinstance(stmt, ast.Assign) and _is_call_to(stmt.value, state.interactive_names)
        ),
        _context_assignment,
    ),
    (
        lambda stmt, state: (
            isinstance(stmt, (ast.Expr, ast.Assign))
            and _is_call_to(stmt.value, state.context_names, "run")
        ),
        _context_run,
    ),
]


def _rewrite(source: str, tree: ast.Module, state: _Export, cell: int) -> str:
    """A cell's code with its statements rewritten (see :data:`_REWRITES`)."""
    lines = source.split("\n")
    replacements = []  # (first line, last line, new lines), 1-based
    for stmt in tree.body:
        for applies, rewrite in _REWRITES:
            if applies(stmt, state):
                new = rewrite(stmt, state, source, cell)
                if new is not None:
                    replacements.append((stmt.lineno, stmt.end_lineno, new))
                break
    for first, last, new in sorted(replacements, reverse=True):
        lines[first - 1 : last] = new
    return "\n".join(lines).strip("\n")


def _export_cell(raw: str, state: _Export, cell: int) -> str | None:
    """A code cell's part of the file, or None if it has none."""
    if not raw.strip() or _skipped(raw):
        return None
    source = _without_magics(raw)
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise NotebookExportError(
            f"{state.notebook_path}: cell {cell} does not parse: {e}"
        ) from None
    if _uses_show(tree, state.context_names):
        if any(_is_call_to(n, state.context_names, "run") for n in ast.walk(tree)):
            raise NotebookExportError(
                f"{state.notebook_path}: cell {cell} both runs components and shows outputs; put the "
                "show/display calls in a cell of their own so the export can leave them out"
            )
        return None
    text = _rewrite(source, tree, state, cell)
    leftover = [
        n
        for n in ast.walk(ast.parse(text or "pass"))
        if isinstance(n, ast.Name) and n.id in state.context_names
    ]
    if leftover:
        raise NotebookExportError(
            f"{state.notebook_path}: cell {cell} line {leftover[0].lineno} uses the InteractiveContext other "
            "than to construct it, run components (at the top level of a cell) or show outputs"
        )
    return f"# -- code cell {cell} " + "-" * 55 + "\n" + text if text else None


def _header(state: _Export, runner: str) -> list[str]:
    """The file's docstring and imports."""
    notebook, export = os.path.basename(state.notebook_path), os.path.basename(state.export_path)
    header = [
        f'"""Pipeline exported from {notebook} on {time.strftime("%Y-%m-%d %H:%M")}.',
        "",
        f"Run it with ``python {export}`` ({runner} runner), or register it with",
        f"``conveyor pipeline create --pipeline-path {export}``.",
        '"""',
        "",
        "import os",
    ]
    if state.needs_namespace:
        header.append("from types import SimpleNamespace")
    return header + ["", "from conveyor.dsl import Pipeline", ""]


def _footer(state: _Export, runner: str) -> list[str]:
    """The module-level Pipeline and the runner's call under ``if __name__ == "__main__":``."""
    pipeline_args = (
        "PIPELINE_NAME, PIPELINE_ROOT, components=["
        + ", ".join(dict.fromkeys(state.components))
        + "]"
    )
    if "beam_pipeline_args" in state.context_kwargs:
        pipeline_args += ", beam_pipeline_args=BEAM_PIPELINE_ARGS"
    import_line, main_lines = RUNNERS[runner]
    return [
        "# -- the pipeline " + "-" * 60,
        f"pipeline = Pipeline({pipeline_args})",
        "",
        "",
        'if __name__ == "__main__":',
        "    " + import_line,
        "",
    ] + ["    " + line if line else "" for line in main_lines]


def export_notebook(
    notebook_path: str, export_path: str, runner: str = "local", pipeline_root: str | None = None
) -> str:
    """Writes a pipeline file from a notebook (see the module docstring); returns its path.

    Args:
      notebook_path: the ``.ipynb`` file.
      export_path: the ``.py`` file to write.
      runner: ``local`` (:class:`LocalDagRunner`), ``beam`` (:class:`BeamDagRunner`) or
        ``airflow`` (writes an Airflow DAG file when run).
      pipeline_root: a path for the pipeline's root. Default: the notebook's
        ``pipeline_root=`` if it gave one, else ``<export dir>/<name>_root``.
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; runners: {', '.join(RUNNERS)}")
    state = _Export(notebook_path, export_path, pipeline_root)
    body = [
        part
        for cell, raw in enumerate(_cells(notebook_path), start=1)
        if (part := _export_cell(raw, state, cell)) is not None
    ]
    if not state.context_names:
        raise NotebookExportError(
            f"{notebook_path}: no 'context = InteractiveContext(...)' cell found"
        )
    if not state.components:
        raise NotebookExportError(f"{notebook_path}: no context.run(component) calls found")
    text = (
        "\n".join(_header(state, runner))
        + "\n"
        + "\n\n".join(body)
        + "\n\n\n"
        + "\n".join(_footer(state, runner))
        + "\n"
    )
    ast.parse(text)
    os.makedirs(os.path.dirname(os.path.abspath(export_path)), exist_ok=True)
    with open(export_path, "w", encoding="utf-8") as f:
        f.write(text)
    return export_path


def _constants(
    kwargs: dict[str, str], notebook_path: str, export_path: str, pipeline_root: str | None
) -> list[str]:
    """What ``context = InteractiveContext(...)`` becomes."""
    name = kwargs.get("pipeline_name")
    if name in (None, "None"):
        name = repr(_sanitize(os.path.splitext(os.path.basename(notebook_path))[0]))
    if pipeline_root is not None:
        root = repr(os.path.abspath(pipeline_root))
    elif kwargs.get("pipeline_root") not in (None, "None"):
        root = kwargs["pipeline_root"]
    else:
        root = 'os.path.join(os.path.dirname(os.path.abspath(__file__)), PIPELINE_NAME + "_root")'
    out = [f"PIPELINE_NAME = {name}", f"PIPELINE_ROOT = {root}"]
    if kwargs.get("beam_pipeline_args") not in (None, "None"):
        out.append(f"BEAM_PIPELINE_ARGS = {kwargs['beam_pipeline_args']}")
    return out

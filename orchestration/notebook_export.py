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

RUNNERS = {
    "local": ("from conveyor.orchestration.local_runner import LocalDagRunner",
              ["LocalDagRunner().run(pipeline)"]),
    "beam": ("from conveyor.orchestration.beam_runner import BeamDagRunner",
             ["BeamDagRunner().run(pipeline)"]),
    "airflow": ("from conveyor.orchestration.airflow import AirflowDagConfig, AirflowDagRunner",
                ["import sys",
                 "",
                 "# The DAG file to write (default: beside this file); put it in Airflow's DAG folder.",
                 "output = sys.argv[1] if len(sys.argv) > 1 else os.path.splitext(os.path.abspath(__file__))[0]"
                 " + \"_dag.py\"",
                 "print(AirflowDagRunner(AirflowDagConfig(output=output)).run(pipeline))"]),
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
    return stripped.startswith("# conveyor: skip") or "%%skip" in source or stripped.startswith("%%")


def _without_magics(source: str) -> str:
    """Line magics and shell escapes become blank lines (keeping line numbers)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def _is_call_to(node, names: set[str], attr: str | None = None) -> bool:
    """``node`` is ``name.attr(...)`` (attr given) or ``name(...)`` / ``mod.name(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if attr is not None:
        return isinstance(func, ast.Attribute) and func.attr == attr and isinstance(func.value, ast.Name) \
            and func.value.id in names
    if isinstance(func, ast.Name):
        return func.id in names
    return isinstance(func, ast.Attribute) and func.attr in names


def _uses_show(tree: ast.AST, context_names: set[str]) -> bool:
    """The cell calls ``context.show(...)`` or IPython's ``display(...)``."""
    for node in ast.walk(tree):
        if _is_call_to(node, context_names, "show"):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "display":
            return True
    return False


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "notebook"


def export_notebook(notebook_path: str, export_path: str, runner: str = "local",
                    pipeline_root: str | None = None) -> str:
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
    context_names: set[str] = set()
    context_kwargs: dict[str, str] = {}
    interactive_names = {"InteractiveContext"}
    body: list[str] = []
    components: list[str] = []
    needs_namespace = False
    counter = 0
    for number, raw in enumerate(_cells(notebook_path), start=1):
        if not raw.strip() or _skipped(raw):
            continue
        source = _without_magics(raw)
        try:
            tree = ast.parse(source)
        except SyntaxError as e:
            raise NotebookExportError(f"{notebook_path}: cell {number} does not parse: {e}") from None
        if _uses_show(tree, context_names):
            runs = [n for n in ast.walk(tree) if _is_call_to(n, context_names, "run")]
            if runs:
                raise NotebookExportError(
                    f"{notebook_path}: cell {number} both runs components and shows outputs; put the "
                    "show/display calls in a cell of their own so the export can leave them out")
            continue
        lines = source.split("\n")
        replacements: list[tuple[int, int, list[str]]] = []  # (first line, last line, new lines), 1-based
        for stmt in tree.body:
            new: list[str] | None = None
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                kept = [a for a in stmt.names if a.name != "InteractiveContext"]
                if len(kept) != len(stmt.names):
                    for a in stmt.names:
                        if a.name == "InteractiveContext":
                            interactive_names.add(a.asname or a.name)
                    if isinstance(stmt, ast.ImportFrom) and kept:
                        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in kept)
                        new = [f"from {'.' * stmt.level}{stmt.module or ''} import {names}"]
                    else:
                        new = [] if not kept else None
            elif isinstance(stmt, ast.Assign) and _is_call_to(stmt.value, interactive_names):
                if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                    raise NotebookExportError(f"{notebook_path}: cell {number}: assign the InteractiveContext "
                                              "to one name (context = InteractiveContext(...))")
                context_names.add(stmt.targets[0].id)
                call = stmt.value
                params = ["pipeline_name", "pipeline_root", "metadata_path", "beam_pipeline_args"]
                for i, arg in enumerate(call.args):
                    context_kwargs[params[i]] = ast.get_source_segment(source, arg)
                for kw in call.keywords:
                    context_kwargs[kw.arg] = ast.get_source_segment(source, kw.value)
                new = _constants(context_kwargs, notebook_path, export_path, pipeline_root)
            else:
                value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
                if value is not None and _is_call_to(value, context_names, "run"):
                    if not value.args:
                        raise NotebookExportError(f"{notebook_path}: cell {number}: context.run() without a component")
                    arg = value.args[0]
                    if isinstance(arg, ast.Name):
                        ref, new = arg.id, []
                    else:
                        counter += 1
                        ref = f"_component_{counter}"
                        new = [f"{ref} = {ast.get_source_segment(source, arg)}"]
                    components.append(ref)
                    if isinstance(stmt, ast.Assign):
                        # what context.run returned: code after it may use result.component.
                        needs_namespace = True
                        targets = " = ".join(ast.get_source_segment(source, t) for t in stmt.targets)
                        new.append(f"{targets} = SimpleNamespace(component={ref})")
            if new is not None:
                replacements.append((stmt.lineno, stmt.end_lineno, new))
        for first, last, new in sorted(replacements, reverse=True):
            lines[first - 1:last] = new
        text = "\n".join(lines).strip("\n")
        leftover = [n for n in ast.walk(ast.parse(text or "pass")) if isinstance(n, ast.Name) and n.id in context_names]
        if leftover:
            raise NotebookExportError(
                f"{notebook_path}: cell {number} line {leftover[0].lineno} uses the InteractiveContext other "
                "than to construct it, run components (at the top level of a cell) or show outputs")
        if text:
            body.append(f"# -- code cell {number} " + "-" * 55 + "\n" + text)
    if not context_names:
        raise NotebookExportError(f"{notebook_path}: no 'context = InteractiveContext(...)' cell found")
    if not components:
        raise NotebookExportError(f"{notebook_path}: no context.run(component) calls found")
    import_line, main_lines = RUNNERS[runner]
    header = [
        f'"""Pipeline exported from {os.path.basename(notebook_path)} on {time.strftime("%Y-%m-%d %H:%M")}.',
        "",
        f"Run it with ``python {os.path.basename(export_path)}`` ({runner} runner), or register it with",
        f"``conveyor pipeline create --pipeline-path {os.path.basename(export_path)}``.",
        '"""',
        "",
        "import os",
    ]
    if needs_namespace:
        header.append("from types import SimpleNamespace")
    header += ["", "from conveyor.dsl import Pipeline", ""]
    pipeline_args = "PIPELINE_NAME, PIPELINE_ROOT, components=[" + ", ".join(dict.fromkeys(components)) + "]"
    if "beam_pipeline_args" in context_kwargs:
        pipeline_args += ", beam_pipeline_args=BEAM_PIPELINE_ARGS"
    footer = [
        "# -- the pipeline " + "-" * 60,
        f"pipeline = Pipeline({pipeline_args})",
        "",
        "",
        'if __name__ == "__main__":',
        "    " + import_line,
        "",
    ] + ["    " + line if line else "" for line in main_lines]
    text = "\n".join(header) + "\n" + "\n\n".join(body) + "\n\n\n" + "\n".join(footer) + "\n"
    ast.parse(text)
    os.makedirs(os.path.dirname(os.path.abspath(export_path)), exist_ok=True)
    with open(export_path, "w", encoding="utf-8") as f:
        f.write(text)
    return export_path


def _constants(kwargs: dict[str, str], notebook_path: str, export_path: str, pipeline_root: str | None) -> list[str]:
    """What ``context = InteractiveContext(...)`` becomes."""
    name = kwargs.get("pipeline_name")
    if name in (None, "None"):
        name = repr(_sanitize(os.path.splitext(os.path.basename(notebook_path))[0]))
    if pipeline_root is not None:
        root = repr(os.path.abspath(pipeline_root))
    elif kwargs.get("pipeline_root") not in (None, "None"):
        root = kwargs["pipeline_root"]
    else:
        root = "os.path.join(os.path.dirname(os.path.abspath(__file__)), PIPELINE_NAME + \"_root\")"
    out = [f"PIPELINE_NAME = {name}", f"PIPELINE_ROOT = {root}"]
    if kwargs.get("beam_pipeline_args") not in (None, "None"):
        out.append(f"BEAM_PIPELINE_ARGS = {kwargs['beam_pipeline_args']}")
    return out

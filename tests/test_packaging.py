"""The package layout promises: the conveyor namespace, no bare top-level names, a fast CLI."""

import os
import subprocess
import sys

import pytest
from conftest import run_conveyor


def _py(code, cwd):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize("name", ["components", "beam_utils", "orchestration"])
def test_no_bare_top_level_package(tmp_path, name):
    proc = _py(f"import {name}", cwd=tmp_path)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_conveyor_namespace_maps_folders(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = _py(
        "import conveyor.components, conveyor.beam_utils, conveyor.orchestration, os;"
        "print(os.path.dirname(conveyor.components.__file__));"
        "print(os.path.dirname(conveyor.beam_utils.__file__))",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    comp, beam_utils = proc.stdout.split()
    assert os.path.samefile(comp, os.path.join(root, "components"))
    assert os.path.samefile(beam_utils, os.path.join(root, "beam_utils"))


def test_help_imports_neither_tensorflow_nor_beam(tmp_path):
    code = (
        "import sys, io, contextlib\n"
        "from conveyor.orchestration import cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    cli.main(['--help'])\n"
        "    for name in cli.COMMANDS:\n"
        "        try:\n"
        "            cli.main([name, '--help'])\n"
        "        except SystemExit:\n"
        "            pass\n"
        "heavy = [m for m in ('tensorflow', 'apache_beam', 'tfx_bsl', 'pyarrow') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "assert 'examples' in buf.getvalue() and '--input' in buf.getvalue()\n"
    )
    proc = _py(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_console_script_answers_help():
    proc = run_conveyor("--help", timeout=60)
    assert proc.returncode == 0 and "examples" in proc.stdout


def test_help_lists_every_command_with_its_modules_help_without_importing_beam(tmp_path):
    """``python -m conveyor.orchestration.cli --help`` as a user runs it, and what it loaded."""
    from conveyor.orchestration.cli import COMMANDS, load_command

    code = (
        "import runpy, sys\n"
        "sys.argv = ['conveyor', '--help']\n"
        "try:\n"
        "    runpy.run_module('conveyor.orchestration.cli', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'tensorflow', 'tfx_bsl', 'pyarrow'})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = _py(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr
    for name in COMMANDS:
        help_ = load_command(name).help
        assert isinstance(help_, str) and help_.strip() and "\n" not in help_, name
        width = max(map(len, COMMANDS))
        assert f"  {name:<{width}} {help_}\n" in proc.stdout, (name, proc.stdout)


@pytest.mark.parametrize("name", ["pipeline", "component", "examples"])
def test_command_help_is_its_modules_help(name):
    from conveyor.orchestration.cli import load_command

    proc = run_conveyor(name, "--help", check=True, timeout=120)
    assert " ".join(load_command(name).help.split()) in " ".join(proc.stdout.split())


def test_unknown_command_exits_2():
    proc = run_conveyor("nope", timeout=60)
    assert proc.returncode == 2 and "unknown command 'nope'" in proc.stderr


def test_pipeline_options_defaults_and_passthrough():
    from conveyor.beam_utils.options import pipeline_options, with_local_defaults

    assert with_local_defaults([]) == ["--runner=DirectRunner", "--direct_running_mode=in_memory"]
    args = with_local_defaults(["--direct_running_mode=multi_processing"])
    assert "--direct_num_workers=2" in args
    flags = [
        "--runner=DataflowRunner",
        "--project=p",
        "--region=r",
        "--temp_location=gs://b/t",
        "--some_future_flag=1",
    ]
    assert with_local_defaults(flags) == flags
    opts = pipeline_options(flags).get_all_options(retain_unknown_options=True)
    assert opts["runner"] == "DataflowRunner" and opts["project"] == "p"
    assert opts.get("some_future_flag") == "1"

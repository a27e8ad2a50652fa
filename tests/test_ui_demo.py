"""The demo ends by naming ``conveyor ui --root <output>`` and the URL it serves."""

from __future__ import annotations

import argparse
import shlex

import pytest

from conveyor.orchestration.demo import closing_lines
from conveyor.orchestration.ui import cli


def _parse(command: str) -> argparse.Namespace:
    words = shlex.split(command)
    assert words[:2] == ["conveyor", "ui"]
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(words[2:])


def test_demo_closing_lines_name_the_command_and_url():
    lines = closing_lines("out/demo")
    assert lines[1].strip() == "conveyor ui --root out/demo"
    assert lines[2].strip() == "then open http://127.0.0.1:8765/"
    args = _parse(lines[1].strip())  # the printed command is one `conveyor ui` takes
    assert args.root == ["out/demo"]
    assert f"http://{args.host}:{args.port}/" in lines[2]


def test_command_line_quotes_and_names_non_default_host_and_port():
    command, url = cli.command_line("my runs/demo", host="::1", port=9000)
    assert command == "conveyor ui --root 'my runs/demo' --host ::1 --port 9000"
    assert url == "http://[::1]:9000/"
    args = _parse(command)
    assert (args.root, args.host, args.port) == (["my runs/demo"], "::1", 9000)
    with pytest.raises(ValueError, match="root"):
        cli.command_line("")

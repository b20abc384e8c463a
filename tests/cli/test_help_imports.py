"""``xnatpic --help`` lists every subcommand without importing any of them; a named
subcommand imports only its own module. Each runs in a fresh interpreter, where
``sys.modules`` shows what was imported."""

from __future__ import annotations

import argparse
import ast
import importlib
import subprocess
import sys

import pytest

from xnatpic.cli.summaries import SUMMARIES

_PROBE = (
    "import sys\n"
    "from xnatpic.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('MODULES', sorted(m for m in sys.modules if m.startswith('xnatpic.cli.')))\n"
)


def _run(*argv: str) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                          text=True, check=True)
    head, _, modules = proc.stdout.rpartition("MODULES ")
    return head, ast.literal_eval(modules)


def test_top_level_help_imports_no_subcommand():
    text, modules = _run("--help")
    assert modules == ["xnatpic.cli.errors", "xnatpic.cli.main", "xnatpic.cli.summaries"]
    for name in SUMMARIES:
        assert f"    {name} " in text


@pytest.mark.parametrize("command", ["convert", "info", "upload"])
def test_subcommand_help_imports_only_its_module(command):
    text, modules = _run(command, "--help")
    others = {f"xnatpic.cli.{name}" for name in SUMMARIES} - {f"xnatpic.cli.{command}"}
    assert f"xnatpic.cli.{command}" in modules
    assert others.isdisjoint(modules)
    assert f"usage: xnatpic {command}" in text


@pytest.mark.parametrize("name", list(SUMMARIES))
def test_summaries_are_the_subcommands_help(name):
    # the line --help lists without the module is the one the module registers
    parser = argparse.ArgumentParser(formatter_class=lambda prog: argparse.HelpFormatter(
        prog, width=1000))
    sub = parser.add_subparsers()
    importlib.import_module(f"xnatpic.cli.{name}").add_parser(sub)
    assert f"    {name}  " in parser.format_help()
    assert SUMMARIES[name] in parser.format_help()

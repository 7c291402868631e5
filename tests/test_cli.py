"""The ``seq2exp`` command table: every command is registered by the module `COMMANDS` names, and
start-up imports nothing heavy before a command needs it (checked by module, never by time)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kipoi_seq2exp.cli import COMMANDS, build_parser

HEAVY = ("torch", "kipoi", "pandas", "pytorch_lightning", "matplotlib", "scipy")


def subcommands(parser) -> dict:
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def is_complete(sub) -> bool:
    """Registered by its module: a handler, or actions of its own (``seq2exp data fetch-chr22``)."""
    return sub.get_default("func") is not None or any(a.dest == "data_command" for a in sub._actions)


def test_every_command_is_registered_by_its_module_with_a_handler():
    full = subcommands(build_parser(None))
    assert list(full) == list(COMMANDS)
    assert all(is_complete(sub) for sub in full.values())


@pytest.mark.parametrize("command", sorted({c.module: n for n, c in COMMANDS.items()}.values()))
def test_a_command_imports_only_its_own_module(command):
    parser = build_parser(command)
    stubs = {n for n, sub in subcommands(parser).items() if not is_complete(sub)}
    assert stubs == {n for n, c in COMMANDS.items() if c.module != COMMANDS[command].module}


def _imported_after(code: str) -> list[str]:
    script = f"import sys\n{code}\nimport json; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_help_imports_no_heavy_module():
    assert _imported_after("from kipoi_seq2exp.cli import build_parser\nbuild_parser('').format_help()") == []


def test_example_args_command_module_imports_no_torch():
    assert _imported_after("from kipoi_seq2exp.cli import build_parser\nbuild_parser('example-args')") == []

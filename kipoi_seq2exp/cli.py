"""The ``seq2exp`` command line. Each subpackage contributes its subcommands through a
``register(subparsers)`` function; this module only wires them together.

Start-up is kept short: `COMMANDS` (:mod:`kipoi_seq2exp.commands`) names every command's module and
one-line help, so ``seq2exp --help`` imports nothing else, and running a command imports only its own
module (whose handlers import torch, Lightning or kipoi when they run).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from .commands import COMMANDS, add_command


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser, with ``command``'s module imported and its commands complete; every other command
    is a stub carrying its help (enough for ``seq2exp --help``). ``None``: import every module."""
    parser = argparse.ArgumentParser(prog="seq2exp", description="Seq2Exp gene-expression model (Su et al., ICLR 2025) "
                                     "with learned regulatory-element masks, for Kipoi.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages (backend choices, ...)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {c.module for c in COMMANDS.values()} if command is None else (
        {COMMANDS[command].module} if command in COMMANDS else set())
    registered: set[str] = set()
    for name, entry in COMMANDS.items():
        if entry.module in modules and entry.module not in registered:
            importlib.import_module(entry.module).register(subparsers)
            registered.add(entry.module)
        elif entry.module not in modules:
            add_command(subparsers, name, add_help=False)
    for name, entry in COMMANDS.items():
        if entry.extended_by and entry.module in modules:
            importlib.import_module(entry.extended_by).extend(subparsers.choices[name])
    return parser


def _command_in(argv: Sequence[str]) -> Optional[str]:
    """The subcommand named in ``argv`` (the first argument that is one), if any."""
    return next((arg for arg in argv if arg in COMMANDS), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .zoo.compat import quiet_known_warnings

    quiet_known_warnings()  # third-party lines every run printed (pkg_resources, kipoiseq's 'postprocessing')
    args = build_parser(_command_in(argv) or "").parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        print(f"seq2exp {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``seq2exp`` command line. Each subpackage contributes its subcommands through a
``register(subparsers)`` function; this module only wires them together."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Optional, Sequence

# Modules that add subcommands, in the order ``seq2exp --help`` lists them.
COMMAND_MODULES = (
    "kipoi_seq2exp.model.cli",
    "kipoi_seq2exp.train.cli",
    "kipoi_seq2exp.simulate.cli",
    "kipoi_seq2exp.evaluate.cli",
    "kipoi_seq2exp.interpret.cli",
    "kipoi_seq2exp.airs.cli",
    "kipoi_seq2exp.zoo.cli",
    "kipoi_seq2exp.realdata.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2exp", description="Seq2Exp gene-expression model (Su et al., ICLR 2025) "
                                     "with learned regulatory-element masks, for Kipoi.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages (backend choices, ...)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        register: Callable[[argparse._SubParsersAction], None] = importlib.import_module(name).register
        register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .zoo.compat import quiet_known_warnings

    quiet_known_warnings()  # third-party lines every run printed (pkg_resources, kipoiseq's 'postprocessing')
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        print(f"seq2exp {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

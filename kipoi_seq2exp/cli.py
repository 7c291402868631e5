"""The ``seq2exp`` command line. Each subpackage contributes its subcommands through a
``register(subparsers)`` function; this module only wires them together.

Start-up is kept short: ``COMMANDS`` names every command's module and one-line help, so
``seq2exp --help`` imports nothing else, and running a command imports only its own module (whose
handlers import torch, Lightning or kipoi when they run).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NamedTuple, Optional, Sequence


class Command(NamedTuple):
    module: str  # defines ``register(subparsers)``, which adds this command (with `add_command`)
    help: str
    extended_by: Optional[str] = None  # defines ``extend(parser)``: a further mode of the command ``module`` made


_MODEL, _TRAIN, _ZOO = "kipoi_seq2exp.model.cli", "kipoi_seq2exp.train.cli", "kipoi_seq2exp.zoo.cli"
#: Every subcommand, in the order ``seq2exp --help`` lists them.
COMMANDS: dict[str, Command] = {
    "forward": Command(_MODEL, "forward pass on a random window (install check, timing)"),
    "train": Command(_TRAIN, "train a Seq2Exp model (OUTPUT_DIR/checkpoints/best.ckpt and last.ckpt)"),
    "validate": Command(_TRAIN, "score a checkpoint on the validation set; scores also go to <ckpt>.metrics.json"),
    "test": Command(_TRAIN, "score a checkpoint on the test set (MSE, MAE, Pearson r, mask ratio); scores also go "
                            "to <ckpt>.metrics.json"),
    "predict": Command(_TRAIN, "predict expression (and masks) to a TSV: a checkpoint on its data config (--ckpt), or "
                               "a zoo member / exported folder on your files without Kipoi (--member, --tracks)",
                       extended_by="kipoi_seq2exp.member_predict"),
    "merge": Command(_TRAIN, "merge the part files of sharded `seq2exp predict --shard I/N` runs into one TSV"),
    "export": Command(_TRAIN, "export a checkpoint into a model-zoo folder (safetensors + YAML + metrics)"),
    "simulate": Command("kipoi_seq2exp.simulate.cli", "write a simulated genome with known regulatory elements"),
    "evaluate": Command("kipoi_seq2exp.evaluate.cli", "score a model's predictions and learned mask on the "
                                                      "simulated genome"),
    "diagnose": Command("kipoi_seq2exp.interpret.cli", "influence profile: how strongly a model's prediction depends "
                                                       "on each distance from the TSS"),
    "perturb": Command("kipoi_seq2exp.interpret.cli", "in-silico CRISPRi: silence each element's signals, delta expression"),
    "mask-tracks": Command("kipoi_seq2exp.interpret.cli", "every gene's mask as a bigWig and a BED of segments (IGV/UCSC)"),
    "plot-locus": Command("kipoi_seq2exp.interpret.cli", "a plot per gene: the signals read, the mask, each element's "
                                                          "in-silico CRISPRi effect (PNG/SVG)"),
    "import-airs": Command("kipoi_seq2exp.airs.cli", "import an authors' released Seq2Exp checkpoint as a zoo member"),
    "register": Command(_ZOO, "add the Seq2Exp model zoo to kipoi as a local source (idempotent)"),
    "example-args": Command(_ZOO, "JSON dataloader arguments of a member's bundled example files (absolute paths), "
                                  "for `kipoi predict --dataloader_args`"),
    "get-example": Command(_ZOO, "copy a member's bundled example files into a folder and print their dataloader "
                                 "arguments (`kipoi get-example` copies nothing from a local source)"),
    "score-variants": Command(_ZOO, "ref / alt / alt-ref expression of every gene whose window holds a variant "
                                    "(SNVs and indels) to a TSV"),
    "install-weights": Command(_ZOO, "install an exported model (folder, .tar.gz/.zip or URL) into a member, "
                                     "checking its md5 and config"),
    "sync-metrics": Command(_ZOO, "copy each exported member's metrics.json into models.tsv (the model info kipoi "
                                  "shows)"),
    "labels": Command("kipoi_seq2exp.realdata.cli", "per-gene labels log10(1 + TSS-assay counts on the gene's strand "
                                                    "within TSS +/- w)"),
    "data": Command("kipoi_seq2exp.realdata.cli", "real data sets: download and verify"),
}


def add_command(subparsers: argparse._SubParsersAction, name: str, **kwargs) -> argparse.ArgumentParser:
    """The subparser of command ``name``, with its help from `COMMANDS` (the one place it is written)."""
    return subparsers.add_parser(name, help=COMMANDS[name].help, **kwargs)


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

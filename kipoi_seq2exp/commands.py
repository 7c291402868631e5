"""The table of ``seq2exp`` commands and `add_command`, the one way a module adds its command.

A leaf: it imports nothing of the package, so :mod:`kipoi_seq2exp.cli` (which imports every
command's module on demand) and those modules (which call `add_command`) both import it, and no
import arrow points back up from a subpackage to the command line.
"""
from __future__ import annotations

import argparse
from typing import NamedTuple, Optional


class Command(NamedTuple):
    module: str  # defines ``register(subparsers)``, which adds this command (with `add_command`)
    help: str
    # defines ``extend(parser)``: what the command does beyond ``module``'s layer (predict --member, the zoo
    # listing after export), kept out of that layer so that its imports point one way
    extended_by: Optional[str] = None


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
    "export": Command(_TRAIN, "export a checkpoint into a model-zoo folder (safetensors + YAML + metrics)",
                      extended_by="kipoi_seq2exp.member_export"),
    "simulate": Command("kipoi_seq2exp.simulate.cli", "write a simulated genome with known regulatory elements"),
    "evaluate": Command("kipoi_seq2exp.evaluate.cli", "score a model's predictions and learned mask on the "
                                                      "simulated genome"),
    "diagnose": Command("kipoi_seq2exp.interpret.cli", "influence profile: how strongly a model's prediction depends "
                                                       "on each distance from the TSS"),
    "perturb": Command("kipoi_seq2exp.interpret.cli", "in-silico CRISPRi: silence each element's signals, delta expression"),
    "mask-tracks": Command("kipoi_seq2exp.interpret.cli", "every gene's mask as a bigWig and a BED of segments (IGV/UCSC)"),
    "plot-locus": Command("kipoi_seq2exp.interpret.cli", "a plot per gene: the signals read, the mask, each element's "
                                                          "in-silico CRISPRi effect (PNG/SVG)"),
    "attribute": Command("kipoi_seq2exp.interpret.attribute_cli", "base attribution over a region (gradient x input "
                                                                  "or in-silico mutagenesis) as bigWig and TSV"),
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
    "sync-metrics": Command(_ZOO, "write the models.tsv columns each exported member's files fix (variant, cell type, "
                                  "window, signals, Hi-C normalisation, metrics: the model info kipoi shows)"),
    "labels": Command("kipoi_seq2exp.realdata.cli", "per-gene labels log10(1 + TSS-assay counts on the gene's strand "
                                                    "within TSS +/- w)"),
    "data": Command("kipoi_seq2exp.realdata.cli", "real data sets: download and verify"),
}


def add_command(subparsers: argparse._SubParsersAction, name: str, **kwargs) -> argparse.ArgumentParser:
    """The subparser of command ``name``, with its help from `COMMANDS` (the one place it is written)."""
    return subparsers.add_parser(name, help=COMMANDS[name].help, **kwargs)


def add_interval_arguments(p: argparse.ArgumentParser, of: str, seeds: str) -> None:
    """--samples and --seed: a 90 % interval ``of`` what the command reports, from Monte-Carlo samples
    of the mask Beta; ``seeds`` says what --seed fixes (here, not in interpret/, so that parsing a
    zoo command does not import torch)."""
    p.add_argument("--samples", type=int, default=0, metavar="N",
                   help=f"also give a 90%% interval of {of} from N samples of the mask Beta (batched --batch_size "
                        f"at a time; default 0 = none)")
    p.add_argument("--seed", type=int, default=0, help=f"seed of {seeds}; default 0")

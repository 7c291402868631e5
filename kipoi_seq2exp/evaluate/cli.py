"""``seq2exp evaluate``: score a trained model on the simulated genome (expression and elements)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..simulate.generate import embedded_dir
from ..commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "evaluate", description="MSE/MAE/Pearson per split, mask ratio, element recovery (AUPRC, base and "
                                          "element precision/recall) against the truth BED, next to MACS3 peaks, "
                                          "the DNase ranking and the oracle on the same genes.")
    p.add_argument("model", help="an export folder (model.safetensors + config.yaml) or a `seq2exp train` checkpoint")
    p.add_argument("--sim-dir", default=str(embedded_dir()), help="simulated genome folder (default: embedded)")
    p.add_argument("--out", required=True, help="folder for metrics.{csv,md}, mask .bw, elements .bed, locus PNGs")
    p.add_argument("--splits", nargs="+", default=["valid", "test"], choices=["train", "valid", "test"])
    p.add_argument("--loci", nargs="*", default=[], metavar="GENE_ID", help="draw these genes (one PNG each)")
    p.add_argument("--method", default="seq2exp", help="name of the model in the tables and file names")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=run)


def load_model(path: str):
    """An export folder or a training checkpoint -> Seq2Exp in eval mode."""
    from ..train.export import load_exported, model_from_checkpoint

    return load_exported(path) if Path(path).is_dir() else model_from_checkpoint(path)[0]


def run(args: argparse.Namespace) -> int:
    from .model_run import evaluate_on_simulated

    table = evaluate_on_simulated(load_model(args.model), args.sim_dir, args.out, splits=args.splits, loci=args.loci,
                                  method=args.method, batch_size=args.batch_size)
    print((Path(args.out) / "metrics.md").read_text())
    print(f"{len(table)} rows; files in {args.out}")
    return 0

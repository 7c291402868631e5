"""``seq2exp import-airs``: the authors' released checkpoint -> a zoo member folder."""
from __future__ import annotations

import argparse

from .importer import import_airs
from ..commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "import-airs", description="Reads the .ckpt without executing pickled code, infers the model "
                                          "configuration from its tensors, and writes weights + config + provenance.")
    p.add_argument("checkpoint", help="the authors' Lightning .ckpt (K562/GM12878, soft or hard)")
    p.add_argument("--variant", required=True, choices=["soft", "hard"], help="released variant of the checkpoint")
    p.add_argument("--out", required=True, help="member folder to write, e.g. model_zoo/Seq2Exp/K562-released-soft")
    p.add_argument("--cell-type", default=None, help="recorded in the member's metrics.json")
    p.add_argument("--window", type=int, default=None,
                   help="window length in bp; default: read from the checkpoint (the hard variant's positional "
                        "embedding, else the seq_range of its hyper-parameters), else 200000. A value that "
                        "contradicts the checkpoint is an error")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = import_airs(args.checkpoint, args.variant, args.out, cell_type=args.cell_type, window=args.window)
    print(f"imported {args.checkpoint} ({args.variant}) -> {out}")
    return 0

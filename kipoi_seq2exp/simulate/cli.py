"""``seq2exp simulate``: regenerate the simulated genome (byte-identical for the same params)."""
from __future__ import annotations

import argparse

from .generate import embedded_dir, generate
from ..commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "simulate", description="Draws genome, tracks, Hi-C, expression and the truth BED from a params "
                                          "YAML; the shipped params regenerate the embedded default byte for byte.")
    p.add_argument("--params", default=str(embedded_dir() / "params.yaml"), help="params YAML (default: the shipped one)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sim = generate(args.params, args.out)
    print(f"simulated genome written to {args.out} ({len(sim.genes)} genes)")
    return 0

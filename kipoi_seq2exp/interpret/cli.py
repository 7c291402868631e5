"""``seq2exp diagnose``: a member's influence profile (how far from the TSS its prediction listens)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from ..cli import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "diagnose", description="Mean |d expression / d signal| and |gradient x input| of the DNA per distance band from the "
                    "TSS, relative to the central 0-1 kb, over the first genes of the member's example files (or "
                    "--dataloader-args). A mask can only learn where this is not ~0.")
    p.add_argument("model", help="Seq2Exp/<member>, an export folder, or a `seq2exp train` checkpoint")
    p.add_argument("--dataloader-args", default=None,
                   help="JSON dataloader arguments (default: the member's example files; needed for a folder/checkpoint)")
    p.add_argument("--genes", type=int, default=8, help="how many genes of the data set (default 8)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.kipoi_dataloader import Seq2ExpDataset
    from ..evaluate.cli import load_model
    from .influence import generator_spread, influence_profile, kipoi_batches

    if Path(args.model).exists():
        if args.dataloader_args is None:
            raise ValueError(f"{args.model}: give --dataloader-args (JSON) for a folder or checkpoint")
        model, dataloader_args = load_model(args.model), json.loads(args.dataloader_args)
    else:
        from ..zoo.model import load_member_model
        from ..zoo.source import example_dataloader_args, member_row

        member_dir, _ = member_row(args.model)
        model = load_member_model(member_dir)
        dataloader_args = json.loads(args.dataloader_args) if args.dataloader_args else example_dataloader_args(args.model)
    member_reads = {"window": model.cfg.window, "signals": ",".join(s.name for s in model.cfg.signals)}
    dataset = Seq2ExpDataset(**{**member_reads, **dataloader_args})
    batches = kipoi_batches(dataset, args.genes)
    profile = influence_profile(model, batches)
    print(f"influence profile of {args.model} over {min(args.genes, len(dataset))} genes "
          f"(relative to the central 0-1 kb; eval mode):")
    print(profile.table())
    dna, signal = profile.at(5_000, 10_000) if model.cfg.window >= 20_000 else (float("nan"), float("nan"))
    print(f"5-10 kb: DNA {dna:.2e}, signal {signal:.2e}")
    print(f"generator spread (std of the generator's own mask mean across positions; ~0 = it says nothing "
          f"position-specific): {generator_spread(model, batches):.2e}")
    return 0

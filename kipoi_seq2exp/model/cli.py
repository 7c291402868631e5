"""``seq2exp forward``: one forward pass of a freshly initialised model on a generated window.
It proves an install works end to end (kernels, model, mask) without any data file."""
from __future__ import annotations

import argparse
import time

import torch

from ..ops.selective_scan import resolve_backend
from .config import PRESETS, preset
from .seq2exp import Seq2Exp
from ..commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "forward")
    p.add_argument("--preset", default="paper_soft", choices=sorted(PRESETS))
    p.add_argument("--window", type=int, default=20_000, help="window length in bp (paper: 200000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.set_defaults(func=run_forward)


def run_forward(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = preset(args.preset, window=args.window, centre=min(2_000, args.window))
    model = Seq2Exp(cfg).eval()
    g = torch.Generator().manual_seed(args.seed)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (1, cfg.window), generator=g), 4).float()
    signals = torch.rand(1, cfg.window, cfg.n_signals, generator=g)
    features = torch.randn(1, cfg.n_gene_features, generator=g)
    start = time.perf_counter()
    out = model.predict(seq, signals, features)
    seconds = time.perf_counter() - start
    print(f"preset {args.preset} ({cfg.variant}), window {cfg.window:,} bp, {model.n_parameters():,} parameters, "
          f"scan backend {resolve_backend(seq.device)}")
    print(f"predicted log10 expression: {out.expression.item():.4f}")
    print(f"mask ratio: {out.mask_ratio.item():.4f} (central {cfg.centre:,} bp forced: {cfg.centre / cfg.window:.4f})")
    print(f"forward: {seconds:.2f} s on {torch.get_num_threads()} thread(s)")
    return 0

"""``seq2exp train | validate | test | predict | merge | export``: argparse subcommands.

The top-level CLI (:mod:`kipoi_seq2exp.cli`) calls :func:`register` on its subparsers and then
``args.func(args)``. Handlers import Lightning only when they run, so ``--help`` is fast;
they turn the errors a user can fix into a one-line message and exit status 2. The zoo sits above
this layer: ``seq2exp export`` gets its models.tsv row from :mod:`kipoi_seq2exp.member_export`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from ..data.errors import DataInputError
from .config import ConfigError, packaged_configs
from .export import CheckpointError
from .shards import DEFAULT_CHUNK_GENES, Shard, ShardError
from ..commands import add_command

USER_ERRORS = (ConfigError, CheckpointError, DataInputError, ShardError)

SET_HELP = "override one config value, e.g. --set train.max_steps=100 --set data.fasta=hg38.fa (repeatable)"


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(packaged_configs())
    parser.add_argument("--config", metavar="NAME_OR_PATH",
                        help=f"run config: a packaged name ({names}) or a YAML path with sections model, data, "
                        "train; default: the config stored in the checkpoint (--resume / --ckpt)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help=SET_HELP)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add train, validate, test, predict, merge and export; each sets ``func`` to its handler."""
    p = add_command(subparsers, "train")
    _add_config_args(p)
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (weights, optimiser, schedule, step); "
                   "without --config its stored config is used")
    p.set_defaults(func=train_command)

    for name in ("validate", "test"):
        p = add_command(subparsers, name)
        p.add_argument("--ckpt", required=True, metavar="CKPT", help="checkpoint written by seq2exp train")
        _add_config_args(p)
        p.set_defaults(func=validate_command if name == "validate" else test_command)

    p = add_command(subparsers, "predict")
    # not required by argparse: the top-level command takes --member instead (member_predict.extend)
    p.add_argument("--ckpt", metavar="CKPT", help="checkpoint written by seq2exp train")
    p.add_argument("--out", required=True, metavar="TSV", help="output table (one row per gene); part files go to "
                   "TSV.parts/, provenance to TSV.manifest.json")
    p.add_argument("--split", default="all", choices=("train", "valid", "test", "all"), help="genes to predict")
    p.add_argument("--shard", default="0/1", metavar="I/N", help="predict only block I (0-based) of N contiguous "
                   "blocks of the genes, e.g. --shard $SLURM_ARRAY_TASK_ID/N; the run that completes the set merges "
                   "it into TSV (or: seq2exp merge TSV); default 0/1 (all genes)")
    p.add_argument("--chunk-genes", type=int, default=DEFAULT_CHUNK_GENES, metavar="K",
                   help="genes per part file, rounded up to a multiple of the eval batch size; a rerun skips the "
                   f"parts already written (default {DEFAULT_CHUNK_GENES})")
    p.add_argument("--threads", type=int, metavar="T", help="CPU threads of this process (torch.set_num_threads); "
                   "give 1 when several shards share one machine's cores")
    _add_config_args(p)
    p.set_defaults(func=predict_command)

    p = add_command(subparsers, "merge")
    p.add_argument("out", metavar="TSV", help="the --out of the sharded predict runs: reads TSV.parts/")
    p.set_defaults(func=merge_command)

    p = add_command(subparsers, "export")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--cell-type", required=True, help="cell type the model was trained on, e.g. K562")
    p.add_argument("--out", required=True, metavar="DIR", help="e.g. model_zoo/Seq2Exp/K562-paper")
    p.set_defaults(func=export_command)


def _user_errors_exit(run: Callable[[], None], command: str) -> int:
    try:
        run()
    except USER_ERRORS as err:
        print(f"seq2exp {command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def train_command(args: argparse.Namespace) -> int:
    def run() -> None:
        from .export import read_checkpoint
        from .runner import fit, resolve_run

        checkpoint = read_checkpoint(args.resume) if args.resume else None
        run_dir = fit(resolve_run(args.config, args.overrides, checkpoint, args.resume), resume=args.resume)
        print(f"run folder: {run_dir}; checkpoints/best.ckpt = lowest validation MSE, checkpoints/last.ckpt = "
              "final state")

    return _user_errors_exit(run, "train")


def _evaluate_command(args: argparse.Namespace, stage: str) -> int:
    def run() -> None:
        from .runner import evaluate

        scores = evaluate(args.ckpt, stage, args.config, args.overrides)
        print(", ".join(f"{k} {v:.4g}" for k, v in scores.items()))

    return _user_errors_exit(run, stage)


def validate_command(args: argparse.Namespace) -> int:
    return _evaluate_command(args, "validate")


def test_command(args: argparse.Namespace) -> int:
    return _evaluate_command(args, "test")


def predict_command(args: argparse.Namespace) -> int:
    def run() -> None:
        if args.ckpt is None:
            raise CheckpointError("give --ckpt CKPT (a checkpoint of `seq2exp train`). Fix: add it.")
        import torch

        from .runner import predict

        if args.threads:
            torch.set_num_threads(args.threads)
        shard = Shard.parse(args.shard)
        table = predict(args.ckpt, args.out, args.split, args.config, args.overrides, shard, args.chunk_genes)
        if table is None:
            print(f"shard {shard} done: its parts are in {args.out}.parts; other shards' parts are missing. Run "
                  f"`seq2exp merge {args.out}` once they are done (the last shard to finish merges by itself).")
        else:
            print(f"{len(table)} predictions written to {args.out} (provenance: {args.out}.manifest.json)")

    return _user_errors_exit(run, "predict")


def merge_command(args: argparse.Namespace) -> int:
    def run() -> None:
        from .shards import merge

        table = merge(args.out)
        print(f"{len(table)} predictions written to {args.out} (provenance: {args.out}.manifest.json)")

    return _user_errors_exit(run, "merge")


def export_command(args: argparse.Namespace) -> int:
    def run() -> None:
        from .export import export_checkpoint

        print(f"exported to {export_checkpoint(args.checkpoint, args.cell_type, args.out)}")

    return _user_errors_exit(run, "export")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry (``python -m kipoi_seq2exp.train``) with the same subcommands."""
    parser = argparse.ArgumentParser(prog="seq2exp", description="Train, score, predict with and export Seq2Exp")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


__all__ = ["register", "train_command", "validate_command", "test_command", "predict_command", "merge_command",
           "export_command", "main", "USER_ERRORS"]

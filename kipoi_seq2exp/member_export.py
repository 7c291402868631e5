"""``seq2exp export --out model_zoo/Seq2Exp/NAME``: the trainer's export, then the member's models.tsv row.

The trainer (:mod:`kipoi_seq2exp.train.cli`) writes the export folder; listing it in its model group
is the zoo's job (`zoo.source.list_export_in_group`). This module joins the two on the command
line (:func:`extend`, wired by :mod:`kipoi_seq2exp.cli`), so the train layer never imports the zoo.
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Callable


def extend(parser: argparse.ArgumentParser) -> None:
    """After the trainer's ``seq2exp export`` succeeds, list the export in the group it was written into."""
    parser.set_defaults(func=functools.partial(export_command, parser.get_default("func")))


def export_command(checkpoint_command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The trainer's export; then, for a folder inside a model group (a models.tsv beside it), its row."""
    status = checkpoint_command(args)
    if status == 0 and list_in_group(Path(args.out), Path(args.checkpoint)):
        print(f"listed as {Path(args.out).parent.name}/{Path(args.out).name} in {Path(args.out).parent / 'models.tsv'}")
    return status


def list_in_group(member_dir: Path, checkpoint: Path) -> bool:
    """`list_export_in_group` with the run config that trained ``checkpoint`` (``<run>/checkpoints/x.ckpt``
    -> ``<run>/config.yaml``; 'custom' when there is none). True when a row was added."""
    from .zoo.source import list_export_in_group

    run_config = checkpoint.resolve().parent.parent / "config.yaml"
    return list_export_in_group(member_dir, str(run_config) if run_config.is_file() else "custom")


__all__ = ["extend", "export_command", "list_in_group"]

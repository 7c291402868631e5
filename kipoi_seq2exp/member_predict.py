"""``seq2exp predict --member NAME|FOLDER --tracks DNase=x.bw ...``: a member on the user's files, no Kipoi.

The trainer defines ``seq2exp predict --ckpt`` (a training checkpoint and its run config); this
module adds the member mode to the same command (:func:`extend`, wired by :mod:`kipoi_seq2exp.cli`).
Genes are predicted by `kipoi_seq2exp.predict.predict_genes`, the package's one prediction loop,
through `Member.predict`, the call ``kipoi predict`` makes. Outputs:

- ``OUT`` (TSV, one row per gene, gene table order): gene_id, chrom, start, end (the window),
  strand, qc, prediction (log10 expression), mask_ratio: the columns of ``seq2exp predict --ckpt``;
- ``--mask`` (HDF5, default OUT with ``.mask.h5``), in ``kipoi predict --layer mask``'s layout:
  ``preds/expression`` (genes,), ``preds/mask`` (genes, L / bin) in genome orientation,
  ``metadata/gene_id``, ``metadata/qc``, ``metadata/gene_strand``, ``metadata/ranges/{chr,start,end}``.
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Callable

#: Options of the --ckpt mode (dest -> default), refused beside --member.
CHECKPOINT_ONLY = {"config": None, "overrides": [], "split": "all", "shard": "0/1"}
#: Options of the --member mode, refused beside --ckpt.
MEMBER_ONLY = ("tracks", "fasta", "genes", "mrna_features", "mask")


def extend(parser: argparse.ArgumentParser) -> None:
    """Add the --member mode to the trainer's ``seq2exp predict`` parser, whose --ckpt is optional:
    `predict_command` asks for exactly one of the two."""
    group = parser.add_argument_group("with a zoo member or an exported folder instead of --ckpt (no Kipoi)")
    group.add_argument("--member", metavar="NAME|FOLDER", help="a zoo member (Seq2Exp/K562) or a `seq2exp export` folder")
    group.add_argument("--tracks", nargs="+", default=[], metavar="NAME=FILE",
                       help="signal files by track name, e.g. DNase=K562.bw (names: H3K27ac, DNase, Hi-C); each is "
                            "checked against the member's channels before anything is predicted")
    group.add_argument("--fasta", metavar="FASTA", help="genome FASTA (plain or BGZF)")
    group.add_argument("--genes", metavar="TSV", help="gene table: gene_id, chrom, tss (0-based), strand")
    group.add_argument("--mrna-features", metavar="TSV", help="the 8 mRNA half-life features per gene_id "
                                                              "(default: zeros, with a warning)")
    group.add_argument("--mask", metavar="H5", help="mask output (default: OUT with .mask.h5 for its suffix)")
    group.add_argument("--mask-bin", type=int, default=1, metavar="N",
                       help="mean of the mask over N-bp bins; N divides the window (default 1: per base)")
    group.add_argument("--batch-size", type=int, default=8, metavar="B", help="windows per forward pass (default 8)")
    parser.set_defaults(func=functools.partial(predict_command, parser.get_default("func")))


def predict_command(checkpoint_command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """--ckpt: the trainer's handler; --member: `predict_member` on the user's files."""
    if args.member is None:
        if args.ckpt is None:
            raise ValueError("give --ckpt CKPT (a checkpoint of `seq2exp train`) or --member NAME|FOLDER (a zoo "
                             "member or exported folder). Fix: add one of them.")
        _refuse(args, [name for name in MEMBER_ONLY if getattr(args, name)], "--ckpt")
        return checkpoint_command(args)
    _refuse(args, [name for name, default in CHECKPOINT_ONLY.items() if getattr(args, name) != default]
            + (["ckpt"] if args.ckpt else []), "--member")
    if not (args.fasta and args.genes):
        raise ValueError("--member needs --fasta and --genes (and --tracks NAME=FILE for the signals).")
    import torch

    from .zoo.member import load_member

    if args.threads:
        torch.set_num_threads(args.threads)
    member = load_member(args.member)
    inputs = member.inputs(args.fasta, args.genes, parse_tracks(args.tracks), args.mrna_features)
    mask = args.mask or str(mask_path(args.out))
    genes = predict_member(member, inputs, args.out, mask, args.mask_bin, args.batch_size)
    print(f"{genes} genes: expression in {args.out}, masks in {mask}")
    return 0


def _refuse(args: argparse.Namespace, given: list[str], mode: str) -> None:
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"{options} cannot go with {mode}. Fix: leave {'it' if len(given) == 1 else 'them'} out.")


def parse_tracks(items: list[str]) -> dict[str, str]:
    """``["DNase=x.bw", ...]`` -> ``{"DNase": "x.bw"}``; ValueError for an item without a name or file."""
    tracks = {}
    for item in items:
        name, _, path = item.partition("=")
        if not name or not path or name in tracks:
            raise ValueError(f"--tracks {item!r}: give each track once as NAME=FILE, e.g. DNase=K562.bw.")
        tracks[name] = path
    return tracks


def mask_path(out: str | Path) -> Path:
    """Where the masks go by default: ``preds.tsv`` -> ``preds.mask.h5``."""
    out = Path(out)
    return out.with_name(out.stem + ".mask.h5") if out.suffix else out.with_name(out.name + ".mask.h5")


def predict_member(member, inputs, out: str | Path, mask_out: str | Path, mask_bin: int = 1,
                   batch_size: int = 8, progress: bool = True) -> int:
    """Predict every gene of ``inputs`` (`GeneInputs` of ``member``) and write the expression table ``out``
    and the masks ``mask_out`` (see the module doc), each atomically; returns the number of genes.
    Masks go to the HDF5 file gene by gene, so the genome's genes never sit in memory together."""
    import h5py
    import pandas as pd

    from .atomic import atomic_path
    from .predict import predict_genes
    from .zoo.member import bin_mask, mask_layer_of

    bins = mask_layer_of(f"mask:{mask_bin}", member.window).bin_size
    windows = inputs.windows
    rows = []
    with atomic_path(mask_out) as temporary, h5py.File(temporary, "w") as h5:
        masks = h5.create_dataset("preds/mask", (len(inputs), member.window // bins), dtype="float32",
                                  chunks=(1, member.window // bins))
        for prediction in predict_genes(member, inputs, batch_size, progress=progress, desc="predict"):
            gene, window = windows.gene_list[prediction.index], windows.window(prediction.index)
            masks[prediction.index] = bin_mask(prediction.mask[None], bins)[0]
            rows.append({"gene_id": gene.gene_id, "chrom": gene.chrom, "start": window.start, "end": window.end,
                         "strand": gene.strand, "qc": windows.qc[prediction.index].label,
                         "prediction": prediction.expression, "mask_ratio": float(prediction.mask.mean())})
        table = pd.DataFrame(rows)
        _write_gene_records(h5, table)
    with atomic_path(out) as temporary:
        table.to_csv(temporary, sep="\t", index=False)
    return len(table)


def _write_gene_records(h5, table) -> None:
    """Expression and each gene's identity beside the masks, under kipoi's HDF5 names."""
    import h5py
    import numpy as np

    h5["preds/expression"] = table["prediction"].to_numpy(np.float32)
    for column, name in (("gene_id", "gene_id"), ("qc", "qc"), ("strand", "gene_strand"), ("chrom", "ranges/chr")):
        h5[f"metadata/{name}"] = np.array(table[column].tolist(), dtype=h5py.string_dtype())
    h5["metadata/ranges/start"], h5["metadata/ranges/end"] = table["start"].to_numpy(), table["end"].to_numpy()


__all__ = ["extend", "predict_command", "predict_member", "parse_tracks", "mask_path"]

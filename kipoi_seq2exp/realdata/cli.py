"""``seq2exp labels`` and ``seq2exp data fetch-chr22``: per-gene labels and the real chr22 data."""
from __future__ import annotations

import argparse

from ..data.labels import DEFAULT_FLANK, STRAND_WORDS, make_labels
from .chr22 import CELL_TYPES, FASTA, cell_files
from ..commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "labels", description="Strand-specific TSS bigWigs (PRO-cap, CAGE, GRO-cap) + a gene table -> TSV with gene_id, "
                    "label = log10(1 + count), count. Minus-strand values may be stored negative or positive.")
    p.add_argument("--genes", required=True, metavar="TSV", help="gene table: gene_id, chrom, tss (0-based), strand")
    p.add_argument("--plus", required=True, metavar="BW", help="plus-strand bigWig of 5' end counts")
    p.add_argument("--minus", required=True, metavar="BW", help="minus-strand bigWig (negative or positive values)")
    p.add_argument("--out", required=True, metavar="TSV", help="label table to write")
    p.add_argument("--flank", type=int, default=DEFAULT_FLANK, metavar="W",
                   help=f"count within [TSS - W, TSS + W) (default {DEFAULT_FLANK})")
    p.set_defaults(func=run_labels)

    data = add_command(subparsers, "data")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = actions.add_parser(
        "fetch-chr22", help="reproduce the real hg38 chr22 folder (K562, GM12878) from the deepdetails sdist on PyPI",
        description="Downloads deepdetails==1.0.0rc2 (sdist) from PyPI, checks every file's sha256, renames, indexes "
                    "the FASTA and adds the gene table. Nothing is written unless every check passes.")
    f.add_argument("--out", required=True, metavar="DIR", help="folder to write (created)")
    f.add_argument("--archive", metavar="TAR_GZ", help="use this downloaded deepdetails-1.0.0rc2.tar.gz (offline)")
    f.add_argument("--index-url", default=None, metavar="URL",
                   help="PyPI JSON API root (default https://pypi.org/pypi)")
    f.set_defaults(func=run_fetch_chr22)


def run_labels(args: argparse.Namespace) -> int:
    table = make_labels(args.genes, args.plus, args.minus, args.out, args.flank)
    for strand, convention in table.attrs["conventions"].items():
        print(f"{convention.path}: {STRAND_WORDS[strand]}-strand counts stored as {convention.description}")
    print(f"{len(table)} gene labels (log10(1 + count) within TSS +/- {args.flank} bp, gene's strand) written to "
          f"{args.out}; {int((table['count'] == 0).sum())} genes have no count")
    return 0


def run_fetch_chr22(args: argparse.Namespace) -> int:
    from .fetch import DEFAULT_INDEX, fetch_chr22

    written = fetch_chr22(args.out, archive=args.archive, index=args.index_url or DEFAULT_INDEX)
    print(f"{len(written)} files written to {args.out}, every sha256 verified")
    files = cell_files(CELL_TYPES[0])
    print(f"train e.g.: seq2exp train --config real_chr22_k562 --set data.fasta={args.out}/{FASTA} "
          f"--set data.tracks.0.path={args.out}/{files.accessibility}")
    return 0


__all__ = ["register", "run_labels", "run_fetch_chr22"]

"""``seq2exp attribute``: base attribution over a region of each gene's window, as tracks and tables.

The outputs of ``seq2exp plot-locus --attribution`` without the plot: the same functions
(`attribution.attribute_gene`, `attribution.write_attributions`, `intervals.expression_interval`) on
the same options, for a user who wants the bigWig in a genome browser and no figure.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..commands import add_command, add_interval_arguments
from .cli import _attribution_arguments, _member_and_dataset, _member_arguments

if TYPE_CHECKING:  # the handlers import torch when they run, not `seq2exp attribute --help`
    from .attribution import Attribution


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "attribute", description="Base attribution of each gene's predicted expression over "
                    "a region of its window: gradient x input of the one-hot DNA, or in-silico mutagenesis (every base "
                    "to each of its 3 alternatives, track value ref - mean alt). Writes to DIR: GENE_ID.METHOD.bw "
                    "(genome coordinates), GENE_ID.ism.tsv (ism: every delta), tracks.txt (UCSC/IGV track lines) and "
                    "attribution.tsv (gene_id, region, method, expression[, interval]).")
    _member_arguments(p)
    p.add_argument("--genes", nargs="*", default=[], metavar="GENE_ID", help="genes to attribute (default: every gene)")
    p.add_argument("--method", choices=("grad", "ism"), default="grad",
                   help="grad: gradient x input, one backward per gene (default); ism: in-silico mutagenesis, 3 "
                        "forwards per base")
    _attribution_arguments(p)
    add_interval_arguments(p, of="each expression", seeds="the mask samples (with the gene id)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the tracks and tables")
    p.set_defaults(func=attribute_command)


def attribute_genes(model, dataset, gene_ids: Sequence[str], method: str, region: tuple[str, int, int] | None = None,
                    ism_batch: int = 64, batch_size: int = 8, samples: int = 0, seed: int = 0,
                    progress: bool = False) -> list[Attribution]:
    """The `Attribution` of each gene of ``gene_ids`` (every gene of the dataloader when empty), in that
    order, each with its expression's interval over ``samples`` mask draws when ``samples`` > 0.

    ``model`` is a `Seq2ExpModel`, ``dataset`` its dataloader on the user's files; only the wanted genes
    are predicted (an attribution asks for a few genes of what may be a genome-wide table).
    """
    from .attribution import attribute_gene
    from .intervals import expression_interval
    from ..predict import predict_genes
    from .tracks import gene_rows

    attributions = []
    for prediction in predict_genes(model, dataset, batch_size, progress=progress and method == "grad",
                                       desc="attribute", indices=gene_rows(dataset, gene_ids)):
        attribution = attribute_gene(model, dataset, prediction, method, region, ism_batch, progress)
        if samples:
            attribution.interval = expression_interval(model, prediction.inputs, attribution.gene_id, samples, seed,
                                                       batch_size)
        attributions.append(attribution)
    return attributions


def attribute_command(args: argparse.Namespace) -> int:
    from .attribution import parse_region, write_attributions

    region = parse_region(args.region) if args.region else None
    model, dataset = _member_and_dataset(args)
    attributions = attribute_genes(model, dataset, args.genes, args.method, region, args.ism_batch, args.batch_size,
                                   args.samples, args.seed, progress=not args.no_progress)
    sizes = {a.chrom: dataset.windows.fasta.chrom_length(a.chrom) for a in attributions}
    summary = write_attributions(attributions, args.output, sizes)
    print(f"{args.method} attribution of {len(attributions)} gene(s) written to {args.output} (summary: {summary})",
          file=sys.stderr)
    return 0


__all__ = ["register", "attribute_genes", "attribute_command"]

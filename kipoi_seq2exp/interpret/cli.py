"""``seq2exp diagnose | perturb | mask-tracks | plot-locus``: what a member's prediction depends on and what it selects."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from ..commands import add_command, add_interval_arguments

DATALOADER_ARGS_HELP = ("the member's dataloader arguments, as for `kipoi predict`: a JSON string, a JSON/YAML file, "
                        "or key=value pairs (fasta_file, gene_table, bigWigs, hic_file, mrna_features, ...); "
                        "`seq2exp example-args MEMBER` prints the bundled example's")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "diagnose", description="Mean |d expression / d signal| and |gradient x input| of the DNA per distance band from the "
                    "TSS, relative to the central 0-1 kb, over the first genes of the member's example files (or "
                    "--dataloader-args). A mask can only learn where this is not ~0.")
    p.add_argument("model", help="Seq2Exp/<member>, an export folder, or a `seq2exp train` checkpoint")
    p.add_argument("--dataloader-args", default=None,
                   help="JSON dataloader arguments (default: the member's example files; needed for a folder/checkpoint)")
    p.add_argument("--genes", type=int, default=8, help="how many genes of the data set (default 8)")
    p.set_defaults(func=run)

    p = add_command(subparsers, "perturb", description="In-silico CRISPRi on the signals: for every gene of the "
                    "dataloader and every candidate element in its window, the chromatin tracks over the element "
                    "are set to the window's background (or zero) and the gene is predicted again. Writes delta "
                    "log10 expression and % change per (gene, element), and the same rows in the ENCODE-rE2G / "
                    "CRISPR_comparison prediction layout (Score = -delta).")
    _member_arguments(p)
    candidates = p.add_mutually_exclusive_group(required=True)
    candidates.add_argument("--elements", metavar="BED", help="candidate elements (chrom, start, end[, name])")
    candidates.add_argument("--from-mask", action="store_true",
                            help="candidates = each gene's mask segments (mask >= --mask-threshold, forced centre "
                                 "left out)")
    p.add_argument("--mask-threshold", type=float, default=0.5, help="for --from-mask (default 0.5)")
    p.add_argument("--silence", choices=("background", "zero"), default="background",
                   help="level of a silenced element: the median of the window's signal outside the candidate "
                        "elements (default), or zero")
    p.add_argument("--channels", default=None, metavar="NAMES",
                   help="comma-separated tracks to silence (default: every track but Hi-C, whose contacts CRISPRi "
                        "does not change), e.g. 'DNase' or 'H3K27ac,DNase,Hi-C'")
    p.add_argument("--dna", choices=("none", "shuffle", "nmask"), default="none",
                   help="also replace each element's DNA, its signals kept: by a shuffle keeping its dinucleotide "
                        "counts (seeded by --seed and the element) or by N, and predict again: dna_* columns "
                        "(default none)")
    add_interval_arguments(p, of="each delta (columns *_lo90, *_hi90)",
                        seeds="the mask samples (with the gene id) and of the DNA shuffle (with the element)")
    p.add_argument("-o", "--output", required=True, metavar="TSV", help="one row per (gene, element)")
    p.add_argument("--e2g", default=None, metavar="TSV",
                   help="the ENCODE-rE2G layout copy (default: OUTPUT with .tsv replaced by .e2g.tsv)")
    p.set_defaults(func=perturb_command)

    p = add_command(subparsers, "mask-tracks", description="Predict every gene's mask and write PREFIX.bw (genome "
                    "coordinates; where windows overlap a base takes the max over genes) and PREFIX.bed (per gene, "
                    "runs of mask >= --threshold outside the forced centre, name = gene_id, score = 1000 x mean mask).")
    _member_arguments(p)
    p.add_argument("--threshold", type=float, default=0.5, help="BED segments: mask >= this (default 0.5)")
    p.add_argument("-o", "--output", required=True, metavar="PREFIX", help="writes PREFIX.bw and PREFIX.bed")
    p.set_defaults(func=mask_tracks_command)

    p = add_command(subparsers, "plot-locus", description="One plot per gene (PNG or SVG): the signals the model read, "
                    "with --attribution a base attribution, its learned mask, and, with --elements, each candidate "
                    "element labelled with its in-silico CRISPRi effect (delta log10 expression when its chromatin is silenced). TSS dashed, forced "
                    "centre shaded, x in kb from the TSS.")
    _member_arguments(p)
    p.add_argument("--genes", nargs="*", default=[], metavar="GENE_ID", help="genes to draw (default: every gene)")
    p.add_argument("--elements", metavar="BED", help="candidate elements to silence and label")
    p.add_argument("--format", choices=("png", "svg"), default="png")
    p.add_argument("--attribution", choices=("grad", "ism"), default=None,
                   help="add a base-attribution lane: gradient x input of the one-hot DNA, or in-silico mutagenesis "
                        "(every base to each of its 3 alternatives, ref - mean alt); also writes GENE_ID.METHOD.bw "
                        "(genome coordinates), GENE_ID.ism.tsv, tracks.txt and attribution.tsv to DIR")
    _attribution_arguments(p)
    add_interval_arguments(p, of="each expression", seeds="the mask samples (with the gene id)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for GENE_ID.png / .svg")
    p.set_defaults(func=plot_locus_command)


def _member_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL, --source, --dataloader_args and --batch_size, spelt as `seq2exp score-variants` spells them."""
    from ..zoo.cli import SOURCE_HELP
    from ..zoo.source import DEFAULT_SOURCE_NAME, GROUP

    p.add_argument("model", metavar="MODEL", help=f"e.g. {GROUP}/Demo-soft")
    p.add_argument("--source", default=DEFAULT_SOURCE_NAME, help=SOURCE_HELP)
    p.add_argument("--dataloader_args", nargs="+", required=True, metavar="ARGS", help=DATALOADER_ARGS_HELP)
    p.add_argument("--batch_size", type=int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _attribution_arguments(p: argparse.ArgumentParser) -> None:
    """--region and --ism-batch of a base attribution (`plot-locus --attribution`, `attribute`)."""
    p.add_argument("--region", default=None, metavar="CHR:START-END",
                   help="attributed bases, 1-based inclusive as IGV shows them (default: grad the whole window, ism "
                        "the central 1 kb around the TSS)")
    p.add_argument("--ism-batch", type=int, default=64, help="mutated windows per forward pass (default 64)")


def _member_and_dataset(args: argparse.Namespace):
    """The kipoi model (`Seq2ExpModel`) and its dataloader on the user's files."""
    from kipoi_utils.utils import parse_json_file_str_or_arglist

    from ..zoo.cli import build_dataset, load_model

    model = load_model(args.model, args.source)
    return model, build_dataset(model, parse_json_file_str_or_arglist(args.dataloader_args))


def perturb_command(args: argparse.Namespace) -> int:
    from .perturb import perturb_genes, read_elements_bed, silenced_channels, write_effects

    elements = read_elements_bed(args.elements) if args.elements else None
    model, dataset = _member_and_dataset(args)
    channels = silenced_channels(dataset.windows.config.tracks,
                                 None if args.channels is None else args.channels.split(","))
    e2g = args.e2g or str(Path(args.output).with_suffix("")) + ".e2g.tsv"
    effects = perturb_genes(model, dataset, elements, args.silence, channels, args.batch_size, args.mask_threshold,
                            progress=not args.no_progress, dna=args.dna, samples=args.samples, seed=args.seed)
    rows = write_effects(effects, args.output, e2g)
    names = ", ".join(dataset.windows.config.tracks[i].name for i in channels)
    dna = "" if args.dna == "none" else f", of replacing their DNA ({args.dna})"
    spread = f", 90 % intervals from {args.samples} mask samples" if args.samples else ""
    print(f"{rows} (gene, element) effects of silencing {names} to {args.silence}{dna}{spread} written to "
          f"{args.output} and {e2g} (ENCODE-rE2G layout)", file=sys.stderr)
    return 0


def mask_tracks_command(args: argparse.Namespace) -> int:
    from .tracks import write_mask_tracks

    model, dataset = _member_and_dataset(args)
    bigwig, bed, rows = write_mask_tracks(model, dataset, args.output, args.batch_size, args.threshold,
                                          progress=not args.no_progress)
    print(f"masks of {len(dataset)} genes written to {bigwig} (max over overlapping windows) and {rows} segments "
          f"to {bed}", file=sys.stderr)
    return 0


def plot_locus_command(args: argparse.Namespace) -> int:
    from .attribution import parse_region
    from .locus import plot_genes
    from .perturb import read_elements_bed

    elements = read_elements_bed(args.elements) if args.elements else None
    region = parse_region(args.region) if args.region else None
    model, dataset = _member_and_dataset(args)
    paths = plot_genes(model, dataset, args.genes, args.output, f".{args.format}", elements, batch_size=args.batch_size,
                       attribution=args.attribution, region=region, ism_batch=args.ism_batch,
                       progress=not args.no_progress, samples=args.samples, seed=args.seed)
    tracks = f", {args.attribution} attribution tracks in {args.output}/attribution.tsv" if args.attribution else ""
    print(f"{len(paths)} locus plots written to {args.output}{tracks}", file=sys.stderr)
    return 0


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

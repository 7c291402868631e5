"""``seq2exp register | example-args | get-example | score-variants | install-weights | sync-metrics``: the model-zoo
subcommands (added to ``seq2exp`` by :mod:`kipoi_seq2exp.cli` through :func:`register`)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .source import DEFAULT_SOURCE_NAME, GROUP, ZooError, unknown_member_message
from ..commands import add_command, add_interval_arguments

SOURCE_HELP = (f"kipoi model source holding the model (default {DEFAULT_SOURCE_NAME}, added by `seq2exp register`; "
               "'dir' takes MODEL as a folder path, e.g. /abs/path/model_zoo/Seq2Exp/K562)")
PATH_HELP = "model source folder (default: model_zoo of this kipoi-seq2exp checkout)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "register")
    p.add_argument("--name", default=DEFAULT_SOURCE_NAME, help=f"source name (default {DEFAULT_SOURCE_NAME})")
    p.add_argument("--path", help=PATH_HELP)
    p.set_defaults(func=register_command)

    p = add_command(subparsers, "example-args")
    p.add_argument("model", metavar="MODEL", help=f"e.g. {GROUP}/Demo-soft")
    p.add_argument("--path", help=PATH_HELP)
    p.set_defaults(func=example_args_command)

    p = add_command(subparsers, "get-example")
    p.add_argument("model", metavar="MODEL", help=f"e.g. {GROUP}/K562")
    p.add_argument("-o", "--output", default="example", metavar="DIR", help="folder to copy them to (default example)")
    p.add_argument("--path", help=PATH_HELP)
    p.set_defaults(func=get_example_command)

    p = add_command(subparsers, "score-variants")
    p.add_argument("model", metavar="MODEL", help=f"e.g. {GROUP}/Demo-soft")
    p.add_argument("--source", default=DEFAULT_SOURCE_NAME, help=SOURCE_HELP)
    p.add_argument("--dataloader_args", nargs="+", required=True, metavar="ARGS",
                   help="the member's dataloader arguments, as for `kipoi predict`: a JSON string, a JSON/YAML file, "
                        "or key=value pairs (fasta_file, gene_table, bigWigs, hic_file, mrna_features, ...)")
    p.add_argument("-i", "--input_vcf", required=True, metavar="VCF",
                   help="bgzipped VCF with a tabix index (.tbi/.csi)")
    p.add_argument("-o", "--output", required=True, metavar="TSV", help="output table, one row per (variant, gene)")
    p.add_argument("--batch_size", type=int, default=8, help="windows per forward pass (default 8)")
    add_interval_arguments(p, of="each delta (columns delta_lo90, delta_hi90; reference and alternative windows "
                              "drawn alike)", seeds="the mask samples (with the gene id)")
    p.set_defaults(func=score_variants_command)

    p = add_command(subparsers, "install-weights")
    p.add_argument("model", metavar="MODEL", help=f"e.g. {GROUP}/K562-paper")
    p.add_argument("origin", metavar="FOLDER_ARCHIVE_OR_URL")
    p.add_argument("--md5", help="md5 of the archive (required for downloads)")
    p.add_argument("--path", help=PATH_HELP)
    p.set_defaults(func=install_weights_command)

    p = add_command(subparsers, "sync-metrics")
    p.add_argument("--path", help=PATH_HELP)
    p.set_defaults(func=sync_metrics_command)


def register_command(args: argparse.Namespace) -> int:
    from .source import find_source_dir, kipoi_config_path, register_source

    changed = register_source(args.name, args.path)
    state = "added to" if changed else "already in"
    print(f"kipoi source {args.name!r} -> {find_source_dir(args.path)} ({state} {kipoi_config_path()}); "
          f"use e.g. `kipoi predict {GROUP}/Demo-soft --source {args.name} ...`")
    return 0


def example_args_command(args: argparse.Namespace) -> int:
    from .source import example_dataloader_args

    print(json.dumps(example_dataloader_args(args.model, args.path)))
    return 0


def get_example_command(args: argparse.Namespace) -> int:
    from .source import copy_examples

    copied = copy_examples(args.model, args.output, args.path)
    print(f"Example files copied to: {os.path.abspath(args.output)}; dataloader arguments:", file=sys.stderr)
    print(json.dumps(copied))
    return 0


def score_variants_command(args: argparse.Namespace) -> int:
    from kipoi_utils.utils import parse_json_file_str_or_arglist

    from ..data.variants import VariantReport, check_vcf
    from .variants import score_variants, write_scores

    check_vcf(args.input_vcf)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise ZooError(f"{args.output}: folder {out_dir} does not exist. Fix: create it or choose another output path.")
    model = load_model(args.model, args.source)
    dataset = build_dataset(model, parse_json_file_str_or_arglist(args.dataloader_args))
    report = VariantReport()
    scores = score_variants(model, dataset, args.input_vcf, args.batch_size, report, samples=args.samples,
                            seed=args.seed)
    rows = write_scores(scores, args.output, intervals=args.samples > 0)
    spread = f" with 90 % intervals from {args.samples} mask samples" if args.samples else ""
    print(f"{rows} (variant, gene) scores{spread} written to {args.output}. {report.summary()}", file=sys.stderr)
    return 0


def load_model(name: str, source: str):
    """``kipoi.get_model`` with an unknown source or model reported as one line naming the fix."""
    import kipoi

    sources = kipoi.config.model_sources()
    if source not in sources:
        raise ZooError(f"unknown kipoi source {source!r} (known: {sorted(sources)}). Fix: `seq2exp register` adds "
                       f"{DEFAULT_SOURCE_NAME!r}; or use --source dir with the member folder's path.")
    if not sources[source]._is_component(name, "model"):
        if source == "dir":
            raise ZooError(f"{name}: not a model folder of a kipoi model group "
                           f"(e.g. /path/model_zoo/{GROUP}/Demo-soft).")
        available = [m for m in sources[source].list_models().model if m.startswith(GROUP + "/")]
        raise ZooError(unknown_member_message(name, source, available))
    return kipoi.get_model(name, source=source)


def build_dataset(model, dataloader_args: dict):
    """The member's dataloader on the user's files; misspelt arguments are errors (zoo/compat.py), and so are
    channels the member was not trained on (checked here, as the commands' loops pass no ``channels`` input)."""
    import kipoi

    dataloader = model.default_dataloader
    dataset = dataloader(**kipoi.pipeline.validate_kwargs(dataloader, dataloader_args))
    model.spec.check_channels(dataset.channels)
    return dataset


def install_weights_command(args: argparse.Namespace) -> int:
    from .source import install_weights

    print(f"installed into {install_weights(args.model, args.origin, args.md5, args.path)}")
    return 0


def sync_metrics_command(args: argparse.Namespace) -> int:
    from .source import sync_metrics

    changed = sync_metrics(args.path)
    print(f"models.tsv rows updated from their exports: {changed}" if changed else "models.tsv already matches the exports")
    return 0

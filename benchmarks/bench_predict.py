"""Cost of the Kipoi layer: genes per second through ``kipoi predict`` vs the model called directly,
and ``score-variants`` time per (variant, gene) vs one gene's prediction.

Runs a model-zoo member (default ``Seq2Exp/Demo-soft`` of this checkout) on genes of the embedded
simulated genome, in ONE process:

- direct: build the dataset and the exported model, then `predict_genes` batch by batch;
- kipoi: ``kipoi predict <member> --source dir ... -o preds.tsv`` through kipoi's own CLI function
  (model loading, dataloader, batching, TSV writer; the interpreter start-up, ~2-5 s, is not counted);
- variants: ``score_variants`` over a VCF with ``--variants-per-gene`` SNVs near each TSS.

Timings alternate between the paths and the fastest of ``--repeats`` runs is kept. On a shared
machine use ``--threads 1``: OpenMP threads waiting for busy cores make 2-thread timings vary by
30 %. Targets: kipoi / direct <= 1.2; per variant / per gene <= 2.2 (with 2 variants per gene the
ideal is 1.5: one alternative window each, the gene's reference window shared).

    python benchmarks/bench_predict.py --threads 1           # 12 genes, 2 repeats, ~1-2 min
    python benchmarks/bench_predict.py --genes 4 --repeats 1 # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam
import torch

REPO = Path(__file__).resolve().parents[1]
SIM = REPO / "kipoi_seq2exp" / "resources" / "sim"


def gene_table(folder: Path, n_genes: int) -> Path:
    lines = (SIM / "genes.tsv").read_text().splitlines()
    path = folder / "genes.tsv"
    path.write_text("\n".join(lines[: n_genes + 1]) + "\n")
    return path


def variant_file(folder: Path, genes: Path, per_gene: int) -> str:
    """A bgzipped, indexed VCF with ``per_gene`` SNVs 50 bp apart downstream of each TSS."""
    from kipoi_seq2exp.data.genome import FastaWindows

    fasta = FastaWindows(str(SIM / "genome.fa"))
    records = []
    for line in genes.read_text().splitlines()[1:]:
        _, _, chrom, tss, _ = line.split("\t")[:5]
        for k in range(per_gene):
            pos = int(tss) + 51 + 50 * k
            ref = fasta.fetch(chrom, pos - 1, pos).upper()
            records.append((chrom, pos, ref, {"A": "G", "C": "T", "G": "A", "T": "C"}.get(ref, "A")))
    chroms = dict.fromkeys(r[0] for r in records)
    text = ["##fileformat=VCFv4.2"] + [f"##contig=<ID={c}>" for c in chroms]
    text += ["#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    text += [f"{c}\t{p}\tv{i}\t{r}\t{a}\t.\t.\t." for i, (c, p, r, a) in enumerate(sorted(set(records)))]
    plain = folder / "variants.vcf"
    plain.write_text("\n".join(text) + "\n")
    pysam.tabix_compress(str(plain), str(plain) + ".gz", force=True)
    pysam.tabix_index(str(plain) + ".gz", preset="vcf", force=True)
    return str(plain) + ".gz"


def dataloader_args(genes: Path) -> dict:
    return {"fasta_file": str(SIM / "genome.fa"), "gene_table": str(genes), "h3k27ac_bigwig": str(SIM / "h3k27ac.bw"),
            "dnase_bigwig": str(SIM / "dnase.bw"), "hic_file": str(SIM / "hic_5kb.cool"),
            "mrna_features": str(SIM / "mrna_features.tsv")}


def run_direct(member_dir: Path, dataset_cls, args: dict, batch_size: int) -> np.ndarray:
    """Dataset + exported model through the package's `predict_genes`: what ``kipoi predict`` does, without Kipoi."""
    from kipoi_seq2exp.predict import predict_genes
    from kipoi_seq2exp.train.export import load_exported

    genes = predict_genes(load_exported(member_dir), dataset_cls(**args), batch_size, masks=False, progress=False)
    return np.array([gene.expression for gene in genes], dtype=np.float32)


def run_kipoi(member_dir: Path, args: dict, batch_size: int, out_tsv: Path) -> None:
    from kipoi.cli.main import cli_predict

    cli_predict("predict", [str(member_dir), "--source", "dir", "--dataloader_args", json.dumps(args),
                            "--batch_size", str(batch_size), "-o", str(out_tsv)])


def run_variants(member_dir: Path, args: dict, vcf: str, batch_size: int) -> int:
    import kipoi

    from kipoi_seq2exp.zoo.variants import score_variants

    model = kipoi.get_model(str(member_dir), source="dir")
    dataset = model.default_dataloader(**args)
    return sum(1 for _ in score_variants(model, dataset, vcf, batch_size, progress=False))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--member", default=str(REPO / "model_zoo" / "Seq2Exp" / "Demo-soft"), help="member folder")
    parser.add_argument("--genes", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--variants-per-gene", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HOME", tempfile.mkdtemp())  # kipoi writes ~/.kipoi on import

    import kipoi

    member = Path(args.member).resolve()
    work = Path(tempfile.mkdtemp(prefix="bench_predict."))
    genes = gene_table(work, args.genes)
    vcf = variant_file(work, genes, args.variants_per_gene)
    loader_args = dataloader_args(genes)
    dataset_cls = kipoi.get_model(str(member), source="dir").default_dataloader  # member defaults: window, Hi-C
    run_kipoi(member, loader_args, args.batch_size, work / "warmup.tsv")  # first-call costs out of the timings

    direct, kipoi_s, variants = [], [], []
    for _ in range(args.repeats):  # alternate the paths so that load on a shared machine hits all of them
        direct.append(timed(lambda: run_direct(member, dataset_cls, loader_args, args.batch_size)))
        kipoi_s.append(timed(lambda: run_kipoi(member, loader_args, args.batch_size, work / "preds.tsv")))
        variants.append(timed(lambda: run_variants(member, loader_args, vcf, args.batch_size)))
    t_direct, expression = min(direct, key=lambda r: r[0])
    t_kipoi = min(k[0] for k in kipoi_s)
    t_variants, n_pairs = min(variants, key=lambda r: r[0])

    written = np.loadtxt(work / "preds.tsv", skiprows=1, usecols=0, dtype=np.float32)
    assert np.allclose(written, expression, atol=1e-5), "kipoi predict and the direct path disagree"
    per_gene = t_direct / args.genes
    per_variant = t_variants / n_pairs
    print(f"member {member.parent.name}/{member.name}, {args.genes} genes, batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch thread(s), fastest of {args.repeats}")
    print(f"direct model:   {t_direct:7.2f} s  {args.genes / t_direct:6.2f} genes/s")
    print(f"kipoi predict:  {t_kipoi:7.2f} s  {args.genes / t_kipoi:6.2f} genes/s  overhead x{t_kipoi / t_direct:.2f} "
          "(target <= 1.2)")
    print(f"score-variants: {t_variants:7.2f} s  {n_pairs} (variant, gene) pairs, {per_variant:.3f} s each = "
          f"x{per_variant / per_gene:.2f} one gene's prediction ({per_gene:.3f} s) (target <= 2.2)")


if __name__ == "__main__":
    main()

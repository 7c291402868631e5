"""Does in-silico CRISPRi (`seq2exp perturb`) rank a gene's elements by their true effect?

On the simulated genome (kipoi_seq2exp/resources/sim) every element's true effect on each gene is
known: ``causal_elements.bed`` holds the drop of log10 expression when the element alone is deleted;
every other (gene, element) pair, decoys included, has effect 0. For each test gene of the member
(chromosomes chr22 + chrX) every candidate of ``elements.tsv`` touching its window (enhancer,
open_inert, closed_motif, insulator, promoter, whatever gene it belongs to) is silenced by the
package's `perturb_genes`, and its score -delta is compared with the truth:

- Spearman(score, true effect) over all (gene, element) pairs (causal and decoys);
- AUPRC of causal (effect > 0) vs not;

each with a 95 % interval from resampling genes (`evaluate.bootstrap`), beside two baselines on the
same pairs: distance to the TSS (closer = higher) and an ABC-like score, the element's mean DNase x
the power-law contact (max(d, 1 kb) / 1 kb)^-gamma (gamma of the data layer's ABC fallback, 0.87),
d = |element centre - TSS|. Time per gene: wall-clock seconds, one CPU thread.

    python benchmarks/perturb_sim.py            # Demo-soft and Demo-hard rows; writes the table

Results: ``benchmarks/results/perturb_sim.md``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import kipoi
import numpy as np
import pandas as pd
import pyBigWig
import torch
from scipy.stats import spearmanr

from kipoi_seq2exp.data.config import DataConfig, HicOptions
from kipoi_seq2exp.data.genes import assign_split, read_gene_table
from kipoi_seq2exp.evaluate.bootstrap import Estimate, bootstrap
from kipoi_seq2exp.evaluate.metrics import average_precision
from kipoi_seq2exp.evaluate.windows import read_truth_bed
from kipoi_seq2exp.interpret.perturb import Element, ElementIndex, perturb_genes, silenced_channels
from kipoi_seq2exp.simulate import SIM_FILES, embedded_dir
from kipoi_seq2exp.zoo.source import DEFAULT_SOURCE_DIR, GROUP, example_dataloader_args

RESULT = Path(__file__).parent / "results" / "perturb_sim.md"
#: (row label, member, perturb_genes keyword arguments); channels None = chromatin tracks only
RUNS = [
    ("Seq2Exp-soft CRISPRi, background (default)", "Demo-soft", {"mode": "background"}),
    ("Seq2Exp-soft CRISPRi, zero", "Demo-soft", {"mode": "zero"}),
    ("Seq2Exp-soft CRISPRi, background, Hi-C too", "Demo-soft", {"mode": "background", "channels": "all"}),
    ("Seq2Exp-hard CRISPRi, background", "Demo-hard", {"mode": "background"}),
]


def test_gene_table(member: str, out: Path) -> Path:
    """The member's test genes (its data config's split) as a gene table file."""
    config = DataConfig.from_yaml(DEFAULT_SOURCE_DIR / GROUP / member / "data.yaml")
    genes = read_gene_table(str(SIM_FILES.path(embedded_dir(), "genes")))
    test = genes[assign_split(genes, config.split, str(config.gene_table)) == "test"]
    test.to_csv(out, sep="\t", index=False)
    return out


def candidates(sim_dir: Path) -> tuple[ElementIndex, pd.DataFrame]:
    """Every simulated element (name = element_id) and its row of elements.tsv."""
    table = pd.read_csv(SIM_FILES.path(sim_dir, "elements"), sep="\t")
    index = ElementIndex(Element(row.chrom, int(row.start), int(row.end), row.element_id)
                         for row in table.itertuples(index=False))
    return index, table.set_index("element_id")


def perturbation_scores(member: str, genes: Path, index: ElementIndex, options: dict) -> tuple[pd.DataFrame, float]:
    """(gene_id, element_id, score = -delta) of every candidate in every gene's window, and seconds per gene."""
    model = kipoi.get_model(str(DEFAULT_SOURCE_DIR / GROUP / member), source="dir")
    dataset = model.default_dataloader(**{**example_dataloader_args(f"{GROUP}/{member}"), "gene_table": str(genes)})
    tracks = dataset.windows.config.tracks
    channels = list(range(len(tracks))) if options.get("channels") == "all" else silenced_channels(tracks)
    start = time.perf_counter()
    effects = list(perturb_genes(model, dataset, index, options["mode"], channels, progress=False))
    seconds = (time.perf_counter() - start) / len(dataset)
    return pd.DataFrame({"gene_id": [e.gene_id for e in effects], "element_id": [e.name for e in effects],
                         "score": [-e.delta for e in effects], "tss": [e.tss for e in effects],
                         "start": [e.start for e in effects], "end": [e.end for e in effects],
                         "chrom": [e.chrom for e in effects]}), seconds


def baseline_scores(pairs: pd.DataFrame, sim_dir: Path) -> dict[str, tuple[np.ndarray, float]]:
    """Distance and ABC-like (DNase x power-law contact) scores of the pairs, and seconds per gene."""
    gamma = HicOptions().powerlaw_gamma
    distance = np.abs((pairs["start"] + pairs["end"]) / 2 - pairs["tss"]).to_numpy()
    start = time.perf_counter()
    with pyBigWig.open(str(SIM_FILES.path(sim_dir, "dnase"))) as bigwig:
        dnase = np.array([bigwig.stats(c, int(s), int(e), type="mean")[0] or 0.0
                          for c, s, e in zip(pairs["chrom"], pairs["start"], pairs["end"])])
    abc = dnase * (np.maximum(distance, 1_000) / 1_000) ** -gamma
    abc_seconds = (time.perf_counter() - start) / pairs["gene_id"].nunique()
    return {"distance to TSS (closer = higher)": (-distance, 0.0),
            f"DNase x power-law contact (ABC-like, gamma {gamma})": (abc, abc_seconds)}


def with_ci(statistic, groups: list[np.ndarray]) -> Estimate:
    """``statistic(rows)`` over all pairs and its gene-bootstrap 95 % interval (genes resampled)."""
    return bootstrap(lambda genes: statistic(np.concatenate([groups[g] for g in genes])), len(groups),
                     n_resamples=1000, seed=0)


def metrics_row(label: str, score: np.ndarray, effect: np.ndarray, groups: list[np.ndarray], distal: np.ndarray,
                seconds: float) -> str:
    """Spearman and AUPRC over all pairs, then over distal pairs only (promoters out: a gene's own
    promoter is its largest effect and closest element, which every method ranks first)."""
    cells = []
    for keep in (np.ones(len(score), dtype=bool), distal):
        kept = [rows[keep[rows]] for rows in groups]
        spearman = with_ci(lambda rows: spearmanr(score[rows], effect[rows]).statistic, kept)
        auprc = with_ci(lambda rows: average_precision(score[rows], effect[rows] > 0), kept)
        cells += [f"{e.value:.3f} [{e.low:.2f}, {e.high:.2f}]" for e in (spearman, auprc)]
    return f"| {label} | {' | '.join(cells)} | {seconds:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sim_dir = embedded_dir()
    index, elements = candidates(sim_dir)
    truth = {(gene, e.element_id): e.effect
             for gene, rows in read_truth_bed(SIM_FILES.path(sim_dir, "causal_elements")).items() for e in rows}
    lines, pairs = [], None
    kind = elements["kind"]
    with tempfile.TemporaryDirectory() as scratch:
        for label, member, options in RUNS:
            genes = test_gene_table(member, Path(scratch) / f"{member}.tsv")
            scores, seconds = perturbation_scores(member, genes, index, options)
            if pairs is None:
                pairs = scores
                effect = np.array([truth.get(key, 0.0) for key in zip(pairs["gene_id"], pairs["element_id"])])
                groups = [np.asarray(rows) for rows in pairs.groupby("gene_id", sort=False).indices.values()]
                distal = (kind.loc[pairs["element_id"]] != "promoter").to_numpy()
            assert scores[["gene_id", "element_id"]].equals(pairs[["gene_id", "element_id"]])
            lines.append(metrics_row(label, scores["score"].to_numpy(), effect, groups, distal, seconds))
            print(lines[-1], flush=True)
    for label, (score, seconds) in baseline_scores(pairs, sim_dir).items():
        lines.append(metrics_row(label, score, effect, groups, distal, seconds))
        print(lines[-1], flush=True)
    kinds = kind.loc[pairs["element_id"]].to_numpy()
    causal = effect > 0
    counts = ", ".join(f"{kind} {int((kinds == kind).sum())} ({int((causal & (kinds == kind)).sum())} causal)"
                       for kind in sorted(set(kinds)))
    header = [
        "# In-silico CRISPRi on the simulated genome (`benchmarks/perturb_sim.py`)", "",
        f"{len(groups)} test genes (chr22 + chrX), {len(pairs)} (gene, element) pairs: every candidate of "
        f"elements.tsv touching the gene's 20-kb window; {int(causal.sum())} causal (true effect > 0), the rest "
        f"effect 0. By kind: {counts}.",
        "Score of the model = -delta (predicted drop of log10 expression when the element's chromatin tracks are "
        "silenced); 95 % intervals from 1,000 resamples of the genes. Time: seconds per gene (all its elements), "
        "one CPU thread. Issue 19's targets (all pairs): Spearman >= 0.7, AUPRC >= 0.6.", "",
        "| method | Spearman(score, true effect) | AUPRC causal vs not | Spearman, distal | AUPRC, distal | s / gene |",
        "|---|---|---|---|---|---|",
    ]
    args.out.write_text("\n".join(header + lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

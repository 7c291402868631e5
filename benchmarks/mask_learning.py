"""Does the learned mask find the regulatory elements? An ablation on the simulated genome.

Every variant trains with the package's trainer on the embedded simulated genome (180 train
genes), with the same data and, unless its row says otherwise, the same budget (900 steps of batch 8;
exploration runs stopped once their generator had collapsed show it in "steps"), and is chosen on the valid
genes (lowest valid MSE checkpoint); the valid and test genes are then scored once by
``seq2exp evaluate``'s code (mask AUPRC, element precision/recall, enhancer-vs-open-decoy AUROC,
expression Pearson), beside MACS3 peaks, the DNase ranking and the oracle, plus each model's
influence profile (how strongly the prediction depends on 5-10 kb from the TSS).

    python benchmarks/mask_learning.py --variants cpu_soft predictor_centre [--steps N]
    python benchmarks/mask_learning.py --report      # the table from finished runs
    python benchmarks/mask_learning.py --sim DIR --variants predictor_centre   # on another simulated genome

``--sim DIR`` trains and scores on a genome written by ``seq2exp simulate`` (e.g. the embedded
params with 10x the genes); its runs and table are labelled with the folder's name.

Results: ``benchmarks/results/mask_learning.md``; runs (and each ``result.json``) in ``runs/mask_learning/<variant>``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from kipoi_seq2exp.data.dataset import WindowDataset
from kipoi_seq2exp.evaluate.baselines import signal_predictions
from kipoi_seq2exp.evaluate.bootstrap import bootstrap, pearson
from kipoi_seq2exp.evaluate.elements import element_mask_scores, enhancer_vs_decoy_auroc
from kipoi_seq2exp.evaluate.model_run import evaluate_on_simulated, evaluation_windows, simulated_data_config
from kipoi_seq2exp.evaluate.suite import simulated_inputs
from kipoi_seq2exp.evaluate.windows import as_windows
from kipoi_seq2exp.predict import predict_genes
from kipoi_seq2exp.interpret import generator_spread, influence_profile
from kipoi_seq2exp.simulate import SIM_FILES, embedded_dir
from kipoi_seq2exp.train.config import load_run_config
from kipoi_seq2exp.train.export import model_from_checkpoint, read_checkpoint
from kipoi_seq2exp.train.runner import fit

RESULTS = Path(__file__).parent / "results"
RUNS = Path("runs/mask_learning")

#: What the packaged configs were when the variants were run (demo_soft has since moved to the
#: cpu_motif_soft preset, batch 16): each variant's overrides apply on top of this.
OLD_RECIPE = {"demo_soft": ["model.preset=cpu_soft", "train.batch_size=8"]}

#: The cpu_motif_soft recipe and its budget (the 10x genome: batch 16 x 1,200 steps), shared by its ablations.
MOTIF_RECIPE = ["model.preset=cpu_motif_soft", "train.batch_size=16", "train.max_steps=1200", "train.warmup_steps=80",
                "train.val_every_n_steps=80", "train.checkpoint_every_n_steps=80"]

#: variant -> (packaged config, overrides, what it changes). Overrides are relative to today's
#: demo configs (the recipe). Exploration runs were stopped once their generator had collapsed: the
#: report's "steps" column says where (best checkpoint / last step).
VARIANTS: dict[str, tuple[str, list[str], str]] = {
    "cpu_soft": ("demo_soft", [], "the recipe: preset cpu_soft (50-bp tokens, sum readout, input gate), lr 2e-3"),
    "cpu_hard": ("demo_hard", [], "the recipe, hard 0/1 mask (preset cpu_hard)"),
    "gate_every_layer": ("demo_soft", ["model.mask_gate=every_layer"], "mask gates every predictor layer"),
    "noise": ("demo_soft", ["model.mask_gate=every_layer", "model.mask_noise=true"],
              "every-layer gate + noise bottleneck"),
    "noise_kl0.001": ("demo_soft", ["model.mask_gate=every_layer", "model.mask_noise=true", "model.kl_weight=0.001"],
                      "every-layer gate + noise bottleneck, KL weight 0.001"),
    "weak_prior": ("demo_soft", ["model.prior_scale=1.0", "model.kl_weight=0.001"], "prior Beta(1, 9), KL weight 0.001"),
    "sparse_prior": ("demo_soft", ["model.prior_scale=0.1"], "prior Beta(0.1, 0.9)"),
    "nokl": ("demo_soft", ["model.kl_weight=0.0"], "KL weight 0"),
    "kl_warmup": ("demo_soft", ["model.kl_weight=0.001", "train.kl_warmup_steps=450"],
                  "KL weight 0.001 reached after a 450-step warm-up"),
    "kl0.05": ("demo_soft", ["model.readout=window", "model.mask_gate=every_layer", "train.rc_augment=true",
                             "train.lr=1e-3", "model.kl_weight=0.05"],
               "window readout, every-layer gate, RC augmentation, lr 1e-3, KL weight 0.05"),
    "hard_prior1": ("demo_hard", ["model.readout=window", "model.compact_selected=true",
                                  "model.generator_reads_signals=false", "model.prior_mean=0.1", "model.prior_scale=1.0",
                                  "train.lr=1e-3"],
                    "hard, compacted predictor, window readout, prior Beta(1, 9), lr 1e-3"),
    "predictor_centre": ("demo_soft", ["model.predictor_dna=centre"],
                         "predictor reads the DNA only in the centre: distal DNA only through the mask"),
    "fixed_concentration": ("demo_soft", ["model.predictor_dna=centre", "model.generator_concentration=10"],
                            "predictor_dna centre, generator Beta at a fixed concentration 10 (its mean = sigmoid)"),
    "budget_fixed_concentration": ("demo_soft", ["model.predictor_dna=centre", "model.kl_weight=0.0",
                                                 "model.mask_budget=0.1", "model.generator_concentration=10"],
                                   "predictor_dna centre, no KL, mask budget 0.1, generator at fixed concentration 10"),
    "budget": ("demo_soft", ["model.predictor_dna=centre", "model.kl_weight=0.0", "model.mask_budget=0.1"],
               "predictor_dna centre, no KL, a mask budget (mean mask outside the centre <= 0.1)"),
    "dna_mask": ("demo_soft", ["model.predictor_dna=centre", "model.signal_scale=0.01", "model.kl_weight=0.0"],
                 "mask from the DNA alone (signal Beta x0.01), predictor_dna centre, no KL: open tokens only count "
                 "through a sequence-gated mask"),
    "dna_mask_3000": ("demo_soft", ["model.predictor_dna=centre", "model.signal_scale=0.01", "model.kl_weight=0.0",
                                    "train.max_steps=3000", "train.warmup_steps=200", "train.val_every_n_steps=200",
                                    "train.checkpoint_every_n_steps=200"],
                      "dna_mask with 3,000 steps (3.3x the budget)"),
    "abc_dna_mask": ("demo_soft", ["model.predictor_dna=centre", "model.signal_scale=0.01", "model.kl_weight=0.0",
                                   "model.sum_contribution=signals"],
                     "dna_mask, each token's contribution = exp(linear(its signals) + a position bias) x mask "
                     "(ABC form): only the mask can tell an enhancer from an open decoy"),
    "abc_contribution": ("demo_soft", ["model.predictor_dna=centre", "model.sum_contribution=signals"],
                         "predictor_centre with the ABC-form contribution (signal Beta and KL as the recipe)"),
    "motif_mask": ("demo_soft", MOTIF_RECIPE,
                   "preset cpu_motif_soft: stem started as JASPAR scanners, DNA-only mask, ABC contribution (w >= 0) "
                   "added with a positive slope, mask budget 0.1, no KL; batch 16 x 1,200 steps"),
    "motif_mask_head_join": ("demo_soft", MOTIF_RECIPE + ["model.sum_join=head"],
                             "motif_mask, but the sum readout enters the MLP head (either sign) instead of adding"),
    "motif_mask_random_stem": ("demo_soft", MOTIF_RECIPE + ["model.stem_motifs=''"],
                               "motif_mask, but the stem starts random (no JASPAR scanners)"),
}


def sim_overrides(sim: Path) -> list[str]:
    """Data overrides that point a demo config at another simulated genome (the demo configs' track order)."""
    keys = {"fasta": "fasta", "gene_table": "genes", "mrna_features": "mrna_features", "expression": "expression",
            "tracks.0.path": "h3k27ac", "tracks.1.path": "dnase", "tracks.2.path": "hic"}
    return [f"data.{key}={SIM_FILES.path(sim, name)}" for key, name in keys.items()]


def run_dir(name: str, sim: Path | None) -> Path:
    return RUNS / name if sim is None else RUNS / sim.name / name


def train_variant(name: str, steps: int | None, sim: Path | None = None) -> Path:
    config, overrides, _ = VARIANTS[name]
    overrides = OLD_RECIPE.get(config, []) + overrides
    extra = [f"train.output_dir={run_dir(name, sim)}"] + (sim_overrides(sim) if sim else [])
    if steps:
        extra += [f"train.max_steps={steps}", f"train.warmup_steps={steps // 15}",
                  f"train.val_every_n_steps={max(steps // 15, 1)}", f"train.checkpoint_every_n_steps={max(steps // 15, 1)}"]
    run = load_run_config(config, overrides + extra)
    start = time.perf_counter()
    folder = fit(run)
    (folder / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    return folder


def score_variant(name: str, sim: Path | None = None, n_influence_genes: int = 16) -> dict:
    folder = run_dir(name, sim)
    model, checkpoint = model_from_checkpoint(folder / "checkpoints" / "best.ckpt")
    sim = sim or embedded_dir()
    table = evaluate_on_simulated(model, sim, folder / "eval", method=name)
    valid = WindowDataset(simulated_data_config(sim, model), subset="valid")
    batches = list(DataLoader(torch.utils.data.Subset(valid, range(n_influence_genes)), batch_size=8))
    profile = influence_profile(model, batches)
    rows = table.to_dict(orient="records")
    return {"variant": name, "metrics": rows, "best_step": int(checkpoint["global_step"]),
            "run_steps": int(read_checkpoint(folder / "checkpoints" / "last.ckpt")["global_step"]),
            "influence": {"bands": profile.bands, "dna": profile.dna.tolist(), "signal": profile.signal.tolist()},
            "influence_5_10kb": profile.at(5_000, 10_000), "generator_spread": generator_spread(model, batches),
            "wall_seconds": float((folder / "wall_seconds.txt").read_text()) if (folder / "wall_seconds.txt").is_file() else None}


def intervals_on_test_genes(name: str, sim: Path | None = None, n_resamples: int = 1000) -> dict[str, list[float]]:
    """Test genes, 95 % gene-bootstrap intervals: expression Pearson, enhancer-vs-decoy AUROC of the
    mask, of the DNase ranking, and their paired difference (same resampled genes)."""
    model, _ = model_from_checkpoint(run_dir(name, sim) / "checkpoints" / "best.ckpt")
    sim_dir = sim or embedded_dir()
    test = WindowDataset(simulated_data_config(sim_dir, model), subset="test")
    records = list(predict_genes(model, test, batch_size=16, desc="test genes"))
    inputs = simulated_inputs(sim_dir)
    windows = as_windows(evaluation_windows(test))
    genes = [r.gene_id for r in records]
    predicted = np.array([r.expression for r in records])
    observed = np.array([inputs["targets"][g] for g in genes])
    dnase = {gene_id: track for gene_id, (_, track) in
             signal_predictions(windows, inputs["dnase_bigwig"], inputs["chrom_sizes"]).items()}
    scores = {"mask": element_mask_scores(windows, {r.gene_id: r.mask for r in records}, inputs["elements"]),
              "dnase": element_mask_scores(windows, dnase, inputs["elements"])}
    per_gene = {key: [table[table["gene_id"] == g] for g in genes] for key, table in scores.items()}

    def element_auroc(key: str, idx: np.ndarray) -> float:
        return enhancer_vs_decoy_auroc(pd.concat([per_gene[key][i] for i in idx]))

    statistics = {"pearson": lambda idx: pearson(predicted[idx], observed[idx]),
                  "mask_auroc": lambda idx: element_auroc("mask", idx),
                  "dnase_auroc": lambda idx: element_auroc("dnase", idx),
                  "mask_minus_dnase_auroc": lambda idx: element_auroc("mask", idx) - element_auroc("dnase", idx)}
    return {key: list(vars(bootstrap(stat, len(genes), n_resamples)).values()) for key, stat in statistics.items()}


def report(names: list[str], sim: Path | None = None, previous: str = "") -> str:
    """Markdown: valid (selection) and test (scored once) metrics of every scored variant.

    Runs live in the ignored ``runs/`` folder, so a fresh checkout has none: a variant (or the
    baselines) without a local ``result.json`` keeps its row from ``previous`` (the committed table).
    """
    header = ["| variant | what it changes | steps (best / run) | valid r | valid AUPRC | test r | test AUPRC "
              "| test element P / R | enhancer vs decoy AUROC (test) | influence 5-10 kb DNA / signal "
              "| generator spread |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    kept = {line.split("|")[1].strip(): line for line in previous.splitlines()[2:] if line.startswith("| ")}
    rows: dict[str, str] = {}
    baselines = None
    for name in names:
        path = run_dir(name, sim) / "result.json"
        if not path.is_file():
            if name in kept:
                rows[name] = kept[name]
            continue
        result = json.loads(path.read_text())
        metrics = {(r["method"], r["split"]): r for r in result["metrics"]}
        valid, test = metrics[(name, "valid")], metrics[(name, "test")]
        baselines = baselines or metrics
        dna, signal = result["influence_5_10kb"]
        rows[name] = (f"| {name} | {VARIANTS[name][2]} | {result.get('best_step', '?')} / {result.get('run_steps', '?')} "
                      f"| {valid['pearson']:.3f} | {valid['auprc']:.3f} | {test['pearson']:.3f} | {test['auprc']:.3f} "
                      f"| {_num(test['element_precision'])} / {_num(test['element_recall'])} "
                      f"| {test['enhancer_vs_decoy_auroc']:.3f} | {dna:.2g} / {signal:.2g} "
                      f"| {result['generator_spread']:.1e} |")
    for method in ("macs3_dnase_peaks", "dnase_ranking", "oracle"):
        if baselines:
            test = baselines[(method, "test")]
            rows[method] = (f"| {method} | baseline, same genes | - | - | {baselines[(method, 'valid')]['auprc']:.3f} "
                            f"| - | {test['auprc']:.3f} | {_num(test['element_precision'])} / "
                            f"{_num(test['element_recall'])} | {test['enhancer_vs_decoy_auroc']:.3f} | - | - |")
        elif method in kept:
            rows[method] = kept[method]
    return "\n".join(header + list(rows.values())) + "\n"


def _num(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=None, help="override train.max_steps (exploration only)")
    parser.add_argument("--score-only", action="store_true", help="score the runs' best checkpoints again")
    parser.add_argument("--report", action="store_true", help="only write the table from scored runs")
    parser.add_argument("--sim", type=Path, default=None, help="another simulated genome (seq2exp simulate --out)")
    parser.add_argument("--intervals", action="store_true",
                        help="add 95 %% gene-bootstrap intervals (test genes) to each variant's result.json")
    args = parser.parse_args(argv)
    sim = args.sim.resolve() if args.sim else None
    RESULTS.mkdir(exist_ok=True)
    if args.report:
        table = RESULTS / ("mask_learning.md" if sim is None else f"mask_learning_{sim.name}.md")
        table.write_text(report(list(VARIANTS), sim, table.read_text() if table.is_file() else ""))
        print(table.read_text())
        return 0
    if args.intervals:
        for name in args.variants:
            path = run_dir(name, sim) / "result.json"
            result = json.loads(path.read_text())
            result["test_intervals"] = intervals_on_test_genes(name, sim)
            path.write_text(json.dumps(result, indent=1, default=float))
            print(name, result["test_intervals"], flush=True)
        return 0
    for name in args.variants:
        if not args.score_only:
            train_variant(name, args.steps, sim)
        result = score_variant(name, sim)
        (run_dir(name, sim) / "result.json").write_text(json.dumps(result, indent=1, default=float))
        test = [r for r in result["metrics"] if r["split"] == "test"]
        print(name, json.dumps(test, default=float), "influence 5-10 kb", result["influence_5_10kb"], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

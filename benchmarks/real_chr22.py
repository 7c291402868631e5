"""Seq2Exp on REAL data: hg38 chr22, K562 and GM12878, accessibility only, PRO-cap labels.

Protocol (the data README's): labels log10(1 + PRO-cap counts on the gene's strand within TSS +/-
500 bp); split inside chr22 by 2-Mb blocks (216 train / 65 valid / 137 test genes); every choice
(MACS3 cutoff, Seq2Exp checkpoint, soft vs hard member) is made on the valid genes; test genes are
scored once, at the end. Reports per cell type Pearson, Spearman and MSE on the test genes for:

- the README's baselines, recomputed: log10(1 + accessibility in TSS +/- 1 kb) (no fitting); a
  linear model on log accessibility in 4 distance bins (0-1, 1-10, 10-50, 50-100 kb) fit on train;
  the same restricted to the 2 bins inside the models' 20-kb window; the K562 fit applied to
  GM12878; corr of predicted vs true K562-minus-GM12878 difference;
- MACS3 peaks as a mask: ``macs3 bdgpeakcall`` on the accessibility, accessibility summed inside
  peaks in the 4 distance bins, linear fit on train;
- Seq2Exp soft and hard trained with the package's trainer (`kipoi_seq2exp.train.runner.fit`),
  their cross-cell transfer (K562 model fed GM12878 tracks), difference corr, mask ratio and the
  share of the mask's mass outside the forced central 2 kb.

Writes ``<out>/real_chr22.json``, ``<out>/real_chr22.md``, ``<out>/real_chr22_masks.png`` and the
best (by valid MSE) K562 and GM12878 members to ``<out>/members/<cell>`` (``seq2exp export``).

Usage::

    seq2exp data fetch-chr22 --out data/real-chr22
    python benchmarks/real_chr22.py --data data/real-chr22 [--stage baselines|all] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyBigWig
from scipy.stats import pearsonr, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kipoi_seq2exp.data.genes import read_gene_table  # noqa: E402
from kipoi_seq2exp.data.labels import tss_labels  # noqa: E402
from kipoi_seq2exp.realdata.chr22 import (  # noqa: E402
    CELL_TYPES, FASTA, GENE_TABLE, RESOURCE_DIR, SOURCE_FILES, cell_files,
)
from kipoi_seq2exp.realdata.fetch import sha256_of  # noqa: E402

log = logging.getLogger("real_chr22")

BINS_KB = ((0, 1), (1, 10), (10, 50), (50, 100))
WINDOW_BINS = 2  # the first two bins lie inside the models' 20-kb window
HALF_SPAN = 100_000
MACS3_FOLDS = (2.0, 4.0, 8.0, 16.0)
SPLITS = ("train", "valid", "test")
VALID_EVERY = 50  # steps between validations (65 genes per cell, ~30 s each per cell on one thread)
JOINT = "joint"  # ModelRun.cell of the model trained on both cells (trainer config real_chr22_joint)


# ---------------------------------------------------------------------------------------- data
@dataclass
class CellData:
    """Labels and per-gene accessibility features of one cell type (rows = gene-table order)."""

    cell: str
    labels: np.ndarray
    promoter: np.ndarray  # accessibility summed over TSS +/- 1 kb
    bins: np.ndarray  # (n_genes, 4) accessibility summed per distance bin
    peak_bins: dict[float, np.ndarray] = field(default_factory=dict)  # MACS3 cutoff fold -> (n_genes, 4)
    peak_coverage: dict[float, float] = field(default_factory=dict)  # fold -> share of +/-100 kb in peaks


def verify_inputs(data: Path) -> dict[str, bool]:
    """sha256 of every source file against the README's (the folder of `seq2exp data fetch-chr22`)."""
    return {item.name: sha256_of(data / item.name) == item.sha256 for item in SOURCE_FILES}


def accessibility_windows(path: Path, genes: pd.DataFrame) -> np.ndarray:
    """(n_genes, 2 * HALF_SPAN) accessibility around each TSS, NaN and off-chromosome = 0."""
    out = np.zeros((len(genes), 2 * HALF_SPAN), dtype=np.float32)
    with pyBigWig.open(str(path)) as bw:
        size = bw.chroms("chr22")
        for i, tss in enumerate(genes["tss"].to_numpy()):
            start, end = max(tss - HALF_SPAN, 0), min(tss + HALF_SPAN, size)
            values = bw.values("chr22", int(start), int(end), numpy=True)
            out[i, start - (tss - HALF_SPAN):end - (tss - HALF_SPAN)] = np.nan_to_num(values)
    return out


def bin_masks() -> np.ndarray:
    """(4, 2 * HALF_SPAN) bool: offset d = pos - tss in bin [lo, hi) kb when -hi <= d < -lo or lo <= d < hi."""
    offsets = np.arange(-HALF_SPAN, HALF_SPAN)
    masks = []
    for lo, hi in BINS_KB:
        lo_bp, hi_bp = lo * 1000, hi * 1000
        masks.append(((offsets >= -hi_bp) & (offsets < -lo_bp)) | ((offsets >= lo_bp) & (offsets < hi_bp)))
    return np.stack(masks)


def load_cell(data: Path, genes: pd.DataFrame, cell: str) -> tuple[CellData, np.ndarray]:
    files = cell_files(cell)
    table = tss_labels(genes, str(data / files.procap_plus), str(data / files.procap_minus), 500, str(GENE_TABLE))
    shipped = pd.read_csv(RESOURCE_DIR / f"labels_{cell}_procap.tsv", sep="\t")
    if not np.array_equal(shipped["count"].to_numpy(), table["count"].to_numpy()):
        raise SystemExit(f"{cell}: labels recomputed from {data} differ from the shipped labels_{cell}_procap.tsv")
    signal = accessibility_windows(data / files.accessibility, genes)
    bins = np.stack([signal[:, m].sum(axis=1) for m in bin_masks()], axis=1).astype(np.float64)
    return CellData(cell, table["label"].to_numpy(), bins[:, 0].copy(), bins), signal


# ---------------------------------------------------------------------------------------- scores
def scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"pearson": float(pearsonr(prediction, truth)[0]), "spearman": float(spearmanr(prediction, truth)[0]),
            "mse": float(np.mean((prediction - truth) ** 2)), "n": int(len(truth))}


def fit_linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ordinary least squares with an intercept; returns coefficients [intercept, w...]."""
    design = np.column_stack([np.ones(len(x)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def apply_linear(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return coef[0] + x @ coef[1:]


def log_features(bins: np.ndarray, n_bins: int = len(BINS_KB)) -> np.ndarray:
    return np.log10(1.0 + bins[:, :n_bins])


def baseline_rows(cells: dict[str, CellData], split: np.ndarray) -> dict[str, Any]:
    """Every baseline, fit on train, MACS3 cutoff chosen on valid, scored on test."""
    train, valid, test = (split == s for s in SPLITS)
    out: dict[str, Any] = {}
    fitted: dict[str, dict[str, np.ndarray]] = {}
    for cell, c in cells.items():
        rows = {}
        raw = np.log10(1.0 + c.promoter)
        calibration = fit_linear(raw[train, None], c.labels[train])
        rows["promoter_1kb_nofit"] = {**scores(raw[test], c.labels[test]),
                                      "mse": scores(apply_linear(calibration, raw[test, None]), c.labels[test])["mse"],
                                      "note": "Pearson/Spearman of the raw value; MSE after an affine map fit on train"}
        for name, n_bins in (("linear_4bins_100kb", 4), ("linear_2bins_10kb", WINDOW_BINS)):
            x = log_features(c.bins, n_bins)
            coef = fit_linear(x[train], c.labels[train])
            fitted.setdefault(cell, {})[name] = coef
            rows[name] = {**scores(apply_linear(coef, x[test]), c.labels[test]), "coef": coef.round(4).tolist()}
        rows["macs3_peaks_4bins"] = macs3_row(c, train, valid, test)
        out[cell] = rows
    k562, gm = cells["K562"], cells["GM12878"]
    for name in ("linear_4bins_100kb", "linear_2bins_10kb"):
        n_bins = 4 if name.startswith("linear_4") else WINDOW_BINS
        coef = fitted["K562"][name]
        pred_k = apply_linear(coef, log_features(k562.bins, n_bins))
        pred_g = apply_linear(coef, log_features(gm.bins, n_bins))
        out.setdefault("transfer_K562_to_GM12878", {})[name] = scores(pred_g[test], gm.labels[test])
        out.setdefault("difference_corr", {})[name] = difference_corr(pred_k, pred_g, k562.labels, gm.labels, test)
    return out


def difference_corr(pred_k: np.ndarray, pred_g: np.ndarray, true_k: np.ndarray, true_g: np.ndarray,
                    rows: np.ndarray) -> float:
    """corr(predicted K562 - GM12878, true K562 - GM12878) over ``rows``: the cell-type-specific part."""
    return float(pearsonr((pred_k - pred_g)[rows], (true_k - true_g)[rows])[0])


# ---------------------------------------------------------------------------------------- MACS3
def add_macs3_features(data: Path, genes: pd.DataFrame, cell: CellData, signal: np.ndarray) -> None:
    """Peaks of `macs3 bdgpeakcall` at each cutoff (MACS3_FOLDS x mean signal of the windows);
    accessibility inside peaks summed per distance bin."""
    from kipoi_seq2exp.evaluate.baselines import call_macs3_peaks, interval_mask
    from kipoi_seq2exp.evaluate.windows import GeneWindow

    windows = [GeneWindow(g, "chr22", int(t) - HALF_SPAN, 2 * HALF_SPAN)
               for g, t in zip(genes["gene_id"], genes["tss"])]
    with pyBigWig.open(str(data / cell_files(cell.cell).accessibility)) as bw:
        sizes = dict(bw.chroms())
    masks = bin_masks()
    for fold in MACS3_FOLDS:
        peaks, cutoff = call_macs3_peaks(data / cell_files(cell.cell).accessibility, windows, sizes, cutoff_fold=fold)
        in_peaks = np.stack([interval_mask(w, peaks) for w in windows]).astype(bool)
        cell.peak_bins[fold] = np.stack([(signal * (in_peaks & m)).sum(axis=1) for m in masks], axis=1)
        cell.peak_coverage[fold] = float(in_peaks.mean())
        log.info("%s MACS3 fold %g (cutoff %.3g): %d peaks, %.1f %% of +/-100 kb", cell.cell, fold, cutoff,
                 sum(len(v) for v in peaks.values()), 100 * in_peaks.mean())


def macs3_row(c: CellData, train: np.ndarray, valid: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    if not c.peak_bins:
        return {"skipped": "MACS3 not run"}
    valid_r = {}
    for fold, bins in c.peak_bins.items():
        coef = fit_linear(log_features(bins)[train], c.labels[train])
        valid_r[fold] = pearsonr(apply_linear(coef, log_features(bins)[valid]), c.labels[valid])[0]
    fold = max(valid_r, key=valid_r.get)
    x = log_features(c.peak_bins[fold])
    coef = fit_linear(x[train], c.labels[train])
    return {**scores(apply_linear(coef, x[test]), c.labels[test]), "cutoff_fold": fold,
            "valid_pearson_by_fold": {str(k): round(float(v), 4) for k, v in valid_r.items()},
            "peak_coverage_100kb": c.peak_coverage[fold]}


# ---------------------------------------------------------------------------------------- Seq2Exp
@dataclass(frozen=True)
class ModelRun:
    """One trained model: the cell it learns from (or JOINT), variant and optimiser steps."""

    cell: str
    variant: str
    steps: int

    @property
    def name(self) -> str:
        return f"{self.cell}_{self.variant}"

    @property
    def config(self) -> str:
        return f"real_chr22_{self.cell.lower()}"

    @property
    def cells(self) -> tuple[str, ...]:
        """The cells whose genes it was trained on (and is scored on)."""
        return CELL_TYPES if self.cell == JOINT else (self.cell,)


def data_overrides(data: Path, cell: str) -> list[str]:
    """Trainer overrides pointing a run at the data folder: FASTA, ``cell``'s accessibility and labels.
    For JOINT, the K562 tracks as the main cell and GM12878's as the joint cell."""
    if cell == JOINT:
        return [f"data.fasta={data / FASTA}", f"data.tracks.0.path={data / cell_files('K562').accessibility}",
                f"data.joint_cells.0.tracks.0.path={data / cell_files('GM12878').accessibility}"]
    return [f"data.fasta={data / FASTA}", f"data.tracks.0.path={data / cell_files(cell).accessibility}",
            f"data.expression={RESOURCE_DIR / f'labels_{cell}_procap.tsv'}", f"data.cell={cell}",
            "data.joint_cells=[]"]


def train_overrides(run: ModelRun, work: Path) -> list[str]:
    """Schedule (warm-up 10 %, valid every VALID_EVERY steps) and, for hard, the released hard architecture
    (one shared backbone + positional embedding) with the straight-through gradient fix."""
    overrides = [f"train.output_dir={work / run.name}", f"train.max_steps={run.steps}",
                 f"train.warmup_steps={max(1, run.steps // 10)}", f"train.val_every_n_steps={VALID_EVERY}",
                 f"train.checkpoint_every_n_steps={VALID_EVERY}"]
    if run.variant == "hard":
        overrides += ["model.preset=paper_hard", "model.n_layers_predictor=0", "model.hard_gradient=straight_through"]
    return overrides


def train(run: ModelRun, data: Path, work: Path, reuse: bool) -> tuple[Path, float]:
    """Train with the package's trainer (best.ckpt = lowest valid MSE); returns (best.ckpt, seconds)."""
    from kipoi_seq2exp.train.config import load_run_config
    from kipoi_seq2exp.train.runner import BEST_NAME, CHECKPOINT_DIR, CONFIG_FILE, LAST_FILE, fit

    best = work / run.name / CHECKPOINT_DIR / f"{BEST_NAME}.ckpt"
    if reuse and best.is_file():  # wall time from the run's own files: config.yaml at start, last.ckpt at the end
        last, started = best.with_name(LAST_FILE), work / run.name / CONFIG_FILE
        return best, last.stat().st_mtime - started.stat().st_mtime
    start = time.perf_counter()
    overrides = data_overrides(data, run.cell) + train_overrides(run, work)
    run_dir = fit(load_run_config(run.config, overrides))
    return run_dir / CHECKPOINT_DIR / f"{BEST_NAME}.ckpt", time.perf_counter() - start


@dataclass
class Predictions:
    """Eval-mode outputs on the test genes: prediction, mask ratios, and the masks of figure genes."""

    gene_ids: list[str]
    prediction: np.ndarray
    target: np.ndarray
    mask_ratio: np.ndarray  # whole window, centre included (the paper's definition)
    outside_ratio: np.ndarray  # mean mask over the bases outside the forced central 2 kb
    outside_mass: np.ndarray  # share of the mask's sum that lies outside the centre
    masks: dict[str, np.ndarray]


def predict_test(checkpoint: Path, data: Path, tracks_cell: str, keep: set[str]) -> Predictions:
    """Run the checkpoint's plain model on every test gene with ``tracks_cell``'s tracks and labels."""
    import torch

    from kipoi_seq2exp.data.dataset import WindowDataset
    from kipoi_seq2exp.train.export import model_from_checkpoint
    from kipoi_seq2exp.train.runner import resolve_run

    model, stored = model_from_checkpoint(checkpoint)
    config = resolve_run(None, data_overrides(data, tracks_cell), stored, checkpoint)
    dataset = WindowDataset(config.data, "test")
    centre = model.cfg.centre_slice
    rows: dict[str, list] = {k: [] for k in ("gene_id", "prediction", "target", "ratio", "outside", "mass")}
    masks = {}
    loader = torch.utils.data.DataLoader(dataset, batch_size=8)
    with torch.no_grad():
        for batch in loader:
            out = model.predict(batch["seq"], batch["signals"], batch["gene_features"])
            mask = out.mask.float()
            inside = mask[:, centre].sum(dim=1)
            total = mask.sum(dim=1)
            rows["gene_id"] += list(batch["gene_id"])
            rows["prediction"] += out.expression.tolist()
            rows["target"] += batch["target"].reshape(-1).tolist()
            rows["ratio"] += out.mask_ratio.tolist()
            rows["outside"] += ((total - inside) / (mask.shape[1] - model.cfg.centre)).tolist()
            rows["mass"] += ((total - inside) / total).tolist()
            for gene_id, m in zip(batch["gene_id"], mask):
                if gene_id in keep:
                    masks[gene_id] = m.numpy()
    return Predictions(rows["gene_id"], np.array(rows["prediction"]), np.array(rows["target"]), np.array(rows["ratio"]),
                       np.array(rows["outside"]), np.array(rows["mass"]), masks)


def checkpoint_scores(checkpoint: Path) -> dict[str, Any]:
    """The validation scores stored in a checkpoint (those that made it the best)."""
    from kipoi_seq2exp.train.export import read_checkpoint

    stored = read_checkpoint(checkpoint)
    return {"global_step": int(stored.get("global_step", 0)), **stored.get("seq2exp", {}).get("evaluated", {})}


def model_rows(results: dict[str, Any], preds: dict[tuple[str, str], Predictions],
               labels: dict[str, pd.Series]) -> None:
    """Test scores, transfer, difference corr and mask statistics of every model into ``results``.

    Difference corr = corr(predicted K562 - GM12878, true K562 - GM12878) over the test genes, two
    ways: the K562 model fed each cell's tracks (as the README's baseline), and each cell's own model.
    """
    for (name, tracks), p in preds.items():
        truth = labels[tracks].loc[p.gene_ids].to_numpy()
        if not np.allclose(truth, p.target, atol=1e-5):
            raise SystemExit(f"{name}: targets of the data layer differ from the recomputed labels")
        entry = results["models"].setdefault(name, {})
        key = "test" if name.startswith(tracks) else f"transfer_to_{tracks}"
        entry[key] = {**scores(p.prediction, truth), "mask_ratio": float(p.mask_ratio.mean()),
                      "mask_ratio_outside_centre": float(p.outside_ratio.mean()),
                      "mask_mass_outside_centre": float(p.outside_mass.mean())}
    for variant in ("soft", "hard"):
        pairs = {"difference_corr": ((f"K562_{variant}", "K562"), (f"K562_{variant}", "GM12878")),
                 "difference_corr_own_models": ((f"K562_{variant}", "K562"), (f"GM12878_{variant}", "GM12878"))}
        for key, (first, second) in pairs.items():
            if first in preds and second in preds:
                results["models"][first[0]][key] = paired_difference_corr(preds[first], preds[second], labels)


def paired_difference_corr(k562: Predictions, gm12878: Predictions, labels: dict[str, pd.Series]) -> float:
    """corr(K562 prediction - GM12878 prediction, true K562 - GM12878 label), genes matched by id."""
    other = pd.Series(gm12878.prediction, index=gm12878.gene_ids).loc[k562.gene_ids].to_numpy()
    truth = labels["K562"].loc[k562.gene_ids].to_numpy() - labels["GM12878"].loc[k562.gene_ids].to_numpy()
    return float(pearsonr(k562.prediction - other, truth)[0])


# ---------------------------------------------------------------------------------------- figure
def figure_genes(genes: pd.DataFrame, labels: pd.Series, split: np.ndarray) -> list[str]:
    """Three test genes chosen without looking at any prediction: the highest, median and lowest
    non-zero K562 label."""
    test = genes[split == "test"].assign(label=labels.loc[genes["gene_id"][split == "test"]].to_numpy())
    test = test[test["label"] > 0].sort_values("label")
    return [test["gene_id"].iloc[-1], test["gene_id"].iloc[len(test) // 2], test["gene_id"].iloc[0]]


def draw_masks(path: Path, data: Path, genes: pd.DataFrame, chosen: list[str],
               preds: dict[tuple[str, str], Predictions]) -> None:
    """Per gene (columns): K562 accessibility, PRO-cap (plus up, minus down), then each K562 model's mask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = cell_files("K562")
    rows = [("accessibility", None), ("PRO-cap", None)] + [(f"{v} mask", v) for v in ("soft", "hard")
                                                           if ("K562_" + v, "K562") in preds]
    fig, axes = plt.subplots(len(rows), len(chosen), figsize=(5 * len(chosen), 1.6 * len(rows)), sharex=True,
                             squeeze=False)
    table = genes.set_index("gene_id")
    window = len(next(iter(preds[("K562_soft", "K562")].masks.values())))
    x = np.arange(window) - window // 2
    for col, gene_id in enumerate(chosen):
        tss = int(table.at[gene_id, "tss"])
        start = tss - window // 2
        with pyBigWig.open(str(data / files.accessibility)) as bw:
            acc = np.nan_to_num(bw.values("chr22", start, start + window, numpy=True))
        with pyBigWig.open(str(data / files.procap_plus)) as bw:
            pl = np.nan_to_num(bw.values("chr22", start, start + window, numpy=True))
        with pyBigWig.open(str(data / files.procap_minus)) as bw:
            mn = np.nan_to_num(bw.values("chr22", start, start + window, numpy=True))
        axes[0, col].fill_between(x, acc, color="0.3", lw=0)
        axes[0, col].set_title(f"{table.at[gene_id, 'gene_name']} ({table.at[gene_id, 'strand']}), K562")
        axes[1, col].vlines(x, 0, pl, color="tab:red", lw=0.8, label="plus")
        axes[1, col].vlines(x, 0, -np.abs(mn), color="tab:blue", lw=0.8, label="minus")
        for row, (label, variant) in enumerate(rows[2:], start=2):
            mask = preds[(f"K562_{variant}", "K562")].masks.get(gene_id)
            if mask is not None:
                axes[row, col].plot(x, mask, color="tab:green", lw=0.6)
            axes[row, col].set_ylim(-0.05, 1.05)
        for row, (label, _) in enumerate(rows):
            if col == 0:
                axes[row, col].set_ylabel(label)
    for ax in axes[-1]:
        ax.set_xlabel("position relative to TSS (bp)")
    fig.suptitle("Learned masks (K562 models, eval mode) beside the K562 accessibility and PRO-cap; centre 2 kb forced")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- report
def write_outputs(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("real_chr22.json", json.dumps(results, indent=2, default=float) + "\n"),
                       ("real_chr22.md", markdown(results))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def _fmt(row: dict[str, Any] | None, key: str) -> str:
    return "—" if not row or key not in row else f"{row[key]:.3f}"


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Seq2Exp on real chr22 (K562, GM12878): accessibility only, PRO-cap labels", "",
             f"Machine: {results['machine']}. Split: 2-Mb blocks inside chr22 ({results['split_sizes']}); "
             "every choice made on valid genes; test genes scored once. Labels: log10(1 + PRO-cap counts on the "
             "gene's strand within TSS +/- 500 bp).", "",
             "## Test genes: Pearson / Spearman / MSE", "",
             "| predictor | K562 r | K562 rho | K562 MSE | GM12878 r | GM12878 rho | GM12878 MSE |",
             "|---|---|---|---|---|---|---|"]
    base = results["baselines"]
    names = {"promoter_1kb_nofit": "log10(1 + accessibility in TSS +/- 1 kb), no fitting (MSE: affine fit on train)",
             "linear_4bins_100kb": "linear, log accessibility in 4 bins (0-1, 1-10, 10-50, 50-100 kb)",
             "linear_2bins_10kb": "linear, 2 bins (0-1, 1-10 kb): what a 20-kb window sees",
             "macs3_peaks_4bins": "MACS3 peaks (bdgpeakcall) as mask, 4 bins, linear (cutoff chosen on valid)"}
    for key, text in names.items():
        k, g = base.get("K562", {}).get(key), base.get("GM12878", {}).get(key)
        lines.append(f"| {text} | {_fmt(k, 'pearson')} | {_fmt(k, 'spearman')} | {_fmt(k, 'mse')} | "
                     f"{_fmt(g, 'pearson')} | {_fmt(g, 'spearman')} | {_fmt(g, 'mse')} |")
    for variant in ("soft", "hard"):
        k, g = (results["models"].get(f"{c}_{variant}", {}).get("test") for c in CELL_TYPES)
        lines.append(f"| Seq2Exp-{variant} (trainer, one cell) | {_fmt(k, 'pearson')} | {_fmt(k, 'spearman')} | "
                     f"{_fmt(k, 'mse')} | {_fmt(g, 'pearson')} | {_fmt(g, 'spearman')} | {_fmt(g, 'mse')} |")
    lines += ["", "## Cross-cell: K562-trained predictor fed GM12878 tracks", "",
              "| predictor | GM12878 r | GM12878 rho | GM12878 MSE | corr(pred diff, true diff) K562 - GM12878 |",
              "|---|---|---|---|---|"]
    for key in ("linear_4bins_100kb", "linear_2bins_10kb"):
        t = base.get("transfer_K562_to_GM12878", {}).get(key)
        lines.append(f"| {names[key]} | {_fmt(t, 'pearson')} | {_fmt(t, 'spearman')} | {_fmt(t, 'mse')} | "
                     f"{base.get('difference_corr', {}).get(key, float('nan')):.3f} |")
    for variant in ("soft", "hard"):
        m = results["models"].get(f"K562_{variant}", {})
        t = m.get("transfer_to_GM12878")
        d, own = m.get("difference_corr"), m.get("difference_corr_own_models")
        lines.append(f"| Seq2Exp-{variant} | {_fmt(t, 'pearson')} | {_fmt(t, 'spearman')} | {_fmt(t, 'mse')} | "
                     f"{'—' if d is None else f'{d:.3f}'} (each cell's own model: "
                     f"{'—' if own is None else f'{own:.3f}'}) |")
    lines += ["", "## Seq2Exp runs", "",
              "| model | steps | train wall s | best valid MSE (step) | valid r | test mask ratio "
              "| mean mask outside centre | share of mask mass outside centre |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in results["models"].items():
        v, t = m.get("valid", {}), m.get("test", {})
        lines.append(f"| {name} | {m.get('steps', '—')} | {m.get('train_seconds', float('nan')):.0f} | "
                     f"{_fmt(v, 'mse')} ({v.get('global_step', '—')}) | {_fmt(v, 'pearson')} | "
                     f"{_fmt(t, 'mask_ratio')} | "
                     f"{_fmt(t, 'mask_ratio_outside_centre')} | {_fmt(t, 'mask_mass_outside_centre')} |")
    lines += ["", "## Against the targets", ""] + [f"- {line}" for line in verdict(results)]
    if results.get("members"):
        lines += ["", "Members kept (lower valid MSE per cell): " +
                  ", ".join(f"{c}: {v['model']} -> {v['path']}" for c, v in results["members"].items())]
    notes = results.get("notes", []) + data_notes(results)
    lines += ["", "## Configuration and notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def run_notes(results: dict[str, Any], runs: list[ModelRun], threads: int) -> list[str]:
    """What was trained, how fast, and what was left out, for the report."""
    notes = [
        "Seq2Exp configuration (trainer configs real_chr22_k562 / real_chr22_gm12878): 20-kb windows, d_model 32, "
        "soft = 2 + 2 layers (57.7 K parameters), hard = one shared 2-layer backbone + positional embedding (670 K) "
        "with the straight-through gradient fix (hard_gradient: straight_through), accessibility as the only signal "
        "(ACCESSIBILITY_SIGNALS), 8 mRNA features + promoter accessibility as gene features; batch 4, AdamW lr 1e-3, "
        f"10 % warm-up then cosine to 1e-4, valid every {VALID_EVERY} steps, best valid MSE kept; one seed (2222); "
        f"{threads} torch thread(s).",
    ]
    for run in runs:
        m = results["models"].get(run.name, {})
        seconds = m.get("train_seconds", float("nan"))
        if np.isfinite(seconds):
            notes.append(f"{run.name}: {run.steps} steps x 4 genes = {run.steps * 4} examples "
                         f"({run.steps * 4 / results['split_sizes']['train']:.1f} epochs) in {seconds:.0f} s "
                         f"including validations.")
    notes += [
        "Why this size: on this shared 2-core CPU a forward + backward of one 20-kb window at d_model 32, 2 + 2 "
        "layers takes ~2-3 s (~18 s per batch of 8, measured at load 6-8), so the ~35-minute training budget buys "
        "about one to two epochs of 216 genes per soft model; 200-kb windows (~10 s per forward) are out of reach.",
        "Joint K562 + GM12878 model: not trained. The trainer reads one DataConfig (one FASTA, one track list, one "
        "expression table) and yields one example per gene; a joint run needs per-example tracks and targets (e.g. "
        "DataConfig.cells = [{name, tracks, expression}] concatenated by the DataModule, scored per cell).",
        "Every choice (MACS3 cutoff, checkpoint, soft vs hard member) used the valid genes; test genes were scored "
        "once, after all training.",
    ]
    return notes


TARGETS = {"test_pearson": 0.80, "transfer_pearson": 0.78, "difference_corr": 0.65}


def verdict(results: dict[str, Any]) -> list[str]:
    """Each target, the member's measured value, and the best baseline beside it."""
    base, models, members = results["baselines"], results["models"], results.get("members", {})
    lines = []
    for cell in CELL_TYPES:
        member = members.get(cell, {}).get("model")
        if member is None or "test" not in models.get(member, {}):
            continue
        best_name, best = max(((k, v) for k, v in base[cell].items() if "pearson" in v),
                              key=lambda kv: kv[1]["pearson"])
        value = models[member]["test"]["pearson"]
        lines.append(f"{cell} test Pearson >= {TARGETS['test_pearson']}: {member} {value:.4f} "
                     f"({'met' if value >= TARGETS['test_pearson'] else 'NOT met'}); best baseline {best_name} "
                     f"{best['pearson']:.3f}")
    k562 = models.get(members.get("K562", {}).get("model", ""), {})
    if "transfer_to_GM12878" in k562:
        value = k562["transfer_to_GM12878"]["pearson"]
        lines.append(f"cross-cell (K562 model, GM12878 tracks) >= {TARGETS['transfer_pearson']}: {value:.4f} "
                     f"({'met' if value >= TARGETS['transfer_pearson'] else 'NOT met'}); linear 4-bin baseline "
                     f"{base['transfer_K562_to_GM12878']['linear_4bins_100kb']['pearson']:.3f}")
    if "difference_corr" in k562:
        value = k562["difference_corr"]
        lines.append(f"difference corr >= {TARGETS['difference_corr']}: {value:.4f} "
                     f"({'met' if value >= TARGETS['difference_corr'] else 'NOT met'}); linear 4-bin baseline "
                     f"{base['difference_corr']['linear_4bins_100kb']:.3f}")
    return lines


def data_notes(results: dict[str, Any]) -> list[str]:
    base = results["baselines"]
    macs = {c: base[c]["macs3_peaks_4bins"] for c in CELL_TYPES if "cutoff_fold" in base[c]["macs3_peaks_4bins"]}
    notes = [f"Inputs: sha256 of all {len(results['inputs_sha256_ok'])} source files "
             f"{'match' if all(results['inputs_sha256_ok'].values()) else 'DO NOT all match'} the data README; labels "
             f"recomputed with `seq2exp labels` equal the shipped tables; K562 vs GM12878 label corr "
             f"{results['label_corr_K562_GM12878']:.3f}."]
    for cell, means in results.get("label_mean_by_split", {}).items():
        notes.append(f"{cell} label mean by split: " + ", ".join(f"{s} {m:.2f}" for s, m in means.items()) +
                     " (MSE on valid/test also charges this shift of the mean, Pearson does not).")
    if macs:
        notes.append("MACS3: `macs3 bdgpeakcall` on the accessibility of the union of +/-100 kb windows, cutoff = "
                     "fold x mean signal, fold chosen on valid among " + ", ".join(str(f) for f in MACS3_FOLDS) + ": " +
                     "; ".join(f"{c} fold {m['cutoff_fold']:g}, peaks cover {100 * m['peak_coverage_100kb']:.1f} % of "
                               "the windows" for c, m in macs.items()) + ".")
    notes.append("Mask ratio = mean mask over the window, centre included (soft masks sum soft values); with 20-kb "
                 "windows the forced centre alone is 10 %, and a uniform mask m puts 0.9 m / (0.9 m + 0.1) of its mass "
                 "outside the centre, so 'share outside' only means selection when the mask is far from uniform.")
    return notes


# ---------------------------------------------------------------------------------------- main
def export_member(checkpoint: Path, cell: str, out: Path) -> Path:
    from kipoi_seq2exp.train.export import export_checkpoint

    return Path(export_checkpoint(checkpoint, cell, out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="the real chr22 folder (seq2exp data fetch-chr22)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "real_chr22", help="training run folders")
    parser.add_argument("--stage", choices=("baselines", "all"), default="all")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--soft-steps", type=int, default=300, help="optimiser steps per soft model (batch 4)")
    parser.add_argument("--hard-steps", type=int, default=100, help="optimiser steps per hard model (batch 4)")
    parser.add_argument("--reuse", action="store_true", help="reuse best.ckpt files already in --work")
    parser.add_argument("--train-only", nargs="+", metavar="RUN",
                        help="train just these runs (e.g. K562_soft joint_soft) and stop: lets two processes "
                             "share the training, then a --reuse run reports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    from kipoi_seq2exp.train.runner import record_scores

    torch.set_num_threads(args.threads)

    data = args.data.resolve()
    runs = [ModelRun(c, "soft", args.soft_steps) for c in (*CELL_TYPES, JOINT)] + [
        ModelRun(c, "hard", args.hard_steps) for c in CELL_TYPES]
    if args.train_only:
        for run in (r for r in runs if r.name in args.train_only):
            log.info("training %s for %d steps", run.name, run.steps)
            train(run, data, args.work, args.reuse)
        return 0
    genes = read_gene_table(str(GENE_TABLE))
    split = genes["split"].to_numpy()
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch "
                   f"{torch.__version__}, {args.threads} thread(s)",
        "data": str(data), "inputs_sha256_ok": verify_inputs(data),
        "split_sizes": {s: int((split == s).sum()) for s in SPLITS}, "models": {}, "notes": [],
    }
    cells, signals = {}, {}
    for cell in CELL_TYPES:
        cells[cell], signals[cell] = load_cell(data, genes, cell)
        add_macs3_features(data, genes, cells[cell], signals[cell])
    results["label_corr_K562_GM12878"] = float(pearsonr(cells["K562"].labels, cells["GM12878"].labels)[0])
    results["label_mean_by_split"] = {c: {s: float(cells[c].labels[split == s].mean()) for s in SPLITS}
                                      for c in CELL_TYPES}
    results["baselines"] = baseline_rows(cells, split)
    write_outputs(args.out, results)
    log.info("baselines written to %s", args.out)
    if args.stage == "baselines":
        return 0

    labels = {c: pd.Series(cells[c].labels, index=genes["gene_id"]) for c in CELL_TYPES}
    chosen = figure_genes(genes, labels["K562"], split)
    checkpoints, preds = {}, {}
    for run in runs:
        log.info("training %s for %d steps", run.name, run.steps)
        checkpoints[run.name], seconds = train(run, data, args.work, args.reuse)
        results["models"][run.name] = {"steps": run.steps, "train_seconds": seconds,
                                       "valid": checkpoint_scores(checkpoints[run.name]).get("val", {})}
        results["models"][run.name]["valid"]["global_step"] = checkpoint_scores(checkpoints[run.name])["global_step"]
        write_outputs(args.out, results)
    for run in runs:  # test genes, touched once, after every training has finished
        for tracks in ([run.cell, "GM12878"] if run.cell == "K562" else [run.cell]):
            preds[(run.name, tracks)] = predict_test(checkpoints[run.name], data, tracks, set(chosen))
    model_rows(results, preds, labels)
    results["notes"] = run_notes(results, runs, args.threads)
    results["members"] = {}
    for cell in CELL_TYPES:
        best = min((r for r in runs if r.cell == cell),
                   key=lambda r: results["models"][r.name]["valid"].get("mse", np.inf))
        test = results["models"][best.name]["test"]
        record_scores(checkpoints[best.name], {"test": {k: test[k] for k in ("mse", "pearson", "mask_ratio")}})
        path = export_member(checkpoints[best.name], cell, args.out / "members" / cell)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        results["members"][cell] = {"model": best.name, "path": str(shown)}
    draw_masks(args.out / "real_chr22_masks.png", data, genes, chosen, preds)
    results["figure_genes"] = chosen
    write_outputs(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

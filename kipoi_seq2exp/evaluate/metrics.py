"""How well a mask finds the true regulatory elements, and how well expression is predicted.

Conventions (the same for the model and every baseline):

- Evaluated bases: inside the chromosome and outside the forced centre, the central
  ``centre_length`` (2,000) bp of the window, which the model always keeps. Counting them would
  reward every method for the promoter (and they never hold a distal element by construction of
  the simulation). Window padding past a chromosome end is not evaluated either.
- Labels are per gene: a base is positive if it lies in a causal element OF THAT GENE. Another
  gene's element is a negative in this window (it is a decoy here).
- Counts are pooled over all genes of a split (micro-averaging), so long windows and short ones
  weigh by their bases and elements.
- AUPRC: average precision of the scores as a ranking, sum_n (R_n - R_{n-1}) P_n over the
  distinct score values (ties are one threshold), as scikit-learn and torchmetrics compute it.
- Hard mask: mask >= threshold (0.5). Base precision/recall over evaluated bases.
- Element recall: a true element is recovered if at least ``min_element_fraction`` (50 %) of its
  evaluated bases are selected. Element precision: the fraction of selected runs (maximal runs of
  selected evaluated bases) that overlap a true element of the gene by at least 1 bp.
- Mask ratio: sum(mask) / L over the whole window, forced centre included, as the paper reports.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional import mean_absolute_error, mean_squared_error, pearson_corrcoef

from .elements import element_mask_scores, enhancer_vs_decoy_auroc
from .windows import GeneWindow, TruthElement, as_windows, read_chrom_sizes, read_truth_bed, spans_in_window

CENTRE_LENGTH = 2000


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision; NaN without positives.

    Parameters
    ----------
    scores : (n,) float, higher = more likely part of an element
    labels : (n,) bool
    """
    histogram = ScoreHistogram()
    histogram.add(np.asarray(scores), np.asarray(labels, dtype=bool))
    return histogram.average_precision()


@dataclass
class ScoreHistogram:
    """Positives and totals per distinct score: exact AUPRC without keeping every base.

    A hard mask has 2 distinct values per window and a binned signal a few hundred, so pooling
    300 genes x 200 kb stays small; a continuous soft mask costs about as much as its scores.
    """

    values: list[np.ndarray] = field(default_factory=list)
    positives: list[np.ndarray] = field(default_factory=list)
    totals: list[np.ndarray] = field(default_factory=list)

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Count one batch: scores (n,) float, labels (n,) bool."""
        values, totals = np.unique(scores, return_counts=True)  # a sort; cheaper than return_inverse
        positive_values, positive_counts = np.unique(scores[labels], return_counts=True)
        positives = np.zeros(len(values), dtype=np.int64)
        positives[np.searchsorted(values, positive_values)] = positive_counts
        self.values.append(values)
        self.positives.append(positives)
        self.totals.append(totals.astype(np.int64))

    def merge(self, other: "ScoreHistogram") -> None:
        self.values += other.values
        self.positives += other.positives
        self.totals += other.totals

    def average_precision(self) -> float:
        if not self.values:
            return float("nan")
        values, inverse = np.unique(np.concatenate(self.values), return_inverse=True)
        positives = np.bincount(inverse, weights=np.concatenate(self.positives), minlength=len(values))[::-1]
        totals = np.bincount(inverse, weights=np.concatenate(self.totals), minlength=len(values))[::-1]
        n_true = positives.sum()
        if n_true == 0:
            return float("nan")
        true_positives = np.cumsum(positives)  # thresholds from the highest distinct score down
        precision = true_positives / np.cumsum(totals)
        recall = true_positives / n_true
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def selected_runs(selected: np.ndarray) -> np.ndarray:
    """Maximal runs of True, as (n_runs, 2) [start, end) index pairs."""
    padded = np.r_[False, np.asarray(selected, dtype=bool), False]
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return edges.reshape(-1, 2)


def evaluation_region(window: GeneWindow, chrom_size: int, centre_length: int = CENTRE_LENGTH) -> np.ndarray:
    """(length,) bool: bases inside the chromosome and outside the forced centre."""
    positions = np.arange(window.start, window.end)
    region = (positions >= 0) & (positions < chrom_size)
    centre = window.length // 2
    region[max(centre - centre_length // 2, 0):centre + centre_length // 2] = False
    return region


@dataclass
class MaskCounts:
    """Pooled counts from which every mask metric of a split follows."""

    true_positive_bases: int = 0
    selected_bases: int = 0
    true_bases: int = 0
    evaluated_bases: int = 0
    recovered_elements: int = 0
    true_elements: int = 0
    runs_on_truth: int = 0
    runs: int = 0
    mask_sum: float = 0.0
    window_bases: int = 0
    histogram: ScoreHistogram = field(default_factory=ScoreHistogram, repr=False)

    def add_window(self, mask: np.ndarray, region: np.ndarray, truth_spans: Sequence[tuple[int, int]],
                   threshold: float | None, min_element_fraction: float) -> None:
        """Score one gene's mask (length,) against its truth spans (window coordinates).

        ``threshold`` None means the scores are a ranking only (no hard-mask metrics).
        """
        labels = np.zeros(len(mask), dtype=bool)
        for start, end in truth_spans:
            labels[start:end] = True
        self.histogram.add(np.asarray(mask, dtype=np.float32)[region], labels[region])
        self.true_bases += int(labels[region].sum())
        self.evaluated_bases += int(region.sum())
        self.mask_sum += float(np.sum(mask))
        self.window_bases += len(mask)
        if threshold is None:
            return
        selected = (np.asarray(mask) >= threshold) & region
        self.selected_bases += int(selected.sum())
        self.true_positive_bases += int((selected & labels).sum())
        for start, end in truth_spans:
            evaluable = int(region[start:end].sum())
            if evaluable:
                self.true_elements += 1
                if selected[start:end].sum() >= min_element_fraction * evaluable:
                    self.recovered_elements += 1
        for start, end in selected_runs(selected):
            self.runs += 1
            self.runs_on_truth += int(labels[start:end].any())

    def merge(self, other: "MaskCounts") -> None:
        """Add another accumulator's counts (the arrays are shared, not copied)."""
        for name in ("true_positive_bases", "selected_bases", "true_bases", "evaluated_bases", "recovered_elements",
                     "true_elements", "runs_on_truth", "runs", "mask_sum", "window_bases"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.histogram.merge(other.histogram)

    def metrics(self, ranking_only: bool) -> dict[str, float]:
        """AUPRC and prevalence always; the hard-mask metrics only for masks (NaN for rankings)."""
        out = {"prevalence": _ratio(self.true_bases, self.evaluated_bases),
               "auprc": self.histogram.average_precision()}
        hard = {
            "mask_ratio": _ratio(self.mask_sum, self.window_bases),
            "base_precision": _ratio(self.true_positive_bases, self.selected_bases),
            "base_recall": _ratio(self.true_positive_bases, self.true_bases),
            "element_precision": _ratio(self.runs_on_truth, self.runs),
            "element_recall": _ratio(self.recovered_elements, self.true_elements),
            "n_true_elements": float(self.true_elements),
            "n_selected_runs": float(self.runs),
        }
        out.update({name: float("nan") if ranking_only else value for name, value in hard.items()})
        return out


def expression_metrics(predicted: Sequence[float], observed: Sequence[float]) -> dict[str, float]:
    """MSE, MAE and Pearson r of log10(expression + 1) (torchmetrics, float64)."""
    pred = torch.as_tensor(np.asarray(predicted, dtype=np.float64))
    target = torch.as_tensor(np.asarray(observed, dtype=np.float64))
    if len(pred) < 2:
        return {"mse": float("nan"), "mae": float("nan"), "pearson": float("nan")}
    constant = bool(pred.std() == 0 or target.std() == 0)  # r undefined; torchmetrics would warn per call
    return {
        "mse": float(mean_squared_error(pred, target)),
        "mae": float(mean_absolute_error(pred, target)),
        "pearson": float("nan") if constant else float(pearson_corrcoef(pred, target)),
    }


Predictions = Mapping[str, tuple[float | None, np.ndarray | None]]


def evaluate_masks(dataset_or_windows: object, predictions: Predictions,
                   truth_bed: str | Path | Mapping[str, Sequence[TruthElement]], *,
                   chrom_sizes: str | Path | Mapping[str, int], targets: Mapping[str, float] | None = None,
                   method: str = "model", ranking_only: bool = False, threshold: float = 0.5,
                   centre_length: int = CENTRE_LENGTH, min_element_fraction: float = 0.5,
                   elements: pd.DataFrame | None = None) -> pd.DataFrame:
    """Metrics of one method, one row per split plus an "all" row.

    Parameters
    ----------
    dataset_or_windows : GeneWindows, a window DataFrame, or a dataset with ``.windows``
        (see ``windows.as_windows``)
    predictions : gene_id -> (predicted log10(expression + 1) or None, mask (length,) or None);
        genes absent here are skipped. A model's mask is its inference mask: the combined
        Beta's mean (soft) or the 0/1 mask (hard), centre forced to 1.
    truth_bed : the truth BED path, or its parsed form (``windows.read_truth_bed``)
    chrom_sizes : a .fai / chrom.sizes path or a mapping, to leave window padding out
    targets : gene_id -> observed log10(expression + 1), for MSE / MAE / Pearson
    ranking_only : the "mask" is a score (e.g. raw DNase): report AUPRC only
    elements : candidate elements with kinds (the simulation's elements.tsv); adds
        ``enhancer_vs_decoy_auroc`` (``elements.py``)

    Returns
    -------
    DataFrame with columns method, split, n_genes, mse, mae, pearson, prevalence, auprc,
    mask_ratio, base_precision, base_recall, element_precision, element_recall,
    n_true_elements, n_selected_runs.
    """
    windows = as_windows(dataset_or_windows)
    truth = truth_bed if isinstance(truth_bed, Mapping) else read_truth_bed(truth_bed)
    sizes = chrom_sizes if isinstance(chrom_sizes, Mapping) else read_chrom_sizes(chrom_sizes)
    splits: dict[str, _SplitAccumulator] = {}
    for window in windows:
        if window.gene_id not in predictions:
            continue
        accumulator = splits.setdefault(window.split, _SplitAccumulator())
        accumulator.add(window, predictions[window.gene_id], truth, sizes, targets, ranking_only, threshold,
                        centre_length, min_element_fraction)
    if len(splits) > 1:
        splits["all"] = _SplitAccumulator.merged(list(splits.values()))
    rows = [{"method": method, "split": name, **splits[name].metrics(ranking_only)}
            for name in sorted(splits, key=_split_order)]
    table = pd.DataFrame(rows)
    if elements is not None:
        table["enhancer_vs_decoy_auroc"] = _decoy_auroc_per_split(windows, predictions, elements, list(table["split"]))
    return table


def _decoy_auroc_per_split(windows: Sequence[GeneWindow], predictions: Predictions, elements: pd.DataFrame,
                           splits: list[str]) -> list[float]:
    masks = {gene_id: mask for gene_id, (_, mask) in predictions.items() if mask is not None}
    scores = element_mask_scores(windows, masks, elements)
    split_of = {window.gene_id: window.split for window in windows}
    scores["split"] = scores["gene_id"].map(split_of)
    return [enhancer_vs_decoy_auroc(scores if split == "all" else scores[scores["split"] == split])
            for split in splits]


@dataclass
class _SplitAccumulator:
    """Expression pairs and mask counts of the genes of one split."""

    n_genes: int = 0
    predicted: list[float] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    counts: MaskCounts = field(default_factory=MaskCounts)

    def add(self, window: GeneWindow, prediction: tuple[float | None, np.ndarray | None],
            truth: Mapping[str, Sequence[TruthElement]], chrom_sizes: Mapping[str, int],
            targets: Mapping[str, float] | None, ranking_only: bool, threshold: float, centre_length: int,
            min_element_fraction: float) -> None:
        expression, mask = prediction
        self.n_genes += 1
        if expression is not None and targets is not None and window.gene_id in targets and np.isfinite(expression):
            self.predicted.append(float(expression))
            self.observed.append(float(targets[window.gene_id]))
        if mask is None:
            return
        if len(mask) != window.length:
            raise ValueError(f"gene {window.gene_id}: mask has length {len(mask)}, its window {window.length}; "
                             f"predict with the same window length as the evaluation")
        if window.chrom not in chrom_sizes:
            raise KeyError(f"gene {window.gene_id}: chromosome {window.chrom!r} is not in the chromosome sizes")
        region = evaluation_region(window, chrom_sizes[window.chrom], centre_length)
        spans = spans_in_window(window, ((e.chrom, e.start, e.end) for e in truth.get(window.gene_id, ())))
        self.counts.add_window(mask, region, spans, None if ranking_only else threshold, min_element_fraction)

    @classmethod
    def merged(cls, parts: list["_SplitAccumulator"]) -> "_SplitAccumulator":
        out = cls()
        for part in parts:
            out.n_genes += part.n_genes
            out.predicted += part.predicted
            out.observed += part.observed
            out.counts.merge(part.counts)
        return out

    def metrics(self, ranking_only: bool) -> dict[str, float]:
        return {"n_genes": self.n_genes, **expression_metrics(self.predicted, self.observed),
                **self.counts.metrics(ranking_only)}


def _split_order(name: str) -> tuple[int, str]:
    """train, valid, test, any other split alphabetically, then all."""
    known = {"train": 0, "valid": 1, "test": 2, "all": 4}
    return known.get(name, 3), name


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else float("nan")

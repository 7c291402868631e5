"""95 % confidence intervals by resampling genes: every real-data number is reported with one.

Genes, not bases or elements, are the independent units: a gene's bases share its window, its
signal and its label, so resampling anything smaller would make the interval far too narrow.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A statistic on all genes and its percentile-bootstrap 95 % interval."""

    value: float
    low: float
    high: float


def bootstrap(statistic: Callable[[np.ndarray], float], n_genes: int, n_resamples: int = 1000,
              seed: int = 0) -> Estimate:
    """``statistic(gene_indices)`` on all genes, and its 2.5-97.5 % percentiles over resamples of
    the genes with replacement (seeded: the same call gives the same interval)."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n_genes, n_genes)) for _ in range(n_resamples)]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return Estimate(float(statistic(np.arange(n_genes))), float(low), float(high))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def pearson_ci(predicted: Sequence[float], observed: Sequence[float], n_resamples: int = 1000, seed: int = 0) -> Estimate:
    """Pearson r of predicted vs observed with its gene-bootstrap interval."""
    predicted, observed = np.asarray(predicted, dtype=float), np.asarray(observed, dtype=float)
    return bootstrap(lambda idx: pearson(predicted[idx], observed[idx]), len(predicted), n_resamples, seed)


def paired_difference_ci(first: Sequence[float], second: Sequence[float], observed: Sequence[float],
                         n_resamples: int = 1000, seed: int = 0) -> Estimate:
    """r(first, observed) - r(second, observed) on the same resampled genes: is one predictor better?"""
    a, b, y = (np.asarray(v, dtype=float) for v in (first, second, observed))
    return bootstrap(lambda idx: pearson(a[idx], y[idx]) - pearson(b[idx], y[idx]), len(y), n_resamples, seed)


__all__ = ["Estimate", "bootstrap", "pearson", "pearson_ci", "paired_difference_ci"]

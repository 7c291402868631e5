"""The 8 mRNA half-life features, drawn to match the real 18,377-gene table's distributions."""
from __future__ import annotations

import math

import numpy as np

from .params import MrnaFeatureParams

_ERF = np.vectorize(math.erf, otypes=[float])


def draw_mrna_features(params: MrnaFeatureParams, n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """(genes, 8) features: correlated normal scores -> uniform -> each feature's real quantiles.

    A Gaussian copula keeps both the skewed marginals (e.g. the zero-length-UTR spikes) and the
    pairwise correlations measured on the real table; values are linear between its quantiles.
    """
    correlation = np.array(params.copula_correlation)
    normal = rng.standard_normal((n_genes, len(params.columns))) @ np.linalg.cholesky(correlation).T
    uniform = 0.5 * (1.0 + _ERF(normal / math.sqrt(2.0)))
    columns = [np.interp(uniform[:, j], params.quantile_probabilities, params.quantiles[name])
               for j, name in enumerate(params.columns)]
    return np.round(np.stack(columns, axis=1), params.decimals)

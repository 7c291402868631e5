"""Is the mask just a function of the accessibility track? The test of a mask that learned nothing.

A mask that copies accessibility is a monotone function of it; the best monotone fit (isotonic
regression of the mask on the signal) then explains all of the mask's variance. The share it
explains, outside the forced centre, is how much of the mask IS the signal; the rest is what the
generator read from the DNA (or noise).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import isotonic_regression


def isotonic_r2(mask: np.ndarray, signal: np.ndarray) -> float:
    """Share of the variance of ``mask`` explained by the best non-decreasing function of ``signal``.

    Parameters
    ----------
    mask, signal : (n,) values at the same positions (e.g. every token outside the centre of
        every test gene; tied signal values are pooled first, so ties cannot be fit separately)
    """
    mask, signal = np.asarray(mask, dtype=float), np.asarray(signal, dtype=float)
    variance = mask.var()
    if variance == 0:
        return float("nan")  # a constant mask (e.g. a hard mask selecting everything): nothing to explain
    values, inverse, counts = np.unique(signal, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=mask)
    fitted = isotonic_regression(sums / counts, weights=counts.astype(float)).x
    residual = mask - fitted[inverse]
    return float(1.0 - residual.var() / variance)


__all__ = ["isotonic_r2"]

"""A split inside one chromosome by 2-Mb blocks, so test TSSs lie far from training TSSs.

block = floor(tss / block_size); block mod n_folds == test_fold -> test, == valid_fold -> valid,
otherwise train. With 2-Mb blocks and 5 folds, a test gene's 200-kb window (and any window up to
2 Mb) overlaps at most the training windows of genes near the block edges, never most of them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BLOCK_SIZE = 2_000_000
N_FOLDS = 5
TEST_FOLD = 0
VALID_FOLD = 1
SPLIT_COLUMN = "split"


def block_split(tss: np.ndarray, block_size: int = BLOCK_SIZE, n_folds: int = N_FOLDS,
                test_fold: int = TEST_FOLD, valid_fold: int = VALID_FOLD) -> np.ndarray:
    """'train' / 'valid' / 'test' for each 0-based TSS position.

    Parameters
    ----------
    tss
        (n_genes,) integer TSS positions (0-based), all on one chromosome.

    Returns
    -------
    np.ndarray
        (n_genes,) object array of split names.
    """
    if block_size <= 0 or n_folds < 3 or test_fold == valid_fold:
        raise ValueError("block_split needs block_size > 0, n_folds >= 3 and distinct test / valid folds")
    fold = (np.asarray(tss, dtype=np.int64) // block_size) % n_folds
    out = np.full(fold.shape, "train", dtype=object)
    out[fold == valid_fold] = "valid"
    out[fold == test_fold] = "test"
    return out


def with_block_split(genes: pd.DataFrame, column: str = SPLIT_COLUMN, **options: int) -> pd.DataFrame:
    """Copy of a gene table (integer ``tss`` column) with a ``split`` column from `block_split`."""
    out = genes.copy()
    out[column] = block_split(out["tss"].to_numpy(dtype=np.int64), **options)
    return out


__all__ = ["BLOCK_SIZE", "N_FOLDS", "TEST_FOLD", "VALID_FOLD", "SPLIT_COLUMN", "block_split", "with_block_split"]

"""Does the mask tell an enhancer from an open decoy? The question only sequence can answer.

In the simulated genome enhancers and ``open_inert`` decoys are drawn with the same openness law,
so a mask that copies accessibility ranks them at random (AUROC ~0.5 by construction); only a
mask that reads the activator motifs in the DNA can separate them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .windows import GeneWindow


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count one half)."""
    positive, negative = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    if not len(positive) or not len(negative):
        return float("nan")
    above = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(above + 0.5 * ties)


def element_mask_scores(windows: Sequence[GeneWindow], masks: Mapping[str, np.ndarray],
                        elements: pd.DataFrame | str | Path, kinds: Sequence[str] = ("enhancer", "open_inert")
                        ) -> pd.DataFrame:
    """Mean mask over every candidate element of ``kinds`` lying wholly inside a gene's window.

    Returns one row per (gene, element): gene_id, element_id, kind, score. An element in two
    genes' windows is scored in each (each window is a separate prediction).
    """
    if not isinstance(elements, pd.DataFrame):
        elements = pd.read_csv(elements, sep="\t")
    elements = elements[elements["kind"].isin(kinds)]
    rows = []
    for window in windows:
        mask = masks.get(window.gene_id)
        if mask is None:
            continue
        inside = elements[(elements["chrom"] == window.chrom) & (elements["start"] >= window.start)
                          & (elements["end"] <= window.end)]
        for element in inside.itertuples(index=False):
            score = float(np.mean(mask[element.start - window.start:element.end - window.start]))
            rows.append((window.gene_id, element.element_id, element.kind, score))
    return pd.DataFrame(rows, columns=["gene_id", "element_id", "kind", "score"])


def enhancer_vs_decoy_auroc(scores: pd.DataFrame) -> float:
    """AUROC of ``element_mask_scores``: enhancers (positive) against open_inert decoys."""
    return auroc(scores.loc[scores["kind"] == "enhancer", "score"], scores.loc[scores["kind"] == "open_inert", "score"])


__all__ = ["auroc", "element_mask_scores", "enhancer_vs_decoy_auroc"]

"""Mask diagnostics: the enhancer-vs-decoy AUROC, the isotonic 'copy of the signal' share, and
gene-bootstrap confidence intervals."""
import numpy as np
import pandas as pd
import pytest

from kipoi_seq2exp.evaluate.bootstrap import paired_difference_ci, pearson_ci
from kipoi_seq2exp.evaluate.elements import auroc, element_mask_scores, enhancer_vs_decoy_auroc
from kipoi_seq2exp.evaluate.signal_copy import isotonic_r2
from kipoi_seq2exp.evaluate.windows import GeneWindow


def test_auroc_counts_pairs_and_half_ties():
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 3], [2, 2]) == 0.5 and auroc([2], [2]) == 0.5
    assert np.isnan(auroc([], [1]))


def test_element_scores_are_window_means_and_auroc_reads_the_kinds():
    window = GeneWindow("g1", "chr1", 1_000, 2_000, "test")
    mask = np.zeros(1_000, dtype=np.float32)
    mask[100:200] = 0.9  # the enhancer
    mask[500:550] = 0.4  # half of the decoy
    elements = pd.DataFrame({"element_id": ["e", "d", "far"], "chrom": ["chr1"] * 3,
                             "start": [1_100, 1_500, 5_000], "end": [1_200, 1_600, 5_100],
                             "kind": ["enhancer", "open_inert", "enhancer"]})
    scores = element_mask_scores([window], {"g1": mask}, elements)
    assert scores["element_id"].tolist() == ["e", "d"]  # the element outside the window is left out
    np.testing.assert_allclose(scores["score"], [0.9, 0.2], rtol=1e-6)
    assert enhancer_vs_decoy_auroc(scores) == 1.0


def test_isotonic_r2_is_one_for_a_monotone_copy_and_low_for_sequence_information():
    rng = np.random.default_rng(0)
    signal = rng.gamma(1.0, 1.0, 5_000)
    assert isotonic_r2(1 / (1 + np.exp(-signal)), signal) == pytest.approx(1.0)
    motif = rng.random(5_000) < 0.2  # what only the DNA says
    mask = 0.1 * signal / signal.max() + 0.8 * motif
    assert isotonic_r2(mask, signal) < 0.1


def test_bootstrap_interval_holds_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=200)
    good, bad = truth + rng.normal(scale=0.5, size=200), truth + rng.normal(scale=2.0, size=200)
    estimate = pearson_ci(good, truth)
    assert estimate.low < estimate.value < estimate.high < 1
    assert estimate == pearson_ci(good, truth)
    difference = paired_difference_ci(good, bad, truth)
    assert difference.low > 0  # clearly better, on the same resampled genes
    assert paired_difference_ci(good, good, truth).value == 0

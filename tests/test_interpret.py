"""Influence profile and generator spread: the two measurements behind "the mask learned nothing"."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from kipoi_seq2exp.interpret import generator_spread, influence_profile
from kipoi_seq2exp.interpret.influence import InfluenceProfile
from kipoi_seq2exp.model import Seq2Exp, preset


def test_band_average_weights_bands_by_width():
    profile = InfluenceProfile([(0, 1_000), (5_000, 7_000), (7_000, 10_000)], np.array([1.0, 0.5, 0.0]),
                               np.array([1.0, 0.2, 0.1]))
    assert profile.at(5_000, 10_000) == pytest.approx((0.5 * 2 / 5, (0.2 * 2 + 0.1 * 3) / 5))
    with pytest.raises(ValueError, match="no band"):
        profile.at(20_000, 30_000)
    assert "| 5-7 kb | 5.00e-01 | 2.00e-01 |" in profile.table()


def window(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (2, cfg.window), generator=g), 4).float()
    return dict(seq=seq, signals=torch.rand(2, cfg.window, cfg.n_signals, generator=g),
                gene_features=torch.randn(2, cfg.n_gene_features, generator=g))


def test_influence_is_relative_to_the_centre_and_only_inside_the_window():
    torch.manual_seed(0)
    model = Seq2Exp(preset("cpu_soft", d_model=16, window=6_000, centre=1_000))
    profile = influence_profile(model, [window(model.cfg)])
    assert profile.bands[-1] == (2_000, 3_000)  # bands past half the window are left out
    assert profile.dna[0] == 1 and profile.signal[0] == 1 and np.all(profile.signal[1:] > 0)


def test_generator_spread_is_zero_for_a_generator_that_ignores_the_dna():
    torch.manual_seed(0)
    model = Seq2Exp(preset("cpu_soft", d_model=16, window=6_000, centre=1_000))
    batches = [window(model.cfg)]
    assert generator_spread(model, batches) > 1e-4
    with torch.no_grad():
        model.mask_head.weight.zero_()  # what the landed members' generators converged to
    assert generator_spread(model, batches) < 1e-6


def test_diagnose_prints_a_members_profile():
    done = subprocess.run([sys.executable, "-m", "kipoi_seq2exp", "diagnose", "Seq2Exp/Demo-soft", "--genes", "2"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| 5-7 kb |" in done.stdout and "generator spread" in done.stdout

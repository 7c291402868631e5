"""`seq2exp evaluate` wiring: a model's predictions and masks flow into the element evaluation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kipoi_seq2exp.evaluate.model_run import evaluate_on_simulated
from kipoi_seq2exp.model import Seq2Exp, tiny
from kipoi_seq2exp.simulate.generate import embedded_dir


@pytest.fixture(scope="module")
def small_model() -> Seq2Exp:
    return Seq2Exp(tiny("soft", window=3_000, centre=500)).eval()


def test_evaluation_table_has_model_and_baselines(small_model, tmp_path):
    table = evaluate_on_simulated(small_model, embedded_dir(), tmp_path, splits=["test"], method="tiny")
    assert set(table["method"]) >= {"tiny", "dnase_ranking", "oracle"}
    row = table[(table["method"] == "tiny") & (table["split"] == "test")].iloc[0]
    targets = pd.read_csv(embedded_dir() / "expression.tsv", sep="\t")
    assert row["n_genes"] == 60 and np.isfinite(row["mse"]) and 0 < row["mask_ratio"] <= 1
    assert (tmp_path / "tiny_mask.bw").stat().st_size > 0 and (tmp_path / "metrics.md").is_file()
    assert len(targets) == 300

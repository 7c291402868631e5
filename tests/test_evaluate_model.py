"""`seq2exp evaluate` wiring: a model's predictions and masks flow into the element evaluation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kipoi_seq2exp.data.dataset import WindowDataset
from kipoi_seq2exp.evaluate.model_run import evaluate_on_simulated, predict_dataset, simulated_data_config
from kipoi_seq2exp.model import Seq2Exp, tiny
from kipoi_seq2exp.simulate.generate import embedded_dir


@pytest.fixture(scope="module")
def small_model() -> Seq2Exp:
    return Seq2Exp(tiny("soft", window=3_000, centre=500)).eval()


def test_predictions_match_direct_model_calls(small_model):
    dataset = WindowDataset(simulated_data_config(embedded_dir(), small_model), subset="valid")
    predictions = predict_dataset(small_model, dataset, batch_size=16)
    assert len(predictions) == len(dataset) == 60
    item = dataset[7]
    direct = small_model.predict(item["seq"][None], item["signals"][None], item["gene_features"][None])
    value, mask = predictions[item["gene_id"]]
    assert value == pytest.approx(direct.expression.item(), abs=1e-6)
    np.testing.assert_allclose(mask, direct.mask[0].numpy(), atol=1e-6)
    assert mask.shape == (3_000,) and np.all(mask[1_250:1_750] == 1)


def test_evaluation_table_has_model_and_baselines(small_model, tmp_path):
    table = evaluate_on_simulated(small_model, embedded_dir(), tmp_path, splits=["test"], method="tiny")
    assert set(table["method"]) >= {"tiny", "dnase_ranking", "oracle"}
    row = table[(table["method"] == "tiny") & (table["split"] == "test")].iloc[0]
    targets = pd.read_csv(embedded_dir() / "expression.tsv", sep="\t")
    assert row["n_genes"] == 60 and np.isfinite(row["mse"]) and 0 < row["mask_ratio"] <= 1
    assert (tmp_path / "tiny_mask.bw").stat().st_size > 0 and (tmp_path / "metrics.md").is_file()
    assert len(targets) == 300

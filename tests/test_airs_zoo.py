"""Imported authors' checkpoints are zoo members like ours: kipoi.get_model reproduces the fixture,
and `kipoi predict` on files equals direct calls of the imported model."""
from __future__ import annotations

import json

import h5py
import kipoi
import numpy as np
import pytest

from conftest import FIXTURE, airs_outputs
from kipoi_seq2exp.airs import import_airs
from kipoi_seq2exp.data.kipoi_dataloader import Seq2ExpDataset
from kipoi_seq2exp.train.export import load_exported
from kipoi_seq2exp.zoo.source import read_members
from test_zoo_helpers import copy_source, direct_expression, gene_subset, run_cli, sim_dataloader_args

GROUP = "Seq2Exp"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    source = copy_source(tmp_path_factory.mktemp("zoo"))
    import_airs(FIXTURE / "soft.ckpt.pt", "soft", source / GROUP / "AIRS-soft", cell_type="K562", window=6_000)
    import_airs(FIXTURE / "hard.ckpt.pt", "hard", source / GROUP / "AIRS-hard", cell_type="K562")
    return source


def test_import_lists_the_member_in_models_tsv(source):
    rows = {row["model"]: row for row in read_members(source / GROUP)}
    assert rows["AIRS-hard"]["variant"] == "hard" and rows["AIRS-hard"]["window"] == "6000"
    assert "sha256 ba8d95cf" in rows["AIRS-hard"]["trained_on"]
    assert {"K562", "Demo-soft"} <= set(rows)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_get_model_reproduces_the_authors_outputs(source, variant, airs_inputs):
    model = kipoi.get_model(str(source / GROUP / f"AIRS-{variant}"), source="dir")
    inputs = {"seq": airs_inputs["seqs"].numpy(), "signals": airs_inputs["signals"].numpy(),
              "gene_features": airs_inputs["rna_feat"].numpy(), "blacklist": airs_inputs["mask_regions"][..., 1].numpy()}
    expected = airs_outputs(variant)["eval"]
    got = model.predict_on_batch(inputs)
    np.testing.assert_allclose(got, expected["pred"][:, 0].numpy(), rtol=1e-5)
    mask = model.predict_activation_on_batch(inputs, layer="mask")["mask"]
    np.testing.assert_allclose(mask, expected["mask"].numpy(), rtol=1e-5, atol=1e-6)


def test_kipoi_predict_on_files_equals_direct_calls(source, tmp_path, isolated_home):
    genes = gene_subset(tmp_path, ["SIMG00241", "SIMG00003"])
    args = sim_dataloader_args(genes, window=6_000)
    out = tmp_path / "airs.h5"
    result = run_cli(["kipoi", "predict", str(source / GROUP / "AIRS-hard"), "--source", "dir",
                      "--dataloader_args", json.dumps(args), "-o", str(out)], home=isolated_home)
    assert result.returncode == 0, result.stderr[-2000:]
    with h5py.File(out) as handle:
        predicted = handle["preds"][:]
    dataset = Seq2ExpDataset(**args)
    expected = direct_expression(load_exported(source / GROUP / "AIRS-hard"), dataset)
    np.testing.assert_allclose(predicted.reshape(-1), expected, rtol=0, atol=1e-5)

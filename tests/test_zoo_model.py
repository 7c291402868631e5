"""The Kipoi model class in-process: kipoi.get_model on the members, predictions and masks equal to
direct Seq2Exp calls, RC averaging, kipoi-veff's attribute, and the errors a user can hit."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import kipoi
from kipoi_seq2exp.model import preset
from kipoi_seq2exp.train.export import load_exported
from kipoi_seq2exp.zoo.model import MaskLayer, Seq2ExpModel, VariantEffectSpec, bin_mask, mask_layer_of
from kipoi_seq2exp.zoo.source import GROUP, ZooError

from test_zoo_helpers import (copy_source, demo_source, direct_expression, export_untrained_member, gene_subset,
                              one_thread, sim_dataloader_args)

pytestmark = pytest.mark.usefixtures("one_thread")
GENES = ["SIMG00241", "SIMG00003"]  # chr22 '-' and chr1 '-'


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return demo_source(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def genes(tmp_path_factory):
    return gene_subset(tmp_path_factory.mktemp("genes"), GENES)


def _member(source, name):
    return kipoi.get_model(str(source / GROUP / name), source="dir")


def _batch(dataloader_cls, genes):
    dataset = dataloader_cls(**sim_dataloader_args(genes))
    return dataset, next(dataset.batch_iter(batch_size=len(dataset)))


def _tensors(batch):
    return [torch.from_numpy(batch["inputs"][k]) for k in ("seq", "signals", "gene_features")]


@pytest.mark.parametrize("name", ["Demo-soft", "Demo-hard"])
def test_member_predicts_like_the_exported_model(source, genes, name):
    model = _member(source, name)
    assert isinstance(model, Seq2ExpModel) and model.device.type in ("cpu", "cuda")
    assert model.postprocessing["variant_effects"] == VariantEffectSpec(["seq"], False, [])
    _, batch = _batch(model.default_dataloader, genes)  # window 20000 and Hi-C NONE: member defaults
    assert batch["inputs"]["seq"].shape == (2, 20_000, 4)
    expected = load_exported(source / GROUP / name).predict(*_tensors(batch)).expression.numpy()
    predicted = model.predict_on_batch(batch["inputs"])
    assert predicted.shape == (2,) and predicted.dtype == np.float32
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=2e-6)
    assert np.abs(predicted[0] - predicted[1]) > 1e-6  # two genes, two answers


def test_mask_layer_per_base_and_binned(source, genes):
    model = _member(source, "Demo-soft")
    _, batch = _batch(model.default_dataloader, genes)
    direct = model.model.predict(*_tensors(batch))
    full = model.predict_activation_on_batch(batch["inputs"], layer="mask")
    assert set(full) == {"expression", "mask"} and full["mask"].shape == (2, 20_000)
    np.testing.assert_allclose(full["mask"], direct.mask.numpy(), atol=1e-6)
    np.testing.assert_allclose(full["expression"], direct.expression.numpy(), atol=1e-6)
    assert (full["mask"][:, 9_000:11_000] == 1).all()  # the central 2 kb is always selected
    assert 0 < full["mask"][:, :9_000].min() and full["mask"].max() <= 1


def test_mask_layer_names_and_bins():
    assert mask_layer_of("mask", 20_000) == MaskLayer(1, False) and mask_layer_of("mask:250", 20_000) == MaskLayer(250)
    assert mask_layer_of("mask:gene", 20_000) == MaskLayer(1, True)
    assert mask_layer_of("mask:100:gene", 20_000) == MaskLayer(100, True)
    for bad in ("mask:7", "mask:0", "mask:x", "expression", "mask:gene:100", "mask:10:10"):
        with pytest.raises(ZooError):
            mask_layer_of(bad, 20_000)
    mask = np.random.default_rng(0).random((2, 20_000))
    binned = bin_mask(mask, 100)
    assert binned.shape == (2, 200)
    np.testing.assert_allclose(binned[:, 3], mask[:, 300:400].mean(axis=1))
    np.testing.assert_allclose(binned.mean(axis=1), mask.mean(axis=1))


def test_gene_orientation_reverses_minus_strand_masks_only(source, tmp_path):
    model = _member(source, "Demo-soft")
    _, batch = _batch(model.default_dataloader, gene_subset(tmp_path, ["SIMG00002", "SIMG00003"]))
    strands = batch["inputs"]["strand"][:, 0]
    assert sorted(strands.tolist()) == [-1.0, 1.0]  # one gene on each strand
    genome = model.predict_activation_on_batch(batch["inputs"], layer="mask:500")["mask"]
    gene = model.predict_activation_on_batch(batch["inputs"], layer="mask:500:gene")["mask"]
    for row, strand in enumerate(strands):
        np.testing.assert_allclose(gene[row], genome[row] if strand > 0 else genome[row, ::-1], atol=1e-6)
    without = {k: v for k, v in batch["inputs"].items() if k != "strand"}
    with pytest.raises(ZooError, match="needs the gene's strand"):
        model.predict_activation_on_batch(without, layer="mask:gene")


def test_binned_mask_layer_bins_the_model_mask(source, genes, monkeypatch):
    model = _member(source, "Demo-hard")
    _, batch = _batch(model.default_dataloader, genes)
    full = model.predict_activation_on_batch(batch["inputs"], layer="mask")["mask"]
    binned = model.predict_activation_on_batch(batch["inputs"], layer="mask:1000")["mask"]
    assert set(np.unique(full)) <= {0.0, 1.0}  # hard mask
    np.testing.assert_allclose(binned, full.reshape(2, 20, 1000).mean(axis=2), atol=1e-6)


def test_rc_average_reaches_the_model(source, monkeypatch):
    model = Seq2ExpModel(str(source / GROUP / "Demo-soft"), "demo_soft", "simulated", rc_average=True)
    seen = {}

    def predict(*tensors, blacklist=None, rc_average=False, signal_depth=None):
        seen["rc_average"] = rc_average
        return type("Out", (), {"expression": torch.zeros(len(tensors[0]))})()

    monkeypatch.setattr(model.model, "predict", predict)
    x = {"seq": np.zeros((1, 20_000, 4), np.float32), "signals": np.zeros((1, 20_000, 3), np.float32),
         "gene_features": np.zeros((1, 9), np.float32)}
    model.predict_on_batch(x)
    assert seen == {"rc_average": True}


def test_window_of_another_length_is_a_clear_error(source):
    model = _member(source, "Demo-hard")
    x = {"seq": np.zeros((1, 1000, 4), np.float32), "signals": np.zeros((1, 1000, 3), np.float32),
         "gene_features": np.zeros((1, 9), np.float32)}
    with pytest.raises(ZooError, match="reads 20,000-bp windows.*`window` at the member's default \\(20000\\)"):
        model.predict_on_batch(x)
    with pytest.raises(ZooError, match="inputs must be a dict"):
        model.predict_on_batch([x["seq"]])


def test_member_without_weights_fails_with_the_fix(source):
    with pytest.raises(ZooError, match=r"Seq2Exp/K562-paper has no trained weights .*seq2exp train --config paper_soft"):
        _member(source, "K562-paper")


def test_k562_works_once_an_export_of_the_paper_config_is_there(tmp_path):
    """The paper member loads a paper-size export (200-kb windows, d_model 128, 4 + 4 layers) and
    reads 200-kb windows by default. (One forward pass at this size takes 15-100 s on a 2-core CPU:
    see the opt-in test below.)"""
    source = copy_source(tmp_path)
    exported = export_untrained_member(source / GROUP / "K562-paper", "paper_soft", seed=3)
    model = kipoi.get_model("Seq2Exp/K562-paper", source=kipoi.sources.LocalSource(str(source)))
    assert model.window == 200_000 and model.model.cfg == preset("paper_soft")
    for name, tensor in exported.state_dict().items():
        assert torch.equal(model.model.state_dict()[name].cpu(), tensor)
    assert model.default_dataloader.args["window"].default == 200_000
    assert model.default_dataloader.args["hic_normalization"].default == "VC"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SEQ2EXP_SLOW_TESTS"),
                    reason="set SEQ2EXP_SLOW_TESTS=1 (paper-size forward pass)")
def test_k562_predicts_a_gene_like_the_exported_model(tmp_path):
    source = copy_source(tmp_path)
    exported = export_untrained_member(source / GROUP / "K562-paper", "paper_soft", seed=3)
    model = kipoi.get_model("Seq2Exp/K562-paper", source=kipoi.sources.LocalSource(str(source)))
    args = sim_dataloader_args(gene_subset(tmp_path, ["SIMG00241"]), hic_normalization="NONE")
    predicted = model.pipeline.predict(args, batch_size=1)
    dataset = model.default_dataloader(**args)
    expected = direct_expression(exported.to(model.device), dataset)
    np.testing.assert_allclose(predicted, expected, atol=1e-5)

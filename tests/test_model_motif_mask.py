"""The options that let the mask learn the elements: a motif-initialised stem and the additive join."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kipoi_seq2exp.data.genome import one_hot
from kipoi_seq2exp.model import Seq2Exp, preset, tiny
from kipoi_seq2exp.model.stem import EMBEDDED_MOTIFS, DnaStem, motif_filters
from kipoi_seq2exp.motifs import BASES, load_pwms

WINDOW = 2_400


def best_site(pwm) -> str:
    return "".join(BASES[i] for i in pwm.log_odds[:, :4].argmax(axis=1))


def test_motif_stem_fires_one_at_the_best_site_on_either_strand_and_zero_on_ns():
    """Filter 2i reads motif i's forward strand, 2i + 1 its reverse: 1.0 at the best site, 0 elsewhere."""
    pwms = list(load_pwms(EMBEDDED_MOTIFS, 0.41, 0.01).values())
    stem = DnaStem(width=20, kernel=17, resolution=50)
    stem.start_as_motif_scanners(motif_filters("embedded"))
    gata = pwms[0]
    site = best_site(gata)
    reverse = site[::-1].translate(str.maketrans("ACGT", "TGCA"))
    seq = "N" * 120 + site + "N" * (200 - len(site)) + reverse + "N" * (180 - len(reverse))  # 500 bp, 10 tokens
    with torch.no_grad():
        out = stem(torch.from_numpy(one_hot(seq))[None])[0]  # (10, 20)
    assert out[2, 0].item() == pytest.approx(1.0, abs=1e-5)  # forward site in token 2 (bases 100-149)
    assert out[6, 1].item() == pytest.approx(1.0, abs=1e-5)  # reverse-strand site in token 6 (bases 300-349)
    assert out[0, :16].abs().max().item() == 0.0  # an all-N token: no motif fires
    assert out[[2, 6], 2:16].max().item() < 1.0  # other motifs do not score the GATA site as their best


def test_motif_filters_score_a_site_by_its_relative_score():
    """A site's filter response is 4 (relative score - 0.75), relative score as the simulator's."""
    pwm = next(iter(load_pwms(EMBEDDED_MOTIFS, 0.41, 0.01).values()))
    rng = np.random.default_rng(0)
    filters = motif_filters("embedded")
    for _ in range(5):
        codes = pwm.sample_site(rng, 0.8)
        response = (filters[0, :, :pwm.width] * torch.nn.functional.one_hot(torch.from_numpy(codes).long(), 4).T).sum()
        assert response.item() == pytest.approx(4 * (pwm.relative(pwm.score(codes)) - 0.75), abs=1e-5)


def test_motif_stem_refuses_a_kernel_narrower_than_a_motif():
    with pytest.raises(ValueError, match="stem_kernel to >= 17"):
        Seq2Exp(tiny(window=WINDOW, centre=400, resolution=50, stem_kernel=15, stem_motifs="embedded"))
    with pytest.raises(FileNotFoundError, match="stem_motifs"):
        Seq2Exp(tiny(window=WINDOW, centre=400, resolution=50, stem_kernel=17, stem_motifs="/nonexistent.json"))


def additive(**kw) -> Seq2Exp:
    cfg = tiny(window=WINDOW, centre=400, resolution=50, stem_kernel=17, readout="sum", sum_contribution="signals",
               sum_join="additive", **kw)
    return Seq2Exp(cfg)


def test_additive_join_makes_expression_non_decreasing_in_every_tokens_mask():
    """Whatever the weights (negative signal weights and slopes drawn on purpose), raising a distal
    token's mask can only raise the prediction: d expression / d mask >= 0 at every token."""
    torch.manual_seed(0)
    model = additive().train()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    cfg = model.cfg
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (2, WINDOW)), 4).float()
    signals, feats = torch.rand(2, WINDOW, cfg.n_signals) * 2, torch.randn(2, cfg.n_gene_features)
    sample = torch.rand(2, cfg.n_tokens, requires_grad=True)
    model(seq, signals, feats, mask_sample=sample).expression.sum().backward()
    distal = torch.ones(cfg.n_tokens, dtype=torch.bool)
    distal[cfg.token_centre_slice] = False
    assert (sample.grad[:, distal] >= 0).all()
    assert (sample.grad[:, distal] > 0).any()


def test_additive_join_keeps_the_sum_out_of_the_head():
    model = additive()
    assert model.head[0].in_features == model.cfg.d_model + model.cfg.n_gene_features
    with pytest.raises(ValueError, match="sum_join: additive needs readout: sum"):
        tiny(window=WINDOW, centre=400, sum_join="additive")


def test_motif_mask_preset_is_the_measured_recipe():
    cfg = preset("cpu_motif_soft")
    assert (cfg.stem_motifs, cfg.sum_join, cfg.sum_contribution, cfg.predictor_dna) == ("embedded", "additive", "signals", "centre")
    assert cfg.kl_weight == 0 and cfg.mask_budget > 0
    stem = Seq2Exp(cfg).dna_embed
    filters = motif_filters("embedded")
    offset = (cfg.stem_kernel - filters.shape[-1]) // 2
    assert torch.equal(stem.conv.weight[:16, :, offset:offset + filters.shape[-1]], filters)


def test_a_member_loads_where_its_motif_file_does_not_exist(tmp_path):
    """The motif file starts the stem before training; a trained member's weights hold the result, so
    loading the export (or a checkpoint) must not need the file."""
    import shutil

    from kipoi_seq2exp.train.export import load_exported, write_export

    motifs = tmp_path / "my_jaspar.json"
    shutil.copy(EMBEDDED_MOTIFS, motifs)
    torch.manual_seed(0)
    model = additive(stem_motifs=str(motifs)).eval()
    write_export(model, None, {"cell_type": "simulated"}, tmp_path / "member")
    motifs.unlink()
    with pytest.raises(FileNotFoundError, match="stem_motifs"):
        Seq2Exp(model.cfg)  # a fresh model still needs it
    loaded = load_exported(tmp_path / "member")
    assert loaded.cfg.stem_motifs == str(motifs)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (1, WINDOW)), 4).float()
    signals, feats = torch.rand(1, WINDOW, model.cfg.n_signals), torch.randn(1, model.cfg.n_gene_features)
    with torch.no_grad():
        assert torch.equal(loaded(seq, signals, feats).expression, model(seq, signals, feats).expression)

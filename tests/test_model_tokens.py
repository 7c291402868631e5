"""Token resolution, window readout and depth normalisation: the options that let the mask learn.

The paper presets never use them (``test_released.py`` checks those numbers); here: shapes and
per-base outputs, the forced centre, reach (a random-init token model listens at 5-10 kb, the
per-base one does not), and exact invariance of a depth-normalised model to sequencing depth.
"""
import numpy as np
import pytest
import torch

from kipoi_seq2exp.interpret import influence_profile
from kipoi_seq2exp.model import ModelConfig, Seq2Exp, preset
from kipoi_seq2exp.model.config import SignalTrack
from kipoi_seq2exp.model.stem import DnaStem, bin_mean, to_bases


def inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, cfg.window), generator=g), 4).float()
    signals = torch.rand(batch, cfg.window, cfg.n_signals, generator=g) * 5
    return seq, signals, torch.randn(batch, cfg.n_gene_features, generator=g)


def small_tokens(**overrides) -> ModelConfig:
    return preset("cpu_soft", **{**dict(d_model=16, window=6_000, centre=1_000, resolution=50), **overrides})


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_token_model_outputs_per_base_constant_within_tokens(variant):
    torch.manual_seed(0)
    cfg = small_tokens(variant=variant, hard_gradient="straight_through")
    model = Seq2Exp(cfg).eval()
    out = model(*inputs(cfg))
    assert out.mask.shape == (2, 6_000) and out.alpha.shape == (2, 6_000) and out.expression.shape == (2,)
    tokens = out.mask.reshape(2, -1, 50)
    assert torch.equal(tokens, tokens[..., :1].expand_as(tokens))  # one value per 50-bp token
    assert torch.all(out.mask[:, cfg.centre_slice] == 1)
    outside = torch.ones(6_000, dtype=torch.bool)
    outside[cfg.centre_slice] = False
    if variant == "soft":
        assert torch.all(out.mask[:, outside] < 1)
    else:
        assert set(out.mask.unique().tolist()) <= {0.0, 1.0}


def test_blacklisted_base_drops_its_whole_token():
    cfg = small_tokens()
    model = Seq2Exp(cfg).eval()
    blacklist = torch.zeros(2, 6_000, dtype=torch.bool)
    blacklist[:, 120] = True  # token 2 = bases 100-149
    out = model(*inputs(cfg), blacklist=blacklist)
    assert torch.all(out.mask[:, 100:150] == 0) and torch.all(out.mask[:, 150:200] > 0)


def test_stem_finds_a_motif_wherever_it_sits_in_the_token():
    """Max-pooled motif scores: the same site at two offsets inside one token scores the same."""
    stem = DnaStem(width=1, kernel=4, resolution=10)
    with torch.no_grad():
        stem.conv.weight.zero_()
        stem.conv.weight[0, :, :] = torch.eye(4)  # "ACGT" scores 4
        stem.conv.bias.fill_(-3.5)
    background = torch.zeros(1, 40, 4)
    background[..., 0] = 1
    scores = []
    for offset in (11, 15):
        seq = background.clone()
        seq[0, offset:offset + 4] = torch.eye(4)
        scores.append(stem(seq)[0, :, 0].detach())
    for got in scores:
        assert float(got[1]) == pytest.approx(0.5) and got[0] == 0 and got[2:].sum() == 0


def test_binning_helpers():
    x = torch.arange(12.0).reshape(1, 6, 2)
    np.testing.assert_allclose(bin_mean(x, 3)[0].numpy(), [[2, 3], [8, 9]])
    assert torch.equal(to_bases(torch.tensor([[1.0, 2.0]]), 3), torch.tensor([[1.0, 1, 1, 2, 2, 2]]))


def test_window_readout_reaches_far_from_the_tss_at_init():
    """The measured cause of the unlearned mask: a per-base model with the centre readout does not
    listen beyond ~2 kb at init; tokens + the window readout do, so the mask there gets a gradient."""
    torch.manual_seed(0)
    per_base = preset("paper_soft", d_model=16, n_layers_generator=2, n_layers_predictor=2, window=20_000,
                      activation_checkpointing=False)
    tokens = preset("cpu_soft", d_model=16)
    reach = {}
    for name, cfg in (("per_base", per_base), ("tokens", tokens)):
        model = Seq2Exp(cfg)
        seq, signals, features = inputs(cfg, batch=1)
        reach[name] = influence_profile(model, [dict(seq=seq, signals=signals, gene_features=features)]).at(5_000, 10_000)
    assert reach["per_base"][1] < 1e-3
    assert reach["tokens"][1] > 1e-2 and reach["tokens"][0] > 1e-2


def depth_model() -> Seq2Exp:
    torch.manual_seed(1)
    signals = [SignalTrack("dnase", 0.2, 1.0, transform="log10p1", normalise="depth", reference_depth=2.0)]
    return Seq2Exp(small_tokens(signals=signals)).eval()


def test_depth_normalisation_makes_a_shallower_library_give_the_same_prediction():
    model = depth_model()
    seq, signals, features = inputs(model.cfg)
    features[:, -1] = signals[:, 2_500:3_500, 0].mean(dim=1)  # promoter activity scales with depth too
    deep = model.predict(seq, signals, features, signal_depth=torch.full((2, 1), 2.0))
    shallow = model.predict(seq, signals * 0.4, features * torch.tensor([1.0] * 8 + [0.4]),
                            signal_depth=torch.full((2, 1), 0.8))
    torch.testing.assert_close(shallow.expression, deep.expression, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shallow.mask, deep.mask, rtol=1e-5, atol=1e-5)
    unnormalised = model.predict(seq, signals * 0.4, features, signal_depth=None)
    assert (unnormalised.expression - deep.expression).abs().max() > 1e-3  # the rescaling is what did it


def test_depth_normalisation_refuses_a_model_without_reference():
    cfg = small_tokens(signals=[SignalTrack("dnase", 0.2, 1.0, normalise="depth")])
    with pytest.raises(ValueError, match="reference_depth"):
        Seq2Exp(cfg).predict(*inputs(cfg), signal_depth=torch.ones(2, 1))
    model = depth_model()
    with pytest.raises(ValueError, match="positive and finite"):
        model.predict(*inputs(model.cfg), signal_depth=torch.zeros(2, 1))


@pytest.mark.parametrize("bad, message", [
    (dict(resolution=64), "resolution"),
    (dict(readout="attention"), "readout"),
    (dict(signals=[SignalTrack("dnase", 0.2, 1.0, normalise="quantile")]), "normalise"),
])
def test_invalid_token_options_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        small_tokens(**bad)


def test_uncompacted_hard_mask_keeps_a_gradient_on_unselected_tokens():
    """Compacted (the authors'), a token the hard mask drops never reaches the predictor again, so
    nothing can switch it back on; read times its 0/1 value, it still gets the straight-through gradient."""
    torch.manual_seed(0)
    grads = {}
    for compact in (True, False):
        cfg = small_tokens(variant="hard", hard_gradient="straight_through", compact_selected=compact)
        model = Seq2Exp(cfg).train()
        with torch.no_grad():
            model.mask_head.bias.copy_(torch.tensor([30.0, -30.0]))  # beta >> alpha: nothing selected
        seq, signals, features = inputs(cfg, batch=1)
        out = model(seq, signals, features)
        outside = torch.ones(cfg.window, dtype=torch.bool)
        outside[cfg.centre_slice] = False
        assert out.mask[:, outside].sum() == 0
        model.loss(out, torch.zeros(1)).prediction.backward()
        grads[compact] = model.mask_head.weight.grad.abs().sum().item()
    assert grads[True] == 0 and grads[False] > 0


def test_mask_noise_fills_what_the_mask_takes_away_in_training_only():
    """Eval: the same numbers with or without the noise option; training: a token whose mask is 0
    reaches the predictor as pure noise, so the prediction changes from draw to draw."""
    torch.manual_seed(0)
    quiet = Seq2Exp(small_tokens(mask_gate="every_layer"))
    noisy = Seq2Exp(small_tokens(mask_gate="every_layer", mask_noise=True))
    noisy.load_state_dict(quiet.state_dict())
    x = inputs(quiet.cfg)
    torch.testing.assert_close(noisy.predict(*x).expression, quiet.predict(*x).expression)
    noisy.train()
    sample = torch.full((2, noisy.cfg.n_tokens), 0.5)
    first, second = (noisy(*x, mask_sample=sample, return_details=True).details["predictor_out"] for _ in range(2))
    assert (first - second).norm() > 1e-3 * first.norm()  # at init the residual stream dominates
    with pytest.raises(ValueError, match="mask_noise needs"):
        small_tokens(mask_noise=True, mask_gate="input")


@pytest.mark.parametrize("predictor_dna, distal_dna_matters", [("everywhere", True), ("centre", False)])
def test_distal_dna_reaches_a_centre_only_predictor_through_the_mask_alone(predictor_dna, distal_dna_matters):
    """With the generator's output cut (mask head weights 0, so the mask ignores the DNA), other
    distal DNA changes the prediction only when the predictor reads the DNA itself."""
    torch.manual_seed(0)
    model = Seq2Exp(small_tokens(predictor_dna=predictor_dna)).eval()
    with torch.no_grad():
        model.mask_head.weight.zero_()
    seq, signals, features = inputs(model.cfg)
    other = seq.clone()
    other[:, :2_000] = seq[:, :2_000].flip(-1)  # complement the first 2 kb: far outside the centre
    change = (model.predict(other, signals, features).expression - model.predict(seq, signals, features).expression).abs()
    assert (change.max() > 1e-6) == distal_dna_matters


def test_a_checkpoint_from_before_a_config_key_existed_still_matches_its_config():
    """A key added to ModelConfig later counts as its default; reference_depth 0 (not yet trained)
    matches the checkpoint's measured depth."""
    from kipoi_seq2exp.train.export import check_same_model

    trained = small_tokens(signals=[SignalTrack("dnase", 0.2, 1.0, normalise="depth", reference_depth=3.1)])
    stored = trained.to_dict()
    del stored["predictor_dna"]
    checkpoint = {"hyper_parameters": {"model": stored}}
    check_same_model(checkpoint, small_tokens(signals=[SignalTrack("dnase", 0.2, 1.0, normalise="depth")]), "x.ckpt")
    with pytest.raises(Exception, match="resolution"):
        check_same_model(checkpoint, small_tokens(resolution=100), "x.ckpt")


def test_mask_budget_charges_only_the_excess_of_the_mean_mask_outside_the_centre():
    torch.manual_seed(0)
    cfg = small_tokens(mask_budget=0.2, budget_weight=2.0, kl_weight=0.0)
    model = Seq2Exp(cfg).train()
    x = inputs(cfg)
    outside = torch.ones(cfg.window, dtype=torch.bool)
    outside[cfg.centre_slice] = False
    for level, expected in ((0.1, 0.0), (0.5, 2.0 * 0.3)):
        out = model(*x, mask_sample=torch.full((2, cfg.n_tokens), level))
        terms = model.loss(out, torch.zeros(2))
        assert out.mask[:, outside].mean().item() == pytest.approx(level)
        assert terms.budget.item() * 2.0 == pytest.approx(expected, abs=1e-6)
        assert terms.total.item() == pytest.approx(terms.prediction.item() + expected, abs=1e-5)


def test_fixed_concentration_generator_sets_the_mean_only():
    torch.manual_seed(0)
    model = Seq2Exp(small_tokens(generator_concentration=10.0, beta_min=0.0)).eval()
    out = model(*inputs(model.cfg))
    torch.testing.assert_close(out.post_alpha + out.post_beta, torch.full_like(out.post_alpha, 10.0), rtol=1e-5, atol=1e-5)
    assert out.post_alpha.std() > 0  # the mean still moves from token to token


def test_rc_augment_flips_only_the_chosen_examples():
    from kipoi_seq2exp.model.caduceus import reverse_complement
    from kipoi_seq2exp.train.module import reverse_complement_some

    cfg = small_tokens()
    seq, signals, features = inputs(cfg)
    blacklist = torch.zeros(2, cfg.window, dtype=torch.bool)
    blacklist[:, :10] = True
    batch = {"seq": seq, "signals": signals, "gene_features": features, "blacklist": blacklist}
    out = reverse_complement_some(batch, torch.tensor([True, False]))
    assert torch.equal(out["seq"][0], reverse_complement(seq)[0]) and torch.equal(out["seq"][1], seq[1])
    assert torch.equal(out["signals"][0], signals[0].flip(0)) and torch.equal(out["signals"][1], signals[1])
    assert out["blacklist"][0, -10:].all() and out["blacklist"][1, :10].all()
    assert out["gene_features"] is features
    assert reverse_complement_some(batch, torch.tensor([False, False])) is batch


def test_kl_warmup_ramps_the_kl_weight_linearly():
    from kipoi_seq2exp.train.module import Seq2ExpModule

    module = Seq2ExpModule(small_tokens().to_dict(), {"kl_warmup_steps": 100, "max_steps": 200, "warmup_steps": 10})
    for step, scale in ((0, 0.0), (25, 0.25), (100, 1.0), (150, 1.0)):
        module.trainer = type("T", (), {"global_step": step})()
        assert module.kl_scale == pytest.approx(scale)


def test_a_run_config_given_with_a_checkpoint_takes_the_trained_reference_depths():
    """`seq2exp test --ckpt X --config demo_soft`: the packaged config does not know the depths
    training measured; the checkpoint does, and the model must be built with them."""
    import dataclasses

    from kipoi_seq2exp.train.config import load_run_config
    from kipoi_seq2exp.train.runner import resolve_run

    run = load_run_config("demo_soft")
    assert all(s.reference_depth == 0 for s in run.model.signals if s.normalise == "depth")
    trained = [dataclasses.replace(s, reference_depth=2.5 if s.normalise == "depth" else 0.0) for s in run.model.signals]
    checkpoint = {"hyper_parameters": {"model": dataclasses.replace(run.model, signals=trained).to_dict()}}
    resolved = resolve_run("demo_soft", [], checkpoint, "best.ckpt")
    assert [s.reference_depth for s in resolved.model.signals] == [s.reference_depth for s in trained]

"""Model core: distributions, mask rules, fixed regions, RC equivariance, determinism, config, bad input."""
from __future__ import annotations

import math

import pytest
import torch

from kipoi_seq2exp.model import (Caduceus, ModelConfig, RCEquivariantCaduceus, Seq2Exp, beta_kl,
                                 count_parameters_by_hand, paper_soft, preset, reverse_complement, tiny)

WINDOW = 2_400


def small(variant="soft", **kw) -> ModelConfig:
    return tiny(variant, window=WINDOW, centre=400, **kw)


def random_inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, cfg.window), generator=g), 4).float()
    signals = torch.rand(batch, cfg.window, cfg.n_signals, generator=g) * 2
    return seq, signals, torch.randn(batch, cfg.n_gene_features, generator=g)


def test_kl_equals_torch_distributions_closed_form():
    alpha, beta = torch.rand(50, dtype=torch.float64) * 20 + 0.05, torch.rand(50, dtype=torch.float64) * 20 + 0.05
    for prior in [(10.0, 90.0), (0.1, 0.1222)]:
        expected = torch.distributions.kl_divergence(torch.distributions.Beta(alpha, beta),
                                                     torch.distributions.Beta(*[torch.tensor(p, dtype=torch.float64)
                                                                                for p in prior]))
        assert torch.allclose(beta_kl(alpha, beta, *prior), expected, rtol=1e-10, atol=1e-12)


def test_paper_rule_is_the_product_of_the_two_beta_densities():
    """Beta(a1 + a2 - 1, b1 + b2 - 1) is proportional to Beta(a1, b1) * Beta(a2, b2) (Proposition 2)."""
    model = Seq2Exp(small(combine="paper"))
    a1, b1 = torch.tensor([2.5], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)
    a2, b2 = torch.tensor([11.0], dtype=torch.float64), torch.tensor([19.8], dtype=torch.float64)
    alpha, beta = model.combine(a1, b1, a2, b2)
    x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    Beta = torch.distributions.Beta
    product = Beta(a1, b1).log_prob(x).exp() * Beta(a2, b2).log_prob(x).exp()
    product = product / torch.trapezoid(product, x)
    combined = Beta(alpha, beta).log_prob(x).exp()
    combined = combined / torch.trapezoid(combined, x)
    assert torch.allclose(product, combined, rtol=1e-9)


def test_paper_rule_rejects_invalid_parameters():
    model = Seq2Exp(small("hard", combine="paper"))
    with pytest.raises(ValueError, match="product-of-Betas"):
        model.combine(torch.tensor([0.2]), torch.tensor([0.5]), torch.tensor([0.1]), torch.tensor([0.88]))


def test_hard_mask_is_binary_with_straight_through_gradient():
    model = Seq2Exp(small("hard")).train()
    alpha = torch.rand(2, WINDOW, requires_grad=True) * 3 + 0.1
    beta = torch.full((2, WINDOW), 1.0)
    mask = model.sample_mask(alpha, beta, mask_sample=None)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    z = torch.rand(2, WINDOW, requires_grad=True)
    mask = model.sample_mask(alpha, beta, mask_sample=z)
    assert torch.equal(mask.detach(), (z >= 0.5).float())
    (grad,) = torch.autograd.grad((mask * torch.arange(WINDOW)).sum(), z)
    assert torch.equal(grad, torch.arange(WINDOW).float().expand(2, -1))


def test_beta_sample_in_bfloat16_is_drawn_in_float32_with_gradients():
    """bf16-mixed training: torch has no bfloat16 Dirichlet kernel; the sample is drawn in float32."""
    model = Seq2Exp(small()).train()
    alpha = torch.full((4, 64), 2.0, dtype=torch.bfloat16, requires_grad=True)
    beta = torch.full((4, 64), 6.0, dtype=torch.bfloat16, requires_grad=True)
    torch.manual_seed(0)
    z = model.sample_mask(alpha, beta, mask_sample=None)
    z.float().sum().backward()
    assert z.dtype == torch.bfloat16 and 0 < z.min() and z.max() < 1
    assert abs(z.float().mean().item() - 0.25) < 0.05  # Beta(2, 6) has mean 0.25
    assert alpha.grad is not None and bool((alpha.grad > 0).all()) and bool((beta.grad < 0).all())


def test_signal_contributions_depend_only_on_the_token_signals_and_position():
    """sum_contribution: signals is the ABC form exp(w . s_t + b_t): no token reads another."""
    cfg = small(readout="sum", sum_contribution="signals")
    model = Seq2Exp(cfg).eval()
    signals = torch.rand(1, cfg.n_tokens, cfg.n_signals)
    with torch.no_grad():
        model.contact_bias.normal_()
        base = model.token_contributions(None, signals)
        changed = signals.clone()
        changed[0, 5] += 1.0
        moved = model.token_contributions(None, changed)
        expected = torch.exp(model.contribution(signals) + model.contact_bias)
    assert torch.allclose(base, expected)
    assert torch.equal((moved != base).any(-1)[0].nonzero().flatten(), torch.tensor([5]))


@pytest.mark.parametrize("kw", [dict(readout="centre", sum_contribution="signals"),
                                dict(variant="hard", readout="sum", sum_contribution="signals"),
                                dict(readout="sum", sum_contribution="tokens")])
def test_signal_contributions_need_an_uncompacted_sum_readout(kw):
    variant = kw.pop("variant", "soft")
    with pytest.raises(ValueError, match="sum_contribution"):
        small(variant, **kw)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_centre_always_kept_and_blacklist_dropped(variant):
    cfg = small(variant)
    model = Seq2Exp(cfg).eval()
    seq, signals, feats = random_inputs(cfg)
    blacklist = torch.zeros(2, WINDOW, dtype=torch.bool)
    blacklist[:, :300] = True
    blacklist[:, cfg.centre_slice.start - 50:cfg.centre_slice.start + 50] = True
    with torch.no_grad():
        out = model(seq, signals, feats, blacklist)
    assert torch.all(out.mask[:, cfg.centre_slice] == 1)
    assert torch.all(out.mask[:, :300] == 0)
    assert torch.all(out.mask[:, cfg.centre_slice.start - 50:cfg.centre_slice.start] == 0)


def test_rc_equivariant_backbone_commutes_with_reverse_complement():
    cfg = small(d_model=16, rc_equivariant=True)
    backbone = RCEquivariantCaduceus(cfg, n_layers=2).double()
    h = torch.randn(2, 500, 16, dtype=torch.float64)
    assert torch.allclose(backbone(reverse_complement(h)), reverse_complement(backbone(h)), atol=1e-10)
    plain = Caduceus(cfg, n_layers=2).double()
    assert not torch.allclose(plain(reverse_complement(h)), reverse_complement(plain(h)), atol=1e-3)


def test_rc_equivariant_model_predicts_the_same_on_both_strands():
    cfg = small(rc_equivariant=True)
    model = Seq2Exp(cfg).double().eval()
    seq, signals, feats = (x.double() for x in random_inputs(cfg))
    with torch.no_grad():
        fwd = model(seq, signals, feats)
        rev = model(reverse_complement(seq), signals.flip(1), feats)
    assert torch.allclose(fwd.expression, rev.expression, atol=1e-10)
    assert torch.allclose(fwd.mask, rev.mask.flip(1), atol=1e-10)


def test_rc_averaging_is_strand_symmetric():
    cfg = small()
    model = Seq2Exp(cfg).double()
    seq, signals, feats = (x.double() for x in random_inputs(cfg))
    fwd = model.predict(seq, signals, feats, rc_average=True)
    rev = model.predict(reverse_complement(seq), signals.flip(1), feats, rc_average=True)
    assert torch.allclose(fwd.expression, rev.expression, atol=1e-12)
    assert model.training


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_eval_is_bitwise_deterministic(variant):
    cfg = small(variant)
    model = Seq2Exp(cfg).eval()
    inputs = random_inputs(cfg)
    with torch.no_grad():
        a, b = model(*inputs), model(*inputs)
    assert torch.equal(a.expression, b.expression) and torch.equal(a.mask, b.mask)


def test_paper_soft_parameter_count(capsys):
    cfg = paper_soft()
    d, di, n, r = 128, 256, 16, 8
    per_direction = di * 4 + di + di * (r + 2 * n) + r * di + di + di * n + di
    per_layer = d + d * 2 * di + di * d + 2 * per_direction
    hand = 8 * per_layer + 2 * d + (4 * d + d) + (3 * d + d) + (2 * d + 2) + (137 * d + d) + (d * d + d) + (d + 1)
    model = Seq2Exp(cfg)
    print(f"paper soft: {model.n_parameters():,} trainable parameters")
    assert model.n_parameters() == hand == count_parameters_by_hand(cfg) == 1_114_243
    assert "1,114,243" in capsys.readouterr().out


def test_initialisation_quirks():
    model = Seq2Exp(paper_soft(window=4_000))
    layer = model.generator.layers[0].mixer
    bound = math.sqrt(6 / ((1 + 5) * 256)) / 8
    assert layer.out_proj.weight.abs().max() <= bound + 1e-7
    assert layer.out_proj.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    dt = torch.nn.functional.softplus(layer.fwd.dt_proj.bias)
    assert dt.min() >= 1e-3 - 1e-6 and dt.max() <= 0.1 + 1e-6
    assert torch.equal(layer.fwd.A_log[3], torch.log(torch.arange(1, 17.0)))
    assert model.dna_embed.bias.abs().max() == 0 and model.head[0].bias.abs().max() == 0
    assert torch.allclose(model.signal_weights, torch.tensor([0.4, 0.4, 0.2]))


def test_config_yaml_round_trip_and_unknown_key(tmp_path):
    cfg = preset("paper_hard", window=10_000)
    cfg.to_yaml(tmp_path / "model.yaml")
    assert ModelConfig.from_yaml(tmp_path / "model.yaml") == cfg
    (tmp_path / "bad.yaml").write_text("d_model: 64\nn_layer: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key\(s\) \['n_layer'\]"):
        ModelConfig.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("paper_medium")


@pytest.mark.parametrize("mutate,message", [
    (lambda s, g, f: (s[:, :-1], g[:, :-1], f), r"seq must have shape \(batch, 2400, 4\)"),
    (lambda s, g, f: (s.long(), g, f), "seq must be a floating-point tensor"),
    (lambda s, g, f: (s, g[..., :2], f), r"signals must have shape \(batch, 2400, 3\)"),
    (lambda s, g, f: (s, g.index_fill(2, torch.tensor([1]), float("nan")), f), "signals contains NaN"),
    (lambda s, g, f: (s, g.index_fill(2, torch.tensor([1]), -1.0), f), r"channel 1 \(dnase\) has negative"),
    (lambda s, g, f: (s, g, f[:, :8]), r"gene_features must have shape \(2, 9\)"),
])
def test_bad_input_is_rejected_before_computation(mutate, message):
    cfg = small()
    model = Seq2Exp(cfg)
    with pytest.raises(ValueError, match=message):
        model(*mutate(*random_inputs(cfg)))


def test_activation_checkpointing_gives_the_same_gradients():
    cfg = small(activation_checkpointing=False)
    plain = Seq2Exp(cfg).train()
    ckpt = Seq2Exp(small(activation_checkpointing=True)).train()
    ckpt.load_state_dict(plain.state_dict())
    inputs = random_inputs(cfg)
    sample = torch.rand(2, WINDOW) * 0.8 + 0.1
    grads = []
    for model in (plain, ckpt):
        out = model(*inputs, mask_sample=sample)
        model.loss(out, torch.ones(2)).total.backward()
        grads.append(model.generator.layers[0].mixer.in_proj.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_log_transforms_equal_feeding_logged_inputs(variant):
    """signals[i].transform / promoter_transform = log10p1 is exactly the model on log10(1 + x) inputs."""
    logged = small(variant, promoter_transform="log10p1",
                   signals=[dict(name=s.name, constant=s.constant, weight=s.weight, transform="log10p1" if i != 1 else "none")
                            for i, s in enumerate(small(variant).signals)])
    torch.manual_seed(0)
    model = Seq2Exp(logged).eval()
    plain = Seq2Exp(small(variant)).eval()
    plain.load_state_dict(model.state_dict())
    seq, signals, features = random_inputs(logged)
    signals, features = signals * 100, features.abs() * 50  # read-count scale
    by_hand = signals.clone()
    by_hand[..., [0, 2]] = torch.log10(1 + signals[..., [0, 2]])
    features_by_hand = torch.cat([features[:, :-1], torch.log10(1 + features[:, -1:])], dim=1)
    raw = signals.clone(), features.clone()
    out, expected = model(seq, signals, features), plain(seq, by_hand, features_by_hand)
    assert torch.equal(signals, raw[0]) and torch.equal(features, raw[1])  # the caller's inputs stay raw
    assert torch.equal(out.expression, expected.expression) and torch.equal(out.mask, expected.mask)
    assert not torch.allclose(plain(seq, signals, features).expression, expected.expression)


def test_transform_round_trips_and_bad_transform_is_named(tmp_path):
    cfg = small(promoter_transform="log10p1", signals=[dict(name="dnase", constant=0.2, weight=1.0, transform="log10p1")])
    cfg.to_yaml(tmp_path / "m.yaml")
    assert ModelConfig.from_yaml(tmp_path / "m.yaml") == cfg
    with pytest.raises(ValueError, match=r"signals\[0\] \(dnase\).transform = 'log'"):
        small(signals=[dict(name="dnase", constant=0.2, weight=1.0, transform="log")])
    with pytest.raises(ValueError, match="promoter_transform = 'sqrt'"):
        small(promoter_transform="sqrt")

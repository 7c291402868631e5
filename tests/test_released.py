"""Released mode = the authors' model: our model, loaded through the key mapping, reproduces the
authors' CPU fixture (tiny config, random weights) number for number. The fast scan runs here."""
from __future__ import annotations

import pytest
import torch

from conftest import airs_checkpoint, airs_outputs
from kipoi_seq2exp.model import Seq2Exp, airs_to_ours, ours_to_airs, tiny
from kipoi_seq2exp.ops import scan_compiled

RTOL = 1e-5


def close(ours: torch.Tensor, theirs: torch.Tensor, rtol: float = RTOL) -> bool:
    ours, theirs = ours.detach().reshape(theirs.shape).double(), theirs.double()
    return bool((ours - theirs).abs().max() <= rtol * theirs.abs().max().clamp_min(1e-30))


def released_model(variant: str, **overrides) -> Seq2Exp:
    cfg = tiny(variant, **overrides)
    model = Seq2Exp(cfg)
    state = airs_to_ours(airs_checkpoint(variant)["state_dict"], model.state_dict(), cfg, source=f"{variant}.ckpt.pt")
    model.load_state_dict(state, strict=True)
    return model


def run(model: Seq2Exp, inputs: dict, **kwargs):
    return model(inputs["seqs"], inputs["signals"], inputs["rna_feat"], inputs["mask_regions"][..., 1],
                 return_details=True, **kwargs)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_eval_outputs_match_authors(variant, airs_inputs):
    expected = airs_outputs(variant)["eval"]
    model = released_model(variant).eval()
    with torch.no_grad():
        out = run(model, airs_inputs)
    loss = model.loss(out, airs_inputs["y"])
    assert close(out.expression, expected["pred"])
    if variant == "hard":
        assert torch.equal(out.mask, expected["mask"])
    else:
        assert close(out.mask, expected["mask"])
    for ours, theirs in [(out.alpha, "z_alpha"), (out.beta, "z_beta"), (out.post_alpha, "post_alpha"),
                         (out.post_beta, "post_beta"), (out.kl, "kl_loss"), (loss.prediction, "loss_pred"),
                         (loss.total, "loss_total"), (out.details["p_embed"], "p_embed"),
                         (model.signal_weights, "signal_weights")]:
        assert close(ours, expected[theirs]), theirs
    probes = expected["probe_positions"]
    assert close(out.details["mask_logits"][:, probes], expected["mask_logits_probe"])
    assert close(out.details["generator_out"][:, probes], expected["generator_out_probe"])
    n_predictor_probes = expected["predictor_out_probe"].shape[1]
    assert close(out.details["predictor_out"][:, probes[:n_predictor_probes]], expected["predictor_out_probe"])
    assert close(out.details["signal_alpha"][:, probes].permute(2, 0, 1), expected["prior_alpha_probe"])


@pytest.mark.parametrize("kernel", scan_compiled.available_kernels())
@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_every_compiled_kernel_reproduces_authors_prediction(variant, kernel, airs_inputs):
    expected = airs_outputs(variant)["eval"]
    scan_compiled.set_scan_kernel(kernel)
    try:
        with torch.no_grad():
            out = run(released_model(variant).eval(), airs_inputs)
    finally:
        scan_compiled.set_scan_kernel(None)
    assert scan_compiled.selected_kernel() is not None
    assert close(out.expression, expected["pred"]) and close(out.alpha, expected["z_alpha"])


def test_chunked_backend_reproduces_authors_prediction(airs_inputs, monkeypatch):
    monkeypatch.setenv("SEQ2EXP_SCAN_BACKEND", "chunked")
    with torch.no_grad():
        out = run(released_model("soft").eval(), airs_inputs)
    assert close(out.expression, airs_outputs("soft")["eval"]["pred"])


def test_hard_compaction_matches_authors(airs_inputs):
    expected = airs_outputs("hard")["eval"]
    model = released_model("hard").eval()
    with torch.no_grad():
        out = run(model, airs_inputs)
        alone = torch.stack([model(airs_inputs["seqs"][i:i + 1], airs_inputs["signals"][i:i + 1],
                                   airs_inputs["rna_feat"][i:i + 1], airs_inputs["mask_regions"][i:i + 1, :, 1]
                                   ).expression[0] for i in range(2)])
    assert torch.equal(out.details["valid_counts"].float(), expected["valid_counts"])
    assert out.details["predictor_out"].shape[1] == int(expected["compacted_len"])
    assert torch.equal(out.details["centre_start_in_compacted"], expected["promo_start_in_compacted"].long())
    assert close(alone, expected["pred_each_example_alone"])
    # End padding makes a prediction depend slightly on its batch partner, as in the authors' model.
    assert close(out.expression, expected["pred"])


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_training_mode_replays_authors_sample(variant, airs_inputs):
    expected = airs_outputs(variant)["train_sampling_dependent"]
    model = released_model(variant).train()
    out = run(model, airs_inputs, mask_sample=expected["rsample"])
    loss = model.loss(out, airs_inputs["y"])
    assert close(out.mask, expected["mask"])
    for ours, theirs in [(out.expression, "pred"), (out.kl, "kl_loss"), (loss.total, "loss_total"),
                         (out.details["p_embed"], "p_embed")]:
        assert close(ours, expected[theirs]), theirs


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_mapping_round_trip_restores_authors_layout(variant):
    ckpt = airs_checkpoint(variant)
    model = released_model(variant)
    back = ours_to_airs(model.state_dict(), model.cfg)
    theirs = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    assert set(back) == set(theirs)
    assert all(torch.equal(back[k], theirs[k]) for k in theirs)
    for group in ckpt["aliases"]:
        assert len({back[k.removeprefix("model.")].data_ptr() for k in group}) == 1


def test_state_dict_of_other_variant_is_rejected_naming_the_key():
    soft_state = airs_checkpoint("soft")["state_dict"]
    hard = Seq2Exp(tiny("hard"))
    with pytest.raises(ValueError, match="pos_emb"):
        airs_to_ours(soft_state, hard.state_dict(), hard.cfg)
    soft = Seq2Exp(tiny("soft"))
    with pytest.raises(ValueError, match="pos_emb"):
        airs_to_ours(airs_checkpoint("hard")["state_dict"], soft.state_dict(), soft.cfg)


def test_wrong_size_missing_key_and_broken_alias_are_rejected():
    state = dict(airs_checkpoint("soft")["state_dict"])
    wide = Seq2Exp(tiny("soft", d_model=32))
    with pytest.raises(ValueError, match=r"seq_input_layer.weight.*shape \(16, 4\), expected \(32, 4\)"):
        airs_to_ours(state, wide.state_dict(), wide.cfg)
    deep = Seq2Exp(tiny("soft", n_layers_generator=3))
    with pytest.raises(ValueError, match=r"missing key 'generator.backbone.layers.2"):
        airs_to_ours(state, deep.state_dict(), deep.cfg)
    model = Seq2Exp(tiny("soft"))
    missing = {k: v for k, v in state.items() if k != "model.mask_output.bias"}
    with pytest.raises(ValueError, match="missing key 'mask_output.bias'"):
        airs_to_ours(missing, model.state_dict(), model.cfg)
    key = "model.generator.backbone.layers.0.mixer.mamba_rev.in_proj.weight"
    broken = {**state, key: state[key] + 1}
    with pytest.raises(ValueError, match="tied weights"):
        airs_to_ours(broken, model.state_dict(), model.cfg)


@pytest.mark.parametrize("hard_gradient,reaches", [("released", False), ("straight_through", True)])
def test_prediction_loss_reaches_hard_mask_head_only_when_fixed(hard_gradient, reaches, airs_inputs):
    model = released_model("hard", hard_gradient=hard_gradient).train()
    torch.manual_seed(0)
    out = run(model, airs_inputs)
    grad = torch.autograd.grad(model.loss(out, airs_inputs["y"]).prediction, model.mask_head.weight,
                               allow_unused=True)[0]
    assert (grad is not None and grad.abs().max() > 0) == reaches
    # The fix does not change the forward numbers: the straight-through mask has value 1 where gathered.
    with torch.no_grad():
        assert close(run(model.eval(), airs_inputs).expression, airs_outputs("hard")["eval"]["pred"])


def test_hard_paper_size_parameter_count_matches_authors():
    """26,174,985 unique parameters in the authors' count, which includes the 6 frozen signal constants."""
    from kipoi_seq2exp.model import count_parameters_by_hand, paper_hard, paper_soft

    assert count_parameters_by_hand(paper_soft()) + 6 == 1_114_249
    assert count_parameters_by_hand(paper_hard()) + 6 == 26_174_985

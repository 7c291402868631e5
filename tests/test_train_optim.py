"""Optimiser and schedule of the released recipe: parameter groups, AdamW settings, lr per step."""
import math

import pytest
import torch

from kipoi_seq2exp.model import Seq2Exp, tiny
from kipoi_seq2exp.train.config import TrainConfig
from kipoi_seq2exp.train.optim import WarmupCosine, build_optimizer, build_scheduler, parameter_groups

PAPER = TrainConfig()  # defaults = the released recipe


def test_paper_schedule_values():
    schedule = WarmupCosine.from_config(PAPER)
    assert schedule.lr(0) == pytest.approx(1e-5, rel=1e-12)
    assert schedule.lr(2_500) == pytest.approx(1e-5 + (5e-4 - 1e-5) / 2, rel=1e-12)
    assert schedule.lr(5_000) == pytest.approx(5e-4, rel=1e-12)  # peak at the end of the warm-up
    assert schedule.lr(27_500) == pytest.approx((5e-4 + 1e-4) / 2, rel=1e-12)  # half-way down the cosine
    assert schedule.lr(50_000) == pytest.approx(1e-4, rel=1e-12)
    assert schedule.lr(60_000) == pytest.approx(1e-4, rel=1e-12)  # flat at the floor afterwards
    warmup = [schedule.lr(s) for s in range(0, 5_001, 500)]
    decay = [schedule.lr(s) for s in range(5_000, 50_001, 500)]
    assert all(a < b for a, b in zip(warmup, warmup[1:]))
    assert all(a > b for a, b in zip(decay, decay[1:]))


def test_cosine_matches_closed_form_inside_decay():
    schedule = WarmupCosine(peak=5e-4, warmup_start=1e-5, warmup_steps=10, floor=1e-4, max_steps=110)
    for step in (10, 35, 60, 97, 110):
        progress = (step - 10) / 100
        expected = 1e-4 + 0.5 * 4e-4 * (1 + math.cos(math.pi * progress))
        assert schedule.lr(step) == pytest.approx(expected, rel=1e-12)


def test_scheduler_steps_the_optimiser_lr():
    cfg = TrainConfig(max_steps=20, warmup_steps=4)
    model = torch.nn.Linear(3, 1)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    schedule = WarmupCosine.from_config(cfg)
    for step in range(22):
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(schedule.lr(step), rel=1e-12)
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_weight_decay_groups(variant):
    model = Seq2Exp(tiny(variant))
    decayed, plain = parameter_groups(model, 1e-6)
    assert decayed["weight_decay"] == 1e-6 and plain["weight_decay"] == 0.0
    assert all(n.endswith((".bias", ".A_log", ".D")) for n in plain["names"])
    assert not any(n.endswith((".bias", ".A_log", ".D")) for n in decayed["names"])
    assert any(n.endswith("norm.weight") for n in decayed["names"])
    assert any(n.endswith("norm_f.weight") for n in decayed["names"])
    assert sum(n.endswith(".A_log") for n in plain["names"]) == sum(n.endswith(".D") for n in plain["names"]) > 0
    assert ("pos_embed" in decayed["names"]) == (variant == "hard")
    # every trainable tensor exactly once (the hard variant shares one backbone), no buffer
    params = decayed["params"] + plain["params"]
    assert len({id(p) for p in params}) == len(params)
    assert sum(p.numel() for p in params) == model.n_parameters()
    names = set(decayed["names"] + plain["names"])
    assert not names & {"signal_logit_weights", "signal_constants"}


def test_adamw_settings():
    optimizer = build_optimizer(Seq2Exp(tiny("soft")), PAPER)
    assert isinstance(optimizer, torch.optim.AdamW)
    for group in optimizer.param_groups:
        assert group["betas"] == (0.9, 0.95)
        assert group["lr"] == 5e-4
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-6, 0.0]

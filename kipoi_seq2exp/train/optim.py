"""The released training recipe's optimiser and learning-rate schedule.

AdamW (lr 5e-4, betas (0.9, 0.95), weight decay 1e-6) with two parameter groups: biases and the
SSM parameters ``A_log`` and ``D`` are not decayed (mamba-ssm marks those two ``_no_weight_decay``;
decaying A_log would pull every state's decay rate towards 1); everything else, RMSNorm weights
and the hard variant's positional embedding included, is.

The schedule is timm's ``CosineLRScheduler`` as the authors configured it (``warmup_prefix``
true, ``t_initial = max_steps - warmup_steps``), rewritten here as a plain function: a linear
ramp from ``warmup_start_lr`` to the peak over ``warmup_steps`` optimiser steps, then a half cosine
from the peak down to ``min_lr`` at ``max_steps``, then flat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig

NO_DECAY_LEAVES = ("bias", "A_log", "D")


def is_decayed(name: str) -> bool:
    """Whether the parameter called ``name`` (as in ``named_parameters``) gets weight decay."""
    return name.rsplit(".", 1)[-1] not in NO_DECAY_LEAVES


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups, decayed and not; each keeps its parameter names under ``"names"``.

    Frozen parameters are left out; a parameter shared by two modules (the hard variant's single
    backbone) appears once.
    """
    groups = {True: {"params": [], "names": [], "weight_decay": weight_decay},
              False: {"params": [], "names": [], "weight_decay": 0.0}}
    for name, param in model.named_parameters():
        if param.requires_grad:
            group = groups[is_decayed(name)]
            group["params"].append(param)
            group["names"].append(name)
    return [g for g in groups.values() if g["params"]]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> AdamW:
    return AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas))


@dataclass(frozen=True)
class WarmupCosine:
    """Learning rate as a function of the optimiser step (0 = the first update)."""

    peak: float
    warmup_start: float
    warmup_steps: int
    floor: float
    max_steps: int

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> "WarmupCosine":
        return cls(cfg.lr, cfg.warmup_start_lr, cfg.warmup_steps, cfg.min_lr, cfg.max_steps)

    def lr(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_start + (self.peak - self.warmup_start) * step / self.warmup_steps
        decay_steps = self.max_steps - self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / decay_steps) if decay_steps > 0 else 1.0
        return self.floor + 0.5 * (self.peak - self.floor) * (1.0 + math.cos(math.pi * progress))

    def factor(self, step: int) -> float:
        """lr(step) / peak: what ``LambdaLR`` multiplies the optimiser's base lr by."""
        return self.lr(step) / self.peak


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> LambdaLR:
    """Per-optimiser-step schedule; the current config decides its shape, the checkpoint its step."""
    return LambdaLR(optimizer, WarmupCosine.from_config(cfg).factor)


__all__ = ["NO_DECAY_LEAVES", "is_decayed", "parameter_groups", "build_optimizer", "WarmupCosine",
           "build_scheduler"]

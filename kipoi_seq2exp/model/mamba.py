"""Mamba mixer (mamba-ssm 1.1.2 semantics) split into the part shared by the two directions of a
bidirectional layer (in/out projections) and the part each direction owns (conv, x/dt projections,
A, D).

Because the two directions share ``in_proj`` and ``out_proj`` (Caduceus weight tying), the input
projection is computed once and the two directions' outputs are summed before one output
projection: out(y_f) + out(y_r) == out(y_f + y_r). That halves the layer's largest GEMMs with the
same numbers up to float rounding.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..ops import causal_conv1d, rms_norm, selective_scan
from .config import ModelConfig


def channel_matmul(weight: Tensor, x: Tensor) -> Tensor:
    """(out, in) x (batch, in, length) -> (batch, out, length) as one bmm on the operands' own
    strides (``torch.matmul`` folds the batch first and copies a 200 kb activation to do so)."""
    return torch.bmm(weight.expand(x.shape[0], -1, -1), x)


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


class MambaDirection(nn.Module):
    """The per-direction half of a Mamba mixer: causal conv + SiLU, input-dependent (dt, B, C),
    and the selective scan with skip D and gate silu(z)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d_inner, rank, n = cfg.d_inner, cfg.resolved_dt_rank, cfg.d_state
        self.dt_rank, self.d_state = rank, n
        self.conv1d = nn.Conv1d(d_inner, d_inner, cfg.d_conv, groups=d_inner, padding=cfg.d_conv - 1, bias=True)
        self.x_proj = nn.Linear(d_inner, rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(rank, d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """x, z: (batch, d_inner, length) -> y: (batch, d_inner, length).

        Channels-first throughout: the projections are GEMMs on (channels, length) blocks, so the
        scan, the conv and the projections all read their inputs without transposed copies."""
        x = causal_conv1d(x, self.conv1d.weight, self.conv1d.bias, silu=True)
        dt, B, C = channel_matmul(self.x_proj.weight, x).split([self.dt_rank, self.d_state, self.d_state], dim=1)
        delta = channel_matmul(self.dt_proj.weight, dt)
        A = -torch.exp(self.A_log.float())
        return selective_scan(x, delta, A, B, C, self.D.float(), z, self.dt_proj.bias.float(), delta_softplus=True)


class BiMamba(nn.Module):
    """Caduceus BiMamba: mamba_fwd(x) + flip(mamba_rev(flip(x))) with tied in/out projections."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.in_proj = nn.Linear(cfg.d_model, 2 * cfg.d_inner, bias=False)
        self.fwd = MambaDirection(cfg)
        self.rev = MambaDirection(cfg)
        self.out_proj = nn.Linear(cfg.d_inner, cfg.d_model, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        """h: (batch, length, d_model) -> (batch, length, d_model)."""
        x, z = channel_matmul(self.in_proj.weight, h.transpose(1, 2)).chunk(2, dim=1)
        y = self.fwd(x, z) + self.rev(x.flip(-1), z.flip(-1)).flip(-1)
        return torch.matmul(y.transpose(1, 2), self.out_proj.weight.t())


class Block(nn.Module):
    """Pre-norm residual block: the norm reads the running residual, the mixer writes a new hidden."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mixer = BiMamba(cfg)

    def forward(self, hidden: Tensor, residual: Tensor | None, gate: Tensor | None = None,
                noise: bool = False) -> tuple[Tensor, Tensor]:
        """``gate`` (batch, length): scales each token AFTER the norm, so the mixer reads it as given
        (a gate before a per-token RMSNorm is divided out again); with ``noise`` the share it takes
        away is filled with standard normal noise (training)."""
        residual = hidden if residual is None else hidden + residual
        normed = self.norm(residual)
        if gate is not None:
            gate = gate.unsqueeze(-1).to(normed.dtype)
            normed = normed * gate + (1 - gate) * torch.randn_like(normed) if noise else normed * gate
        return self.mixer(normed), residual


def init_mamba_direction_(direction: MambaDirection, cfg: ModelConfig) -> None:
    """mamba-ssm's initialisation of dt_proj (weight and the inverse-softplus dt bias), A and D.
    Sizes come from the module (an RC-equivariant backbone runs at half width)."""
    d_inner, d_state = direction.A_log.shape
    std = direction.dt_rank ** -0.5
    nn.init.uniform_(direction.dt_proj.weight, -std, std)
    log_min, log_max = math.log(cfg.dt_min), math.log(cfg.dt_max)
    dt = torch.exp(torch.rand(d_inner) * (log_max - log_min) + log_min).clamp(min=cfg.dt_init_floor)
    with torch.no_grad():
        direction.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        direction.A_log.copy_(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        direction.D.fill_(1.0)


def init_out_proj_(layer: BiMamba, cfg: ModelConfig) -> None:
    """Kaiming-uniform, then divided by sqrt(init_residual_layers): the released code uses a default
    of 64 layers there (divisor 8), whatever the real depth."""
    nn.init.kaiming_uniform_(layer.out_proj.weight, a=math.sqrt(5))
    with torch.no_grad():
        layer.out_proj.weight.div_(math.sqrt(cfg.init_residual_layers))


__all__ = ["RMSNorm", "MambaDirection", "BiMamba", "Block", "init_mamba_direction_", "init_out_proj_"]

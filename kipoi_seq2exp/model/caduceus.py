"""Caduceus backbone: a stack of bidirectional Mamba blocks with a final RMSNorm, and its
reverse-complement-equivariant (Caduceus-PS) form.

RC on hidden states means: flip the length axis and the channel axis. On one-hot DNA with channel
order A, C, G, T that is exactly the reverse complement, which is why Caduceus-PS can share
parameters between the two strands by this flip alone.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .config import ModelConfig
from .mamba import Block, RMSNorm


def reverse_complement(x: Tensor) -> Tensor:
    """(batch, length, channels) -> flipped along length and channels (RC for one-hot ACGT)."""
    return x.flip(1).flip(-1)


class Caduceus(nn.Module):
    """Bidirectional Mamba stack. Input and output: (batch, length, d_model)."""

    def __init__(self, cfg: ModelConfig, n_layers: int, d_model: int | None = None) -> None:
        super().__init__()
        if d_model is not None and d_model != cfg.d_model:
            cfg = replace(cfg, d_model=d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(n_layers))
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.activation_checkpointing = cfg.activation_checkpointing

    def forward(self, hidden: Tensor, gate: Tensor | None = None, noise: bool = False) -> Tensor:
        """With activation checkpointing (training), each block keeps only its inputs and is
        recomputed in the backward pass: a 200-kb block otherwise holds ~4 GB of activations.
        ``gate`` (batch, length), optional: each block's normalised input is scaled by it (``noise``:
        and the rest filled with noise, see `Block`)."""
        residual = None
        for layer in self.layers:
            if self.activation_checkpointing and torch.is_grad_enabled():
                hidden, residual = checkpoint(layer, hidden, residual, gate, noise, use_reentrant=False,
                                              preserve_rng_state=True)
            else:
                hidden, residual = layer(hidden, residual, gate, noise)
        return self.norm_f(hidden + residual)


class RCEquivariantCaduceus(nn.Module):
    """Caduceus-PS: the first half of the channels reads the forward strand, the second half is the
    same network applied to the reverse complement, so f(RC(x)) == RC(f(x)) exactly.

    Both halves run through one inner backbone of width d_model / 2 as a doubled batch.
    """

    def __init__(self, cfg: ModelConfig, n_layers: int) -> None:
        super().__init__()
        self.inner = Caduceus(cfg, n_layers, d_model=cfg.d_model // 2)

    def forward(self, hidden: Tensor, gate: Tensor | None = None, noise: bool = False) -> Tensor:
        half = hidden.shape[-1] // 2
        forward_strand, other = hidden[..., :half], reverse_complement(hidden[..., half:])
        both_gates = None if gate is None else torch.cat([gate, gate.flip(1)], dim=0)
        out = self.inner(torch.cat([forward_strand, other], dim=0), both_gates, noise)
        batch = hidden.shape[0]
        return torch.cat([out[:batch], reverse_complement(out[batch:])], dim=-1)


def build_backbone(cfg: ModelConfig, n_layers: int) -> nn.Module:
    return RCEquivariantCaduceus(cfg, n_layers) if cfg.rc_equivariant else Caduceus(cfg, n_layers)

"""Tokens of ``resolution`` bases: the DNA through motif filters, the signals averaged.

Regulatory elements are 200-600 bp and the sites in them 8-20 bp: a convolution as wide as a
site scores every offset, and a max over each token keeps "this token holds the motif" wherever
in the token it sits. With 50-bp tokens a 20-kb window is 400 tokens and a 200-kb one 4,000, so
the backbones see the whole window and train in milliseconds per window on a CPU.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class DnaStem(nn.Module):
    """(batch, length, 4) one-hot DNA -> (batch, length / resolution, width) token embeddings:
    ReLU(conv over ``kernel`` bases), max-pooled over each token."""

    def __init__(self, width: int, kernel: int, resolution: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, width, kernel, padding=kernel // 2)
        self.resolution = resolution

    def forward(self, seq: Tensor) -> Tensor:
        scores = self.conv(seq.transpose(1, 2))[..., :seq.shape[1]]  # (b, width, L)
        # max then ReLU == ReLU then max (ReLU is monotone), on a 50x smaller tensor
        return F.relu(F.max_pool1d(scores, self.resolution)).transpose(1, 2)  # (b, T, width)


def bin_mean(x: Tensor, resolution: int) -> Tensor:
    """(batch, length, channels) -> (batch, length / resolution, channels), mean over each token."""
    if resolution == 1:
        return x
    batch, length, channels = x.shape
    return x.reshape(batch, length // resolution, resolution, channels).mean(dim=2)


def any_per_token(x: Tensor, resolution: int) -> Tensor:
    """(batch, length) bool -> (batch, tokens) bool: True where any base of the token is (a
    blacklisted base drops its whole token)."""
    return x if resolution == 1 else x.reshape(x.shape[0], -1, resolution).any(dim=2)


def to_bases(x: Tensor, resolution: int) -> Tensor:
    """(batch, tokens) -> (batch, tokens x resolution): each token's value on each of its bases."""
    return x if resolution == 1 else x.repeat_interleave(resolution, dim=1)


__all__ = ["DnaStem", "any_per_token", "bin_mean", "to_bases"]

"""Tokens of ``resolution`` bases: the DNA through motif filters, the signals averaged.

Regulatory elements are 200-600 bp and the sites in them 8-20 bp: a convolution as wide as a
site scores every offset, and a max over each token keeps "this token holds the motif" wherever
in the token it sits. With 50-bp tokens a 20-kb window is 400 tokens and a 200-kb one 4,000, so
the backbones see the whole window and train in milliseconds per window on a CPU.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..motifs import load_pwms

#: the JASPAR matrices shipped with the simulated genome (``stem_motifs: embedded``)
EMBEDDED_MOTIFS = Path(__file__).parents[1] / "resources" / "sim" / "jaspar_motifs.json"


class DnaStem(nn.Module):
    """(batch, length, 4) one-hot DNA -> (batch, length / resolution, width) token embeddings:
    ReLU(conv over ``kernel`` bases), max-pooled over each token."""

    def __init__(self, width: int, kernel: int, resolution: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, width, kernel, padding=kernel // 2)
        self.resolution = resolution

    @torch.no_grad()
    def start_as_motif_scanners(self, filters: Tensor) -> None:
        """Set the first filters to (n, 4, width <= kernel) motif scanners (centred, bias 0): with
        :func:`motif_filters` a filter then reads ReLU(4 (relative site score - 0.75)), 1 at the best site."""
        n, _, width = filters.shape
        kernel = self.conv.kernel_size[0]
        if width > kernel or n > self.conv.out_channels:
            raise ValueError(f"stem_motifs: {n} filters of {width} bp do not fit a stem of {self.conv.out_channels} "
                             f"filters of {kernel} bp; Fix: raise stem_kernel to >= {width} (and d_model to >= {n})")
        offset = (kernel - width) // 2
        self.conv.weight[:n] = 0.0
        self.conv.weight[:n, :, offset:offset + width] = filters.to(self.conv.weight.dtype)
        self.conv.bias[:n] = 0.0

    def forward(self, seq: Tensor) -> Tensor:
        scores = self.conv(seq.transpose(1, 2))[..., :seq.shape[1]]  # (b, width, L)
        # max then ReLU == ReLU then max (ReLU is monotone), on a 50x smaller tensor
        return F.relu(F.max_pool1d(scores, self.resolution)).transpose(1, 2)  # (b, T, width)


#: background GC content and pseudocount for turning JASPAR counts into log-odds (human genome)
MOTIF_GC, MOTIF_PSEUDOCOUNT = 0.41, 0.01


def motif_filters(path: str) -> Tensor:
    """(2 x motifs, 4, widest) conv filters from a JASPAR count-matrix JSON ("embedded": the file
    shipped with the simulated genome), forward and reverse strand of each motif, scaled so that a
    site scores 4 (relative score - 0.75): 1 at the best possible site, -3 at the worst. The +1 is
    spread over the motif's columns, not put in the bias, so a run of N (all-zero rows) scores 0."""
    source = EMBEDDED_MOTIFS if path == "embedded" else Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"model.stem_motifs: {source} not found; Fix: give a JASPAR count-matrix JSON "
                                "(the format of kipoi_seq2exp/resources/sim/jaspar_motifs.json) or 'embedded'")
    pwms = load_pwms(source, MOTIF_GC, MOTIF_PSEUDOCOUNT).values()
    widest = max(pwm.width for pwm in pwms)
    filters = torch.zeros(2 * len(pwms), 4, widest)
    for i, pwm in enumerate(pwms):
        for strand, log_odds in enumerate((pwm.log_odds[:, :4], pwm.reverse_log_odds[:, :4])):
            relative = (log_odds - log_odds.max(axis=1, keepdims=True)) / (pwm.max_score - pwm.min_score)
            filters[2 * i + strand, :, :pwm.width] = 4 * torch.from_numpy(relative.T.copy()).float() + 1 / pwm.width
    return filters


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


__all__ = ["DnaStem", "any_per_token", "bin_mean", "motif_filters", "to_bases"]

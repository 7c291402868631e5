"""Influence profile: how strongly the predicted expression depends on each distance from the TSS.

A mask can only learn where the prediction listens: if d expression / d input is 1e-6 of the
promoter's at 5 kb, the mask there gets no gradient and the generator has nothing to learn from.
The profile measures exactly that, per distance band, relative to the central 0-1 kb:

- signals: mean |d expression / d signal| over the band's bases and channels;
- DNA: mean |gradient x input| (on one-hot DNA: the gradient at the base present).

Both are taken in eval mode (mask = the Beta's mean), as the member predicts.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..model import Seq2Exp

#: (start, end) distance bands from the TSS in bp; the first is the reference
DISTANCE_BANDS = ((0, 1_000), (1_000, 2_000), (2_000, 3_000), (3_000, 5_000), (5_000, 7_000), (7_000, 10_000),
                  (10_000, 20_000), (20_000, 50_000), (50_000, 100_000))


@dataclass
class InfluenceProfile:
    """Per band: mean influence of the DNA and of the signals, relative to the 0-1 kb band."""

    bands: list[tuple[int, int]]
    dna: np.ndarray
    signal: np.ndarray

    def at(self, start: int, end: int) -> tuple[float, float]:
        """(DNA, signal) influence of the bases at distance [start, end), relative to 0-1 kb."""
        return float(self._band_mean(self.dna, start, end)), float(self._band_mean(self.signal, start, end))

    def _band_mean(self, values: np.ndarray, start: int, end: int) -> float:
        inside = [i for i, (lo, hi) in enumerate(self.bands) if lo >= start and hi <= end]
        if not inside:
            raise ValueError(f"no band inside [{start}, {end}) bp; bands are {self.bands}")
        widths = np.array([self.bands[i][1] - self.bands[i][0] for i in inside], dtype=float)
        return float(np.average(values[inside], weights=widths))

    def table(self) -> str:
        """Markdown table: distance band, DNA, signal."""
        lines = ["| distance from TSS | DNA (grad x input) | signal (grad) |", "|---|---|---|"]
        for (lo, hi), dna, signal in zip(self.bands, self.dna, self.signal):
            lines.append(f"| {lo / 1000:g}-{hi / 1000:g} kb | {dna:.2e} | {signal:.2e} |")
        return "\n".join(lines)


@contextmanager
def eval_mode(model: Seq2Exp) -> Iterator[None]:
    """The model in eval mode (mask = the Beta's mean, as a member predicts), its flag restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def expression_gradients(model: Seq2Exp, seq: Tensor, signals: Tensor, gene_features: Tensor,
                         signal_depth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """d (summed predicted expression) / d seq and / d signals, shapes as the inputs, in eval mode
    (mask = the Beta's mean, as a member predicts); the model's training flag is restored."""
    seq = seq.detach().clone().requires_grad_(True)
    signals = signals.detach().clone().requires_grad_(True)
    with eval_mode(model), torch.enable_grad():
        out = model(seq, signals, gene_features, signal_depth=signal_depth)
        out.expression.sum().backward()
    return seq.grad.detach(), signals.grad.detach()


def input_gradients(model: Seq2Exp, seq: Tensor, signals: Tensor, gene_features: Tensor,
                    signal_depth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """(batch, length) |gradient x input| of the DNA and mean |gradient| of the signals for the
    summed predicted expression, in eval mode."""
    seq_grad, signal_grad = expression_gradients(model, seq, signals, gene_features, signal_depth)
    return (seq_grad * seq).abs().sum(dim=-1), signal_grad.abs().mean(dim=-1)


def influence_profile(model: Seq2Exp, batches: Sequence[dict], bands: Sequence[tuple[int, int]] = DISTANCE_BANDS
                      ) -> InfluenceProfile:
    """Influence per distance band over the windows of ``batches`` (dicts with seq, signals,
    gene_features and optionally signal_depth), relative to the 0-1 kb band.

    Bands beyond half the window are left out.
    """
    half = model.cfg.window // 2
    bands = [band for band in bands if band[1] <= half]
    distance = np.abs(np.arange(model.cfg.window) - half)
    sums = np.zeros((2, len(bands)))
    for batch in batches:
        dna, signal = input_gradients(model, batch["seq"], batch["signals"], batch["gene_features"],
                                      batch.get("signal_depth"))
        for row, values in enumerate((dna.numpy(), signal.numpy())):
            for column, (lo, hi) in enumerate(bands):
                sums[row, column] += values[:, (distance >= lo) & (distance < hi)].mean()
    reference = np.where(sums[:, :1] > 0, sums[:, :1], np.nan)
    relative = sums / reference
    return InfluenceProfile(bands, relative[0], relative[1])


def kipoi_batches(dataset, n_genes: int, batch_size: int = 4) -> list[dict]:
    """Tensor batches of the first ``n_genes`` items of a Kipoi dataloader (``Seq2ExpDataset``)."""
    items = [dataset[i]["inputs"] for i in range(min(n_genes, len(dataset)))]
    return [{name: torch.as_tensor(np.stack([item[name] for item in items[i:i + batch_size]]))
             for name in items[0]} for i in range(0, len(items), batch_size)]


@torch.no_grad()
def generator_spread(model: Seq2Exp, batches: Sequence[dict]) -> float:
    """Mean over windows of the standard deviation, across positions, of the generator's own Beta
    mean alpha1 / (alpha1 + beta1): ~0 when the generator gives every position the same value (it
    learned nothing position-specific and the mask is the signal Beta alone)."""
    spreads = []
    with eval_mode(model):
        for batch in batches:
            out = model(batch["seq"], batch["signals"], batch["gene_features"], signal_depth=batch.get("signal_depth"))
            spreads.append((out.post_alpha / (out.post_alpha + out.post_beta)).std(dim=1))
    return float(torch.cat(spreads).mean())

"""Intervals from the mask's own uncertainty: seeded Monte-Carlo samples of the mask Beta.

A member predicts with the mask at its Beta's mean. The Beta's spread is the model's uncertainty
about which bases are regulatory; predicting with masks drawn from it, as training does, gives a
distribution of expression whose 5th and 95th percentiles are the 90 % interval.

- only the mask is sampled: every other module stays in eval mode (`Seq2Exp.sample_mask` reads the
  model's own training flag, which alone is turned on, and takes the draw as ``mask_sample``);
- draws per token z = I^-1(alpha, beta; u), u ~ U(0, 1) from a generator seeded by (seed, gene id):
  the same seed gives a gene the same interval whatever else is in the run and whatever the batch
  size; a gene's perturbed windows reuse its u (common random numbers), so a delta's interval is
  that of paired draws;
- the draws reach the model through a forward pre-hook, so every sample is predicted by the
  member's own ``predict`` (device, depth normalisation, blacklist); with ``rc_average`` the reverse
  strand reads the same mask, flipped.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import betaincinv
from torch import Tensor, nn

from ..predict import stack_inputs

#: Two-sided coverage of the reported interval.
LEVEL = 0.9


@dataclass(frozen=True)
class Interval:
    """The ``LEVEL`` interval of sampled predictions (log10 expression), and their mean."""

    low: float
    high: float
    mean: float

    @classmethod
    def of(cls, samples: np.ndarray) -> "Interval":
        """Equal-tailed interval of ``samples`` (n,)."""
        low, high = np.quantile(samples, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        return cls(float(low), float(high), float(np.mean(samples)))


def uniforms(seed: int, gene_id: str, samples: int, n_tokens: int) -> np.ndarray:
    """(samples, n_tokens) U(0, 1) draws of one gene: a function of (seed, gene id) only."""
    return np.random.default_rng([seed, zlib.crc32(gene_id.encode())]).random((samples, n_tokens))


@contextmanager
def mask_samples(net: nn.Module, draws: Tensor) -> Iterator[None]:
    """For one ``predict`` of ``net`` (a `Seq2Exp`) inside the block: its forward masks with ``draws``
    (batch, tokens) instead of the Beta's mean, its rc_average forward with ``draws`` flipped.
    Submodules stay in eval mode."""
    if net.cfg.mask_noise:
        raise ValueError("this model adds gate noise whenever it samples its mask (mask_noise: true), so a mask "
                         "sample would not be the only random part. Fix: predict without --samples.")
    strands = iter([draws, draws.flip(1)])

    def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        module.training = True  # read by sample_mask only; predict() restores every module's flag after
        return args, {**kwargs, "mask_sample": next(strands)}

    handle = net.register_forward_pre_hook(before, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def token_beta(model, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens,) alpha and beta of one window's mask Beta, from the member's prediction."""
    out = model.predict(stack_inputs([inputs]))
    resolution = model.model.cfg.resolution
    return (out.alpha[0, ::resolution].double().cpu().numpy(), out.beta[0, ::resolution].double().cpu().numpy())


def sampled_expressions(model, inputs: dict[str, np.ndarray], u: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """(samples,) predicted log10 expression of one window with its mask drawn at quantiles ``u``
    (samples, tokens) of its own mask Beta, ``batch_size`` samples per forward."""
    alpha, beta = token_beta(model, inputs)
    draws = torch.as_tensor(betaincinv(alpha, beta, u), dtype=torch.float32, device=model.device)
    out = []
    for first in range(0, len(u), batch_size):
        chunk = draws[first:first + batch_size]
        with mask_samples(model.model, chunk):
            out.append(model.predict(stack_inputs([inputs] * len(chunk))).expression.double().cpu().numpy())
    return np.concatenate(out)


def expression_interval(model, inputs: dict[str, np.ndarray], gene_id: str, samples: int, seed: int = 0,
                        batch_size: int = 8) -> Interval:
    """The ``LEVEL`` interval of a gene's predicted expression over ``samples`` mask draws."""
    u = uniforms(seed, gene_id, samples, model.model.cfg.n_tokens)
    return Interval.of(sampled_expressions(model, inputs, u, batch_size))


__all__ = ["Interval", "LEVEL", "expression_interval", "mask_samples", "sampled_expressions", "token_beta",
           "uniforms"]

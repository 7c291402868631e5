"""JASPAR position weight matrices: log-odds scoring, scanning and sampling of binding sites.

Shared by the simulator (it plants sites) and the model (`stem_motifs` starts the DNA stem as
motif scanners).

DNA is handled as uint8 codes A=0, C=1, G=2, T=3, N=4 throughout the simulator.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

BASES = "ACGT"
N_CODE = 4
_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
_ENCODE = np.full(256, N_CODE, dtype=np.uint8)
for _code, _base in enumerate(BASES):
    _ENCODE[ord(_base)] = _code
    _ENCODE[ord(_base.lower())] = _code


def encode(sequence: str) -> np.ndarray:
    """DNA text (any case) -> uint8 codes (length,); anything but ACGT becomes N (4)."""
    return _ENCODE[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    return _COMPLEMENT[codes[::-1]]


@dataclass(frozen=True)
class Pwm:
    """One JASPAR motif as log2-odds against a GC-content background.

    ``log_odds`` has shape (width, 5): columns A, C, G, T and N; N scores the column minimum so
    that a site over an N can never look strong.
    """

    jaspar_id: str
    name: str
    probabilities: np.ndarray  # (width, 4)
    log_odds: np.ndarray  # (width, 5)

    @property
    def width(self) -> int:
        return self.probabilities.shape[0]

    @cached_property
    def min_score(self) -> float:
        return float(self.log_odds[:, :4].min(axis=1).sum())

    @cached_property
    def max_score(self) -> float:
        return float(self.log_odds[:, :4].max(axis=1).sum())

    @cached_property
    def reverse_log_odds(self) -> np.ndarray:
        """(width, 5) log-odds of the reverse strand read on the forward strand."""
        return self.log_odds[::-1][:, _COMPLEMENT]

    def relative(self, score: np.ndarray | float) -> np.ndarray | float:
        """Score rescaled to [0, 1] between the worst and the best possible site."""
        return (score - self.min_score) / (self.max_score - self.min_score)

    def score(self, site: np.ndarray) -> float:
        """Log-odds of one site given on the motif's own strand, codes (width,)."""
        return float(self.log_odds[np.arange(self.width), site].sum())

    def scan(self, codes: np.ndarray) -> np.ndarray:
        """Best relative score of either strand at every start, shape (length - width + 1,)."""
        n_starts = len(codes) - self.width + 1
        if n_starts <= 0:
            return np.zeros(0)
        forward = np.zeros(n_starts)
        reverse = np.zeros(n_starts)
        for offset in range(self.width):
            shifted = codes[offset:offset + n_starts]
            forward += self.log_odds[offset, shifted]
            reverse += self.reverse_log_odds[offset, shifted]
        return self.relative(np.maximum(forward, reverse))

    def sample_site(self, rng: np.random.Generator, min_relative_score: float) -> np.ndarray:
        """Draw a site from the PWM's base probabilities, redrawing until it scores high enough.

        Sampling (not pasting the consensus) keeps the natural variability of real sites; the
        threshold keeps every planted site recognisable by a scan.
        """
        cumulative = np.cumsum(self.probabilities, axis=1)
        for _ in range(10_000):
            draws = rng.random(self.width)
            site = (draws[:, None] > cumulative).sum(axis=1).astype(np.uint8)
            site = np.minimum(site, 3)
            if self.relative(self.score(site)) >= min_relative_score:
                return site
        raise RuntimeError(
            f"motif {self.jaspar_id} ({self.name}): no site reached relative score "
            f"{min_relative_score} in 10,000 draws; lower motifs.planted_min_relative_score")


def load_pwms(path: str | Path, gc_content: float, pseudocount: float) -> dict[str, Pwm]:
    """Read the shipped JASPAR count matrices (JSON) into PWMs keyed by JASPAR id."""
    path = Path(path)
    with open(path) as handle:
        document = json.load(handle)
    background = np.array([1 - gc_content, gc_content, gc_content, 1 - gc_content]) / 2
    pwms = {}
    for record in document["motifs"]:
        counts = np.array([record["counts"][base] for base in BASES], dtype=float).T
        if counts.ndim != 2 or counts.shape[1] != 4:
            raise ValueError(f"{path}: motif {record.get('jaspar_id')} counts must have 4 equal-length rows A,C,G,T")
        totals = counts.sum(axis=1, keepdims=True)
        probabilities = (counts + pseudocount * totals / 4) / (totals * (1 + pseudocount))
        log_odds = np.log2(probabilities / background)
        log_odds = np.concatenate([log_odds, log_odds.min(axis=1, keepdims=True)], axis=1)
        pwms[record["jaspar_id"]] = Pwm(record["jaspar_id"], record["name"], probabilities, log_odds)
    return pwms

"""DNase and H3K27ac signal: binned background plus a peak at every open element."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig

from ..atomic import atomic_path
from .model import Element
from .params import SimParams


def draw_tracks(params: SimParams, chrom_sizes: dict[str, int], elements: list[Element],
                rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """{'dnase' | 'h3k27ac': {chrom: (size // bin_length,) float32}}, one value per bin.

    DNase: a Gaussian over each open element (sd = length / 4), height ~ openness.
    H3K27ac: two flanking Gaussians (nucleosomes either side of the open core), height ~
    openness x acetylation; enhancers and open decoys share both distributions on purpose.
    """
    tracks = params.tracks
    out: dict[str, dict[str, np.ndarray]] = {"dnase": {}, "h3k27ac": {}}
    for chrom, size in chrom_sizes.items():
        n_bins = size // tracks.bin_length
        centres = np.arange(n_bins) * tracks.bin_length + tracks.bin_length / 2
        dnase = _background(n_bins, tracks.dnase_background_mean, tracks.background_gamma_shape, rng)
        h3k27ac = _background(n_bins, tracks.h3k27ac_background_mean, tracks.background_gamma_shape, rng)
        for element in elements:
            if element.chrom != chrom or element.openness == 0:
                continue
            sd = (element.end - element.start) / 4
            _add_gaussian(dnase, centres, element.centre, sd, tracks.dnase_peak_height * element.openness)
            height = tracks.h3k27ac_peak_height * element.openness * element.acetylation
            for side in (-1, 1):
                _add_gaussian(h3k27ac, centres, element.centre + side * tracks.h3k27ac_flank_offset,
                              tracks.h3k27ac_flank_sd, height)
        out["dnase"][chrom] = _quantise(dnase, tracks.decimals)
        out["h3k27ac"][chrom] = _quantise(h3k27ac, tracks.decimals)
    return out


def _background(n_bins: int, mean: float, shape: float, rng: np.random.Generator) -> np.ndarray:
    return rng.gamma(shape, mean / shape, size=n_bins)


def _add_gaussian(track: np.ndarray, centres: np.ndarray, centre: float, sd: float, height: float) -> None:
    near = np.abs(centres - centre) <= 4 * sd
    track[near] += height * np.exp(-0.5 * ((centres[near] - centre) / sd) ** 2)


def _quantise(values: np.ndarray, decimals: int) -> np.ndarray:
    """Round so the bigWig compresses well and reads back the same floats on every platform."""
    return np.round(values, decimals).astype(np.float32)


def write_bigwig(path: Path, chrom_sizes: dict[str, int], values: dict[str, np.ndarray], bin_length: int,
                 skip_ends: int) -> None:
    """Fixed-step bigWig, one entry per bin; the N runs at chromosome ends get no entries.

    Regions without entries read back as NaN, as in real ENCODE bigWigs over assembly gaps.
    """
    with atomic_path(path) as temporary:
        bigwig = pyBigWig.open(str(temporary), "w")
        try:
            bigwig.addHeader(list(chrom_sizes.items()), maxZooms=10)
            for chrom, size in chrom_sizes.items():
                first, last = skip_ends // bin_length, (size - skip_ends) // bin_length
                bigwig.addEntries(chrom, first * bin_length, values=values[chrom][first:last].astype(np.float64),
                                  span=bin_length, step=bin_length)
        finally:
            bigwig.close()

"""Hi-C as a per-base track: contact of each base's bin with the TSS bin (ABC style), log10(1 + x).

Steps for one gene (window [s, e), TSS bin t, bin size b, 5 kb by default):
1. contact[i] = map[t, i] for every bin i overlapping the window (read with hictkpy, which
   reads .hic, .cool and .mcool; hic-straw kills the process on a bad path);
   NaN (unbalanced bins) -> 0;
2. ABC pseudocount: + powerlaw(max(|i - t| * b, b)) (ABC adds min(pl(d), pl(5 kb)), the same thing);
3. log10(1 + x); every base takes its bin's value; bases off the chromosome are 0 (padded once:
   the released code pads Hi-C twice near chromosome ends, shifting the track).

Without a Hi-C file, ABC's fallback replaces step 1-2: x = powerlaw(max(d, b)) with
powerlaw(d) = exp(scale) * (d + 1) ** -gamma, gamma 0.87, scale 5.3181 (ABC defaults,
scale = -4.80 + 11.63 * gamma), i.e. ABC's normalised-contact units: 0.12 at 5 kb, 0.0091 at
100 kb, so log10(1 + x) stays below 0.05. Real VC-normalised counts are orders of magnitude
larger: a model trained with one source must not be run with the other.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .config import HicOptions
from .coords import ProcessLocalFile, clip
from .errors import DataInputError


def powerlaw_contact(distance: np.ndarray, options: HicOptions) -> np.ndarray:
    """ABC's power-law contact at genomic distance ``distance`` (bp), floored at one bin."""
    d = np.maximum(np.abs(distance), options.bin_size).astype(np.float64)
    return np.exp(options.powerlaw_scale - options.powerlaw_gamma * np.log(d + 1.0))


def bins_to_bases(
    per_bin: np.ndarray, first_bin: int, bin_size: int, start: int, end: int, chrom_length: int
) -> np.ndarray:
    """Expand bin values to the bases of [start, end); off-chromosome bases are 0.

    Parameters
    ----------
    per_bin
        (n_bins,) values of bins ``first_bin, first_bin + 1, ...``, covering the clipped window.

    Returns
    -------
    np.ndarray
        (end - start,) float32.
    """
    out = np.zeros(end - start, dtype=np.float32)
    part = clip(start, end, chrom_length)
    if part.length:
        bins = np.arange(part.start, part.end) // bin_size - first_bin
        out[part.offset : part.offset + part.length] = per_bin[bins]
    return out


def _bin_range(start: int, end: int, tss: int, chrom_length: int, bin_size: int) -> tuple[int, int]:
    """First and last bin (inclusive) covering the clipped window and the TSS bin."""
    part = clip(start, end, chrom_length)
    tss_bin = tss // bin_size
    return min(part.start // bin_size, tss_bin), max((max(part.end, part.start + 1) - 1) // bin_size, tss_bin)


class PowerLawContacts:
    """Hi-C fallback without a map: ABC's power law of the distance between bins.

    ``chrom_length`` gives chromosome lengths (the FASTA's), so bases off the chromosome are 0.
    """

    def __init__(self, options: HicOptions, chrom_length: Callable[[str], int]):
        self.options = options
        self.chrom_length = chrom_length

    def window(self, chrom: str, tss: int, start: int, end: int) -> np.ndarray:
        """log10(1 + powerlaw) per base over [start, end); (end - start,) float32."""
        b = self.options.bin_size
        chrom_length = self.chrom_length(chrom)
        first, last = _bin_range(start, end, tss, chrom_length, b)
        distance = (np.arange(first, last + 1) - tss // b) * b
        return bins_to_bases(np.log10(1.0 + powerlaw_contact(distance, self.options)), first, b, start, end, chrom_length)


def open_hic(path: str, options: HicOptions):
    """Open a .hic / .cool / .mcool at ``options.bin_size`` and check the normalisation exists."""
    import hictkpy

    if not os.path.isfile(path):
        raise DataInputError(f"{path}: Hi-C file not found. Fix: check the Hi-C track's path.")
    single_cool = hictkpy.is_cooler(path)
    if not (single_cool or hictkpy.is_hic(path) or hictkpy.is_mcool_file(path)):
        raise DataInputError(f"{path}: not a .hic, .cool or .mcool file. Fix: give a Juicer .hic or a cooler file.")
    if not single_cool:
        resolutions = list(hictkpy.MultiResFile(path).resolutions())
        if options.bin_size not in resolutions:
            raise DataInputError(
                f"{path}: no {options.bin_size}-bp resolution (has {resolutions}). "
                f"Fix: set hic.bin_size to one of them."
            )
    handle = hictkpy.File(path, options.bin_size) if not single_cool else hictkpy.File(path)
    if single_cool and handle.resolution() != options.bin_size:
        raise DataInputError(
            f"{path}: cooler resolution is {handle.resolution()} bp, config asks {options.bin_size}. "
            f"Fix: set hic.bin_size = {handle.resolution()} or give a {options.bin_size}-bp map."
        )
    if options.normalization.upper() != "NONE":
        available = list(handle.avail_normalizations())
        if options.normalization not in available:
            raise DataInputError(
                f"{path}: normalisation {options.normalization!r} not in this file (has {available or 'none'}). "
                f"Fix: set hic.normalization to one of {available + ['NONE']}."
            )
    return handle


class HicContacts(ProcessLocalFile):
    """Per-base TSS contact track from a Hi-C map, opened lazily once per process."""

    kind = "Hi-C"

    def __init__(self, path: str, options: HicOptions):
        self.options = options
        super().__init__(path)

    def _open(self):
        return open_hic(self.path, self.options)

    def _chrom_sizes(self, handle) -> dict[str, int]:
        return dict(handle.chromosomes())

    def tss_row(self, chrom: str, tss: int, first_bin: int, last_bin: int) -> np.ndarray:
        """Contacts of bins first_bin..last_bin with the TSS bin; (n_bins,) float64, NaN -> 0."""
        name = self.chrom_name(chrom)
        b = self.options.bin_size
        region = f"{name}:{first_bin * b}-{min((last_bin + 1) * b, self.chrom_sizes[name])}"
        selector = self._handle().fetch(region, region, normalization=self.options.normalization, count_type="float")
        row = selector.to_numpy()[tss // b - first_bin]
        return np.nan_to_num(row.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)

    def window(self, chrom: str, tss: int, start: int, end: int) -> np.ndarray:
        """log10(1 + contact + ABC pseudocount) per base over [start, end); (end - start,) float32.

        The map's own chromosome length bounds the track (0 beyond it).
        """
        b = self.options.bin_size
        length = self.chrom_sizes[self.chrom_name(chrom)]
        first, last = _bin_range(start, end, tss, length, b)
        contact = self.tss_row(chrom, tss, first, last)
        if self.options.pseudocount:
            contact = contact + powerlaw_contact((np.arange(first, last + 1) - tss // b) * b, self.options)
        return bins_to_bases(np.log10(1.0 + contact), first, b, start, end, length)

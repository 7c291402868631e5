"""Reference masks scored exactly like the model's: MACS3 peaks, raw DNase, the truth itself.

- MACS3: ``macs3 bdgpeakcall`` on the DNase bigWig exported as bedGraph (the paper's
  "MACS3 peaks as mask"); a hard mask.
- DNase ranking: the raw per-base DNase signal as a score (AUPRC only): what accessibility alone
  ranks.
- Oracle: the gene's own causal elements as a hard mask: the upper bound (1 by construction).
Masks get the centre forced to 1 like the model's, so mask ratios compare like for like.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyBigWig

from .metrics import CENTRE_LENGTH
from .windows import GeneWindow, TruthElement, spans_in_window

Intervals = dict[str, np.ndarray]  # chrom -> (n, 2) int64 [start, end), sorted


def read_signal(bigwig: pyBigWig.pyBigWig, window: GeneWindow, chrom_size: int) -> np.ndarray:
    """(length,) float32 signal of the window; NaN and positions past the chromosome ends are 0."""
    values = np.zeros(window.length, dtype=np.float32)
    start, end = max(window.start, 0), min(window.end, chrom_size)
    if end > start:
        chunk = np.asarray(bigwig.values(window.chrom, start, end, numpy=True), dtype=np.float32)
        values[start - window.start:end - window.start] = np.nan_to_num(chunk, nan=0.0)
    return values


def merged_regions(windows: Sequence[GeneWindow], chrom_sizes: Mapping[str, int]) -> Intervals:
    """Union of the windows per chromosome, clipped to the chromosome."""
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    for window in windows:
        start, end = max(window.start, 0), min(window.end, chrom_sizes[window.chrom])
        if end > start:
            by_chrom.setdefault(window.chrom, []).append((start, end))
    return {chrom: merge_intervals(np.array(spans, dtype=np.int64)) for chrom, spans in by_chrom.items()}


def merge_intervals(intervals: np.ndarray) -> np.ndarray:
    """(n, 2) [start, end) -> sorted union, overlapping or touching intervals merged."""
    if len(intervals) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    merged = [list(intervals[0])]
    for start, end in intervals[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.int64)


def write_bedgraph(bigwig_path: str | Path, regions: Intervals, path: Path) -> float:
    """Export the bigWig's intervals inside ``regions`` as bedGraph; returns the mean signal.

    The mean is length-weighted over the exported regions, missing data counted as 0.
    """
    total, length = 0.0, 0
    with pyBigWig.open(str(bigwig_path)) as bigwig, open(path, "w") as handle:
        for chrom, spans in regions.items():
            if chrom not in bigwig.chroms():
                raise KeyError(f"{bigwig_path}: has no chromosome {chrom!r}; are the gene table and the "
                               f"bigWig on the same assembly and naming (chr1 vs 1)?")
            for start, end in spans:
                length += int(end - start)
                for s, e, value in bigwig.intervals(chrom, int(start), int(end)) or ():
                    s, e = max(s, int(start)), min(e, int(end))
                    handle.write(f"{chrom}\t{s}\t{e}\t{value:.6g}\n")
                    total += value * (e - s)
    return total / length if length else 0.0


def call_macs3_peaks(bigwig_path: str | Path, windows: Sequence[GeneWindow], chrom_sizes: Mapping[str, int], *,
                     cutoff: float | None = None, cutoff_fold: float = 3.0, min_length: int = 200,
                     max_gap: int = 30) -> tuple[Intervals, float]:
    """Peaks of ``macs3 bdgpeakcall`` over the union of the windows.

    Parameters
    ----------
    cutoff : signal threshold passed to ``-c``; None uses ``cutoff_fold`` x the mean signal of
        the exported regions (a fold-enrichment cutoff, since raw DNase is not a p-value track)
    min_length, max_gap : ``-l`` and ``-g`` (MACS3's defaults)

    Returns
    -------
    (peaks, cutoff used)
    """
    command = macs3_command()
    regions = merged_regions(windows, chrom_sizes)
    with tempfile.TemporaryDirectory(prefix="seq2exp-macs3-") as workdir:
        bedgraph = Path(workdir) / "dnase.bdg"
        mean = write_bedgraph(bigwig_path, regions, bedgraph)
        used = cutoff if cutoff is not None else cutoff_fold * mean
        peaks_path = Path(workdir) / "peaks.narrowPeak"
        result = subprocess.run(
            [*command, "bdgpeakcall", "-i", str(bedgraph), "-c", f"{used:.6g}", "-l", str(min_length),
             "-g", str(max_gap), "--no-trackline", "--verbose", "0", "-o", str(peaks_path)],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"macs3 bdgpeakcall failed on {bigwig_path} (exit {result.returncode}):\n"
                               f"{result.stderr}")
        return read_peaks(peaks_path), used


def macs3_command() -> list[str]:
    """How to run MACS3 here: the ``macs3`` script beside this Python, or on PATH."""
    beside = Path(sys.executable).parent / "macs3"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("macs3")
    if found:
        return [found]
    raise RuntimeError("MACS3 is not installed: pip install 'kipoi-seq2exp[eval]' (or macs3==3.0.4); it is needed "
                       "for the MACS3 peak baseline only")


def read_peaks(path: str | Path) -> Intervals:
    """narrowPeak / BED -> {chrom: (n, 2) sorted [start, end)}."""
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    with open(path) as handle:
        for line in handle:
            if not line.strip() or line.startswith(("track", "browser", "#")):
                continue
            chrom, start, end = line.split("\t")[:3]
            by_chrom.setdefault(chrom, []).append((int(start), int(end)))
    return {chrom: merge_intervals(np.array(spans, dtype=np.int64)) for chrom, spans in by_chrom.items()}


def interval_mask(window: GeneWindow, intervals: Intervals) -> np.ndarray:
    """(length,) float32, 1 on bases covered by an interval."""
    mask = np.zeros(window.length, dtype=np.float32)
    spans = intervals.get(window.chrom, np.zeros((0, 2), dtype=np.int64))
    for start, end in spans_in_window(window, ((window.chrom, int(s), int(e)) for s, e in spans)):
        mask[start:end] = 1.0
    return mask


def force_centre(mask: np.ndarray, centre_length: int = CENTRE_LENGTH) -> np.ndarray:
    """The model's rule: the central ``centre_length`` bases are always kept."""
    out = np.array(mask, dtype=np.float32, copy=True)
    centre = len(out) // 2
    out[max(centre - centre_length // 2, 0):centre + centre_length // 2] = 1.0
    return out


class LazyMasks(Mapping):
    """gene_id -> (None, mask), each mask computed when asked for.

    Baseline masks are cheap to recompute and large to keep (300 genes x 200 kb = 240 MB per
    method), so the evaluation pulls one window at a time.
    """

    def __init__(self, windows: Sequence[GeneWindow], make_mask: Callable[[GeneWindow], np.ndarray]):
        self._windows = {window.gene_id: window for window in windows}
        self._make_mask = make_mask

    def __getitem__(self, gene_id: str) -> tuple[None, np.ndarray]:
        return None, self._make_mask(self._windows[gene_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._windows)

    def __len__(self) -> int:
        return len(self._windows)


def macs3_predictions(windows: Sequence[GeneWindow], peaks: Intervals, centre_length: int = CENTRE_LENGTH) -> LazyMasks:
    """Peaks as a hard mask, centre forced to 1."""
    return LazyMasks(windows, lambda window: force_centre(interval_mask(window, peaks), centre_length))


def signal_predictions(windows: Sequence[GeneWindow], bigwig_path: str | Path,
                       chrom_sizes: Mapping[str, int]) -> LazyMasks:
    """The raw signal as a per-base score (a ranking, not a mask)."""
    def read(window: GeneWindow) -> np.ndarray:
        with pyBigWig.open(str(bigwig_path)) as bigwig:
            return read_signal(bigwig, window, chrom_sizes[window.chrom])
    return LazyMasks(windows, read)


def oracle_predictions(windows: Sequence[GeneWindow], truth: Mapping[str, Sequence[TruthElement]],
                       centre_length: int = CENTRE_LENGTH) -> LazyMasks:
    """The gene's own causal elements as a hard mask, centre forced to 1: the upper bound."""
    def mask(window: GeneWindow) -> np.ndarray:
        spans = np.array([(e.start, e.end) for e in truth.get(window.gene_id, ()) if e.chrom == window.chrom],
                         dtype=np.int64).reshape(-1, 2)
        return force_centre(interval_mask(window, {window.chrom: spans}), centre_length)
    return LazyMasks(windows, mask)

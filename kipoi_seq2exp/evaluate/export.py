"""What a model discovered, as genome-browser files: masks -> bigWig, selected elements -> BED."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyBigWig

from ..atomic import atomic_path, write_text_atomic
from .baselines import merge_intervals
from .metrics import CENTRE_LENGTH, selected_runs
from .windows import GeneWindow

REDUCERS = {"max": np.fmax, "min": np.fmin}


def masks_to_bigwig(windows: Sequence[GeneWindow], masks: Mapping[str, np.ndarray], chrom_sizes: Mapping[str, int],
                    path: str | Path, reduce: str = "max") -> None:
    """One bigWig of all genes' masks; where windows overlap, bases take the max (or min).

    Neighbouring genes' windows overlap and their masks disagree (an element can matter to one
    gene and not the other); the max shows every base some gene kept. Positions no window
    covers, or past a chromosome end, get no entries.

    Parameters
    ----------
    masks : gene_id -> (window length,) float mask
    chrom_sizes : the assembly's sizes; the header lists them sorted by name (as UCSC tools do)
    """
    if reduce not in REDUCERS:
        raise ValueError(f"reduce must be one of {sorted(REDUCERS)}, got {reduce!r}")
    combine = REDUCERS[reduce]
    by_chrom: dict[str, list[GeneWindow]] = {}
    for window in windows:
        if window.gene_id in masks:
            if window.chrom not in chrom_sizes:
                raise KeyError(f"gene {window.gene_id}: chromosome {window.chrom!r} is not in the chromosome sizes")
            by_chrom.setdefault(window.chrom, []).append(window)
    header = sorted((chrom, int(size)) for chrom, size in chrom_sizes.items())
    with atomic_path(path) as temporary:
        bigwig = pyBigWig.open(str(temporary), "w")
        try:
            bigwig.addHeader(header)
            for chrom, _ in header:
                for start, values in _combined_tracks(by_chrom.get(chrom, []), masks, chrom_sizes[chrom], combine):
                    _add_runs(bigwig, chrom, start, values)
        finally:
            bigwig.close()


def _combined_tracks(windows: list[GeneWindow], masks: Mapping[str, np.ndarray], chrom_size: int, combine):
    """Yield (start, values) per cluster of overlapping windows, clipped to the chromosome."""
    spans = np.array([(max(w.start, 0), min(w.end, chrom_size)) for w in windows], dtype=np.int64).reshape(-1, 2)
    for start, end in merge_intervals(spans[spans[:, 1] > spans[:, 0]]):
        values = np.full(end - start, np.nan, dtype=np.float64)
        for window in windows:
            low, high = max(window.start, start), min(window.end, end)
            if high > low:
                mask = np.asarray(masks[window.gene_id], dtype=np.float64)
                if len(mask) != window.length:
                    raise ValueError(f"gene {window.gene_id}: mask length {len(mask)} != window length {window.length}")
                piece = mask[low - window.start:high - window.start]
                values[low - start:high - start] = combine(values[low - start:high - start], piece)
        yield int(start), values


def _add_runs(bigwig: pyBigWig.pyBigWig, chrom: str, start: int, values: np.ndarray) -> None:
    """Write runs of equal value as bedGraph-like entries (compact for 0/1 masks)."""
    change = np.flatnonzero(np.diff(values) != 0) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(values)]
    run_values = values[starts]
    keep = ~np.isnan(run_values)
    if keep.any():
        bigwig.addEntries([chrom] * int(keep.sum()), (starts[keep] + start).tolist(),
                          ends=(ends[keep] + start).tolist(), values=run_values[keep].tolist())


def masks_to_bed(windows: Sequence[GeneWindow], masks: Mapping[str, np.ndarray], chrom_sizes: Mapping[str, int],
                 path: str | Path, *,
                 threshold: float = 0.5, drop_centre: bool = False, centre_length: int = CENTRE_LENGTH,
                 track_name: str = "seq2exp_selected", description: str = "Seq2Exp selected elements") -> int:
    """Selected elements per gene as BED6: runs of mask >= threshold, name = gene_id.

    Score = 1000 x the mean mask over the run (an integer 0-1000, as UCSC requires); strand '.'.
    Runs are clipped to the chromosome. Rows sorted like ``sort -k1,1 -k2,2n``; a track line
    names the track for IGV / UCSC.
    ``drop_centre`` leaves out the forced central bases (the model keeps them by rule, not by
    discovery). Returns the number of rows written.
    """
    rows = []
    for window in windows:
        if window.gene_id not in masks:
            continue
        mask = np.asarray(masks[window.gene_id], dtype=np.float64)
        selected = mask >= threshold
        if drop_centre:
            centre = window.length // 2
            selected[max(centre - centre_length // 2, 0):centre + centre_length // 2] = False
        for start, end in selected_runs(selected):
            chrom_start = max(window.start + int(start), 0)
            chrom_end = min(window.start + int(end), chrom_sizes[window.chrom])
            if chrom_end <= chrom_start:
                continue
            score = int(round(1000 * float(mask[start:end].mean())))
            rows.append((window.chrom, chrom_start, chrom_end, window.gene_id, min(max(score, 0), 1000), "."))
    rows.sort(key=lambda row: (row[0], row[1], row[2], row[3]))
    lines = [f'track name="{track_name}" description="{description}" useScore=1']
    lines += ["\t".join(str(value) for value in row) for row in rows]
    write_text_atomic(path, "\n".join(lines) + "\n")
    return len(rows)

"""bigWig signal windows: raw per-base values (no log, no scaling), NaN -> 0 (warned once), zero-padded.

Matches the paper: H3K27ac and DNase enter the model as raw bigWig values.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .coords import ProcessLocalFile, clip
from .errors import DataInputError


def open_bigwig(path: str):
    """Open a bigWig for reading, with an actionable error when it is missing or not a bigWig."""
    import pyBigWig

    if not os.path.isfile(path):
        raise DataInputError(f"{path}: bigWig file not found. Fix: check the track's path in the config.")
    try:
        handle = pyBigWig.open(path)
    except RuntimeError as err:
        handle, cause = None, err
    else:
        cause = None
    if handle is None or not handle.isBigWig():
        raise DataInputError(
            f"{path}: not a readable bigWig ({cause or 'bigBed or unknown format'}). Fix: give a bigWig "
            f"(convert bedGraph with `bedGraphToBigWig in.bedGraph chrom.sizes out.bw`)."
        )
    return handle


class BigWigTrack(ProcessLocalFile):
    """Per-base values of one bigWig over any window, opened lazily once per process."""

    kind = "bigWig"

    def __init__(self, path: str) -> None:
        self._nan_reported = False
        super().__init__(path)

    def _open(self):
        return open_bigwig(self.path)

    def _chrom_sizes(self, handle) -> dict[str, int]:
        return dict(handle.chroms())

    @property
    def depth(self) -> float:
        """Sequencing depth as the mean signal per covered base (from the header: no data read).

        Tracks with ``normalise: depth`` are rescaled by reference / this value, so the same
        cell sequenced 2.5x shallower gives the same model input.
        """
        header = self._handle().header()
        covered, total = header["nBasesCovered"], header["sumData"]
        if not covered or not total > 0:
            raise DataInputError(f"{self.path}: the bigWig holds no positive signal (sum {total} over {covered} "
                                 "covered bases), so its depth is undefined. Fix: give the track's real bigWig.")
        return float(total) / float(covered)

    def has_signal(self, chrom: str, start: int, end: int) -> bool:
        """Whether any base of [start, end) holds a non-zero value (exact statistics, not the zoom levels)."""
        name = self.chrom_name(chrom)
        part = clip(start, end, self.chrom_sizes[name])
        if not part.length:
            return False
        stats = self._handle().stats
        high = stats(name, part.start, part.end, type="max", exact=True)[0]
        if high is None or high > 0:  # no entry at all, or a positive one: no second read needed
            return high is not None
        return stats(name, part.start, part.end, type="min", exact=True)[0] < 0

    def window(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Signal over [start, end) as (end - start,) float32; NaN and off-chromosome bases are 0."""
        name = self.chrom_name(chrom)
        out = np.zeros(end - start, dtype=np.float32)
        part = clip(start, end, self.chrom_sizes[name])
        if part.length:
            values = self._handle().values(name, part.start, part.end, numpy=True)
            self._report_missing(values, name, part.start, part.end)
            out[part.offset : part.offset + part.length] = np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def _report_missing(self, values: np.ndarray, chrom: str, start: int, end: int) -> None:
        """Warn once per file that stored NaN/inf values are read as 0.

        Bases without an entry are NaN in pyBigWig's ``values`` too, and are 0 by design (no
        signal); only entries whose stored value is not finite are reported.
        """
        if self._nan_reported or np.isfinite(values).all():
            return
        stored = sum(e - s for s, e, v in self._handle().intervals(chrom, start, end) or () if not np.isfinite(v))
        if stored:
            self._nan_reported = True
            warnings.warn(f"{self.path}: {stored:,} bases of {chrom}:{start}-{end} hold NaN/inf values, read as 0 "
                          f"(reported for the first such window only). Fix: if they mean 'not measured', drop those "
                          f"genes; if they mean no signal, write 0 into the bigWig.", stacklevel=3)

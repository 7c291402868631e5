"""Genomic coordinates shared by every reader: TSS-anchored windows, clipping, chromosome aliases.

All coordinates are 0-based, half-open, as in BED and kipoiseq's ``Interval``.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .errors import DataInputError


@dataclass(frozen=True)
class Window:
    """The window [tss - L//2, tss - L//2 + L) of one gene; may reach past a chromosome end.

    It is never strand-flipped: index ``L // 2`` of every array is the TSS base.
    """

    chrom: str
    start: int
    end: int
    tss: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Clipped:
    """The part of a window that lies on the chromosome, and where it goes in the padded array."""

    start: int  # genomic start on the chromosome (>= 0)
    end: int  # genomic end (<= chromosome length)
    offset: int  # index of ``start`` inside the window array

    @property
    def length(self) -> int:
        return max(0, self.end - self.start)


def window_around(chrom: str, tss: int, length: int) -> Window:
    """Window of ``length`` bases with the TSS at index ``length // 2``."""
    start = tss - length // 2
    return Window(chrom=chrom, start=start, end=start + length, tss=tss)


def clip(start: int, end: int, chrom_length: int) -> Clipped:
    """Intersect [start, end) with [0, chrom_length); ``offset`` is where it lands in the window."""
    c_start = min(max(start, 0), chrom_length)
    c_end = max(min(end, chrom_length), c_start)
    return Clipped(start=c_start, end=c_end, offset=c_start - start)


def chrom_aliases(chrom: str) -> list[str]:
    """Spellings of one chromosome across UCSC and Ensembl conventions ("chr1" / "1", "chrM" / "MT")."""
    bare = chrom[3:] if chrom.lower().startswith("chr") else chrom
    names = [chrom, bare, "chr" + bare]
    if bare in ("M", "MT"):
        names += ["chrM", "MT", "M"]
    return list(dict.fromkeys(names))


def resolve_chrom(chrom: str, available: Collection[str], source: str) -> str:
    """Name of ``chrom`` as spelled in a file holding ``available`` chromosomes.

    Raises
    ------
    DataInputError
        When no alias of ``chrom`` is in the file: usually a different assembly or naming scheme.
    """
    for name in chrom_aliases(chrom):
        if name in available:
            return name
    shown = ", ".join(sorted(available)[:8]) + (", ..." if len(available) > 8 else "")
    raise DataInputError(
        f"{source}: chromosome {chrom!r} is not in this file (tried {chrom_aliases(chrom)}); "
        f"it holds: {shown or 'no chromosomes'}. Fix: use files of the same assembly as the gene "
        f"table, or drop the genes on {chrom!r} from the gene table."
    )

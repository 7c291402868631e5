"""Genomic coordinates shared by every reader: TSS-anchored windows, clipping, chromosome aliases,
and the per-process file handle with its chromosome names that every reader is built on.

All coordinates are 0-based, half-open, as in BED and kipoiseq's ``Interval``.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

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


def warn_alias(source: str, name: str, chrom: str) -> None:
    """Say once per file that it spells chromosomes differently from the gene table (kept working)."""
    warnings.warn(f"{source}: chromosome names are spelt differently from the gene table ({name!r} read for "
                  f"{chrom!r}); aliasing them.", stacklevel=3)


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


class ProcessLocalFile:
    """A genomic file opened lazily, once per process, with its chromosome names resolved once per alias.

    pyfaidx, pyBigWig and hictkpy handles do not survive a fork or a pickle into a DataLoader
    worker, so the handle is re-opened when the process changes and dropped when pickled.
    Subclasses say how to open the file (`_open`) and list its chromosomes (`_chrom_sizes`);
    ``kind`` names the file type in error messages.
    """

    kind = "file"

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self._opened: Any = None
        self._pid: int | None = None
        self._names: dict[str, str] = {}
        self.chrom_sizes: dict[str, int] = self._chrom_sizes(self._handle())

    def _open(self) -> Any:
        raise NotImplementedError

    def _chrom_sizes(self, handle: Any) -> dict[str, int]:
        raise NotImplementedError

    def _handle(self) -> Any:
        if self._opened is None or self._pid != os.getpid():
            self._opened = self._open()
            self._pid = os.getpid()
        return self._opened

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_opened"] = None
        return state

    def chrom_name(self, chrom: str) -> str:
        """The file's spelling of ``chrom`` (aliases such as "chr1"/"1" resolved; clear error otherwise).

        The first alias used in a file is reported once: a different naming scheme is often a sign
        of a different assembly, which the length check (`check_same_lengths`) then catches.
        """
        if chrom not in self._names:
            name = resolve_chrom(chrom, self.chrom_sizes, f"{self.kind} {self.path}")
            if name != chrom and not any(key != value for key, value in self._names.items()):
                warn_alias(f"{self.kind} {self.path}", name, chrom)
            self._names[chrom] = name
        return self._names[chrom]

    def chrom_length(self, chrom: str) -> int:
        return self.chrom_sizes[self.chrom_name(chrom)]

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None


def check_same_lengths(reference: ProcessLocalFile, others: Sequence[ProcessLocalFile], chroms: Collection[str]) -> None:
    """Raise when a file gives a chromosome another length than the reference (the FASTA).

    A different length means a different assembly: the missing or extra part would silently
    become zeros, or signal from the wrong place.
    """
    for chrom in chroms:
        expected = reference.chrom_length(chrom)
        for other in others:
            length = other.chrom_length(chrom)
            if length != expected:
                raise DataInputError(
                    f"{other.kind} {other.path}: chromosome {other.chrom_name(chrom)!r} is {length:,} bp, but "
                    f"{reference.kind} {reference.path} says {expected:,} bp ({reference.chrom_name(chrom)!r}): "
                    f"the files are from different assemblies. Fix: use files of one assembly (e.g. all hg38)."
                )

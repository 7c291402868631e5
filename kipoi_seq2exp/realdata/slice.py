"""Cut a small real slice of the chr22 folder that keeps real coordinates (for tests and examples).

The slice is a chr22 folder of its own, with the same file names: the FASTA keeps the full
chromosome length but every base outside the region is N (long N runs compress to almost
nothing in BGZF), the bigWigs keep only the intervals inside the region, and the gene table
keeps the genes whose window of ``flank`` bases on each side lies inside it. Code written for
the full folder therefore runs unchanged on the slice, at the same positions.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyBigWig

from ..atomic import publish, staging_folder
from ..data.coords import resolve_chrom
from ..data.genes import read_gene_table
from ..data.genome import open_fasta
from ..data.tracks import open_bigwig
from .chr22 import CELL_TYPES, FASTA, GENE_TABLE_NAME, cell_files
from .fetch import index_fasta

LINE_WIDTH = 50  # bases per FASTA line, as the source FASTA


def write_masked_fasta(source: str, chrom: str, start: int, end: int, target: Path) -> None:
    """BGZF FASTA of ``chrom`` at full length: the source's bases (case kept) in [start, end), N elsewhere."""
    from Bio import bgzf

    fasta = open_fasta(source)  # raw pyfaidx access: keeps the soft-masking case the data layer upper-cases
    try:
        name = resolve_chrom(chrom, list(fasta.keys()), f"FASTA {source}")
        length = len(fasta[name])
        kept = str(fasta[name][start:end])
    finally:
        fasta.close()
    with bgzf.BgzfWriter(str(target), "wb") as out:
        out.write(f">{name}\n".encode())
        for line_start in range(0, length, LINE_WIDTH):
            line_end = min(line_start + LINE_WIDTH, length)
            lo, hi = max(line_start, start), min(line_end, end)
            if lo >= hi:
                line = "N" * (line_end - line_start)
            else:
                line = "N" * (lo - line_start) + kept[lo - start:hi - start] + "N" * (line_end - hi)
            out.write((line + "\n").encode())


def write_bigwig_region(source: str, chrom: str, start: int, end: int, target: Path) -> None:
    """bigWig holding only ``chrom`` (full length) and the source's intervals inside [start, end)."""
    bw = open_bigwig(source)
    try:
        length = bw.chroms(chrom)
        intervals = [(max(s, start), min(e, end), v) for s, e, v in bw.intervals(chrom, start, end) or ()]
    finally:
        bw.close()
    out = pyBigWig.open(str(target), "w")
    try:
        out.addHeader([(chrom, length)], maxZooms=4)
        if intervals:
            out.addEntries([chrom] * len(intervals), [s for s, _, _ in intervals],
                           ends=[e for _, e, _ in intervals], values=[float(v) for _, _, v in intervals])
    finally:
        out.close()


def genes_inside(genes: pd.DataFrame, chrom: str, start: int, end: int, flank: int) -> pd.DataFrame:
    """Genes on ``chrom`` whose [tss - flank, tss + flank) lies inside [start, end)."""
    inside = (genes["chrom"] == chrom) & (genes["tss"] - flank >= start) & (genes["tss"] + flank <= end)
    return genes[inside]


def cut_slice(source_dir: str | os.PathLike, out_dir: str | os.PathLike, chrom: str, start: int, end: int,
              gene_table: str | os.PathLike, flank: int = 25_000) -> list[Path]:
    """Write the slice of ``source_dir`` (a chr22 folder) over [start, end) to ``out_dir``, atomically.

    Parameters
    ----------
    source_dir
        Folder with the FASTA and the six bigWigs (file names of `chr22.SOURCE_FILES`).
    gene_table
        Gene table to select genes from (with its split column, if any).
    flank
        Keep genes whose TSS +/- flank lies in the region (25 kb: windows up to 50 kb fit).

    Returns
    -------
    list[Path]
        The files written.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    with staging_folder(out_dir, "slice") as work:
        write_masked_fasta(str(source_dir / FASTA), chrom, start, end, work / FASTA)
        index_fasta(work / FASTA)
        for cell in CELL_TYPES:
            files = cell_files(cell)
            for name in (files.accessibility, files.procap_plus, files.procap_minus):
                write_bigwig_region(str(source_dir / name), chrom, start, end, work / name)
        genes = read_gene_table(str(gene_table))
        kept = genes_inside(genes, chrom, start, end, flank)
        kept.to_csv(work / GENE_TABLE_NAME, sep="\t", index=False)
        return publish(work, out_dir)


__all__ = ["write_masked_fasta", "write_bigwig_region", "genes_inside", "cut_slice"]

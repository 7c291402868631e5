"""Per-gene expression labels from strand-specific TSS assays (PRO-cap, CAGE, GRO-cap).

Label of a gene = log10(1 + reads whose 5' end lies on the gene's own strand within TSS +/- w),
the real-data stand-in for the paper's log10(CAGE + 1). Counting only the gene's strand keeps a
divergent (antisense) promoter from being credited to the gene. The window is half-open,
[tss - w, tss + w), the same convention as the data layer's promoter flank; bases past a
chromosome end count as 0.

Minus-strand bigWigs come in two conventions (ENCODE / PINTS store negative values, others
positive ones). The convention is read from the file's own summary (its minimum and maximum),
logged once per file, and counts are always returned as non-negative numbers.
"""
from __future__ import annotations

import logging
import os
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..atomic import write_text_atomic
from .coords import clip, resolve_chrom
from .errors import DataInputError
from .genes import read_gene_table
from .tracks import open_bigwig

log = logging.getLogger(__name__)

DEFAULT_FLANK = 500
LABEL_COLUMNS = ("gene_id", "label", "count")
STRAND_WORDS = {"+": "plus", "-": "minus"}


@dataclass(frozen=True)
class StrandConvention:
    """How one bigWig stores its counts: ``sign`` is +1 (positive values) or -1 (negative values)."""

    path: str
    sign: int

    @property
    def description(self) -> str:
        return "negative values (read as their absolute value)" if self.sign < 0 else "positive values"


def value_range(path: str) -> tuple[float, float]:
    """(min, max) over every chromosome of a bigWig, from its zoom summaries (exact for min and max;
    the header's own minVal/maxVal are truncated to integers by pyBigWig). (0, 0) if it holds no data."""
    lows, highs = [], []
    with closing(open_bigwig(str(path))) as bw:
        for chrom in bw.chroms():
            low, high = bw.stats(chrom, type="min")[0], bw.stats(chrom, type="max")[0]
            if low is not None:
                lows.append(low)
                highs.append(high)
    return (min(lows), max(highs)) if lows else (0.0, 0.0)


def strand_convention(path: str, strand: str) -> StrandConvention:
    """Detect from the file's values whether its counts are stored as positive or negative.

    A plus-strand file must hold no negative value; a minus-strand file may hold either sign,
    but only one (a file with both signs is not a single-strand count track).

    Raises
    ------
    DataInputError
        Mixed signs, or negative values in the plus-strand file (plus and minus swapped?).
    """
    low, high = value_range(path)
    if low < 0 < high:
        raise DataInputError(
            f"{path}: {STRAND_WORDS[strand]}-strand bigWig holds both negative ({low:g}) and positive ({high:g}) "
            f"values, so its strand convention is ambiguous. Fix: give one file per strand, each with counts of "
            f"one sign."
        )
    if strand == "+" and low < 0:
        raise DataInputError(
            f"{path}: plus-strand bigWig holds negative values (min {low:g}), the minus-strand convention. "
            f"Fix: check that the plus and minus files are not swapped (--plus / --minus)."
        )
    convention = StrandConvention(str(path), -1 if low < 0 else 1)
    log.info("%s: %s-strand counts stored as %s.", path, STRAND_WORDS[strand], convention.description)
    return convention


def _check_tss_inside(genes: pd.DataFrame, chrom_sizes: dict[str, int], names: dict[str, str],
                      genes_path: str, bigwig_path: str) -> None:
    for index, gene_id, chrom, tss in zip(genes.index, genes["gene_id"], genes["chrom"], genes["tss"]):
        length = chrom_sizes[names[chrom]]
        if not 0 <= tss < length:
            raise DataInputError(
                f"{genes_path}: line {index + 2} (gene {gene_id}): tss {tss} is outside {chrom} (length {length} in "
                f"{bigwig_path}). Fix: use 0-based TSS positions on the bigWig's assembly, or drop the gene."
            )


def strand_counts(genes: pd.DataFrame, convention: StrandConvention, flank: int, genes_path: str) -> np.ndarray:
    """Counts of one strand's bigWig within [tss - flank, tss + flank) of each gene (all genes).

    Parameters
    ----------
    genes
        Validated gene table (`read_gene_table`): gene_id, chrom, tss (0-based), strand.
    convention
        The strand's bigWig of 5'-end counts and its sign (`strand_convention`).
    flank
        w, bases on each side of the TSS.
    genes_path
        The gene table's file name, for error messages.

    Returns
    -------
    np.ndarray
        (n_genes,) float64, non-negative.
    """
    path = convention.path
    out = np.zeros(len(genes), dtype=np.float64)
    with closing(open_bigwig(str(path))) as bw:
        chrom_sizes = dict(bw.chroms())
        names = {c: resolve_chrom(c, chrom_sizes, f"bigWig {path}") for c in genes["chrom"].unique()}
        _check_tss_inside(genes, chrom_sizes, names, genes_path, path)
        for i, (chrom, tss) in enumerate(zip(genes["chrom"], genes["tss"])):
            name = names[chrom]
            part = clip(int(tss) - flank, int(tss) + flank, chrom_sizes[name])
            if part.length:
                values = bw.values(name, part.start, part.end, numpy=True)
                out[i] = np.nansum(values, dtype=np.float64)
    return np.abs(out)  # one sign per file (checked by strand_convention): abs() flips it, without -0.0


def tss_labels(genes: pd.DataFrame, plus: str, minus: str, flank: int = DEFAULT_FLANK,
               genes_path: str = "gene table") -> pd.DataFrame:
    """Label table of every gene: counts on its own strand within TSS +/- ``flank``.

    Parameters
    ----------
    genes
        Validated gene table (`read_gene_table`).
    plus, minus
        Strand-specific bigWigs of TSS-assay 5' ends (PRO-cap, CAGE, GRO-cap).
    flank
        w in bases (default 500, the README recipe).

    Returns
    -------
    pd.DataFrame
        Columns gene_id, label = log10(1 + count), count; in gene-table order. ``attrs["conventions"]``
        holds the detected `StrandConvention` of each strand ('+', '-').
    """
    if flank <= 0:
        raise DataInputError(f"flank = {flank}: must be a positive number of bases (e.g. 500).")
    conventions = {"+": strand_convention(plus, "+"), "-": strand_convention(minus, "-")}
    on_plus = (genes["strand"] == "+").to_numpy()
    plus_counts = strand_counts(genes, conventions["+"], flank, genes_path)
    minus_counts = strand_counts(genes, conventions["-"], flank, genes_path)
    counts = np.where(on_plus, plus_counts, minus_counts)
    table = pd.DataFrame({"gene_id": genes["gene_id"].to_numpy(), "label": np.log10(1.0 + counts), "count": counts})
    table.attrs["conventions"] = conventions
    return table


def write_label_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the label table as TSV atomically (temp file + rename): never half a table."""
    out = table.loc[:, list(LABEL_COLUMNS)].copy()
    if np.all(out["count"] == np.round(out["count"])):
        out["count"] = out["count"].astype(np.int64)
    write_text_atomic(path, out.to_csv(sep="\t", index=False, float_format="%.6f"))


def make_labels(gene_table: str, plus: str, minus: str, out: str | os.PathLike,
                flank: int = DEFAULT_FLANK) -> pd.DataFrame:
    """Read the gene table and both bigWigs, compute every label, then write ``out`` (TSV).

    Every input is checked before anything is written, so a bad file leaves no output behind.
    """
    genes = read_gene_table(str(gene_table))
    table = tss_labels(genes, str(plus), str(minus), flank, genes_path=str(gene_table))
    write_label_table(table, out)
    return table


__all__ = ["DEFAULT_FLANK", "LABEL_COLUMNS", "STRAND_WORDS", "StrandConvention", "value_range", "strand_convention",
           "strand_counts", "tss_labels", "write_label_table", "make_labels"]

"""Per-gene tables: the gene table, mRNA half-life features, promoter activity, targets, split.

Tables are TSV or CSV (by extension: .csv = comma, .tsv/.txt/.tab = tab, else sniffed), with a
header row. Errors give the file, the 1-based line number (header = line 1) and the fix.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import SPLITS, SplitConfig
from .coords import chrom_aliases
from .errors import DataInputError

GENE_TABLE_COLUMNS = ("gene_id", "chrom", "tss", "strand")


@dataclass(frozen=True)
class Gene:
    """One gene of the gene table; ``tss`` is 0-based."""

    gene_id: str
    chrom: str
    tss: int
    strand: str


def _separator(path: str) -> str:
    name = path.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".tab")):
        return "\t"
    with open(path, "rb") as handle:
        first = handle.readline()
    return "\t" if b"\t" in first else ","


def read_table(path: str, what: str) -> pd.DataFrame:
    """Read a TSV/CSV with a header as strings (values are parsed and checked by the callers)."""
    if not os.path.isfile(path):
        raise DataInputError(f"{path}: {what} not found. Fix: check the path in the config.")
    try:
        return pd.read_csv(path, sep=_separator(path), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DataInputError(
            f"{path}: cannot parse {what} as TSV/CSV ({err}). Fix: one header row, tab- or comma-separated."
        ) from err


def _require_columns(table: pd.DataFrame, columns: Sequence[str], path: str, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataInputError(
            f"{path}: {what} lacks column(s) {missing}; found {list(table.columns)}. "
            f"Fix: add or rename the column(s) (header row, exact spelling)."
        )


def _line(row_index: int) -> int:
    """1-based line of a data row in a file with one header line."""
    return int(row_index) + 2


def _duplicate_ids(ids: pd.Series, path: str, what: str) -> None:
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]
        lines = [_line(i) for i in dup.index[dup == first]]
        raise DataInputError(
            f"{path}: {what} has duplicate gene_id {first!r} (lines {lines}; {dup.nunique()} duplicated ids "
            f"in all). Fix: keep one row per gene (e.g. one TSS per gene)."
        )


def read_gene_table(path: str) -> pd.DataFrame:
    """Read and validate the gene table.

    Returns
    -------
    pd.DataFrame
        Columns gene_id (str), chrom (str), tss (int64, 0-based), strand ('+'/'-') and any others
        as strings, in file order.
    """
    table = read_table(path, "gene table")
    _require_columns(table, GENE_TABLE_COLUMNS, path, "gene table")
    if table.empty:
        raise DataInputError(f"{path}: the gene table has a header but no genes, so there is nothing to predict. "
                             f"Fix: add one row per gene ({', '.join(GENE_TABLE_COLUMNS)}).")
    table["gene_id"] = table["gene_id"].str.strip()
    empty = table.index[table["gene_id"] == ""]
    if len(empty):
        raise DataInputError(f"{path}: empty gene_id on line {_line(empty[0])}. Fix: give every row a gene_id.")
    _duplicate_ids(table["gene_id"], path, "gene table")
    tss = pd.to_numeric(table["tss"].str.strip(), errors="coerce")
    bad = tss.isna() | (tss != np.floor(tss))
    if bad.any():
        i = bad.idxmax()
        raise DataInputError(
            f"{path}: line {_line(i)} (gene {table.at[i, 'gene_id']}): tss = {table.at[i, 'tss']!r} is not an "
            f"integer. Fix: write the 0-based TSS position as a whole number."
        )
    table["tss"] = tss.astype(np.int64)
    table["strand"] = table["strand"].str.strip()
    bad = ~table["strand"].isin(["+", "-"])
    if bad.any():
        i = bad.idxmax()
        raise DataInputError(
            f"{path}: line {_line(i)} (gene {table.at[i, 'gene_id']}): strand = {table.at[i, 'strand']!r}. "
            f"Fix: strand must be '+' or '-'."
        )
    table["chrom"] = table["chrom"].str.strip()
    return table


def check_tss_on_chromosomes(genes: pd.DataFrame, chrom_length: Callable[[str], int], path: str) -> None:
    """Raise if a TSS lies outside [0, chromosome length) of the genome (wrong assembly or 1-based)."""
    lengths = genes["chrom"].map({c: chrom_length(c) for c in genes["chrom"].unique()})
    bad = (genes["tss"] < 0) | (genes["tss"] >= lengths)
    if bad.any():
        i = bad.idxmax()
        raise DataInputError(
            f"{path}: line {_line(i)} (gene {genes.at[i, 'gene_id']}): tss {genes.at[i, 'tss']} is outside "
            f"{genes.at[i, 'chrom']} (length {lengths[i]}). Fix: use 0-based TSS positions of the FASTA's assembly."
        )


def genes_of(table: pd.DataFrame) -> list[Gene]:
    """Gene records of a validated gene table, in table order."""
    return [
        Gene(str(g), str(c), int(t), str(s))
        for g, c, t, s in zip(table["gene_id"], table["chrom"], table["tss"], table["strand"])
    ]


def _numeric(table: pd.DataFrame, columns: Sequence[str], path: str) -> np.ndarray:
    values = table[list(columns)].apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    bad = values.isna().to_numpy()
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataInputError(
            f"{path}: line {_line(table.index[row])} (gene {table['gene_id'].iloc[row]}): {columns[col]} = "
            f"{table[columns[col]].iloc[row]!r} is not a number. Fix: give a numeric value for every gene."
        )
    return values.to_numpy(dtype=np.float64)


def read_mrna_features(path: str | None, gene_ids: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """The mRNA half-life features of each gene, in ``columns`` order.

    Genes missing from the table (or no table at all) get zeros, with one warning.

    Returns
    -------
    np.ndarray
        (n_genes, len(columns)) float32.
    """
    out = np.zeros((len(gene_ids), len(columns)), dtype=np.float32)
    if path is None:
        warnings.warn("No mRNA features table given: the 8 mRNA half-life features are zeros for every gene.", stacklevel=2)
        return out
    table = read_table(path, "mRNA features table")
    _require_columns(table, ["gene_id", *columns], path, "mRNA features table")
    table["gene_id"] = table["gene_id"].str.strip()
    _duplicate_ids(table["gene_id"], path, "mRNA features table")
    values = pd.DataFrame(_numeric(table, columns, path), index=table["gene_id"])
    found = values.reindex(list(gene_ids))
    missing = found.index[found.isna().any(axis=1)]
    if len(missing):
        warnings.warn(
            f"{path}: {len(missing)} of {len(gene_ids)} genes have no mRNA features (e.g. {list(missing[:5])}); "
            f"they get zeros.",
            stacklevel=2,
        )
    out[:] = found.fillna(0.0).to_numpy(dtype=np.float32)
    return out


def read_targets(path: str, column: str, transform: str, gene_ids: Sequence[str]) -> np.ndarray:
    """Expression target per gene, transformed ONCE here (log10(x + 1) or none).

    Returns
    -------
    np.ndarray
        (n_genes,) float32; NaN where the table has no value for a gene.
    """
    table = read_table(path, "expression table")
    _require_columns(table, ["gene_id", column], path, "expression table")
    table["gene_id"] = table["gene_id"].str.strip()
    _duplicate_ids(table["gene_id"], path, "expression table")
    values = pd.Series(_numeric(table, [column], path)[:, 0], index=table["gene_id"])
    if transform == "log10p1":
        negative = values[values < 0]
        if len(negative):
            raise DataInputError(
                f"{path}: {column} of gene {negative.index[0]} is {negative.iloc[0]} < 0, so log10(x + 1) is "
                f"undefined. Fix: give raw non-negative expression, or set target_transform: none if the "
                f"values are already log-transformed."
            )
        values = np.log10(values + 1.0)
    found = values.reindex(list(gene_ids)).to_numpy(dtype=np.float32)
    _warn_unknown_ids(values.index, gene_ids, int(np.isnan(found).sum()), path, "expression table")
    return found


def _warn_unknown_ids(ids: pd.Index, gene_ids: Sequence[str], missing: int, path: str, what: str) -> None:
    """One warning when genes lack a value while other rows name genes the gene table does not have:
    usually an id-style mismatch (Ensembl version suffixes). Extra rows alone are normal (a gene
    table that is a subset of the expression table)."""
    unknown = ids.difference(pd.Index(gene_ids))
    if len(unknown) and missing:
        warnings.warn(f"{path}: {missing} of {len(gene_ids)} genes have no value, and {len(unknown)} rows of the "
                      f"{what} name genes that are not in the gene table (e.g. {list(unknown[:5])}); those rows are "
                      f"ignored. Fix: check the id style (e.g. Ensembl version suffixes) of the two tables.", stacklevel=3)


def assign_split(genes: pd.DataFrame, split: SplitConfig, path: str) -> np.ndarray:
    """'train' / 'valid' / 'test' per gene: from ``split.column`` if set, else by chromosome name.

    Chromosome names match across "chr" conventions ("chrX" in the config matches "X").
    """
    if split.column is not None:
        _require_columns(genes, [split.column], path, f"gene table (split.column = {split.column!r})")
        values = genes[split.column].str.strip()
        bad = ~values.isin(SPLITS)
        if bad.any():
            i = bad.idxmax()
            raise DataInputError(
                f"{path}: line {_line(i)} (gene {genes.at[i, 'gene_id']}): {split.column} = {values[i]!r}. "
                f"Fix: use one of {list(SPLITS)}."
            )
        return values.to_numpy(dtype=object)

    def matches(names: Sequence[str]) -> pd.Series:
        spellings = {alias for n in names for alias in chrom_aliases(n)}
        return genes["chrom"].isin(spellings)

    valid, test = matches(split.valid_chroms), matches(split.test_chroms)
    overlap = genes["chrom"][valid & test].unique()
    if len(overlap):
        raise DataInputError(
            f"split: chromosome(s) {list(overlap)} are in both valid_chroms and test_chroms. Fix: list each once."
        )
    out = np.full(len(genes), "train", dtype=object)
    out[valid.to_numpy()] = "valid"
    out[test.to_numpy()] = "test"
    return out


def promoter_activity(signals: np.ndarray, channels: Sequence[int], flank: int) -> float:
    """Geometric mean over ``channels`` of the mean per-base signal in TSS +/- ``flank``.

    With the paper's [H3K27ac, DNase] this is sqrt(mean H3K27ac x mean DNase) over the 2 kb around
    the TSS (raw bigWig units, where the released code used RPM); with one accessibility track it
    is that track's mean; with none, 0. Bases past a chromosome end count as 0.

    Parameters
    ----------
    signals
        (L, n_tracks) window with the TSS at index L // 2.
    """
    if not channels:
        return 0.0
    centre = signals.shape[0] // 2
    means = signals[centre - flank : centre + flank, list(channels)].astype(np.float64).mean(axis=0)
    return float(np.prod(np.maximum(means, 0.0)) ** (1.0 / len(channels)))

"""Gene windows and the truth elements inside them, in window coordinates."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SplitOf = Callable[[str], str] | Mapping[str, str] | None


@dataclass(frozen=True)
class GeneWindow:
    """One gene's input window [start, start + length) on ``chrom`` (0-based; start may be < 0).

    The window is centred on the TSS, so position ``length // 2`` is the TSS, as in the paper's
    [TSS - L/2, TSS + L/2).
    """

    gene_id: str
    chrom: str
    start: int
    length: int
    split: str = "all"

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def tss(self) -> int:
        return self.start + self.length // 2


@dataclass(frozen=True)
class TruthElement:
    """A causal element of one gene (a line of the truth BED): [start, end) on ``chrom``."""

    chrom: str
    start: int
    end: int
    element_id: str
    effect: float


def windows_from_genes(genes: pd.DataFrame | str | Path, length: int, split_of: SplitOf = None) -> list[GeneWindow]:
    """TSS-centred windows from a gene table (columns gene_id, chrom, tss; tss 0-based).

    Parameters
    ----------
    genes : the table, or the path of its TSV
    length : window length in bp (20,000 for the demo model, 200,000 for the paper's)
    split_of : chromosome -> split name (a mapping or a function); None puts every gene in "all"
    """
    from_file = isinstance(genes, (str, Path))
    table = pd.read_csv(genes, sep="\t") if from_file else genes
    _require_columns(table, ["gene_id", "chrom", "tss"], f"gene table {genes if from_file else ''}")
    return [GeneWindow(str(row.gene_id), str(row.chrom), int(row.tss) - length // 2, length,
                       _split(split_of, str(row.chrom)))
            for row in table.itertuples(index=False)]


def as_windows(source: Any) -> list[GeneWindow]:
    """Accept what a dataset can offer and return GeneWindows.

    Accepted: a sequence of GeneWindow (or of objects with gene_id, chrom, start, length or
    end, and optionally split attributes); a DataFrame with those columns; or any object with a
    ``windows`` attribute or method returning one of those (the data layer's dataset can expose
    that).
    """
    if hasattr(source, "windows"):
        windows = source.windows
        return as_windows(windows() if callable(windows) else windows)
    if isinstance(source, pd.DataFrame):
        _require_columns(source, ["gene_id", "chrom", "start"], "window table")
        if "length" in source:
            lengths = source["length"]
        elif "end" in source:
            lengths = source["end"] - source["start"]
        else:
            raise ValueError("window table: needs a 'length' or an 'end' column")
        splits = source["split"] if "split" in source else ["all"] * len(source)
        return [GeneWindow(str(g), str(c), int(s), int(n), str(sp))
                for g, c, s, n, sp in zip(source["gene_id"], source["chrom"], source["start"], lengths, splits)]
    return [_as_window(item) for item in source]


def _as_window(item: Any) -> GeneWindow:
    """A GeneWindow, or any object with gene_id, chrom, start and length (or end) attributes."""
    if isinstance(item, GeneWindow):
        return item
    if all(hasattr(item, name) for name in ("gene_id", "chrom", "start")) and (
            hasattr(item, "length") or hasattr(item, "end")):
        length = item.length if hasattr(item, "length") else item.end - item.start
        return GeneWindow(str(item.gene_id), str(item.chrom), int(item.start), int(length),
                          str(getattr(item, "split", "all")))
    raise TypeError(f"windows: cannot read a window from {item!r}; give GeneWindow objects (or objects with "
                    f"gene_id, chrom, start, length[, split]), a DataFrame with those columns, or an object "
                    f"with a .windows attribute")


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    """Chromosome sizes from a FASTA index (.fai) or a two-column chrom.sizes file."""
    sizes = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"{path}, line {number}: expected 'chrom<TAB>size', got {line.strip()!r}")
            sizes[fields[0]] = int(fields[1])
    return sizes


def read_truth_bed(path: str | Path) -> dict[str, list[TruthElement]]:
    """Truth BED (chrom, start, end, gene_id:element_id, effect) -> {gene_id: elements}."""
    truth: dict[str, list[TruthElement]] = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("track", "browser", "#")):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 4 or ":" not in fields[3]:
                raise ValueError(f"{path}, line {number}: expected chrom, start, end, gene_id:element_id[, effect]")
            gene_id, element_id = fields[3].split(":", 1)
            effect = float(fields[4]) if len(fields) > 4 else float("nan")
            element = TruthElement(fields[0], int(fields[1]), int(fields[2]), element_id, effect)
            truth.setdefault(gene_id, []).append(element)
    return truth


def spans_in_window(window: GeneWindow, intervals: Iterable[tuple[str, int, int]]) -> list[tuple[int, int]]:
    """Intervals (chrom, start, end) that touch the window, clipped, in window coordinates."""
    spans = []
    for chrom, start, end in intervals:
        if chrom == window.chrom and end > window.start and start < window.end:
            spans.append((max(start, window.start) - window.start, min(end, window.end) - window.start))
    return sorted(spans)


def _split(split_of: SplitOf, chrom: str) -> str:
    if split_of is None:
        return "all"
    if callable(split_of):
        return split_of(chrom)
    if chrom not in split_of:
        raise KeyError(f"chromosome {chrom!r} has no split in the given mapping; add it")
    return split_of[chrom]


def _require_columns(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing} (has {list(table.columns)})")

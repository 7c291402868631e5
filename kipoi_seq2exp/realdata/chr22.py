"""The real chr22 data set (hg38; K562 and GM12878): its files, where they come from, its split.

The FASTA and the six bigWigs are the test data of the PyPI source distribution
``deepdetails==1.0.0rc2`` (``tests/data/``); the gene table (the 418 chr22 genes of the paper's
18,377-gene benchmark) ships with this package. `SOURCE_FILES` records the original names, the
names used here and the sha256 of each original, so a download can be verified byte for byte.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE = "deepdetails"
VERSION = "1.0.0rc2"
SDIST_MEMBER_DIR = "tests/data"

RESOURCE_DIR = Path(__file__).resolve().parent.parent / "resources" / "chr22"
GENE_TABLE = RESOURCE_DIR / "genes_chr22.tsv"
SLICE_DIR = RESOURCE_DIR / "slice"

FASTA = "hg38.chr22.fa.gz"
GENE_TABLE_NAME = "genes_chr22.tsv"
CELL_TYPES = ("K562", "GM12878")


@dataclass(frozen=True)
class SourceFile:
    """One file of the source distribution: its name there, its name here, its sha256."""

    member: str
    name: str
    sha256: str


SOURCE_FILES = (
    SourceFile("chr22.fa.gz", FASTA, "c19587610c1af38332bc936912f000ad69a4ac60e61b9cc41d06d99a4148d3be"),
    SourceFile("acc.K562.chr22.bw", "K562.accessibility.chr22.bw",
               "7394b2d3b1cd8bcd3f62d9359299c3516acb56c6606e6a0ae92ab86f72933ec1"),
    SourceFile("acc.GM12878.chr22.bw", "GM12878.accessibility.chr22.bw",
               "3c528afa3eb08fbac72c25e384d61d7fc20bc70a3987d4bd49a53e764c185b5c"),
    SourceFile("K562.ds.chr22.pl.bw", "K562.procap.plus.chr22.bw",
               "e5c857ae541f7113661348f6db8d1d4515ed8ebb7eb37437c267bbb5048edd0d"),
    SourceFile("K562.ds.chr22.mn.bw", "K562.procap.minus.chr22.bw",
               "edb8fc4e89706630903fa3588bbdb2e948f866f0aea1200a92c6851f1ee52f87"),
    SourceFile("GM12878.ds.chr22.pl.bw", "GM12878.procap.plus.chr22.bw",
               "1e7fbce16e8467fdbd57ef13bb1abeea1fda3e4f2f523f3d9f5ef72ffd56b459"),
    SourceFile("GM12878.ds.chr22.mn.bw", "GM12878.procap.minus.chr22.bw",
               "a8b4d762b1817b901f0363c37ac95991a59f6482cf79c989c5966822920c592e"),
)


@dataclass(frozen=True)
class CellFiles:
    """File names of one cell type inside a chr22 folder."""

    cell_type: str

    @property
    def accessibility(self) -> str:
        return f"{self.cell_type}.accessibility.chr22.bw"

    @property
    def procap_plus(self) -> str:
        return f"{self.cell_type}.procap.plus.chr22.bw"

    @property
    def procap_minus(self) -> str:
        return f"{self.cell_type}.procap.minus.chr22.bw"


def cell_files(cell_type: str) -> CellFiles:
    """File names of ``cell_type`` (K562 or GM12878); raises ValueError for another cell type."""
    if cell_type not in CELL_TYPES:
        raise ValueError(f"cell type {cell_type!r}: the chr22 data set holds {list(CELL_TYPES)}")
    return CellFiles(cell_type)


__all__ = ["PACKAGE", "VERSION", "SDIST_MEMBER_DIR", "RESOURCE_DIR", "GENE_TABLE", "SLICE_DIR", "FASTA",
           "GENE_TABLE_NAME", "CELL_TYPES", "SourceFile", "SOURCE_FILES", "CellFiles", "cell_files"]

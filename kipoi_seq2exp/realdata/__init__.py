"""Real data: the hg38 chr22 set (K562, GM12878) — its files and provenance, a reproducible fetch
from PyPI, the 2-Mb-block split inside the chromosome, and small real slices for tests."""
from __future__ import annotations

from .chr22 import CELL_TYPES, GENE_TABLE, SLICE_DIR, SOURCE_FILES, cell_files
from .split import block_split, with_block_split

__all__ = ["CELL_TYPES", "GENE_TABLE", "SLICE_DIR", "SOURCE_FILES", "cell_files", "block_split", "with_block_split"]

"""Plain-text outputs (FASTA, TSV, BED) written atomically with fixed float formatting."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pyfaidx

from ..atomic import atomic_path, write_text_atomic
from ..checksum import sha256_of

FASTA_LINE = 60


def write_text(path: Path, lines: Iterable[str]) -> None:
    """Write lines (without newlines) atomically, each ended by ``\\n``."""
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def write_fasta(path: Path, sequences: dict[str, np.ndarray]) -> None:
    """FASTA with 60-column lines, then its .fai index built by pyfaidx."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        for chrom, sequence in sequences.items():
            handle.write(f">{chrom}\n".encode())
            data = sequence.tobytes()
            for start in range(0, len(data), FASTA_LINE):
                handle.write(data[start:start + FASTA_LINE] + b"\n")
    with atomic_path(path.with_name(path.name + ".fai")) as index:
        pyfaidx.Faidx(str(path), indexname=str(index)).close()


def write_tsv(path: Path, header: list[str], rows: Iterable[Iterable[object]]) -> None:
    write_text(path, ["\t".join(header)] + ["\t".join(str(value) for value in row) for row in rows])


def write_bed(path: Path, rows: list[tuple], track_line: str | None = None) -> None:
    """BED sorted like ``sort -k1,1 -k2,2n`` (what bedtools and bedToBigBed expect)."""
    rows = sorted(rows, key=lambda row: (row[0], row[1], row[2], str(row[3:])))
    lines = [track_line] if track_line else []
    write_text(path, lines + ["\t".join(str(value) for value in row) for row in rows])


def write_checksums(directory: Path, names: list[str], checksum_name: str) -> None:
    """``sha256sum -c`` compatible list of the generated files."""
    write_text(directory / checksum_name, [f"{sha256_of(directory / name)}  {name}" for name in sorted(names)])

"""Plain-text outputs (FASTA, TSV, BED) written atomically with fixed float formatting."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pyfaidx

FASTA_LINE = 60


def write_text(path: Path, lines: Iterable[str]) -> None:
    """Write lines (without newlines) to a temporary file, then move it into place."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")
    os.replace(temporary, path)


def write_fasta(path: Path, sequences: dict[str, np.ndarray]) -> None:
    """FASTA with 60-column lines, then its .fai index built by pyfaidx."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        for chrom, sequence in sequences.items():
            handle.write(f">{chrom}\n".encode())
            data = sequence.tobytes()
            for start in range(0, len(data), FASTA_LINE):
                handle.write(data[start:start + FASTA_LINE] + b"\n")
    os.replace(temporary, path)
    index = path.with_name(path.name + ".fai")
    index_temporary = path.with_name(path.name + ".fai.tmp")
    pyfaidx.Faidx(str(path), indexname=str(index_temporary)).close()
    os.replace(index_temporary, index)


def write_tsv(path: Path, header: list[str], rows: Iterable[Iterable[object]]) -> None:
    write_text(path, ["\t".join(header)] + ["\t".join(str(value) for value in row) for row in rows])


def write_bed(path: Path, rows: list[tuple], track_line: str | None = None) -> None:
    """BED sorted like ``sort -k1,1 -k2,2n`` (what bedtools and bedToBigBed expect)."""
    rows = sorted(rows, key=lambda row: (row[0], row[1], row[2], str(row[3:])))
    lines = [track_line] if track_line else []
    write_text(path, lines + ["\t".join(str(value) for value in row) for row in rows])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(directory: Path, names: list[str], checksum_name: str) -> None:
    """``sha256sum -c`` compatible list of the generated files."""
    write_text(directory / checksum_name, [f"{sha256(directory / name)}  {name}" for name in sorted(names)])

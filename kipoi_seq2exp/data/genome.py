"""DNA windows: FASTA slices padded with N past chromosome ends, and one-hot encoding.

Reads plain or BGZF FASTA through pyfaidx (BGZF needs Biopython). Soft-masked (lowercase) bases
are read as uppercase: repeat masking is annotation, not sequence.
"""
from __future__ import annotations

import hashlib
import logging
import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..atomic import staging_folder
from .coords import ProcessLocalFile, clip
from .errors import DataInputError

log = logging.getLogger(__name__)

_BASES = "ACGT"


def _one_hot_table() -> np.ndarray:
    """(256, 4) float32: row = ASCII code; A/C/G/T (any case) one-hot, everything else all zeros."""
    table = np.zeros((256, 4), dtype=np.float32)
    for i, base in enumerate(_BASES):
        table[ord(base), i] = 1.0
        table[ord(base.lower()), i] = 1.0
    return table


ONE_HOT_TABLE = _one_hot_table()


def one_hot(seq: str) -> np.ndarray:
    """One-hot encode DNA without a per-base Python loop.

    Parameters
    ----------
    seq
        DNA string of length L; case-insensitive; N and IUPAC codes become all-zero rows
        (Seq2Exp's convention; kipoiseq's default would give 0.25).

    Returns
    -------
    np.ndarray
        (L, 4) float32, columns A, C, G, T.
    """
    codes = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    return np.take(ONE_HOT_TABLE, codes, axis=0)  # ~10x faster than ONE_HOT_TABLE[codes]


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kipoi_seq2exp" / "fasta-index"


def _is_bgzf_name(path: str) -> bool:
    return path.lower().endswith((".gz", ".bgz"))


def _writable(folder: str) -> bool:
    return os.access(folder, os.W_OK)


def _index_paths(fasta: str, cache_dir: str | None) -> tuple[str, str | None]:
    """Where the .fai (and .gzi) live: beside the FASTA when there or writable, else in a cache dir.

    A cache entry is keyed by the FASTA's absolute path, size and mtime, so an edited FASTA gets
    a fresh index.
    """
    fai, gzi = fasta + ".fai", (fasta + ".gzi" if _is_bgzf_name(fasta) else None)
    if os.path.exists(fai) and (gzi is None or os.path.exists(gzi)):
        return fai, gzi
    if _writable(os.path.dirname(os.path.abspath(fasta))):
        return fai, gzi
    stat = os.stat(fasta)
    key = hashlib.sha1(f"{os.path.abspath(fasta)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir else _default_cache_dir()
    folder = folder / key
    name = os.path.basename(fasta)
    return str(folder / (name + ".fai")), (str(folder / (name + ".gzi")) if gzi else None)


def _build_index(fasta: str, fai: str, gzi: str | None) -> None:
    """Build .fai (and .gzi) in a temp folder, then move into place: never a half-written index."""
    from pyfaidx import Faidx

    folder = os.path.dirname(fai)
    with ExitStack() as stack:
        try:
            staging = stack.enter_context(staging_folder(fai, "index"))
        except OSError as err:
            raise DataInputError(
                f"{fasta}: no FASTA index (.fai) and none can be written to {folder} ({err}). Fix: run "
                f"`samtools faidx {fasta}` where you can write, or set DataConfig.cache_dir to a writable folder."
            ) from err
        tmp_fai = os.path.join(staging, "index.fai")
        tmp_gzi = os.path.join(staging, "index.gzi") if gzi else None
        log.info("Indexing FASTA %s into %s (once).", fasta, folder)
        Faidx(fasta, indexname=tmp_fai, gzi_indexname=tmp_gzi).close()
        if gzi:
            os.replace(tmp_gzi, gzi)
        os.replace(tmp_fai, fai)  # last: a .fai present means the index is complete


def _fai_records(fai: str) -> list[tuple[str, int, int, int, int]]:
    """(name, length, offset, line bases, line bytes) of every .fai row; the file's own format check."""
    records = []
    with open(fai) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("\t")
            try:
                if len(fields) < 5:
                    raise ValueError
                records.append((fields[0], *(int(value) for value in fields[1:5])))
            except ValueError:
                raise DataInputError(f"{fai}: line {number} is not a FASTA index row (name, length, offset, "
                                     f"line bases, line bytes). Fix: delete {fai}; it is rebuilt on the next run.") from None
    return records


def _line_before(handle, offset: int) -> bytes:
    """The whole line that ends just before ``offset`` (its line end included), however long it is."""
    start, chunk = offset, b""
    while start > 0:
        start = max(0, start - 4096)
        handle.seek(start)
        chunk = handle.read(offset - start)
        if b"\n" in chunk[:-1]:
            return chunk[chunk.rindex(b"\n", 0, len(chunk) - 1) + 1:]
    return chunk


def _record_mismatch(handle, size: int, name: str, length: int, offset: int, line_bases: int,
                     line_bytes: int) -> str | None:
    """Why one .fai row does not describe the FASTA bytes, or None when it does.

    The row must point just past a ``>name`` header line, and its last base must be followed by a
    line end and then the next header or the end of the file: a row from another version of the
    file fails one of these.
    """
    header = _line_before(handle, offset) if 0 < offset <= size else b""
    if not (header.startswith(b">") and header.endswith(b"\n")):
        return f"its offset {offset} for {name!r} does not follow a '>' header line"
    if header[1:].split()[0].decode(errors="replace") != name:
        return f"its offset {offset} for {name!r} follows the header of another sequence ({header[:40]!r})"
    full_lines, rest = divmod(length, line_bases) if line_bases else (0, 0)
    end = offset + full_lines * line_bytes + rest - (line_bytes - line_bases if rest == 0 and full_lines else 0)
    handle.seek(end)
    after = handle.read(4096)
    following = after.lstrip(b"\r\n \t")[:1]
    if (length and after[:1] not in (b"\n", b"\r", b"")) or following not in (b">", b""):
        return f"{name!r} is {length:,} bases long by the index, but the FASTA's sequence goes on past that point"
    return None


def check_fasta_index(fasta: str, fai: str) -> None:
    """Raise if the .fai was built from another version of the FASTA (it would shift every window).

    Cheap (two small reads per sequence). Plain-text FASTA only: a BGZF FASTA's index is not
    checked (its offsets are in uncompressed bytes, which only pyfaidx's block index can reach).
    """
    if _is_bgzf_name(fasta):
        return
    size = os.path.getsize(fasta)
    with open(fasta, "rb") as handle:
        for record in _fai_records(fai):
            why = _record_mismatch(handle, size, *record)
            if why:
                raise DataInputError(
                    f"{fai}: this FASTA index does not match {fasta} ({why}): it was built from another version "
                    f"of the file, and every window read through it would be shifted. Fix: delete {fai} and run "
                    f"again (it is rebuilt), or run `samtools faidx {fasta}`."
                )


def open_fasta(path: str, cache_dir: str | None = None):
    """Open a FASTA with pyfaidx, building its index if needed (beside it, or in ``cache_dir``).

    Raises
    ------
    DataInputError
        Missing file, plain-gzip FASTA, an index that cannot be written anywhere, or one built
        from another version of the file.
    """
    from pyfaidx import Fasta, UnsupportedCompressionFormat

    if not os.path.isfile(path):
        raise DataInputError(f"{path}: FASTA file not found. Fix: check DataConfig.fasta / fasta_file.")
    fai, gzi = _index_paths(path, cache_dir)
    try:
        if not os.path.exists(fai) or (gzi and not os.path.exists(gzi)):
            _build_index(path, fai, gzi)
        check_fasta_index(path, fai)
        return Fasta(path, indexname=fai, gzi_indexname=gzi, as_raw=True, rebuild=False, build_index=False)
    except UnsupportedCompressionFormat as err:
        raise DataInputError(
            f"{path}: compressed with plain gzip; only BGZF (blocked gzip) FASTA can be read by position. "
            f"Fix: `gunzip -c {path} | bgzip > {path[:-3]}.bgz.fa.gz` (bgzip from htslib), or decompress it."
        ) from err


class FastaWindows(ProcessLocalFile):
    """Padded, upper-case sequence of any interval, including ones past a chromosome end.

    Has kipoiseq's extractor interface (``extract(interval)``), so kipoiseq's
    ``VariantSeqExtractor`` can use it as its reference; it does not import kipoiseq, because
    importing kipoiseq imports kipoi, which writes ~/.kipoi. The file is opened lazily and
    re-opened in each process (safe in DataLoader workers). Never reverse-complements.
    """

    kind = "FASTA"

    def __init__(self, fasta_file: str, cache_dir: str | None = None):
        self.cache_dir = cache_dir
        super().__init__(fasta_file)

    def _open(self):
        return open_fasta(self.path, self.cache_dir)

    def _chrom_sizes(self, handle) -> dict[str, int]:
        return {name: len(record) for name, record in handle.items()}

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Upper-case DNA of [start, end); bases off the chromosome are 'N'. Length is end - start."""
        name = self.chrom_name(chrom)
        part = clip(start, end, self.chrom_sizes[name])
        seq = self._handle().faidx.fetch(name, part.start + 1, part.end) if part.length else ""
        right = (end - start) - part.offset - part.length
        return "N" * part.offset + str(seq).upper() + "N" * right

    def extract(self, interval, **kwargs) -> str:
        """kipoiseq extractor interface: ``interval`` has chrom, start, end (0-based); strand ignored."""
        return self.fetch(interval.chrom, interval.start, interval.end)

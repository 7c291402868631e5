"""Writers of small real-format files (FASTA, bigWig, .cool, bgzipped VCF, tables) for tests and benchmarks.

The files are read by the same libraries as real data (pyfaidx, pyBigWig, hictkpy, cyvcf2), so a
test on them exercises the real reading code. Every writer goes through a temporary file and
an atomic rename.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path


def random_dna(length: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


def write_fasta(path: str | os.PathLike, chroms: Mapping[str, str], line_width: int = 60) -> None:
    """Plain FASTA, wrapped at ``line_width`` (pyfaidx indexes it on first open)."""
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        for name, seq in chroms.items():
            out.write(f">{name}\n")
            for i in range(0, len(seq), line_width):
                out.write(seq[i : i + line_width] + "\n")


def write_bigwig(path: str | os.PathLike, chrom_sizes: Mapping[str, int], values: Mapping[str, np.ndarray]) -> None:
    """bigWig from per-base values, stored bedGraph-style (one entry per run of equal values).

    NaN bases get no entry, so they read back as NaN (no data), as in real coverage tracks.

    Parameters
    ----------
    values
        chromosome -> (chrom_length,) array; chromosomes not given have no data.
    """
    import pyBigWig

    with atomic_path(path) as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        bw.addHeader(list(chrom_sizes.items()), maxZooms=0)
        for chrom in chrom_sizes:
            if chrom not in values:
                continue
            data = np.asarray(values[chrom], dtype=np.float64)
            change = np.flatnonzero(~((data[1:] == data[:-1]) | (np.isnan(data[1:]) & np.isnan(data[:-1])))) + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(data)]])
            keep = ~np.isnan(data[starts])
            if keep.any():
                bw.addEntries(
                    [chrom] * int(keep.sum()),
                    starts[keep].tolist(),
                    ends=ends[keep].tolist(),
                    values=data[starts[keep]].tolist(),
                )
        bw.close()


def write_cool(path: str | os.PathLike, chrom_sizes: Mapping[str, int], bin_size: int, pixels: pd.DataFrame) -> None:
    """Single-resolution cooler (HDF5 schema v3, symmetric-upper) written with h5py.

    hictkpy can write coolers too, but only through pyarrow; h5py keeps the test dependencies lean.

    Parameters
    ----------
    pixels
        Columns bin1_id, bin2_id (genome-wide bin ids, bin1_id <= bin2_id), count.
    """
    import h5py

    names = list(chrom_sizes)
    chrom_ids, starts, ends = [], [], []
    for i, name in enumerate(names):
        s = np.arange(0, chrom_sizes[name], bin_size)
        chrom_ids.append(np.full(len(s), i))
        starts.append(s)
        ends.append(np.minimum(s + bin_size, chrom_sizes[name]))
    chrom_ids = np.concatenate(chrom_ids)
    pixels = pixels.sort_values(["bin1_id", "bin2_id"]).reset_index(drop=True)
    if (pixels["bin1_id"] > pixels["bin2_id"]).any():
        raise ValueError("pixels must be upper-triangular (bin1_id <= bin2_id).")
    n_bins = len(chrom_ids)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        group = f.create_group("chroms")
        group["name"] = np.array(names, dtype="S")
        group["length"] = np.array([chrom_sizes[n] for n in names], dtype=np.int32)
        group = f.create_group("bins")
        enum = h5py.enum_dtype({n: i for i, n in enumerate(names)}, basetype=np.int32)
        group.create_dataset("chrom", data=chrom_ids.astype(np.int32), dtype=enum)
        group["start"] = np.concatenate(starts).astype(np.int32)
        group["end"] = np.concatenate(ends).astype(np.int32)
        group = f.create_group("pixels")
        group["bin1_id"] = pixels["bin1_id"].to_numpy(np.int64)
        group["bin2_id"] = pixels["bin2_id"].to_numpy(np.int64)
        group["count"] = pixels["count"].to_numpy(np.int32)
        group = f.create_group("indexes")
        group["chrom_offset"] = np.concatenate([[0], np.cumsum(np.bincount(chrom_ids, minlength=len(names)))]).astype(np.int64)
        group["bin1_offset"] = np.searchsorted(pixels["bin1_id"].to_numpy(), np.arange(n_bins + 1)).astype(np.int64)
        attrs = {
            "format": "HDF5::Cooler", "format-version": 3, "bin-type": "fixed", "bin-size": bin_size,
            "storage-mode": "symmetric-upper", "nbins": n_bins, "nchroms": len(names), "nnz": len(pixels),
            "generated-by": "kipoi_seq2exp.data.synthetic", "creation-date": "1970-01-01", "metadata": "{}",
            "assembly": "unknown",
        }
        f.attrs.update(attrs)


def write_vcf(path: str | os.PathLike, chrom_sizes: Mapping[str, int], records: Iterable[tuple]) -> str:
    """bgzipped + tabix-indexed VCF from (chrom, pos 1-based, id, ref, alt) tuples; returns the .gz path."""
    import pysam

    path = str(path)
    plain = path[:-3] if path.endswith(".gz") else path
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in chrom_sizes.items()]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    order = {c: i for i, c in enumerate(chrom_sizes)}
    for chrom, pos, vid, ref, alt in sorted(records, key=lambda r: (order[r[0]], r[1])):
        lines.append(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t.\tPASS\t.")
    with atomic_path(plain) as tmp, open(tmp, "w") as out:
        out.write("\n".join(lines) + "\n")
    return pysam.tabix_index(plain, preset="vcf", force=True)


def write_table(path: str | os.PathLike, rows: list[dict], sep: str = "\t") -> None:
    """TSV (or CSV with ``sep=','``) with a header from the dict keys."""
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep=sep, index=False)


def demo_contacts(chrom_sizes: Mapping[str, int], bin_size: int, max_span_bins: int = 60) -> pd.DataFrame:
    """Distance-decaying upper-triangular contacts with a per-bin ripple, distinct for every pixel."""
    rows = []
    offset = 0
    for length in chrom_sizes.values():
        n = -(-length // bin_size)
        i, j = np.triu_indices(n)
        near = (j - i) <= max_span_bins
        i, j = i[near], j[near]
        counts = np.round(1000.0 / (1.0 + (j - i)) + 3 * (i % 7) + (j % 5)).astype(np.int64)
        rows.append(pd.DataFrame({"bin1_id": i + offset, "bin2_id": j + offset, "count": counts}))
        offset += n
    return pd.concat(rows, ignore_index=True)


def demo_signal(length: int, seed: int, nan_runs: Iterable[tuple[int, int]] = (), run: int = 20) -> np.ndarray:
    """Non-negative coverage-like signal: constant over runs of ``run`` bases, a few peaks, NaN over ``nan_runs``."""
    rng = np.random.default_rng(seed)
    values = np.repeat(rng.gamma(0.5, 1.0, size=-(-length // run)), run)[:length]
    for centre in rng.integers(0, length, size=max(1, length // 5000)):
        lo, hi = max(0, centre - 200), min(length, centre + 200)
        values[lo:hi] += rng.uniform(5, 50)
    values = np.round(values, 2)
    for lo, hi in nan_runs:
        values[lo:hi] = np.nan
    return values


def write_demo_genome(
    folder: str | os.PathLike,
    chrom_sizes: Mapping[str, int],
    genes: list[dict],
    bin_size: int = 5000,
    seed: int = 0,
    lowercase_every: int = 0,
) -> dict[str, str]:
    """A random genome with H3K27ac/DNase bigWigs, a .cool map and gene tables, for tests and benchmarks.

    Parameters
    ----------
    genes
        Rows with gene_id, chrom, tss, strand (other keys kept).
    lowercase_every
        If > 0, every block of this many bases alternates upper/lower case (soft-masking).

    Returns
    -------
    dict
        Paths: fasta, h3k27ac, dnase, hic, genes, mrna, expression.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seqs = {}
    for name, length in chrom_sizes.items():
        seq = random_dna(length, rng)
        if lowercase_every:
            blocks = [seq[i : i + lowercase_every] for i in range(0, length, lowercase_every)]
            seq = "".join(b.lower() if k % 2 else b for k, b in enumerate(blocks))
        seqs[name] = seq
    names = {
        "fasta": "genome.fa", "h3k27ac": "h3k27ac.bw", "dnase": "dnase.bw", "hic": "contacts.cool",
        "genes": "genes.tsv", "mrna": "mrna_features.csv", "expression": "expression.tsv",
    }
    paths = {key: str(folder / name) for key, name in names.items()}
    write_fasta(paths["fasta"], seqs)
    for k, track in enumerate(("h3k27ac", "dnase")):
        write_bigwig(paths[track], chrom_sizes, {c: demo_signal(n, seed + 10 * k + i) for i, (c, n) in enumerate(chrom_sizes.items())})
    write_cool(paths["hic"], chrom_sizes, bin_size, demo_contacts(chrom_sizes, bin_size))
    write_table(paths["genes"], genes)
    from .config import MRNA_FEATURE_COLUMNS

    write_table(
        paths["mrna"],
        [{"gene_id": g["gene_id"], **{c: round(float(v), 3) for c, v in zip(MRNA_FEATURE_COLUMNS, rng.normal(size=8))}} for g in genes],
        sep=",",
    )
    write_table(paths["expression"], [{"gene_id": g["gene_id"], "expression": round(float(rng.gamma(1.0, 50.0)), 2)} for g in genes])
    return paths

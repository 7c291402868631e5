"""Data-layer speed and memory: our window loader vs a naive per-base loader, in one run.

Generates synthetic files (random genome of a few Mb, two per-base bigWigs, a 5 kb .cool, gene
tables) in a temp folder, then measures on ONE process:
- ours: `GeneWindows.example` = FASTA slice + lookup-table one-hot + 2 bigWig reads + Hi-C contact
  track + 9 gene features;
- naive: pyfaidx slice + per-base one-hot comprehension + one pyBigWig call per base and track
  (no Hi-C, no gene features: the ratio is therefore conservative);
and the peak RSS of a torch DataLoader with 2 workers over the dataset (RSS of the main process
and its workers summed every 20 ms; shared copy-on-write pages count once per process, so this
is an upper bound).

Targets: >= 20 windows/s, >= 5x naive, peak RSS <= 1.5 GB.

    python benchmarks/bench_data.py                 # paper window, 40 genes
    python benchmarks/bench_data.py --genes 10 --naive-windows 1   # quicker
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
from tqdm import tqdm

from kipoi_seq2exp.data.config import DataConfig, HicOptions, paper_tracks
from kipoi_seq2exp.data.dataset import GeneWindows, WindowDataset
from kipoi_seq2exp.data.synthetic import write_demo_genome


def make_files(folder: str, chrom_mb: float, n_genes: int, seed: int = 0) -> dict[str, str]:
    length = int(chrom_mb * 1e6)
    rng = np.random.default_rng(seed)
    tss = np.sort(rng.integers(0, length, size=n_genes))
    genes = [{"gene_id": f"G{i:05d}", "chrom": "chr1", "tss": int(t), "strand": "+-"[i % 2]} for i, t in enumerate(tss)]
    return write_demo_genome(folder, {"chr1": length}, genes, bin_size=5000, seed=seed, lowercase_every=300)


def naive_window(fasta, bigwigs, chrom: str, tss: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward loader: per-base Python loops (what the lookup table replaces)."""
    start = tss - window // 2
    length = len(fasta[chrom])
    lo, hi = max(0, start), min(length, start + window)
    seq = "N" * (lo - start) + str(fasta[chrom][lo:hi]).upper() + "N" * (start + window - hi)
    codes = {"A": [1, 0, 0, 0], "C": [0, 1, 0, 0], "G": [0, 0, 1, 0], "T": [0, 0, 0, 1]}
    onehot = np.array([codes.get(b, [0, 0, 0, 0]) for b in seq], dtype=np.float32)
    signals = np.zeros((window, len(bigwigs)), dtype=np.float32)
    for channel, bw in enumerate(bigwigs):
        for i, pos in enumerate(range(lo, hi)):
            value = bw.values(chrom, pos, pos + 1)[0]
            signals[i + lo - start, channel] = 0.0 if value != value else value
    return onehot, signals


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    pids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
        except FileNotFoundError:
            continue
    return pids


def peak_rss_of(fn) -> int:
    """Run ``fn`` while sampling RSS of this process + its children; return the peak sum."""
    peak, stop, me = [0], threading.Event(), os.getpid()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes(me) + sum(rss_bytes(p) for p in child_pids(me)))
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        stop.set()
        thread.join()
    return peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=200_000)
    parser.add_argument("--genes", type=int, default=40, help="windows timed for our loader")
    parser.add_argument("--naive-windows", type=int, default=1, help="windows timed for the naive loader (slow)")
    parser.add_argument("--chrom-mb", type=float, default=3.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        files = make_files(folder, args.chrom_mb, args.genes)
        print(f"synthetic files: {args.chrom_mb} Mb, {args.genes} genes, written in {time.perf_counter() - t0:.1f} s")
        config = DataConfig(
            fasta=files["fasta"], gene_table=files["genes"],
            tracks=paper_tracks(files["h3k27ac"], files["dnase"], files["hic"]),
            hic=HicOptions(normalization="NONE"), mrna_features=files["mrna"], expression=files["expression"],
            window=args.window,
        )
        windows = GeneWindows(config)
        windows.example(0)  # open files, warm caches
        t0 = time.perf_counter()
        for i in tqdm(range(len(windows)), desc="ours", leave=False):
            windows.example(i)
        ours = len(windows) / (time.perf_counter() - t0)

        import pyBigWig
        from pyfaidx import Fasta

        fasta = Fasta(files["fasta"])
        bigwigs = [pyBigWig.open(files["h3k27ac"]), pyBigWig.open(files["dnase"])]
        genes = windows.gene_list[: args.naive_windows]
        t0 = time.perf_counter()
        for gene in tqdm(genes, desc="naive", leave=False):
            naive_window(fasta, bigwigs, gene.chrom, gene.tss, args.window)
        naive = len(genes) / (time.perf_counter() - t0)

        dataset = WindowDataset(config)

        def iterate():
            from torch.utils.data import DataLoader

            for _ in DataLoader(dataset, batch_size=4, num_workers=2):
                pass

        peak = peak_rss_of(iterate)

    print(f"window {args.window:,} bp, 3 tracks (H3K27ac, DNase, Hi-C) + 9 gene features, 1 process")
    print(f"ours : {ours:8.1f} windows/s  (target >= 20)")
    print(f"naive: {naive:8.3f} windows/s  (pyfaidx slice + per-base one-hot and bigWig loop, no Hi-C)")
    print(f"ratio: {ours / naive:8.0f} x    (target >= 5)")
    print(f"DataLoader, 2 workers, batch 4: peak RSS (main + workers, summed) {peak / 2**30:.2f} GB (target <= 1.5)")


if __name__ == "__main__":
    main()

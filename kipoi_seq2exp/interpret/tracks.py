"""What a member selects on the user's own genes, as genome-browser files (``seq2exp mask-tracks``).

Every gene of the dataloader is predicted once (batched, eval mode: soft = the mask Beta's mean,
hard = 0/1) and its per-base mask placed at the window's genome coordinates:

- ``PREFIX.bw``: one bigWig of all genes' masks. Where windows of neighbouring genes overlap, a
  base takes the **maximum** of their masks (an element can matter to one gene and not to its
  neighbour; the max shows every base some gene kept). Bases no window covers, and window padding
  past a chromosome end, have no entry.
- ``PREFIX.bed``: per gene, the runs of mask >= 0.5 (soft) or the 1-runs (hard), clipped to the
  chromosome, the forced central bases left out (the model keeps them by rule, not by
  discovery); name = gene_id, score = 1000 x the run's mean mask (0-1000, as UCSC requires).

Genes are predicted by `kipoi_seq2exp.predict.predict_genes`, the package's one prediction loop.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import staging_folder
from ..predict import predict_genes

#: Mask value from which a base counts as selected (the hard mask's own threshold).
MASK_THRESHOLD = 0.5


def gene_rows(dataset, gene_ids: Sequence[str]) -> list[int]:
    """Rows of the dataloader's gene table holding ``gene_ids``, in that order (all rows when empty).

    Raises
    ------
    ValueError
        A gene id the table does not have.
    """
    known = {gene.gene_id: index for index, gene in enumerate(dataset.windows.gene_list)}
    missing = [g for g in gene_ids if g not in known]
    if missing:
        raise ValueError(f"genes {missing[:5]} are not in the dataloader's gene table "
                         f"({len(known)} genes, e.g. {list(known)[:3]}). Fix: use gene ids of that table.")
    return [known[g] for g in gene_ids] if gene_ids else list(known.values())


def gene_window(dataset, index: int):
    """The gene's window as the `GeneWindow` the browser exports take (genome coordinates)."""
    from ..evaluate.windows import GeneWindow

    gene, window = dataset.windows.gene_list[index], dataset.windows.window(index)
    return GeneWindow(gene.gene_id, gene.chrom, window.start, window.length)


def mask_segments(mask: np.ndarray, centre: int, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """Runs of mask >= ``threshold`` outside the forced centre, in window coordinates.

    Parameters
    ----------
    mask : (L,) one gene's mask, TSS at index L // 2
    centre : length of the forced central region (``model.cfg.centre``), left out: the model keeps
        it by rule, so a run there says nothing about what it found

    Returns
    -------
    (n_runs, 2) int array of [start, end) window indices
    """
    from ..evaluate.metrics import selected_runs

    selected = np.asarray(mask) >= threshold
    middle = len(selected) // 2
    selected[max(middle - centre // 2, 0):middle + centre // 2] = False
    return selected_runs(selected)


def write_mask_tracks(model, dataset, prefix: str | os.PathLike, batch_size: int = 8,
                      threshold: float = MASK_THRESHOLD, progress: bool = True) -> tuple[Path, Path, int]:
    """Predict every gene's mask and write ``PREFIX.bw`` (max over overlapping windows) and
    ``PREFIX.bed`` (runs of mask >= ``threshold`` outside the forced centre).

    Masks wait in a memory-mapped file in a staging folder beside the outputs (genes x window
    float32: 14 GB for the paper's 18,377 genes x 200 kb, which would not fit in memory), removed
    afterwards; a killed run's folder is removed by the next run on the same prefix.

    Returns
    -------
    (bigWig path, BED path, number of BED rows)
    """
    from ..evaluate.export import masks_to_bed, masks_to_bigwig

    prefix = Path(prefix)
    if not prefix.parent.is_dir():
        raise FileNotFoundError(f"{prefix}: folder {prefix.parent} does not exist. Fix: create it or choose "
                                f"another -o prefix.")
    windows = [gene_window(dataset, index) for index in range(len(dataset.windows))]
    sizes = {w.chrom: dataset.windows.fasta.chrom_length(w.chrom) for w in windows}
    bigwig, bed = prefix.with_name(prefix.name + ".bw"), prefix.with_name(prefix.name + ".bed")
    with staging_folder(prefix, "mask-tracks") as scratch:
        store = np.lib.format.open_memmap(scratch / "masks.npy", mode="w+", dtype=np.float32,
                                          shape=(len(windows), model.window))
        for prediction in predict_genes(model, dataset, batch_size, progress=progress, desc="masks"):
            store[prediction.index] = prediction.mask
        masks = {window.gene_id: store[i] for i, window in enumerate(windows)}
        masks_to_bigwig(windows, masks, sizes, bigwig, reduce="max")
        rows = masks_to_bed(windows, masks, sizes, bed, threshold=threshold, drop_centre=True,
                            centre_length=model.model.cfg.centre, track_name=f"{prefix.name}_mask",
                            description=f"Seq2Exp mask >= {threshold:g} (forced centre left out)")
        del masks, store  # the memory map holds its file open; release it before the folder goes
    return bigwig, bed, rows


__all__ = ["MASK_THRESHOLD", "gene_rows", "gene_window", "mask_segments", "write_mask_tracks"]

"""Per-gene model inputs (`GeneWindows`) and the torch Dataset the trainer uses (`WindowDataset`).

Files are validated once at construction (every chromosome in every file, every TSS on its
chromosome), so a bad input fails before training starts, not hours into it. File handles open
lazily in each process: a DataLoader with worker processes is safe.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from .config import SPLITS, DataConfig, TrackConfig
from .coords import ProcessLocalFile, Window, check_same_lengths, clip, window_around
from .genes import (
    Gene,
    assign_split,
    check_tss_on_chromosomes,
    genes_of,
    promoter_activity,
    read_gene_table,
    read_mrna_features,
    read_targets,
)
from . import qc
from .errors import DataInputError
from .genome import FastaWindows, one_hot
from .hic import HicContacts, PowerLawContacts
from .qc import WindowQC
from .tracks import BigWigTrack

def _open_track(track: TrackConfig, config: DataConfig, fasta: FastaWindows):
    """Reader for one channel; ``None`` for an absent bigWig (zeros), power law for absent Hi-C."""
    if track.kind == "hic":
        if track.path is None:
            warnings.warn(
                f"Track {track.name!r}: no Hi-C file; using ABC's power-law contact fallback "
                f"(gamma {config.hic.powerlaw_gamma}, scale {config.hic.powerlaw_scale}).",
                stacklevel=3,
            )
            return PowerLawContacts(config.hic, fasta.chrom_length)
        return HicContacts(track.path, config.hic)
    if track.path is None:
        warnings.warn(f"Track {track.name!r}: no file given; this channel is all zeros.", stacklevel=3)
        return None
    return BigWigTrack(track.path)


class GeneWindows:
    """Everything the model reads for one gene: DNA, signals and the 9 gene features.

    Parameters
    ----------
    config
        Data configuration (files, tracks in channel order, window length).
    genes
        A validated gene table (`read_gene_table`); read from ``config.gene_table`` when omitted.
    """

    def __init__(self, config: DataConfig, genes: pd.DataFrame | None = None):
        self.config = config
        self.genes = read_gene_table(config.gene_table) if genes is None else genes
        self.gene_list: list[Gene] = genes_of(self.genes)
        self.fasta = FastaWindows(config.fasta, config.cache_dir)
        check_tss_on_chromosomes(self.genes, self.fasta.chrom_length, config.gene_table)
        self.readers = [_open_track(t, config, self.fasta) for t in config.tracks]
        self._check_chromosomes()
        self.promoter_channels = self._promoter_channels()
        self._depth: np.ndarray | None = None
        self.mrna = read_mrna_features(config.mrna_features, self.genes["gene_id"].tolist(), config.mrna_columns)
        self.qc: list[WindowQC] = self._check_windows()

    def _check_chromosomes(self) -> None:
        """Every gene chromosome in every file, with the FASTA's length (raises naming files and chromosome)."""
        files = [r for r in self.readers if isinstance(r, ProcessLocalFile)]
        check_same_lengths(self.fasta, files, self.genes["chrom"].unique())

    def _check_windows(self) -> list[WindowQC]:
        """QC of every window before anything is predicted: flagged ones warned, refused ones raised."""
        genes = tqdm(range(len(self)), desc="checking windows", unit="gene", disable=len(self) < 2_000, leave=False)
        checks = [self.window_qc(index) for index in genes]
        warning, error = qc.summarise(self.genes["gene_id"].tolist(), checks, self.config.max_n_fraction)
        if error:
            raise DataInputError(f"{self.config.gene_table} with {self.config.fasta}: {error}")
        if warning:
            warnings.warn(f"{self.config.gene_table}: {warning}", stacklevel=3)
        return checks

    def window_qc(self, index: int) -> WindowQC:
        """Share of N bases in gene ``index``'s window (all, and those on the chromosome), and its bigWig
        tracks that are empty there."""
        window = self.window(index)
        empty = tuple(track.name for track, reader in zip(self.config.tracks, self.readers)
                      if isinstance(reader, BigWigTrack) and not reader.has_signal(window.chrom, window.start, window.end))
        unreadable = qc.unreadable_bases(self.fasta.fetch(window.chrom, window.start, window.end))
        padding = window.length - clip(window.start, window.end, self.fasta.chrom_length(window.chrom)).length
        return WindowQC(unreadable / window.length, empty, (unreadable - padding) / window.length)

    def _promoter_channels(self) -> list[int]:
        wanted = {name.casefold() for name in self.config.promoter_tracks}
        named = [i for i, t in enumerate(self.config.tracks) if t.name.casefold() in wanted]
        present = [i for i in named if self.config.tracks[i].path is not None]
        if len(present) < len(named):
            absent = [self.config.tracks[i].name for i in named if i not in present]
            warnings.warn(
                f"Promoter activity ignores absent track(s) {absent}: it is the geometric mean of "
                f"{[self.config.tracks[i].name for i in present] or 'no track (0)'}.",
                stacklevel=3,
            )
        return present

    def __len__(self) -> int:
        return len(self.gene_list)

    @property
    def n_tracks(self) -> int:
        return len(self.config.tracks)

    def window(self, index: int) -> Window:
        gene = self.gene_list[index]
        return window_around(gene.chrom, gene.tss, self.config.window)

    def sequence(self, window: Window) -> np.ndarray:
        """(L, 4) float32 one-hot DNA, N-padded past chromosome ends."""
        return one_hot(self.fasta.fetch(window.chrom, window.start, window.end))

    def signals(self, window: Window) -> np.ndarray:
        """(L, n_tracks) float32, channels in config order, zero-padded past chromosome ends."""
        out = np.zeros((window.length, self.n_tracks), dtype=np.float32)
        for channel, reader in enumerate(self.readers):
            if isinstance(reader, BigWigTrack):
                out[:, channel] = reader.window(window.chrom, window.start, window.end)
            elif reader is not None:  # Hi-C map or power law
                out[:, channel] = reader.window(window.chrom, window.tss, window.start, window.end)
        return out

    def signal_depth(self) -> np.ndarray:
        """(n_tracks,) float32: each bigWig's depth (mean signal per covered base); 1 for Hi-C and
        absent tracks. Models with ``normalise: depth`` tracks rescale by it; others ignore it."""
        if self._depth is None:  # read on first use: models without depth-normalised tracks never need it
            self._depth = np.array([reader.depth if isinstance(reader, BigWigTrack) else 1.0
                                    for reader in self.readers], dtype=np.float32)
        return self._depth

    def gene_features(self, index: int, signals: np.ndarray) -> np.ndarray:
        """(len(mrna_columns) + 1,) float32, (9,) by default: mRNA features, then promoter activity.

        Not normalised, as in the released code.
        """
        activity = promoter_activity(signals, self.promoter_channels, self.config.promoter_flank)
        return np.append(self.mrna[index], np.float32(activity)).astype(np.float32)

    def example(self, index: int) -> dict:
        """Numpy inputs of gene ``index``: seq (L, 4), signals (L, n_tracks), gene_features (9,),
        signal_depth (n_tracks,), window."""
        window = self.window(index)
        signals = self.signals(window)
        return {
            "seq": self.sequence(window),
            "signals": signals,
            "gene_features": self.gene_features(index, signals),
            "signal_depth": self.signal_depth(),
            "window": window,
        }


class WindowDataset(Dataset):
    """One example per gene for training / evaluation.

    Parameters
    ----------
    config
        Data configuration.
    subset
        'train', 'valid' or 'test' (per ``config.split``), or ``None`` for every gene.

    Items are dicts: ``seq`` (L, 4), ``signals`` (L, n_tracks), ``gene_features`` (9,),
    ``signal_depth`` (n_tracks,), ``target`` (1,) when ``config.expression`` is set (float32 tensors), and ``gene_id``,
    ``chrom``, ``start``, ``end`` (window, may reach past chromosome ends), ``strand``, ``qc`` (`WindowQC.label`), and
    ``cell`` when ``config.cell`` is set. One cell only: ``config.joint_cells`` are read by the
    trainer's DataModule, one dataset per ``config.per_cell()``.
    Genes without a target value are left out, with one warning.
    """

    def __init__(self, config: DataConfig, subset: str | None = None):
        if subset is not None and subset not in SPLITS:
            raise ValueError(f"subset = {subset!r}: use one of {SPLITS} or None.")
        self.windows = GeneWindows(config)
        self.cell = config.cell
        genes = self.windows.genes
        self.split = assign_split(genes, config.split, config.gene_table)
        keep = np.ones(len(genes), dtype=bool) if subset is None else self.split == subset
        self.targets = None
        if config.expression is not None:
            self.targets = read_targets(
                config.expression, config.expression_column, config.target_transform, genes["gene_id"].tolist()
            )
            missing = keep & np.isnan(self.targets)
            if missing.any():
                warnings.warn(
                    f"{config.expression}: {int(missing.sum())} genes have no {config.expression_column!r} value "
                    f"(e.g. {genes['gene_id'][missing].tolist()[:5]}); they are left out.",
                    stacklevel=2,
                )
            keep &= ~np.isnan(self.targets)
        self.indices: Sequence[int] = np.flatnonzero(keep).tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict:
        index = self.indices[item]
        example = self.windows.example(index)
        gene = self.windows.gene_list[index]
        window: Window = example["window"]
        out = {
            "seq": torch.from_numpy(example["seq"]),
            "signals": torch.from_numpy(example["signals"]),
            "gene_features": torch.from_numpy(example["gene_features"]),
            "signal_depth": torch.from_numpy(example["signal_depth"]),
            "gene_id": gene.gene_id,
            "chrom": gene.chrom,
            "start": window.start,
            "end": window.end,
            "strand": gene.strand,
            "qc": self.windows.qc[index].label,
        }
        if self.cell:
            out["cell"] = self.cell
        if self.targets is not None:
            out["target"] = torch.tensor([self.targets[index]], dtype=torch.float32)
        return out

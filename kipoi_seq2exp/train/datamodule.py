"""Lightning data module: the data layer's `WindowDataset` per split, wired into DataLoaders.

All the data logic (windows, tracks, split, targets) lives in :mod:`kipoi_seq2exp.data`; this
module only builds the datasets once, checks that each stage has what it needs (genes in every
split it reads, targets where a loss or a metric is computed) before any step runs, and batches.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from ..data.config import DataConfig
from ..data.dataset import WindowDataset
from .config import ConfigError, TrainConfig

SPLIT_OF_STAGE = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}
PREDICT_SPLITS = ("train", "valid", "test", "all")


class EpochShuffle(Sampler[int]):
    """A random gene order that depends only on (seed, epoch).

    Lightning calls ``set_epoch`` at each epoch start, so a run resumed from a checkpoint sees the
    same orders in later epochs as an uninterrupted run (a single seeded generator would replay
    epoch 0's order after every resume).
    """

    def __init__(self, n_items: int, seed: int) -> None:
        self.n_items = n_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        return iter(torch.randperm(self.n_items, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n_items


class Seq2ExpDataModule(pl.LightningDataModule):
    """Train / valid / test / predict loaders over one `DataConfig`.

    With ``data.joint_cells`` every split holds each gene once per cell (the main cell first), so
    one model learns from all cells and validation scores all of them.

    Parameters
    ----------
    data
        Files, tracks, window and split.
    train
        Batch sizes, worker count and the seed of the training shuffle.
    predict_split
        Genes :meth:`predict_dataloader` reads: ``train``, ``valid``, ``test`` or ``all``.
    """

    def __init__(self, data: DataConfig, train: TrainConfig, predict_split: str = "all") -> None:
        super().__init__()
        if predict_split not in PREDICT_SPLITS:
            raise ConfigError(f"predict split {predict_split!r}: use one of {PREDICT_SPLITS}")
        self.data = data
        self.train_cfg = train
        self.predict_split = predict_split
        self.datasets: dict[str, Dataset] = {}

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` (``all`` = every gene) over every cell, built once (files are checked then)."""
        if split not in self.datasets:
            subset = None if split == "all" else split
            per_cell = [WindowDataset(cell, subset) for cell in self.data.per_cell()]
            self.datasets[split] = per_cell[0] if len(per_cell) == 1 else ConcatDataset(per_cell)
        return self.datasets[split]

    def main_cell_depths(self) -> list[float]:
        """Depth of each track file of the main cell (``WindowDataset`` order of channels)."""
        dataset = self.dataset("train")
        first = dataset.datasets[0] if isinstance(dataset, ConcatDataset) else dataset
        return first.windows.signal_depth().tolist()

    def check(self, stage: str) -> None:
        """Raise `ConfigError` now, before any step, if ``stage`` would run on an empty set or without targets."""
        needs_targets = stage in SPLIT_OF_STAGE
        if needs_targets and self.data.expression is None:
            raise ConfigError(
                f"data set {self.data.gene_table} has no targets (data.expression is not set), so '{stage}' "
                "has nothing to fit or score. Fix: set data.expression to the expression table, or use 'predict'.")
        for split in SPLIT_OF_STAGE.get(stage, (self.predict_split,)):
            dataset = self.dataset(split)
            for cell in dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]:
                if len(cell) == 0:
                    raise ConfigError(self._empty_message(split, needs_targets, cell.cell))

    def _empty_message(self, split: str, needs_targets: bool, cell: str = "") -> str:
        split_cfg = self.data.split
        if split_cfg.column is not None:
            rule = f"the gene table's column {split_cfg.column!r} has no {split!r} rows"
        else:
            rule = (f"no gene lies on the '{split}' chromosomes (valid: {split_cfg.valid_chroms}, test: "
                    f"{split_cfg.test_chroms}, train: every other chromosome)")
        targets = " or none of them has a target value" if needs_targets else ""
        of_cell = f" of cell {cell!r}" if self.data.joint_cells else ""
        return (f"{self.data.gene_table}: the {split!r} set{of_cell} is empty: {rule}{targets}. "
                "Fix: change data.split (valid_chroms, test_chroms or column) so that every set has genes.")

    def setup(self, stage: Optional[str] = None) -> None:
        self.check(stage or "fit")

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        cfg = self.train_cfg
        dataset = self.dataset(split)
        sampler = EpochShuffle(len(dataset), cfg.seed) if shuffle else None
        return DataLoader(dataset, batch_size=cfg.batch_size if shuffle else cfg.resolved_eval_batch_size,
                          sampler=sampler, num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)


__all__ = ["Seq2ExpDataModule", "EpochShuffle", "PREDICT_SPLITS"]

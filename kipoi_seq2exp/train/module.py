"""LightningModule around the plain `Seq2Exp` nn.Module: only the training logic lives here.

Training minimises the model's own loss (smooth-L1 + kl_weight x KL of the mask Beta to its
prior, :meth:`Seq2Exp.loss`) on one reparameterised mask sample per gene; validation and test run
the model in eval mode (mask = the Beta's mean) and score MSE, MAE and Pearson r over all genes
of the set, as the paper reports them, plus the mean mask ratio.
"""
from __future__ import annotations

from typing import Any, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection, PearsonCorrCoef

from ..model import ModelConfig, Seq2Exp, Seq2ExpOutput
from ..model.caduceus import reverse_complement
from ..predict import predict_batch
from .config import TrainConfig
from .export import CHECKPOINT_KEY
from .optim import build_optimizer, build_scheduler

CHECKPOINT_FORMAT = 1


def _scores(prefix: str) -> MetricCollection:
    return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "pearson": PearsonCorrCoef(),
                             "loss": MeanMetric(), "mask_ratio": MeanMetric()}, prefix=prefix)


class Seq2ExpModule(pl.LightningModule):
    """Trains a `Seq2Exp` built from ``model`` (a ``ModelConfig.to_dict()``) with ``train`` settings.

    Hyper-parameters are plain dicts (model, train, and the data config used), so a checkpoint
    loads with ``torch.load(..., weights_only=True)`` and records everything needed to rebuild
    the run. ``self.evaluated`` keeps the latest validation / test scores and is saved in
    checkpoints (``checkpoint["seq2exp"]["evaluated"]``) for the export's metrics file.
    """

    def __init__(self, model: dict[str, Any], train: dict[str, Any], data: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_config = ModelConfig.from_dict(model, source="Seq2ExpModule model config")
        self.train_config = TrainConfig(**train)
        self.model = Seq2Exp(self.model_config)
        self.val_scores = _scores("val/")
        self.test_scores = _scores("test/")
        self.evaluated: dict[str, dict[str, float]] = {}
        self.loaded_step = 0  # step of the checkpoint loaded for validate/test (the trainer's restarts at 0)

    def forward(self, batch: dict[str, Any]) -> Seq2ExpOutput:
        return self.model(batch["seq"], batch["signals"], batch["gene_features"], batch.get("blacklist"),
                          signal_depth=batch.get("signal_depth"))

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if self.train_config.rc_augment:
            batch = reverse_complement_some(batch, torch.rand(batch["seq"].shape[0]) < 0.5)
        out = self(batch)
        terms = self.model.loss(out, batch["target"], kl_scale=self.kl_scale)
        size = batch["seq"].shape[0]
        self.log("train/loss", terms.total, prog_bar=True, batch_size=size)
        self.log_dict({"train/prediction_loss": terms.prediction, "train/kl": terms.kl, "train/budget": terms.budget,
                       "train/mask_ratio": out.mask_ratio.mean(),
                       "train/lr": self.optimizers().param_groups[0]["lr"]}, batch_size=size)
        return terms.total

    @property
    def kl_scale(self) -> float:
        """Factor on model.kl_weight: the KL warm-up's linear ramp, 1 after it."""
        warmup = self.train_config.kl_warmup_steps
        return min(1.0, self.global_step / warmup) if warmup else 1.0

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.train_config)
        scheduler = build_scheduler(optimizer, self.train_config)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------------ evaluation
    def _score_batch(self, scores: MetricCollection, batch: dict[str, Any]) -> None:
        out = self(batch)
        target = batch["target"].reshape(-1).float()
        prediction = out.expression.float()
        scores["mse"].update(prediction, target)
        scores["mae"].update(prediction, target)
        scores["pearson"].update(prediction, target)
        scores["loss"].update(self.model.loss(out, batch["target"]).total.float(), weight=target.numel())
        scores["mask_ratio"].update(out.mask_ratio.float())

    def _finish_scores(self, split: str, scores: MetricCollection) -> None:
        values = {name: value.float() for name, value in scores.compute().items()}
        scores.reset()
        self.log_dict(values, prog_bar=True)
        self.evaluated[split] = {name.split("/", 1)[1]: float(v) for name, v in values.items()}
        self.evaluated[split]["global_step"] = max(int(self.global_step), self.loaded_step)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._score_batch(self.val_scores, batch)

    def on_validation_epoch_end(self) -> None:
        self._finish_scores("val", self.val_scores)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._score_batch(self.test_scores, batch)

    def on_test_epoch_end(self) -> None:
        self._finish_scores("test", self.test_scores)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Eval-mode predictions with the gene's identity, through `predict_batch`: the call every
        other front door makes (``load_member``, ``kipoi predict``, ``seq2exp evaluate``)."""
        out = predict_batch(self.model, batch)
        rows = {key: batch[key] for key in ("gene_id", "cell", "chrom", "start", "end", "strand", "qc") if key in batch}
        rows["prediction"] = out.expression.float()
        rows["mask_ratio"] = out.mask_ratio.float()
        if "target" in batch:
            rows["target"] = batch["target"].reshape(-1).float()
        return rows

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"format": CHECKPOINT_FORMAT, "evaluated": self.evaluated}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.evaluated = dict(checkpoint.get(CHECKPOINT_KEY, {}).get("evaluated", {}))
        self.loaded_step = int(checkpoint.get("global_step", 0))


def reverse_complement_some(batch: dict[str, Any], flip: Tensor) -> dict[str, Any]:
    """The batch with the examples where ``flip`` (batch,) is True seen from the other strand: DNA
    reverse-complemented, signals (and a blacklist) reversed; gene features and targets are strand-free."""
    if not flip.any():
        return batch
    out = dict(batch)
    rows = flip.to(batch["seq"].device)[:, None, None]
    out["seq"] = torch.where(rows, reverse_complement(batch["seq"]), batch["seq"])
    out["signals"] = torch.where(rows, batch["signals"].flip(1), batch["signals"])
    if batch.get("blacklist") is not None:
        out["blacklist"] = torch.where(rows[..., 0], batch["blacklist"].flip(1), batch["blacklist"])
    return out


def prediction_table(batches: list[dict[str, Any]]) -> dict[str, list]:
    """Concatenate :meth:`Seq2ExpModule.predict_step` outputs into columns of plain Python values."""
    columns: dict[str, list] = {}
    for rows in batches:
        for key, value in rows.items():
            values = value.tolist() if torch.is_tensor(value) else list(value)
            columns.setdefault(key, []).extend(values)
    return columns


__all__ = ["Seq2ExpModule", "prediction_table", "reverse_complement_some"]

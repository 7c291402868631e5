"""Train, evaluate and predict with a Lightning Trainer; every check runs before the first step.

These are the functions behind ``seq2exp train|validate|test|predict``; they raise
`ConfigError`, `CheckpointError` or `DataInputError` with a message to act on, and the CLI
prints it.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ..atomic import write_text_atomic
from .config import ConfigError, RunConfig, TrainConfig, load_run_config, run_config_with_overrides
from .datamodule import Seq2ExpDataModule
from .export import check_same_model, metrics_sidecar, model_config_of, read_checkpoint
from .module import Seq2ExpModule, prediction_table
from .shards import DEFAULT_CHUNK_GENES, Chunk, Plan, Provenance, Shard, ShardRun, complete, merge


PathLike = Union[str, os.PathLike]
BEST_NAME = "best"
LAST_FILE = "last.ckpt"
CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
MID_EPOCH_WARNING = "You're resuming from a checkpoint that ended before the epoch ended"


def resolve_run(config: Optional[PathLike], overrides: Sequence[str] = (),
                checkpoint: Optional[dict[str, Any]] = None, checkpoint_path: Optional[PathLike] = None) -> RunConfig:
    """The run config: from ``config`` if given, else the one stored in ``checkpoint``; overrides on top.

    With a checkpoint, its model config must equal the run's (else `CheckpointError`).
    """
    if config is not None:
        run = load_run_config(config, overrides)
    elif checkpoint is not None:
        stored = {k: checkpoint["hyper_parameters"].get(k) for k in ("model", "data", "train")}
        if stored["data"] is None:
            raise ConfigError(f"{checkpoint_path}: holds no data config; give --config")
        run = run_config_with_overrides(stored, overrides, source=f"{checkpoint_path} (stored config)")
    else:
        raise ConfigError("no run config: give --config NAME_OR_PATH (or a checkpoint that stores one)")
    if checkpoint is not None:
        check_same_model(checkpoint, run.model, checkpoint_path)
        # the checkpoint's own model config: it holds what training measured (reference depths)
        run = replace(run, model=model_config_of(checkpoint, checkpoint_path))
    return run


def resolve_accelerator(cfg: TrainConfig) -> str:
    if cfg.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("train.accelerator is 'gpu' but no CUDA GPU is visible; set train.accelerator=auto or cpu")
    if cfg.accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return cfg.accelerator


def resolve_precision(cfg: TrainConfig, accelerator: str) -> str:
    """``auto``: bf16 autocast on a GPU (as the published runs), float32 on the CPU."""
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16-mixed" if accelerator == "gpu" else "32-true"


def build_trainer(run: RunConfig, run_dir: Optional[Path], training: bool,
                  extra_callbacks: Sequence[pl.Callback] = (), progress_bar: bool = True) -> pl.Trainer:
    """A Trainer for ``run``; with ``training``, writes run_dir/checkpoints/best.ckpt (lowest validation
    MSE) and run_dir/checkpoints/last.ckpt (every ``checkpoint_every_n_steps``), CSV logs in run_dir/logs.
    ``progress_bar=False`` leaves the bar to a callback that knows more (a shard's genes done before)."""
    cfg = run.train
    accelerator = resolve_accelerator(cfg)
    if accelerator == "gpu":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls, as the released runs
    callbacks: list[pl.Callback] = [TQDMProgressBar()] if progress_bar else []
    callbacks += extra_callbacks
    logger: Any = False
    if training:
        checkpoints = run_dir / CHECKPOINT_DIR
        callbacks += [
            ModelCheckpoint(dirpath=checkpoints, filename=BEST_NAME, monitor="val/mse", mode="min", save_top_k=1,
                            auto_insert_metric_name=False, enable_version_counter=False),
            ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0, enable_version_counter=False,
                            every_n_train_steps=cfg.checkpoint_every_n_steps),
        ]
        logger = CSVLogger(str(run_dir), name="logs")
    return pl.Trainer(
        accelerator=accelerator, devices=1, precision=resolve_precision(cfg, accelerator),
        max_steps=cfg.max_steps, max_epochs=-1,
        gradient_clip_val=cfg.gradient_clip or None, gradient_clip_algorithm="norm",
        deterministic="warn" if cfg.deterministic else False,
        val_check_interval=cfg.val_every_n_steps, check_val_every_n_epoch=None,
        limit_val_batches=cfg.limit_val_batches, log_every_n_steps=cfg.log_every_n_steps,
        num_sanity_val_steps=0, callbacks=callbacks, logger=logger, enable_progress_bar=progress_bar,
        default_root_dir=str(run_dir) if run_dir else None, enable_model_summary=training,
    )


def new_module(run: RunConfig) -> Seq2ExpModule:
    return Seq2ExpModule(run.model.to_dict(), run.train.to_dict(), run.data.to_dict())


def trained_module(run: RunConfig, checkpoint: dict[str, Any]) -> Seq2ExpModule:
    """A module for ``run`` holding a checkpoint's weights and recorded scores (model configs already checked)."""
    module = new_module(run)
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    module.on_load_checkpoint(checkpoint)
    return module


def fit(run: RunConfig, resume: Optional[PathLike] = None, extra_callbacks: Sequence[pl.Callback] = ()) -> Path:
    """Train ``run`` (from scratch, or continuing ``resume``: weights, optimiser, schedule, step).

    last.ckpt is written every ``train.checkpoint_every_n_steps`` steps and when training ends, so
    an interrupted run loses at most the steps since the last multiple.

    Returns
    -------
    Path
        The run folder (``run.train.output_dir``): config.yaml, checkpoints/{best,last}.ckpt, logs/.
    """
    pl.seed_everything(run.train.seed, workers=True)
    datamodule = Seq2ExpDataModule(run.data, run.train)
    datamodule.check("fit")
    run = with_reference_depths(run, datamodule)
    if resume is not None:
        check_resume_point(resume, run, batches_per_epoch=len(datamodule.train_dataloader()))
    run_dir = Path(run.train.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run.to_yaml(run_dir / CONFIG_FILE)
    module = new_module(run)
    trainer = build_trainer(run, run_dir, training=True, extra_callbacks=extra_callbacks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=MID_EPOCH_WARNING)  # check_resume_point says it more precisely
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    trainer.save_checkpoint(run_dir / CHECKPOINT_DIR / LAST_FILE, weights_only=False)
    return run_dir


def with_reference_depths(run: RunConfig, datamodule: Seq2ExpDataModule) -> RunConfig:
    """Tracks with ``normalise: depth`` and no reference yet take the depth of the main cell's
    files, so that cell trains at factor 1 and every other file (a joint cell, a user's library)
    is rescaled to it; the reference is then part of the model config and of every export."""
    if not run.model.depth_normalised or all(s.reference_depth > 0 for s in run.model.signals
                                               if s.normalise == "depth"):
        return run
    depths = datamodule.main_cell_depths()
    signals = [replace(s, reference_depth=float(depth)) if s.normalise == "depth" and s.reference_depth == 0 else s
               for s, depth in zip(run.model.signals, depths)]
    return replace(run, model=replace(run.model, signals=signals))


def check_resume_point(resume: PathLike, run: RunConfig, batches_per_epoch: int) -> None:
    """Refuse a checkpoint of another model or one already at max_steps; say what a mid-epoch resume means."""
    checkpoint = read_checkpoint(resume)
    check_same_model(checkpoint, run.model, resume)
    step = int(checkpoint.get("global_step", 0))
    if step >= run.train.max_steps:
        raise ConfigError(f"{resume} is at step {step}, which already reaches train.max_steps = "
                          f"{run.train.max_steps}. Fix: raise train.max_steps to continue.")
    if step % batches_per_epoch:
        warnings.warn(f"{resume} was saved in the middle of an epoch (step {step}, {batches_per_epoch} batches per "
                      "epoch): weights, optimiser, schedule and step continue, but that epoch's gene order restarts "
                      "from its beginning; later epochs see the same orders as an uninterrupted run.", stacklevel=3)


def evaluate(checkpoint: PathLike, stage: str, config: Optional[PathLike] = None,
             overrides: Sequence[str] = ()) -> dict[str, float]:
    """Score ``checkpoint`` on the validation (``stage='validate'``) or test set.

    The scores are also merged into ``<checkpoint>.metrics.json``, which the export picks up.
    """
    if stage not in ("validate", "test"):
        raise ValueError(f"stage must be 'validate' or 'test', got {stage!r}")
    stored = read_checkpoint(checkpoint)
    run = resolve_run(config, overrides, stored, checkpoint)
    datamodule = Seq2ExpDataModule(run.data, run.train)
    datamodule.check(stage)
    module = trained_module(run, stored)
    trainer = build_trainer(run, None, training=False)
    run_stage = trainer.validate if stage == "validate" else trainer.test
    run_stage(module, datamodule=datamodule)
    split = "val" if stage == "validate" else "test"
    record_scores(checkpoint, {split: module.evaluated[split]})
    return module.evaluated[split]


def record_scores(checkpoint: PathLike, scores: dict[str, Any]) -> Path:
    sidecar = metrics_sidecar(checkpoint)
    known = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    known.update(scores)
    write_text_atomic(sidecar, json.dumps(known, indent=2) + "\n")
    return sidecar


def predict(checkpoint: PathLike, out: PathLike, split: str = "all", config: Optional[PathLike] = None,
            overrides: Sequence[str] = (), shard: Shard = Shard(0, 1),
            chunk_genes: int = DEFAULT_CHUNK_GENES) -> Optional[pd.DataFrame]:
    """Predict the genes of ``split`` owned by ``shard`` into part files ``OUT.parts/``, skipping parts
    already written; once every part of the run is present, merge them into the TSV ``out`` and
    write ``OUT.manifest.json`` (see :mod:`.shards`).

    The TSV has one row per gene (per gene and cell with joint cells), in the gene table's order:
    gene_id, (cell, when the data config names cells), chrom, start, end, strand, qc (window quality:
    'ok' or why it is flagged), prediction, mask_ratio (and target where it has targets).

    Returns
    -------
    pandas.DataFrame or None
        The merged table; ``None`` while other shards' parts are still missing.
    """
    stored = read_checkpoint(checkpoint)
    run = resolve_run(config, overrides, stored, checkpoint)
    datamodule = Seq2ExpDataModule(run.data, run.train, predict_split=split)
    datamodule.check("predict")
    dataset = datamodule.dataset(split)
    plan = Plan.of(len(dataset), shard.count, run.train.resolved_eval_batch_size, chunk_genes)
    parts = ShardRun(out, plan, shard, Provenance.of(checkpoint, run.data, prediction_settings(run, split)))
    pending = parts.pending()
    if pending:
        loader = DataLoader(Subset(dataset, [row for c in pending for row in range(c.start, c.stop)]),
                            batch_size=plan.batch_size, num_workers=run.train.num_workers)
        trainer = build_trainer(run, None, training=False, extra_callbacks=[PartWriter(parts, pending)],
                                progress_bar=False)
        trainer.predict(trained_module(run, stored), dataloaders=loader, return_predictions=False)
    return merge(out) if complete(out, plan) else None


def prediction_settings(run: RunConfig, split: str) -> dict[str, Any]:
    """Everything besides checkpoint and input files that changes a prediction: parts of runs that agree
    on these (and on the files) may be mixed."""
    accelerator = resolve_accelerator(run.train)
    return {"split": split, "model": run.model.to_dict(), "data": run.data.to_dict(), "accelerator": accelerator,
            "precision": resolve_precision(run.train, accelerator)}


class PartWriter(BasePredictionWriter):
    """Collects the predicted batches of the chunk in progress and writes it as one part once complete,
    with a progress bar (genes, rate, ETA) for the shard.

    Batches never straddle two chunks: chunks hold whole batches (`Plan`), the last one of the
    prediction set excepted, which comes last.
    """

    def __init__(self, parts: ShardRun, pending: Sequence[Chunk]) -> None:
        super().__init__(write_interval="batch")
        self.parts = parts
        self.pending = list(pending)
        self.batches: list[dict[str, Any]] = []
        self.progress: Optional[tqdm] = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The bar starts with the genes of earlier runs done, so its rate and ETA are this run's."""
        total = sum(c.rows for c in self.parts.chunks)
        self.progress = tqdm(total=total, initial=total - sum(c.rows for c in self.pending), unit="gene",
                             desc=f"shard {self.parts.shard}", dynamic_ncols=True)

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: dict[str, Any],
                           batch_indices: Optional[Sequence[int]], batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        self.batches.append(prediction)
        self.progress.update(len(prediction["prediction"]))
        chunk = self.pending[0]
        if sum(len(b["prediction"]) for b in self.batches) == chunk.rows:
            self.parts.write(chunk, pd.DataFrame(prediction_table(self.batches)))
            self.pending.pop(0)
            self.batches = []

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.progress.close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """A run stopped mid-way closes its bar now (an open one is printed again when the process exits)."""
        if self.progress is not None:
            self.progress.close()


__all__ = ["resolve_run", "build_trainer", "fit", "evaluate", "predict", "record_scores", "new_module",
           "trained_module", "PartWriter"]

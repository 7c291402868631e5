"""Training: the Lightning module and data module around the plain `Seq2Exp` model, the paper's
optimiser and schedule, YAML run configs, checkpoint export for the Kipoi zoo.

Names load on first access so that ``seq2exp --help`` and the Kipoi wrapper (which only needs
:func:`load_exported`) do not import PyTorch Lightning.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ConfigError": "config", "RunConfig": "config", "TrainConfig": "config", "load_run_config": "config",
    "packaged_configs": "config",
    "Seq2ExpDataModule": "datamodule",
    "Seq2ExpModule": "module",
    "WarmupCosine": "optim", "build_optimizer": "optim", "build_scheduler": "optim", "parameter_groups": "optim",
    "export_checkpoint": "export", "load_exported": "export", "CheckpointError": "export",
    "fit": "runner", "evaluate": "runner", "predict": "runner",
    "register": "cli",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

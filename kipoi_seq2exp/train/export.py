"""Export a training checkpoint into a model-zoo folder, and load such a folder back.

An export folder holds four files, written together (temp folder, then renames):

- ``model.safetensors``: the weights (no pickle; shared tensors, e.g. the hard variant's single
  backbone, stored once);
- ``config.yaml``: the :class:`ModelConfig` (named so as not to clash with Kipoi's ``model.yaml``,
  which may live in the same folder and is left alone);
- ``data.yaml``: the data config the model was trained on (window, tracks in channel order, ...);
- ``metrics.json``: cell type, source checkpoint, step, and the validation / test scores known
  (those stored in the checkpoint, then those of ``<checkpoint>.metrics.json`` that
  ``seq2exp test`` writes, then any given explicitly).

:func:`load_exported` needs only torch, safetensors and the model package: no Lightning.
"""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any, Optional, Union

import torch
import yaml
from safetensors.torch import load_model, save_model

from ..atomic import atomic_path, publish, staging_folder
from ..model import ModelConfig, Seq2Exp
from .member_files import CONFIG_FILE, DATA_FILE, EXPORT_FILES, METRICS_FILE, WEIGHTS_FILE

STATE_PREFIX = "model."
CHECKPOINT_KEY = "seq2exp"

PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely (missing, empty, truncated, holding code), is not the
    kind expected, or does not fit the config. The one class for our checkpoints and the authors'
    (`kipoi_seq2exp.airs`), so that the CLI turns either into one error line."""


#: What to do with a checkpoint that holds code: never load it unsafely.
_CODE_FIX = ("Fix: a checkpoint of the authors' code (divelab/AIRS) is imported with `seq2exp import-airs CKPT "
             "--variant soft|hard --out DIR`; for anything else, write the checkpoint again with `seq2exp train` "
             "from a source you trust.")


def first_line(err: BaseException) -> str:
    """The first sentence of an exception's message, without terminal colour codes (or its type name)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    line = text.splitlines()[0] if text else ""
    return line.split(". ")[0].rstrip(".") or type(err).__name__


def refused_globals(path: Path, err: BaseException) -> list[str]:
    """The classes / functions (``module.name``) a weights-only load refused in ``path``, read off the
    pickle's opcodes (nothing is imported or run), or off torch's message."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint: torch's message still names the first one
        return re.findall(r"GLOBAL ([\w.]+) was not an allowed global", str(err))


def load_weights_only(path: PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: no code in the file can run. Every way it
    fails becomes a `CheckpointError` naming the file and the fix (empty, truncated, code objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found. Fix: check the path (`seq2exp train` writes "
                              "<output_dir>/checkpoints/best.ckpt and last.ckpt).")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty (0 bytes): it was cut off while being written, "
                              "copied or downloaded. Fix: write it again (`seq2exp train`) or copy / re-download it.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = refused_globals(path, err)
        if not refused:
            raise CheckpointError(f"{path}: cannot unpickle the checkpoint ({first_line(err)}); the file is damaged "
                                  "or not a PyTorch checkpoint. Fix: write it again or re-download it.") from err
        raise CheckpointError(  # from None: torch's own text invites an unsafe load
            f"{path}: refused: the checkpoint holds Python code objects ({', '.join(refused)}), which a weights-only "
            f"load does not run; nothing from the file was executed. {_CODE_FIX}") from None
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first_line(err)}); the file is truncated "
                              "or not a checkpoint. Fix: write it again (`seq2exp train`) or copy / re-download it "
                              "and compare its checksum.") from err


def read_checkpoint(path: PathLike) -> dict[str, Any]:
    """Load a kipoi-seq2exp Lightning checkpoint safely (`load_weights_only`: no code runs from the file)."""
    checkpoint = load_weights_only(path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "model" not in hparams or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a kipoi-seq2exp training checkpoint (no model config in "
                              "hyper_parameters); write checkpoints with `seq2exp train`")
    return checkpoint


def model_config_of(checkpoint: dict[str, Any], path: PathLike) -> ModelConfig:
    return ModelConfig.from_dict(checkpoint["hyper_parameters"]["model"], source=f"{path} (model config)")


def model_from_checkpoint(path: PathLike) -> tuple[Seq2Exp, dict[str, Any]]:
    """The plain `Seq2Exp` of a training checkpoint (eval mode, CPU) and the checkpoint dict."""
    checkpoint = read_checkpoint(path)
    model = Seq2Exp(model_config_of(checkpoint, path), initialise=False)
    state = {k[len(STATE_PREFIX):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(STATE_PREFIX)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit its own model config: {err}") from err
    return model.eval(), checkpoint


def check_same_model(checkpoint: dict[str, Any], expected: ModelConfig, path: PathLike) -> None:
    """Raise `CheckpointError` naming every differing key if the checkpoint holds another model.

    Keys added to ModelConfig after the checkpoint was written count as their defaults, and a
    config's reference_depth of 0 ("not known until training starts") matches the checkpoint's."""
    stored = model_config_of(checkpoint, path).to_dict()
    wanted = expected.to_dict()
    for own, theirs in zip(wanted["signals"], stored["signals"]):
        if own["reference_depth"] == 0:
            own["reference_depth"] = theirs["reference_depth"]
    differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    if differing:
        details = ", ".join(f"{k}: checkpoint {stored.get(k)!r} vs config {wanted.get(k)!r}" for k in differing[:8])
        raise CheckpointError(
            f"{path} was trained with another model config ({details}). Fix: use the config the checkpoint was "
            "trained with (leave out --config to take it from the checkpoint), or start a new run.")


def collect_metrics(checkpoint: dict[str, Any], path: PathLike, cell_type: str,
                    extra: Optional[dict[str, Any]]) -> dict[str, Any]:
    evaluated = dict(checkpoint.get(CHECKPOINT_KEY, {}).get("evaluated", {}))
    sidecar = metrics_sidecar(path)
    if sidecar.is_file():
        evaluated.update(json.loads(sidecar.read_text()))
    evaluated.update(extra or {})
    return {"cell_type": cell_type, "checkpoint": str(path),
            "global_step": int(checkpoint.get("global_step", 0)), **evaluated}


def metrics_sidecar(checkpoint_path: PathLike) -> Path:
    """Where ``seq2exp test`` leaves the scores of a checkpoint: ``best.ckpt`` -> ``best.metrics.json``."""
    path = Path(checkpoint_path)
    return path.with_name(path.stem + ".metrics.json")


def export_checkpoint(checkpoint: PathLike, cell_type: str, out_dir: PathLike,
                      metrics: Optional[dict[str, Any]] = None) -> Path:
    """Write the export files of ``checkpoint`` into ``out_dir`` (created if needed).

    Parameters
    ----------
    checkpoint
        A ``seq2exp train`` checkpoint (``best.ckpt``, ``last.ckpt``).
    cell_type
        Name recorded in ``metrics.json`` (e.g. ``K562``).
    out_dir
        Target folder, e.g. ``model_zoo/Seq2Exp/K562``. Files other than the four export files are
        kept. A new folder appears complete or not at all; in an existing folder each file is
        replaced by an atomic rename.
    metrics
        Extra scores merged into ``metrics.json`` (e.g. ``{"test": {...}}``).

    Returns
    -------
    Path
        ``out_dir``.
    """
    model, ckpt = model_from_checkpoint(checkpoint)
    out_dir = Path(out_dir)
    data = ckpt["hyper_parameters"].get("data")
    if data:
        data = paths_relative_to(data, out_dir.parent.resolve() / out_dir.name)
    return write_export(model, data, collect_metrics(ckpt, checkpoint, cell_type, metrics), out_dir)


def write_export(model: Seq2Exp, data: Optional[dict[str, Any]], record: dict[str, Any], out_dir: PathLike) -> Path:
    """Write the four export files of ``model`` into ``out_dir``: a new folder appears complete or not
    at all; in an existing one each file is replaced by an atomic rename and other files are kept."""
    out_dir = Path(out_dir)
    with staging_folder(out_dir, "export") as staging:
        with atomic_path(staging / WEIGHTS_FILE) as weights:  # safetensors alone would write a private (0600) file
            save_model(model, str(weights))
        model.cfg.to_yaml(staging / CONFIG_FILE)
        (staging / DATA_FILE).write_text(yaml.safe_dump(data, sort_keys=False) if data else "{}\n")
        (staging / METRICS_FILE).write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
        publish(staging, out_dir)
    return out_dir


_PATH_KEYS = ("fasta", "gene_table", "mrna_features", "expression")


def paths_relative_to(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The data config with its file paths relative to ``folder`` (the export), so that an export
    carries no machine-specific absolute paths and ``DataConfig.from_yaml`` resolves them again."""
    def relative(value: Any) -> Any:
        return os.path.relpath(Path(value).resolve(), folder) if isinstance(value, str) and value else value

    def tracks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**track, "path": relative(track.get("path"))} for track in items]

    out = {key: relative(value) if key in _PATH_KEYS else value for key, value in data.items()}
    out["tracks"] = tracks(data.get("tracks", []))
    out["joint_cells"] = [{**cell, "tracks": tracks(cell.get("tracks", [])), "expression": relative(cell.get("expression"))}
                          for cell in data.get("joint_cells", [])]
    return out


def load_exported(directory: PathLike) -> Seq2Exp:
    """The `Seq2Exp` model of an export folder, in eval mode on the CPU (what the Kipoi wrapper calls)."""
    directory = Path(directory)
    missing = [name for name in (WEIGHTS_FILE, CONFIG_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: not a Seq2Exp export (missing {missing}); create one with "
                                "`seq2exp export CKPT --cell-type NAME --out DIR`")
    model = Seq2Exp(ModelConfig.from_yaml(directory / CONFIG_FILE), initialise=False)
    load_model(model, str(directory / WEIGHTS_FILE), strict=True, device="cpu")
    return model.eval()


__all__ = ["export_checkpoint", "write_export", "load_exported", "read_checkpoint", "load_weights_only", "first_line",
           "model_from_checkpoint", "check_same_model",
           "metrics_sidecar", "CheckpointError", "EXPORT_FILES", "WEIGHTS_FILE", "CONFIG_FILE", "DATA_FILE",
           "METRICS_FILE", "CHECKPOINT_KEY"]

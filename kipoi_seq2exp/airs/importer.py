"""``seq2exp import-airs``: turn one of the authors' released Lightning checkpoints into a zoo member.

The configuration is read off the tensors (d_model, layer counts, d_state, dt_rank, signal count,
window from the hard variant's positional embedding, else the hyper-parameters' ``seq_range``) and
checked against the variant the user names; the scalar settings that tensors do not carry (signal
scale, beta_min, prior, centre) come from the checkpoint's hyper_parameters when they are plain
data, else from the released presets.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import torch

from ..checksum import sha256_of
from ..model import ModelConfig, Seq2Exp, SignalTrack, airs_to_ours, paper_hard, paper_soft
from ..model.config import PAPER_SIGNALS
from ..train.export import CheckpointError, write_export
from .checkpoint import Placeholder, read_foreign_checkpoint

#: the released models' channels, as the dataloader's ``signals`` argument names them
PAPER_SIGNAL_NAMES = ",".join(s.name for s in PAPER_SIGNALS)

#: authors' hyper-parameter -> ours, for the scalars the tensors do not carry
_HPARAM_NAMES = {"center_len": "centre", "prior_scale_factor": "signal_scale", "beta_min": "beta_min",
                 "marginal_mean": "prior_mean", "marginal_scale": "prior_scale", "sample_threshold": "mask_threshold"}


def _layer_count(state: dict[str, torch.Tensor], backbone: str) -> int:
    indices = {int(m.group(1)) for k in state if (m := re.match(rf"{backbone}\.layers\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def _mapping(value: Any) -> dict[str, Any]:
    """A dict, or the items an inert placeholder of a dict subclass (Lightning's AttributeDict) received."""
    if isinstance(value, dict):
        return value
    if isinstance(value, Placeholder) and isinstance(value.__dict__.get("items"), dict):
        return value.__dict__["items"]
    return {}


def _plain_hparams(hparams: Any) -> dict[str, Any]:
    """The authors' model settings (``model.config`` of their Hydra config, or ``model`` itself) when
    hyper_parameters is plain data; empty when they are opaque placeholders (e.g. OmegaConf)."""
    model = _mapping(_mapping(hparams).get("model"))
    config = _mapping(model.get("config"))
    return config or model


def resolve_window(tensor_window: Optional[int], stored_window: Any, window: Optional[int], source: str) -> int:
    """The window the checkpoint was trained on: the hard variant's positional embedding, else the
    hyper-parameters' ``seq_range``, else ``--window``, else the paper's 200,000. An explicit
    ``--window`` that contradicts the checkpoint is an error naming both."""
    if window is not None and tensor_window is not None and window != tensor_window:
        raise ValueError(f"{source}: the checkpoint's positional embedding covers {tensor_window:,} bp but "
                         f"--window is {window:,}; use --window {tensor_window} (the dataloader must use it too)")
    stored = stored_window if isinstance(stored_window, int) and not isinstance(stored_window, bool) else None
    if window is not None and stored is not None and window != stored:
        raise ValueError(f"{source}: the checkpoint's hyper-parameters say seq_range = {stored:,} bp but --window "
                         f"is {window:,}. Fix: leave out --window (it is read from the checkpoint), or pass "
                         f"--window {stored}.")
    return tensor_window or stored or window or 200_000


def infer_config(state: dict[str, torch.Tensor], variant: str, hparams: Any, window: Optional[int],
                 source: str) -> ModelConfig:
    """The ModelConfig that the checkpoint's tensors describe; ValueError where they contradict
    ``variant`` or ``window``."""
    if variant not in ("soft", "hard"):
        raise ValueError(f"--variant must be soft or hard, got {variant!r}")
    required = ["seq_input_layer.weight", "signal_input_layer.weight", "mask_output.weight", "prior_weights",
                "signal_betas", "generator.backbone.layers.0.mixer.mamba_fwd.A_log",
                "generator.backbone.layers.0.mixer.mamba_fwd.dt_proj.weight"]
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f"{source}: not a Seq2Exp (GeneBiMambaMIRNP) checkpoint: state_dict has no 'model.{missing[0]}'")
    has_pos = "pos_emb" in state
    if has_pos != (variant == "hard"):
        found = "hard (it has pos_emb, one shared backbone)" if has_pos else "soft (no pos_emb)"
        raise ValueError(f"{source}: --variant {variant} but the checkpoint is the released {found} model; "
                         f"pass --variant {'hard' if has_pos else 'soft'}")
    d_model = state["seq_input_layer.weight"].shape[0]
    a_log = state["generator.backbone.layers.0.mixer.mamba_fwd.A_log"]
    in_proj = state["generator.backbone.layers.0.mixer.mamba_fwd.in_proj.weight"]
    settings = {ours: _plain_hparams(hparams)[theirs] for theirs, ours in _HPARAM_NAMES.items()
                if theirs in _plain_hparams(hparams)}
    tensor_window = int(state["pos_emb"].shape[1]) if has_pos else None
    resolved_window = resolve_window(tensor_window, _plain_hparams(hparams).get("seq_range"), window, source)
    weights = torch.softmax(state["prior_weights"].float(), 0).tolist()
    constants = state["signal_betas"].float().tolist()
    names = [s.name for s in PAPER_SIGNALS] if len(constants) == 3 else [f"signal{i}" for i in range(len(constants))]
    structure = dict(
        d_model=d_model, d_state=a_log.shape[1], expand=in_proj.shape[0] // (2 * d_model),
        dt_rank=state["generator.backbone.layers.0.mixer.mamba_fwd.dt_proj.weight"].shape[1],
        n_layers_generator=_layer_count(state, "generator.backbone"),
        n_layers_predictor=_layer_count(state, "encoder.backbone"), window=resolved_window,
        signals=[SignalTrack(n, c, w) for n, c, w in zip(names, constants, weights)],
        n_gene_features=state["pToExpr.0.weight"].shape[1] - d_model,
    )
    make = paper_hard if variant == "hard" else paper_soft
    return make(**{**structure, **settings})


def import_airs(checkpoint: str | Path, variant: str, out_dir: str | Path,
                cell_type: Optional[str] = None, window: Optional[int] = None) -> Path:
    """Read ``checkpoint`` without running its code, map it to our model, and write a zoo member
    (weights, config, data config, metrics/provenance) into ``out_dir`` atomically.

    Returns ``out_dir``. Raises CheckpointError / ValueError with the reason; nothing is written then.
    """
    path = Path(checkpoint)
    raw = read_foreign_checkpoint(path)
    state_dict = raw.get("state_dict")
    if not isinstance(state_dict, dict) or not state_dict:
        raise CheckpointError(f"{path}: no state_dict in the checkpoint (is it a Lightning .ckpt?)")
    state = {k.removeprefix("model."): v for k, v in state_dict.items() if torch.is_tensor(v)}
    cfg = infer_config(state, variant, raw.get("hyper_parameters"), window, str(path))
    model = Seq2Exp(cfg)
    model.load_state_dict(airs_to_ours(state, model.state_dict(), cfg, source=str(path)), strict=True)
    provenance = {"cell_type": cell_type, "origin": "authors' released checkpoint (divelab/AIRS Seq2Exp)",
                  "checkpoint_file": path.name, "checkpoint_sha256": sha256_of(path), "variant": variant,
                  "global_step": raw.get("global_step"), "epoch": raw.get("epoch"),
                  "note": "scores as published by the authors for this checkpoint (not re-measured here)"}
    data = {"window": cfg.window, "signals": PAPER_SIGNAL_NAMES if cfg.n_signals == 3 else None}
    out_dir = Path(out_dir)
    write_export(model, data, provenance, out_dir)
    if (out_dir.parent / "models.tsv").is_file():
        _register_in_group(out_dir, cfg, provenance)
    return out_dir


def _register_in_group(member_dir: Path, cfg: ModelConfig, provenance: dict[str, Any]) -> None:
    """List the member in its group's models.tsv so that `kipoi predict Seq2Exp/<name>` finds it (variant,
    window, signals, cell type and metrics come from the export just written)."""
    from ..zoo.source import MemberRow, upsert_member

    cell = provenance["cell_type"] or "unknown"
    upsert_member(member_dir.parent, MemberRow(
        model=member_dir.name, train_config=f"paper_{cfg.variant}",
        trained_on=f"{cell}: the authors' released Seq2Exp-{cfg.variant} checkpoint {provenance['checkpoint_file']} "
                   f"(sha256 {provenance['checkpoint_sha256']}), imported with `seq2exp import-airs`",
        note="Imported from the authors' release; inputs as in the paper: three tracks, H3K27ac + DNase "
             "bigWigs and Hi-C, 200-kb windows.",
        label="log10(CAGE + 1)",
        procedure=f"Trained by the authors (Seq2Exp-{cfg.variant}, divelab/AIRS); weights and architecture read from "
                  "their Lightning checkpoint by `seq2exp import-airs`.",
    ))



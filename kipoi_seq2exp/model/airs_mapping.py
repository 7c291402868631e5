"""State-dict mapping between the authors' released layout (AIRS ``GeneBiMambaMIRNP``, keys as in
their Lightning checkpoints without the ``model.`` prefix) and ours, both directions.

Aliases are explicit: the authors store the tied in/out projections under both ``mamba_fwd`` and
``mamba_rev``, and the hard variant's one backbone under both ``generator.backbone`` and
``encoder.backbone``. We store each tensor once; on import every alias must hold the same values.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import Tensor

from .config import ModelConfig

_TOP_LEVEL = {
    "dna_embed": "seq_input_layer",
    "signal_embed": "signal_input_layer",
    "pos_embed": "pos_emb",
    "signal_logit_weights": "prior_weights",
    "signal_constants": "signal_betas",
    "mask_head": "mask_output",
    "head": "pToExpr",
}
_BACKBONES = {"generator": "generator.backbone", "predictor": "encoder.backbone"}
_DIRECTIONS = {"fwd": "mamba_fwd", "rev": "mamba_rev"}
_TIED = re.compile(r"^(layers\.\d+\.mixer)\.(in_proj|out_proj)\.weight$")
_PER_DIRECTION = re.compile(r"^(layers\.\d+\.mixer)\.(fwd|rev)\.(.+)$")


def _backbone_key(rest: str) -> list[str]:
    """Authors' names (inside one backbone) for one of our backbone keys, primary first."""
    tied = _TIED.match(rest)
    if tied:
        layer, proj = tied.groups()
        return [f"{layer}.{d}.{proj}.weight" for d in ("mamba_fwd", "mamba_rev")]
    per_direction = _PER_DIRECTION.match(rest)
    if per_direction:
        layer, direction, name = per_direction.groups()
        return [f"{layer}.{_DIRECTIONS[direction]}.{name}"]
    return [rest]


def airs_names(key: str, cfg: ModelConfig) -> list[str]:
    """All authors' keys that hold our ``key`` (the first is the primary copy)."""
    first, _, rest = key.partition(".")
    if first in _BACKBONES:
        owners = [_BACKBONES["generator"], _BACKBONES["predictor"]] if cfg.shared_backbone else [_BACKBONES[first]]
        return [f"{owner}.{name}" for owner in owners for name in _backbone_key(rest)]
    if first not in _TOP_LEVEL:
        raise KeyError(f"no released-layout name for our key {key!r}")
    return [f"{_TOP_LEVEL[first]}.{rest}" if rest else _TOP_LEVEL[first]]


def ours_to_airs(state_dict: Mapping[str, Tensor], cfg: ModelConfig) -> dict[str, Tensor]:
    """Our state dict -> the authors' layout, every alias present (sharing the same tensor)."""
    return {name: tensor for key, tensor in state_dict.items() for name in airs_names(key, cfg)}


def airs_to_ours(airs_state: Mapping[str, Tensor], reference: Mapping[str, Tensor], cfg: ModelConfig,
                 source: str = "checkpoint") -> dict[str, Tensor]:
    """The authors' state dict -> ours, strictly: every expected key present with the expected
    shape, no unexpected key, aliases equal. ``reference`` is our model's own state dict (for
    names and shapes). Raises ValueError naming the key before anything is loaded."""
    airs_state = {k.removeprefix("model."): v for k, v in airs_state.items()}
    expected = {key: airs_names(key, cfg) for key in reference}
    wanted = {name for names in expected.values() for name in names}
    unexpected = sorted(set(airs_state) - wanted)
    if unexpected:
        hint = _variant_hint(unexpected, cfg)
        raise ValueError(f"{source}: unexpected key {unexpected[0]!r}"
                         f"{f' (and {len(unexpected) - 1} more)' if len(unexpected) > 1 else ''}; {hint}")
    ours: dict[str, Tensor] = {}
    for key, names in expected.items():
        missing = [n for n in names if n not in airs_state]
        if missing:
            raise ValueError(f"{source}: missing key {missing[0]!r} (our {key!r}, shape "
                             f"{tuple(reference[key].shape)}); {_variant_hint(missing, cfg)}")
        primary = airs_state[names[0]]
        if tuple(primary.shape) != tuple(reference[key].shape):
            raise ValueError(f"{source}: key {names[0]!r} has shape {tuple(primary.shape)}, expected "
                             f"{tuple(reference[key].shape)} for d_model={cfg.d_model}, window={cfg.window}, "
                             f"d_state={cfg.d_state}, dt_rank={cfg.resolved_dt_rank}, "
                             f"{cfg.n_signals} signal(s): the checkpoint was made with another configuration")
        for alias in names[1:]:
            if not torch.equal(airs_state[alias], primary):
                raise ValueError(f"{source}: {alias!r} should be the same tensor as {names[0]!r} (tied weights) "
                                 "but holds different values")
        ours[key] = primary
    return ours


def _variant_hint(keys: list[str], cfg: ModelConfig) -> str:
    if any(k == "pos_emb" for k in keys):
        return ("the checkpoint and the config disagree on the positional embedding: "
                f"config variant is {cfg.variant!r}; released soft has no pos_emb, hard has one")
    if any(k.startswith("encoder.backbone") for k in keys) and cfg.shared_backbone:
        return "the config shares one backbone (hard) but the checkpoint has a separate predictor (soft?)"
    layer = [int(m.group(1)) for k in keys if (m := re.search(r"layers\.(\d+)\.", k))]
    if layer:
        return (f"layer {layer[0]} does not match the config's layer counts "
                f"(generator {cfg.n_layers_generator}, predictor {cfg.n_layers_predictor})")
    return "check the variant (soft/hard) and the model size of the checkpoint against the config"

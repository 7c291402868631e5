"""The Kipoi model class of the ``Seq2Exp`` group (``defined_as: kipoi_seq2exp.zoo.Seq2ExpModel``).

Kipoi builds it from the member's ``args`` in ``model_zoo/Seq2Exp/model-template.yaml`` with the
group folder as working directory. It loads the member's exported model (safetensors, no pickle)
on the GPU when there is one, else the CPU, and predicts under ``torch.no_grad``:

- ``predict_on_batch(x)``: the expression, shape (batch,): a single array, as kipoi-veff needs;
- ``predict_activation_on_batch(x, layer="mask")`` (``kipoi predict --layer mask``): a dict with
  ``expression`` (batch,) and ``mask`` (batch, length), the learned per-base mask of the window
  (soft: the mask Beta's mean in [0, 1]; hard: 0/1), central 2 kb forced to 1, in genome orientation
  (index 0 = the window's leftmost base on the forward strand); ``layer="mask:N"`` averages it over
  N-bp bins (batch, length / N), e.g. for TSV output; ``:gene`` appended (``mask:gene``,
  ``mask:100:gene``) reverses minus-strand genes' masks so that index 0 is upstream of the gene.

Importing this module applies the kipoi / kipoi-veff compatibility shims (:mod:`.compat`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from kipoi.model import BaseModel, LayerActivationMixin

from ..model import ModelConfig, Seq2Exp
from . import compat
from .source import ZooError, check_member_dir

compat.apply()

INPUT_NAMES = ("seq", "signals", "gene_features")
MASK_LAYER = "mask"


@dataclass(frozen=True)
class VariantEffectSpec:
    """What kipoi-veff reads from ``model.postprocessing["variant_effects"]`` (kipoi 0.8.6 no longer
    parses it from model.yaml). ``use_rc`` stays off: kipoi-veff would reverse-complement the DNA
    but not the signals; reverse-complement averaging is the model's own ``rc_average``."""

    seq_input: list[str] = field(default_factory=lambda: ["seq"])
    use_rc: bool = False
    scoring_functions: list = field(default_factory=list)


def load_member_model(member_dir: str | os.PathLike) -> Seq2Exp:
    """The exported `Seq2Exp` of a member folder (eval, CPU); ZooError if the files do not load."""
    from ..train.export import load_exported

    try:
        return load_exported(member_dir)
    except (OSError, ValueError, RuntimeError) as err:
        raise ZooError(f"{member_dir}: cannot load the exported model ({type(err).__name__}: {err}). "
                       "Fix: export it again with `seq2exp export`.") from err


def check_config_matches(cfg: ModelConfig, variant: str, window: int, signals: str, where: str | os.PathLike) -> None:
    """Raise ZooError when an exported model is not the one the member declares in models.tsv."""
    exported = (cfg.variant, cfg.window, [s.name for s in cfg.signals])
    declared = (variant, int(window), [s.strip() for s in str(signals).split(",")])
    if exported != declared:
        raise ZooError(
            f"{where}: the exported model is variant {exported[0]}, window {exported[1]}, signals {exported[2]}, but "
            f"this member declares variant {declared[0]}, window {declared[1]}, signals {declared[2]} (models.tsv). "
            "Fix: export a run of the member's train config into this folder."
        )


@dataclass(frozen=True)
class MaskLayer:
    """What ``--layer`` asks for: 'mask[:N][:gene]' = the mask, averaged over N-bp bins, in gene orientation."""

    bin_size: int = 1
    gene_orientation: bool = False


def mask_layer_of(layer: str, window: int) -> MaskLayer:
    """Parse ``--layer``: 'mask' (per base, genome orientation), 'mask:N' (N-bp bins, N divides the window),
    and either with ':gene' appended (minus-strand genes' masks reversed, so index 0 is upstream)."""
    name, *options = str(layer).split(":")
    gene = bool(options) and options[-1] == "gene"
    options = options[:-1] if gene else options
    if name != MASK_LAYER or len(options) > 1 or (options and not options[0].isdigit()):
        raise ZooError(f"unknown layer {layer!r}; use 'mask' (per-base mask), 'mask:N' (mean over N-bp bins), "
                       "or either with ':gene' appended (gene orientation).")
    bin_size = int(options[0]) if options else 1
    if bin_size < 1 or window % bin_size:
        raise ZooError(f"layer {layer!r}: the bin size must be a positive divisor of the window ({window} bp).")
    return MaskLayer(bin_size, gene)


def in_gene_orientation(mask: np.ndarray, strand: np.ndarray) -> np.ndarray:
    """(batch, length) mask with the rows of minus-strand genes (``strand`` < 0, shape (batch,) or (batch, 1)) reversed."""
    minus = np.asarray(strand, dtype=np.float32).reshape(len(mask)) < 0
    return np.where(minus[:, None], mask[:, ::-1], mask)


def bin_mask(mask: np.ndarray, bin_size: int) -> np.ndarray:
    """Mean of the (batch, length) mask over consecutive ``bin_size``-bp bins: (batch, length / bin_size)."""
    batch, length = mask.shape
    return mask.reshape(batch, length // bin_size, bin_size).mean(axis=2) if bin_size > 1 else mask


class Seq2ExpModel(BaseModel, LayerActivationMixin):
    """Kipoi model of one Seq2Exp member.

    Parameters
    ----------
    member_dir
        Folder of the exported model (``seq2exp export``), relative to the working directory (Kipoi:
        the group folder) or absolute.
    variant, window, signals
        What models.tsv declares for the member; the exported config must agree.
    train_config, cell_type
        Used in the message that says how to produce missing weights.
    rc_average
        Also run the reverse-complemented window (DNA and signals flipped) and average expression
        and mask, as ``Seq2Exp.predict(rc_average=True)``.
    device
        'cuda', 'cpu', or None for the GPU when available.
    """

    MODEL_PACKAGE = "kipoi-seq2exp"

    def __init__(self, member_dir: str, variant: str, window: int, signals: str, train_config: str,
                 cell_type: str, rc_average: bool = False, device: str | None = None):
        self.member_dir = check_member_dir(member_dir, train_config, cell_type)
        self.member_name = f"{self.member_dir.parent.name}/{self.member_dir.name}"
        model = load_member_model(self.member_dir)
        check_config_matches(model.cfg, variant, window, signals, self.member_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.rc_average = bool(rc_average)
        self.postprocessing = {"variant_effects": VariantEffectSpec()}

    @property
    def window(self) -> int:
        return self.model.cfg.window

    def _tensors(self, x: dict) -> list[torch.Tensor]:
        """(batch, length, 4), (batch, length, n_signals), (batch, 9) float32 tensors on the model's device."""
        if not isinstance(x, dict) or any(name not in x for name in INPUT_NAMES):
            raise ZooError(f"{self.member_name}: inputs must be a dict with {list(INPUT_NAMES)}; "
                           f"got {list(x) if isinstance(x, dict) else type(x).__name__}.")
        length = np.shape(x["seq"])[1] if np.ndim(x["seq"]) == 3 else None
        if length != self.window:
            raise ZooError(f"{self.member_name} reads {self.window:,}-bp windows but got seq of shape "
                           f"{np.shape(x['seq'])}. "
                           f"Fix: leave the dataloader argument `window` at the member's default ({self.window}).")
        return [torch.as_tensor(np.asarray(x[name], dtype=np.float32), device=self.device) for name in INPUT_NAMES]

    def predict(self, x: dict):
        """Model output (`Seq2ExpOutput`) of a batch; no gradients are recorded. An optional
        ``blacklist`` input (batch, length) of booleans drops those bases from the mask (the
        released models' mask_regions; the dataloader does not produce one); ``signal_depth``
        (batch, n_signals), which the dataloader gives, is read by depth-normalised members."""
        blacklist = x.get("blacklist") if isinstance(x, dict) else None
        if blacklist is not None:
            blacklist = torch.as_tensor(np.asarray(blacklist, dtype=bool), device=self.device)
        depth = x.get("signal_depth") if isinstance(x, dict) else None
        if depth is not None:
            depth = torch.as_tensor(np.asarray(depth, dtype=np.float32), device=self.device)
        return self.model.predict(*self._tensors(x), blacklist=blacklist, rc_average=self.rc_average,
                                  signal_depth=depth)

    def predict_on_batch(self, x: dict) -> np.ndarray:
        """Predicted log10(CAGE + 1), shape (batch,)."""
        return self.predict(x).expression.float().cpu().numpy()

    def predict_activation_on_batch(self, x: dict, layer: str, pre_nonlinearity: bool = False) -> dict:
        """``expression`` (batch,) and the learned ``mask`` (batch, length / N) for layer 'mask[:N][:gene]'."""
        request = mask_layer_of(layer, self.window)
        if request.gene_orientation and (not isinstance(x, dict) or "strand" not in x):
            raise ZooError(f"layer {layer!r} needs the gene's strand: the dataloader's `strand` input "
                           "(kipoi_seq2exp's Seq2Exp dataloader gives it). Fix: use that dataloader, or drop ':gene'.")
        out = self.predict(x)
        mask = out.mask.float().cpu().numpy()
        if request.gene_orientation:
            mask = in_gene_orientation(mask, x["strand"])
        return {"expression": out.expression.float().cpu().numpy(), "mask": bin_mask(mask, request.bin_size)}


__all__ = ["MaskLayer", "Seq2ExpModel", "VariantEffectSpec", "load_member_model", "check_config_matches",
           "mask_layer_of", "in_gene_orientation", "bin_mask"]

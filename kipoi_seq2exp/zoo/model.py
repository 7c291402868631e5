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

All of it is `Member`'s (:mod:`.member`, no Kipoi), so ``kipoi_seq2exp.load_member`` predicts the
same numbers; the dataloader's ``channels`` input is checked against the member's channels first.

Importing this module applies the kipoi / kipoi-veff compatibility shims (:mod:`.compat`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kipoi.model import BaseModel, LayerActivationMixin

from . import compat
from .member import INPUT_NAMES, MASK_LAYER, MaskLayer, Member, bin_mask, in_gene_orientation, mask_layer_of
from .source import check_member_dir, load_member_model

compat.apply()


@dataclass(frozen=True)
class VariantEffectSpec:
    """What kipoi-veff reads from ``model.postprocessing["variant_effects"]`` (kipoi 0.8.6 no longer
    parses it from model.yaml). ``use_rc`` stays off: kipoi-veff would reverse-complement the DNA
    but not the signals; reverse-complement averaging is the model's own ``rc_average``."""

    seq_input: list[str] = field(default_factory=lambda: ["seq"])
    use_rc: bool = False
    scoring_functions: list = field(default_factory=list)


class Seq2ExpModel(Member, BaseModel, LayerActivationMixin):
    """Kipoi model of one Seq2Exp member: a `Member` (spec, model, predict calls) that Kipoi builds.

    Parameters
    ----------
    member_dir
        Folder of the exported model (``seq2exp export``), relative to the working directory (Kipoi:
        the group folder) or absolute. Variant, window and channels are read from it (models.tsv's
        columns for them are written from it, `source.export_columns`).
    train_config, cell_type
        Used in the message that says how to produce missing weights.
    rc_average
        Also run the reverse-complemented window (DNA and signals flipped) and average expression
        and mask, as ``Seq2Exp.predict(rc_average=True)``.
    device
        'cuda', 'cpu', or None for the GPU when available.
    """

    MODEL_PACKAGE = "kipoi-seq2exp"

    def __init__(self, member_dir: str, train_config: str, cell_type: str, rc_average: bool = False,
                 device: str | None = None):
        member_dir = check_member_dir(member_dir, train_config, cell_type)
        Member.__init__(self, member_dir, rc_average=rc_average, device=device)
        self.postprocessing = {"variant_effects": VariantEffectSpec()}


__all__ = ["MaskLayer", "Seq2ExpModel", "VariantEffectSpec", "load_member_model",
           "mask_layer_of", "in_gene_orientation", "bin_mask", "INPUT_NAMES", "MASK_LAYER"]

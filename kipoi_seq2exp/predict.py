"""One prediction path (issue 18): a model over the genes of a dataset, one record per gene.

`predict_genes` is the loop of ``seq2exp predict --member``, ``seq2exp evaluate``, the interpret
commands (mask-tracks, perturb, plot-locus, attribute) and the benchmarks. `predict_batch` is the
one call that turns a batch into expression and mask: `predict_genes` makes it, and so do
`zoo.Member.predict` (``kipoi predict`` and ``load_member``) and the Lightning module's
``predict_step`` (``seq2exp predict --ckpt``, whose loop stays Lightning's for its shards, devices,
precision and loader workers). A gene therefore gets the same numbers whichever front door it came
through, at the same batch composition and precision.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from .model import Seq2Exp, Seq2ExpOutput

#: The arrays of ``GeneWindows.example`` that the model reads.
MODEL_INPUTS = ("seq", "signals", "gene_features", "signal_depth")


class BatchPredictor(Protocol):
    """A loaded member (`zoo.Member`, Kipoi's `zoo.Seq2ExpModel`): predicts a batch of numpy inputs."""

    def predict(self, x: dict) -> Seq2ExpOutput: ...


@dataclass
class GenePrediction:
    """One gene's inputs (as the dataset gives them) and the model's prediction on them."""

    index: int  # row of the dataset's gene table
    gene_id: str
    inputs: dict[str, np.ndarray]  # seq (L, 4), signals (L, n_signals), gene_features (9,), signal_depth (n_signals,)
    expression: float  # predicted log10(expression + 1)
    mask: np.ndarray | None  # (L,) float32, genome orientation (index 0 = the window's leftmost base); None unasked


def predict_batch(model: Seq2Exp, inputs: Mapping[str, Tensor | np.ndarray], rc_average: bool = False) -> Seq2ExpOutput:
    """Eval-mode output of one batch (soft mask = the Beta's mean, hard = 0/1), no gradients recorded.

    Parameters
    ----------
    inputs : seq (batch, L, 4), signals (batch, L, n_signals), gene_features (batch, 9); optional
        blacklist (batch, L) bool (bases the mask drops; the released models' mask_regions) and
        signal_depth (batch, n_signals) (read by tracks with ``normalise: depth``). Arrays move to the
        model's device; tensors already there are used as they are.
    rc_average : also run the reverse-complemented window and average expression and mask
    """
    device = next(model.parameters()).device

    def tensor(name: str) -> Tensor | None:
        value = inputs.get(name)
        return None if value is None else torch.as_tensor(value, device=device)

    return model.predict(tensor("seq"), tensor("signals"), tensor("gene_features"), tensor("blacklist"),
                         rc_average=rc_average, signal_depth=tensor("signal_depth"))


def stack_inputs(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batch per-window inputs: each name's arrays stacked on a new axis 0."""
    return {name: np.stack([item[name] for item in items]) for name in items[0]}


def predict_genes(model: Seq2Exp | BatchPredictor, dataset, batch_size: int = 8, masks: bool = True,
                  progress: bool = True, indices: Sequence[int] | None = None,
                  desc: str = "genes") -> Iterator[GenePrediction]:
    """Predict the genes of ``dataset`` in batches of ``batch_size`` windows, one record per gene, in order.

    Records come one at a time, so a genome's masks (18,377 genes x 200 kb) never sit in memory together.

    Parameters
    ----------
    model : a plain `Seq2Exp` (a checkpoint's or an export's; `predict_batch` on its device), or a
        loaded member whose ``predict`` adds its channel check and ``rc_average``
    dataset : anything with ``windows`` (`GeneWindows`) and ``indices`` (its rows of the gene table):
        `WindowDataset` (one split), `GeneInputs` or the Kipoi dataloader (every gene)
    masks : keep each gene's (L,) mask; False: ``mask`` is None
    progress : a tqdm bar over genes
    indices : rows of the gene table to predict, in this order (default ``dataset.indices``)
    """
    predict = (lambda x: predict_batch(model, x)) if isinstance(model, Seq2Exp) else model.predict
    windows = dataset.windows
    rows = list(dataset.indices if indices is None else indices)
    bar = tqdm(total=len(rows), desc=desc, unit="gene", disable=not progress)
    for first in range(0, len(rows), batch_size):
        batch = rows[first:first + batch_size]
        inputs = [_model_inputs(windows.example(index)) for index in batch]
        out = predict(stack_inputs(inputs))
        expression = out.expression.float().cpu().numpy()
        mask = out.mask.float().cpu().numpy() if masks else [None] * len(batch)
        for row, index in enumerate(batch):
            yield GenePrediction(index, windows.gene_list[index].gene_id, inputs[row], float(expression[row]),
                                 mask[row])
        bar.update(len(batch))
    bar.close()


def _model_inputs(example: dict) -> dict[str, np.ndarray]:
    """The arrays of ``GeneWindows.example`` that the model reads (drops the window record)."""
    return {name: example[name] for name in MODEL_INPUTS}


__all__ = ["BatchPredictor", "GenePrediction", "MODEL_INPUTS", "predict_batch", "predict_genes", "stack_inputs"]

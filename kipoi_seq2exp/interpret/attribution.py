"""Base attribution over a region of a gene's window: which bases of the DNA the prediction reads.

- **gradient x input** (``grad``): d predicted log10 expression / d one-hot DNA at the base present,
  one backward pass of the member in eval mode (mask = the Beta's mean, as it predicts); the
  compiled scan's backward is used wherever the forward uses it.
- **in-silico mutagenesis** (``ism``): every base of the region set to each of its 3 other bases
  and the gene predicted again, through the member's own ``predict`` (the path of `perturb`),
  ``batch_size`` mutated windows per forward. delta = mutant - reference (log10 expression).
  A substitution changes the DNA stem's convolution only within ``stem_kernel // 2`` bases, so the
  stem is recomputed only on the tokens around the mutated base and copied from the reference
  window elsewhere (`LocalStem`); everything after the stem runs as in any prediction.

Per-base track value: grad x input; for ISM the reference base's own effect, ref - mean over its
3 alternatives = -mean(delta) (positive: the base present supports expression). Bases that are N
(or padding past a chromosome end) have no value.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ..model.stem import DnaStem
from ..predict import GenePrediction, stack_inputs
from .intervals import Interval

METHODS = ("grad", "ism")
METHOD_NAMES = {"grad": "gradient x input", "ism": "in-silico mutagenesis (ref - mean of 3 alternatives)"}
BASES = "ACGT"
#: Default ISM region: this many bases centred on the TSS (grad: the whole window, one backward).
ISM_DEFAULT_LENGTH = 1_000


@dataclass
class Attribution:
    """One gene's per-base attribution over [start, end) on ``chrom`` (genome coordinates, 0-based)."""

    gene_id: str
    chrom: str
    start: int
    end: int
    method: str  # 'grad' or 'ism'
    values: np.ndarray  # (end - start,) float32 track value, NaN at N
    expression: float  # the gene's predicted log10(expression + 1)
    sequence: str  # the region's reference bases (A, C, G, T, N)
    deltas: np.ndarray | None = None  # ism: (end - start, 4) delta per alternative A, C, G, T; 0 at the reference
    interval: Interval | None = None  # of the expression, from mask samples (`intervals`)


def parse_region(text: str) -> tuple[str, int, int]:
    """'chr1:10,001-11,000' (1-based, inclusive, as IGV and samtools write it) -> ('chr1', 10000, 11000),
    0-based half-open."""
    match = re.fullmatch(r"\s*([^:\s]+):([\d,]+)-([\d,]+)\s*", text)
    start, end = (int(match.group(i).replace(",", "")) for i in (2, 3)) if match else (0, -1)
    if not match or not 1 <= start <= end:
        raise ValueError(f"region {text!r}: expected chrom:start-end, 1-based inclusive, start <= end (e.g. "
                         f"chr22:25,471-26,470). Fix: write the region as IGV shows it.")
    return match.group(1), start - 1, end


def region_span(window, region: tuple[str, int, int] | None, method: str) -> tuple[int, int]:
    """The region as [start, end) window indices; None = the whole window (grad) or the central
    `ISM_DEFAULT_LENGTH` bases (ism). ``window`` is the gene's `Window` (chrom, start, length)."""
    if region is None:
        half = ISM_DEFAULT_LENGTH // 2
        return (0, window.length) if method == "grad" else (window.length // 2 - half, window.length // 2 + half)
    chrom, start, end = region
    if chrom != window.chrom or start < window.start or end > window.start + window.length:
        raise ValueError(f"region {chrom}:{start + 1:,}-{end:,} is not inside the gene's window "
                         f"{window.chrom}:{window.start + 1:,}-{window.start + window.length:,}. Fix: choose a region "
                         f"inside it, or leave --region out.")
    return start - window.start, end - window.start


def grad_x_input(net: nn.Module, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """(L,) gradient x input of one window's one-hot DNA: d expression / d seq at the base present.

    ``net`` is a `Seq2Exp` (or any module with its forward signature); ``inputs`` one window's
    arrays as the dataloader gives them (seq (L, 4), signals, gene_features, signal_depth).
    """
    from .influence import expression_gradients

    device = next(net.parameters()).device
    tensor = lambda name: torch.as_tensor(np.asarray(inputs[name], dtype=np.float32), device=device)[None]  # noqa: E731
    depth = tensor("signal_depth") if "signal_depth" in inputs else None
    seq = tensor("seq")
    seq_grad, _ = expression_gradients(net, seq, tensor("signals"), tensor("gene_features"), depth)
    return (seq_grad * seq).sum(dim=-1)[0].float().cpu().numpy()


class LocalStem(nn.Module):
    """The member's `DnaStem`, recomputed only around the one base a window differs from the reference.

    A batch whose every row differs from ``reference`` in at most one base gets the reference's
    tokens, with the tokens that base's convolution reaches (the base's token and its neighbours)
    recomputed from a 5-token slice, zero-padded past the window as the stem's own padding is. Any
    other batch (a reverse complement, a wider edit) runs the stem as usual.
    """

    def __init__(self, stem: DnaStem, reference: Tensor):
        super().__init__()
        self.stem = stem
        self.reference = reference  # (L, 4)
        self.tokens = stem(reference[None])  # (1, T, width)

    def forward(self, seq: Tensor) -> Tensor:
        differs = (seq != self.reference).any(dim=-1)  # (b, L)
        counts = differs.sum(dim=1)
        if seq.shape[1:] != self.reference.shape or bool((counts > 1).any()):
            return self.stem(seq)
        resolution, n_tokens = self.stem.resolution, self.tokens.shape[1]
        out = self.tokens.expand(len(seq), -1, -1).clone()
        rows = torch.nonzero(counts == 1)[:, 0]
        if len(rows) == 0:
            return out
        token = differs[rows].to(torch.int8).argmax(dim=1) // resolution  # (n,)
        padded = F.pad(seq[rows], (0, 0, 2 * resolution, 2 * resolution))  # two zero tokens each side
        offsets = torch.arange(5 * resolution, device=seq.device)
        local = self.stem(padded[torch.arange(len(rows), device=seq.device)[:, None],
                                 token[:, None] * resolution + offsets])  # (n, 5, width): tokens t-2 .. t+2
        for shift in (-1, 0, 1):
            inside = (token + shift >= 0) & (token + shift < n_tokens)
            out[rows[inside], token[inside] + shift] = local[inside, 2 + shift]
        return out


@contextmanager
def reused_stem(net: nn.Module, reference_seq: np.ndarray) -> Iterator[None]:
    """Within the block, ``net``'s DNA stem is a `LocalStem` of ``reference_seq`` (L, 4) when the stem
    is a token stem whose kernel reaches at most one token each side; else unchanged."""
    stem = getattr(net, "dna_embed", None)
    if not isinstance(stem, DnaStem) or stem.conv.kernel_size[0] // 2 > stem.resolution:
        yield
        return
    device = next(net.parameters()).device
    with torch.no_grad():
        net.dna_embed = LocalStem(stem, torch.as_tensor(np.asarray(reference_seq, dtype=np.float32), device=device))
    try:
        yield
    finally:
        net.dna_embed = stem


def substitutions(seq: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """(n, 2) [window index, alternative base] of every single-base substitution in ``span``, base by
    base, alternatives in A, C, G, T order; N bases (all-zero rows) have none."""
    start, end = span
    window = np.asarray(seq[start:end])
    known = window.sum(axis=1) > 0
    alternatives = (window == 0) & known[:, None]  # (n, 4)
    position, base = np.nonzero(alternatives)
    return np.stack([position + start, base], axis=1)


def mutate(seq: np.ndarray, position: int, base: int) -> np.ndarray:
    """A copy of one-hot ``seq`` (L, 4) with ``position`` set to ``base`` (0-3 = A, C, G, T)."""
    out = seq.copy()
    out[position] = 0
    out[position, base] = 1
    return out


def in_silico_mutagenesis(model, prediction: GenePrediction, span: tuple[int, int], batch_size: int = 64,
                          progress: bool = True) -> np.ndarray:
    """Every substitution of ``span`` (window indices), predicted ``batch_size`` windows at a time.

    Parameters
    ----------
    model : a `Seq2ExpModel` (its ``predict``, as `perturb` uses it) with its `Seq2Exp` as ``.model``
    prediction : the gene's reference pass (`predict_genes`)

    Returns
    -------
    (end - start, 4) float delta log10 expression (mutant - reference) per base and alternative
    A, C, G, T; 0 at the reference base, NaN for every alternative of an N base
    """
    seq = prediction.inputs["seq"]
    start, end = span
    deltas = np.full((end - start, 4), np.nan)
    deltas[np.asarray(seq[start:end]) > 0] = 0.0
    edits = substitutions(seq, span)
    bar = tqdm(total=len(edits), desc="ism", unit="mutant", disable=not progress)
    with reused_stem(model.model, seq):
        for first in range(0, len(edits), batch_size):
            chunk = edits[first:first + batch_size]
            copies = [{**prediction.inputs, "seq": mutate(seq, position, base)} for position, base in chunk]
            expression = model.predict(stack_inputs(copies)).expression.double().cpu().numpy()
            deltas[chunk[:, 0] - start, chunk[:, 1]] = expression - prediction.expression
            bar.update(len(chunk))
    bar.close()
    return deltas


def ism_scores(deltas: np.ndarray) -> np.ndarray:
    """(n,) the reference base's own effect, -mean over its 3 alternatives of delta; NaN at N."""
    return (-deltas.sum(axis=1) / 3).astype(np.float32)


def attribute_gene(model, dataset, prediction: GenePrediction, method: str,
                   region: tuple[str, int, int] | None = None, batch_size: int = 64,
                   progress: bool = True) -> Attribution:
    """Attribution of one predicted gene over ``region`` (default: `region_span`)."""
    if method not in METHODS:
        raise ValueError(f"attribution method {method!r}: use one of {METHODS}.")
    window = dataset.windows.window(prediction.index)
    gene_id = dataset.windows.gene_list[prediction.index].gene_id
    start, end = region_span(window, region, method)
    if method == "ism":
        deltas = in_silico_mutagenesis(model, prediction, (start, end), batch_size, progress)
        values = ism_scores(deltas)
    else:
        if getattr(model, "rc_average", False):
            raise ValueError(f"{gene_id}: gradient x input of an rc_average member would be the gradient of one "
                             f"strand only. Fix: use --method ism, which predicts as the member does.")
        deltas = None
        values = grad_x_input(model.model, prediction.inputs)[start:end].astype(np.float32)
        values[np.asarray(prediction.inputs["seq"][start:end]).sum(axis=1) == 0] = np.nan
    return Attribution(gene_id, window.chrom, window.start + start, window.start + end, method, values,
                       prediction.expression, bases(prediction.inputs["seq"][start:end]), deltas)


def bases(seq: np.ndarray) -> str:
    """One-hot (n, 4) DNA as a string; all-zero rows are N."""
    seq = np.asarray(seq)
    return "".join(np.where(seq.sum(axis=1) > 0, np.array(list(BASES))[seq.argmax(axis=1)], "N"))


def write_attributions(attributions: Sequence[Attribution], out_dir: str | os.PathLike,
                       chrom_sizes: Mapping[str, int]) -> Path:
    """Write each gene's track and a summary; returns the summary's path. In ``out_dir``:

    - ``GENE_ID.METHOD.bw``: the per-base values at genome coordinates (N bases left out);
    - ``GENE_ID.ism.tsv`` (ism): chrom, start (0-based), ref base, delta for A, C, G, T, gene_id;
    - ``tracks.txt``: one UCSC/IGV track line per bigWig, named 'GENE_ID METHOD';
    - ``attribution.tsv``: per gene, gene_id, chrom, start, end, method, predicted expression (with
      intervals: expression_low, expression_high), bigWig.
    """
    from ..atomic import write_text_atomic
    from ..evaluate.export import masks_to_bigwig
    from ..evaluate.windows import GeneWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, tracks = [], []
    for a in attributions:
        bigwig = out / f"{a.gene_id}.{a.method}.bw"
        masks_to_bigwig([GeneWindow(a.gene_id, a.chrom, a.start, a.end - a.start)], {a.gene_id: a.values},
                        chrom_sizes, bigwig)
        tracks.append(f'track type=bigWig name="{a.gene_id} {a.method}" description="Seq2Exp {METHOD_NAMES[a.method]} '
                      f'for {a.gene_id}, {a.chrom}:{a.start + 1}-{a.end}" bigDataUrl={bigwig.name}')
        low, high = (a.interval.low, a.interval.high) if a.interval else (np.nan, np.nan)
        rows.append((a.gene_id, a.chrom, a.start, a.end, a.method, a.expression, low, high, bigwig.name))
        if a.deltas is not None:
            write_text_atomic(out / f"{a.gene_id}.ism.tsv", ism_table(a).to_csv(sep="\t", index=False,
                                                                               float_format="%.7g"))
    write_text_atomic(out / "tracks.txt", "\n".join(tracks) + "\n")
    summary = pd.DataFrame(rows, columns=["gene_id", "chrom", "start", "end", "method", "expression", "expression_low",
                                          "expression_high", "bigwig"])
    if summary["expression_low"].isna().all():
        summary = summary.drop(columns=["expression_low", "expression_high"])
    write_text_atomic(out / "attribution.tsv", summary.to_csv(sep="\t", index=False, float_format="%.7g"))
    return out / "attribution.tsv"


def ism_table(attribution: Attribution) -> pd.DataFrame:
    """One row per base of an ISM attribution: chrom, start, ref (A/C/G/T/N), delta A, C, G, T, gene_id."""
    table = pd.DataFrame({"chrom": attribution.chrom, "start": np.arange(attribution.start, attribution.end),
                          "ref": list(attribution.sequence)})
    for column, base in enumerate(BASES):
        table[base] = attribution.deltas[:, column]
    table["gene_id"] = attribution.gene_id
    return table


__all__ = ["Attribution", "BASES", "bases", "ISM_DEFAULT_LENGTH", "LocalStem", "METHODS", "attribute_gene",
           "grad_x_input", "in_silico_mutagenesis", "ism_scores", "ism_table", "mutate", "parse_region", "region_span",
           "reused_stem", "substitutions", "write_attributions"]

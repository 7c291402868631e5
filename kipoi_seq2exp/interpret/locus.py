"""A locus plot for any gene of any member: what the model read, what it selected, and what each
candidate element does to its prediction.

Rows, top to bottom: each signal track as the model read it (raw values; Hi-C as its contact with
the TSS), optionally a base attribution (`attribution`: grad x input or ISM), the learned mask, and
(with candidate elements) one lane of elements labelled with their in-silico CRISPRi effect
(`perturb.perturb_gene`, delta log10 expression). The TSS is dashed, the forced centre shaded; the
x axis is kb from the TSS. PNG or SVG by the file's suffix.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..evaluate.report import LocusView, plot_locus
from ..predict import GenePrediction, predict_genes
from .attribution import Attribution, attribute_gene, write_attributions
from .intervals import LEVEL, Interval, expression_interval
from .perturb import Element, ElementIndex, perturb_gene
from .tracks import gene_rows, gene_window

PLOT_SUFFIXES = (".png", ".svg")
LANE_NAMES = {"grad": "grad x input", "ism": "ISM\n(ref - mean alt)"}


def locus_view_of(model, dataset, prediction: GenePrediction, elements: Sequence[Element] = (),
                  mode: str = "background", batch_size: int = 8,
                  attribution: Attribution | None = None, interval: Interval | None = None) -> LocusView:
    """The `LocusView` of one predicted gene: its input tracks, its mask, its elements' effects and,
    given, a base attribution lane (0 outside the attributed region) and the expression's interval."""
    windows = dataset.windows
    window = gene_window(dataset, prediction.index)
    spread = f" [{interval.low:.3f}, {interval.high:.3f}] {LEVEL:.0%}" if interval else ""
    view = LocusView(window, title=f"{window.gene_id}  {window.chrom}:{window.start:,}-{window.start + window.length:,}"
                                   f"  predicted {prediction.expression:.3f}{spread} log10  "
                                   f"(qc {windows.qc[prediction.index].label})")
    for channel, track in enumerate(windows.config.tracks):
        view.tracks[track.name] = prediction.inputs["signals"][:, channel]
    view.masks["learned mask"] = prediction.mask
    if attribution is not None:
        lane = np.zeros(window.length, dtype=np.float32)
        lane[attribution.start - window.start:attribution.end - window.start] = np.nan_to_num(attribution.values)
        view.tracks[LANE_NAMES[attribution.method]] = lane
    effects = perturb_gene(model, dataset, prediction, elements, mode, batch_size=batch_size)
    if effects:
        view.intervals["elements\n(delta log10 if silenced)"] = [
            (max(e.start, window.start) - window.start, min(e.end, window.start + window.length) - window.start,
             f"{e.delta:+.3f}") for e in effects]
    return view


def plot_genes(model, dataset, gene_ids: Sequence[str], out_dir: str | os.PathLike, suffix: str = ".png",
               elements: ElementIndex | None = None, mode: str = "background", batch_size: int = 8,
               attribution: str | None = None, region: tuple[str, int, int] | None = None,
               ism_batch: int = 64, progress: bool = False, samples: int = 0, seed: int = 0) -> list[Path]:
    """One locus plot per gene of ``gene_ids`` (all of the dataloader's genes when empty), in ``out_dir``.

    With ``attribution`` ('grad' or 'ism'; `attribution.attribute_gene` over ``region``) each plot gets
    an attribution lane, and ``out_dir`` the tracks and summary of `attribution.write_attributions`.
    With ``samples`` > 0 each title (and the summary) carries the expression's interval over that many
    mask samples (`intervals.expression_interval`, seeded by ``seed``).

    Raises
    ------
    ValueError
        A gene id the dataloader's gene table does not have, or an unknown suffix.
    """
    if suffix not in PLOT_SUFFIXES:
        raise ValueError(f"plot format {suffix!r}: use one of {PLOT_SUFFIXES}.")
    wanted = set(gene_rows(dataset, gene_ids))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, attributions = [], []
    # only the wanted genes are predicted: a plot asks for a few genes of what may be a genome-wide table
    for prediction in predict_genes(model, dataset, batch_size, progress=False, indices=sorted(wanted)):
        window = dataset.windows.window(prediction.index)
        candidates = elements.touching(window.chrom, window.start, window.end) if elements is not None else []
        gene_id = dataset.windows.gene_list[prediction.index].gene_id
        interval = (expression_interval(model, prediction.inputs, gene_id, samples, seed, batch_size) if samples
                    else None)
        if attribution is not None:
            attributions.append(attribute_gene(model, dataset, prediction, attribution, region, ism_batch, progress))
            attributions[-1].interval = interval
        view = locus_view_of(model, dataset, prediction, candidates, mode, batch_size,
                             attributions[-1] if attribution is not None else None, interval)
        paths.append(plot_locus(view, out / f"{view.window.gene_id}{suffix}"))
    if attributions:
        sizes = {a.chrom: dataset.windows.fasta.chrom_length(a.chrom) for a in attributions}
        write_attributions(attributions, out, sizes)
    return paths


__all__ = ["PLOT_SUFFIXES", "locus_view_of", "plot_genes"]

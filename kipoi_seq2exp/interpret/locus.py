"""A locus plot for any gene of any member: what the model read, what it selected, and what each
candidate element does to its prediction.

Rows, top to bottom: each signal track as the model read it (raw values; Hi-C as its contact with
the TSS), the learned mask, and (with candidate elements) one lane of elements labelled with their
in-silico CRISPRi effect (`perturb.perturb_gene`, delta log10 expression). The TSS is dashed, the
forced centre shaded; the x axis is kb from the TSS. PNG or SVG by the file's suffix.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..evaluate.report import LocusView, plot_locus
from .perturb import Element, ElementIndex, perturb_gene
from .tracks import GenePrediction, gene_predictions, gene_window

PLOT_SUFFIXES = (".png", ".svg")


def locus_view_of(model, dataset, prediction: GenePrediction, elements: Sequence[Element] = (),
                  mode: str = "background", batch_size: int = 8) -> LocusView:
    """The `LocusView` of one predicted gene: its input tracks, its mask and its elements' effects."""
    windows = dataset.windows
    window = gene_window(dataset, prediction.index)
    view = LocusView(window, title=f"{window.gene_id}  {window.chrom}:{window.start:,}-{window.start + window.length:,}"
                                   f"  predicted {prediction.expression:.3f} log10  (qc {windows.qc[prediction.index].label})")
    for channel, track in enumerate(windows.config.tracks):
        view.tracks[track.name] = prediction.inputs["signals"][:, channel]
    view.masks["learned mask"] = prediction.mask
    effects = perturb_gene(model, dataset, prediction, elements, mode, batch_size=batch_size)
    if effects:
        view.intervals["elements\n(delta log10 if silenced)"] = [
            (max(e.start, window.start) - window.start, min(e.end, window.start + window.length) - window.start,
             f"{e.delta:+.3f}") for e in effects]
    return view


def plot_genes(model, dataset, gene_ids: Sequence[str], out_dir: str | os.PathLike, suffix: str = ".png",
               elements: ElementIndex | None = None, mode: str = "background", batch_size: int = 8) -> list[Path]:
    """One locus plot per gene of ``gene_ids`` (all of the dataloader's genes when empty), in ``out_dir``.

    Raises
    ------
    ValueError
        A gene id the dataloader's gene table does not have, or an unknown suffix.
    """
    if suffix not in PLOT_SUFFIXES:
        raise ValueError(f"plot format {suffix!r}: use one of {PLOT_SUFFIXES}.")
    known = {gene.gene_id: index for index, gene in enumerate(dataset.windows.gene_list)}
    missing = [g for g in gene_ids if g not in known]
    if missing:
        raise ValueError(f"genes {missing[:5]} are not in the dataloader's gene table "
                         f"({len(known)} genes, e.g. {list(known)[:3]}). Fix: use gene ids of that table.")
    wanted = {known[g] for g in gene_ids} if gene_ids else set(known.values())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    # only the wanted genes are predicted: a plot asks for a few genes of what may be a genome-wide table
    for prediction in gene_predictions(model, dataset, batch_size, progress=False, indices=sorted(wanted)):
        window = dataset.windows.window(prediction.index)
        candidates = elements.touching(window.chrom, window.start, window.end) if elements is not None else []
        view = locus_view_of(model, dataset, prediction, candidates, mode, batch_size)
        paths.append(plot_locus(view, out / f"{view.window.gene_id}{suffix}"))
    return paths


__all__ = ["PLOT_SUFFIXES", "locus_view_of", "plot_genes"]

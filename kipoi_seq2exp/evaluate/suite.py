"""One evaluation run: the model (if given) and the baselines on the same genes, then the report.

``run_evaluation`` is what ``seq2exp evaluate`` calls once the model has produced its
predictions; with ``predictions=None`` it scores the baselines alone.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import hictkpy
import numpy as np
import pandas as pd
import pyBigWig

from ..atomic import write_text_atomic
from .baselines import (Intervals, call_macs3_peaks, interval_mask, macs3_command, macs3_predictions,
                        oracle_predictions, read_signal, signal_predictions)
from .export import masks_to_bed, masks_to_bigwig
from .metrics import CENTRE_LENGTH, Predictions, evaluate_masks
from .report import LocusView, plot_locus, write_metrics_table
from .windows import GeneWindow, TruthElement, as_windows, read_chrom_sizes, read_truth_bed
from ..simulate import SIM_FILES, element_lanes


def run_evaluation(dataset_or_windows: object, predictions: Predictions | None, *, truth_bed: str | Path,
                   chrom_sizes: str | Path | Mapping[str, int], dnase_bigwig: str | Path, out_dir: str | Path,
                   targets: Mapping[str, float] | None = None, method: str = "seq2exp",
                   h3k27ac_bigwig: str | Path | None = None, hic_cool: str | Path | None = None,
                   loci: Sequence[str] = (), macs3_cutoff: float | None = None, macs3_cutoff_fold: float = 3.0,
                   threshold: float = 0.5, centre_length: int = CENTRE_LENGTH,
                   extra_intervals: Mapping[str, Sequence[tuple[str, int, int, str]]] | None = None,
                   elements: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score the model and the baselines, write metrics.{csv,md}, exports and locus PNGs.

    Parameters
    ----------
    dataset_or_windows : the genes' windows (see ``windows.as_windows``)
    predictions : gene_id -> (predicted log10(expression + 1), mask (length,)); None = baselines only
    targets : gene_id -> observed log10(expression + 1)
    loci : gene ids to draw, one PNG each (``locus_<gene_id>.png``)
    extra_intervals : more lanes for the locus plots (see ``locus_view``)
    elements : candidate elements with kinds (simulation): adds the enhancer-vs-decoy AUROC

    Writes to ``out_dir``: metrics.csv, metrics.md, macs3_peaks.bed, and with predictions
    ``<method>_mask.bw`` (max over overlapping windows) and ``<method>_elements.bed`` (runs of
    mask >= threshold outside the forced centre).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    windows = as_windows(dataset_or_windows)
    if predictions is not None:  # the baselines score exactly the genes the model predicted
        windows = [window for window in windows if window.gene_id in predictions]
    by_gene = {window.gene_id: window for window in windows}
    unknown = [gene_id for gene_id in loci if gene_id not in by_gene]
    if unknown:
        raise KeyError(f"loci {unknown} are not among the evaluated genes")
    truth = read_truth_bed(truth_bed)
    sizes = chrom_sizes if isinstance(chrom_sizes, Mapping) else read_chrom_sizes(chrom_sizes)
    common = dict(truth_bed=truth, chrom_sizes=sizes, threshold=threshold, centre_length=centre_length,
                  elements=elements)
    tables = []
    if predictions is not None:
        tables.append(evaluate_masks(windows, predictions, targets=targets, method=method, **common))
    peaks = _macs3_peaks_or_warn(dnase_bigwig, windows, sizes, macs3_cutoff, macs3_cutoff_fold)
    if peaks is not None:
        tables.append(evaluate_masks(windows, macs3_predictions(windows, peaks, centre_length),
                                     method="macs3_dnase_peaks", **common))
        _write_peaks(peaks, out_dir / "macs3_peaks.bed")
    tables.append(evaluate_masks(windows, signal_predictions(windows, dnase_bigwig, sizes), method="dnase_ranking",
                                 ranking_only=True, **common))
    tables.append(evaluate_masks(windows, oracle_predictions(windows, truth, centre_length), method="oracle", **common))
    table = pd.concat(tables, ignore_index=True)
    write_metrics_table(table, out_dir)
    if predictions is not None:
        masks = {gene_id: mask for gene_id, (_, mask) in predictions.items() if mask is not None}
        masks_to_bigwig(windows, masks, sizes, out_dir / f"{method}_mask.bw")
        masks_to_bed(windows, masks, sizes, out_dir / f"{method}_elements.bed", threshold=threshold,
                     drop_centre=True, centre_length=centre_length, track_name=f"{method}_elements")
    for gene_id in loci:
        model_mask = None if predictions is None or gene_id not in predictions else predictions[gene_id][1]
        view = locus_view(by_gene[gene_id], sizes, truth, dnase_bigwig=dnase_bigwig, h3k27ac_bigwig=h3k27ac_bigwig,
                          hic_cool=hic_cool, peaks=peaks, masks={method: model_mask} if model_mask is not None else {},
                          extra_intervals=extra_intervals)
        plot_locus(view, out_dir / f"locus_{gene_id}.png", centre_length)
    return table


def simulated_inputs(sim_dir: str | Path) -> dict[str, object]:
    """``run_evaluation`` keyword arguments for a simulated dataset folder (e.g. ``embedded_dir()``).

    Includes ``targets`` (log10(count + 1) from expression.tsv) and the decoy lanes for the plots.
    """
    expression = pd.read_csv(SIM_FILES.path(sim_dir, "expression"), sep="\t")
    return {
        "truth_bed": SIM_FILES.path(sim_dir, "causal_elements"),
        "chrom_sizes": read_chrom_sizes(SIM_FILES.path(sim_dir, "fasta_index")),
        "dnase_bigwig": SIM_FILES.path(sim_dir, "dnase"),
        "h3k27ac_bigwig": SIM_FILES.path(sim_dir, "h3k27ac"),
        "hic_cool": SIM_FILES.path(sim_dir, "hic"),
        "targets": dict(zip(expression["gene_id"], np.log10(expression["expression"].to_numpy() + 1.0))),
        "extra_intervals": element_lanes(sim_dir),
        "elements": pd.read_csv(SIM_FILES.path(sim_dir, "elements"), sep="\t"),
    }


def locus_view(window: GeneWindow, chrom_sizes: Mapping[str, int], truth: Mapping[str, Sequence[TruthElement]], *,
               dnase_bigwig: str | Path | None = None, h3k27ac_bigwig: str | Path | None = None,
               hic_cool: str | Path | None = None, peaks: Intervals | None = None,
               masks: Mapping[str, np.ndarray] | None = None,
               extra_intervals: Mapping[str, Sequence[tuple[str, int, int, str]]] | None = None) -> LocusView:
    """Gather one gene's tracks, masks and element lanes for ``plot_locus``.

    ``extra_intervals``: more lanes, lane name -> [(chrom, start, end, label)] (e.g. the
    simulation's decoys).
    """
    size = chrom_sizes[window.chrom]
    view = LocusView(window)
    for name, path in (("DNase", dnase_bigwig), ("H3K27ac", h3k27ac_bigwig)):
        if path is not None:
            with pyBigWig.open(str(path)) as bigwig:
                view.tracks[name] = read_signal(bigwig, window, size)
    if hic_cool is not None:
        view.tracks["Hi-C to TSS\nlog10(1+x)"] = np.log10(1.0 + hic_contact_to_tss(hic_cool, window, size))
    view.masks.update(masks or {})
    if peaks is not None:
        view.masks["MACS3 peaks"] = interval_mask(window, peaks)
    others = [e for gene_id, elements in truth.items() if gene_id != window.gene_id for e in elements]
    view.intervals["causal, this gene\n(log10 effect)"] = _lane(window, truth.get(window.gene_id, ()), True)
    view.intervals["causal, other genes"] = _lane(window, _unique(others), False)
    for lane, intervals in (extra_intervals or {}).items():
        view.intervals[lane] = [(max(s, window.start) - window.start, min(e, window.end) - window.start, label)
                                for chrom, s, e, label in intervals
                                if chrom == window.chrom and e > window.start and s < window.end]
    return view


def hic_contact_to_tss(cool_path: str | Path, window: GeneWindow, chrom_size: int) -> np.ndarray:
    """(length,) observed contact between each base's bin and the TSS bin (0 outside the chromosome)."""
    cool = hictkpy.File(str(cool_path))
    resolution = cool.resolution()
    tss_bin = min(window.tss, chrom_size - 1) // resolution
    start, end = max(window.start, 0), min(window.end, chrom_size)
    contact = np.zeros(window.length, dtype=np.float32)
    if end <= start:
        return contact
    first_bin, last_bin = start // resolution, (end - 1) // resolution
    row = cool.fetch(f"{window.chrom}:{first_bin * resolution}-{min((last_bin + 1) * resolution, chrom_size)}",
                     f"{window.chrom}:{tss_bin * resolution}-{min((tss_bin + 1) * resolution, chrom_size)}"
                     ).to_numpy()[:, 0]
    positions = np.arange(start, end)
    contact[start - window.start:end - window.start] = row[positions // resolution - first_bin]
    return contact


def _lane(window: GeneWindow, elements: Sequence[TruthElement], with_effect: bool) -> list[tuple[int, int, str]]:
    lane = []
    for element in elements:
        start, end = max(element.start, window.start), min(element.end, window.end)
        if element.chrom == window.chrom and end > start:
            label = f"{element.effect:.2f}" if with_effect and np.isfinite(element.effect) else ""
            lane.append((start - window.start, end - window.start, label))
    return lane


def _unique(elements: Sequence[TruthElement]) -> list[TruthElement]:
    seen, out = set(), []
    for element in elements:
        if element.element_id not in seen:
            seen.add(element.element_id)
            out.append(element)
    return out


def _macs3_peaks_or_warn(dnase_bigwig: str | Path, windows: Sequence[GeneWindow], sizes: Mapping[str, int],
                         cutoff: float | None, cutoff_fold: float) -> Intervals | None:
    try:
        macs3_command()
    except RuntimeError as error:
        warnings.warn(f"MACS3 baseline skipped: {error}", stacklevel=3)
        return None
    peaks, _ = call_macs3_peaks(dnase_bigwig, windows, sizes, cutoff=cutoff, cutoff_fold=cutoff_fold)
    return peaks


def _write_peaks(peaks: Intervals, path: Path) -> None:
    rows = sorted((chrom, int(s), int(e)) for chrom, spans in peaks.items() for s, e in spans)
    lines = ['track name="macs3_dnase_peaks" description="MACS3 bdgpeakcall on the DNase signal"']
    lines += [f"{chrom}\t{start}\t{end}\tpeak{i + 1}" for i, (chrom, start, end) in enumerate(rows)]
    write_text_atomic(path, "\n".join(lines) + "\n")

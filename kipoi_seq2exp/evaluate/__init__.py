"""Element discovery and expression metrics, baselines (MACS3, DNase, oracle), exports and reports.

The model-facing entry points are ``evaluate_masks`` (one method's metrics) and
``run_evaluation`` (model + baselines on the same genes, with report, exports and locus plots).
Metric conventions are in ``kipoi_seq2exp.evaluate.metrics``.
"""
from .baselines import (LazyMasks, call_macs3_peaks, force_centre, interval_mask, macs3_predictions,
                        oracle_predictions, read_peaks, read_signal, signal_predictions)
from .export import masks_to_bed, masks_to_bigwig
from .metrics import CENTRE_LENGTH, MaskCounts, average_precision, evaluate_masks, evaluation_region, \
    expression_metrics, selected_runs
from .report import LocusView, markdown_table, plot_locus, write_metrics_table
from .suite import hic_contact_to_tss, locus_view, run_evaluation, simulated_inputs
from .windows import GeneWindow, TruthElement, as_windows, read_chrom_sizes, read_truth_bed, windows_from_genes

__all__ = [
    "CENTRE_LENGTH", "GeneWindow", "LazyMasks", "LocusView", "MaskCounts", "TruthElement", "as_windows",
    "average_precision", "call_macs3_peaks", "evaluate_masks", "evaluation_region", "expression_metrics",
    "force_centre", "hic_contact_to_tss", "interval_mask", "locus_view", "macs3_predictions", "markdown_table",
    "masks_to_bed", "masks_to_bigwig", "oracle_predictions", "plot_locus", "read_chrom_sizes", "read_peaks",
    "read_signal", "read_truth_bed", "run_evaluation", "selected_runs", "signal_predictions", "simulated_inputs",
    "windows_from_genes",
    "write_metrics_table",
]

"""Element-discovery metrics against hand-computed values; baselines, exports and report on real files."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch
from torchmetrics.functional.classification import binary_average_precision

from kipoi_seq2exp.evaluate import (GeneWindow, TruthElement, average_precision, call_macs3_peaks, evaluate_masks,
                                    evaluation_region, macs3_predictions, masks_to_bed, masks_to_bigwig,
                                    read_chrom_sizes, read_signal, read_truth_bed, run_evaluation, selected_runs,
                                    simulated_inputs, windows_from_genes)
from kipoi_seq2exp.simulate import SIM_FILES, embedded_dir

EMBEDDED = embedded_dir()
SPLIT = {"chr3": "valid", "chr21": "valid", "chr22": "test", "chrX": "test"}
HAS_MACS3 = importlib.util.find_spec("MACS3") is not None
needs_macs3 = pytest.mark.skipif(not HAS_MACS3, reason="MACS3 not installed (pip install 'kipoi-seq2exp[eval]')")


def test_average_precision_by_hand_with_ties():
    # Thresholds 0.9 -> P 1, R 1/2; 0.8 (a tie of a hit and a miss) -> P 2/3, R 1.
    assert average_precision(np.array([0.9, 0.8, 0.8, 0.1]), np.array([1, 0, 1, 0], bool)) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3)
    assert np.isnan(average_precision(np.array([0.3, 0.2]), np.array([False, False])))


def test_average_precision_matches_torchmetrics():
    rng = np.random.default_rng(0)
    labels = rng.random(5000) < 0.1
    scores = np.round(rng.random(5000) + labels * 0.5, 2)  # rounding makes many ties
    reference = binary_average_precision(torch.tensor(scores), torch.tensor(labels.astype(np.int64)))
    assert average_precision(scores, labels) == pytest.approx(float(reference), abs=1e-6)


def test_selected_runs():
    np.testing.assert_array_equal(selected_runs(np.array([1, 1, 0, 1, 0, 0, 1], bool)), [[0, 2], [3, 4], [6, 7]])


def test_evaluation_region_drops_centre_and_padding():
    region = evaluation_region(GeneWindow("g", "chr1", -3, 20), chrom_size=15, centre_length=4)
    # Window positions 0-2 lie before the chromosome, 18-19 after it; 8-11 are the centre.
    np.testing.assert_array_equal(np.flatnonzero(~region), [0, 1, 2, 8, 9, 10, 11, 18, 19])


def _tiny_case():
    """A 20 bp window, 4 bp centre (8-11), truth at window bases 2-5 and 13-17."""
    window = GeneWindow("g1", "chr1", 100, 20, "test")
    truth = {"g1": [TruthElement("chr1", 102, 106, "E1", 0.5), TruthElement("chr1", 113, 118, "E2", 0.2)],
             "g2": [TruthElement("chr1", 100, 101, "E3", 0.1)]}  # another gene's element: a negative here
    mask = np.zeros(20, dtype=np.float32)
    mask[[0, 3, 4, 5, 14]] = 1.0  # a decoy run, 3 of E1's 4 bases, 1 of E2's 5 bases
    mask[8:12] = 1.0  # forced centre
    return window, truth, mask


def test_mask_metrics_by_hand():
    window, truth, mask = _tiny_case()
    table = evaluate_masks([window], {"g1": (None, mask)}, truth, chrom_sizes={"chr1": 1000}, centre_length=4)
    row = table.iloc[0]
    assert (row["method"], row["split"], row["n_genes"]) == ("model", "test", 1)
    assert row["mask_ratio"] == pytest.approx(9 / 20)  # centre included, as the paper reports
    assert row["prevalence"] == pytest.approx(9 / 16)
    assert row["base_precision"] == pytest.approx(4 / 5)
    assert row["base_recall"] == pytest.approx(4 / 9)
    assert row["element_recall"] == pytest.approx(1 / 2)  # E1 3/4 >= 50 %, E2 1/5 < 50 %
    assert row["element_precision"] == pytest.approx(2 / 3)  # runs [0], [3-5], [14]: two touch truth
    # Binary scores: threshold 1 -> P 4/5 at R 4/9; threshold 0 -> P 9/16 at R 1.
    assert row["auprc"] == pytest.approx(4 / 9 * 4 / 5 + 5 / 9 * 9 / 16)


def test_ranking_only_and_expression_metrics():
    window, truth, mask = _tiny_case()
    other = GeneWindow("g2", "chr1", 90, 20, "train")
    predictions = {"g1": (2.0, mask), "g2": (1.0, np.zeros(20, np.float32))}
    table = evaluate_masks([window, other], predictions, truth, chrom_sizes={"chr1": 1000}, centre_length=4,
                           targets={"g1": 2.5, "g2": 0.5}, ranking_only=True, method="dnase")
    assert list(table["split"]) == ["train", "test", "all"]
    everything = table.set_index("split").loc["all"]
    assert everything["mse"] == pytest.approx(0.25) and everything["mae"] == pytest.approx(0.5)
    assert everything["pearson"] == pytest.approx(1.0)
    assert np.isnan(everything["base_precision"]) and np.isnan(everything["mask_ratio"])
    assert everything["n_genes"] == 2


def test_mask_of_wrong_length_is_an_actionable_error():
    window, truth, mask = _tiny_case()
    with pytest.raises(ValueError, match="g1.*length 19"):
        evaluate_masks([window], {"g1": (None, mask[:19])}, truth, chrom_sizes={"chr1": 1000})


def _embedded_windows(chroms: set[str], length: int = 20_000) -> list[GeneWindow]:
    windows = windows_from_genes(EMBEDDED / SIM_FILES.genes, length, lambda c: SPLIT.get(c, "train"))
    return [w for w in windows if w.chrom in chroms]


@needs_macs3
def test_macs3_baseline_on_embedded_data():
    """Peaks find the open elements (high recall) but cannot reject open decoys (low precision)."""
    windows = _embedded_windows({"chr21"})
    sizes = read_chrom_sizes(EMBEDDED / SIM_FILES.fasta_index)
    peaks, cutoff = call_macs3_peaks(EMBEDDED / SIM_FILES.dnase, windows, sizes)
    assert len(peaks["chr21"]) > 30 and cutoff > 1.0
    with pyBigWig.open(str(EMBEDDED / SIM_FILES.dnase)) as bigwig:
        for start, end in peaks["chr21"][:10]:
            assert max(bigwig.values("chr21", int(start), int(end))) >= cutoff
    truth = read_truth_bed(EMBEDDED / SIM_FILES.causal_elements)
    row = evaluate_masks(windows, macs3_predictions(windows, peaks), truth, chrom_sizes=sizes).iloc[0]
    assert row["element_recall"] > 0.7
    assert row["element_precision"] < 0.7


def test_exports_read_back(tmp_path):
    sizes = {"chr1": 1000, "chr2": 500}
    left, right = GeneWindow("a", "chr1", -10, 100), GeneWindow("b", "chr1", 50, 100)
    mask_a = np.zeros(100, np.float32)
    mask_a[60:90] = 0.25  # chromosome 50-80
    mask_b = np.zeros(100, np.float32)
    mask_b[10:40] = 0.75  # chromosome 60-90
    masks_to_bigwig([left, right], {"a": mask_a, "b": mask_b}, sizes, tmp_path / "mask.bw")
    with pyBigWig.open(str(tmp_path / "mask.bw")) as bigwig:
        assert list(bigwig.chroms()) == ["chr1", "chr2"]
        values = np.array(bigwig.values("chr1", 0, 200))
    expected = np.zeros(200)
    expected[50:60] = 0.25
    expected[60:90] = 0.75  # max where the windows overlap
    expected[150:] = np.nan  # no window covers it
    np.testing.assert_allclose(values, expected)
    count = masks_to_bed([right, left], {"a": mask_a, "b": mask_b}, sizes, tmp_path / "sel.bed", threshold=0.2)
    lines = (tmp_path / "sel.bed").read_text().splitlines()
    assert count == 2 and lines[0].startswith("track name=")
    assert [line.split("\t") for line in lines[1:]] == [["chr1", "50", "80", "a", "250", "."],
                                                        ["chr1", "60", "90", "b", "750", "."]]


def test_read_signal_pads_past_chromosome_ends():
    sizes = read_chrom_sizes(EMBEDDED / SIM_FILES.fasta_index)
    window = GeneWindow("x", "chr21", sizes["chr21"] - 50, 100)
    with pyBigWig.open(str(EMBEDDED / SIM_FILES.dnase)) as bigwig:
        values = read_signal(bigwig, window, sizes["chr21"])
    assert values.shape == (100,) and np.all(values == 0)  # last 1 kb is N without data, then padding


@needs_macs3
def test_run_evaluation_writes_report_exports_and_plot(tmp_path):
    windows = _embedded_windows({"chr22"})[:12]
    inputs = simulated_inputs(EMBEDDED)
    model = {w.gene_id: (inputs["targets"][w.gene_id] + 0.5, np.linspace(0, 1, w.length, dtype=np.float32))
             for w in windows}
    table = run_evaluation(windows, model, out_dir=tmp_path, method="toy", loci=[windows[0].gene_id], **inputs)
    assert set(table["method"]) == {"toy", "macs3_dnase_peaks", "dnase_ranking", "oracle"}
    assert set(table["n_genes"]) == {12}  # baselines score exactly the model's genes
    oracle = table[table["method"] == "oracle"].iloc[0]
    assert oracle["auprc"] == 1.0 and oracle["element_recall"] == 1.0 and oracle["element_precision"] == 1.0
    toy = table[table["method"] == "toy"].iloc[0]
    assert toy["mse"] == pytest.approx(0.25) and toy["pearson"] == pytest.approx(1.0)
    for name in ("metrics.csv", "metrics.md", "toy_mask.bw", "toy_elements.bed", "macs3_peaks.bed",
                 f"locus_{windows[0].gene_id}.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert pd.read_csv(tmp_path / "metrics.csv").shape[0] == len(table)


def test_as_windows_accepts_tables_duck_types_and_datasets():
    from dataclasses import dataclass

    from kipoi_seq2exp.evaluate import as_windows

    @dataclass
    class DataLayerWindow:
        gene_id: str
        chrom: str
        start: int
        end: int

    class Dataset:
        def windows(self):
            return pd.DataFrame({"gene_id": ["g"], "chrom": ["chr1"], "start": [-5], "end": [15], "split": ["test"]})

    expected = [GeneWindow("g", "chr1", -5, 20, "test")]
    assert as_windows(Dataset()) == expected
    assert as_windows([DataLayerWindow("g", "chr1", -5, 15)]) == [GeneWindow("g", "chr1", -5, 20, "all")]
    with pytest.raises(TypeError, match="cannot read a window"):
        as_windows([("g", "chr1", 0, 20)])

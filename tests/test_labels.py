"""`seq2exp labels`: TSS-assay counts on the gene's strand, both minus-strand conventions, bad input."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from kipoi_seq2exp.cli import main
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.labels import make_labels, strand_convention, tss_labels
from kipoi_seq2exp.data.genes import read_gene_table
from kipoi_seq2exp.realdata.chr22 import CELL_TYPES, SLICE_DIR, cell_files

CHROM_LENGTH = 10_000
# (position, count) of 5' ends; the gene table below says which fall inside each TSS +/- w.
PLUS_SITES = [(100, 3), (599, 2), (600, 50), (2_000, 7), (2_499, 1), (2_500, 4), (5_100, 9)]
MINUS_SITES = [(1_700, 5), (2_300, 6), (4_600, 2), (5_000, 11), (5_499, 1), (9_999, 8)]
GENES = pd.DataFrame({
    "gene_id": ["edge_plus", "mid_plus", "mid_minus", "end_minus"],
    "chrom": ["chr1"] * 4,
    "tss": [100, 2_000, 5_000, 9_990],
    "strand": ["+", "+", "-", "-"],
})
# w = 500, window [tss - 500, tss + 500): edge_plus [-400, 600) clipped -> 3 + 2; mid_plus [1500, 2500)
# -> 7 + 1 (the minus site at 2300 is the other strand); mid_minus [4500, 5500) -> 2 + 11 + 1 (the plus
# site at 5100 is the other strand); end_minus [9490, 10490) clipped -> 8.
EXPECTED_500 = [5, 8, 14, 8]
# w = 100: edge_plus [0, 200) -> 3; mid_plus [1900, 2100) -> 7; mid_minus [4900, 5100) -> 11; end_minus -> 8.
EXPECTED_100 = [3, 7, 11, 8]


def write_bigwig(path: Path, sites: list[tuple[int, float]], sign: float = 1.0,
                 chroms: tuple[tuple[str, int], ...] = (("chr1", CHROM_LENGTH),)) -> Path:
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(chroms))
    starts = [p for p, _ in sites]
    bw.addEntries([chroms[0][0]] * len(sites), starts, ends=[p + 1 for p in starts],
                  values=[sign * float(c) for _, c in sites])
    bw.close()
    return path


def write_genes(path: Path, table: pd.DataFrame) -> Path:
    table.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "genes": write_genes(tmp_path / "genes.tsv", GENES),
        "plus": write_bigwig(tmp_path / "plus.bw", PLUS_SITES),
        "minus_negative": write_bigwig(tmp_path / "minus_neg.bw", MINUS_SITES, sign=-1.0),
        "minus_positive": write_bigwig(tmp_path / "minus_pos.bw", MINUS_SITES, sign=1.0),
    }


@pytest.mark.parametrize("minus_key, sign", [("minus_negative", -1), ("minus_positive", 1)])
def test_counts_on_the_genes_strand_for_both_minus_conventions(files, tmp_path, minus_key, sign):
    out = tmp_path / "labels.tsv"
    table = make_labels(str(files["genes"]), str(files["plus"]), str(files[minus_key]), out)
    assert table["count"].tolist() == EXPECTED_500
    assert table.attrs["conventions"]["-"].sign == sign
    assert table.attrs["conventions"]["+"].sign == 1
    written = pd.read_csv(out, sep="\t")
    assert list(written.columns) == ["gene_id", "label", "count"]
    assert written["gene_id"].tolist() == GENES["gene_id"].tolist()
    assert written["count"].tolist() == EXPECTED_500
    np.testing.assert_allclose(written["label"], [math.log10(1 + c) for c in EXPECTED_500], atol=1e-6)


def test_flank_is_configurable(files):
    genes = read_gene_table(str(files["genes"]))
    table = tss_labels(genes, str(files["plus"]), str(files["minus_negative"]), flank=100)
    assert table["count"].tolist() == EXPECTED_100


def test_mixed_sign_minus_file_is_rejected(tmp_path):
    mixed = write_bigwig(tmp_path / "mixed.bw", [(10, 1), (20, -1)])
    with pytest.raises(DataInputError, match=r"mixed\.bw: minus-strand bigWig holds both negative"):
        strand_convention(str(mixed), "-")


def test_negative_plus_file_is_rejected_as_swapped(files, tmp_path):
    out = tmp_path / "labels.tsv"
    with pytest.raises(DataInputError, match=r"minus_neg\.bw: plus-strand bigWig holds negative.*swapped"):
        make_labels(str(files["genes"]), str(files["minus_negative"]), str(files["plus"]), out)
    assert not out.exists()


def _bad(table: pd.DataFrame, tmp_path: Path) -> Path:
    return write_genes(tmp_path / "bad_genes.tsv", table)


@pytest.mark.parametrize("edit, pattern", [
    (lambda t: t.assign(tss=[100, 2_000, 5_000, CHROM_LENGTH + 5]),
     r"bad_genes\.tsv: line 5 \(gene end_minus\): tss 10005 is outside chr1 \(length 10000 in .*plus\.bw\)\. Fix:"),
    (lambda t: t.assign(strand=["+", ".", "-", "-"]),
     r"bad_genes\.tsv: line 3 \(gene mid_plus\): strand = '\.'\. Fix: strand must be '\+' or '-'"),
    (lambda t: t.assign(chrom=["chr1", "chr1", "chr2", "chr1"]),
     r"bigWig .*plus\.bw: chromosome 'chr2' is not in this file.*Fix:"),
    (lambda t: t.drop(columns=["strand"]),
     r"bad_genes\.tsv: gene table lacks column\(s\) \['strand'\].*Fix: add or rename"),
])
def test_bad_input_one_clear_line_and_nothing_written(files, tmp_path, edit, pattern):
    genes = _bad(edit(GENES.copy()), tmp_path)
    out = tmp_path / "labels.tsv"
    out.write_text("previous content\n")
    with pytest.raises(DataInputError, match=pattern) as info:
        make_labels(str(genes), str(files["plus"]), str(files["minus_negative"]), out)
    assert "\n" not in str(info.value)
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_cli_reports_the_minus_convention_and_fails_with_one_line(files, tmp_path, capsys):
    out = tmp_path / "labels.tsv"
    args = ["labels", "--genes", str(files["genes"]), "--plus", str(files["plus"]), "--minus",
            str(files["minus_negative"]), "--out", str(out), "--flank", "100"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "minus-strand counts stored as negative values" in printed
    assert pd.read_csv(out, sep="\t")["count"].tolist() == EXPECTED_100
    bad = _bad(GENES.drop(columns=["tss"]), tmp_path)
    assert main(["labels", "--genes", str(bad), "--plus", str(files["plus"]), "--minus", str(files["minus_positive"]),
                 "--out", str(tmp_path / "other.tsv")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "lacks column(s) ['tss']" in error
    assert not (tmp_path / "other.tsv").exists()


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_labels_on_the_real_slice_equal_a_hand_count(cell, tmp_path):
    files = cell_files(cell)
    genes = pd.read_csv(SLICE_DIR / "genes_chr22.tsv", sep="\t")
    table = make_labels(str(SLICE_DIR / "genes_chr22.tsv"), str(SLICE_DIR / files.procap_plus),
                        str(SLICE_DIR / files.procap_minus), tmp_path / "labels.tsv")
    hand = []
    with pyBigWig.open(str(SLICE_DIR / files.procap_plus)) as plus, \
            pyBigWig.open(str(SLICE_DIR / files.procap_minus)) as minus:
        for tss, strand in zip(genes["tss"], genes["strand"]):
            values = (plus if strand == "+" else minus).values("chr22", tss - 500, tss + 500, numpy=True)
            hand.append(abs(float(np.nansum(values))))
    assert table["count"].tolist() == hand
    assert sum(hand) > 0 and min(hand) >= 0
    assert table.attrs["conventions"]["-"].sign == -1  # the real files store minus as negative values
    np.testing.assert_allclose(table["label"], np.log10(1 + np.array(hand)))

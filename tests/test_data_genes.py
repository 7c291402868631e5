"""Gene table validation, mRNA features, targets (log10 once), split, promoter activity."""
import numpy as np
import pytest

from kipoi_seq2exp.data.config import MRNA_FEATURE_COLUMNS, SplitConfig
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.genes import (
    assign_split,
    check_tss_on_chromosomes,
    promoter_activity,
    read_gene_table,
    read_mrna_features,
    read_targets,
)
from kipoi_seq2exp.data.synthetic import write_table

GENES = [
    {"gene_id": "A", "chrom": "chr1", "tss": 10, "strand": "+", "gene_name": "AA", "fold_11": "train"},
    {"gene_id": "B", "chrom": "chr3", "tss": 20, "strand": "-", "gene_name": "BB", "fold_11": "test"},
    {"gene_id": "C", "chrom": "X", "tss": 30, "strand": "+", "gene_name": "CC", "fold_11": "valid"},
    {"gene_id": "D", "chrom": "chr21", "tss": 40, "strand": "-", "gene_name": "DD", "fold_11": "train"},
]


def table(tmp_path, rows, name="genes.tsv", sep="\t"):
    path = tmp_path / name
    write_table(path, rows, sep=sep)
    return str(path)


def test_gene_table_read_tsv_and_csv(tmp_path):
    for name, sep in (("genes.tsv", "\t"), ("genes.csv", ",")):
        genes = read_gene_table(table(tmp_path, GENES, name, sep))
        assert genes["gene_id"].tolist() == ["A", "B", "C", "D"]
        assert genes["tss"].tolist() == [10, 20, 30, 40] and genes["tss"].dtype == np.int64
        assert genes["gene_name"].tolist() == ["AA", "BB", "CC", "DD"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"gene_id": "A"}, r"genes\.tsv: gene table has duplicate gene_id 'A' \(lines \[2, 3\]"),
        ({"tss": "12kb"}, r"genes\.tsv: line 3 \(gene B\): tss = '12kb' is not an integer"),
        ({"tss": "12.5"}, r"line 3 \(gene B\): tss = '12.5'"),
        ({"strand": "."}, r"line 3 \(gene B\): strand = '\.'.*'\+' or '-'"),
    ],
)
def test_gene_table_bad_records_named(tmp_path, change, message):
    rows = [dict(r) for r in GENES]
    rows[1].update(change)
    with pytest.raises(DataInputError, match=message):
        read_gene_table(table(tmp_path, rows))


def test_gene_table_missing_column_named(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "strand"} for r in GENES]
    with pytest.raises(DataInputError, match=r"genes\.tsv: gene table lacks column\(s\) \['strand'\]"):
        read_gene_table(table(tmp_path, rows))


def test_tss_outside_chromosome_named(tmp_path):
    path = table(tmp_path, GENES)
    genes = read_gene_table(path)
    check_tss_on_chromosomes(genes, lambda c: 100, path)
    with pytest.raises(DataInputError, match=r"line 5 \(gene D\): tss 40 is outside chr21 \(length 35\)"):
        check_tss_on_chromosomes(genes, lambda c: 35, path)


def test_mrna_features_by_gene_id_with_missing_genes_zero(tmp_path):
    rows = [{"gene_id": g, **{c: i + 0.5 * k for k, c in enumerate(MRNA_FEATURE_COLUMNS)}} for i, g in enumerate("DBA")]
    path = table(tmp_path, rows, "mrna.csv", ",")
    with pytest.warns(UserWarning, match=r"1 of 4 genes have no mRNA features \(e.g. \['C'\]\)"):
        got = read_mrna_features(path, ["A", "B", "C", "D"], MRNA_FEATURE_COLUMNS)
    expected = np.array([[2 + 0.5 * k for k in range(8)], [1 + 0.5 * k for k in range(8)], [0] * 8, [0.5 * k for k in range(8)]])
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    with pytest.warns(UserWarning, match="No mRNA features table"):
        assert not read_mrna_features(None, ["A"], MRNA_FEATURE_COLUMNS).any()
    with pytest.raises(DataInputError, match=r"lacks column\(s\) \['ORFEXONDENSITY'\]"):
        read_mrna_features(table(tmp_path, [{k: v for k, v in r.items() if k != "ORFEXONDENSITY"} for r in rows], "m2.csv", ","), ["A"], MRNA_FEATURE_COLUMNS)


def test_targets_log10p1_applied_once_and_none_keeps_values(tmp_path):
    path = table(tmp_path, [{"gene_id": "A", "cage": 99.0}, {"gene_id": "B", "cage": 0.0}], "expr.tsv")
    got = read_targets(path, "cage", "log10p1", ["B", "A", "Z"])
    np.testing.assert_allclose(got[:2], [0.0, 2.0])
    assert np.isnan(got[2])
    np.testing.assert_allclose(read_targets(path, "cage", "none", ["A"]), [99.0])
    with pytest.raises(DataInputError, match=r"lacks column\(s\) \['CAGE'\]"):
        read_targets(path, "CAGE", "none", ["A"])
    negative = table(tmp_path, [{"gene_id": "A", "cage": -1.5}], "neg.tsv")
    with pytest.raises(DataInputError, match="target_transform: none"):
        read_targets(negative, "cage", "log10p1", ["A"])


def test_split_by_chromosome_across_naming_and_by_column(tmp_path):
    path = table(tmp_path, GENES)
    genes = read_gene_table(path)
    assert assign_split(genes, SplitConfig(), path).tolist() == ["train", "valid", "test", "valid"]
    by_column = SplitConfig(column="fold_11")
    assert assign_split(genes, by_column, path).tolist() == ["train", "test", "valid", "train"]
    rows = [dict(r) for r in GENES]
    rows[2]["fold_11"] = "validation"
    bad = table(tmp_path, rows, "bad.tsv")
    with pytest.raises(DataInputError, match=r"line 4 \(gene C\): fold_11 = 'validation'"):
        assign_split(read_gene_table(bad), by_column, bad)


def test_promoter_activity_is_geometric_mean_of_centre_means():
    signals = np.zeros((4000, 3), dtype=np.float32)
    signals[1000:3000, 0] = 4.0  # H3K27ac over TSS +/- 1 kb
    signals[2000:3000, 1] = 2.0  # DNase over half of it: mean 1.0
    signals[:, 2] = 7.0  # Hi-C, not used
    assert promoter_activity(signals, [0, 1], 1000) == pytest.approx(2.0)  # sqrt(4 x 1)
    assert promoter_activity(signals, [1], 1000) == pytest.approx(1.0)
    assert promoter_activity(signals, [], 1000) == 0.0

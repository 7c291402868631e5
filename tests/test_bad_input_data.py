"""Bad data files that used to give a silent wrong answer: each is now an error or a warning that
names the file, on files each test writes (issue: no silent wrong answers, items 1-6)."""
from __future__ import annotations

import warnings

import numpy as np
import pyBigWig
import pytest

from kipoi_seq2exp.data.config import DataConfig, HicOptions, paper_tracks
from kipoi_seq2exp.data.dataset import GeneWindows, WindowDataset
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.genes import read_gene_table, read_targets
from kipoi_seq2exp.data.kipoi_dataloader import Seq2ExpDataset
from kipoi_seq2exp.data.qc import WindowQC, n_fraction
from kipoi_seq2exp.data.synthetic import demo_contacts, random_dna, write_bigwig, write_cool, write_demo_genome, \
    write_fasta, write_table

SIZES = {"chr1": 12_000, "chr2": 9_000}
L = 2000
GENES = [
    {"gene_id": "g1", "chrom": "chr1", "tss": 3_000, "strand": "+"},
    {"gene_id": "g2", "chrom": "chr1", "tss": 8_000, "strand": "-"},
    {"gene_id": "gap", "chrom": "chr2", "tss": 5_000, "strand": "+"},
]


@pytest.fixture()
def files(tmp_path):
    return write_demo_genome(tmp_path, SIZES, GENES, bin_size=100)


def config(files, **overrides) -> DataConfig:
    values = dict(fasta=files["fasta"], gene_table=files["genes"],
                  tracks=paper_tracks(files["h3k27ac"], files["dnase"], files["hic"]),
                  hic=HicOptions(bin_size=100, normalization="NONE"), mrna_features=files["mrna"],
                  expression=files["expression"], window=L)
    values.update(overrides)
    return DataConfig(**values)


def put_gap(fasta: str, chrom: str, start: int, end: int) -> None:
    """Overwrite [start, end) of one chromosome with N (an assembly gap), keeping its length."""
    from pyfaidx import Fasta

    seqs = {name: str(record[:]) for name, record in Fasta(fasta, as_raw=True).items()}
    seqs[chrom] = seqs[chrom][:start] + "N" * (end - start) + seqs[chrom][end:]
    import os
    os.remove(fasta + ".fai")
    write_fasta(fasta, seqs)


def messages(caught) -> list[str]:
    return [str(w.message) for w in caught]


# ---------------------------------------------------------------- 1. windows with no sequence / no signal
def test_n_fraction_and_qc_label():
    assert n_fraction("ACGTNNNNnn") == pytest.approx(0.6)
    assert n_fraction("acgtRYKM") == pytest.approx(0.5)
    assert WindowQC(0.1).label == "ok" and not WindowQC(0.1).flagged
    assert WindowQC(0.83, ("DNase",)).label == "N 83%;no DNase"


def test_all_n_window_is_refused_naming_the_gene_and_the_fix(files):
    put_gap(files["fasta"], "chr2", 3_000, 7_000)
    with pytest.raises(DataInputError, match=r"genes\.tsv.*1 gene windows are more than 50% N.*gap \(100% N\)"
                                             r".*Fix:.*max_n_fraction"):
        WindowDataset(config(files))


def test_refusal_threshold_can_be_raised_and_the_window_is_then_flagged(files):
    put_gap(files["fasta"], "chr2", 3_000, 7_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = WindowDataset(config(files, max_n_fraction=1.0))
    flagged = [m for m in messages(caught) if "flagged" in m]
    assert len(flagged) == 1 and "gap (N 100%)" in flagged[0] and "1 of 3" in flagged[0]
    assert [dataset[i]["qc"] for i in range(3)] == ["ok", "ok", "N 100%"]


def test_empty_signal_track_is_flagged_in_kipoi_metadata(files, tmp_path):
    empty = tmp_path / "empty_dnase.bw"
    chr1 = np.zeros(SIZES["chr1"])
    chr1[10_000:11_000] = 3.0  # signal outside every window; chr2: no entries at all
    write_bigwig(empty, SIZES, {"chr1": chr1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = Seq2ExpDataset(files["fasta"], files["genes"], h3k27ac_bigwig=files["h3k27ac"],
                                 dnase_bigwig=str(empty), mrna_features=files["mrna"], signals="h3k27ac,dnase",
                                 window=L)
    assert [dataset[i]["metadata"]["qc"] for i in range(3)] == ["no DNase"] * 3
    assert any("3 of 3 gene windows are flagged" in m for m in messages(caught))


def test_default_refusal_threshold_reaches_the_kipoi_dataloader(files):
    put_gap(files["fasta"], "chr1", 7_500, 8_800)
    with pytest.raises(DataInputError, match=r"more than 50% N.*g2 \(65% N\)"):
        Seq2ExpDataset(files["fasta"], files["genes"], dnase_bigwig=files["dnase"], signals="dnase", window=L)
    dataset = Seq2ExpDataset(files["fasta"], files["genes"], dnase_bigwig=files["dnase"], signals="dnase", window=L,
                             max_n_fraction=0.7)
    assert dataset[1]["metadata"]["qc"] == "N 65%"


# ---------------------------------------------------------------- 3. a gene table without genes
def test_header_only_gene_table_is_an_error(tmp_path):
    path = tmp_path / "genes.tsv"
    path.write_text("gene_id\tchrom\ttss\tstrand\n")
    with pytest.raises(DataInputError, match=r"genes\.tsv: the gene table has a header but no genes"):
        read_gene_table(str(path))


def test_header_only_gene_table_fails_the_labels_command(tmp_path, capsys):
    from kipoi_seq2exp.cli import main

    path = tmp_path / "genes.tsv"
    path.write_text("gene_id\tchrom\ttss\tstrand\n")
    bigwig = tmp_path / "plus.bw"
    write_bigwig(bigwig, SIZES, {"chr1": np.ones(SIZES["chr1"])})
    code = main(["labels", "--genes", str(path), "--plus", str(bigwig), "--minus", str(bigwig),
                 "--out", str(tmp_path / "labels.tsv")])
    assert code == 2 and "has a header but no genes" in capsys.readouterr().err
    assert not (tmp_path / "labels.tsv").exists()


# ---------------------------------------------------------------- 4. chromosome lengths across files
def test_bigwig_from_another_assembly_is_an_error_naming_both_files(files, tmp_path):
    short = tmp_path / "short.bw"
    write_bigwig(short, {"chr1": SIZES["chr1"] - 10_000 // 10, "chr2": SIZES["chr2"]}, {})
    with pytest.raises(DataInputError, match=r"short\.bw: chromosome 'chr1' is 11,000 bp, but FASTA .*genome\.fa "
                                             r"says 12,000 bp.*different assemblies"):
        GeneWindows(config(files, tracks=paper_tracks(files["h3k27ac"], str(short), files["hic"])))


def test_hic_map_from_another_assembly_is_an_error(files, tmp_path):
    longer = {"chr1": SIZES["chr1"] + 1_000, "chr2": SIZES["chr2"]}
    cool = tmp_path / "longer.cool"
    write_cool(cool, longer, 100, demo_contacts(longer, 100))
    with pytest.raises(DataInputError, match=r"Hi-C .*longer\.cool: chromosome 'chr1' is 13,000 bp, but FASTA"):
        GeneWindows(config(files, tracks=paper_tracks(files["h3k27ac"], files["dnase"], str(cool))))


# ---------------------------------------------------------------- 5. chromosome aliases, said once per file
def test_chromosome_alias_is_kept_and_said_once_per_file(files, tmp_path):
    genes = tmp_path / "genes_ensembl.tsv"
    write_table(genes, [dict(g, chrom=g["chrom"][3:]) for g in GENES])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        windows = GeneWindows(config(files, gene_table=str(genes)))
        windows.example(0), windows.example(2)
    aliased = [m for m in messages(caught) if "spelt differently" in m]
    assert len(aliased) == 4  # FASTA, two bigWigs, Hi-C: once each though two chromosomes are aliased
    assert any(m.startswith(f"FASTA {files['fasta']}: ") and "'chr1' read for '1'" in m for m in aliased)


# ---------------------------------------------------------------- 6. NaN values, unknown ids, missing targets
def test_stored_nan_values_are_read_as_zero_with_one_warning(files, tmp_path):
    path = str(tmp_path / "nan.bw")
    handle = pyBigWig.open(path, "w")
    handle.addHeader(list(SIZES.items()), maxZooms=0)
    handle.addEntries(["chr1"] * 3, [2_000, 2_500, 3_000], ends=[2_500, 3_000, 3_500], values=[1.0, float("nan"), 2.0])
    handle.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        windows = GeneWindows(config(files, tracks=paper_tracks(files["h3k27ac"], path, files["hic"])))
        signal = windows.signals(windows.window(0))[:, 1]
        windows.signals(windows.window(0))
    nan = [m for m in messages(caught) if "NaN/inf" in m]
    assert len(nan) == 1 and "nan.bw: 500 bases of chr1:2000-4000" in nan[0]
    np.testing.assert_array_equal(signal[500:1000], 0.0)  # the NaN entry
    np.testing.assert_array_equal(signal[:500], 1.0)


def test_uncovered_bases_are_zeros_without_a_warning(files):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        windows = GeneWindows(config(files))
        windows.signals(windows.window(1))
    assert not [m for m in messages(caught) if "NaN" in m]


def test_expression_rows_of_unknown_genes_are_warned_about(files, tmp_path):
    table = tmp_path / "expression.tsv"
    write_table(table, [{"gene_id": "g1", "expression": 9}, {"gene_id": "g1.5", "expression": 1},
                        {"gene_id": "other", "expression": 2}])
    with pytest.warns(UserWarning, match=r"expression\.tsv: 1 of 2 genes have no value, and 2 rows of the expression "
                                         r"table name genes that are not in the gene table \(e\.g\. \['g1\.5', 'other'\]\)"):
        values = read_targets(str(table), "expression", "log10p1", ["g1", "g2"])
    np.testing.assert_allclose(values, [1.0, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a gene table that is a subset of the expression table is normal use
        np.testing.assert_allclose(read_targets(str(table), "expression", "log10p1", ["g1"]), [1.0])


def test_kipoi_dataloader_warns_about_genes_without_a_target(files, tmp_path):
    table = tmp_path / "expression.tsv"
    write_table(table, [{"gene_id": "g1", "expression": 9}])
    with pytest.warns(UserWarning, match=r"expression\.tsv: 2 of 3 genes have no 'expression' value; their targets are NaN"):
        dataset = Seq2ExpDataset(files["fasta"], files["genes"], dnase_bigwig=files["dnase"], signals="dnase",
                                 window=L, expression_file=str(table))
    assert np.isnan(dataset[2]["targets"]).all() and dataset[0]["targets"][0] == pytest.approx(1.0)


def test_invalid_data_config_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("fasta: genome.fa\ngene_table: [genes.tsv\n")
    with pytest.raises(DataInputError, match=r"data\.yaml, line 3, column 1: not valid YAML"):
        DataConfig.from_yaml(path)


def test_padding_past_a_short_chromosome_flags_but_does_not_refuse(tmp_path):
    genes = [{"gene_id": "mt", "chrom": "chrM", "tss": 400, "strand": "+"}, GENES[0]]
    paths = write_demo_genome(tmp_path, {"chr1": 12_000, "chrM": 800}, genes, bin_size=100)
    with pytest.warns(UserWarning, match=r"1 of 2 gene windows are flagged .*mt \(N 60%\)"):
        dataset = Seq2ExpDataset(paths["fasta"], paths["genes"], dnase_bigwig=paths["dnase"], signals="dnase", window=L)
    assert dataset[0]["metadata"]["qc"] == "N 60%" and dataset[1]["metadata"]["qc"] == "ok"


def test_data_config_yaml_types_are_checked_and_null_sections_mean_defaults(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("fasta: genome.fa\ngene_table: genes.tsv\nwindow: '2000'\n")
    with pytest.raises(DataInputError, match=r"DataConfig: window must be an integer, got '2000' \(text\)"):
        DataConfig.from_yaml(path)
    path.write_text("fasta: genome.fa\ngene_table: genes.tsv\nhic: null\nsplit: null\n")
    config = DataConfig.from_yaml(path)
    assert config.hic == HicOptions() and config.window == 200_000

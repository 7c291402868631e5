"""Variant windows: SNV / indels keep length L and the TSS anchor, splitting, reporting, bad VCFs."""
import numpy as np
import pysam
import pytest

from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.genome import one_hot
from kipoi_seq2exp.data.synthetic import random_dna, write_fasta, write_table, write_vcf
from kipoi_seq2exp.data.variants import VariantReport, iter_variant_windows

L = 2000
SEQ = random_dna(6000, np.random.default_rng(7))
SIZES = {"chr1": 6000, "chr2": 3000}
GENES = [
    {"gene_id": "g1", "chrom": "chr1", "tss": 3000, "strand": "+"},  # window [2000, 4000)
    {"gene_id": "g2", "chrom": "chr1", "tss": 3500, "strand": "-"},  # window [2500, 4500)
    {"gene_id": "g3", "chrom": "chr1", "tss": 300, "strand": "+"},  # window [-700, 1300)
]


def other(base: str) -> str:
    return "C" if base != "C" else "G"


SNV = ("chr1", 3001, "snv", SEQ[3000], other(SEQ[3000]))  # at g1's TSS
INSERTION = ("chr1", 3201, "ins", SEQ[3200], SEQ[3200] + "GGG")
DELETION = ("chr1", 2501, "del", SEQ[2500:2504], SEQ[2500])
MULTI = ("chr1", 3101, "multi", SEQ[3100], ",".join(b for b in "ACGT" if b != SEQ[3100])[:3])
NEAR_START = ("chr1", 101, "del_start", SEQ[100:103], SEQ[100])
ACROSS_EDGE = ("chr1", 1996, "del_edge", SEQ[1995:2005], SEQ[1995])
OUTSIDE = ("chr1", 5500, "far", SEQ[5499], other(SEQ[5499]))
OTHER_CHROM = ("chr2", 100, "chr2", "A", "C")
WRONG_REF = ("chr1", 3301, "wrongref", other(SEQ[3300]), SEQ[3300])
STAR = ("chr1", 3401, "star", SEQ[3400], "*")
RECORDS = [SNV, INSERTION, DELETION, MULTI, NEAR_START, ACROSS_EDGE, OUTSIDE, OTHER_CHROM, WRONG_REF, STAR]


@pytest.fixture(scope="module", autouse=True)
def isolated_home(tmp_path_factory):
    """Variant windows import kipoiseq, which imports kipoi, which writes ~/.kipoi."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    fasta = folder / "genome.fa"
    write_fasta(fasta, {"chr1": SEQ[:2000] + SEQ[2000:2600].lower() + SEQ[2600:], "chr2": "A" * 3000})
    genes = folder / "genes.tsv"
    write_table(genes, GENES)
    vcf = write_vcf(folder / "calls.vcf.gz", SIZES, RECORDS)
    return {"fasta": str(fasta), "genes": str(genes), "vcf": vcf, "folder": folder}


def padded(start: int, end: int) -> str:
    return "".join(SEQ[p] if 0 <= p < len(SEQ) else "N" for p in range(start, end))


@pytest.fixture(scope="module")
def results(world):
    report = VariantReport()
    windows = list(iter_variant_windows(world["vcf"], world["genes"], world["fasta"], L, report=report, progress=False))
    return {(w.variant.id, w.variant.alt, w.gene.gene_id): w for w in windows}, report


def test_pairs_and_report_counts(results):
    windows, report = results
    assert sorted({(k[0], k[2]) for k in windows}) == sorted([
        ("snv", "g1"), ("snv", "g2"), ("ins", "g1"), ("ins", "g2"), ("del", "g1"), ("del", "g2"), ("multi", "g1"), ("multi", "g2"),
        ("del_start", "g3"), ("del_edge", "g1"),
    ])
    assert report.n_records == 10 and report.n_pairs == len(windows) == 12  # multi: 2 ALTs x 2 genes
    assert report.n_outside == 2 and report.outside == [f"chr1:5500:{OUTSIDE[3]}>{OUTSIDE[4]}", "chr2:100:A>C"]
    assert report.n_ref_mismatch == 1 and report.ref_mismatch[0].startswith("chr1:3301:")
    assert report.n_unsupported == 1 and report.unsupported[0].endswith(">*")


def test_every_window_keeps_length_and_ref_matches_fasta(results):
    windows, _ = results
    for w in windows.values():
        assert w.ref_onehot.shape == w.alt_onehot.shape == (L, 4)
        start = w.gene.tss - L // 2
        np.testing.assert_array_equal(w.ref_onehot, one_hot(padded(start, start + L)))


def test_snv_changes_one_base_at_its_offset(results):
    windows, _ = results
    for gene, offset in (("g1", 1000), ("g2", 500)):
        w = windows[("snv", SNV[4], gene)]
        changed = np.flatnonzero((w.ref_onehot != w.alt_onehot).any(axis=1))
        assert changed.tolist() == [offset]
        np.testing.assert_array_equal(w.alt_onehot[offset], one_hot(SNV[4])[0])


def test_multiallelic_record_split(results):
    windows, _ = results
    alts = sorted(k[1] for k in windows if k[0] == "multi" and k[2] == "g1")
    assert alts == sorted(MULTI[4].split(","))


def test_insertion_downstream_of_tss_shifts_right_side_only(results):
    windows, _ = results
    w = windows[("ins", INSERTION[4], "g1")]  # window [2000, 4000), TSS index 1000, insertion after base 3200
    expected = padded(2000, 3201) + "GGG" + padded(3201, 3997)
    np.testing.assert_array_equal(w.alt_onehot, one_hot(expected))
    np.testing.assert_array_equal(w.alt_onehot[:1000], w.ref_onehot[:1000])  # TSS anchor: upstream untouched


def test_insertion_upstream_of_tss_shifts_left_side_only(results):
    windows, _ = results
    w = windows[("ins", INSERTION[4], "g2")]  # window [2500, 4500), TSS 3500
    expected = padded(2503, 3201) + "GGG" + padded(3201, 4500)
    np.testing.assert_array_equal(w.alt_onehot, one_hot(expected))
    np.testing.assert_array_equal(w.alt_onehot[1000:], w.ref_onehot[1000:])


def test_deletion_pulls_in_bases_from_beyond_the_window_edge(results):
    windows, _ = results
    w = windows[("del", DELETION[4], "g1")]  # deletes 2501..2503, left of the TSS
    expected = padded(1997, 2501) + padded(2504, 4000)
    np.testing.assert_array_equal(w.alt_onehot, one_hot(expected))
    w = windows[("del", DELETION[4], "g2")]  # window [2500, 4500) starts on the deletion's first base
    np.testing.assert_array_equal(w.alt_onehot, one_hot(padded(2497, 2501) + padded(2504, 4500)))


def test_deletion_near_chromosome_start_pads_with_n(results):
    windows, _ = results
    w = windows[("del_start", NEAR_START[4], "g3")]  # window [-700, 1300), deletes 101..102
    expected = "N" * 702 + padded(0, 101) + padded(103, 1300)
    np.testing.assert_array_equal(w.alt_onehot, one_hot(expected))
    assert w.alt_onehot[:702].sum() == 0


def test_deletion_across_window_start(results):
    windows, _ = results
    w = windows[("del_edge", ACROSS_EDGE[4], "g1")]  # deletes 1996..2004, window starts at 2000
    expected = padded(1991, 1996) + padded(2005, 4000)
    np.testing.assert_array_equal(w.alt_onehot, one_hot(expected))


def test_unindexed_and_uncompressed_vcf_rejected_with_fix(world):
    folder = world["folder"]
    plain = folder / "plain.vcf"
    plain.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(DataInputError, match=r"plain\.vcf: VCF is not bgzip-compressed.*bgzip -c.*tabix -p vcf"):
        next(iter_variant_windows(str(plain), world["genes"], world["fasta"], L))
    unindexed = str(folder / "unindexed.vcf.gz")
    pysam.tabix_compress(str(plain), unindexed)
    with pytest.raises(DataInputError, match=r"unindexed\.vcf\.gz: VCF has no tabix index.*tabix -p vcf"):
        next(iter_variant_windows(unindexed, world["genes"], world["fasta"], L))


def test_vcf_with_ensembl_chromosome_names(world):
    vcf = write_vcf(world["folder"] / "ensembl.vcf.gz", {"1": 6000}, [("1", *SNV[1:])])
    report = VariantReport()
    with pytest.warns(UserWarning, match=r"ensembl\.vcf\.gz: chromosome names are spelt differently from the gene "
                                         r"table \('1' read for 'chr1'\); aliasing them") as caught:
        windows = list(iter_variant_windows(vcf, world["genes"], world["fasta"], L, report=report, progress=False))
    assert sum("spelt differently" in str(w.message) for w in caught) == 1  # once per file
    assert [w.gene.gene_id for w in windows] == ["g1", "g2"] and report.n_outside == 0
    assert np.flatnonzero((windows[0].ref_onehot != windows[0].alt_onehot).any(axis=1)).tolist() == [1000]


def test_iupac_ref_is_skipped_as_a_ref_mismatch_not_an_error(world):
    vcf = write_vcf(world["folder"] / "iupac.vcf.gz", SIZES, [("chr1", 3002, "iupac", "M", "A"), SNV])
    report = VariantReport()
    windows = list(iter_variant_windows(vcf, world["genes"], world["fasta"], L, report=report, progress=False))
    assert report.n_ref_mismatch == 1 and report.ref_mismatch == ["chr1:3002:M>A"]
    assert [w.variant.id for w in windows] == ["snv", "snv"]  # the next record is still scored (g1, g2)

"""FASTA windows: exact bases, N padding at both chromosome ends, case, aliases, indexes, bad input."""
import gzip
import os
import shutil

import numpy as np
import pytest

from kipoi_seq2exp.data import genome
from kipoi_seq2exp.data.coords import window_around
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.genome import FastaWindows, one_hot
from kipoi_seq2exp.data.synthetic import random_dna, write_fasta

CHR1 = random_dna(5_000, np.random.default_rng(1))
CHR2 = random_dna(3_000, np.random.default_rng(2))


@pytest.fixture()
def fasta(tmp_path):
    path = tmp_path / "genome.fa"
    soft_masked = CHR1[:1000] + CHR1[1000:2000].lower() + CHR1[2000:]
    write_fasta(path, {"chr1": soft_masked, "chr2": CHR2})
    return str(path)


def reference_one_hot(seq: str) -> np.ndarray:
    """Per-base reference encoding (slow, obvious) to compare the lookup table against."""
    rows = {"A": [1, 0, 0, 0], "C": [0, 1, 0, 0], "G": [0, 0, 1, 0], "T": [0, 0, 0, 1]}
    return np.array([rows.get(b.upper(), [0, 0, 0, 0]) for b in seq], dtype=np.float32).reshape(-1, 4)


def test_one_hot_matches_per_base_reference_including_case_and_iupac():
    seq = "ACGTacgtNnRYKM-.*" + CHR1[:200]
    encoded = one_hot(seq)
    assert encoded.dtype == np.float32 and encoded.shape == (len(seq), 4)
    np.testing.assert_array_equal(encoded, reference_one_hot(seq))
    assert encoded[8:17].sum() == 0  # N, IUPAC, gaps: all-zero rows (not kipoiseq's 0.25)


def test_window_inside_chromosome_is_exact_and_uppercase(fasta):
    reader = FastaWindows(fasta)
    assert reader.chrom_sizes == {"chr1": 5000, "chr2": 3000}
    assert reader.fetch("chr1", 900, 1100) == CHR1[900:1100].upper()
    np.testing.assert_array_equal(one_hot(reader.fetch("chr1", 1000, 2000)), reference_one_hot(CHR1[1000:2000]))


def test_window_padded_with_n_at_both_chromosome_ends(fasta):
    reader = FastaWindows(fasta)
    start_window = window_around("chr1", 300, 2000)  # [-700, 1300)
    seq = reader.fetch(start_window.chrom, start_window.start, start_window.end)
    assert len(seq) == 2000 and seq[:700] == "N" * 700 and seq[700:] == CHR1[:1300].upper()
    end_window = window_around("chr2", 2900, 2000)  # [1900, 3900)
    seq = reader.fetch(end_window.chrom, end_window.start, end_window.end)
    assert len(seq) == 2000 and seq[:1100] == CHR2[1900:] and seq[1100:] == "N" * 900
    assert one_hot(seq)[1100:].sum() == 0
    assert reader.fetch("chr2", -10, 0) == "N" * 10


def test_chromosome_alias_resolved_and_missing_chromosome_named(fasta):
    reader = FastaWindows(fasta)
    assert reader.fetch("1", 0, 50) == CHR1[:50]
    with pytest.raises(DataInputError, match=r"genome\.fa.*'chr7'.*Fix"):
        reader.fetch("chr7", 0, 10)


def test_bgzf_fasta_read_and_plain_gzip_rejected_with_fix(tmp_path, fasta):
    import pysam

    bgzf = str(tmp_path / "genome.fa.gz")
    pysam.tabix_compress(fasta, bgzf)
    reader = FastaWindows(bgzf)
    assert reader.fetch("chr2", 2990, 3010) == CHR2[2990:] + "N" * 10
    plain = tmp_path / "plain.fa.gz"
    with open(fasta, "rb") as src, gzip.open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with pytest.raises(DataInputError, match="plain gzip.*bgzip"):
        FastaWindows(str(plain))


def test_unindexed_fasta_in_read_only_folder_is_indexed_in_cache(tmp_path, fasta, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    path = folder / "genome.fa"
    shutil.copy(fasta, path)
    os.chmod(folder, 0o555)
    if os.geteuid() == 0:  # root ignores permission bits: pretend like an ordinary user would see it
        monkeypatch.setattr(genome, "_writable", lambda d: os.path.abspath(d) != str(folder))
    try:
        cache = tmp_path / "cache"
        reader = FastaWindows(str(path), cache_dir=str(cache))
        assert reader.fetch("chr1", 10, 20) == CHR1[10:20]
        assert not (folder / "genome.fa.fai").exists()
        assert [p.name for p in cache.rglob("*.fai")] == ["genome.fa.fai"]
        assert not list(cache.rglob(".fai-*"))  # temp folder cleaned up
        (tmp_path / "not_a_dir.txt").write_text("a file where the cache folder should be")
        with pytest.raises(DataInputError, match=r"genome\.fa: no FASTA index.*samtools faidx.*cache_dir"):
            FastaWindows(str(path), cache_dir=str(tmp_path / "not_a_dir.txt" / "sub"))
    finally:
        os.chmod(folder, 0o755)


def test_missing_fasta_named(tmp_path):
    with pytest.raises(DataInputError, match="nope.fa: FASTA file not found"):
        FastaWindows(str(tmp_path / "nope.fa"))


def _rewrite_keeping_index(path: str, records: dict[str, str]) -> None:
    """Replace the FASTA's content, leaving its .fai from the previous version in place."""
    index = open(path + ".fai").read()
    write_fasta(path, records)
    with open(path + ".fai", "w") as handle:
        handle.write(index)


@pytest.mark.parametrize("records", [
    {"chr1": "A" + CHR1, "chr2": CHR2},           # a longer chr1: chr2's header shifts by one byte
    {"chr2": CHR2, "chr1": CHR1},                 # same sequences, another order
    {"chr1": CHR1[:-1], "chr2": CHR2 + "A"},      # chr2 one base longer at the end
], ids=["longer-first", "reordered", "longer-last"])
def test_stale_fasta_index_is_an_error_naming_the_index(fasta, records):
    FastaWindows(fasta).fetch("chr1", 0, 10)  # builds the index for the original file
    _rewrite_keeping_index(fasta, records)
    with pytest.raises(DataInputError, match=r"genome\.fa\.fai: this FASTA index does not match .*genome\.fa.*"
                                             r"another version.*Fix: delete"):
        FastaWindows(fasta)


def test_fresh_index_of_rewritten_fasta_reads_the_new_bases(fasta):
    FastaWindows(fasta)
    _rewrite_keeping_index(fasta, {"chr1": "A" + CHR1, "chr2": CHR2})
    os.remove(fasta + ".fai")
    assert FastaWindows(fasta).fetch("chr2", 0, 50) == CHR2[:50].upper()


@pytest.mark.parametrize("row", ["chr1\tnot-a-number\n", "chr1\t5000\t6\n"], ids=["garbage", "short"])
def test_malformed_fasta_index_row_is_an_error(fasta, row):
    FastaWindows(fasta)
    with open(fasta + ".fai", "w") as handle:
        handle.write(row)
    with pytest.raises(DataInputError, match=r"line 1 is not a FASTA index row"):
        FastaWindows(fasta)


@pytest.mark.parametrize("text, last", [
    (">chr1 a description\r\nACGTACGT\r\nACG\r\n>chr2\r\nTTTT\r\n", "TTTT"),   # CRLF, text after the name
    (">chr1\nACGTACGT\nACG\n>chr2\nTTTT", "TTTT"),                              # no newline at the end
    (">chr0\n>chr1\nACGTACGT\n>chr2\nGGCC\n", "GGCC"),                          # an empty sequence
    (">chr1 " + "x" * 10_000 + "\nACGTACGT\n>chr2\nGGCC\n", "GGCC"),            # a header longer than any read
    (">chr1\nACGT\nACGT\n>chr2\nGGCC\n", "GGCC"),                               # sequences of whole lines
], ids=["crlf", "no-final-newline", "empty-record", "long-header", "whole-lines"])
def test_fresh_index_of_unusual_fasta_layouts_is_accepted(tmp_path, text, last):
    path = tmp_path / "genome.fa"
    path.write_bytes(text.encode())
    assert FastaWindows(str(path)).fetch("chr2", 0, 4) == last
    assert FastaWindows(str(path)).fetch("chr2", 0, 4) == last  # again, through the index now on disk


def test_stale_index_after_the_last_sequence_grew_by_whole_lines(tmp_path):
    path = tmp_path / "genome.fa"
    path.write_text(">chr1\nACGT\nACGT\n")
    FastaWindows(str(path))
    path.write_text(">chr1\nACGT\nACGT\nACGT\n")
    with pytest.raises(DataInputError, match=r"'chr1' is 8 bases long by the index, but the FASTA's sequence goes on"):
        FastaWindows(str(path))

"""bigWig windows: exact raw values, NaN -> 0, zero padding at both ends, aliases, bad files."""
import numpy as np
import pytest

from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.synthetic import demo_signal, write_bigwig
from kipoi_seq2exp.data.tracks import BigWigTrack

SIZES = {"1": 6000, "2": 3000}  # Ensembl-style names: genes say "chr1"
SIGNAL = demo_signal(6000, seed=3, nan_runs=[(100, 350), (5990, 6000)])


@pytest.fixture()
def bigwig(tmp_path):
    path = tmp_path / "dnase.bw"
    write_bigwig(path, SIZES, {"1": SIGNAL})  # chr "2" in the header, no data
    return str(path)


def test_values_exact_with_nan_runs_as_zero(bigwig):
    track = BigWigTrack(bigwig)
    got = track.window("chr1", 0, 2000)
    expected = np.nan_to_num(SIGNAL[:2000]).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float32 and not np.isnan(got).any()
    assert got[100:350].sum() == 0 and got[99] == np.float32(SIGNAL[99])
    assert track.window("chr2", 0, 500).sum() == 0  # chromosome without data reads as zeros


def test_padding_at_both_chromosome_ends(bigwig):
    track = BigWigTrack(bigwig)
    left = track.window("chr1", -700, 1300)
    np.testing.assert_array_equal(left[:700], 0)
    np.testing.assert_array_equal(left[700:], np.nan_to_num(SIGNAL[:1300]).astype(np.float32))
    right = track.window("chr1", 5000, 7000)
    np.testing.assert_array_equal(right[:1000], np.nan_to_num(SIGNAL[5000:]).astype(np.float32))
    np.testing.assert_array_equal(right[1000:], 0)


def test_missing_chromosome_named_with_fix(bigwig):
    with pytest.raises(DataInputError, match=r"dnase\.bw.*'chr9'.*Fix"):
        BigWigTrack(bigwig).window("chr9", 0, 10)


def test_file_that_is_not_a_bigwig(tmp_path):
    fake = tmp_path / "peaks.bw"
    fake.write_text("chr1\t0\t100\t5\n")
    with pytest.raises(DataInputError, match=r"peaks\.bw: not a readable bigWig.*bedGraphToBigWig"):
        BigWigTrack(str(fake))
    with pytest.raises(DataInputError, match="not found"):
        BigWigTrack(str(tmp_path / "missing.bw"))


def test_depth_is_the_mean_signal_per_covered_base_and_scales_with_the_library(tmp_path, bigwig):
    """What a depth-normalised member divides by: x0.4 on every value gives exactly x0.4 depth."""
    values = np.nan_to_num(SIGNAL)
    covered = ~np.isnan(SIGNAL)
    # the header stores the sum as an integer: exact to < 1 part in the sum (12,344 here)
    assert BigWigTrack(bigwig).depth == pytest.approx(values[covered].sum() / covered.sum(), rel=1e-4)
    shallow = tmp_path / "shallow.bw"
    write_bigwig(shallow, SIZES, {"1": SIGNAL * 0.4})
    assert BigWigTrack(str(shallow)).depth == pytest.approx(0.4 * BigWigTrack(bigwig).depth, rel=1e-3)


def test_depth_of_an_empty_bigwig_is_an_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.bw"
    write_bigwig(empty, SIZES, {"1": np.zeros(6000)})
    with pytest.raises(DataInputError, match="empty.bw.*no positive signal"):
        BigWigTrack(str(empty)).depth

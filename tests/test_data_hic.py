"""Hi-C contact track: exact per-base values vs the pixel table, single padding, fallback, bad files."""
import numpy as np
import pytest

from kipoi_seq2exp.data.config import HicOptions
from kipoi_seq2exp.data.coords import window_around
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.hic import HicContacts, PowerLawContacts, powerlaw_contact
from kipoi_seq2exp.data.synthetic import demo_contacts, write_cool

BIN = 100
SIZES = {"chr1": 5050, "chr2": 3000}  # chr1 ends inside a partial bin
OPTIONS = HicOptions(bin_size=BIN, normalization="NONE")


@pytest.fixture(scope="module")
def cool(tmp_path_factory):
    path = tmp_path_factory.mktemp("hic") / "map.cool"
    write_cool(path, SIZES, BIN, demo_contacts(SIZES, BIN, max_span_bins=15))
    return str(path)


def dense(chrom: str) -> np.ndarray:
    """Symmetric contact matrix of one chromosome straight from the pixel table."""
    pixels = demo_contacts(SIZES, BIN, max_span_bins=15)
    offset = sum(-(-n // BIN) for c, n in SIZES.items() if list(SIZES).index(c) < list(SIZES).index(chrom))
    n = -(-SIZES[chrom] // BIN)
    mine = pixels[(pixels.bin1_id >= offset) & (pixels.bin1_id < offset + n)]
    matrix = np.zeros((n, n))
    matrix[mine.bin1_id - offset, mine.bin2_id - offset] = mine["count"]
    return np.maximum(matrix, matrix.T)


def per_base_reference(chrom: str, tss: int, length: int, pseudocount: bool = True) -> np.ndarray:
    """Obvious per-base loop: base p takes the contact of bin p // BIN with the TSS bin."""
    matrix = dense(chrom)
    window = window_around(chrom, tss, length)
    out = np.zeros(length, dtype=np.float32)
    for i, p in enumerate(range(window.start, window.end)):
        if 0 <= p < SIZES[chrom]:
            d = abs(p // BIN - tss // BIN) * BIN
            contact = matrix[tss // BIN, p // BIN]
            if pseudocount:
                contact += np.exp(OPTIONS.powerlaw_scale - OPTIONS.powerlaw_gamma * np.log(max(d, BIN) + 1))
            out[i] = np.log10(1 + contact)
    return out


@pytest.mark.parametrize("chrom, tss", [("chr1", 2500), ("chr1", 300), ("chr1", 4990), ("chr2", 2999), ("chr2", 0)])
def test_track_equals_per_base_reference_and_is_padded_once(cool, chrom, tss):
    """Near both ends, every base must sit at its own genomic bin: a second pad would shift the track."""
    window = window_around(chrom, tss, 2000)
    got = HicContacts(cool, OPTIONS).window(chrom, tss, window.start, window.end)
    expected = per_base_reference(chrom, tss, 2000)
    assert got.shape == (2000,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    off_chromosome = np.array([not 0 <= p < SIZES[chrom] for p in range(window.start, window.end)])
    assert (got[off_chromosome] == 0).all() and (got[~off_chromosome] > 0).all()


def test_double_padding_would_be_caught(cool):
    """The released code's bug, simulated: padding the clipped track twice shifts it by the pad length."""
    window = window_around("chr1", 300, 2000)
    good = HicContacts(cool, OPTIONS).window("chr1", 300, window.start, window.end)
    pad = -window.start
    twice = np.concatenate([np.zeros(pad, np.float32), good])[:2000]
    assert not np.allclose(twice, per_base_reference("chr1", 300, 2000))
    np.testing.assert_allclose(good, per_base_reference("chr1", 300, 2000), rtol=1e-6)


def test_without_pseudocount_reads_raw_contacts(cool):
    options = HicOptions(bin_size=BIN, normalization="NONE", pseudocount=False)
    got = HicContacts(cool, options).window("chr2", 1500, 500, 2500)
    np.testing.assert_allclose(got, per_base_reference("chr2", 1500, 2000, pseudocount=False), rtol=1e-6)
    assert got[1000] == pytest.approx(np.log10(1 + dense("chr2")[15, 15]))


def test_powerlaw_fallback_matches_abc_defaults():
    abc = HicOptions()
    np.testing.assert_allclose(powerlaw_contact(np.array([0, 5000, 100_000]), abc), [0.12344, 0.12344, 0.009112], rtol=1e-3)
    fallback = PowerLawContacts(HicOptions(bin_size=BIN), chrom_length=lambda chrom: 5050)
    got = fallback.window("chr1", 300, -700, 1300)
    assert (got[:700] == 0).all()
    tss_bin_value = np.log10(1 + np.exp(5.3181 - 0.87 * np.log(BIN + 1)))
    assert got[1000] == pytest.approx(tss_bin_value)  # TSS bin: distance floored at one bin
    assert got[700] == pytest.approx(np.log10(1 + np.exp(5.3181 - 0.87 * np.log(3 * BIN + 1))))  # base 0, bin 0
    assert got[1100] == pytest.approx(np.log10(1 + np.exp(5.3181 - 0.87 * np.log(BIN + 1))))
    assert got[1250] == pytest.approx(np.log10(1 + np.exp(5.3181 - 0.87 * np.log(2 * BIN + 1))))
    assert np.all(np.diff(got[1000:]) <= 0)


def test_chromosome_alias(cool):
    got = HicContacts(cool, OPTIONS).window("1", 2500, 1500, 3500)
    np.testing.assert_allclose(got, per_base_reference("chr1", 2500, 2000), rtol=1e-6)
    with pytest.raises(DataInputError, match=r"map\.cool.*'chr5'"):
        HicContacts(cool, OPTIONS).window("chr5", 100, 0, 200)


def test_bad_hic_inputs_named(cool, tmp_path):
    with pytest.raises(DataInputError, match=r"normalisation 'VC' not in this file.*NONE"):
        HicContacts(cool, HicOptions(bin_size=BIN, normalization="VC"))
    with pytest.raises(DataInputError, match=r"cooler resolution is 100 bp, config asks 5000"):
        HicContacts(cool, HicOptions(normalization="NONE"))
    fake = tmp_path / "map.hic"
    fake.write_text("not a hic file")
    with pytest.raises(DataInputError, match=r"map\.hic: not a \.hic, \.cool or \.mcool"):
        HicContacts(str(fake), OPTIONS)
    with pytest.raises(DataInputError, match="not found"):
        HicContacts(str(tmp_path / "absent.hic"), OPTIONS)


def test_dot_hic_written_by_hictkpy_reads_like_the_cool(cool, tmp_path):
    pytest.importorskip("pyarrow", reason="hictkpy writes .hic only through pyarrow")
    import hictkpy

    path = str(tmp_path / "map.hic")
    writer = hictkpy.hic.FileWriter(path, SIZES, BIN)
    writer.add_pixels(demo_contacts(SIZES, BIN, max_span_bins=15))
    writer.finalize()
    window = window_around("chr1", 300, 2000)
    got = HicContacts(path, OPTIONS).window("chr1", 300, window.start, window.end)
    np.testing.assert_allclose(got, per_base_reference("chr1", 300, 2000), rtol=1e-6)

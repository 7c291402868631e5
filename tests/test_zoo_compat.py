"""Each shim of kipoi_seq2exp/zoo/compat.py: the kipoi / kipoi-veff code path fails without it and
works with it. (The command-line shims, one-line errors and the VCF check, are exercised through
the real commands in test_zoo_cli.py.)"""
from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

import kipoi  # noqa: F401  - kipoi.writers / kipoi.pipeline below need the package initialised
import kipoi.pipeline
import kipoi.writers
from kipoi_seq2exp.zoo import compat, model  # noqa: F401  - importing the wrapper applies the shims
from kipoi_seq2exp.zoo.source import ZooError

from test_zoo_helpers import REPO


def test_apply_is_idempotent():
    get_writer, validate = kipoi.writers.get_writer, kipoi.pipeline.validate_kwargs
    compat.apply()
    for shim in compat.SHIMS:
        shim()
    assert kipoi.writers.get_writer is get_writer and kipoi.pipeline.validate_kwargs is validate


def _write_string_metadata(path):
    writer = kipoi.writers.HDF5BatchWriter(str(path), chunk_size=4)
    writer.batch_write({"preds": np.array([0.5, 1.5], dtype=np.float32),
                        "metadata": {"gene_id": np.array(["G1", "G2"])}})
    writer.close()


def test_numpy_aliases_let_kipoi_write_strings_to_hdf5(tmp_path, monkeypatch):
    _write_string_metadata(tmp_path / "ok.h5")
    with h5py.File(tmp_path / "ok.h5") as f:
        assert [x.decode() for x in f["metadata/gene_id"][:]] == ["G1", "G2"]
        np.testing.assert_array_equal(f["preds"][:], [0.5, 1.5])
    monkeypatch.delattr(np, "string_")
    with pytest.raises(AttributeError):
        _write_string_metadata(tmp_path / "without_shim.h5")


VEFF_SNIPPET = """
import numpy as np
from kipoi_seq2exp.zoo.compat import restore_numpy_aliases
from kipoi_veff.utils.dna_reshapers import ReshapeDna
from kipoi_veff.utils.mutators import _modify_bases

def mutate():
    seq = np.zeros((1, 6, 4), dtype=np.float32); seq[0, :, 0] = 1
    _modify_bases(seq, np.array([0]), np.array([3]), np.array(["G"]), np.array([False]))
    return ReshapeDna((None, 4)).get_seq_len(), seq[0].argmax(axis=1).tolist()

try:
    mutate()
    print("without shim: ok")
except AttributeError as err:
    print("without shim:", type(err).__name__)
restore_numpy_aliases()
print("with shim:", mutate())
"""


def test_numpy_aliases_let_kipoi_veff_mutate_one_hot_dna():
    """kipoi-veff's SNV mutator (np.int) and DNA reshaper (np.in1d); in a subprocess, because
    importing kipoi_veff reconfigures logging for the whole process."""
    result = subprocess.run([sys.executable, "-c", VEFF_SNIPPET], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "without shim: AttributeError"
    assert lines[1] == "with shim: (None, [0, 0, 0, 2, 0, 0])"


VEFF_REGION_SNIPPET = """
import sys
import cyvcf2, numpy as np
import kipoi_veff.snv_predict as snv
from kipoi_seq2exp.zoo.compat import veff_windows_from_chromosome_start

def found():  # a 200-kb window of a gene 25 kb after the chromosome start begins at -75,000
    regions = {"chr": np.array(["chr1"]), "start": np.array([-75_000]), "end": np.array([125_000])}
    return [r.POS for r in snv._overlap_vcf_region(cyvcf2.VCF(sys.argv[1]), regions)[0]]

print("without shim:", found())
veff_windows_from_chromosome_start()
print("with shim:", found())
"""


def test_veff_finds_variants_of_windows_that_start_before_the_chromosome(tmp_path):
    import pysam

    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=740000>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t500\tv1\tA\tG\t.\t.\t.\n"
                   "chr1\t124000\tv2\tC\tT\t.\t.\t.\nchr1\t130000\tv3\tC\tT\t.\t.\t.\n")
    pysam.tabix_compress(str(vcf), str(vcf) + ".gz")
    pysam.tabix_index(str(vcf) + ".gz", preset="vcf")
    result = subprocess.run([sys.executable, "-c", VEFF_REGION_SNIPPET, str(vcf) + ".gz"], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["without shim: []", "with shim: [500, 124000]"]


def test_in1d_alias_flattens_like_numpy_1():
    np.testing.assert_array_equal(np.in1d(np.array([[1, 5], [3, 7]]), [3, 5]), [False, True, True, False])
    np.testing.assert_array_equal(np.in1d([1, 2], [2], invert=True), [True, False])


def test_pyvcf_info_builds_without_type_code(tmp_path, monkeypatch):
    """kipoi-veff's VcfWriter builds pyvcf's Info header record with 6 fields; pyvcf3 has 7."""
    import vcf

    (tmp_path / "in.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                     "chr1\t10\tv1\tA\tG\t.\t.\t.\n")
    reader = vcf.Reader(filename=str(tmp_path / "in.vcf"))
    reader.infos["KV:DIFF"] = vcf.parser._Info("KV:DIFF", None, "String", "effect", None, None)
    with open(tmp_path / "out.vcf", "w") as handle:
        writer = vcf.Writer(handle, reader)
        for record in reader:
            record.INFO["KV:DIFF"] = "0.5"
            writer.write_record(record)
        writer.close()
    back = vcf.Reader(filename=str(tmp_path / "out.vcf"))
    assert back.infos["KV:DIFF"].type == "String" and next(back).INFO["KV:DIFF"] == ["0.5"]

    original = vcf.parser._Info.__bases__[0]
    monkeypatch.setattr(vcf.parser, "_Info", original)
    with pytest.raises(TypeError):
        vcf.parser._Info("KV:DIFF", None, "String", "effect", None, None)


def test_hdf5_chunk_size_reaches_only_the_hdf5_writer(tmp_path):
    tsv = kipoi.writers.get_writer(str(tmp_path / "p.tsv"), None, hdf5_chunk_size=16)
    h5 = kipoi.writers.get_writer(str(tmp_path / "p.h5"), None, hdf5_chunk_size=16)
    assert isinstance(tsv, kipoi.writers.TsvBatchWriter)
    assert isinstance(h5, kipoi.writers.HDF5BatchWriter) and h5.chunk_size == 16
    h5.close()
    with pytest.raises(TypeError):  # kipoi's own get_writer hands the option to the TSV writer
        kipoi.writers.get_writer.__wrapped__(str(tmp_path / "q.tsv"), None, hdf5_chunk_size=16)


class _Arg:
    optional = True


class _OurDataloader:
    defined_as = compat.SEQ2EXP_DATALOADERS[0]
    args = {"fasta_file": _Arg(), "dnase_bigwig": _Arg()}


def test_misspelt_dataloader_argument_is_an_error():
    args = {"fasta_file": "genome.fa", "dnase_bigwg": "dnase.bw"}
    with pytest.raises(ZooError, match=r"\['dnase_bigwg'\].*'dnase_bigwig'"):
        kipoi.pipeline.validate_kwargs(_OurDataloader, args)
    # kipoi alone drops the typo and would predict from an all-zero DNase channel
    assert kipoi.pipeline.validate_kwargs.__wrapped__(_OurDataloader, args) == {"fasta_file": "genome.fa"}


def test_other_dataloaders_keep_kipoi_behaviour():
    class Other(_OurDataloader):
        defined_as = "somebody.else.Dataloader"

    assert kipoi.pipeline.validate_kwargs(Other, {"fasta_file": "a", "typo": 1}) == {"fasta_file": "a"}

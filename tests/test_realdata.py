"""Real chr22 data: block split, verified fetch (offline: fake archives, a file:// index), the shipped
real slice read through the data layer, and the real_chr22 trainer configs."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from kipoi_seq2exp.cli import main
from kipoi_seq2exp.data.config import DataConfig, TrackConfig
from kipoi_seq2exp.data.dataset import WindowDataset
from kipoi_seq2exp.data.genome import FastaWindows, open_fasta
from kipoi_seq2exp.model.config import ACCESSIBILITY_SIGNALS
from kipoi_seq2exp.realdata import chr22, fetch
from kipoi_seq2exp.realdata.chr22 import (
    CELL_TYPES, FASTA, GENE_TABLE, RESOURCE_DIR, SLICE_DIR, SOURCE_FILES, cell_files,
)
from kipoi_seq2exp.realdata.fetch import FetchError, extract_verified, fetch_chr22
from kipoi_seq2exp.realdata.slice import cut_slice
from kipoi_seq2exp.realdata.split import block_split
from kipoi_seq2exp.train.config import load_run_config
from kipoi_seq2exp.train.datamodule import Seq2ExpDataModule

SLICE_REGION = (30_220_000, 30_385_000)


# ------------------------------------------------------------------------------------ split
def test_block_split_by_2mb_blocks():
    tss = np.array([0, 1_999_999, 2_000_000, 4_100_000, 9_999_999, 10_000_000, 12_500_000])
    assert block_split(tss).tolist() == ["test", "test", "valid", "train", "train", "test", "valid"]


def test_shipped_gene_table_carries_the_readme_split():
    genes = pd.read_csv(GENE_TABLE, sep="\t")
    assert len(genes) == 418 and set(genes["chrom"]) == {"chr22"}
    assert genes["split"].tolist() == block_split(genes["tss"].to_numpy()).tolist()
    assert genes["split"].value_counts().to_dict() == {"train": 216, "test": 137, "valid": 65}
    features = pd.read_csv(RESOURCE_DIR / "mrna_features_chr22.tsv", sep="\t")
    assert features["gene_id"].tolist() == genes["gene_id"].tolist()
    for cell in CELL_TYPES:
        labels = pd.read_csv(RESOURCE_DIR / f"labels_{cell}_procap.tsv", sep="\t")
        assert labels["gene_id"].tolist() == genes["gene_id"].tolist()
        np.testing.assert_allclose(labels["label"], np.log10(1 + labels["count"]), atol=1e-6)


# ------------------------------------------------------------------------------------ fetch
def _sdist(path: Path, members: dict[str, bytes], top: str = "deepdetails-1.0.0rc2") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{top}/tests/data/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def _slice_as_source() -> tuple[dict[str, bytes], tuple[chr22.SourceFile, ...]]:
    """The shipped slice's files under their sdist names, and SOURCE_FILES with their real sha256."""
    payloads, files = {}, []
    for item in SOURCE_FILES:
        data = (SLICE_DIR / item.name).read_bytes()
        payloads[item.member] = data
        files.append(chr22.SourceFile(item.member, item.name, hashlib.sha256(data).hexdigest()))
    return payloads, tuple(files)


def test_checksum_mismatch_writes_nothing(tmp_path):
    payloads, _ = _slice_as_source()  # right names, but not the published bytes
    archive = _sdist(tmp_path / "fake.tar.gz", payloads)
    out = tmp_path / "real-chr22"
    with pytest.raises(FetchError, match=r"tests/data/chr22\.fa\.gz has sha256 [0-9a-f]{64}, expected c19587"):
        fetch_chr22(out, archive=archive)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["fake.tar.gz"]  # no temporary folder left behind


def test_missing_member_and_broken_archive_are_clear_errors(tmp_path):
    archive = _sdist(tmp_path / "partial.tar.gz", {"chr22.fa.gz": b"x"})
    with pytest.raises(FetchError, match=r"partial\.tar\.gz: has no tests/data/acc\.K562\.chr22\.bw"):
        extract_verified(archive, tmp_path, files=SOURCE_FILES[1:2])
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar")
    with pytest.raises(FetchError, match=r"broken\.tar\.gz: not a readable \.tar\.gz"):
        fetch_chr22(tmp_path / "out", archive=broken)
    assert not (tmp_path / "out").exists()


def test_unreachable_index_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "real-chr22"
    assert main(["data", "fetch-chr22", "--out", str(out), "--index-url", "http://127.0.0.1:9/pypi"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "http://127.0.0.1:9/pypi/deepdetails/json: cannot read the package index" in error
    assert "--archive" in error
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_fetch_from_an_index_verifies_renames_indexes_and_keeps_other_files(tmp_path, monkeypatch):
    """A file:// index in PyPI's JSON layout (relative download URL, as some mirrors give)."""
    payloads, files = _slice_as_source()
    monkeypatch.setattr(fetch, "SOURCE_FILES", files)
    (tmp_path / "packages").mkdir()
    archive = _sdist(tmp_path / "packages" / "deepdetails-1.0.0rc2.tar.gz", payloads)
    page = tmp_path / "pypi" / "deepdetails" / "json"
    page.parent.mkdir(parents=True)
    sdist = {"packagetype": "sdist", "url": "../../packages/deepdetails-1.0.0rc2.tar.gz",
             "digests": {"sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}}
    page.write_text(json.dumps({"releases": {"1.0.0rc2": [{"packagetype": "bdist_wheel"}, sdist]}}))
    out = tmp_path / "real-chr22"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    written = fetch_chr22(out, index=(tmp_path / "pypi").as_uri())
    expected = sorted([f.name for f in files] + [FASTA + ".fai", FASTA + ".gzi", "genes_chr22.tsv"])
    assert sorted(p.name for p in written) == expected
    assert sorted(p.name for p in out.iterdir()) == sorted(expected + ["notes.txt"])
    for item in files:
        assert (out / item.name).read_bytes() == payloads[item.member]
    fetched = pd.read_csv(out / "genes_chr22.tsv", sep="\t")
    assert list(fetched.columns) == ["gene_id", "gene_name", "chrom", "tss", "strand", "fold_11"]  # the README's
    assert fetched.equals(pd.read_csv(GENE_TABLE, sep="\t").drop(columns=["split"]))
    assert (out / (FASTA + ".gzi")).read_bytes() == (SLICE_DIR / (FASTA + ".gzi")).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packages", "pypi", "real-chr22"]


def test_corrupt_download_is_rejected(tmp_path):
    (tmp_path / "pypi" / "deepdetails").mkdir(parents=True)
    (tmp_path / "sdist.tar.gz").write_bytes(b"truncated")
    sdist = {"packagetype": "sdist", "url": (tmp_path / "sdist.tar.gz").as_uri(), "digests": {"sha256": "0" * 64}}
    (tmp_path / "pypi" / "deepdetails" / "json").write_text(json.dumps({"releases": {"1.0.0rc2": [sdist]}}))
    with pytest.raises(FetchError, match=r"sdist\.tar\.gz: sha256 [0-9a-f]{64} differs from the index's 0000"):
        fetch_chr22(tmp_path / "out", index=(tmp_path / "pypi").as_uri())
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ the real slice
def test_slice_is_small_and_documented():
    size = sum(p.stat().st_size for p in SLICE_DIR.iterdir())
    assert size < 2 * 2**20
    readme = (SLICE_DIR / "README.md").read_text()
    assert "30,220,000" in readme and "deepdetails" in readme


def test_slice_reads_soft_masked_bases_as_upper_case():
    start, end = SLICE_REGION
    raw = str(open_fasta(str(SLICE_DIR / FASTA))["chr22"][start:end])
    assert any(c.islower() for c in raw) and set(raw.upper()) <= set("ACGTN")
    windows = FastaWindows(str(SLICE_DIR / FASTA))
    assert windows.fetch("chr22", start, end) == raw.upper()
    assert windows.fetch("chr22", start - 10, start) == "N" * 10  # outside the slice: N


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_slice_windows_through_the_data_layer(cell, tmp_path):
    files = cell_files(cell)
    config = DataConfig(fasta=str(SLICE_DIR / FASTA), gene_table=str(SLICE_DIR / "genes_chr22.tsv"),
                        tracks=[TrackConfig("DNase", str(SLICE_DIR / files.accessibility))], window=20_000,
                        promoter_tracks=["DNase"], mrna_features=str(RESOURCE_DIR / "mrna_features_chr22.tsv"))
    dataset = WindowDataset(config)
    genes = pd.read_csv(SLICE_DIR / "genes_chr22.tsv", sep="\t")
    assert len(dataset) == len(genes) == 7
    item = dataset[0]
    tss = int(genes["tss"].iloc[0])
    with pyBigWig.open(str(SLICE_DIR / files.accessibility)) as bw:
        expected = np.nan_to_num(bw.values("chr22", tss - 10_000, tss + 10_000, numpy=True))
    np.testing.assert_array_equal(item["signals"][:, 0].numpy(), expected)
    seq = item["seq"].numpy()
    assert seq.shape == (20_000, 4) and (seq.sum(axis=1) == 1).mean() > 0.99  # lower case is not N
    assert item["gene_features"][-1].item() == pytest.approx(expected[9_000:11_000].mean(), rel=1e-6)


def test_cut_slice_keeps_real_coordinates(tmp_path):
    start, end = 30_235_000, 30_280_000
    written = cut_slice(SLICE_DIR, tmp_path / "mini", "chr22", start, end, GENE_TABLE, flank=10_000)
    assert {p.name for p in written} >= {FASTA, "genes_chr22.tsv", cell_files("K562").accessibility}
    genes = pd.read_csv(tmp_path / "mini" / "genes_chr22.tsv", sep="\t")
    assert genes["gene_name"].tolist() == ["LIF", "OSM"]
    mini, full = FastaWindows(str(tmp_path / "mini" / FASTA)), FastaWindows(str(SLICE_DIR / FASTA))
    assert mini.chrom_length("chr22") == 50_818_468
    assert mini.fetch("chr22", start, end) == full.fetch("chr22", start, end)
    assert set(mini.fetch("chr22", end, end + 500)) == {"N"}
    name = cell_files("GM12878").procap_minus
    with pyBigWig.open(str(tmp_path / "mini" / name)) as a, pyBigWig.open(str(SLICE_DIR / name)) as b:
        np.testing.assert_array_equal(np.nan_to_num(a.values("chr22", start - 5_000, end + 5_000, numpy=True)),
                                      np.nan_to_num(b.values("chr22", start - 5_000, end + 5_000, numpy=True))
                                      * np.r_[np.zeros(5_000), np.ones(end - start), np.zeros(5_000)])


# ------------------------------------------------------------------------------------ trainer configs
@pytest.mark.parametrize("name, cell", [("real_chr22_k562", "K562"), ("real_chr22_gm12878", "GM12878")])
def test_real_chr22_configs_accessibility_only_with_block_split(name, cell):
    files = cell_files(cell)
    run = load_run_config(name, [f"data.fasta={SLICE_DIR / FASTA}",
                                 f"data.tracks.0.path={SLICE_DIR / files.accessibility}",
                                 f"data.gene_table={SLICE_DIR / 'genes_chr22.tsv'}"])
    assert [(s.name, s.constant, s.weight) for s in run.model.signals] == \
        [(s.name, s.constant, s.weight) for s in ACCESSIBILITY_SIGNALS]
    assert run.data.track_names == ["DNase"] and run.data.split.column == "split"
    assert Path(run.data.expression).name == f"labels_{cell}_procap.tsv"
    assert run.model.window == run.data.window == 20_000
    test = WindowDataset(run.data, "test")
    labels = pd.read_csv(RESOURCE_DIR / f"labels_{cell}_procap.tsv", sep="\t").set_index("gene_id")
    assert len(test) == 7
    item = test[0]
    assert item["target"].item() == pytest.approx(np.log10(1 + labels.at[item["gene_id"], "count"]), rel=1e-6)


def test_real_chr22_joint_config_reads_each_cell_with_its_own_tracks_and_labels():
    run = load_run_config("real_chr22_joint", [
        f"data.fasta={SLICE_DIR / FASTA}", f"data.gene_table={SLICE_DIR / 'genes_chr22.tsv'}",
        f"data.tracks.0.path={SLICE_DIR / cell_files('K562').accessibility}",
        f"data.joint_cells.0.tracks.0.path={SLICE_DIR / cell_files('GM12878').accessibility}"])
    assert run.model.signals[0].transform == "log10p1" and run.model.promoter_transform == "log10p1"
    test = Seq2ExpDataModule(run.data, run.train).dataset("test")
    assert len(test) == 14 and [test[i]["cell"] for i in (0, 7)] == ["K562", "GM12878"]
    for i, cell in ((0, "K562"), (7, "GM12878")):
        labels = pd.read_csv(RESOURCE_DIR / f"labels_{cell}_procap.tsv", sep="\t").set_index("gene_id")
        assert test[i]["target"].item() == pytest.approx(np.log10(1 + labels.at[test[i]["gene_id"], "count"]), rel=1e-6)
    assert test[0]["gene_id"] == test[7]["gene_id"] and not torch.equal(test[0]["signals"], test[7]["signals"])

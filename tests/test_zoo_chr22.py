"""The real-data members Seq2Exp/K562 and Seq2Exp/GM12878: real weights trained on chr22, info that
says so, example files that are the shipped real chr22 slice (`kipoi get-example`), and `kipoi
predict` / `kipoi test` on that slice giving the numbers of the model called directly."""
from __future__ import annotations

import filecmp
import json
import shutil

import h5py
import kipoi
import numpy as np
import pytest
import torch

from kipoi_seq2exp.data.kipoi_dataloader import Seq2ExpDataset
from kipoi_seq2exp.realdata.chr22 import SLICE_DIR
from kipoi_seq2exp.train.export import EXPORT_FILES, WEIGHTS_FILE, load_exported
from kipoi_seq2exp.zoo.source import member_row

from test_zoo_helpers import REPO, copy_source, one_thread, run_cli  # noqa: F401 (one_thread: fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
GROUP = "Seq2Exp"
CELLS = ["K562", "GM12878"]
RESOURCES = REPO / "kipoi_seq2exp" / "resources" / "chr22"
SLICE_GENES = [line.split("\t")[0] for line in (SLICE_DIR / "genes_chr22.tsv").read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A registered private copy of the source holding the repository's two chr22 members."""
    root = tmp_path_factory.mktemp("chr22")
    source = copy_source(root)
    for cell in CELLS:
        for name in EXPORT_FILES:
            shutil.copy(REPO / "model_zoo" / GROUP / cell / name, source / GROUP / cell / name)
    home = root / "home"
    home.mkdir()
    done = run_cli(["python", "-m", "kipoi_seq2exp", "register", "--path", str(source)], home=home)
    assert done.returncode == 0, done.stderr
    return {"source": source, "home": home}


def slice_args(cell: str) -> dict:
    return {"fasta_file": str(SLICE_DIR / "hg38.chr22.fa.gz"), "gene_table": str(SLICE_DIR / "genes_chr22.tsv"),
            "dnase_bigwig": str(SLICE_DIR / f"{cell}.accessibility.chr22.bw"),
            "mrna_features": str(RESOURCES / "mrna_features_chr22.tsv")}


def direct(cell: str, bigwig: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expression and mask of the exported model called directly on the slice's windows (``bigwig``:
    another accessibility file in place of the slice's)."""
    return direct_member(REPO / "model_zoo" / GROUP / cell, cell, bigwig)


def direct_member(folder, cell: str, bigwig: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expression and mask of the member in ``folder`` on the slice's windows with ``cell``'s tracks."""
    model = load_exported(folder)
    args = {**slice_args(cell), **({"dnase_bigwig": bigwig} if bigwig else {})}
    dataset = Seq2ExpDataset(**args, signals="dnase", window=model.cfg.window)
    inputs = [dataset[i]["inputs"] for i in range(len(dataset))]
    seq, signals, features, depth = (torch.from_numpy(np.stack([x[k] for x in inputs]))
                                     for k in ("seq", "signals", "gene_features", "signal_depth"))
    out = model.predict(seq, signals, features, signal_depth=depth)
    return out.expression.numpy(), out.mask.numpy()


@pytest.mark.parametrize("cell", CELLS)
def test_member_holds_real_small_weights_and_says_what_it_was_trained_on(cell):
    folder, row = member_row(cell)
    assert (folder / WEIGHTS_FILE).stat().st_size < 5_000_000
    model = load_exported(folder)
    assert model.cfg.window == 20_000 and [s.name for s in model.cfg.signals] == ["dnase"]
    assert model.cfg.signals[0].transform == "log10p1" and model.cfg.promoter_transform == "log10p1"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["cell_type"] == cell and 0 < metrics["test"]["pearson"] < 1
    info = kipoi.sources.LocalSource(str(REPO / "model_zoo")).get_model_descr(f"{GROUP}/{cell}").info
    for words in ("chr22 ONLY", "accessibility", "PRO-cap", "no H3K27ac, no Hi-C"):
        assert words in info.trained_on
    assert f"pearson {metrics['test']['pearson']:.4g}" in info.training_procedure
    assert "PRO-cap" in info.doc and row["examples"] == "chr22"


@pytest.mark.parametrize("cell", CELLS)
def test_kipoi_get_example_hands_out_the_real_slice(zoo, cell, tmp_path):
    """For a local source kipoi prints the example arguments (relative to the group folder)."""
    result = run_cli(["kipoi", "get-example", f"{GROUP}/{cell}", "--source", "seq2exp", "-o", str(tmp_path / "ex")],
                     home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {"fasta_file": SLICE_DIR / "hg38.chr22.fa.gz", "gene_table": SLICE_DIR / "genes_chr22.tsv",
                "dnase_bigwig": SLICE_DIR / f"{cell}.accessibility.chr22.bw",
                "mrna_features": RESOURCES / "mrna_features_chr22.tsv"}
    assert sorted(printed) == sorted(expected)  # no H3K27ac, Hi-C or expression example: accessibility only
    for argument, original in expected.items():
        given = zoo["source"] / GROUP / printed[argument]
        assert filecmp.cmp(given, original, shallow=False), argument


@pytest.mark.parametrize("cell", CELLS)
def test_kipoi_predict_on_the_real_slice_equals_the_model(zoo, cell, tmp_path):
    result = run_cli(["kipoi", "predict", f"{GROUP}/{cell}", "--source", "seq2exp", "--layer", "mask",
                      "--keep_metadata", "--dataloader_args", json.dumps(slice_args(cell)), "-o", str(tmp_path / "p.h5")],
                     home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expression, mask = direct(cell)
    with h5py.File(tmp_path / "p.h5") as f:
        assert [g.decode() for g in f["metadata/gene_id"][:]] == SLICE_GENES
        np.testing.assert_allclose(f["preds/expression"][:], expression, atol=1e-6)
        np.testing.assert_allclose(f["preds/mask"][:], mask, atol=1e-6)
    assert mask.shape == (len(SLICE_GENES), 20_000) and np.ptp(expression) > 0.05  # real, gene-specific outputs


def test_kipoi_test_passes_on_the_real_slice(zoo, tmp_path):
    result = run_cli(["kipoi", "test", f"{GROUP}/K562", "--source", "seq2exp"], home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Successfully ran test_predict" in result.stdout + result.stderr


def test_a_shallower_library_of_the_same_cell_gives_the_same_prediction(tmp_path):
    """The member's example bigWig rewritten with every value x0.4 (a library sequenced 2.5x
    shallower): the depth-normalised member predicts within 0.05 log10 of the original."""
    import pyBigWig

    source = SLICE_DIR / "K562.accessibility.chr22.bw"
    shallow = tmp_path / "K562.shallow.bw"
    with pyBigWig.open(str(source)) as original, pyBigWig.open(str(shallow), "w") as out:
        out.addHeader(list(original.chroms().items()))
        for chrom in original.chroms():
            starts, ends, values = zip(*original.intervals(chrom))
            out.addEntries([chrom] * len(starts), list(starts), ends=list(ends), values=[0.4 * v for v in values])
    predictions = [direct("K562", bigwig)[0] for bigwig in (str(source), str(shallow))]
    assert np.abs(predictions[0] - predictions[1]).mean() <= 0.05
    signal = load_exported(REPO / "model_zoo" / GROUP / "K562").cfg.signals[0]
    assert signal.normalise == "depth" and signal.reference_depth > 0


def test_k562_only_member_is_the_one_cell_model_for_cross_cell_reruns():
    """Seq2Exp/K562-only: trained on K562 alone (its row says so, no joint cell), so feeding it the
    GM12878 tracks is a true cross-cell prediction."""
    folder, row = member_row("K562-only")
    model = load_exported(folder)
    assert model.cfg.window == 20_000 and model.cfg.signals[0].normalise == "depth"
    assert row["cell_type"] == "K562" and "jointly" not in row["trained_on"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0 < metrics["test"]["pearson"] < 1
    expression, _ = direct_member(folder, "GM12878")
    assert expression.shape == (len(SLICE_GENES),) and np.all(np.isfinite(expression))

"""A member without Kipoi (issue 18): `load_member` on the shipped members gives the numbers of
``kipoi.get_model`` on their example files, every channel is checked against what the member was
trained on (Kipoi dataloader keywords, its ``tracks`` argument, `Member.inputs`), and
``seq2exp predict --member`` writes expression and masks with kipoi made unimportable."""
from __future__ import annotations

import shutil

import h5py
import kipoi
import numpy as np
import pandas as pd
import pytest

import kipoi_seq2exp
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.gene_inputs import channel_names, channels_with_files
from kipoi_seq2exp.data.config import TrackConfig
from kipoi_seq2exp.predict import predict_genes
from kipoi_seq2exp.train.member_files import DATA_FILE, EXPORT_FILES
from kipoi_seq2exp.zoo.cli import build_dataset
from kipoi_seq2exp.zoo.member import MemberSpec
from kipoi_seq2exp.zoo.source import GROUP, ZooError, example_dataloader_args, register_source

from test_zoo_helpers import REPO, one_thread, run_cli  # noqa: F401 (one_thread: fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
MEMBERS = ["K562", "Demo-soft"]  # real chr22 slice, DNase only; simulated genome, H3K27ac + DNase + Hi-C
#: Where each member's example files are read by track name.
TRACK_ARGS = {"H3K27ac": "h3k27ac_bigwig", "DNase": "dnase_bigwig", "Hi-C": "hic_file"}


@pytest.fixture
def zoo():
    register_source()  # HOME is a temporary folder (conftest)


def _kipoi_model(name: str):
    return kipoi.get_model(f"{GROUP}/{name}", source="seq2exp")


def _member_inputs(member, args: dict):
    """`Member.inputs` on the member's example files, each signal file given by its track name."""
    tracks = {track: args[key] for track, key in TRACK_ARGS.items() if key in args}
    return member.inputs(args["fasta_file"], args["gene_table"], tracks, args.get("mrna_features"))


@pytest.mark.parametrize("name", MEMBERS)
def test_load_member_predicts_what_kipoi_predicts(zoo, name):
    args = {k: v for k, v in example_dataloader_args(f"{GROUP}/{name}").items()
            if k not in ("expression_file", "hic_normalization")}
    model = _kipoi_model(name)
    batch = next(model.default_dataloader(**args).batch_iter(batch_size=8))
    via_kipoi = model.predict_activation_on_batch(batch["inputs"], layer="mask")

    member = kipoi_seq2exp.load_member(f"{GROUP}/{name}")
    predictions = list(predict_genes(member, _member_inputs(member, args), batch_size=8, progress=False))

    assert [p.index for p in predictions] == list(range(len(batch["metadata"]["gene_id"])))
    assert {tuple(channel_names(row)) for row in batch["inputs"]["channels"]} == {tuple(member.spec.channel_names)}
    np.testing.assert_array_equal(np.array([p.expression for p in predictions], np.float32), via_kipoi["expression"])
    np.testing.assert_array_equal(np.stack([p.mask for p in predictions]), via_kipoi["mask"])
    assert np.ptp(via_kipoi["expression"]) > 0.01  # genes get different answers: the comparison means something


def test_an_export_folder_loads_like_its_member(tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(REPO / "model_zoo" / GROUP / "K562", folder)
    member = kipoi_seq2exp.load_member(folder)
    assert member.member_name == f"{tmp_path.name}/mine"
    assert member.spec == MemberSpec(member.member_name, (TrackConfig("DNase", None, "bigwig"),), "dnase", 20_000, "VC")


def test_an_export_without_tracks_reads_its_channels_from_the_model_config(tmp_path):
    folder = tmp_path / "imported"  # what `seq2exp import-airs` writes: no tracks in data.yaml
    folder.mkdir()
    for name in EXPORT_FILES:
        shutil.copy(REPO / "model_zoo" / GROUP / "Demo-soft" / name, folder / name)
    (folder / DATA_FILE).write_text("window: 20000\nsignals: h3k27ac,dnase,hic\n")
    spec = kipoi_seq2exp.load_member(folder).spec
    assert spec.channel_names == ["H3K27ac", "DNase", "Hi-C"] and spec.channels[2].kind == "hic"


def test_h3k27ac_in_the_dnase_channel_is_refused_by_kipoi(zoo):
    """Seq2Exp/K562 reads DNase only: H3K27ac passed with signals='h3k27ac' used to be predicted, exit 0."""
    args = example_dataloader_args(f"{GROUP}/K562")
    wrong = {**{k: v for k, v in args.items() if k != "dnase_bigwig"}, "signals": "h3k27ac",
             "h3k27ac_bigwig": args["dnase_bigwig"]}
    model = _kipoi_model("K562")
    with pytest.raises(ZooError, match=r"Seq2Exp/K562 .*channel 1 must be DNase but the inputs give H3K27ac.*Fix: "):
        model.pipeline.predict(wrong)
    with pytest.raises(ZooError, match=r"Seq2Exp/K562 .*DNase.*H3K27ac"):
        build_dataset(model, wrong)  # what score-variants, perturb, mask-tracks and plot-locus read through


def test_the_tracks_argument_is_checked_the_same_way(zoo):
    args = example_dataloader_args(f"{GROUP}/K562")
    bigwig = args.pop("dnase_bigwig")
    model = _kipoi_model("K562")
    by_keyword = model.pipeline.predict({**args, "dnase_bigwig": bigwig})
    np.testing.assert_array_equal(model.pipeline.predict({**args, "tracks": {"DNase": bigwig}}), by_keyword)
    with pytest.raises(ZooError, match=r"Seq2Exp/K562 was trained on the signal channels \['DNase'\]: the inputs add "
                                       r"\['H3K27ac'\].*Fix: "):
        model.pipeline.predict({**args, "tracks": {"DNase": bigwig, "H3K27ac": bigwig}})
    with pytest.raises(DataInputError, match="did you mean 'DNase'"):
        model.pipeline.predict({**args, "tracks": {"dnase": bigwig}})


def test_member_inputs_refuse_a_wrong_channel_before_reading_any_file():
    member = kipoi_seq2exp.load_member("K562")
    with pytest.raises(ZooError, match=r"Seq2Exp/K562 .*\['DNase'\].*\['H3K27ac'\].*--tracks DNase=FILE"):
        member.inputs("absent.fa", "absent.tsv", {"H3K27ac": "absent.bw"})


def test_a_track_given_twice_is_an_error():
    with pytest.raises(DataInputError, match="DNase track is given twice"):
        channels_with_files([TrackConfig("DNase", "a.bw")], {"DNase": "b.bw"})


def test_predict_member_writes_expression_and_masks_without_kipoi(zoo, tmp_path):
    """`seq2exp predict --member` in a process where `import kipoi` fails."""
    args = example_dataloader_args(f"{GROUP}/K562")
    out = tmp_path / "k562.tsv"
    command = ["python", "-c", "import sys; sys.modules['kipoi'] = None; from kipoi_seq2exp.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "predict", "--member", f"{GROUP}/K562",
               "--tracks", f"DNase={args['dnase_bigwig']}", "--fasta", args["fasta_file"],
               "--genes", args["gene_table"], "--mrna-features", args["mrna_features"], "--out", str(out)]
    done = run_cli(command, home=tmp_path)
    assert done.returncode == 0, done.stderr

    genes = pd.read_csv(args["gene_table"], sep="\t")["gene_id"].tolist()
    expected = _kipoi_model("K562").pipeline.predict(args)
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["gene_id", "chrom", "start", "end", "strand", "qc", "prediction", "mask_ratio"]
    assert table["gene_id"].tolist() == genes
    np.testing.assert_allclose(table["prediction"], expected, rtol=0, atol=1e-6)  # TSV text: float repr
    with h5py.File(tmp_path / "k562.mask.h5") as h5:
        assert [g.decode() for g in h5["metadata/gene_id"][:]] == genes
        np.testing.assert_array_equal(h5["preds/expression"][:], expected)
        masks = h5["preds/mask"][:]
    assert masks.shape == (len(genes), 20_000) and 0 <= masks.min() and masks.max() == 1
    np.testing.assert_allclose(masks.mean(axis=1), table["mask_ratio"], rtol=1e-5)


def test_predict_member_refuses_a_channel_the_member_was_not_trained_on(tmp_path):
    args = example_dataloader_args(f"{GROUP}/K562")
    done = run_cli(["seq2exp", "predict", "--member", "K562", "--tracks", f"H3K27ac={args['dnase_bigwig']}",
                    "--fasta", args["fasta_file"], "--genes", args["gene_table"], "--out", str(tmp_path / "x.tsv")],
                   home=tmp_path)
    assert done.returncode == 2 and "Seq2Exp/K562 was trained on the signal channels ['DNase']" in done.stderr
    assert "H3K27ac" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("x*"))

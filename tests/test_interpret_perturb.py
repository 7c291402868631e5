"""In-silico CRISPRi (`seq2exp perturb`) and mask tracks (`seq2exp mask-tracks`) on the trained demo
members and the simulated genome: every number is checked against a direct model call."""
import json

import kipoi
import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from kipoi_seq2exp.interpret.perturb import (Element, ElementIndex, perturb_gene, perturb_genes, read_elements_bed,
                                             silence, silenced_channels, write_effects)
from kipoi_seq2exp.interpret.tracks import write_mask_tracks
from kipoi_seq2exp.predict import GenePrediction, predict_genes
from test_zoo_helpers import REPO, gene_subset, one_thread, run_cli, sim_dataloader_args  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
MEMBERS = REPO / "model_zoo" / "Seq2Exp"
#: chr22 '-' (TSS 25,970; window [15,970, 35,970)), and two chr1 genes whose windows overlap over [50,802, 57,584)
GENES = ["SIMG00241", "SIMG00002", "SIMG00003"]
#: SIMG00241's enhancer 1.9 kb from its TSS (true effect 0.83), outside the promoter feature's TSS +/- 1 kb
ENHANCER = Element("chr22", 27865, 28332, "SIME01791")


@pytest.fixture(scope="module")
def soft(tmp_path_factory):
    model = kipoi.get_model(str(MEMBERS / "Demo-soft"), source="dir")
    genes = gene_subset(tmp_path_factory.mktemp("genes"), GENES)
    return model, model.default_dataloader(**sim_dataloader_args(genes))


def direct(model, inputs, signals, gene_features):
    """The plain exported Seq2Exp on one window (batch of 1)."""
    tensor = lambda array: torch.from_numpy(np.asarray(array))[None]  # noqa: E731
    return float(model.model.predict(tensor(inputs["seq"]), tensor(signals), tensor(gene_features),
                                     signal_depth=tensor(inputs["signal_depth"])).expression[0])


def test_perturbed_expression_is_the_model_on_hand_silenced_signals(soft):
    model, dataset = soft
    promoter = Element("chr22", 25820, 26120, "SIME01790")
    effects = list(perturb_genes(model, dataset, ElementIndex([ENHANCER, promoter]), progress=False))
    assert [(e.gene_id, e.name) for e in effects] == [("SIMG00241", "SIME01790"), ("SIMG00241", "SIME01791")]
    inputs = dataset[0]["inputs"]
    signals = inputs["signals"]
    outside = np.ones(20_000, dtype=bool)
    outside[25820 - 15970:26120 - 15970] = outside[27865 - 15970:28332 - 15970] = False
    background = np.median(signals[outside], axis=0)
    quiet = signals.copy()
    quiet[27865 - 15970:28332 - 15970, :2] = background[:2]  # H3K27ac and DNase; Hi-C contact kept
    assert np.array_equal(dataset.windows.gene_features(0, quiet), inputs["gene_features"])  # 1.9 kb from the TSS
    enhancer = effects[1]
    assert enhancer.ref_expression == pytest.approx(direct(model, inputs, signals, inputs["gene_features"]), abs=1e-6)
    assert enhancer.perturbed_expression == pytest.approx(direct(model, inputs, quiet, inputs["gene_features"]),
                                                          abs=1e-6)
    assert enhancer.delta == pytest.approx(enhancer.perturbed_expression - enhancer.ref_expression, abs=1e-12)
    assert enhancer.percent_change == pytest.approx(100 * (10 ** enhancer.delta - 1))
    assert (enhancer.tss, enhancer.qc) == (25970, "ok")
    # silencing the promoter lowers the promoter-activity feature too, as the dataloader computes it
    quiet = signals.copy()
    quiet[25820 - 15970:26120 - 15970, :2] = background[:2]
    features = dataset.windows.gene_features(0, quiet)
    assert features[-1] < inputs["gene_features"][-1]
    assert effects[0].perturbed_expression == pytest.approx(direct(model, inputs, quiet, features), abs=1e-6)


def test_elements_outside_a_window_are_not_its_candidates(soft):
    model, dataset = soft
    elsewhere = [Element("chr22", 35970, 36500, "just past the window"), Element("chr2", 27865, 28332, "chr2"),
                 Element("chr22", 15000, 16000, "half inside")]
    effects = list(perturb_genes(model, dataset, ElementIndex(elsewhere + [ENHANCER]), progress=False))
    assert sorted(e.name for e in effects if e.gene_id == "SIMG00241") == ["SIME01791", "half inside"]
    signals = dataset[0]["inputs"]["signals"]
    with pytest.raises(ValueError, match="not inside the 20,000-bp window.*Fix:"):
        silence(signals, (19_900, 20_100), [0, 1], np.zeros(3, dtype=np.float32))


def test_an_element_without_signal_changes_nothing(soft):
    model, dataset = soft
    inputs = dict(dataset[0]["inputs"])
    inputs.pop("strand")
    inputs["signals"] = inputs["signals"].copy()
    inputs["signals"][27865 - 15970:28332 - 15970, :2] = 0.0  # no accessibility, no acetylation there
    reference = float(model.predict({k: v[None] for k, v in inputs.items()}).expression[0])
    prediction = GenePrediction(0, dataset[0]["metadata"]["gene_id"], inputs, reference, np.zeros(20_000, dtype=np.float32))
    [effect] = perturb_gene(model, dataset, prediction, [ENHANCER], mode="zero")
    assert abs(effect.delta) < 1e-6 and abs(effect.percent_change) < 1e-3
    [effect] = perturb_gene(model, dataset, prediction, [ENHANCER], mode="background")
    assert effect.delta != 0  # raised to the window's background, the element now reads as open


def test_predict_genes_batch_like_single_windows(soft):
    model, dataset = soft
    batched = list(predict_genes(model, dataset, batch_size=2, progress=False))
    assert [p.index for p in batched] == [0, 1, 2]
    for p in batched:
        inputs = dataset[p.index]["inputs"]
        assert p.expression == pytest.approx(direct(model, inputs, inputs["signals"], inputs["gene_features"]),
                                             abs=1e-6)


def test_channels_default_to_chromatin_and_are_named_by_track(soft):
    tracks = soft[1].windows.config.tracks
    assert [t.name for t in tracks] == ["H3K27ac", "DNase", "Hi-C"]
    assert silenced_channels(tracks) == [0, 1]
    assert silenced_channels(tracks, ["dnase", "hic"]) == [1, 2]
    with pytest.raises(ValueError, match="Fix: name one or more"):
        silenced_channels(tracks, ["atac"])


def test_effects_table_and_e2g_layout(soft, tmp_path):
    model, dataset = soft
    promoter = Element("chr22", 25820, 26120, "SIME01790")
    effects = list(perturb_genes(model, dataset, ElementIndex([ENHANCER, promoter]), progress=False))
    assert write_effects(effects, tmp_path / "out.tsv", tmp_path / "out.e2g.tsv") == 2
    table = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    assert list(table.columns) == ["chrom", "start", "end", "name", "gene_id", "TargetGeneTSS", "ref_expression",
                                   "perturbed_expression", "delta", "percent_change", "qc"]
    e2g = pd.read_csv(tmp_path / "out.e2g.tsv", sep="\t")
    assert list(e2g.columns[:8]) == ["chr", "start", "end", "name", "class", "TargetGene", "TargetGeneTSS", "Score"]
    assert e2g["class"].tolist() == ["promoter", "distal"]
    np.testing.assert_allclose(e2g["Score"], -table["delta"], rtol=1e-6)
    np.testing.assert_allclose(table["delta"], [e.delta for e in effects], rtol=1e-6)


def test_elements_bed_errors_name_the_line(tmp_path):
    bed = tmp_path / "elements.bed"
    bed.write_text("track name=x\nchr1\t10\t20\te1\nchr1\t30\t25\te2\n")
    with pytest.raises(ValueError, match=r"elements.bed, line 3: .*Fix:"):
        read_elements_bed(bed)
    bed.write_text("chr1\t10\t20\nchr1\t5\t8\t.\n")
    assert [e.name for e in read_elements_bed(bed).touching("chr1", 0, 100)] == ["chr1:5-8", "chr1:10-20"]


@pytest.mark.parametrize("member", ["Demo-soft", "Demo-hard"])
def test_mask_tracks_read_back_as_the_models_masks(tmp_path, member):
    model = kipoi.get_model(str(MEMBERS / member), source="dir")
    dataset = model.default_dataloader(**sim_dataloader_args(gene_subset(tmp_path, GENES)))
    masks = {p.index: p.mask for p in predict_genes(model, dataset, progress=False)}
    bigwig, bed, rows = write_mask_tracks(model, dataset, tmp_path / "demo", progress=False)
    with pyBigWig.open(str(bigwig)) as track:
        for base in (15970, 25000, 35969):  # SIMG00241 alone
            assert track.values("chr22", base, base + 1)[0] == pytest.approx(masks[0][base - 15970], abs=1e-6)
        for base in (40000, 50801, 60000):  # one window each
            index, start = (1, 37584) if base < 50802 else (2, 50802)
            assert track.values("chr1", base, base + 1)[0] == pytest.approx(masks[index][base - start], abs=1e-6)
        shared = np.array(track.values("chr1", 50802, 57584))  # both windows: the max of the two masks
        np.testing.assert_allclose(shared, np.maximum(masks[1][50802 - 37584:], masks[2][:57584 - 50802]), atol=1e-6)
        assert np.isnan(track.values("chr22", 35970, 35971)[0])  # no window there
    segments = pd.read_csv(bed, sep="\t", skiprows=1, header=None,
                           names=["chrom", "start", "end", "gene", "score", "strand"])
    assert len(segments) == rows
    starts = {"SIMG00241": 15970, "SIMG00002": 37584, "SIMG00003": 50802}
    for segment in segments.itertuples():
        mask = masks[GENES.index(segment.gene)][segment.start - starts[segment.gene]:segment.end - starts[segment.gene]]
        assert mask.min() >= 0.5 and segment.score == round(1000 * mask.mean())
    assert rows > 0  # both members' masks reach 0.5 outside the forced centre (soft: at its motif-bearing enhancers)
    if member == "Demo-hard":  # a 0/1 mask: every segment scores 1000
        assert set(segments["score"]) == {1000}
    else:
        assert segments["score"].between(500, 1000).all() and segments["score"].min() < 1000


def test_perturb_command_from_mask(tmp_path):
    args = sim_dataloader_args(gene_subset(tmp_path, ["SIMG00241"]))
    done = run_cli(["seq2exp", "perturb", str(MEMBERS / "Demo-hard"), "--source", "dir", "--dataloader_args",
                    json.dumps(args), "--from-mask", "--silence", "zero", "-o", str(tmp_path / "cri.tsv"),
                    "--no-progress"], home=tmp_path)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "cri.tsv", sep="\t")
    e2g = pd.read_csv(tmp_path / "cri.e2g.tsv", sep="\t")
    assert len(table) == len(e2g) > 0 and table["name"].str.startswith("mask:chr22:").all()
    assert "effects of silencing H3K27ac, DNase to zero" in done.stderr
    done = run_cli(["seq2exp", "mask-tracks", str(MEMBERS / "Demo-hard"), "--source", "dir", "--dataloader_args",
                    json.dumps(args), "-o", str(tmp_path / "masks"), "--no-progress"], home=tmp_path)
    assert done.returncode == 0, done.stderr
    segments = pd.read_csv(tmp_path / "masks.bed", sep="\t", skiprows=1, header=None)
    assert sorted(zip(segments[1], segments[2])) == sorted(zip(table["start"], table["end"]))


def test_locus_view_shows_the_inputs_the_mask_and_each_elements_effect(soft, tmp_path):
    from kipoi_seq2exp.interpret.locus import locus_view_of, plot_genes

    model, dataset = soft
    prediction = next(predict_genes(model, dataset, batch_size=1, progress=False, indices=[0]))
    reference = next(predict_genes(model, dataset, batch_size=3, progress=False))
    assert prediction.expression == pytest.approx(reference.expression, abs=1e-6)
    view = locus_view_of(model, dataset, prediction, [ENHANCER])
    np.testing.assert_array_equal(view.tracks["DNase"], prediction.inputs["signals"][:, 1])
    np.testing.assert_array_equal(view.masks["learned mask"], prediction.mask)
    [(start, end, label)] = view.intervals["elements\n(delta log10 if silenced)"]
    [effect] = perturb_gene(model, dataset, prediction, [ENHANCER])
    assert (start, end) == (ENHANCER.start - 15_970, ENHANCER.end - 15_970) and label == f"{effect.delta:+.3f}"
    paths = plot_genes(model, dataset, ["SIMG00241"], tmp_path, ".svg", ElementIndex([ENHANCER]))
    assert [p.name for p in paths] == ["SIMG00241.svg"] and "<svg" in paths[0].read_text()[:500]
    with pytest.raises(ValueError, match=r"genes \['NOPE'\] are not in the dataloader's gene table"):
        plot_genes(model, dataset, ["NOPE"], tmp_path)

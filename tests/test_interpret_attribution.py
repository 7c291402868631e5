"""Base attribution (issue 19): in-silico mutagenesis against a one-mutation-at-a-time loop, the reused
DNA stem against the whole-window stem, gradient x input against a hand-made linear model, and the
bigWig / TSV / lane that `seq2exp plot-locus --attribution` writes for a shipped member."""
import json

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch
from torch import nn

from kipoi_seq2exp.interpret.attribution import (LocalStem, bases, grad_x_input, in_silico_mutagenesis, ism_scores,
                                                 mutate, parse_region, region_span, substitutions)
from kipoi_seq2exp.predict import GenePrediction, stack_inputs
from kipoi_seq2exp.model import Seq2Exp, preset
from test_zoo_helpers import REPO, gene_subset, one_thread, run_cli, sim_dataloader_args  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
WINDOW = 1_000


class TinyMember:
    """What the attribution code reads of a `Seq2ExpModel`: ``.model`` and ``predict(x)``."""

    rc_average = False

    def __init__(self, net: Seq2Exp):
        self.model = net

    def predict(self, x: dict):
        tensors = {name: torch.as_tensor(value) for name, value in x.items()}
        return self.model.predict(tensors["seq"], tensors["signals"], tensors["gene_features"])


@pytest.fixture(scope="module")
def tiny():
    """A 1-kb, 50-bp-token Seq2Exp whose DNA stem is scaled up so that one SNV moves the prediction,
    on a random window with an N base at 5."""
    torch.manual_seed(0)
    net = Seq2Exp(preset("cpu_soft", d_model=16, window=WINDOW, centre=200)).eval()
    with torch.no_grad():
        for parameter in net.dna_embed.parameters():
            parameter.mul_(30)
    rng = np.random.default_rng(0)
    seq = np.eye(4, dtype=np.float32)[rng.integers(0, 4, WINDOW)]
    seq[5] = 0
    inputs = dict(seq=seq, signals=rng.random((WINDOW, net.cfg.n_signals), dtype=np.float32),
                  gene_features=rng.standard_normal(9).astype(np.float32))
    member = TinyMember(net)
    reference = float(member.predict(stack_inputs([inputs])).expression[0])
    return member, GenePrediction(0, "synthetic", inputs, reference, np.zeros(WINDOW, dtype=np.float32))


def naive_ism(member, prediction, span):
    """One forward of one mutated window at a time."""
    seq = prediction.inputs["seq"]
    deltas = np.full((span[1] - span[0], 4), np.nan)
    deltas[seq[span[0]:span[1]] > 0] = 0.0
    for position, base in substitutions(seq, span):
        mutant = {**prediction.inputs, "seq": mutate(seq, position, base)}
        deltas[position - span[0], base] = float(member.predict(stack_inputs([mutant])).expression[0]) \
            - prediction.expression
    return deltas


# window edges (the stem's zero padding), a token boundary (500) with the N base's token neighbour
@pytest.mark.parametrize("span", [(0, 8), (496, 504), (992, 1000)])
def test_ism_equals_one_mutation_at_a_time(tiny, span):
    member, prediction = tiny
    naive = naive_ism(member, prediction, span)
    assert np.nanmax(np.abs(naive)) > 1e-6  # the mutations do move the prediction (1e-3 near the TSS)
    # one window per forward: the reused stem gives the very same numbers
    np.testing.assert_array_equal(in_silico_mutagenesis(member, prediction, span, batch_size=1, progress=False), naive)
    # 7 windows per forward: float32 kernels of another batch size may differ in the last bit only
    batched = in_silico_mutagenesis(member, prediction, span, batch_size=7, progress=False)
    np.testing.assert_array_equal(np.isnan(batched), np.isnan(naive))
    np.testing.assert_allclose(batched, naive, rtol=0, atol=1e-7)


def test_ism_leaves_n_bases_out_and_scores_the_reference_base(tiny):
    member, prediction = tiny
    deltas = in_silico_mutagenesis(member, prediction, (0, 8), progress=False)
    assert np.isnan(deltas[5]).all() and (np.isnan(deltas).sum(axis=1) == [0, 0, 0, 0, 0, 4, 0, 0]).all()
    assert ((deltas == 0).sum(axis=1) == [1, 1, 1, 1, 1, 0, 1, 1]).all()
    scores = ism_scores(deltas)
    assert np.isnan(scores[5])
    assert scores[0] == pytest.approx(-np.nansum(deltas[0]) / 3, rel=1e-6)
    assert bases(prediction.inputs["seq"][:8])[5] == "N" and len(substitutions(prediction.inputs["seq"], (0, 8))) == 21


def test_local_stem_equals_the_stem_and_falls_back_on_wider_edits(tiny):
    member, prediction = tiny
    stem, seq = member.model.dna_embed, torch.as_tensor(prediction.inputs["seq"])
    local = LocalStem(stem, seq)
    rows = torch.stack([seq, torch.as_tensor(mutate(seq.numpy(), 49, 0)), torch.as_tensor(mutate(seq.numpy(), 999, 2))])
    with torch.no_grad():
        for row in rows:  # one window: the same bits; a batch of them: oneDNN's blocking moves the last bit
            assert torch.equal(local(row[None]), stem(row[None]))
        torch.testing.assert_close(local(rows), stem(rows), rtol=1e-6, atol=1e-5)
        two = torch.as_tensor(mutate(mutate(seq.numpy(), 10, 0), 700, 1))[None]  # two bases: the whole stem
        assert torch.equal(local(two), stem(two))


class Linear(nn.Module):
    """expression = sum(W * seq) + sum(V * signals) + u . gene_features: d expression / d seq = W."""

    def __init__(self, length: int):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = nn.Parameter(torch.randn(length, 4, generator=g))
        self.v = nn.Parameter(torch.randn(length, 2, generator=g))
        self.u = nn.Parameter(torch.randn(9, generator=g))

    def forward(self, seq, signals, gene_features, signal_depth=None):
        expression = (seq * self.w).sum(dim=(1, 2)) + (signals * self.v).sum(dim=(1, 2)) + gene_features @ self.u
        return type("Out", (), {"expression": expression})()


def test_grad_x_input_is_the_weight_of_the_base_present():
    linear = Linear(12)
    rng = np.random.default_rng(2)
    present = rng.integers(0, 4, 12)
    seq = np.eye(4, dtype=np.float32)[present]
    seq[3] = 0  # N: no base present, no attribution
    inputs = dict(seq=seq, signals=rng.random((12, 2), dtype=np.float32),
                  gene_features=rng.standard_normal(9).astype(np.float32))
    expected = linear.w.detach().numpy()[np.arange(12), present]
    expected[3] = 0
    np.testing.assert_array_equal(grad_x_input(linear, inputs), expected)
    assert linear.training  # the module's flag is restored


def test_region_is_one_based_inclusive_and_inside_the_window():
    assert parse_region("chr22:25,471-26,470") == ("chr22", 25470, 26470)
    with pytest.raises(ValueError, match="1-based inclusive.*Fix"):
        parse_region("chr22:0-10")
    window = type("W", (), {"chrom": "chr22", "start": 15970, "length": 20_000})()
    assert region_span(window, None, "grad") == (0, 20_000) and region_span(window, None, "ism") == (9_500, 10_500)
    assert region_span(window, ("chr22", 25470, 26470), "ism") == (9_500, 10_500)
    with pytest.raises(ValueError, match="not inside the gene's window chr22:15,971-35,970.*Fix"):
        region_span(window, ("chr22", 35000, 36000), "grad")


def test_plot_locus_writes_attribution_tracks_named_by_gene(tmp_path):
    args = sim_dataloader_args(gene_subset(tmp_path, ["SIMG00241"]))  # chr22, window [15,970, 35,970)
    member = str(REPO / "model_zoo" / "Seq2Exp" / "Demo-soft")
    done = run_cli(["seq2exp", "plot-locus", member, "--source", "dir", "--dataloader_args", json.dumps(args),
                    "--attribution", "ism", "--region", "chr22:25,966-25,973", "--samples", "8", "--format", "svg",
                    "-o", str(tmp_path / "loci"), "--no-progress"], home=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "loci"
    table = pd.read_csv(out / "SIMG00241.ism.tsv", sep="\t")
    assert table["start"].tolist() == list(range(25965, 25973)) and set(table["gene_id"]) == {"SIMG00241"}
    deltas = table[["A", "C", "G", "T"]].to_numpy()
    reference = ["ACGT".index(base) for base in table["ref"]]
    assert (deltas[np.arange(8), reference] == 0).all() and np.abs(deltas).max() > 1e-5
    with pyBigWig.open(str(out / "SIMG00241.ism.bw")) as track:
        np.testing.assert_allclose(track.values("chr22", 25965, 25973), -deltas.sum(axis=1) / 3, rtol=1e-5)
        assert np.isnan(track.values("chr22", 25973, 25974)[0])
    assert 'name="SIMG00241 ism"' in (out / "tracks.txt").read_text()
    summary = pd.read_csv(out / "attribution.tsv", sep="\t")
    assert summary[["gene_id", "start", "end", "method"]].values.tolist() == [["SIMG00241", 25965, 25973, "ism"]]
    assert (summary["expression_low"] < summary["expression_high"]).all()
    assert "ISM" in (out / "SIMG00241.svg").read_text()

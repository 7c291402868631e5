"""``seq2exp attribute`` writes what the attribution functions compute: its bigWig holds
`attribute_gene`'s values at genome coordinates, its ism.tsv every delta, for a shipped member on the
embedded example data."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from kipoi_seq2exp.interpret.attribution import attribute_gene, parse_region
from kipoi_seq2exp.predict import predict_genes
from kipoi_seq2exp.zoo.cli import build_dataset, load_model
from test_zoo_helpers import REPO, gene_subset, one_thread, run_cli, sim_dataloader_args  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
MEMBER = str(REPO / "model_zoo" / "Seq2Exp" / "Demo-soft")
GENE = "SIMG00241"  # chr22, window [15,970, 35,970)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The member, its dataloader on one example gene, and that gene's reference prediction."""
    tmp = tmp_path_factory.mktemp("attribute")
    args = sim_dataloader_args(gene_subset(tmp, [GENE]))
    model = load_model(MEMBER, "dir")
    dataset = build_dataset(model, args)
    (prediction,) = predict_genes(model, dataset, progress=False)
    return tmp, args, model, dataset, prediction


def attribute(example, method: str, region: str, out: str) -> pd.DataFrame:
    """Run ``seq2exp attribute`` on the example gene; its attribution.tsv."""
    tmp, args = example[:2]
    done = run_cli(["seq2exp", "attribute", MEMBER, "--source", "dir", "--dataloader_args", json.dumps(args),
                    "--method", method, "--region", region, "-o", str(tmp / out), "--no-progress"], home=tmp)
    assert done.returncode == 0, done.stderr
    return pd.read_csv(tmp / out / "attribution.tsv", sep="\t")


def test_grad_bigwig_holds_the_attribution_functions_values(example):
    tmp, _, model, dataset, prediction = example
    region = "chr22:25,471-26,470"
    summary = attribute(example, "grad", region, "grad")
    expected = attribute_gene(model, dataset, prediction, "grad", parse_region(region))
    assert summary[["gene_id", "chrom", "start", "end", "method"]].values.tolist() == [
        [GENE, "chr22", 25470, 26470, "grad"]]
    assert summary["expression"].iloc[0] == pytest.approx(expected.expression, abs=1e-6)
    with pyBigWig.open(str(tmp / "grad" / f"{GENE}.grad.bw")) as track:
        values = np.array(track.values("chr22", expected.start, expected.end), dtype=np.float32)
    assert np.abs(expected.values).max() > 0
    np.testing.assert_allclose(values, expected.values, rtol=1e-5, atol=1e-9)
    assert f'name="{GENE} grad"' in (tmp / "grad" / "tracks.txt").read_text()


def test_ism_tables_and_bigwig_hold_every_delta(example):
    tmp, _, model, dataset, prediction = example
    region = "chr22:25,966-25,973"
    attribute(example, "ism", region, "ism")
    expected = attribute_gene(model, dataset, prediction, "ism", parse_region(region), progress=False)
    table = pd.read_csv(tmp / "ism" / f"{GENE}.ism.tsv", sep="\t")
    assert table["start"].tolist() == list(range(25965, 25973)) and "".join(table["ref"]) == expected.sequence
    np.testing.assert_allclose(table[["A", "C", "G", "T"]].to_numpy(), expected.deltas, rtol=1e-5, atol=1e-7)
    with pyBigWig.open(str(tmp / "ism" / f"{GENE}.ism.bw")) as track:
        np.testing.assert_allclose(track.values("chr22", 25965, 25973), expected.values, rtol=1e-5, atol=1e-7)

"""`seq2exp score-variants --samples N --seed S` (issue 19): each delta's 90 % interval equals the
percentiles of paired mask-sample deltas computed with `intervals` by hand (same seed, reference and
alternative windows at the same draws), and without --samples the table is the one it always was."""
import json

import kipoi
import numpy as np
import pandas as pd
import pysam
import pytest

from kipoi_seq2exp.data.genome import FastaWindows
from kipoi_seq2exp.interpret.intervals import sampled_expressions, uniforms
from kipoi_seq2exp.predict import stack_inputs
from test_interpret_perturb import MEMBERS
from test_zoo_cli import _alt_window, _snv
from test_zoo_helpers import SIM, gene_subset, one_thread, run_cli, sim_dataloader_args  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
GENE, TSS = "SIMG00241", 25_970  # chr22 '-', window [15,970, 35,970)
BASE_COLUMNS = ["chrom", "pos", "vcf_id", "ref", "alt", "gene_id", "gene_strand", "tss", "tss_distance",
                "ref_expression", "alt_expression", "delta", "qc"]
SAMPLES, SEED = 8, 5


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The trained Demo-soft on SIMG00241 with a VCF of an SNV in its promoter and a 3-bp deletion in
    its enhancer 1.9 kb upstream; score-variants run without and with --samples (another batch size)."""
    root = tmp_path_factory.mktemp("vi")
    fasta = FastaWindows(str(SIM / "genome.fa"))
    deleted = fasta.fetch("chr22", 28_099, 28_103).upper()
    records = [_snv(fasta, "chr22", TSS - 14), ("chr22", 28_100, deleted, deleted[0])]
    vcf = root / "variants.vcf"
    vcf.write_text("\n".join(["##fileformat=VCFv4.2", "##contig=<ID=chr22,length=525000>",
                              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
                             + [f"{c}\t{p}\tv{i}\t{r}\t{a}\t.\t.\t." for i, (c, p, r, a) in enumerate(records)]) + "\n")
    pysam.tabix_index(str(vcf), preset="vcf")
    args = sim_dataloader_args(gene_subset(root, [GENE]))
    command = ["seq2exp", "score-variants", str(MEMBERS / "Demo-soft"), "--source", "dir", "--dataloader_args",
               json.dumps(args), "-i", str(vcf) + ".gz"]
    plain = run_cli(command + ["-o", str(root / "plain.tsv")], home=root)
    assert plain.returncode == 0, plain.stderr
    spread = run_cli(command + ["-o", str(root / "spread.tsv"), "--samples", str(SAMPLES), "--seed", str(SEED),
                                "--batch_size", "3"], home=root)
    assert spread.returncode == 0, spread.stderr
    assert f"2 (variant, gene) scores with 90 % intervals from {SAMPLES} mask samples" in spread.stderr
    model = kipoi.get_model(str(MEMBERS / "Demo-soft"), source="dir")
    inputs = model.default_dataloader(**args)[0]["inputs"]
    return {"root": root, "fasta": fasta, "records": records, "model": model, "inputs": inputs}


def test_delta_intervals_are_percentiles_of_paired_mask_samples(scored):
    model, inputs = scored["model"], scored["inputs"]
    table = pd.read_csv(scored["root"] / "spread.tsv", sep="\t")
    assert list(table.columns) == BASE_COLUMNS + ["delta_lo90", "delta_hi90"]
    u = uniforms(SEED, GENE, SAMPLES, model.model.cfg.n_tokens)
    reference = sampled_expressions(model, inputs, u)
    for row, record in zip(table.itertuples(), scored["records"]):
        alt = sampled_expressions(model, {**inputs, "seq": _alt_window(scored["fasta"], TSS, *record)}, u)
        np.testing.assert_allclose([row.delta_lo90, row.delta_hi90], np.quantile(alt - reference, [0.05, 0.95]),
                                   rtol=1e-6, atol=1e-6)
        assert row.delta_hi90 - row.delta_lo90 > 1e-5  # the mask samples do spread the delta


def test_without_samples_the_table_is_unchanged(scored):
    root = scored["root"]
    plain = (root / "plain.tsv").read_text().splitlines()
    assert plain[0].split("\t") == BASE_COLUMNS
    spread = [line.split("\t")[:len(BASE_COLUMNS)] for line in (root / "spread.tsv").read_text().splitlines()[1:]]
    assert [line.split("\t") for line in plain[1:]] == spread  # same reference / alt / delta, character for character
    model, inputs = scored["model"], scored["inputs"]
    windows = [inputs] + [{**inputs, "seq": _alt_window(scored["fasta"], TSS, *record)} for record in scored["records"]]
    ref, *alt = model.predict(stack_inputs(windows)).expression.double().numpy()
    table = pd.read_csv(root / "plain.tsv", sep="\t")
    assert list(table["vcf_id"]) == ["v0", "v1"] and list(table["gene_id"]) == [GENE, GENE]
    np.testing.assert_allclose(table["ref_expression"], [ref, ref], rtol=1e-6, atol=2e-7)
    np.testing.assert_allclose(table["alt_expression"], alt, rtol=1e-6, atol=2e-7)
    np.testing.assert_allclose(table["delta"], np.array(alt) - ref, atol=3e-7)

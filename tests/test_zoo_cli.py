"""The command lines, as a user runs them (subprocesses, HOME in a temporary folder): kipoi predict /
test, kipoi-veff and seq2exp score-variants on a registered source, numbers checked against direct
model calls on the same windows; and one clear line (no traceback, no output file) for bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pysam
import pytest
import torch

from kipoi_seq2exp.data.genome import FastaWindows, one_hot
from kipoi_seq2exp.data.kipoi_dataloader import Seq2ExpDataset
from kipoi_seq2exp.train.export import load_exported

from test_zoo_helpers import one_thread, SIM, demo_source, gene_subset, run_cli, sim_dataloader_args

pytestmark = pytest.mark.usefixtures("one_thread")
GROUP = "Seq2Exp"
#: chr1 '+', chr1 '-' (13 kb downstream: the two windows overlap), chr22 '-'
GENES = ["SIMG00002", "SIMG00003", "SIMG00241"]
TSS = {line.split("\t")[0]: int(line.split("\t")[3]) for line in (SIM / "genes.tsv").read_text().splitlines()[1:]}
DEMO = {"window": 20_000, "hic_normalization": "NONE"}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """HOME with the source registered by `python -m kipoi_seq2exp register --path`, its demo members
    holding untrained exports with a DNA embedding scaled so that one SNV visibly moves the output."""
    root = tmp_path_factory.mktemp("cli")
    source = demo_source(root, dna_scale=100.0)
    home = root / "home"
    home.mkdir()
    done = run_cli(["python", "-m", "kipoi_seq2exp", "register", "--path", str(source)], home=home)
    assert done.returncode == 0, done.stderr
    genes = gene_subset(root, GENES)
    return {"source": source, "home": home, "genes": genes, "args": sim_dataloader_args(genes), "work": root}


def _direct(zoo, member, seqs=None, indices=None):
    """Expression and mask of the plain exported model (one batch) on the windows of the dataset's
    genes ``indices``, with the DNA of ``seqs`` in place of the reference where given (not None)."""
    model = load_exported(zoo["source"] / GROUP / member)
    dataset = Seq2ExpDataset(**zoo["args"], **DEMO)
    indices = list(range(len(dataset))) if indices is None else indices
    inputs = [dataset[i]["inputs"] for i in indices]
    seqs = [x["seq"] for x in inputs] if seqs is None else [x["seq"] if s is None else s for x, s in zip(inputs, seqs)]
    seq = np.stack(seqs)
    batch = [torch.from_numpy(a) for a in (seq, np.stack([x["signals"] for x in inputs]),
                                            np.stack([x["gene_features"] for x in inputs]))]
    out = model.predict(*batch)
    return out.expression.numpy(), out.mask.numpy()


def _one_error_line(result, expected: str) -> str:
    """The process failed with exactly one line naming the problem, and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    return lines[0]


# ------------------------------------------------------------------ kipoi predict / test
def test_kipoi_lists_the_registered_members(zoo):
    listing = run_cli(["kipoi", "ls", GROUP, "--source", "seq2exp"], home=zoo["home"])
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == [f"{GROUP}/{m}" for m in ("K562", "GM12878", "K562-only", "K562-paper",
                                                                        "GM12878-paper", "Demo-soft", "Demo-hard")]
    config = (zoo["home"] / ".kipoi" / "config.yaml").read_text()
    assert f"local_path: {zoo['source']}" in config


def test_kipoi_predict_writes_expression_and_mask_like_the_model(zoo, tmp_path):
    result = run_cli(["kipoi", "predict", f"{GROUP}/Demo-soft", "--source", "seq2exp", "--layer", "mask",
                      "--keep_metadata", "--dataloader_args", json.dumps(zoo["args"]),
                      "-o", str(tmp_path / "p.tsv"), str(tmp_path / "p.h5")], home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expression, mask = _direct(zoo, "Demo-soft")
    with h5py.File(tmp_path / "p.h5") as f:
        assert f["preds/mask"].chunks == (16, 20_000)
        np.testing.assert_allclose(f["preds/expression"][:], expression, atol=1e-6)
        np.testing.assert_allclose(f["preds/mask"][:], mask, atol=1e-6)
        assert [g.decode() for g in f["metadata/gene_id"][:]] == GENES
    with open(tmp_path / "p.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["metadata/gene_id"] for r in rows] == GENES
    np.testing.assert_allclose([float(r["preds/expression"]) for r in rows], expression, atol=1e-6)
    np.testing.assert_allclose([float(r["preds/mask/12345"]) for r in rows], mask[:, 12345], atol=1e-6)


def test_kipoi_predict_with_an_absolute_member_path_and_source_dir(zoo, tmp_path):
    result = run_cli(["kipoi", "predict", str(zoo["source"] / GROUP / "Demo-hard"), "--source", "dir",
                      "--dataloader_args", json.dumps(zoo["args"]), "-o", str(tmp_path / "p.tsv"), str(tmp_path / "p.h5")],
                     home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "p.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    np.testing.assert_allclose([float(r["preds"]) for r in rows], _direct(zoo, "Demo-hard")[0], atol=2e-6)
    # without --keep_metadata: still which gene each row is, and whether its window was readable
    assert [r["metadata/gene_id"] for r in rows] == GENES and [r["metadata/qc"] for r in rows] == ["ok"] * 3
    assert sorted(rows[0]) == ["metadata/gene_id", "metadata/qc", "preds"]
    with h5py.File(tmp_path / "p.h5") as f:
        assert [g.decode() for g in f["metadata/gene_id"][:]] == GENES


@pytest.mark.parametrize("member", ["Demo-soft", "Demo-hard"])
def test_kipoi_test_passes_on_the_bundled_examples(zoo, member, tmp_path):
    result = run_cli(["kipoi", "test", f"{GROUP}/{member}", "--source", "seq2exp"], home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Successfully ran test_predict" in result.stdout + result.stderr


# ------------------------------------------------------------------ variants
def _snv(fasta, chrom, pos):
    ref = fasta.fetch(chrom, pos - 1, pos).upper()
    return chrom, pos, ref, {"A": "G", "C": "T", "G": "A", "T": "C"}[ref]


@pytest.fixture(scope="module")
def variants(zoo):
    """A bgzipped, indexed VCF: SNVs near two TSSs, one SNV in two genes' windows, a deletion
    downstream of a TSS, and one SNV outside every window."""
    fasta = FastaWindows(str(SIM / "genome.fa"))
    second, third = TSS["SIMG00003"], TSS["SIMG00241"]
    deletion = ("chr1", second + 101, fasta.fetch("chr1", second + 100, second + 103).upper())
    records = [_snv(fasta, "chr1", second - 5_801), _snv(fasta, "chr1", second + 21),
               (*deletion, deletion[2][0]), _snv(fasta, "chr22", third - 14), _snv(fasta, "chr22", 200_000)]
    path = zoo["work"] / "variants.vcf"
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=740000>", "##contig=<ID=chr22,length=525000>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{c}\t{p}\tv{i}\t{r}\t{a}\t.\t.\t." for i, (c, p, r, a) in enumerate(records)]
    path.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(path), str(path) + ".gz")
    unindexed = zoo["work"] / "unindexed" / "variants.vcf.gz"
    unindexed.parent.mkdir()
    unindexed.write_bytes(Path(str(path) + ".gz").read_bytes())
    pysam.tabix_index(str(path) + ".gz", preset="vcf")
    return {"vcf": str(path) + ".gz", "unindexed": str(unindexed), "records": records, "fasta": fasta}


def _alt_window(fasta, gene_tss, chrom, pos, ref, alt):
    """The TSS-anchored alternative window, built here from the FASTA: an SNV replaces one base; a
    deletion downstream of the TSS pulls in bases from beyond the window's right edge."""
    start, end = gene_tss - 10_000, gene_tss + 10_000
    left = fasta.fetch(chrom, start, pos - 1) + alt
    right = fasta.fetch(chrom, pos - 1 + len(ref), end + len(ref) - len(alt))
    return one_hot(left + right)


def test_score_variants_gives_ref_alt_delta_for_every_gene_window(zoo, variants, tmp_path):
    out = tmp_path / "scores.tsv"
    result = run_cli(["seq2exp", "score-variants", f"{GROUP}/Demo-soft", "--dataloader_args", json.dumps(zoo["args"]),
                      "-i", variants["vcf"], "-o", str(out)], home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "variants" in result.stderr  # tqdm progress bar over the VCF records
    with open(out) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    pairs = [(r["vcf_id"], r["gene_id"]) for r in rows]
    assert pairs == [("v0", "SIMG00002"), ("v0", "SIMG00003"), ("v1", "SIMG00003"), ("v2", "SIMG00003"),
                     ("v3", "SIMG00241")]
    index = {g: i for i, g in enumerate(GENES)}
    records = {f"v{i}": rec for i, rec in enumerate(variants["records"])}
    alt_seqs = [_alt_window(variants["fasta"], TSS[g], *records[v]) for v, g in pairs]
    expression, _ = _direct(zoo, "Demo-soft", seqs=alt_seqs + [None] * len(GENES),
                            indices=[index[g] for _, g in pairs] + list(range(len(GENES))))
    alt, ref = expression[:len(pairs)], expression[len(pairs):][[index[g] for _, g in pairs]]
    # the TSV holds 7 significant digits: relative tolerance for outputs that need not be < 1
    np.testing.assert_allclose([float(r["ref_expression"]) for r in rows], ref, rtol=1e-6, atol=2e-7)
    np.testing.assert_allclose([float(r["alt_expression"]) for r in rows], alt, rtol=1e-6, atol=2e-7)
    np.testing.assert_allclose([float(r["delta"]) for r in rows], alt - ref, atol=3e-7)
    assert abs(float(rows[2]["delta"])) > 3e-6 and abs(float(rows[3]["delta"])) > 3e-6  # near the TSS: visible
    # strand-aware distance from the TSS: SIMG00003 and SIMG00241 are on '-'
    first = TSS["SIMG00002"]
    assert [int(r["tss_distance"]) for r in rows] == [TSS["SIMG00003"] - 5_802 - first, 5_802, -20, -100, 15]
    assert [r["qc"] for r in rows] == ["ok"] * 5  # the window-quality label of each gene
    assert [r["gene_strand"] for r in rows] == ["+", "-", "-", "-", "-"]
    assert "1 alleles outside every gene window" in result.stderr


def test_kipoi_veff_scores_snvs_like_the_model(zoo, variants, tmp_path):
    out = tmp_path / "scored.vcf"
    result = run_cli(["python", "-m", "kipoi_veff", "score_variants", f"{GROUP}/Demo-soft", "--source", "seq2exp",
                      "--dataloader_args", json.dumps(zoo["args"]), "-i", variants["vcf"], "-o", str(out),
                      "-s", "ref", "alt", "diff"], home=zoo["home"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scored = {}
    for record in pysam.VariantFile(str(out)):
        info = {key.rsplit(":", 1)[1]: float(value[0] if isinstance(value, tuple) else value)
                for key, value in record.info.items() if not key.endswith("rID")}
        scored.setdefault(record.id, []).append(info)
    assert set(scored) == {"v0", "v1", "v3"}  # SNVs in a window; kipoi-veff skips indels
    records = {f"v{i}": rec for i, rec in enumerate(variants["records"])}
    genes = {"v1": "SIMG00003", "v3": "SIMG00241"}
    alt_seqs = [_alt_window(variants["fasta"], TSS[g], *records[v]) for v, g in genes.items()]
    indices = [GENES.index(g) for g in genes.values()]
    expression, _ = _direct(zoo, "Demo-soft", seqs=alt_seqs + [None, None], indices=indices * 2)
    for i, vid in enumerate(genes):
        alt, ref = expression[i], expression[len(genes) + i]
        (info,) = scored[vid]
        np.testing.assert_allclose([info["REF"], info["ALT"], info["DIFF"]], [ref, alt, alt - ref], atol=2.5e-7)
        assert abs(info["DIFF"]) > 3e-6


# ------------------------------------------------------------------ bad input: one line, exit != 0, no output
def _predict(zoo, tmp_path, member, args):
    return run_cli(["kipoi", "predict", f"{GROUP}/{member}", "--source", "seq2exp", "--dataloader_args",
                    json.dumps(args), "-o", str(tmp_path / "out.tsv"), str(tmp_path / "out.h5")],
                   home=zoo["home"], cwd=tmp_path)


def _no_output(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_missing_weights(zoo, tmp_path):
    line = _one_error_line(_predict(zoo, tmp_path, "K562-paper", zoo["args"]), "Seq2Exp/K562-paper has no trained weights")
    assert "seq2exp train --config paper_soft" in line and "seq2exp export" in line and "install-weights" in line
    _no_output(tmp_path)


def test_example_file_that_does_not_exist(zoo, tmp_path):
    args = {**zoo["args"], "fasta_file": str(tmp_path.parent / "nowhere" / "genome.fa")}
    _one_error_line(_predict(zoo, tmp_path, "Demo-soft", args), "nowhere/genome.fa: FASTA file not found")
    _no_output(tmp_path)


def test_misspelt_dataloader_argument(zoo, tmp_path):
    args = dict(zoo["args"])
    args["dnase_bigwg"] = args.pop("dnase_bigwig")
    _one_error_line(_predict(zoo, tmp_path, "Demo-soft", args), "unknown dataloader argument(s) ['dnase_bigwg']")
    _no_output(tmp_path)


def test_vcf_without_index(zoo, variants, tmp_path):
    ours = run_cli(["seq2exp", "score-variants", f"{GROUP}/Demo-soft", "--dataloader_args", json.dumps(zoo["args"]),
                    "-i", variants["unindexed"], "-o", str(tmp_path / "s.tsv")], home=zoo["home"], cwd=tmp_path)
    _one_error_line(ours, "VCF has no tabix index")
    veff = run_cli(["python", "-m", "kipoi_veff", "score_variants", f"{GROUP}/Demo-soft", "--source", "seq2exp",
                    "--dataloader_args", json.dumps(zoo["args"]), "-i", variants["unindexed"],
                    "-o", str(tmp_path / "s.vcf")],
                   home=zoo["home"], cwd=tmp_path)
    _one_error_line(veff, "VCF has no tabix index")
    _no_output(tmp_path)
    assert sorted(p.name for p in Path(variants["unindexed"]).parent.iterdir()) == ["variants.vcf.gz"]  # untouched


def test_member_that_does_not_exist(zoo, variants, tmp_path):
    ours = run_cli(["seq2exp", "score-variants", f"{GROUP}/K999", "--dataloader_args", json.dumps(zoo["args"]),
                    "-i", variants["vcf"], "-o", str(tmp_path / "s.tsv")], home=zoo["home"], cwd=tmp_path)
    _one_error_line(ours, "unknown model 'Seq2Exp/K999' in kipoi source 'seq2exp'; available: ['Seq2Exp/K562'")
    # kipoi fails before loading any of our code: its own message ends its traceback
    theirs = _predict(zoo, tmp_path, "K999", zoo["args"])
    assert theirs.returncode != 0 and theirs.stderr.splitlines()[-1] == "ValueError: model Seq2Exp/K999 doesn't exist"
    _no_output(tmp_path)

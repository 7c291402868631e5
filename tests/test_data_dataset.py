"""WindowDataset end to end on small real files: exact values, presets, missing tracks, workers."""
import warnings

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch
from torch.utils.data import DataLoader

from kipoi_seq2exp.data.config import DataConfig, HicOptions, SplitConfig, accessibility_tracks, paper_tracks
from kipoi_seq2exp.data.dataset import WindowDataset
from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.genome import one_hot
from kipoi_seq2exp.data.hic import HicContacts, PowerLawContacts
from kipoi_seq2exp.data.synthetic import write_bigwig, write_demo_genome, write_table

SIZES = {"chr1": 12_000, "chr2": 7_000, "chr3": 6_000}
L = 2000
GENES = [
    {"gene_id": "start", "chrom": "chr1", "tss": 300, "strand": "+", "split": "train"},
    {"gene_id": "end", "chrom": "chr1", "tss": 11_900, "strand": "-", "split": "test"},
    {"gene_id": "minus", "chrom": "chr2", "tss": 3_500, "strand": "-", "split": "valid"},
    {"gene_id": "third", "chrom": "chr3", "tss": 3_000, "strand": "+", "split": "train"},
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_demo_genome(tmp_path_factory.mktemp("demo"), SIZES, GENES, bin_size=100, lowercase_every=50)


def config(files, **overrides):
    values = dict(
        fasta=files["fasta"],
        gene_table=files["genes"],
        tracks=paper_tracks(files["h3k27ac"], files["dnase"], files["hic"]),
        hic=HicOptions(bin_size=100, normalization="NONE"),
        mrna_features=files["mrna"],
        expression=files["expression"],
        window=L,
    )
    values.update(overrides)
    return DataConfig(**values)


def fasta_text(path):
    """Independent FASTA parse (no pyfaidx) for reference values."""
    seqs, name = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            name = line[1:]
            seqs[name] = []
        else:
            seqs[name].append(line)
    return {k: "".join(v) for k, v in seqs.items()}


def padded_bigwig(path, chrom, start, end):
    bw = pyBigWig.open(path)
    whole = np.nan_to_num(np.array(bw.values(chrom, 0, SIZES[chrom]), dtype=np.float64))
    out = np.zeros(end - start)
    for i, p in enumerate(range(start, end)):
        if 0 <= p < SIZES[chrom]:
            out[i] = whole[p]
    return out


@pytest.mark.parametrize("index", [0, 1, 2])
def test_item_exact_values(files, index):
    dataset = WindowDataset(config(files))
    item = dataset[index]
    gene = GENES[index]
    start = gene["tss"] - L // 2
    assert (item["gene_id"], item["chrom"], item["start"], item["end"], item["strand"]) == (
        gene["gene_id"], gene["chrom"], start, start + L, gene["strand"])
    assert item["seq"].dtype == torch.float32 and item["seq"].shape == (L, 4)
    assert item["signals"].shape == (L, 3) and item["gene_features"].shape == (9,) and item["target"].shape == (1,)

    genome = fasta_text(files["fasta"])[gene["chrom"]]
    padded = "".join(genome[p] if 0 <= p < len(genome) else "N" for p in range(start, start + L))
    np.testing.assert_array_equal(item["seq"].numpy(), one_hot(padded))  # forward strand even for '-' genes
    assert item["seq"].sum() == sum(0 <= p < len(genome) for p in range(start, start + L))  # lowercase counted

    signals = item["signals"].numpy()
    h3k27ac = padded_bigwig(files["h3k27ac"], gene["chrom"], start, start + L)
    dnase = padded_bigwig(files["dnase"], gene["chrom"], start, start + L)
    np.testing.assert_allclose(signals[:, 0], h3k27ac, rtol=1e-6)
    np.testing.assert_allclose(signals[:, 1], dnase, rtol=1e-6)
    hic = HicContacts(files["hic"], HicOptions(bin_size=100, normalization="NONE"))
    np.testing.assert_array_equal(signals[:, 2], hic.window(gene["chrom"], gene["tss"], start, start + L))

    mrna = pd.read_csv(files["mrna"]).set_index("gene_id").loc[gene["gene_id"]].to_numpy(np.float32)
    activity = np.sqrt(h3k27ac[L // 2 - 1000 : L // 2 + 1000].mean() * dnase[L // 2 - 1000 : L // 2 + 1000].mean())
    np.testing.assert_allclose(item["gene_features"].numpy(), np.append(mrna, activity), rtol=1e-5)
    raw = pd.read_csv(files["expression"], sep="\t").set_index("gene_id").loc[gene["gene_id"], "expression"]
    assert item["target"].item() == pytest.approx(np.log10(raw + 1), rel=1e-6)


def test_subsets_by_chromosome_and_by_column(files):
    by_chrom = config(files, split=SplitConfig(valid_chroms=["chr2"], test_chroms=["3"]))
    assert [WindowDataset(by_chrom, s)[0]["gene_id"] for s in ("valid", "test")] == ["minus", "third"]
    assert len(WindowDataset(by_chrom, "train")) == 2
    by_column = config(files, split=SplitConfig(column="split"))
    assert [WindowDataset(by_column, "test")[i]["gene_id"] for i in range(1)] == ["end"]
    assert len(WindowDataset(by_column)) == 4


def test_absent_tracks_zeros_fallback_and_warnings_once(files):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = WindowDataset(config(files, tracks=paper_tracks(None, files["dnase"], None), mrna_features=None))
        items = [dataset[i] for i in range(len(dataset))]
    messages = [str(w.message) for w in caught]
    # H3K27ac zeros, Hi-C power law, promoter, mRNA, windows past chromosome ends flagged: once each
    assert len(messages) == 5, messages
    assert any("gene windows are flagged" in m and "(N 45%)" in m for m in messages)
    assert any("'H3K27ac': no file given" in m for m in messages)
    assert any("power-law contact fallback" in m for m in messages)
    item = items[0]
    assert item["signals"][:, 0].abs().sum() == 0
    expected = PowerLawContacts(HicOptions(bin_size=100), SIZES.__getitem__).window("chr1", 300, -700, 1300)
    np.testing.assert_array_equal(item["signals"][:, 2].numpy(), expected)
    dnase = item["signals"][:, 1].numpy()
    assert item["gene_features"][:8].abs().sum() == 0
    assert item["gene_features"][8].item() == pytest.approx(dnase[0:2000].mean(), rel=1e-5)


def test_accessibility_only_preset(files):
    dataset = WindowDataset(config(files, tracks=accessibility_tracks(files["dnase"])))
    item = dataset[2]
    assert item["signals"].shape == (L, 1)
    dnase = padded_bigwig(files["dnase"], "chr2", 2500, 4500)
    np.testing.assert_allclose(item["signals"][:, 0].numpy(), dnase, rtol=1e-6)
    assert item["gene_features"][8].item() == pytest.approx(dnase.mean(), rel=1e-5)


def test_chromosome_aliases_and_missing_chromosome(files, tmp_path):
    genes = tmp_path / "genes_ensembl.tsv"
    write_table(genes, [dict(g, chrom=g["chrom"][3:]) for g in GENES])
    aliased = WindowDataset(config(files, gene_table=str(genes)))[2]
    reference = WindowDataset(config(files))[2]
    for key in ("seq", "signals", "gene_features", "target"):
        torch.testing.assert_close(aliased[key], reference[key])
    partial = tmp_path / "chr1_only.bw"
    write_bigwig(partial, {"chr1": SIZES["chr1"]}, {"chr1": np.ones(SIZES["chr1"])})
    with pytest.raises(DataInputError, match=r"chr1_only\.bw: chromosome 'chr2' is not in this file"):
        WindowDataset(config(files, tracks=paper_tracks(str(partial), files["dnase"], files["hic"])))


def test_tss_outside_chromosome_fails_at_construction(files, tmp_path):
    genes = tmp_path / "genes.tsv"
    write_table(genes, [*GENES, {"gene_id": "far", "chrom": "chr2", "tss": 7_000, "strand": "+", "split": "train"}])
    with pytest.raises(DataInputError, match=r"line 6 \(gene far\): tss 7000 is outside chr2 \(length 7000\)"):
        WindowDataset(config(files, gene_table=str(genes)))


def test_genes_without_target_left_out_with_warning(files, tmp_path):
    expression = tmp_path / "expr.tsv"
    write_table(expression, [{"gene_id": "start", "expression": 9.0}, {"gene_id": "third", "expression": 99.0}])
    with pytest.warns(UserWarning, match=r"2 genes have no 'expression' value \(e.g. \['end', 'minus'\]\)"):
        dataset = WindowDataset(config(files, expression=str(expression)))
    assert [dataset[i]["gene_id"] for i in range(len(dataset))] == ["start", "third"]
    assert [dataset[i]["target"].item() for i in range(2)] == pytest.approx([1.0, 2.0])


def test_dataloader_with_two_workers_matches_single_process(files):
    dataset = WindowDataset(config(files))
    single = next(iter(DataLoader(dataset, batch_size=4, num_workers=0)))
    parallel = [b for b in DataLoader(dataset, batch_size=2, num_workers=2)]
    assert sum(len(b["gene_id"]) for b in parallel) == 4
    for key in ("seq", "signals", "gene_features", "target"):
        torch.testing.assert_close(torch.cat([b[key] for b in parallel]), single[key])
    assert [g for b in parallel for g in b["gene_id"]] == single["gene_id"]


def test_training_data_path_does_not_import_kipoi(tmp_path):
    """`import kipoi` writes ~/.kipoi; the trainer's data path must not touch the user's HOME."""
    import os
    import subprocess
    import sys

    code = "import sys, kipoi_seq2exp.data.dataset; print('kipoi' in sys.modules, 'kipoiseq' in sys.modules)"
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "False"] and not (tmp_path / ".kipoi").exists()

"""The simulated genome: reproducible, faithful to its causal model, readable by real tools."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import h5py
import hictkpy
import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest
import yaml

from kipoi_seq2exp.simulate import (SIM_FILES, embedded_dir, expression_predictability, generate, load_params,
                                    params_to_yaml, simulate_genome)
from kipoi_seq2exp.motifs import encode, load_pwms, reverse_complement
from kipoi_seq2exp.simulate.sequence import accidental_activator_hits
from kipoi_seq2exp.checksum import sha256_of

EMBEDDED = embedded_dir()
PARAMS = EMBEDDED / "params.yaml"
SPLIT = {"chr3": "valid", "chr21": "valid", "chr22": "test", "chrX": "test"}


def _small_params(tmp_path: Path, seed: int | None = None) -> Path:
    """The shipped params with 7 genes on two chromosomes (fast), beside a copy of the motifs."""
    raw = yaml.safe_load(PARAMS.read_text())
    raw["genes_per_chromosome"] = {"chr1": 4, "chr21": 3}
    if seed is not None:
        raw["seed"] = seed
    shutil.copyfile(EMBEDDED / raw["motifs_file"], tmp_path / raw["motifs_file"])
    path = tmp_path / f"params_{seed}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def small_genome(tmp_path_factory):
    directory = tmp_path_factory.mktemp("small")
    return simulate_genome(_small_params(directory))


def test_params_round_trip_and_strict_keys(tmp_path):
    params = load_params(PARAMS)
    (tmp_path / "again.yaml").write_text(params_to_yaml(params))
    assert load_params(tmp_path / "again.yaml") == params
    raw = yaml.safe_load(PARAMS.read_text())
    raw["expression"]["enhancer_gian"] = 3.0
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="enhancer_gian"):
        load_params(tmp_path / "typo.yaml")


def test_generator_is_deterministic_for_a_seed(tmp_path):
    first = _small_params(tmp_path)
    generate(first, tmp_path / "a")
    generate(first, tmp_path / "b")
    generate(_small_params(tmp_path, seed=7), tmp_path / "c")
    names = SIM_FILES.outputs()
    assert [sha256_of(tmp_path / "a" / n) for n in names] == [sha256_of(tmp_path / "b" / n) for n in names]
    assert sha256_of(tmp_path / "a" / SIM_FILES.fasta) != sha256_of(tmp_path / "c" / SIM_FILES.fasta)


def test_shipped_dataset_regenerates_byte_identically(tmp_path):
    generate(PARAMS, tmp_path)
    listed = dict(line.split()[::-1] for line in (EMBEDDED / SIM_FILES.checksums).read_text().splitlines())
    assert sorted(listed) == sorted(SIM_FILES.outputs())
    for name, digest in listed.items():
        assert sha256_of(EMBEDDED / name) == digest, f"shipped {name} differs from its checksum: regenerate it"
        assert sha256_of(tmp_path / name) == digest, f"regenerated {name} differs from the shipped one"


def test_layout_matches_the_project_split_and_sizes():
    genes = pd.read_csv(EMBEDDED / SIM_FILES.genes, sep="\t")
    assert list(genes.columns) == ["gene_id", "gene_name", "chrom", "tss", "strand"]
    splits = genes["chrom"].map(lambda chrom: SPLIT.get(chrom, "train")).value_counts().to_dict()
    assert splits == {"train": 180, "valid": 60, "test": 60}
    spacing = genes.groupby("chrom")["tss"].diff().dropna()
    assert 10_000 <= spacing.median() <= 20_000
    total = sum(p.stat().st_size for p in EMBEDDED.iterdir())
    assert total <= 8 * 2**20


def test_files_open_with_the_real_readers():
    fasta = pyfaidx.Fasta(str(EMBEDDED / SIM_FILES.fasta))
    sizes = {name: len(record) for name, record in fasta.items()}
    with pyBigWig.open(str(EMBEDDED / SIM_FILES.dnase)) as bigwig:
        assert bigwig.chroms() == sizes
        assert math.isnan(bigwig.values("chr1", 0, 1)[0])  # no data over the N run
    assert str(fasta["chr1"][0:5]) == "NNNNN"
    cool = hictkpy.File(str(EMBEDDED / SIM_FILES.hic))
    assert cool.resolution() == 5000 and cool.chromosomes() == sizes
    assert cool.avail_normalizations() == ["VC"]
    weights = cool.weights("VC")
    raw = cool.fetch("chr1").to_numpy()
    balanced = cool.fetch("chr1", normalization="VC", count_type="float").to_numpy()
    np.testing.assert_allclose(balanced[3, 4], raw[3, 4] / (weights[3] * weights[4]))
    assert weights.mean() == pytest.approx(1.0)
    with h5py.File(EMBEDDED / SIM_FILES.hic) as handle:
        assert handle.attrs["creation-date"] == load_params(PARAMS).creation_date


def test_hic_insulates_domains():
    """Adjacent bins in one domain touch ~10x more than adjacent bins across a boundary."""
    domains = pd.read_csv(EMBEDDED / SIM_FILES.domains, sep="\t", skiprows=1, header=None)
    matrix = hictkpy.File(str(EMBEDDED / SIM_FILES.hic)).fetch("chr1").to_numpy()
    bins = np.arange(matrix.shape[0] - 1)
    boundary = np.isin((bins + 1) * 5000, domains[domains[0] == "chr1"][1].to_numpy())
    adjacent = matrix[bins, bins + 1]
    assert adjacent[~boundary].mean() > 5 * adjacent[boundary].mean()


def _motif_table():
    params = load_params(PARAMS)
    pwms = load_pwms(EMBEDDED / params.motifs_file, params.sequence.gc_content, params.motifs.pseudocount)
    return params, pwms


def test_truth_elements_carry_the_motifs_they_claim():
    """Scan the FASTA at every causal element's listed sites: each is a strong PWM match."""
    params, pwms = _motif_table()
    fasta = pyfaidx.Fasta(str(EMBEDDED / SIM_FILES.fasta))
    elements = pd.read_csv(EMBEDDED / SIM_FILES.elements, sep="\t").set_index("element_id")
    truth = pd.read_csv(EMBEDDED / SIM_FILES.causal_elements, sep="\t", skiprows=1, header=None,
                        names=["chrom", "start", "end", "name", "effect"])
    assert (truth["effect"] > 0).all() and len(truth) > 500
    for row in truth.itertuples():
        element = elements.loc[row.name.split(":")[1]]
        assert (element.chrom, element.start, element.end) == (row.chrom, row.start, row.end)
        activator_sites = 0
        for site in element.sites.split(";"):
            motif, _, start, strand = site.split(",")
            pwm = pwms[motif]
            codes = encode(str(fasta[row.chrom][int(start):int(start) + pwm.width]))
            codes = codes if strand == "+" else reverse_complement(codes)
            assert pwm.relative(pwm.score(codes)) >= params.motifs.planted_min_relative_score
            activator_sites += motif in params.motifs.activator_weights
        assert activator_sites >= 1, f"causal element {row.name} has no activator site"


def test_open_decoys_hold_no_activator_match():
    params, pwms = _motif_table()
    fasta = pyfaidx.Fasta(str(EMBEDDED / SIM_FILES.fasta))
    elements = pd.read_csv(EMBEDDED / SIM_FILES.elements, sep="\t")
    activators = [pwms[m] for m in params.motifs.enhancer_motifs]
    decoys = elements[elements["kind"].isin(["open_inert", "insulator"])]
    assert len(decoys) > 100
    for row in decoys.itertuples():
        codes = encode(str(fasta[row.chrom][row.start:row.end]))
        none_planted = np.zeros(len(codes), dtype=bool)
        assert not accidental_activator_hits(codes, none_planted, activators, params.motifs.scrub_relative_score).any()


def test_decoys_have_exactly_zero_effect(small_genome):
    """Deleting any decoy in a gene's 20 kb window leaves its expression unchanged, bit for bit."""
    genome = small_genome
    causal = {(gene_id, element.element_id): effect for gene_id, element, effect in genome.effects()}
    seen_kinds = set()
    for index, gene in enumerate(genome.genes):
        baseline = genome.log10_rate(index)
        for element in genome.elements:
            if element.chrom != gene.chrom or abs(element.centre - gene.tss) > 10_000:
                continue
            deleted = genome.log10_rate(index, deleted=[element.element_id])
            if (gene.gene_id, element.element_id) in causal:
                assert deleted == pytest.approx(baseline - causal[gene.gene_id, element.element_id], abs=1e-12)
                assert deleted < baseline
            else:
                assert deleted == baseline
                other_domain = element.kind == "enhancer" and element.tad != gene.tad
                seen_kinds.add("other_domain_enhancer" if other_domain else element.kind)
    assert {"closed_motif", "open_inert", "insulator", "other_domain_enhancer"} <= seen_kinds


def test_closed_motif_elements_have_the_grammar_but_no_effect(small_genome):
    closed = [e for e in small_genome.elements if e.kind == "closed_motif"]
    assert closed and all(e.strength > 0 and e.openness == 0 for e in closed)
    causal_ids = {element.element_id for _, element, _ in small_genome.effects()}
    assert not causal_ids & {e.element_id for e in closed}


def test_expression_table_follows_the_model(small_genome, tmp_path):
    rates = np.array([small_genome.log10_rate(i) for i in range(len(small_genome.genes))])
    observed = np.log10(small_genome.counts + 1)
    assert np.abs(observed - rates).max() < 0.6  # Poisson noise on >= ~10 expected counts
    shipped = pd.read_csv(EMBEDDED / SIM_FILES.expression, sep="\t")
    assert list(shipped.columns) == ["gene_id", "expression"] and shipped["expression"].dtype.kind == "i"


def test_mrna_features_follow_the_real_distributions():
    params = load_params(PARAMS).mrna_features
    table = pd.read_csv(EMBEDDED / SIM_FILES.mrna_features, sep="\t")
    assert list(table.columns) == ["gene_id", *params.columns]
    for name, mean, sd in zip(params.columns, params.mean, params.sd):
        assert abs(table[name].mean() - mean) < 0.25 * sd, name
        assert 0.7 * sd < table[name].std() < 1.3 * sd, name
    assert np.corrcoef(table["CDSGC"], table["UTR3GC"])[0, 1] > 0.4  # real pair correlation 0.61


def test_sequence_and_signal_both_matter_for_expression():
    r = expression_predictability(EMBEDDED)
    assert r["motif+signal"] > 0.85
    assert r["motif+signal"] > r["signal only"] + 0.1
    assert r["motif+signal"] > r["sequence only"] + 0.1


def test_params_with_unknown_motif_fail_clearly(tmp_path):
    raw = yaml.safe_load(PARAMS.read_text())
    raw["motifs"]["inert_motifs"] = ["MA9999.1"]
    shutil.copyfile(EMBEDDED / raw["motifs_file"], tmp_path / raw["motifs_file"])
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(KeyError, match="MA9999.1"):
        simulate_genome(tmp_path / "p.yaml")


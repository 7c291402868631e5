"""`seq2exp perturb --dna shuffle|nmask --samples N` (issue 19): the dinucleotide shuffle's
invariants, the DNA-ablation delta against two direct model calls, the delta intervals against
`intervals` called by hand with the same seed, and the columns each option adds."""
import json
from collections import Counter

import kipoi
import numpy as np
import pandas as pd
import pytest

from kipoi_seq2exp.data.genome import one_hot
from kipoi_seq2exp.interpret.intervals import sampled_expressions, uniforms
from kipoi_seq2exp.interpret.perturb import (Element, ElementIndex, ablate_dna, element_rng, perturb_gene,
                                             perturb_genes, silence, write_effects)
from kipoi_seq2exp.interpret.shuffle import dinucleotide_shuffle
from kipoi_seq2exp.predict import predict_genes
from test_interpret_perturb import ENHANCER, MEMBERS, direct
from test_zoo_helpers import gene_subset, one_thread, run_cli, sim_dataloader_args  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
#: SIMG00241's promoter, 150 bp either side of its TSS (25,970); its window starts at 15,970
PROMOTER = Element("chr22", 25820, 26120, "SIME01790")
WINDOW_START = 15_970
BASE_COLUMNS = ["chrom", "start", "end", "name", "gene_id", "TargetGeneTSS", "ref_expression", "perturbed_expression",
                "delta", "percent_change", "qc"]


def dinucleotides(seq) -> Counter:
    return Counter(zip(seq[:-1], seq[1:]))


@pytest.fixture(scope="module")
def gene(tmp_path_factory):
    """Demo-soft on SIMG00241 of the simulated genome, and its reference pass."""
    model = kipoi.get_model(str(MEMBERS / "Demo-soft"), source="dir")
    dataset = model.default_dataloader(**sim_dataloader_args(gene_subset(tmp_path_factory.mktemp("g"), ["SIMG00241"])))
    return model, dataset, next(predict_genes(model, dataset, progress=False))


def test_shuffle_keeps_every_dinucleotide_and_the_ends():
    seq = np.array(list("ACGTTGCAAACCGGTTNNACGTACGATCGATCGGGCTAAAGT"))
    shuffled = dinucleotide_shuffle(seq, np.random.default_rng(1))
    assert len(shuffled) == len(seq) and shuffled.dtype == seq.dtype
    assert dinucleotides(shuffled) == dinucleotides(seq)
    assert (shuffled[0], shuffled[-1]) == (seq[0], seq[-1])
    assert not np.array_equal(shuffled, seq)
    np.testing.assert_array_equal(dinucleotide_shuffle(seq, np.random.default_rng(1)), shuffled)
    assert not np.array_equal(dinucleotide_shuffle(seq, np.random.default_rng(2)), shuffled)
    only = np.array(list("ACGT"))  # one arrangement has these dinucleotides: the sequence itself
    np.testing.assert_array_equal(dinucleotide_shuffle(only, np.random.default_rng(0)), only)


def test_shuffle_draws_every_arrangement_uniformly():
    # AACAGCA: dinucleotides AA, AC, CA x2, AG, GC; starting with A, six sequences have exactly these
    seen = Counter("".join(dinucleotide_shuffle(np.array(list("AACAGCA")), np.random.default_rng(seed)))
                   for seed in range(6_000))
    assert set(seen) == {"AACAGCA", "AAGCACA", "ACAAGCA", "ACAGCAA", "AGCAACA", "AGCACAA"}
    assert min(seen.values()) > 850 and max(seen.values()) < 1150  # 1,000 each; 4.7 sd of a binomial either side


def test_shuffle_of_one_hot_rows_treats_n_as_a_letter():
    seq = one_hot("ACGNNTTGCANACGGT" * 8)
    shuffled = dinucleotide_shuffle(seq, np.random.default_rng(5))
    rows = lambda x: [tuple(r) for r in x]  # noqa: E731
    assert shuffled.shape == seq.shape and shuffled.dtype == np.float32
    assert dinucleotides(rows(shuffled)) == dinucleotides(rows(seq)) and not np.array_equal(shuffled, seq)


def test_dna_ablation_delta_is_two_direct_predictions(gene):
    model, dataset, prediction = gene
    inputs = dataset[0]["inputs"]
    reference = direct(model, inputs, inputs["signals"], inputs["gene_features"])
    span = (ENHANCER.start - WINDOW_START, ENHANCER.end - WINDOW_START)
    for how in ("shuffle", "nmask"):
        [effect] = perturb_gene(model, dataset, prediction, [ENHANCER], dna=how, seed=3)
        seq = inputs["seq"].copy()
        if how == "shuffle":
            seq[span[0]:span[1]] = dinucleotide_shuffle(inputs["seq"][span[0]:span[1]], element_rng(3, ENHANCER))
        else:
            seq[span[0]:span[1]] = 0.0  # N: an all-zero row, as the dataloader reads it
            np.testing.assert_array_equal(seq[span[0]:span[1]], one_hot("N" * (span[1] - span[0])))
        ablated = direct(model, {**inputs, "seq": seq}, inputs["signals"], inputs["gene_features"])
        assert effect.dna_delta == pytest.approx(ablated - reference, abs=2e-6)
        assert abs(effect.dna_delta) > 1e-3  # the member does read the element's DNA
        assert effect.dna_expression == pytest.approx(ablated, abs=2e-6)
        assert effect.dna_percent_change == pytest.approx(100 * (10 ** effect.dna_delta - 1))
        # silencing is reported as without --dna
        [plain] = perturb_gene(model, dataset, prediction, [ENHANCER])
        assert (effect.delta, effect.dna_delta_low) == (plain.delta, None)
    with pytest.raises(ValueError, match="DNA ablation 'delete'"):
        perturb_gene(model, dataset, prediction, [ENHANCER], dna="delete")
    with pytest.raises(ValueError, match="not inside the 20,000-bp window.*Fix:"):
        ablate_dna(inputs["seq"], (19_900, 20_100), "nmask", np.random.default_rng(0))


def test_delta_intervals_are_percentiles_of_paired_mask_samples(gene):
    model, dataset, prediction = gene
    samples, seed = 12, 3
    [effect] = perturb_gene(model, dataset, prediction, [PROMOTER], dna="nmask", samples=samples, seed=seed,
                            batch_size=5)
    u = uniforms(seed, "SIMG00241", samples, model.model.cfg.n_tokens)
    inputs = prediction.inputs
    reference = sampled_expressions(model, inputs, u)
    span = (PROMOTER.start - WINDOW_START, PROMOTER.end - WINDOW_START)
    background = np.median(np.delete(inputs["signals"], np.s_[span[0]:span[1]], axis=0), axis=0)
    quiet = silence(inputs["signals"], span, [0, 1], background)
    silenced = {**inputs, "signals": quiet, "gene_features": dataset.windows.gene_features(0, quiet)}
    masked = {**inputs, "seq": ablate_dna(inputs["seq"], span, "nmask", np.random.default_rng(0))}
    for perturbed, (low, high) in ((silenced, (effect.delta_low, effect.delta_high)),
                                   (masked, (effect.dna_delta_low, effect.dna_delta_high))):
        deltas = sampled_expressions(model, perturbed, u) - reference
        np.testing.assert_allclose([low, high], np.quantile(deltas, [0.05, 0.95]), atol=2e-6)
        assert high - low > 1e-5  # the mask samples do spread the delta
    again = perturb_gene(model, dataset, prediction, [PROMOTER], dna="nmask", samples=samples, seed=seed,
                         batch_size=5)
    assert again == [effect]


def test_columns_of_each_option(gene, tmp_path):
    model, dataset, _ = gene
    index = ElementIndex([ENHANCER, PROMOTER])
    write_effects(perturb_genes(model, dataset, index, progress=False), tmp_path / "plain.tsv")
    assert list(pd.read_csv(tmp_path / "plain.tsv", sep="\t").columns) == BASE_COLUMNS
    write_effects(perturb_genes(model, dataset, index, progress=False, samples=4), tmp_path / "spread.tsv")
    assert list(pd.read_csv(tmp_path / "spread.tsv", sep="\t").columns) == BASE_COLUMNS + ["delta_lo90", "delta_hi90"]
    effects = list(perturb_genes(model, dataset, index, progress=False, dna="shuffle", samples=4, seed=9))
    args = sim_dataloader_args(gene_subset(tmp_path, ["SIMG00241"]))
    (tmp_path / "elements.bed").write_text("".join(f"{e.chrom}\t{e.start}\t{e.end}\t{e.name}\n"
                                                   for e in (ENHANCER, PROMOTER)))
    done = run_cli(["seq2exp", "perturb", str(MEMBERS / "Demo-soft"), "--source", "dir", "--dataloader_args",
                    json.dumps(args), "--elements", str(tmp_path / "elements.bed"), "--dna", "shuffle", "--samples",
                    "4", "--seed", "9", "-o", str(tmp_path / "cri.tsv"), "--no-progress"], home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "of replacing their DNA (shuffle), 90 % intervals from 4 mask samples" in done.stderr
    table = pd.read_csv(tmp_path / "cri.tsv", sep="\t")
    added = ["dna_expression", "dna_delta", "dna_percent_change", "delta_lo90", "delta_hi90", "dna_delta_lo90",
             "dna_delta_hi90"]
    assert list(table.columns) == BASE_COLUMNS + added
    by_hand = pd.DataFrame([[getattr(e, name) for name in ("dna_delta", "delta_low", "dna_delta_high")]
                            for e in effects])
    np.testing.assert_allclose(table[["dna_delta", "delta_lo90", "dna_delta_hi90"]], by_hand, atol=2e-6)
    e2g = pd.read_csv(tmp_path / "cri.e2g.tsv", sep="\t")
    assert list(e2g.columns[-len(added):]) == added

"""``seq2exp score-variants``: predicted expression change of every gene whose window holds a variant.

kipoi-veff scores SNVs only and one window per variant record; a Seq2Exp variant usually sits in
several genes' 200-kb windows and may be an indel. Here each (variant, gene) pair gets the
reference and alternative expression of that gene, from the windows of
:func:`kipoi_seq2exp.data.variants.iter_variant_windows` (TSS-anchored, length kept for indels).
Signals and gene features are the gene's own (measured tracks do not change with the sequence),
read by the same dataloader ``kipoi predict`` uses; the reference prediction of a gene is computed
once and shared by all its variants, so a variant costs about one forward pass.

With ``samples``, each delta also gets the `intervals.LEVEL` interval over seeded mask samples of
the Beta (`kipoi_seq2exp.interpret.intervals`), as ``seq2exp perturb --samples`` gives: a gene's
reference and alternative windows are drawn at the same quantiles (its (seed, gene id) draws), so
the interval is one of paired differences; the reference samples are shared by the gene's variants.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

import numpy as np

from ..atomic import atomic_path
from ..data.variants import VariantReport, VariantWindow, iter_variant_windows
from ..interpret.intervals import LEVEL, Interval, sampled_expressions, uniforms

#: Gene inputs kept in memory at once: variants come sorted, so a gene's variants arrive together.
GENE_CACHE = 64
#: The optional interval fields, left out of the table unless asked for, and their column names.
INTERVAL_FIELDS = ("delta_low", "delta_high")
COLUMN_NAMES = {"delta_low": f"delta_lo{round(100 * LEVEL)}", "delta_high": f"delta_hi{round(100 * LEVEL)}"}


@dataclass(frozen=True)
class VariantScore:
    """One variant in one gene's window.

    ``pos`` is 1-based (VCF); ``tss`` 0-based (gene table). ``tss_distance`` is strand-aware: bp from
    the TSS to the variant's first base along the gene's direction of transcription (negative =
    upstream). Expressions are predicted log10(CAGE + 1); ``delta`` = alt - ref; ``qc`` says whether
    the gene's window could be read (see `kipoi_seq2exp.data.qc`); ``delta_low`` / ``delta_high``
    (None unless ``samples``) bound the delta's interval over mask samples.
    """

    chrom: str
    pos: int
    vcf_id: str
    ref: str
    alt: str
    gene_id: str
    gene_strand: str
    tss: int
    tss_distance: int
    ref_expression: float
    alt_expression: float
    delta: float
    qc: str  # the gene window's quality (`WindowQC.label`): 'ok', or why it is flagged
    delta_low: float | None = None  # LEVEL interval of delta over mask samples (column delta_lo90)
    delta_high: float | None = None


def tss_distance(position0: int, tss: int, strand: str) -> int:
    """Signed distance of a 0-based position from the TSS in the gene's direction (upstream < 0)."""
    return tss - position0 if strand == "-" else position0 - tss


class _GeneInputs:
    """Inputs of the genes (the GENE_CACHE most recently loaded) and their reference expression (all),
    with ``samples`` > 0 also its expression over mask samples (the GENE_CACHE most recent)."""

    def __init__(self, model, dataset, samples: int = 0, seed: int = 0, batch_size: int = 8):
        self.model = model
        self.windows = dataset.windows
        self.index = {gene.gene_id: i for i, gene in enumerate(self.windows.gene_list)}
        self.inputs: dict[str, dict[str, np.ndarray]] = {}
        self.reference: dict[str, float] = {}
        self.samples, self.seed, self.batch_size = samples, seed, batch_size
        self.sampled: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def of(self, gene_id: str) -> dict[str, np.ndarray]:
        if gene_id not in self.inputs:
            if len(self.inputs) >= GENE_CACHE:
                del self.inputs[next(iter(self.inputs))]
            self.inputs[gene_id] = self.windows.example(self.index[gene_id])
        return self.inputs[gene_id]

    def reference_expression(self, gene_ids: Iterable[str]) -> None:
        """Predict, in one batch, the reference expression of the genes not known yet."""
        todo = [g for g in dict.fromkeys(gene_ids) if g not in self.reference]
        if todo:
            batch = {name: np.stack([self.of(g)[name] for g in todo]) for name in ("seq", "signals", "gene_features", "signal_depth")}
            for gene_id, value in zip(todo, self.model.predict_on_batch(batch)):
                self.reference[gene_id] = float(value)

    def reference_samples(self, gene_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The gene's mask quantiles u (samples, tokens) and its reference expression at them (samples,)."""
        if gene_id not in self.sampled:
            if len(self.sampled) >= GENE_CACHE:
                del self.sampled[next(iter(self.sampled))]
            u = uniforms(self.seed, gene_id, self.samples, self.model.model.cfg.n_tokens)
            self.sampled[gene_id] = u, sampled_expressions(self.model, self.of(gene_id), u, self.batch_size)
        return self.sampled[gene_id]

    def delta_interval(self, gene_id: str, alt_seq: np.ndarray) -> Interval:
        """Interval of alt - ref over the gene's mask samples, both windows drawn at the same u."""
        u, reference = self.reference_samples(gene_id)
        alt = sampled_expressions(self.model, {**self.of(gene_id), "seq": alt_seq}, u, self.batch_size)
        return Interval.of(alt - reference)


def score_variants(model, dataset, vcf: str, batch_size: int = 8, report: VariantReport | None = None,
                   progress: bool = True, samples: int = 0, seed: int = 0) -> Iterator[VariantScore]:
    """Score every (variant, gene) pair of a bgzipped, tabix-indexed VCF.

    Parameters
    ----------
    model
        A `Seq2ExpModel` (``kipoi.get_model("Seq2Exp/<member>", source=...)``).
    dataset
        The member's dataloader built with the user's files (``model.default_dataloader(**args)``):
        its genes, FASTA, tracks and window are used.
    vcf
        VCF path; checked (bgzip + .tbi/.csi) before anything runs.
    batch_size
        Alternative windows (or mask samples) per forward pass.
    report, progress
        See `iter_variant_windows` (counts of skipped records; tqdm bar over VCF records).
    samples, seed
        > 0: each delta's interval over that many mask samples, drawn from (seed, gene id) (`intervals`).

    Yields
    ------
    VariantScore
        In VCF order, one per gene whose window holds the variant.
    """
    genes = _GeneInputs(model, dataset, samples, seed, batch_size)
    windows = dataset.windows
    pending: list[VariantWindow] = []
    for item in iter_variant_windows(vcf, windows.genes, windows.fasta, windows.config.window, report, progress):
        pending.append(item)
        if len(pending) == batch_size:
            yield from _score_batch(model, genes, pending)
            pending = []
    if pending:
        yield from _score_batch(model, genes, pending)


def _score_batch(model, genes: _GeneInputs, items: list[VariantWindow]) -> list[VariantScore]:
    gene_ids = [item.gene.gene_id for item in items]
    genes.reference_expression(gene_ids)
    batch = {"seq": np.stack([item.alt_onehot for item in items]),
             "signals": np.stack([genes.of(g)["signals"] for g in gene_ids]),
             "gene_features": np.stack([genes.of(g)["gene_features"] for g in gene_ids]),
             "signal_depth": np.stack([genes.of(g)["signal_depth"] for g in gene_ids])}
    alt = model.predict_on_batch(batch)
    scores = []
    for item, alt_value in zip(items, alt):
        v, gene = item.variant, item.gene
        ref_value = genes.reference[gene.gene_id]
        spread = genes.delta_interval(gene.gene_id, item.alt_onehot) if genes.samples else None
        scores.append(VariantScore(
            chrom=v.chrom, pos=v.pos, vcf_id=v.id or ".", ref=v.ref, alt=v.alt, gene_id=gene.gene_id,
            gene_strand=gene.strand, tss=gene.tss, tss_distance=tss_distance(v.pos - 1, gene.tss, gene.strand),
            ref_expression=ref_value, alt_expression=float(alt_value), delta=float(alt_value) - ref_value,
            qc=genes.windows.qc[genes.index[gene.gene_id]].label,
            delta_low=spread.low if spread else None, delta_high=spread.high if spread else None))
    return scores


def write_scores(scores: Iterable[VariantScore], path: str | os.PathLike, intervals: bool = False) -> int:
    """Write scores as a TSV (header = `VariantScore` fields, `COLUMN_NAMES` where they differ; the
    interval columns only with ``intervals``: the header is written before the first score exists);
    all or nothing (`atomic_path`: a failed scoring run leaves no half table). Returns the number of rows."""
    names = [f.name for f in fields(VariantScore) if intervals or f.name not in INTERVAL_FIELDS]
    rows = 0
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([COLUMN_NAMES.get(name, name) for name in names])
        for score in scores:
            writer.writerow([f"{x:.7g}" if isinstance(x, float) else x for x in (getattr(score, n) for n in names)])
            rows += 1
    return rows

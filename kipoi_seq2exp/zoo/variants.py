"""``seq2exp score-variants``: predicted expression change of every gene whose window holds a variant.

kipoi-veff scores SNVs only and one window per variant record; a Seq2Exp variant usually sits in
several genes' 200-kb windows and may be an indel. Here each (variant, gene) pair gets the
reference and alternative expression of that gene, from the windows of
:func:`kipoi_seq2exp.data.variants.iter_variant_windows` (TSS-anchored, length kept for indels).
Signals and gene features are the gene's own (measured tracks do not change with the sequence),
read by the same dataloader ``kipoi predict`` uses; the reference prediction of a gene is computed
once and shared by all its variants, so a variant costs about one forward pass.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, fields

import numpy as np

from ..atomic import atomic_path
from ..data.variants import VariantReport, VariantWindow, iter_variant_windows

#: Gene inputs kept in memory at once: variants come sorted, so a gene's variants arrive together.
GENE_CACHE = 64


@dataclass(frozen=True)
class VariantScore:
    """One variant in one gene's window.

    ``pos`` is 1-based (VCF); ``tss`` 0-based (gene table). ``tss_distance`` is strand-aware: bp from
    the TSS to the variant's first base along the gene's direction of transcription (negative =
    upstream). Expressions are predicted log10(CAGE + 1); ``delta`` = alt - ref; ``qc`` says whether
    the gene's window could be read (see `kipoi_seq2exp.data.qc`).
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


def tss_distance(position0: int, tss: int, strand: str) -> int:
    """Signed distance of a 0-based position from the TSS in the gene's direction (upstream < 0)."""
    return tss - position0 if strand == "-" else position0 - tss


class _GeneInputs:
    """Inputs of the genes (the GENE_CACHE most recently loaded) and their reference expression (all)."""

    def __init__(self, model, dataset):
        self.model = model
        self.windows = dataset.windows
        self.index = {gene.gene_id: i for i, gene in enumerate(self.windows.gene_list)}
        self.inputs: dict[str, dict[str, np.ndarray]] = {}
        self.reference: dict[str, float] = {}

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


def score_variants(model, dataset, vcf: str, batch_size: int = 8, report: VariantReport | None = None,
                   progress: bool = True) -> Iterator[VariantScore]:
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
        Alternative windows per forward pass.
    report, progress
        See `iter_variant_windows` (counts of skipped records; tqdm bar over VCF records).

    Yields
    ------
    VariantScore
        In VCF order, one per gene whose window holds the variant.
    """
    genes = _GeneInputs(model, dataset)
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
        scores.append(VariantScore(
            chrom=v.chrom, pos=v.pos, vcf_id=v.id or ".", ref=v.ref, alt=v.alt, gene_id=gene.gene_id,
            gene_strand=gene.strand, tss=gene.tss, tss_distance=tss_distance(v.pos - 1, gene.tss, gene.strand),
            ref_expression=ref_value, alt_expression=float(alt_value), delta=float(alt_value) - ref_value,
            qc=genes.windows.qc[genes.index[gene.gene_id]].label))
    return scores


def write_scores(scores: Iterable[VariantScore], path: str | os.PathLike) -> int:
    """Write scores as a TSV (header = `VariantScore` fields); all or nothing (`atomic_path`: a failed
    scoring run leaves no half table). Returns the number of rows."""
    rows = 0
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([f.name for f in fields(VariantScore)])
        for score in scores:
            writer.writerow([f"{x:.7g}" if isinstance(x, float) else x for x in astuple(score)])
            rows += 1
    return rows

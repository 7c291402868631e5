"""The causal model of the simulated genome: who regulates whom, and by how much.

This module holds the ground truth the evaluation scores against. Expression follows the
formula in the package docstring; ``SimulatedGenome.log10_rate`` computes it, optionally with
elements deleted in silico, which is how each element's effect is defined.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..motifs import Pwm
from .params import SimParams

KINDS = ("promoter", "enhancer", "closed_motif", "open_inert", "insulator")


@dataclass(frozen=True)
class Site:
    """A planted transcription-factor binding site; ``start`` is 0-based on the chromosome."""

    motif_id: str
    start: int
    strand: str


@dataclass(frozen=True)
class Tad:
    """A contact domain [start, end) on ``chrom``: regulation never crosses its boundaries."""

    index: int
    chrom: str
    start: int
    end: int


@dataclass(frozen=True)
class Gene:
    gene_id: str
    gene_name: str
    chrom: str
    tss: int  # 0-based
    strand: str
    tad: int


@dataclass(frozen=True)
class Element:
    """A candidate regulatory element [start, end) and what the simulation gave it.

    ``strength`` is the sum of the activator weights of its sites (0 without activator sites);
    ``openness`` is 0 for closed chromatin. Only their product can regulate anything.
    """

    element_id: str
    chrom: str
    start: int
    end: int
    kind: str
    host_gene: str  # gene it was placed for ('' for insulators); promoters regulate only it
    tad: int
    openness: float
    acetylation: float
    strength: float
    sites: tuple[Site, ...]

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    @property
    def activity(self) -> float:
        return self.strength * self.openness


@dataclass
class SimulatedGenome:
    """Everything ``generate`` drew, including what the files on disk do not show."""

    params: SimParams
    pwms: dict[str, Pwm] = field(repr=False)
    chrom_sizes: dict[str, int]
    tads: list[Tad]
    genes: list[Gene]
    elements: list[Element]
    sequences: dict[str, np.ndarray] = field(repr=False)  # chrom -> ASCII bytes as written to the FASTA
    features: np.ndarray = field(repr=False)  # (genes, 8) mRNA features, columns as params
    noise: np.ndarray = field(repr=False)  # (genes,) log10-scale expression noise
    counts: np.ndarray = field(repr=False)  # (genes,) CAGE-like counts

    def __post_init__(self) -> None:
        self._by_tad: dict[int, list[Element]] = {}
        for element in self.elements:
            self._by_tad.setdefault(element.tad, []).append(element)
        self._promoter = {e.host_gene: e for e in self.elements if e.kind == "promoter"}

    def contact(self, element: Element, gene: Gene) -> float:
        """Regulatory contact c(e, g): power law in distance inside the gene's domain, 0 outside."""
        if element.tad != gene.tad:
            return 0.0
        expression = self.params.expression
        distance = max(abs(element.centre - gene.tss), expression.contact_d0)
        return (distance / expression.contact_d0) ** -expression.contact_exponent

    def distal_contributions(self, gene: Gene, deleted: Iterable[str] = ()) -> dict[str, float]:
        """gain * strength * openness * contact of every non-promoter element of the gene's domain."""
        deleted = set(deleted)
        gain = self.params.expression.enhancer_gain
        return {
            element.element_id: gain * element.activity * self.contact(element, gene)
            for element in self._by_tad.get(gene.tad, [])
            if element.kind != "promoter" and element.element_id not in deleted
        }

    def promoter_activity(self, gene: Gene, deleted: Iterable[str] = ()) -> float:
        promoter = self._promoter[gene.gene_id]
        return 0.0 if promoter.element_id in set(deleted) else promoter.activity

    def log10_rate(self, gene_index: int, deleted: Iterable[str] = ()) -> float:
        """Expected log10 CAGE count of one gene, with the listed element ids deleted in silico.

        log10 mu = log10(scale) + log10(P + floor) + log10(1 + E) + sum_j beta_j z_j + noise
        """
        deleted = tuple(deleted)
        gene = self.genes[gene_index]
        expression = self.params.expression
        promoter = self.promoter_activity(gene, deleted)
        enhancers = sum(self.distal_contributions(gene, deleted).values())
        return (math.log10(expression.scale) + math.log10(promoter + expression.promoter_floor)
                + math.log10(1.0 + enhancers) + self.feature_term(gene_index) + float(self.noise[gene_index]))

    def feature_term(self, gene_index: int) -> float:
        """Small mRNA-feature effect: sum_j beta_j (f_j - mean_j) / sd_j, in log10 units."""
        features = self.params.mrna_features
        effects = self.params.expression.feature_effects
        z = (self.features[gene_index] - np.array(features.mean)) / np.array(features.sd)
        return float(sum(effects[name] * value for name, value in zip(features.columns, z)))

    def effects(self) -> list[tuple[str, Element, float]]:
        """(gene_id, element, effect) for every element with a non-zero effect on a gene.

        Effect = drop in log10 expression when the element alone is deleted (an in-silico
        CRISPRi screen); it is positive by construction and exactly 0 for decoys.
        """
        out = []
        floor = self.params.expression.promoter_floor
        for gene in self.genes:
            promoter = self._promoter[gene.gene_id]
            if promoter.activity > 0:
                out.append((gene.gene_id, promoter,
                            math.log10(promoter.activity + floor) - math.log10(floor)))
            contributions = self.distal_contributions(gene)
            total = sum(contributions.values())
            for element in self._by_tad.get(gene.tad, []):
                part = contributions.get(element.element_id, 0.0)
                if part > 0:
                    out.append((gene.gene_id, element, math.log10(1 + total) - math.log10(1 + total - part)))
        return out

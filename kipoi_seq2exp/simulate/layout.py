"""Where things sit: domains (TADs), genes, and the candidate elements around each gene."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .model import Element, Gene, Site, Tad
from .params import SimParams

_PLACEMENT_TRIES = 50


@dataclass
class _Draft:
    """An element before ids are assigned (ids follow genome order)."""

    chrom: str
    start: int
    end: int
    kind: str
    host_gene: str
    tad: int
    openness: float
    acetylation: float
    motifs: list[str]


def lay_out_chromosomes(params: SimParams, rng: np.random.Generator) -> tuple[dict[str, int], list[Tad], list[Gene]]:
    """Chromosomes as flank domain + gene domains + flank domain; gene ids in genome order."""
    layout = params.layout
    chrom_sizes: dict[str, int] = {}
    tads: list[Tad] = []
    genes: list[Gene] = []
    for chrom, n_genes in params.genes_per_chromosome.items():
        position = 0
        for size_bins, genes_in_domain in _domain_plan(n_genes, params, rng):
            tad = Tad(len(tads), chrom, position, position + size_bins * layout.bin_size)
            tads.append(tad)
            position = tad.end
            for tss in _place_tss(tad, genes_in_domain, layout.tss_boundary_margin, layout.min_tss_spacing, rng):
                number = len(genes) + 1
                strand = "+" if rng.random() < 0.5 else "-"
                genes.append(Gene(f"SIMG{number:05d}", f"SimGene{number}", chrom, tss, strand, tad.index))
        chrom_sizes[chrom] = position
    return chrom_sizes, tads, genes


def _domain_plan(n_genes: int, params: SimParams, rng: np.random.Generator) -> Iterator[tuple[int, int]]:
    """(size in bins, genes in it) for each domain of one chromosome, flanks included."""
    layout = params.layout
    yield layout.flank_bins, 0
    remaining = n_genes
    while remaining:
        pair = remaining >= 2 and rng.random() < layout.two_gene_tad_probability
        low, high = layout.two_gene_tad_bins if pair else layout.one_gene_tad_bins
        yield int(rng.integers(low, high + 1)), 2 if pair else 1
        remaining -= 2 if pair else 1
    yield layout.flank_bins, 0


def _place_tss(tad: Tad, n: int, margin: int, spacing: int, rng: np.random.Generator) -> list[int]:
    low, high = tad.start + margin, tad.end - margin
    if n == 0:
        return []
    if n == 1:
        return [int(rng.integers(low, high + 1))]
    middle = (tad.start + tad.end) // 2
    first = int(rng.integers(low, middle - spacing // 2 + 1))
    second = int(rng.integers(middle + spacing // 2, high + 1))
    return [first, second]


def place_elements(params: SimParams, chrom_sizes: dict[str, int], tads: list[Tad], genes: list[Gene],
                   motif_widths: dict[str, int], rng: np.random.Generator) -> list[Element]:
    """Promoters, insulators at domain boundaries, then each gene's distal candidates.

    Distal candidates stay inside their host gene's domain, 1.5-9.5 kb (params) from its TSS
    and never within ``centre_exclusion`` (1 kb) of any TSS, so no gene's forced centre (the
    central 2 kb the model always keeps) holds one.
    """
    drafts = [_promoter(gene, params, rng) for gene in genes]
    drafts += _insulators(params, tads, rng)
    occupied: dict[str, list[tuple[int, int]]] = {chrom: [] for chrom in chrom_sizes}
    gap, exclusion = params.elements.min_gap, params.elements.centre_exclusion
    for gene in genes:
        occupied[gene.chrom].append((gene.tss - exclusion - gap, gene.tss + exclusion + gap))
    for draft in drafts:
        if draft.kind == "insulator":
            occupied[draft.chrom].append((draft.start - gap, draft.end + gap))
    for gene in genes:
        for kind in ("enhancer", "closed_motif", "open_inert"):
            count = min(int(rng.poisson(params.elements.mean_per_gene[kind])), params.elements.max_per_gene)
            for _ in range(count):
                span = _free_span(gene, tads[gene.tad], occupied[gene.chrom], params, rng)
                if span is None:
                    continue
                occupied[gene.chrom].append((span[0] - gap, span[1] + gap))
                drafts.append(_distal(kind, gene, span, params, rng))
    order = {chrom: i for i, chrom in enumerate(chrom_sizes)}
    drafts.sort(key=lambda d: (order[d.chrom], d.start))
    return [_finish(f"SIME{i + 1:05d}", draft, params, motif_widths, rng) for i, draft in enumerate(drafts)]


def _promoter(gene: Gene, params: SimParams, rng: np.random.Generator) -> _Draft:
    chromatin = params.chromatin
    half = params.elements.promoter_half_width
    closed = rng.random() < chromatin.promoter_closed_probability
    openness = 0.0 if closed else float(rng.lognormal(*chromatin.promoter_openness))
    acetylation = float(rng.lognormal(*chromatin.acetylation))
    low, high = params.motifs.promoter_sites
    motifs = [params.motifs.promoter_motif] * int(rng.integers(low, high + 1))
    return _Draft(gene.chrom, gene.tss - half, gene.tss + half, "promoter", gene.gene_id, gene.tad,
                  openness, acetylation, motifs)


def _insulators(params: SimParams, tads: list[Tad], rng: np.random.Generator) -> list[_Draft]:
    """A CTCF-bound open site on every boundary between two domains of a chromosome."""
    chromatin = params.chromatin
    length = params.elements.insulator_length
    drafts = []
    for left, right in zip(tads, tads[1:]):
        if left.chrom != right.chrom:
            continue
        openness = float(rng.lognormal(*chromatin.insulator_openness))
        acetylation = chromatin.insulator_acetylation_factor * float(rng.lognormal(*chromatin.acetylation))
        # The whole site sits inside the right-hand domain so that its domain is unambiguous.
        drafts.append(_Draft(right.chrom, right.start, right.start + length, "insulator", "", right.index,
                             openness, acetylation, [params.motifs.insulator_motif]))
    return drafts


def _free_span(gene: Gene, tad: Tad, occupied: list[tuple[int, int]], params: SimParams,
               rng: np.random.Generator) -> tuple[int, int] | None:
    elements = params.elements
    for _ in range(_PLACEMENT_TRIES):
        length = int(rng.integers(elements.length[0], elements.length[1] + 1))
        distance = int(rng.integers(elements.tss_distance[0], elements.tss_distance[1] + 1))
        centre = gene.tss + (distance if rng.random() < 0.5 else -distance)
        start, end = centre - length // 2, centre - length // 2 + length
        inside = tad.start + elements.min_gap <= start and end <= tad.end - elements.min_gap
        if inside and all(end <= low or start >= high for low, high in occupied):
            return start, end
    return None


def _distal(kind: str, gene: Gene, span: tuple[int, int], params: SimParams, rng: np.random.Generator) -> _Draft:
    chromatin = params.chromatin
    motifs_params = params.motifs
    if kind == "open_inert":
        low, high = motifs_params.inert_sites
        pool = motifs_params.inert_motifs
    else:
        low, high = motifs_params.enhancer_sites
        pool = motifs_params.enhancer_motifs
    motifs = [str(pool[int(i)]) for i in rng.integers(0, len(pool), size=int(rng.integers(low, high + 1)))]
    openness = 0.0 if kind == "closed_motif" else float(rng.lognormal(*chromatin.enhancer_openness))
    acetylation = float(rng.lognormal(*chromatin.acetylation))
    return _Draft(gene.chrom, span[0], span[1], kind, gene.gene_id, gene.tad, openness, acetylation, motifs)


def _finish(element_id: str, draft: _Draft, params: SimParams, motif_widths: dict[str, int],
            rng: np.random.Generator) -> Element:
    """Give the draft non-overlapping site positions and its strength (sum of activator weights)."""
    sites = _site_positions(draft, motif_widths, rng)
    weights = params.motifs.activator_weights
    strength = float(sum(weights.get(site.motif_id, 0.0) for site in sites))
    return Element(element_id, draft.chrom, draft.start, draft.end, draft.kind, draft.host_gene, draft.tad,
                   draft.openness, draft.acetylation, strength, sites)


def _site_positions(draft: _Draft, widths: dict[str, int], rng: np.random.Generator) -> tuple[Site, ...]:
    taken: list[tuple[int, int]] = []
    sites = []
    for motif in draft.motifs:
        width = widths[motif]
        for _ in range(_PLACEMENT_TRIES):
            start = int(rng.integers(draft.start, draft.end - width + 1))
            if all(start + width + 5 <= low or start >= high + 5 for low, high in taken):
                break
        else:
            raise RuntimeError(f"element at {draft.chrom}:{draft.start}-{draft.end} has no room for "
                               f"{len(draft.motifs)} sites; raise elements.length in the params")
        taken.append((start, start + width))
        sites.append(Site(motif, start, "+" if rng.random() < 0.5 else "-"))
    return tuple(sorted(sites, key=lambda site: site.start))


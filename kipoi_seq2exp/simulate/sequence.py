"""The DNA: random background, soft-masked runs, N ends, planted sites, scrubbed elements."""
from __future__ import annotations

import numpy as np

from .model import Element
from ..motifs import Pwm, reverse_complement
from .params import SimParams

_UPPER = np.frombuffer(b"ACGTN", dtype=np.uint8)
_LOWER = np.frombuffer(b"acgtn", dtype=np.uint8)
_SCRUB_ROUNDS = 200


def draw_sequences(params: SimParams, chrom_sizes: dict[str, int], elements: list[Element],
                   pwms: dict[str, Pwm], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Chromosome sequences as ASCII byte arrays (uppercase, lowercase soft-mask, N ends)."""
    sequence = params.sequence
    probabilities = np.array([1 - sequence.gc_content, sequence.gc_content, sequence.gc_content,
                              1 - sequence.gc_content]) / 2
    # SP1-like matches are everywhere in GC-rich sites (CTCF's core holds one); the promoter motif acts
    # only at promoters, so only the enhancer activators are scrubbed.
    activators = [pwms[motif] for motif in params.motifs.enhancer_motifs]
    out = {}
    for chrom, size in chrom_sizes.items():
        codes = rng.choice(4, size=size, p=probabilities).astype(np.uint8)
        codes[:sequence.telomere_n] = 4
        codes[size - sequence.telomere_n:] = 4
        on_chrom = [element for element in elements if element.chrom == chrom]
        for element in on_chrom:
            _plant_sites(codes, element, pwms, activators, params, rng)
            _scrub(codes, element, pwms, activators, params.motifs.scrub_relative_score, probabilities, rng)
        softmask = _softmask(size, on_chrom, params, rng)
        out[chrom] = np.where(softmask, _LOWER[codes], _UPPER[codes])
    return out


def _plant_sites(codes: np.ndarray, element: Element, pwms: dict[str, Pwm], activators: list[Pwm],
                 params: SimParams, rng: np.random.Generator) -> None:
    """Write sampled sites; a non-activator site that happens to match an activator is redrawn."""
    activator_ids = {pwm.jaspar_id for pwm in activators}
    motifs = params.motifs
    for site in element.sites:
        pwm = pwms[site.motif_id]
        for _ in range(_SCRUB_ROUNDS):
            bases = pwm.sample_site(rng, motifs.planted_min_relative_score)
            if site.motif_id in activator_ids or not _matches_any(bases, activators, motifs.scrub_relative_score):
                break
        else:
            raise RuntimeError(f"motif {site.motif_id}: every sampled site matches an activator motif; "
                               f"raise motifs.scrub_relative_score")
        codes[site.start:site.start + pwm.width] = bases if site.strand == "+" else reverse_complement(bases)


def _matches_any(bases: np.ndarray, pwms: list[Pwm], threshold: float) -> bool:
    return any((pwm.scan(bases) >= threshold).any() for pwm in pwms)


def _scrub(codes: np.ndarray, element: Element, pwms: dict[str, Pwm], activators: list[Pwm], threshold: float,
           probabilities: np.ndarray, rng: np.random.Generator) -> None:
    """Redraw background bases until every activator match in the element is a planted one.

    A match counts as planted when at least half of it lies on a planted activator site (related
    motifs such as NFE2 and FOS::JUN also match each other's sites). This makes the sequence say
    exactly what the model says: an element activates only through its planted activator sites,
    and an open decoy carries none.
    """
    planted = np.zeros(element.end - element.start, dtype=bool)
    activator_bases = np.zeros(element.end - element.start, dtype=bool)
    activator_ids = {pwm.jaspar_id for pwm in activators}
    for site in element.sites:
        offset = site.start - element.start
        planted[offset:offset + pwms[site.motif_id].width] = True
        if site.motif_id in activator_ids:
            activator_bases[offset:offset + pwms[site.motif_id].width] = True
    segment = codes[element.start:element.end]
    for _ in range(_SCRUB_ROUNDS):
        redraw = accidental_activator_hits(segment, activator_bases, activators, threshold) & ~planted
        if not redraw.any():
            return
        segment[redraw] = rng.choice(4, size=int(redraw.sum()), p=probabilities).astype(np.uint8)
    raise RuntimeError(f"element {element.element_id} at {element.chrom}:{element.start}-{element.end}: "
                       f"activator matches remain after {_SCRUB_ROUNDS} redraws; raise "
                       f"motifs.scrub_relative_score")


def accidental_activator_hits(segment: np.ndarray, activator_bases: np.ndarray, activators: list[Pwm],
                              threshold: float) -> np.ndarray:
    """Bases covered by an activator match that does not mostly lie on a planted activator site.

    Parameters
    ----------
    segment : (length,) uint8 codes of one element
    activator_bases : (length,) bool, True on planted activator sites
    """
    hits = np.zeros(len(segment), dtype=bool)
    for pwm in activators:
        scores = pwm.scan(segment)
        for start in np.flatnonzero(scores >= threshold):
            window = slice(start, start + pwm.width)
            if 2 * activator_bases[window].sum() < pwm.width:
                hits[window] = True
    return hits


def _softmask(size: int, elements: list[Element], params: SimParams, rng: np.random.Generator) -> np.ndarray:
    """Lowercase runs (like RepeatMasker's) over the background only, never over an element."""
    sequence = params.sequence
    blocked = np.zeros(size, dtype=bool)
    for element in elements:
        blocked[element.start:element.end] = True
    mask = np.zeros(size, dtype=bool)
    target = int(sequence.softmask_fraction * size)
    low, high = sequence.softmask_run_length
    covered = 0
    while covered < target:
        length = int(rng.integers(low, high + 1))
        start = int(rng.integers(0, size - length))
        run = slice(start, start + length)
        before = int(mask[run].sum())
        mask[run] |= ~blocked[run]
        covered += int(mask[run].sum()) - before
    return mask


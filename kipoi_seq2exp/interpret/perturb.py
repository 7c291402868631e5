"""In-silico CRISPRi on the epigenome: silence one candidate element's signals, predict again.

A CRISPRi screen (dCas9-KRAB) closes the chromatin of one element and measures its gene. Seq2Exp
reads the epigenome beside the DNA, so the same question can be asked of the model without
touching the sequence: what does it predict if this element's accessibility and acetylation were
those of the surrounding silent chromatin? For each gene and each candidate element in its window:

- **silenced channels**: the chromatin tracks (bigWig: DNase, H3K27ac); the Hi-C channel, the
  contact of each base with the TSS, is kept, since silencing an element does not refold the
  locus (``channels`` names others, e.g. all of them);
- **level** (``silence``): ``background`` = per channel, the median of the window's signal over
  the bases on the chromosome and outside every candidate element of that window (the local
  silent chromatin; 0 if no such base); ``zero`` = 0;
- **gene features**: the promoter-activity feature is recomputed from the silenced signals (as
  the dataloader computes it), so silencing the promoter reaches that input too, as a measurement
  after CRISPRi would;
- an element that reaches past the window is silenced over its part inside; an element that does
  not touch a gene's window is not a candidate of that gene.

Reported per (gene, element): the reference and perturbed predictions (log10(expression + 1)),
``delta`` = perturbed - reference, and ``percent_change`` = 100 (10^delta - 1), the change of
expression + 1. Perturbed copies of a window are predicted ``batch_size`` at a time.

Optional, each in columns of its own beside those of silencing:

- **DNA ablation** (``dna``): the element's DNA, signals untouched, replaced by a shuffle keeping its
  dinucleotide counts (`shuffle.dinucleotide_shuffle`, seeded by (seed, element), so an element
  gets the same shuffle in every gene's window) or by N (the dataloader's encoding of N): does the
  model read the element's sequence, beyond its chromatin?
- **intervals** (``samples``): the ``LEVEL`` interval of each delta over mask samples of the Beta
  (`intervals`); reference and perturbed windows share the gene's draws, so it is an interval of
  paired differences.
"""
from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text_atomic
from ..data.genome import one_hot
from ..predict import GenePrediction, predict_genes, stack_inputs
from .intervals import LEVEL, Interval, sampled_expressions, uniforms
from .shuffle import dinucleotide_shuffle
from .tracks import MASK_THRESHOLD, mask_segments

SILENCE_MODES = ("background", "zero")
#: What replaces an element's DNA: nothing (no DNA ablation), a dinucleotide shuffle, or N.
DNA_ABLATIONS = ("none", "shuffle", "nmask")
#: Track kind left untouched by default: a contact map, not chromatin state.
CONTACT_KIND = "hic"
#: An element within this distance of its gene's TSS is a promoter in the E2G table (ABC's rule).
PROMOTER_DISTANCE = 500
#: Output column of each `ElementEffect` field whose name differs (ENCODE-rE2G spelling).
_PERCENT = round(100 * LEVEL)
COLUMN_NAMES = {"tss": "TargetGeneTSS", "delta_low": f"delta_lo{_PERCENT}", "delta_high": f"delta_hi{_PERCENT}",
                "dna_delta_low": f"dna_delta_lo{_PERCENT}", "dna_delta_high": f"dna_delta_hi{_PERCENT}"}
#: Columns of the options (DNA ablation, intervals): left out of a table where no row has them.
OPTIONAL_COLUMNS = ("dna_expression", "dna_delta", "dna_percent_change", "delta_low", "delta_high",
                    "dna_delta_low", "dna_delta_high")


@dataclass(frozen=True)
class Element:
    """A candidate element [start, end) on ``chrom`` (0-based, BED convention)."""

    chrom: str
    start: int
    end: int
    name: str


@dataclass(frozen=True)
class ElementEffect:
    """Predicted effect of silencing one element on one gene; expressions in log10(expression + 1).
    The fields after ``qc`` are None unless asked for (module docstring)."""

    chrom: str
    start: int
    end: int
    name: str
    gene_id: str
    tss: int  # the gene's TSS, 0-based (column TargetGeneTSS)
    ref_expression: float
    perturbed_expression: float
    delta: float  # perturbed - ref
    percent_change: float  # 100 (10^delta - 1)
    qc: str  # the gene window's quality label ('ok', or why it is flagged)
    dna_expression: float | None = None  # the element's DNA ablated, its signals kept
    dna_delta: float | None = None  # dna_expression - ref
    dna_percent_change: float | None = None
    delta_low: float | None = None  # LEVEL interval of delta over mask samples (column delta_lo90)
    delta_high: float | None = None
    dna_delta_low: float | None = None  # the same for dna_delta
    dna_delta_high: float | None = None


class ElementIndex:
    """Candidate elements by chromosome, for the ones touching a window in O(log n).

    Parameters
    ----------
    elements : any number, any order; identical rows are kept (each is silenced on its own)
    """

    def __init__(self, elements: Iterable[Element]):
        by_chrom: dict[str, list[Element]] = {}
        for element in elements:
            by_chrom.setdefault(element.chrom, []).append(element)
        self.elements = {chrom: sorted(rows, key=lambda e: (e.start, e.end)) for chrom, rows in by_chrom.items()}
        self.starts = {chrom: np.array([e.start for e in rows], dtype=np.int64)
                       for chrom, rows in self.elements.items()}
        self.longest = {chrom: max(e.end - e.start for e in rows) for chrom, rows in self.elements.items()}

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.elements.values())

    def touching(self, chrom: str, start: int, end: int) -> list[Element]:
        """Elements overlapping [start, end) on ``chrom``, by start."""
        if chrom not in self.elements:
            return []
        starts = self.starts[chrom]
        first = int(np.searchsorted(starts, start - self.longest[chrom], side="left"))
        last = int(np.searchsorted(starts, end, side="left"))
        return [e for e in self.elements[chrom][first:last] if e.end > start]


def read_elements_bed(path: str | os.PathLike) -> ElementIndex:
    """Candidate elements from a BED file: chrom, start, end[, name, ...] (0-based, end exclusive).

    Header lines (track, browser, #) are skipped; a missing or '.' name becomes ``chrom:start-end``.
    """
    rows = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("track", "browser", "#")):
                continue
            columns = line.rstrip("\n").split("\t")
            numeric = len(columns) >= 3 and columns[1].isdigit() and columns[2].isdigit()
            if not numeric or int(columns[2]) <= int(columns[1]):
                raise ValueError(f"{path}, line {number}: expected tab-separated chrom, start, end[, name] with "
                                 f"0 <= start < end, got {line.strip()!r}. Fix: give a BED file (0-based, end "
                                 f"exclusive).")
            chrom, start, end = columns[0], int(columns[1]), int(columns[2])
            name = columns[3] if len(columns) > 3 and columns[3] not in ("", ".") else f"{chrom}:{start}-{end}"
            rows.append(Element(chrom, start, end, name))
    if not rows:
        raise ValueError(f"{path}: no element. Fix: give a BED file with one element per line.")
    return ElementIndex(rows)


def silenced_channels(tracks: Sequence, names: Sequence[str] | None = None) -> list[int]:
    """Channels to silence: every track that is not a contact map, or the ``names`` given.

    Parameters
    ----------
    tracks : the dataloader's channels in order (``dataset.windows.config.tracks``: name, kind)
    names : track names (case and punctuation ignored: 'hic' = 'Hi-C'); None = the default
    """
    if names is None:
        return [i for i, track in enumerate(tracks) if track.kind != CONTACT_KIND]
    from ..train.config import _track_key as _key

    known = {_key(track.name): i for i, track in enumerate(tracks)}
    unknown = [name for name in names if _key(name) not in known]
    if unknown or not names:
        raise ValueError(f"channels {list(names)}: the dataloader's tracks are {[t.name for t in tracks]}. "
                         f"Fix: name one or more of them.")
    return sorted({known[_key(name)] for name in names})


def background_level(signals: np.ndarray, spans: np.ndarray, on_chromosome: slice) -> np.ndarray:
    """Per channel, the median signal over the window's bases on the chromosome and outside ``spans``.

    Parameters
    ----------
    signals : (L, n_signals)
    spans : (n, 2) [start, end) window indices of every candidate element of the window
    on_chromosome : the window indices inside the chromosome (padding past its ends is zeros)

    Returns
    -------
    (n_signals,) float32; zeros when no base is left
    """
    outside = np.zeros(len(signals), dtype=bool)
    outside[on_chromosome] = True
    for start, end in np.asarray(spans).reshape(-1, 2):
        outside[start:end] = False
    if not outside.any():
        return np.zeros(signals.shape[1], dtype=np.float32)
    return np.median(signals[outside], axis=0).astype(np.float32)


def silence(signals: np.ndarray, span: tuple[int, int], channels: Sequence[int], level: np.ndarray) -> np.ndarray:
    """A copy of (L, n_signals) ``signals`` with ``channels`` set to ``level`` (n_signals,) over the
    window indices [start, end); refuses a span outside the window."""
    start, end = _inside(span, len(signals))
    out = signals.copy()
    channels = list(channels)
    out[start:end, channels] = level[channels]
    return out


def ablate_dna(seq: np.ndarray, span: tuple[int, int], how: str, rng: np.random.Generator) -> np.ndarray:
    """A copy of (L, 4) one-hot ``seq`` whose window indices [start, end) are dinucleotide-shuffled
    (``how`` = 'shuffle', drawn from ``rng``) or N (``how`` = 'nmask', as the dataloader encodes N)."""
    start, end = _inside(span, len(seq))
    out = seq.copy()
    if how == "shuffle":
        out[start:end] = dinucleotide_shuffle(seq[start:end], rng)
    elif how == "nmask":
        out[start:end] = one_hot("N")
    else:
        raise ValueError(f"DNA ablation {how!r}: use one of {DNA_ABLATIONS[1:]}.")
    return out


def element_rng(seed: int, element: Element) -> np.random.Generator:
    """The generator of an element's DNA shuffle: a function of (seed, element) only, so the element
    reads the same in every gene's window, whatever the batch or gene order."""
    return np.random.default_rng([seed, zlib.crc32(f"{element.chrom}:{element.start}-{element.end}".encode())])


def _inside(span: tuple[int, int], length: int) -> tuple[int, int]:
    """``span`` as ints, refused unless it lies inside a window of ``length`` bases."""
    start, end = int(span[0]), int(span[1])
    if not 0 <= start < end <= length:
        raise ValueError(f"element span [{start}, {end}) is not inside the {length:,}-bp window. Fix: perturb "
                         f"only elements that overlap the gene's window (clip them to it).")
    return start, end


def perturb_gene(model, dataset, prediction: GenePrediction, elements: Sequence[Element],
                 mode: str = "background", channels: Sequence[int] | None = None,
                 batch_size: int = 8, dna: str = "none", samples: int = 0, seed: int = 0) -> list[ElementEffect]:
    """Silence each element touching the gene's window, one at a time, and predict the gene again.

    Parameters
    ----------
    model : a `Seq2ExpModel`
    dataset : its dataloader (``Seq2ExpDataset``) the prediction came from
    prediction : the gene's reference pass (`predict_genes`)
    elements : candidates in genome coordinates; those not touching the window are skipped
    mode : 'background' or 'zero' (module docstring)
    channels : signal channels to silence; None = every non-contact track
    batch_size : perturbed windows (or mask samples) per forward pass
    dna : also ablate each element's DNA: 'shuffle', 'nmask' or 'none' (`ablate_dna`)
    samples : > 0: the interval of each delta over that many mask samples (`intervals`)
    seed : of the mask samples (with the gene id) and of the DNA shuffles (with the element)

    Returns
    -------
    one `ElementEffect` per element touching the window, in the given order
    """
    if mode not in SILENCE_MODES:
        raise ValueError(f"silence mode {mode!r}: use one of {SILENCE_MODES}.")
    if dna not in DNA_ABLATIONS:
        raise ValueError(f"DNA ablation {dna!r}: use one of {DNA_ABLATIONS}.")
    windows = dataset.windows
    window, gene = windows.window(prediction.index), windows.gene_list[prediction.index]
    inside = [e for e in elements if e.chrom == window.chrom and e.end > window.start and e.start < window.end]
    if not inside:
        return []
    spans = np.array([(max(e.start, window.start) - window.start, min(e.end, window.end) - window.start)
                      for e in inside], dtype=np.int64)
    channels = silenced_channels(windows.config.tracks) if channels is None else list(channels)
    signals = prediction.inputs["signals"]
    chrom_length = windows.fasta.chrom_length(window.chrom)
    on_chromosome = slice(max(-window.start, 0), max(min(chrom_length - window.start, window.length), 0))
    level = (background_level(signals, spans, on_chromosome) if mode == "background"
             else np.zeros(signals.shape[1], dtype=np.float32))

    def silenced(i: int) -> dict[str, np.ndarray]:
        quiet = silence(signals, tuple(spans[i]), channels, level)
        return {**prediction.inputs, "signals": quiet, "gene_features": windows.gene_features(prediction.index, quiet)}

    def ablated(i: int) -> dict[str, np.ndarray]:
        return {**prediction.inputs, "seq": ablate_dna(prediction.inputs["seq"], tuple(spans[i]), dna,
                                                       element_rng(seed, inside[i]))}

    perturbations = {"silence": silenced, **({"dna": ablated} if dna != "none" else {})}
    expressions = {kind: _predict_each(model, make, len(inside), batch_size) for kind, make in perturbations.items()}
    intervals = (_delta_intervals(model, prediction.inputs, perturbations, len(inside),
                                  uniforms(seed, gene.gene_id, samples, model.model.cfg.n_tokens), batch_size)
                 if samples else {})
    qc = windows.qc[prediction.index].label
    return [_effect(e, gene, qc, prediction.expression, {kind: values[i] for kind, values in expressions.items()},
                    {kind: values[i] for kind, values in intervals.items()}) for i, e in enumerate(inside)]


def _effect(element: Element, gene, qc: str, ref: float, expressions: dict[str, float],
            intervals: dict[str, Interval]) -> ElementEffect:
    """One row: ``expressions`` and ``intervals`` (of deltas) by perturbation kind ('silence', 'dna')."""
    value = expressions["silence"]
    optional: dict[str, float] = {}
    if "dna" in expressions:
        ablated = expressions["dna"]
        optional.update(dna_expression=ablated, dna_delta=ablated - ref, dna_percent_change=_percent(ablated - ref))
    for kind, interval in intervals.items():
        prefix = "dna_" if kind == "dna" else ""
        optional.update({f"{prefix}delta_low": interval.low, f"{prefix}delta_high": interval.high})
    return ElementEffect(element.chrom, element.start, element.end, element.name, gene.gene_id, gene.tss, ref, value,
                         value - ref, _percent(value - ref), qc, **optional)


def _percent(delta: float) -> float:
    """The % change of expression + 1 for a change ``delta`` of log10(expression + 1)."""
    return 100.0 * (10.0 ** delta - 1.0)


def _predict_each(model, make: Callable[[int], dict[str, np.ndarray]], n: int, batch_size: int) -> list[float]:
    """Predicted log10 expression of the windows ``make(0)``, ..., ``make(n - 1)``, ``batch_size``
    per forward; a window is built only when its batch is due (a 200-kb copy per element adds up)."""
    out: list[float] = []
    for first in range(0, n, batch_size):
        batch = [make(i) for i in range(first, min(first + batch_size, n))]
        out.extend(model.predict(stack_inputs(batch)).expression.float().cpu().numpy().tolist())
    return out


def _delta_intervals(model, reference: dict[str, np.ndarray],
                     perturbations: dict[str, Callable[[int], dict[str, np.ndarray]]], n: int, u: np.ndarray,
                     batch_size: int) -> dict[str, list[Interval]]:
    """Per perturbation kind, the interval of each of its ``n`` windows' delta over the mask draws at
    quantiles ``u`` (samples, tokens), the reference window drawn at the same ``u``."""
    base = sampled_expressions(model, reference, u, batch_size)
    return {kind: [Interval.of(sampled_expressions(model, make(i), u, batch_size) - base) for i in range(n)]
            for kind, make in perturbations.items()}


def perturb_genes(model, dataset, elements: ElementIndex | None = None, mode: str = "background",
                  channels: Sequence[int] | None = None, batch_size: int = 8,
                  mask_threshold: float = MASK_THRESHOLD, progress: bool = True, dna: str = "none",
                  samples: int = 0, seed: int = 0) -> Iterator[ElementEffect]:
    """In-silico CRISPRi of every gene of the dataloader, gene by gene (tqdm bar over genes).

    Parameters
    ----------
    elements : user candidates (`read_elements_bed`); None = each gene's own mask segments (runs of
        mask >= ``mask_threshold`` outside the forced centre, named ``mask:chrom:start-end``)
    mode, channels, batch_size, dna, samples, seed : see `perturb_gene`
    """
    for prediction in predict_genes(model, dataset, batch_size, progress=progress, desc="perturb"):
        window = dataset.windows.window(prediction.index)
        if elements is None:
            candidates = [_mask_element(window.chrom, window.start + int(s), window.start + int(e))
                          for s, e in mask_segments(prediction.mask, model.model.cfg.centre, mask_threshold)]
        else:
            candidates = elements.touching(window.chrom, window.start, window.end)
        yield from perturb_gene(model, dataset, prediction, candidates, mode, channels, batch_size, dna, samples, seed)


def _mask_element(chrom: str, start: int, end: int) -> Element:
    return Element(chrom, start, end, f"mask:{chrom}:{start}-{end}")


def write_effects(effects: Iterable[ElementEffect], path: str | os.PathLike,
                  e2g_path: str | os.PathLike | None = None) -> int:
    """Write the effects as a TSV (one row per (gene, element), `ElementEffect` columns) and, with
    ``e2g_path``, in the ENCODE-rE2G / CRISPR_comparison prediction layout: chr, start, end, name,
    class ('promoter' within 500 bp of the gene's TSS, else 'distal'), TargetGene (gene_id),
    TargetGeneTSS, Score (= -delta: higher = the gene needs the element more), then our expression,
    delta, percent_change and qc columns, and those of the options used (`OPTIONAL_COLUMNS`).
    Each file appears whole or not at all. Returns the number of rows."""
    table = pd.DataFrame([astuple(effect) for effect in effects], columns=[f.name for f in fields(ElementEffect)])
    unused = [name for name in OPTIONAL_COLUMNS if table[name].isna().all()]
    table = table.drop(columns=unused).rename(columns=COLUMN_NAMES)
    write_text_atomic(_path(path), table.to_csv(sep="\t", index=False, float_format="%.7g"))
    if e2g_path is not None:
        write_text_atomic(_path(e2g_path), e2g_table(table).to_csv(sep="\t", index=False, float_format="%.7g"))
    return len(table)


def e2g_table(table: pd.DataFrame) -> pd.DataFrame:
    """The effects table (columns of `write_effects`' TSV) in the ENCODE-rE2G prediction layout."""
    distance = np.maximum(table["start"] - table["TargetGeneTSS"], table["TargetGeneTSS"] + 1 - table["end"])
    front = table[["chrom", "start", "end", "name"]].rename(columns={"chrom": "chr"})
    front["class"] = np.where(distance <= PROMOTER_DISTANCE, "promoter", "distal")
    front["TargetGene"] = table["gene_id"]
    front["TargetGeneTSS"] = table["TargetGeneTSS"]
    front["Score"] = -table["delta"]
    rest = table.drop(columns=["chrom", "start", "end", "name", "gene_id", "TargetGeneTSS"])
    return front.join(rest)


def _path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist. Fix: create it or choose another "
                                f"output path.")
    return path


__all__ = ["COLUMN_NAMES", "DNA_ABLATIONS", "Element", "ElementEffect", "ElementIndex", "OPTIONAL_COLUMNS",
           "SILENCE_MODES", "ablate_dna", "background_level", "e2g_table", "element_rng", "perturb_gene",
           "perturb_genes", "read_elements_bed", "silence", "silenced_channels", "write_effects"]

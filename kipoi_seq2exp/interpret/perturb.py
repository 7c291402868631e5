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
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .tracks import MASK_THRESHOLD, GenePrediction, gene_predictions, mask_segments, stack_inputs

SILENCE_MODES = ("background", "zero")
#: Track kind left untouched by default: a contact map, not chromatin state.
CONTACT_KIND = "hic"
#: An element within this distance of its gene's TSS is a promoter in the E2G table (ABC's rule).
PROMOTER_DISTANCE = 500
#: Output column of each `ElementEffect` field whose name differs (ENCODE-rE2G spelling).
COLUMN_NAMES = {"tss": "TargetGeneTSS"}


@dataclass(frozen=True)
class Element:
    """A candidate element [start, end) on ``chrom`` (0-based, BED convention)."""

    chrom: str
    start: int
    end: int
    name: str


@dataclass(frozen=True)
class ElementEffect:
    """Predicted effect of silencing one element on one gene; expressions in log10(expression + 1)."""

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
    start, end = span
    if not 0 <= start < end <= len(signals):
        raise ValueError(f"element span [{start}, {end}) is not inside the {len(signals):,}-bp window. Fix: silence "
                         f"only elements that overlap the gene's window (clip them to it).")
    out = signals.copy()
    channels = list(channels)
    out[start:end, channels] = level[channels]
    return out


def perturb_gene(model, dataset, prediction: GenePrediction, elements: Sequence[Element],
                 mode: str = "background", channels: Sequence[int] | None = None,
                 batch_size: int = 8) -> list[ElementEffect]:
    """Silence each element touching the gene's window, one at a time, and predict the gene again.

    Parameters
    ----------
    model : a `Seq2ExpModel`
    dataset : its dataloader (``Seq2ExpDataset``) the prediction came from
    prediction : the gene's reference pass (`gene_predictions`)
    elements : candidates in genome coordinates; those not touching the window are skipped
    mode : 'background' or 'zero' (module docstring)
    channels : signal channels to silence; None = every non-contact track
    batch_size : perturbed windows per forward pass

    Returns
    -------
    one `ElementEffect` per element touching the window, in the given order
    """
    if mode not in SILENCE_MODES:
        raise ValueError(f"silence mode {mode!r}: use one of {SILENCE_MODES}.")
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
    perturbed = []
    for first in range(0, len(inside), batch_size):
        copies = []
        for span in spans[first:first + batch_size]:
            quiet = silence(signals, tuple(span), channels, level)
            copies.append({**prediction.inputs, "signals": quiet,
                           "gene_features": windows.gene_features(prediction.index, quiet)})
        perturbed.extend(model.predict(stack_inputs(copies)).expression.float().cpu().numpy().tolist())
    qc = windows.qc[prediction.index].label
    return [ElementEffect(e.chrom, e.start, e.end, e.name, gene.gene_id, gene.tss, prediction.expression, value,
                          value - prediction.expression, 100.0 * (10.0 ** (value - prediction.expression) - 1.0), qc)
            for e, value in zip(inside, perturbed)]


def perturb_genes(model, dataset, elements: ElementIndex | None = None, mode: str = "background",
                  channels: Sequence[int] | None = None, batch_size: int = 8,
                  mask_threshold: float = MASK_THRESHOLD, progress: bool = True) -> Iterator[ElementEffect]:
    """In-silico CRISPRi of every gene of the dataloader, gene by gene (tqdm bar over genes).

    Parameters
    ----------
    elements : user candidates (`read_elements_bed`); None = each gene's own mask segments (runs of
        mask >= ``mask_threshold`` outside the forced centre, named ``mask:chrom:start-end``)
    mode, channels, batch_size : see `perturb_gene`
    """
    for prediction in gene_predictions(model, dataset, batch_size, progress, desc="perturb"):
        window = dataset.windows.window(prediction.index)
        if elements is None:
            candidates = [_mask_element(window.chrom, window.start + int(s), window.start + int(e))
                          for s, e in mask_segments(prediction.mask, model.model.cfg.centre, mask_threshold)]
        else:
            candidates = elements.touching(window.chrom, window.start, window.end)
        yield from perturb_gene(model, dataset, prediction, candidates, mode, channels, batch_size)


def _mask_element(chrom: str, start: int, end: int) -> Element:
    return Element(chrom, start, end, f"mask:{chrom}:{start}-{end}")


def write_effects(effects: Iterable[ElementEffect], path: str | os.PathLike,
                  e2g_path: str | os.PathLike | None = None) -> int:
    """Write the effects as a TSV (one row per (gene, element), `ElementEffect` columns) and, with
    ``e2g_path``, in the ENCODE-rE2G / CRISPR_comparison prediction layout: chr, start, end, name,
    class ('promoter' within 500 bp of the gene's TSS, else 'distal'), TargetGene (gene_id),
    TargetGeneTSS, Score (= -delta: higher = the gene needs the element more), then our expression,
    delta, percent_change and qc columns.
    Each file appears whole or not at all. Returns the number of rows."""
    from ..train.config import write_text_atomic

    table = pd.DataFrame([astuple(effect) for effect in effects],
                         columns=[f.name for f in fields(ElementEffect)]).rename(columns=COLUMN_NAMES)
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


__all__ = ["COLUMN_NAMES", "Element", "ElementEffect", "ElementIndex", "SILENCE_MODES", "background_level",
           "e2g_table", "perturb_gene", "perturb_genes", "read_elements_bed", "silence", "silenced_channels",
           "write_effects"]

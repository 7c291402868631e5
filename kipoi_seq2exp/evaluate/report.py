"""The human-readable output: a metrics table (CSV + Markdown) and one PNG per locus."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..atomic import atomic_path, write_text_atomic  # noqa: E402
from .metrics import CENTRE_LENGTH  # noqa: E402
from .windows import GeneWindow  # noqa: E402

MARKDOWN_COLUMNS = ["method", "split", "n_genes", "mse", "mae", "pearson", "mask_ratio", "auprc", "prevalence",
                    "base_precision", "base_recall", "element_precision", "element_recall", "enhancer_vs_decoy_auroc"]


def write_metrics_table(table: pd.DataFrame, out_dir: str | Path, stem: str = "metrics") -> tuple[Path, Path]:
    """``<stem>.csv`` (every column, full precision) and ``<stem>.md`` (main columns, 3 decimals)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    write_text_atomic(csv_path, table.to_csv(index=False))
    write_text_atomic(md_path, markdown_table(table))
    return csv_path, md_path


def markdown_table(table: pd.DataFrame) -> str:
    columns = [column for column in MARKDOWN_COLUMNS if column in table.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table[columns].itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


@dataclass
class LocusView:
    """What one locus plot shows, all in window coordinates (0 .. length).

    tracks : name -> (length,) signal, drawn as filled curves (e.g. DNase, H3K27ac, Hi-C)
    masks : name -> (length,) mask in [0, 1] (a model's soft or hard mask, MACS3 peaks ...)
    intervals : lane name -> [(start, end, label)], drawn as boxes (truth elements, decoys ...)
    """

    window: GeneWindow
    tracks: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    intervals: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    title: str = ""


_LANE_COLOURS = ["#1b9e77", "#7f7f7f", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]


def plot_locus(view: LocusView, path: str | Path, centre_length: int = CENTRE_LENGTH) -> Path:
    """One figure (PNG, or SVG by ``path``'s suffix): signal tracks, masks, interval lanes; TSS line and
    the forced centre shaded.

    The x axis is kb from the TSS, so any two loci read the same way.
    """
    window = view.window
    x = (np.arange(window.length) - window.length // 2) / 1000.0
    n_rows = len(view.tracks) + len(view.masks) + (1 if view.intervals else 0)
    heights = [1.0] * (len(view.tracks) + len(view.masks)) + ([0.35 * max(len(view.intervals), 1) + 0.3]
                                                                if view.intervals else [])
    figure, axes = plt.subplots(n_rows, 1, figsize=(12, 1.0 + 1.1 * sum(heights)), sharex=True,
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    axes = axes[:, 0]
    row = 0
    for name, values in view.tracks.items():
        _signal_axis(axes[row], x, values, name, "#3b6ea5")
        row += 1
    for name, values in view.masks.items():
        _signal_axis(axes[row], x, values, name, "#c0392b", ylim=(0, 1.05))
        axes[row].axhline(0.5, color="#555555", lw=0.6, ls=":")  # the hard-mask threshold
        row += 1
    if view.intervals:
        _interval_axis(axes[row], view.intervals, window)
    half = centre_length / 2000.0
    for axis in axes:
        axis.axvspan(-half, half, color="#f1c40f", alpha=0.15, lw=0)
        axis.axvline(0.0, color="black", lw=0.8, ls="--")
    axes[0].set_title(view.title or f"{window.gene_id}  {window.chrom}:{window.start:,}-{window.end:,}  "
                      f"(TSS dashed, forced centre shaded)", fontsize=10, loc="left")
    axes[-1].set_xlabel("kb from TSS")
    axes[-1].set_xlim(x[0], x[-1])
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:  # the temp name ends in .tmp: the format comes from the target's suffix
        figure.savefig(temporary, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(figure)
    return path


def _signal_axis(axis: plt.Axes, x: np.ndarray, values: np.ndarray, name: str, colour: str,
                 ylim: tuple[float, float] | None = None) -> None:
    axis.fill_between(x, 0, values, color=colour, alpha=0.7, lw=0, step="mid")
    axis.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    axis.spines[["top", "right"]].set_visible(False)
    axis.tick_params(labelsize=8)
    if ylim:
        axis.set_ylim(*ylim)


def _interval_axis(axis: plt.Axes, lanes: Mapping[str, Sequence[tuple[int, int, str]]], window: GeneWindow) -> None:
    names = list(lanes)
    for lane, name in enumerate(names):
        y = len(names) - 1 - lane
        colour = _LANE_COLOURS[lane % len(_LANE_COLOURS)]
        for start, end, label in lanes[name]:
            left = (start - window.length // 2) / 1000.0
            axis.add_patch(plt.Rectangle((left, y - 0.3), (end - start) / 1000.0, 0.6, color=colour))
            if label:
                axis.text(left + (end - start) / 2000.0, y + 0.35, label, ha="center", va="bottom", fontsize=7)
    axis.set_yticks(range(len(names)), names[::-1], fontsize=9)
    axis.set_ylim(-0.6, len(names) - 0.1)
    axis.spines[["top", "right"]].set_visible(False)

"""Is the simulated expression learnable, and only from sequence AND signal together?

A linear fit of log10(expression + 1) on ABC-like scores built from the written files, each
with a different part of the truth hidden:

- promoter: the promoter's DNase alone (what the forced centre already shows the model);
- motif+signal: promoter + sum over the window's elements of (activator strength of its planted
  sites, i.e. TRUE motif knowledge) x observed DNase x observed Hi-C contact with the TSS;
- signal only: the same sum with every element given the mean strength (no sequence);
- sequence only: the same sum with every element given the mean openness (no DNase).
If sequence matters, motif+signal beats signal only; if signal matters, it beats sequence only.
"""
from __future__ import annotations

import math
from pathlib import Path

import hictkpy
import numpy as np
import pandas as pd
import pyBigWig

from .generate import SIM_FILES
from .params import load_params


def expression_predictability(sim_dir: str | Path, window_length: int = 20_000) -> dict[str, float]:
    """In-sample Pearson r of the four linear fits (see module docstring) over all genes."""
    sim_dir = Path(sim_dir)
    params = load_params(sim_dir / "params.yaml")
    genes = pd.read_csv(SIM_FILES.path(sim_dir, "genes"), sep="\t")
    elements = pd.read_csv(SIM_FILES.path(sim_dir, "elements"), sep="\t")
    counts = pd.read_csv(SIM_FILES.path(sim_dir, "expression"), sep="\t").set_index("gene_id")["expression"]
    y = np.log10(counts.loc[genes["gene_id"]].to_numpy() + 1.0)
    with pyBigWig.open(str(SIM_FILES.path(sim_dir, "dnase"))) as bigwig:
        elements["dnase"] = [bigwig.stats(c, int(s), int(e), type="mean")[0] or 0.0
                             for c, s, e in zip(elements["chrom"], elements["start"], elements["end"])]
    elements["dnase"] /= params.tracks.dnase_peak_height
    hic = _cis_matrices(SIM_FILES.path(sim_dir, "hic"))
    bin_size, diagonal = params.layout.bin_size, params.hic.diagonal_count
    distal = elements[elements["kind"] != "promoter"]
    mean_strength = distal.loc[distal["kind"] == "enhancer", "strength"].mean()
    mean_openness = distal.loc[distal["kind"] == "enhancer", "dnase"].mean()
    promoter_dnase = elements[elements["kind"] == "promoter"].set_index("host_gene")["dnase"]
    gain, floor = params.expression.enhancer_gain, params.expression.promoter_floor
    scores = {"motif+signal": [], "signal only": [], "sequence only": []}
    for gene in genes.itertuples(index=False):
        near = distal[(distal["chrom"] == gene.chrom) & (distal["end"] > gene.tss - window_length // 2)
                      & (distal["start"] < gene.tss + window_length // 2)]
        centres = ((near["start"] + near["end"]) // 2).to_numpy()
        contact = hic[gene.chrom][centres // bin_size, gene.tss // bin_size] / diagonal
        strength, openness = near["strength"].to_numpy(), near["dnase"].to_numpy()
        scores["motif+signal"].append(math.log10(1 + gain * float(np.sum(strength * openness * contact))))
        scores["signal only"].append(math.log10(1 + gain * mean_strength * float(np.sum(openness * contact))))
        scores["sequence only"].append(math.log10(1 + gain * mean_openness * float(np.sum(strength * contact))))
    promoter = np.log10(promoter_dnase.loc[genes["gene_id"]].to_numpy() + floor)
    out = {"promoter": _fit_r(y, promoter)}
    for name, values in scores.items():
        out[name] = _fit_r(y, promoter, np.array(values))
    return out


def _cis_matrices(cool_path: Path) -> dict[str, np.ndarray]:
    cool = hictkpy.File(str(cool_path))
    return {chrom: cool.fetch(chrom).to_numpy().astype(float) for chrom in cool.chromosomes()}


def _fit_r(y: np.ndarray, *columns: np.ndarray) -> float:
    """Pearson r between y and its least-squares fit on the columns (plus an intercept)."""
    design = np.column_stack([np.ones_like(y), *columns])
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.corrcoef(design @ coefficients, y)[0, 1])


def element_lanes(sim_dir: str | Path) -> dict[str, list[tuple[str, int, int, str]]]:
    """The simulation's decoys as locus-plot lanes: lane -> [(chrom, start, end, label)].

    Open decoys (no activator site) and closed activator elements, for ``evaluate.locus_view``.
    """
    elements = pd.read_csv(SIM_FILES.path(sim_dir, "elements"), sep="\t")
    lanes = {"decoy: open, no activator": ("open_inert", "insulator"), "decoy: activator, closed": ("closed_motif",)}
    return {lane: [(row.chrom, int(row.start), int(row.end), "CTCF" if row.kind == "insulator" else "")
                   for row in elements[elements["kind"].isin(kinds)].itertuples(index=False)]
            for lane, kinds in lanes.items()}

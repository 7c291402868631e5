"""Run a trained Seq2Exp over a data set and score it with :func:`run_evaluation`: the
expression metrics per split and the learned mask against the simulated genome's truth."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ..data.config import DataConfig, HicOptions, parse_signals
from ..data.dataset import WindowDataset
from ..model import Seq2Exp
from ..predict import predict_genes
from ..simulate import SIM_FILES
from .metrics import Predictions
from .suite import run_evaluation, simulated_inputs

def simulated_data_config(sim_dir: str | Path, model: Seq2Exp) -> DataConfig:
    """The data config that feeds ``model`` from a simulated genome folder (tracks in the model's order)."""
    files = {"h3k27ac_bigwig": str(SIM_FILES.path(sim_dir, "h3k27ac")), "dnase_bigwig": str(SIM_FILES.path(sim_dir, "dnase")),
             "hic_file": str(SIM_FILES.path(sim_dir, "hic"))}
    tracks = parse_signals(",".join(s.name for s in model.cfg.signals), files)
    return DataConfig(fasta=str(SIM_FILES.path(sim_dir, "fasta")), gene_table=str(SIM_FILES.path(sim_dir, "genes")),
                      tracks=tracks, hic=HicOptions(normalization="NONE"),
                      mrna_features=str(SIM_FILES.path(sim_dir, "mrna_features")),
                      expression=str(SIM_FILES.path(sim_dir, "expression")), window=model.cfg.window)


def evaluation_windows(dataset: WindowDataset) -> pd.DataFrame:
    """The evaluated genes' windows with their split, as ``run_evaluation`` reads them."""
    rows = []
    for index in dataset.indices:
        window, gene = dataset.windows.window(index), dataset.windows.gene_list[index]
        rows.append((gene.gene_id, gene.chrom, window.start, window.end, dataset.split[index]))
    return pd.DataFrame(rows, columns=["gene_id", "chrom", "start", "end", "split"])


def evaluate_on_simulated(model: Seq2Exp, sim_dir: str | Path, out_dir: str | Path, *,
                          splits: Sequence[str] = ("valid", "test"), loci: Sequence[str] = (),
                          method: str = "seq2exp", batch_size: int = 8) -> pd.DataFrame:
    """Predict every gene of ``splits`` and write metrics.{csv,md}, mask bigWig, element BED and
    locus PNGs (with MACS3, DNase-ranking and oracle baselines on the same genes) to ``out_dir``."""
    config = simulated_data_config(sim_dir, model)
    datasets = [WindowDataset(config, subset=split) for split in splits]
    predictions: Predictions = {p.gene_id: (p.expression, p.mask) for dataset in datasets
                                for p in predict_genes(model, dataset, batch_size, desc="predicting")}
    windows = pd.concat([evaluation_windows(d) for d in datasets], ignore_index=True)
    return run_evaluation(windows, predictions, out_dir=out_dir, loci=loci, method=method,
                          centre_length=model.cfg.centre, **simulated_inputs(sim_dir))

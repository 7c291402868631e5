"""Shared helpers of the zoo tests (no tests here): an untrained exported member, a private copy of
the model source, kipoi command lines with HOME in a temporary folder, and small inputs.

Also regenerates the TEMPORARY demo weights of the repository (untrained, until the lead trains
them with ``seq2exp train --config demo_soft`` + ``seq2exp export``)::

    PYTHONPATH=. python tests/test_zoo_helpers.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kipoi_seq2exp.model import Seq2Exp
from kipoi_seq2exp.train.config import load_run_config
from kipoi_seq2exp.train.datamodule import Seq2ExpDataModule
from kipoi_seq2exp.train.export import CONFIG_FILE, DATA_FILE, METRICS_FILE, WEIGHTS_FILE, write_export
from kipoi_seq2exp.train.runner import with_reference_depths

REPO = Path(__file__).resolve().parents[1]
SIM = REPO / "kipoi_seq2exp" / "resources" / "sim"
PLACEHOLDER_NOTE = ("TEMPORARY untrained placeholder (random initialisation, seed {seed}); replace with "
                    "`seq2exp train --config {config}` then `seq2exp export <run>/best.ckpt --cell-type simulated "
                    "--out model_zoo/Seq2Exp/{member}`")
#: Paper configs leave the data files to the user; any names do for building the model config.
PAPER_DATA = ["data.fasta=hg38.fa", "data.gene_table=genes.tsv"]


def export_untrained_member(member_dir: Path, train_config: str, seed: int = 0, dna_scale: float = 1.0) -> Seq2Exp:
    """Write what ``seq2exp export`` writes (through its `write_export`), for a randomly initialised
    model of ``train_config``.

    ``dna_scale`` multiplies the DNA embedding: at initialisation one SNV moves the prediction by
    ~1e-6, too little for a test to tell a mutated window from an untouched one.
    """
    run = load_run_config(train_config, PAPER_DATA if train_config.startswith("paper") else [])
    if run.model.depth_normalised:  # as `seq2exp train` does: the training files' depth is the reference
        run = with_reference_depths(run, Seq2ExpDataModule(run.data, run.train))
    torch.manual_seed(seed)
    model = Seq2Exp(run.model).eval()
    with torch.no_grad():
        for parameter in model.dna_embed.parameters():
            parameter.mul_(dna_scale)
    note = PLACEHOLDER_NOTE.format(seed=seed, config=train_config, member=member_dir.name)
    write_export(model, run.data.to_dict(), {"cell_type": "simulated", "note": note}, member_dir)
    return model


def copy_source(tmp_path: Path) -> Path:
    """A private copy of ``model_zoo/`` (members without weights) beside a link to the package's
    resources, so the relative example paths resolve as in the repository; returns the source dir."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "model_zoo", root / "model_zoo",
                    ignore=shutil.ignore_patterns(WEIGHTS_FILE, CONFIG_FILE, DATA_FILE, METRICS_FILE, "downloaded"))
    (root / "kipoi_seq2exp").mkdir()
    (root / "kipoi_seq2exp" / "resources").symlink_to(REPO / "kipoi_seq2exp" / "resources")
    return root / "model_zoo"


def demo_source(tmp_path: Path, dna_scale: float = 1.0) -> Path:
    """A source copy whose Demo-soft / Demo-hard hold untrained exports (seeds 0 and 1)."""
    source = copy_source(tmp_path)
    export_untrained_member(source / "Seq2Exp" / "Demo-soft", "demo_soft", seed=0, dna_scale=dna_scale)
    export_untrained_member(source / "Seq2Exp" / "Demo-hard", "demo_hard", seed=1, dna_scale=dna_scale)
    return source


def run_cli(args: list[str], home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a console command (``kipoi``, ``seq2exp``, ``python -m ...``) with HOME at ``home``, on
    one thread: tiny demo windows gain nothing from more, and on a busy machine OpenMP threads
    waiting for each other cost 10x the time."""
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore",
           "OMP_NUM_THREADS": "1"}
    bindir = Path(sys.executable).parent
    command = [str(bindir / args[0])] if (bindir / args[0]).exists() else [args[0]]
    if args[0] == "python":
        command = [sys.executable]
    return subprocess.run(command + args[1:], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module (restored afterwards); see `run_cli`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sim_dataloader_args(gene_table: Path | str, **extra) -> dict:
    """Dataloader arguments for the simulated genome with the given gene table."""
    return {"fasta_file": str(SIM / "genome.fa"), "gene_table": str(gene_table),
            "h3k27ac_bigwig": str(SIM / "h3k27ac.bw"), "dnase_bigwig": str(SIM / "dnase.bw"),
            "hic_file": str(SIM / "hic_5kb.cool"), "mrna_features": str(SIM / "mrna_features.tsv"), **extra}


def gene_subset(tmp_path: Path, gene_ids: list[str], name: str = "genes.tsv") -> Path:
    """A gene table with the given genes of the simulated genome, in that order."""
    lines = (SIM / "genes.tsv").read_text().splitlines()
    rows = {line.split("\t")[0]: line for line in lines[1:]}
    path = tmp_path / name
    path.write_text("\n".join([lines[0]] + [rows[g] for g in gene_ids]) + "\n")
    return path


def direct_expression(model: Seq2Exp, dataset, indices: list[int] | None = None,
                      rc_average: bool = False) -> np.ndarray:
    """Expression of the dataset's genes from the plain model, one gene per call (batch 1)."""
    values = []
    device = next(model.parameters()).device
    for i in range(len(dataset)) if indices is None else indices:
        inputs = dataset[i]["inputs"]
        tensors = [torch.from_numpy(np.asarray(inputs[k]))[None].to(device)
                   for k in ("seq", "signals", "gene_features")]
        values.append(float(model.predict(*tensors, rc_average=rc_average).expression[0]))
    return np.array(values)


if __name__ == "__main__":
    for member, config, seed in (("Demo-soft", "demo_soft", 0), ("Demo-hard", "demo_hard", 1)):
        target = REPO / "model_zoo" / "Seq2Exp" / member
        export_untrained_member(target, config, seed)
        print(f"wrote untrained placeholder {target}")

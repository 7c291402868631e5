"""Kipoi dataloader: thin glue from Kipoi's arguments to `GeneWindows` (all logic lives there).

Declared by ``dataloaders/Seq2Exp/dataloader.yaml`` (``defined_as:
kipoi_seq2exp.data.kipoi_dataloader.Seq2ExpDataset``); the yaml's ``args`` must match the
constructor's arguments exactly (Kipoi checks).
"""
from __future__ import annotations

import warnings

import numpy as np
from kipoi.data import Dataset
from kipoi.metadata import GenomicRanges

from .config import DataConfig, HicOptions, parse_signals
from .dataset import GeneWindows
from .genes import read_targets
from .qc import MAX_N_FRACTION

class Seq2ExpDataset(Dataset):
    """One example per gene: TSS-centred window of DNA and signals plus the 9 gene features.

    Arguments are documented in ``dataloaders/Seq2Exp/dataloader.yaml``. Windows are not
    strand-flipped, so ``metadata.ranges.strand`` is '*' (kipoi-veff must not reverse-complement
    the sequence); the gene's own strand is in ``metadata.gene_strand``.
    """

    #: kipoi-veff reads this; empty = VCF-overlap mode (windows stay TSS-centred, see kipoi-notes).
    postprocessing: dict = {}

    def __init__(
        self,
        fasta_file,
        gene_table,
        h3k27ac_bigwig=None,
        dnase_bigwig=None,
        hic_file=None,
        mrna_features=None,
        expression_file=None,
        expression_column="expression",
        signals="h3k27ac,dnase,hic",
        window=200000,
        hic_normalization="VC",
        max_n_fraction=MAX_N_FRACTION,
    ):
        files = {"h3k27ac_bigwig": h3k27ac_bigwig, "dnase_bigwig": dnase_bigwig, "hic_file": hic_file}
        config = DataConfig(
            fasta=fasta_file,
            gene_table=gene_table,
            tracks=parse_signals(signals, files),
            hic=HicOptions(normalization=hic_normalization),
            mrna_features=mrna_features,
            window=int(window),
            max_n_fraction=float(max_n_fraction),
        )
        self.windows = GeneWindows(config)
        ids = self.windows.genes["gene_id"].tolist()
        self.targets = None
        if expression_file is not None:
            self.targets = read_targets(expression_file, expression_column, config.target_transform, ids)
            missing = int(np.isnan(self.targets).sum())
            if missing:
                warnings.warn(f"{expression_file}: {missing} of {len(ids)} genes have no {expression_column!r} value; "
                              f"their targets are NaN.", stacklevel=2)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        example = self.windows.example(index)
        gene = self.windows.gene_list[index]
        window = example["window"]
        out = {
            "inputs": {
                "seq": example["seq"],
                "signals": example["signals"],
                "gene_features": example["gene_features"],
                "signal_depth": example["signal_depth"],
                "strand": np.array([1.0 if gene.strand == "+" else -1.0], dtype=np.float32),
            },
            "metadata": {
                "ranges": GenomicRanges(chr=gene.chrom, start=window.start, end=window.end, id=gene.gene_id, strand="*"),
                "gene_id": gene.gene_id,
                "gene_strand": gene.strand,
                "qc": self.windows.qc[index].label,
            },
        }
        if self.targets is not None:
            out["targets"] = np.array([self.targets[index]], dtype=np.float32)
        return out

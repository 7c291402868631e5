"""Kipoi dataloader: thin glue from Kipoi's arguments to `GeneInputs` (all logic lives there).

Declared by ``dataloaders/Seq2Exp/dataloader.yaml`` (``defined_as:
kipoi_seq2exp.data.kipoi_dataloader.Seq2ExpDataset``); the yaml's ``args`` must match the
constructor's arguments exactly (Kipoi checks).
"""
from __future__ import annotations

from kipoi.data import Dataset
from kipoi.metadata import GenomicRanges

from .config import DataConfig, HicOptions, parse_signals
from .gene_inputs import GeneInputs, channel_codes, channels_with_files
from .qc import MAX_N_FRACTION


class Seq2ExpDataset(Dataset):
    """One example per gene: TSS-centred window of DNA and signals plus the 9 gene features.

    Arguments are documented in ``dataloaders/Seq2Exp/dataloader.yaml``. Files come by keyword
    (``dnase_bigwig``, ...) or by canonical track name in ``tracks`` (``{"DNase": "x.bw"}``); the
    ``channels`` input says which track each signal channel holds (its index in
    `gene_inputs.TRACK_NAMES`), and the member checks them against what it was trained on before it
    predicts. Windows are not strand-flipped, so ``metadata.ranges.strand``
    is '*' (kipoi-veff must not reverse-complement the sequence); the gene's own strand is in
    ``metadata.gene_strand``.
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
        tracks=None,
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
            tracks=channels_with_files(parse_signals(signals, files), tracks),
            hic=HicOptions(normalization=hic_normalization),
            mrna_features=mrna_features,
            window=int(window),
            max_n_fraction=float(max_n_fraction),
        )
        self.inputs = GeneInputs(config, expression_file, expression_column)
        self.windows = self.inputs.windows
        self.indices = self.inputs.indices
        self.channel_codes = channel_codes(self.inputs.channels)

    @property
    def channels(self) -> list[str]:
        return self.inputs.channels

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        item = self.inputs.item(index)
        metadata = item["metadata"]
        window = metadata.pop("window")
        ranges = GenomicRanges(chr=window.chrom, start=window.start, end=window.end, id=metadata["gene_id"], strand="*")
        item["metadata"] = {"ranges": ranges, **metadata}
        item["inputs"]["channels"] = self.channel_codes
        return item

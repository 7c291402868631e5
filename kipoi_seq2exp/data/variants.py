"""Reference and alternative DNA windows for every (variant, gene) pair whose window holds the variant.

The alternative window comes from kipoiseq's ``VariantSeqExtractor``: the window keeps length
L and stays anchored on the TSS (index L // 2), an insertion pushes bases outwards away from
the TSS and a deletion pulls in bases from beyond the window edge. Signals are not touched by a
variant (measured tracks), so ``score-variants`` reuses the gene's reference signals.

Every record is accounted for in a `VariantReport`: pairs yielded, variants outside every
window, REF alleles that disagree with the FASTA (skipped), unsupported ALT alleles (skipped).
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm import tqdm

from .coords import chrom_aliases, window_around
from .errors import DataInputError
from .genes import Gene, genes_of, read_gene_table
from .genome import FastaWindows, one_hot

if TYPE_CHECKING:
    from kipoiseq import Variant

log = logging.getLogger(__name__)

_BGZF_MAGIC = b"\x1f\x8b\x08\x04"


@dataclass(frozen=True)
class VariantWindow:
    """One variant in one gene's window.

    Attributes
    ----------
    variant
        kipoiseq ``Variant`` (1-based ``pos``, one ALT allele; multi-allelic records are split).
    gene
        The gene whose window [tss - L//2, tss - L//2 + L) overlaps the variant.
    ref_onehot, alt_onehot
        (L, 4) float32 one-hot windows, N-padded past chromosome ends; TSS at index L // 2.
    """

    variant: Variant
    gene: Gene
    ref_onehot: np.ndarray
    alt_onehot: np.ndarray


@dataclass
class VariantReport:
    """What happened to each VCF record; lists keep the first ``max_listed`` entries, counts are exact."""

    max_listed: int = 10_000
    n_records: int = 0
    n_pairs: int = 0
    n_outside: int = 0
    n_ref_mismatch: int = 0
    n_unsupported: int = 0
    outside: list[str] = field(default_factory=list)
    ref_mismatch: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    def add(self, kind: str, description: str) -> None:
        setattr(self, f"n_{kind}", getattr(self, f"n_{kind}") + 1)
        listed = getattr(self, kind)
        if len(listed) < self.max_listed:
            listed.append(description)

    def summary(self) -> str:
        return (
            f"{self.n_records} VCF records: {self.n_pairs} (variant, gene) windows; "
            f"{self.n_outside} alleles outside every gene window; {self.n_ref_mismatch} records whose REF "
            f"disagrees with the FASTA (skipped); {self.n_unsupported} unsupported ALT alleles (skipped)."
        )


def check_vcf(path: str) -> None:
    """Raise unless ``path`` is a bgzipped VCF with a tabix (.tbi) or CSI index beside it."""
    if not os.path.isfile(path):
        raise DataInputError(f"{path}: VCF not found. Fix: check the path.")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    fix = f"Fix: `bgzip -c variants.vcf > {path if path.endswith('.gz') else path + '.gz'}` then `tabix -p vcf <that file>`."
    if magic != _BGZF_MAGIC:
        raise DataInputError(f"{path}: VCF is not bgzip-compressed (plain text or plain gzip). {fix}")
    if not (os.path.exists(path + ".tbi") or os.path.exists(path + ".csi")):
        raise DataInputError(f"{path}: VCF has no tabix index ({path}.tbi or .csi). {fix}")


class _GeneIndex:
    """Genes per chromosome sorted by TSS, to find every window overlapping a variant in O(log n)."""

    def __init__(self, genes: list[Gene], window: int):
        self.window = window
        self.half = window // 2
        self.by_chrom: dict[str, tuple[np.ndarray, list[Gene]]] = {}
        for chrom in dict.fromkeys(g.chrom for g in genes):
            members = sorted((g for g in genes if g.chrom == chrom), key=lambda g: g.tss)
            self.by_chrom[chrom] = (np.array([g.tss for g in members], dtype=np.int64), members)
        self._alias = {a: chrom for chrom in self.by_chrom for a in chrom_aliases(chrom)}

    def overlapping(self, chrom: str, start: int, end: int) -> list[Gene]:
        """Genes whose window [tss - half, tss - half + L) overlaps [start, end) (end > start)."""
        name = self._alias.get(chrom)
        if name is None:
            return []
        tss, members = self.by_chrom[name]
        # overlap <=> start + half - L < tss < end + half
        lo = np.searchsorted(tss, start + self.half - self.window, side="right")
        hi = np.searchsorted(tss, end + self.half, side="left")
        return members[lo:hi]


def _supported(alt: str) -> bool:
    """Plain-base ALT alleles only: no '*', symbolic (<DEL>), missing or N alleles."""
    return bool(alt) and set(alt.upper()) <= set("ACGT")


def iter_variant_windows(
    vcf: str,
    genes: str | pd.DataFrame,
    fasta: str | FastaWindows,
    window: int,
    report: VariantReport | None = None,
    progress: bool = True,
) -> Iterator[VariantWindow]:
    """Yield ref/alt one-hot windows for every variant inside a gene's window.

    Parameters
    ----------
    vcf
        bgzipped, tabix-indexed VCF (checked first; fix given otherwise).
    genes
        Gene table path or a table from `read_gene_table`.
    fasta
        FASTA path or an open `FastaWindows`.
    window
        L, bases per window.
    report
        Filled while iterating (counts and lists of skipped records); a summary is logged at the end.
    progress
        Show a tqdm bar over VCF records.

    Yields
    ------
    VariantWindow
        In VCF order; a variant overlapping several windows yields one record per gene.
    """
    import cyvcf2
    from kipoiseq import Interval, Variant  # imports kipoi (writes ~/.kipoi): only when scoring variants
    from kipoiseq.extractors import VariantSeqExtractor

    check_vcf(vcf)
    table = read_gene_table(genes) if isinstance(genes, str) else genes
    reference = fasta if isinstance(fasta, FastaWindows) else FastaWindows(fasta)
    index = _GeneIndex(genes_of(table), window)
    extractor = VariantSeqExtractor(reference_sequence=reference)
    report = report if report is not None else VariantReport()
    ref_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def ref_window(gene: Gene) -> np.ndarray:
        if gene.gene_id not in ref_cache:
            w = window_around(gene.chrom, gene.tss, window)
            encoded = one_hot(reference.fetch(w.chrom, w.start, w.end))
            encoded.flags.writeable = False  # shared by every variant of this gene
            ref_cache[gene.gene_id] = encoded
            if len(ref_cache) > 64:
                ref_cache.popitem(last=False)
        return ref_cache[gene.gene_id]

    for record in tqdm(cyvcf2.VCF(vcf), desc="variants", unit=" records", disable=not progress):
        report.n_records += 1
        start, ref = record.POS - 1, record.REF
        label = f"{record.CHROM}:{record.POS}:{ref}>{','.join(record.ALT) or '.'}"
        hits = index.overlapping(record.CHROM, start, start + len(ref))
        if hits and reference.fetch(hits[0].chrom, start, start + len(ref)) != ref.upper():
            report.add("ref_mismatch", label)
            continue
        for alt in record.ALT or [""]:
            variant = Variant(record.CHROM, record.POS, ref, alt, id=record.ID or "")
            if not _supported(alt):
                report.add("unsupported", str(variant))
                continue
            if not hits:
                report.add("outside", str(variant))
                continue
            for gene in hits:
                w = window_around(gene.chrom, gene.tss, window)
                alt_seq = extractor.extract(Interval(gene.chrom, w.start, w.end), [variant], anchor=gene.tss)
                report.n_pairs += 1
                yield VariantWindow(variant, gene, ref_window(gene), one_hot(alt_seq))
    for kind, what in (
        ("outside", "outside every gene window"),
        ("ref_mismatch", "REF differs from the FASTA"),
        ("unsupported", "unsupported ALT"),
    ):
        count = getattr(report, f"n_{kind}")
        if count:
            log.warning("%s: %d %s, e.g. %s", vcf, count, what, getattr(report, kind)[:3])

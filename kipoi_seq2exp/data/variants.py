"""Reference and alternative DNA windows for every (variant, gene) pair whose window holds the variant.

The alternative window comes from kipoiseq's ``VariantSeqExtractor``: the window keeps length
L and stays anchored on the TSS (index L // 2), an insertion pushes bases outwards away from
the TSS and a deletion pulls in bases from beyond the window edge. Signals are not touched by a
variant (measured tracks), so ``score-variants`` reuses the gene's reference signals.

Every record is accounted for in a `VariantReport`: pairs yielded, variants outside every
window, REF alleles that disagree with the FASTA (skipped), unsupported ALT alleles (skipped).
"""
from __future__ import annotations

import functools
import gzip
import json
import logging
import os
import shlex
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm import tqdm

from .coords import chrom_aliases, warn_alias, window_around
from .errors import DataInputError
from .genes import Gene, genes_of, read_gene_table
from .genome import FastaWindows, one_hot

if TYPE_CHECKING:
    from kipoiseq import Variant

log = logging.getLogger(__name__)

_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
#: REF letters: bases and IUPAC codes (GRCh37-era VCFs carry M, R, ...: skipped later as REF mismatches)
_REF_LETTERS = frozenset("ACGTNMRWSYKVHDB")


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
    aliased: bool = False  # the VCF spells chromosomes differently from the gene table (said once)

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


@dataclass(frozen=True)
class VcfRecord:
    """The fields of one VCF data line that variant scoring reads, and the line they came from.

    ``line`` is 1-based in the decompressed file (headers counted), as ``zcat -f | sed -n Np`` shows it;
    ``pos`` is VCF's 1-based position; ``vcf_id`` is "" for '.'; ``alts`` is () for '.'.
    """

    line: int
    chrom: str
    pos: int
    vcf_id: str
    ref: str
    alts: tuple[str, ...]


def _vcf_compression(path: str) -> str:
    """'bgzf', 'gzip' or 'text': tabix indexes only BGZF (gzip blocks tagged 'BC' in the extra field)."""
    with open(path, "rb") as handle:
        head = handle.read(14)
    if head[:4] == _BGZF_MAGIC and head[12:14] == b"BC":
        return "bgzf"
    return "gzip" if head[:2] == b"\x1f\x8b" else "text"


def _snippet(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:60] + "...")


def _parse_record(path: str, number: int, line: str) -> VcfRecord:
    """One data line -> `VcfRecord`; a line htslib would reject (or crash on) is a DataInputError."""
    where = f"{path}, line {number}"
    if not line.strip():
        raise DataInputError(f"{where}: empty line among the VCF records (htslib cannot read it). "
                             "Fix: delete the empty line(s).")
    if line.startswith("#"):
        raise DataInputError(f"{where}: '#' line after the #CHROM header line: {_snippet(line)}. "
                             "Fix: move it into the header as a '##' line, or delete it.")
    fields = line.split("\t", 8)
    if len(fields) < 8:
        raise DataInputError(
            f"{where}: VCF record has {len(fields)} tab-separated column(s), a VCF record needs 8 (CHROM POS ID "
            f"REF ALT QUAL FILTER INFO): {_snippet(line)}. Fix: separate the columns with tabs (not spaces), "
            "write '.' for an empty field, or delete the line.")
    chrom, pos, vcf_id, ref, alt = fields[:5]
    if not chrom:
        raise DataInputError(f"{where}: CHROM is empty. Fix: write the chromosome name (as in the FASTA) or "
                             "delete the line.")
    if not (pos.isascii() and pos.isdigit() and int(pos) > 0):
        raise DataInputError(f"{where}: POS {pos!r} is not a positive integer (VCF positions are 1-based). "
                             "Fix: correct the position or delete the line.")
    if not ref or not set(ref.upper()) <= _REF_LETTERS:
        raise DataInputError(f"{where}: REF {ref!r} is not a DNA allele (letters A, C, G, T, N or IUPAC codes). "
                             "Fix: write the reference base(s) at POS, or delete the line.")
    alts = tuple(alt.split(",")) if alt != "." else ()
    return VcfRecord(number, chrom, int(pos), "" if vcf_id == "." else vcf_id, ref, alts)


def read_vcf_records(path: str) -> Iterator[VcfRecord]:
    """Records of a VCF (plain, gzip or bgzip) in file order, each checked before use.

    Read here rather than through htslib: htslib answers a malformed line with a bare
    "error parsing variant" (no line number) and crashes the process on a line without tabs.
    """
    opener = open if _vcf_compression(path) == "text" else gzip.open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as handle:
        header = False
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not header:
                if line.startswith("#CHROM"):
                    header = True
                elif not line.startswith("##"):
                    raise DataInputError(
                        f"{path}, line {number}: {_snippet(line)} comes before the VCF header line "
                        "'#CHROM POS ID REF ALT QUAL FILTER INFO'. Fix: start the file with the VCF header "
                        "('##fileformat=VCFv4.2', then the tab-separated #CHROM line).")
                continue
            yield _parse_record(path, number, line)
    if not header:
        raise DataInputError(f"{path}: no '#CHROM POS ID REF ALT QUAL FILTER INFO' header line: not a VCF. "
                             "Fix: pass a VCF file (header '##fileformat=VCFv4.2', then the #CHROM line).")


def _first_unsorted(path: str) -> str | None:
    """Where the records stop being sorted (tabix needs each chromosome in one block, positions
    ascending), or None. Reading every record also checks every line."""
    done: set[str] = set()
    chrom, pos = None, 0
    for record in read_vcf_records(path):
        if record.chrom != chrom:
            if record.chrom in done:
                return f"line {record.line}: {record.chrom} appears again after {chrom}"
            done.add(record.chrom)
            chrom, pos = record.chrom, 0
        if record.pos < pos:
            return f"line {record.line}: {chrom}:{record.pos} after {chrom}:{pos}"
        pos = record.pos
    return None


def _new_vcf_name(path: str, tag: str) -> str:
    """``in.vcf.gz`` -> ``in.<tag>.vcf.gz``: a new file beside the input, never the input itself."""
    stem = path
    for suffix in (".gz", ".bgz", ".vcf"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    return f"{stem}.{tag}.vcf.gz"


def _pysam(code: str) -> str:
    """``python -c '...'`` running ``code`` with pysam imported (paths as double-quoted literals)."""
    return f"python -c {shlex.quote('import pysam; ' + code)}"


def _tabix_code(path: str) -> str:
    return f'pysam.tabix_index({json.dumps(path)}, preset="vcf")'


def vcf_fix(path: str, compression: str, unsorted: bool) -> tuple[str, str]:
    """(the fix as shell commands, the bgzipped + indexed file they leave) for a VCF tabix cannot read.

    Each fix names htslib's tools and a pysam equivalent (bgzip/tabix are often not installed);
    no command writes to ``path`` (``bgzip -c in > in`` would truncate the input before reading it).
    """
    q = shlex.quote
    if unsorted:
        out = _new_vcf_name(path, "sorted")
        plain = out[: -len(".gz")]
        records = f"(gzip -dcf {q(path)} | grep '^#'; gzip -dcf {q(path)} | grep -v '^#' | sort -k1,1 -k2,2n)"
        return (f"`bcftools sort {q(path)} -Oz -o {q(out)} && tabix -p vcf {q(out)}`; without bcftools: "
                f"`{records} > {q(plain)} && {_pysam(_tabix_code(plain))}` (pysam writes {out} and its index)"), out
    if compression == "bgzf":
        return f"`tabix -p vcf {q(path)}`; without htslib's tabix: `{_pysam(_tabix_code(path))}`", path
    if compression == "gzip":
        out = _new_vcf_name(path, "bgz")
        code = (f'import gzip, shutil; out = pysam.BGZFile({json.dumps(out)}, "wb"); '
                f"shutil.copyfileobj(gzip.open({json.dumps(path)}), out); out.close(); {_tabix_code(out)}")
        return (f"`gzip -dc {q(path)} | bgzip > {q(out)} && tabix -p vcf {q(out)}`; "
                f"without htslib: `{_pysam(code)}`"), out
    out = _new_vcf_name(path, "bgz") if path.endswith(".gz") else path + ".gz"
    code = f"pysam.tabix_compress({json.dumps(path)}, {json.dumps(out)}); {_tabix_code(out)}"
    return f"`bgzip -c {q(path)} > {q(out)} && tabix -p vcf {q(out)}`; without htslib: `{_pysam(code)}`", out


def check_vcf(path: str) -> None:
    """Raise unless ``path`` is a well-formed, sorted, bgzipped VCF with a tabix (.tbi) or CSI index.

    Every record is read once (`read_vcf_records`), so a malformed line is reported with its line
    number before htslib (kipoi-veff, tabix) meets it.
    """
    if not os.path.isfile(path):
        raise DataInputError(f"{path}: VCF not found. Fix: check the path.")
    stat = os.stat(path)
    _check_vcf_file(path, stat.st_size, stat.st_mtime_ns,
                    os.path.exists(path + ".tbi") or os.path.exists(path + ".csi"))


@functools.lru_cache(maxsize=16)
def _check_vcf_file(path: str, size: int, mtime_ns: int, indexed: bool) -> None:
    """`check_vcf` of one version of a file: a VCF that passed is not read again by the next caller
    (``score-variants`` checks before loading the model, then scoring checks its input); a failure
    is not cached."""
    compression = _vcf_compression(path)
    unsorted = _first_unsorted(path)
    if unsorted:
        fix, out = vcf_fix(path, compression, unsorted=True)
        raise DataInputError(f"{path}, {unsorted}: VCF records are not sorted (each chromosome in one block, "
                             f"positions ascending), so tabix cannot index it. Fix: sort into a new file: {fix}; "
                             f"then pass {out}.")
    if compression != "bgzf":
        kind = "plain gzip: tabix cannot index it" if compression == "gzip" else "plain text"
        fix, out = vcf_fix(path, compression, unsorted=False)
        raise DataInputError(f"{path}: VCF is not bgzip-compressed ({kind}). Fix: write a bgzipped, indexed "
                             f"copy: {fix}; then pass {out}.")
    if not indexed:
        fix, _ = vcf_fix(path, compression, unsorted=False)
        raise DataInputError(f"{path}: VCF has no tabix index ({path}.tbi or .csi). Fix: {fix}.")


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

    for record in tqdm(read_vcf_records(vcf), desc="variants", unit=" records", disable=not progress):
        report.n_records += 1
        start, ref = record.pos - 1, record.ref
        label = f"{record.chrom}:{record.pos}:{ref}>{','.join(record.alts) or '.'}"
        hits = index.overlapping(record.chrom, start, start + len(ref))
        if hits and hits[0].chrom != record.chrom and not report.aliased:
            report.aliased = True
            warn_alias(vcf, record.chrom, hits[0].chrom)
        if hits and reference.fetch(hits[0].chrom, start, start + len(ref)) != ref.upper():
            report.add("ref_mismatch", label)
            continue
        for alt in record.alts or ("",):
            variant = Variant(record.chrom, record.pos, ref, alt, id=record.vcf_id)
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

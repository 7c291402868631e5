"""Window quality: how much of a gene's window the model can actually read.

A window that is mostly N (an assembly gap, a coordinate from another assembly) or whose signal
track is empty across it still gives a number, and a confident-looking one. Every window is
therefore checked before anything is predicted: flagged windows are named in one warning and
carry a ``qc`` label into every output; windows whose bases *on the chromosome* are more than
``max_n_fraction`` N are refused (padding past a chromosome end only flags: a gene near a
chromosome end, or on chrM, is real and predictable).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Above this share of N bases a window is flagged (and still predicted).
FLAG_N_FRACTION = 0.2
#: Default refusal threshold (DataConfig.max_n_fraction; the Kipoi dataloader argument of the same name).
MAX_N_FRACTION = 0.5
_ACGT = frozenset(b"ACGTacgt")


@dataclass(frozen=True)
class WindowQC:
    """What one window holds: its share of unreadable bases and the signal tracks empty across it."""

    n_fraction: float  # all unreadable bases, padding past the chromosome ends included
    empty_tracks: tuple[str, ...] = ()
    gap_fraction: float = 0.0  # N bases that lie on the chromosome (gaps), as a share of the window

    @property
    def flagged(self) -> bool:
        return self.n_fraction > FLAG_N_FRACTION or bool(self.empty_tracks)

    @property
    def label(self) -> str:
        """'ok', or the reasons joined by ';' (e.g. 'N 83%;no DNase'): the per-gene ``qc`` column."""
        reasons = ([f"N {self.n_fraction:.0%}"] if self.n_fraction > FLAG_N_FRACTION else []) + [
            f"no {name}" for name in self.empty_tracks]
        return ";".join(reasons) or "ok"


def unreadable_bases(sequence: str) -> int:
    """How many bases are not A/C/G/T (N, IUPAC codes, off-chromosome padding)."""
    return len(sequence.encode("ascii", errors="replace").translate(None, bytes(_ACGT)))


def n_fraction(sequence: str) -> float:
    """Share of bases that are not A/C/G/T; 1 for an empty sequence."""
    return unreadable_bases(sequence) / len(sequence) if sequence else 1.0


def summarise(gene_ids: Sequence[str], checks: Sequence[WindowQC], max_n_fraction: float) -> tuple[str, str]:
    """(warning text for flagged windows, error text for refused ones); an empty string when none."""
    flagged = [(g, qc) for g, qc in zip(gene_ids, checks) if qc.flagged]
    refused = [(g, qc) for g, qc in flagged if qc.gap_fraction > max_n_fraction]
    warning = error = ""
    if flagged:
        shown = ", ".join(f"{g} ({qc.label})" for g, qc in flagged[:5])
        warning = (f"{len(flagged)} of {len(gene_ids)} gene windows are flagged (mostly N, or a signal track "
                   f"empty across the window): {shown}{', ...' if len(flagged) > 5 else ''}. Their predictions "
                   f"rest on less input than the model was trained on; the `qc` column says why.")
    if refused:
        shown = ", ".join(f"{g} ({qc.gap_fraction:.0%} N)" for g, qc in refused[:5])
        error = (f"{len(refused)} gene windows are more than {max_n_fraction:.0%} N on the chromosome (padding past "
                 f"its ends not counted), so the model has no sequence to read there: {shown}{', ...' if len(refused) > 5 else ''}. Fix: check those genes' chromosome "
                 f"and TSS against the FASTA's assembly, remove them from the gene table, or raise max_n_fraction "
                 f"(now {max_n_fraction}) to predict them anyway, flagged.")
    return warning, error

"""Data layer: TSS-centred DNA windows, signal tracks, Hi-C contact, gene features, variants.

Submodules load on first attribute access (PEP 562) so that ``import kipoi_seq2exp.data`` stays
light and Kipoi's ``defined_as: kipoi_seq2exp.data.kipoi_dataloader.Seq2ExpDataset`` resolves by
plain attribute lookup (Kipoi imports ``kipoi_seq2exp`` and then getattr's the rest).
"""
from __future__ import annotations

import importlib

_SUBMODULES = (
    "config", "coords", "dataset", "errors", "genes", "genome", "hic", "kipoi_dataloader",
    "synthetic", "tracks", "variants",
)
_EXPORTS = {
    "DataConfig": "config", "TrackConfig": "config", "HicOptions": "config", "SplitConfig": "config",
    "paper_tracks": "config", "accessibility_tracks": "config", "MRNA_FEATURE_COLUMNS": "config",
    "DataInputError": "errors",
    "one_hot": "genome", "FastaWindows": "genome",
    "BigWigTrack": "tracks", "HicContacts": "hic", "PowerLawContacts": "hic",
    "read_gene_table": "genes", "Gene": "genes",
    "GeneWindows": "dataset", "WindowDataset": "dataset",
    "iter_variant_windows": "variants", "VariantWindow": "variants", "VariantReport": "variants",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES) | set(_EXPORTS))

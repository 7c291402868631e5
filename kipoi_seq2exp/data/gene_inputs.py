"""A member's inputs on the user's files, one example per gene, without Kipoi.

`GeneInputs` is what the Kipoi dataloader (`kipoi_dataloader.Seq2ExpDataset`) wraps and what
``kipoi_seq2exp.load_member(...).inputs(...)`` returns: the same windows, signals and gene features
either way. `channels_with_files` gives each channel the file the user named for it by its
canonical track name (``{"DNase": "x.bw"}``).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .config import SIGNAL_CHOICES, DataConfig, TrackConfig
from .dataset import GeneWindows
from .errors import DataInputError
from .genes import read_targets

#: Canonical track name -> reader kind, for tracks a member does not list (so its check can name them).
TRACK_KINDS_BY_NAME = {channel: kind for channel, kind, _ in SIGNAL_CHOICES.values()}
#: The canonical track names; a ``channels`` input holds each channel's index here (numbers, so that
#: every consumer that turns all inputs into tensors still can).
TRACK_NAMES = tuple(TRACK_KINDS_BY_NAME)


def channel_codes(names: Sequence[str]) -> np.ndarray:
    """(n,) int64: each channel's index in `TRACK_NAMES` (the Kipoi dataloader's tracks are all there)."""
    return np.array([TRACK_NAMES.index(name) for name in names], dtype=np.int64)


def channel_names(codes: Sequence[int]) -> list[str]:
    """The track names of ``channel_codes``; an index outside `TRACK_NAMES` reads as 'unknown track N'."""
    return [TRACK_NAMES[c] if 0 <= c < len(TRACK_NAMES) else f"unknown track {c}" for c in map(int, codes)]


def channels_with_files(channels: Sequence[TrackConfig], tracks: Mapping[str, str | None] | None) -> list[TrackConfig]:
    """The member's channels, in its order, each with the file ``tracks`` names for it.

    Parameters
    ----------
    channels : the channels the member reads (name, kind; a path already set by a keyword argument)
    tracks : canonical track name -> file, e.g. ``{"DNase": "K562.bw"}``; a channel left out keeps its
        path (None: zeros for a bigWig, the power law for Hi-C, each with a warning)

    Returns
    -------
    The channels with their files, then any named track the member does not read, appended so that
    the member's channel check reports it instead of it being dropped without a word.
    """
    tracks = dict(tracks or {})
    _check_names(tracks, [c.name for c in channels])
    out = []
    for channel in channels:
        if channel.name in tracks and channel.path is not None:
            raise DataInputError(f"the {channel.name} track is given twice: {channel.path!r} by its keyword argument "
                                 f"and {tracks[channel.name]!r} in `tracks`. Fix: give it once.")
        out.append(TrackConfig(channel.name, tracks.pop(channel.name, channel.path), channel.kind))
    return out + [TrackConfig(name, path, TRACK_KINDS_BY_NAME[name]) for name, path in tracks.items()]


def _check_names(tracks: Mapping[str, str | None], expected: Sequence[str]) -> None:
    """DataInputError for a track name that is neither one of ``expected`` nor a known track name."""
    known = list(dict.fromkeys([*expected, *TRACK_KINDS_BY_NAME]))
    for name in tracks:
        if name not in known:
            spelt = [k for k in known if k.casefold() == str(name).casefold()]
            hint = f"did you mean {spelt[0]!r}? " if spelt else ""
            example = (list(expected) or known)[0]
            raise DataInputError(f"unknown track name {name!r} in `tracks`; {hint}track names are {known} (this "
                                 f"member reads {list(expected)}). Fix: name each file by its track, e.g. "
                                 f"{{{example!r}: 'file'}}.")


class GeneInputs:
    """One example per gene: the TSS-centred window of DNA and signals plus the 9 gene features.

    Parameters
    ----------
    config : the files and choices (`DataConfig`); channels in the member's order
    expression_file, expression_column : optional targets, log10(x + 1) as in training
    """

    def __init__(self, config: DataConfig, expression_file: str | None = None,
                 expression_column: str = "expression") -> None:
        self.windows = GeneWindows(config)
        self.targets = None if expression_file is None else self._targets(expression_file, expression_column)

    def _targets(self, expression_file: str, column: str) -> np.ndarray:
        """Each gene's target (NaN for genes without a value, with one warning)."""
        ids = self.windows.genes["gene_id"].tolist()
        targets = read_targets(expression_file, column, self.windows.config.target_transform, ids)
        missing = int(np.isnan(targets).sum())
        if missing:
            warnings.warn(f"{expression_file}: {missing} of {len(ids)} genes have no {column!r} value; "
                          f"their targets are NaN.", stacklevel=3)
        return targets

    @property
    def channels(self) -> list[str]:
        """Canonical names of the signal channels, in the order of the ``signals`` input's last axis."""
        return self.windows.config.track_names

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def indices(self) -> range:
        """Rows of the gene table it gives, in order: every gene (a `WindowDataset` gives one split's)."""
        return range(len(self))

    def item(self, index: int) -> dict:
        """Gene ``index``: ``inputs`` (seq (L, 4), signals (L, n), gene_features (9,), signal_depth (n,),
        strand (1,)), ``metadata`` (gene_id, gene_strand, qc, window) and,
        with an expression file, ``targets`` (1,)."""
        example = self.windows.example(index)
        gene = self.windows.gene_list[index]
        item = {
            "inputs": {
                "seq": example["seq"],
                "signals": example["signals"],
                "gene_features": example["gene_features"],
                "signal_depth": example["signal_depth"],
                "strand": np.array([1.0 if gene.strand == "+" else -1.0], dtype=np.float32),
            },
            "metadata": {"gene_id": gene.gene_id, "gene_strand": gene.strand, "qc": self.windows.qc[index].label,
                         "window": example["window"]},
        }
        if self.targets is not None:
            item["targets"] = np.array([self.targets[index]], dtype=np.float32)
        return item


__all__ = ["GeneInputs", "TRACK_KINDS_BY_NAME", "TRACK_NAMES", "channel_codes", "channel_names",
           "channels_with_files"]

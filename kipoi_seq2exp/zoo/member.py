"""A zoo member without Kipoi: what it reads (`MemberSpec`), its model, and the calls that predict.

``kipoi_seq2exp.load_member("Seq2Exp/K562")`` (or an exported folder) gives a `Member`; Kipoi's
wrapper (`kipoi_seq2exp.zoo.Seq2ExpModel`) is a `Member` too, so both predict through the same
`Member.predict`. The channels a member reads are the ones its export recorded (``data.yaml``
tracks; ``config.yaml`` signals when an export has none): every input that names its channels is
checked against them before anything is predicted, so an H3K27ac file can never feed a DNase
channel without an error.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from ..data.config import SIGNAL_CHOICES, DataConfig, HicOptions, TrackConfig
from ..data.gene_inputs import GeneInputs, channel_names, channels_with_files
from ..data.qc import MAX_N_FRACTION
from ..model import ModelConfig
from ..predict import predict_batch
from ..train.member_files import DATA_FILE
from .source import GROUP, ZooError, check_member_dir, find_source_dir, load_member_model, member_names, member_row

INPUT_NAMES = ("seq", "signals", "gene_features")
MASK_LAYER = "mask"


@dataclass(frozen=True)
class MemberSpec:
    """What a member reads, as its export folder records it.

    Attributes
    ----------
    name : how messages name the member (``Seq2Exp/K562`` or the folder)
    channels : the signal channels it was trained on, in model order: canonical track name and
        reader kind (no files)
    signals : the same channels spelt as the dataloader's ``signals`` argument (``"dnase"``)
    window, hic_normalization : window length L in bp; how Hi-C maps are read
    """

    name: str
    channels: tuple[TrackConfig, ...]
    signals: str
    window: int
    hic_normalization: str

    @classmethod
    def read(cls, member_dir: Path, cfg: ModelConfig, name: str) -> "MemberSpec":
        """The spec of an export: channels from ``data.yaml`` tracks, else from ``config.yaml`` signals."""
        path = member_dir / DATA_FILE
        data = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
        tracks = data.get("tracks") or []
        if len(tracks) == len(cfg.signals):
            channels = tuple(TrackConfig(t["name"], None, t.get("kind", "bigwig")) for t in tracks)
        else:
            channels = tuple(_channel_of_signal(s.name, name) for s in cfg.signals)
        return cls(name, channels, ",".join(s.name for s in cfg.signals), cfg.window,
                   (data.get("hic") or {}).get("normalization", HicOptions().normalization))

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    def check_channels(self, names: Sequence[str]) -> None:
        """ZooError naming the member, the channel it expects and what came, unless ``names`` are its
        channels in its order."""
        expected, got = self.channel_names, [str(n) for n in names]
        if got == expected:
            return
        at = next(i for i in range(max(len(expected), len(got)))
                  if i >= min(len(expected), len(got)) or expected[i] != got[i])
        if at < min(len(expected), len(got)):
            detail = f"channel {at + 1} must be {expected[at]} but the inputs give {got[at]}"
        elif at < len(expected):
            detail = f"the inputs have no channel {at + 1}, {expected[at]}"
        else:
            detail = f"the inputs add {got[at:]}, which it was not trained on"
        example = ", ".join(f'"{n}": "FILE"' for n in expected)
        raise ZooError(
            f"{self.name} was trained on the signal channels {expected}: {detail} (inputs: {got}). Fix: name each "
            f"file by its track - tracks={{{example}}} "
            f"(`seq2exp predict --tracks {' '.join(f'{n}=FILE' for n in expected)}`) - or use the keyword "
            f"arguments with `signals` left at the member's default {self.signals!r}.")


def _channel_of_signal(signal: str, member: str) -> TrackConfig:
    """The canonical channel of a model signal name (``dnase`` -> DNase, bigwig)."""
    if signal not in SIGNAL_CHOICES:
        raise ZooError(f"{member}: its model reads a signal {signal!r} that is not a known track "
                       f"({list(SIGNAL_CHOICES)}) and its {DATA_FILE} lists no tracks. Fix: export it again with "
                       "`seq2exp export`, which records the tracks.")
    channel, kind, _ = SIGNAL_CHOICES[signal]
    return TrackConfig(channel, None, kind)


@dataclass(frozen=True)
class MaskLayer:
    """What ``--layer`` asks for: 'mask[:N][:gene]' = the mask, averaged over N-bp bins, in gene orientation."""

    bin_size: int = 1
    gene_orientation: bool = False


def mask_layer_of(layer: str, window: int) -> MaskLayer:
    """Parse ``--layer``: 'mask' (per base, genome orientation), 'mask:N' (N-bp bins, N divides the window),
    and either with ':gene' appended (minus-strand genes' masks reversed, so index 0 is upstream)."""
    name, *options = str(layer).split(":")
    gene = bool(options) and options[-1] == "gene"
    options = options[:-1] if gene else options
    if name != MASK_LAYER or len(options) > 1 or (options and not options[0].isdigit()):
        raise ZooError(f"unknown layer {layer!r}; use 'mask' (per-base mask), 'mask:N' (mean over N-bp bins), "
                       "or either with ':gene' appended (gene orientation).")
    bin_size = int(options[0]) if options else 1
    if bin_size < 1 or window % bin_size:
        raise ZooError(f"layer {layer!r}: the bin size must be a positive divisor of the window ({window} bp).")
    return MaskLayer(bin_size, gene)


def in_gene_orientation(mask: np.ndarray, strand: np.ndarray) -> np.ndarray:
    """(batch, length) mask with the rows of minus-strand genes (``strand`` < 0, shape (batch,) or (batch, 1)) reversed."""
    minus = np.asarray(strand, dtype=np.float32).reshape(len(mask)) < 0
    return np.where(minus[:, None], mask[:, ::-1], mask)


def bin_mask(mask: np.ndarray, bin_size: int) -> np.ndarray:
    """Mean of the (batch, length) mask over consecutive ``bin_size``-bp bins: (batch, length / bin_size)."""
    batch, length = mask.shape
    return mask.reshape(batch, length // bin_size, bin_size).mean(axis=2) if bin_size > 1 else mask


class Member:
    """One loaded member: its spec, its exported `Seq2Exp` on a device, and its predict calls.

    Parameters
    ----------
    member_dir : the export folder (``model.safetensors``, ``config.yaml``, ``data.yaml``)
    name : how messages name it (default ``<group>/<folder>``)
    rc_average : also run the reverse-complemented window and average, as ``Seq2Exp.predict(rc_average=True)``
    device : 'cuda', 'cpu', or None for the GPU when available
    """

    def __init__(self, member_dir: str | os.PathLike, name: str | None = None, rc_average: bool = False,
                 device: str | None = None) -> None:
        self.member_dir = Path(member_dir).resolve()
        self.member_name = name or f"{self.member_dir.parent.name}/{self.member_dir.name}"
        model = load_member_model(self.member_dir)
        self.spec = MemberSpec.read(self.member_dir, model.cfg, self.member_name)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.rc_average = bool(rc_average)

    @property
    def window(self) -> int:
        return self.model.cfg.window

    def inputs(self, fasta: str, genes: str, tracks: Mapping[str, str], mrna_features: str | None = None,
               expression: str | None = None, expression_column: str = "expression",
               max_n_fraction: float = MAX_N_FRACTION) -> GeneInputs:
        """The member's inputs on the user's files: ``tracks`` maps canonical track names to files
        (``{"DNase": "K562.bw"}``), checked against the member's channels before any file is read."""
        config = DataConfig(fasta=fasta, gene_table=genes, tracks=channels_with_files(self.spec.channels, tracks),
                            hic=HicOptions(normalization=self.spec.hic_normalization), mrna_features=mrna_features,
                            window=self.window, max_n_fraction=float(max_n_fraction))
        self.spec.check_channels(config.track_names)
        return GeneInputs(config, expression, expression_column)

    def _tensors(self, x: dict) -> dict[str, torch.Tensor]:
        """``x`` checked and on the model's device: seq (batch, length, 4), signals (batch, length,
        n_signals), gene_features (batch, 9) float32, and when given blacklist (batch, length) bool and
        signal_depth (batch, n_signals) float32."""
        if not isinstance(x, dict) or any(name not in x for name in INPUT_NAMES):
            raise ZooError(f"{self.member_name}: inputs must be a dict with {list(INPUT_NAMES)}; "
                           f"got {list(x) if isinstance(x, dict) else type(x).__name__}.")
        length = np.shape(x["seq"])[1] if np.ndim(x["seq"]) == 3 else None
        if length != self.window:
            raise ZooError(f"{self.member_name} reads {self.window:,}-bp windows but got seq of shape "
                           f"{np.shape(x['seq'])}. "
                           f"Fix: leave the dataloader argument `window` at the member's default ({self.window}).")
        if "channels" in x:  # (batch, n_signals) track indices, from the Kipoi dataloader
            for codes in {tuple(row) for row in np.atleast_2d(np.asarray(x["channels"]))}:
                self.spec.check_channels(channel_names(codes))
        dtypes = {**dict.fromkeys((*INPUT_NAMES, "signal_depth"), np.float32), "blacklist": bool}
        return {name: torch.as_tensor(np.asarray(x[name], dtype=dtype), device=self.device)
                for name, dtype in dtypes.items() if x.get(name) is not None}

    def predict(self, x: dict):
        """Model output (`Seq2ExpOutput`) of a batch, through `predict.predict_batch`; no gradients are
        recorded. An optional ``blacklist`` input (batch, length) of booleans drops those bases from the
        mask (the released models' mask_regions; the dataloader does not produce one); ``signal_depth``
        (batch, n_signals), which the dataloader gives, is read by depth-normalised members."""
        return predict_batch(self.model, self._tensors(x), rc_average=self.rc_average)

    def predict_on_batch(self, x: dict) -> np.ndarray:
        """Predicted log10(CAGE + 1), shape (batch,)."""
        return self.predict(x).expression.float().cpu().numpy()

    def predict_activation_on_batch(self, x: dict, layer: str, pre_nonlinearity: bool = False) -> dict:
        """``expression`` (batch,) and the learned ``mask`` (batch, length / N) for layer 'mask[:N][:gene]'."""
        request = mask_layer_of(layer, self.window)
        if request.gene_orientation and (not isinstance(x, dict) or "strand" not in x):
            raise ZooError(f"layer {layer!r} needs the gene's strand: the dataloader's `strand` input "
                           "(kipoi_seq2exp's Seq2Exp dataloader gives it). Fix: use that dataloader, or drop ':gene'.")
        out = self.predict(x)
        mask = out.mask.float().cpu().numpy()
        if request.gene_orientation:
            mask = in_gene_orientation(mask, x["strand"])
        return {"expression": out.expression.float().cpu().numpy(), "mask": bin_mask(mask, request.bin_size)}


def load_member(name_or_folder: str | os.PathLike, device: str | None = None) -> Member:
    """A member ready to predict, without Kipoi: a name of the shipped zoo (``Seq2Exp/K562`` or ``K562``)
    or an exported member folder (``seq2exp export --out DIR``).

    Its ``inputs(fasta, genes, tracks={"DNase": "x.bw"}, ...)`` reads the user's files for it, and
    ``predict`` / ``predict_activation_on_batch`` run it, as ``kipoi predict`` does.
    """
    path = Path(name_or_folder).expanduser()
    if path.is_dir():
        return Member(path, device=device)
    name = str(name_or_folder)
    group_dir = find_source_dir() / GROUP
    if f"{GROUP}/{name.removeprefix(GROUP + '/')}" not in member_names(group_dir):
        raise ZooError(f"{name!r} is neither a folder nor a member of the {GROUP} zoo ({member_names(group_dir)}). "
                       "Fix: give one of these names or the folder of an exported member (`seq2exp export --out`).")
    member_dir, row = member_row(name)
    check_member_dir(member_dir, row["train_config"], row["cell_type"])
    return Member(member_dir, f"{GROUP}/{row['model']}", rc_average=row["rc_average"] == "True", device=device)


__all__ = ["Member", "MemberSpec", "MaskLayer", "load_member", "load_member_model", "mask_layer_of",
           "in_gene_orientation", "bin_mask", "INPUT_NAMES", "MASK_LAYER"]

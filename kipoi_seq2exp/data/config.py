"""`DataConfig`: every file and choice the data layer needs, in one YAML-round-trippable object.

Unknown keys are errors (Kipoi and plain YAML silently ignore typos; a misspelt ``hic_fle`` would
otherwise train a model on the power-law fallback without anyone noticing).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..atomic import write_text_atomic
from ..config_io import check_field_types, read_yaml
from .errors import DataInputError
from .qc import MAX_N_FRACTION

TRACK_KINDS = ("bigwig", "hic")
TARGET_TRANSFORMS = ("log10p1", "none")
SPLITS = ("train", "valid", "test")

#: The 8 mRNA half-life features of Seq2Exp / EPInformer, in the order they enter the model.
MRNA_FEATURE_COLUMNS = (
    "UTR5LEN_log10zscore",
    "CDSLEN_log10zscore",
    "INTRONLEN_log10zscore",
    "UTR3LEN_log10zscore",
    "UTR5GC",
    "CDSGC",
    "UTR3GC",
    "ORFEXONDENSITY",
)


@dataclass
class TrackConfig:
    """One signal channel. ``path: null`` = absent: zeros for a bigWig, the power law for Hi-C."""

    name: str
    path: str | None = None
    kind: str = "bigwig"


@dataclass
class HicOptions:
    """How a Hi-C map becomes a per-base contact track (ABC-style, see ``hic.py``).

    ``powerlaw_scale`` is the natural-log intercept of ABC's fit, -4.80 + 11.63 * gamma = 5.3181
    for gamma 0.87: contact(d) = exp(scale) * (max(d, bin_size) + 1) ** -gamma, in the units of
    ABC's normalised 5-kb contact (0.12 at 5 kb, 0.0091 at 100 kb).
    """

    bin_size: int = 5000
    normalization: str = "VC"
    powerlaw_gamma: float = 0.87
    powerlaw_scale: float = 5.3181
    pseudocount: bool = True


@dataclass
class SplitConfig:
    """Train/valid/test assignment: by chromosome, or by a per-gene column of the gene table.

    With ``column`` set (e.g. ``fold_11`` or ``split``, values train/valid/test), the chromosome
    lists are ignored; this allows splits inside one chromosome.
    """

    valid_chroms: list[str] = field(default_factory=lambda: ["chr3", "chr21"])
    test_chroms: list[str] = field(default_factory=lambda: ["chr22", "chrX"])
    column: str | None = None


@dataclass
class JointCell:
    """A further cell type trained jointly with the main one (``DataConfig.joint_cells``).

    It shares the genes, FASTA, gene features and split; it has its own tracks (the same channel
    names, in the same order) and its own targets. Each gene then gives one example per cell.
    """

    name: str
    tracks: list[TrackConfig]
    expression: str | None = None


def paper_tracks(
    h3k27ac: str | None = None, dnase: str | None = None, hic: str | None = None
) -> list[TrackConfig]:
    """The paper's channels, in its order: [H3K27ac, DNase, Hi-C]."""
    return [
        TrackConfig("H3K27ac", h3k27ac, "bigwig"),
        TrackConfig("DNase", dnase, "bigwig"),
        TrackConfig("Hi-C", hic, "hic"),
    ]


def accessibility_tracks(dnase: str | None = None) -> list[TrackConfig]:
    """One accessibility channel (DNase-seq or ATAC-seq bigWig), e.g. for the real chr22 data."""
    return [TrackConfig("DNase", dnase, "bigwig")]


def _check_types(data: dict[str, Any]) -> None:
    """DataInputError naming the key for a value of the wrong type, nested sections included (the
    checks in `DataConfig.validate` would otherwise compare e.g. a quoted window with a number).
    null stands for the default, as `DataConfig.from_dict` reads it."""
    plain = {k: v for k, v in data.items() if v is not None and k != "joint_cells"}  # joint_cells: own message
    check_field_types(DataConfig, plain, "DataConfig", DataInputError)
    for key, cls in (("hic", HicOptions), ("split", SplitConfig)):
        if isinstance(data.get(key), dict):
            check_field_types(cls, data[key], f"DataConfig.{key}", DataInputError)
    for i, track in enumerate(data.get("tracks") or []):
        if isinstance(track, dict):
            check_field_types(TrackConfig, track, f"DataConfig.tracks[{i}]", DataInputError)


@dataclass
class DataConfig:
    """Files and choices for windows, signals, gene features, targets and the split.

    Attributes
    ----------
    fasta, gene_table
        Genome FASTA (plain or BGZF) and the gene table (gene_id, chrom, tss 0-based, strand).
    tracks
        Signal channels in model order; see `paper_tracks` and `accessibility_tracks`.
    mrna_features
        Table keyed by ``gene_id`` with ``mrna_columns``; ``None`` = zeros (with a warning).
    expression, expression_column, target_transform
        Target table (gene_id + value column); ``log10p1`` applies log10(x + 1) once, here.
    window
        L, bases per window [TSS - L/2, TSS + L/2).
    promoter_flank, promoter_tracks
        Promoter activity = geometric mean over the given tracks of the mean signal in
        TSS +/- flank (sqrt(H3K27ac x DNase) for the paper preset).
    cache_dir
        Where FASTA indexes are built when the FASTA's own folder is read-only.
    max_n_fraction
        Windows with a larger share of N bases are refused before anything is predicted (see
        `kipoi_seq2exp.data.qc`); windows over 20 % N or with an empty signal track are flagged.
    cell, joint_cells
        Name of the cell type the tracks and targets describe (items and predictions then carry it),
        and further cells trained jointly (see `JointCell`); `per_cell` gives one config per cell.
    """

    fasta: str
    gene_table: str
    tracks: list[TrackConfig] = field(default_factory=paper_tracks)
    hic: HicOptions = field(default_factory=HicOptions)
    mrna_features: str | None = None
    mrna_columns: list[str] = field(default_factory=lambda: list(MRNA_FEATURE_COLUMNS))
    expression: str | None = None
    expression_column: str = "expression"
    target_transform: str = "log10p1"
    window: int = 200_000
    promoter_flank: int = 1000
    promoter_tracks: list[str] = field(default_factory=lambda: ["H3K27ac", "DNase"])
    split: SplitConfig = field(default_factory=SplitConfig)
    cache_dir: str | None = None
    max_n_fraction: float = MAX_N_FRACTION
    cell: str = ""
    joint_cells: list[JointCell] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def track_names(self) -> list[str]:
        return [t.name for t in self.tracks]

    def validate(self) -> None:
        """Raise `DataInputError` on values that cannot work, naming the key."""
        if not isinstance(self.window, int) or self.window < 2 * self.promoter_flank:
            raise DataInputError(
                f"DataConfig.window = {self.window!r}: must be an integer >= 2 * promoter_flank "
                f"({2 * self.promoter_flank}) so that the promoter lies inside the window."
            )
        if not isinstance(self.max_n_fraction, (int, float)) or not 0 <= self.max_n_fraction <= 1:
            raise DataInputError(f"DataConfig.max_n_fraction = {self.max_n_fraction!r}: must be a number in [0, 1] "
                                 "(the largest share of N bases a window may have).")
        if self.target_transform not in TARGET_TRANSFORMS:
            raise DataInputError(
                f"DataConfig.target_transform = {self.target_transform!r}: use one of {TARGET_TRANSFORMS}."
            )
        names = self.track_names
        if len(set(names)) != len(names):
            raise DataInputError(f"DataConfig.tracks: duplicate track names in {names}; names must be unique.")
        for i, track in enumerate(self.tracks):
            if track.kind not in TRACK_KINDS:
                raise DataInputError(
                    f"DataConfig.tracks[{i}] ({track.name!r}).kind = {track.kind!r}: use one of {TRACK_KINDS}."
                )
        if sum(t.kind == "hic" for t in self.tracks) > 1:
            raise DataInputError("DataConfig.tracks: at most one track of kind 'hic' is supported.")
        if self.hic.bin_size <= 0:
            raise DataInputError(f"DataConfig.hic.bin_size = {self.hic.bin_size}: must be positive.")
        cells = [self.cell] + [c.name for c in self.joint_cells]
        if self.joint_cells and (not all(cells) or len(set(cells)) != len(cells)):
            raise DataInputError(
                f"DataConfig.cell = {self.cell!r}, joint_cells names {cells[1:]}: with joint_cells, name the main "
                "cell (e.g. cell: K562) and every joint cell, all distinct, so every example and prediction says "
                "which cell it is."
            )
        for i, cell in enumerate(self.joint_cells):
            for j, track in enumerate(cell.tracks):
                if track.kind not in TRACK_KINDS:
                    raise DataInputError(f"DataConfig.joint_cells[{i}] ({cell.name!r}).tracks[{j}] ({track.name!r}).kind"
                                         f" = {track.kind!r}: use one of {TRACK_KINDS}.")
            if [t.name for t in cell.tracks] != names:
                raise DataInputError(
                    f"DataConfig.joint_cells[{i}] ({cell.name!r}).tracks names {[t.name for t in cell.tracks]}: "
                    f"must equal data.tracks names {names}, in the same order (one model reads every cell)."
                )
            if (cell.expression is None) != (self.expression is None):
                raise DataInputError(
                    f"DataConfig.joint_cells[{i}] ({cell.name!r}).expression = {cell.expression!r}: set it exactly "
                    "when data.expression is set, so every cell has targets (or none has)."
                )

    def per_cell(self) -> list["DataConfig"]:
        """One single-cell config per cell: this one first, then each joint cell with its tracks and targets."""
        main = dataclasses.replace(self, joint_cells=[])
        return [main] + [dataclasses.replace(main, cell=c.name, tracks=c.tracks, expression=c.expression)
                         for c in self.joint_cells]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | os.PathLike | None = None) -> "DataConfig":
        """Build from a plain dict; unknown keys raise; relative paths resolve against ``base_dir``."""
        data = dict(data)
        _reject_unknown(data, cls, "DataConfig")
        _check_types(data)
        tracks = _tracks_from_dicts(data.pop("tracks", None), "DataConfig.tracks")
        joint = []
        cells = data.pop("joint_cells", None) or []
        if not isinstance(cells, list):
            raise DataInputError(f"DataConfig.joint_cells: expected a list of cells ({{name, tracks, expression}}), "
                                 f"got {cells!r}. Fix: write each cell as a list item ('- name: ...').")
        for i, cell in enumerate(cells):
            where = f"DataConfig.joint_cells[{i}]"
            _reject_unknown(cell, JointCell, where)
            if "name" not in cell:
                raise DataInputError(f"{where}: missing key 'name'. Fix: name the cell (e.g. name: GM12878).")
            cell = dict(cell)
            cell_tracks = _tracks_from_dicts(cell.pop("tracks", None), f"{where}.tracks")
            joint.append(JointCell(**cell, tracks=cell_tracks))
        nested = {}
        for key, sub in (("hic", HicOptions), ("split", SplitConfig)):
            if key in data:
                _reject_unknown(data[key] or {}, sub, f"DataConfig.{key}")
                nested[key] = sub(**(data.pop(key) or {}))
        if tracks or "tracks" in data:
            nested["tracks"] = tracks
        nested["joint_cells"] = joint
        config = cls(**data, **nested)
        if base_dir is not None:
            config = config.with_paths_relative_to(base_dir)
        return config

    def with_paths_relative_to(self, base_dir: str | os.PathLike) -> "DataConfig":
        """Copy with every relative file path joined to ``base_dir`` (the YAML file's folder)."""
        base = Path(base_dir)

        def resolve(p: str | None) -> str | None:
            return p if p is None or os.path.isabs(p) else str(base / p)

        return dataclasses.replace(
            self,
            fasta=resolve(self.fasta),
            gene_table=resolve(self.gene_table),
            mrna_features=resolve(self.mrna_features),
            expression=resolve(self.expression),
            tracks=[TrackConfig(t.name, resolve(t.path), t.kind) for t in self.tracks],
            cache_dir=resolve(self.cache_dir),
            joint_cells=[JointCell(c.name, [TrackConfig(t.name, resolve(t.path), t.kind) for t in c.tracks],
                                   resolve(c.expression)) for c in self.joint_cells],
        )

    def to_yaml(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a config."""
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "DataConfig":
        """Read a YAML written by `to_yaml` or by hand; relative paths are relative to the YAML file."""
        path = Path(path)
        data = read_yaml(path, DataInputError) or {}
        if not isinstance(data, dict):
            raise DataInputError(f"{path}: expected a mapping of DataConfig keys, got {type(data).__name__}.")
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except TypeError as err:  # a required key is missing
            raise DataInputError(f"{path}: {err}. Fix: add the key (see DataConfig).") from err


def _tracks_from_dicts(items: list[dict[str, Any]] | None, where: str) -> list[TrackConfig]:
    tracks = []
    for i, t in enumerate(items or []):
        _reject_unknown(t, TrackConfig, f"{where}[{i}]")
        tracks.append(TrackConfig(**t))
    return tracks


def _reject_unknown(data: dict[str, Any], cls: type, where: str) -> None:
    if not isinstance(data, dict):
        raise DataInputError(f"{where}: expected a mapping, got {data!r}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataInputError(
            f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}. Fix the spelling or remove them."
        )


#: ``signals`` names -> (channel name, kind, constructor argument holding its file).
SIGNAL_CHOICES = {
    "h3k27ac": ("H3K27ac", "bigwig", "h3k27ac_bigwig"),
    "dnase": ("DNase", "bigwig", "dnase_bigwig"),
    "hic": ("Hi-C", "hic", "hic_file"),
}


def parse_signals(signals: str, files: dict[str, str | None]) -> list[TrackConfig]:
    """Channels from a comma list such as "h3k27ac,dnase,hic" (order kept), with their files."""
    names = [s.strip().lower() for s in signals.split(",") if s.strip()]
    unknown = [n for n in names if n not in SIGNAL_CHOICES]
    if unknown or not names or len(set(names)) != len(names):
        raise DataInputError(
            f"signals = {signals!r}: give distinct names from {list(SIGNAL_CHOICES)}, comma-separated, "
            f"in the model's channel order (e.g. 'h3k27ac,dnase,hic' or 'dnase')."
        )
    tracks = []
    for name in names:
        channel, kind, argument = SIGNAL_CHOICES[name]
        tracks.append(TrackConfig(channel, files[argument], kind))
    return tracks

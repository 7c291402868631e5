"""Simulation parameters: one frozen dataclass per concern, read from and written to YAML.

Every value lives in the YAML file (the shipped one is ``resources/sim/params.yaml``); the
dataclasses carry no defaults, so there is exactly one place where a number is set.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config_io import read_yaml

Range = tuple[int, int]
LogNormal = tuple[float, float]


@dataclass(frozen=True)
class LayoutParams:
    """Chromosomes as runs of TAD-like domains holding one or two genes each."""

    bin_size: int  # Hi-C resolution (bp); domain boundaries sit on bin edges
    flank_bins: int  # gene-free domain at each chromosome end
    two_gene_tad_probability: float
    one_gene_tad_bins: Range  # inclusive range of domain sizes, in bins
    two_gene_tad_bins: Range
    tss_boundary_margin: int  # least distance (bp) from a TSS to its domain's boundaries
    min_tss_spacing: int  # least distance (bp) between the two TSSs of a two-gene domain


@dataclass(frozen=True)
class ElementParams:
    """Where candidate elements go and how many of each kind a gene gets."""

    promoter_half_width: int
    length: Range  # distal element length (bp), inclusive
    tss_distance: Range  # distance (bp) of a distal element's centre from its host TSS
    min_gap: int  # least spacing (bp) between two elements
    centre_exclusion: int  # no distal element within this distance (bp) of any TSS
    mean_per_gene: dict[str, float]  # Poisson means for enhancer, closed_motif, open_inert
    max_per_gene: int
    insulator_length: int


@dataclass(frozen=True)
class MotifParams:
    """Which JASPAR motifs do what in the simulated cell type."""

    activator_weights: dict[str, float]  # JASPAR id -> strength one site adds
    enhancer_motifs: tuple[str, ...]
    enhancer_sites: Range
    promoter_motif: str
    promoter_sites: Range
    inert_motifs: tuple[str, ...]
    inert_sites: Range
    insulator_motif: str
    pseudocount: float  # added to each count, as a fraction of the column total
    planted_min_relative_score: float
    scrub_relative_score: float


@dataclass(frozen=True)
class SequenceParams:
    gc_content: float
    softmask_fraction: float
    softmask_run_length: Range
    telomere_n: int


@dataclass(frozen=True)
class ChromatinParams:
    """Openness (DNase) and acetylation (H3K27ac) of elements, as ln-normal (mu, sigma)."""

    enhancer_openness: LogNormal  # shared by open_inert decoys, so signal alone cannot tell them apart
    insulator_openness: LogNormal
    promoter_openness: LogNormal
    promoter_closed_probability: float
    acetylation: LogNormal
    insulator_acetylation_factor: float


@dataclass(frozen=True)
class TrackParams:
    bin_length: int
    decimals: int
    dnase_peak_height: float
    dnase_background_mean: float
    h3k27ac_peak_height: float
    h3k27ac_flank_offset: int
    h3k27ac_flank_sd: int
    h3k27ac_background_mean: float
    background_gamma_shape: float


@dataclass(frozen=True)
class HicParams:
    diagonal_count: float
    distance_exponent: float
    insulation: float  # contact factor between bins of different domains
    max_distance_bins: int


@dataclass(frozen=True)
class ExpressionParams:
    contact_d0: int
    contact_exponent: float
    enhancer_gain: float
    promoter_floor: float
    scale: float
    noise_sd: float
    feature_effects: dict[str, float]  # log10 units per standard deviation of the feature


@dataclass(frozen=True)
class MrnaFeatureParams:
    """Marginal quantiles + Gaussian-copula correlation of the 8 mRNA half-life features."""

    origin: str
    columns: tuple[str, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...]
    quantile_probabilities: tuple[float, ...]
    quantiles: dict[str, tuple[float, ...]]
    copula_correlation: tuple[tuple[float, ...], ...]
    decimals: int


@dataclass(frozen=True)
class SimParams:
    seed: int
    creation_date: str  # written into the .cool so that regeneration is byte-identical
    motifs_file: str  # relative to the params file
    genes_per_chromosome: dict[str, int]
    layout: LayoutParams
    elements: ElementParams
    motifs: MotifParams
    sequence: SequenceParams
    chromatin: ChromatinParams
    tracks: TrackParams
    hic: HicParams
    expression: ExpressionParams
    mrna_features: MrnaFeatureParams


def load_params(path: str | Path) -> SimParams:
    """Read and validate a simulation params YAML; unknown or missing keys are errors."""
    path = Path(path)
    raw = read_yaml(path)
    params = _build(SimParams, raw, f"{path}")
    _check_consistency(params, path)
    return params


def params_to_yaml(params: SimParams) -> str:
    """The YAML text that ``load_params`` reads back into an equal object (comments are not kept)."""
    return yaml.safe_dump(_plain(dataclasses.asdict(params)), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    missing = [name for name in names if name not in raw]
    if unknown or missing:
        raise ValueError(
            f"{where}: unknown keys {unknown} / missing keys {missing}; "
            f"copy the shipped kipoi_seq2exp/resources/sim/params.yaml and edit its values")
    return cls(**{name: _convert(hints[name], raw[name], f"{where}.{name}") for name in names})


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return {str(key): _convert(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], item, where) for item in value)
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_convert(arg, item, where) for arg, item in zip(args, value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected text, got {value!r}")
        return value
    if isinstance(hint, types.GenericAlias):
        raise TypeError(f"{where}: unsupported field type {hint}")
    return value


def _check_consistency(params: SimParams, path: Path) -> None:
    kinds = {"enhancer", "closed_motif", "open_inert"}
    if set(params.elements.mean_per_gene) != kinds:
        raise ValueError(f"{path}: elements.mean_per_gene must have exactly the keys {sorted(kinds)}")
    features = params.mrna_features
    if set(params.expression.feature_effects) != set(features.columns):
        raise ValueError(f"{path}: expression.feature_effects must name exactly the mrna_features.columns")
    if set(features.quantiles) != set(features.columns):
        raise ValueError(f"{path}: mrna_features.quantiles must name exactly the mrna_features.columns")
    if params.layout.bin_size % params.tracks.bin_length:
        raise ValueError(f"{path}: layout.bin_size must be a multiple of tracks.bin_length")
    if params.sequence.telomere_n % params.tracks.bin_length:
        raise ValueError(f"{path}: sequence.telomere_n must be a multiple of tracks.bin_length")
    for motif in params.motifs.enhancer_motifs + (params.motifs.promoter_motif,):
        if motif not in params.motifs.activator_weights:
            raise ValueError(f"{path}: motif {motif} is used in enhancers/promoters but has no "
                             f"motifs.activator_weights entry")

"""One configuration object for the Seq2Exp model, with YAML round-trip and the paper's presets.

Our names differ from the authors' (``GeneBiMambaMIRNP`` config keys); the mapping is::

    d_model            <- d_model            n_layers_generator <- gen_n_layer
    n_layers_predictor <- enc_n_layer        window             <- seq_range
    centre             <- center_len         shared_backbone    <- enc_prd_ps
    positional_embedding <- pos_enc          generator_reads_signals <- enc_prd_ps (hard)
    signals[i].constant <- prior_beta[i]     signals[i].weight  <- prior_weight[i] (normalised)
    signal_scale       <- prior_scale_factor beta_min           <- beta_min
    prior_mean         <- marginal_mean      prior_scale        <- marginal_scale
    mask_threshold     <- sample_threshold   variant "hard"     <- post_hard_dist
    d_state, d_conv, expand, dt_rank, dt_min, dt_max, dt_init_floor <- ssm_cfg
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args

import yaml

from ..atomic import write_text_atomic
from ..config_io import check_field_types, check_instance_types, read_yaml

Variant = Literal["soft", "hard"]
Combine = Literal["released", "paper"]
HardGradient = Literal["released", "straight_through"]
Transform = Literal["none", "log10p1"]
TRANSFORMS = get_args(Transform)
Normalise = Literal["none", "depth"]
NORMALISATIONS = get_args(Normalise)
Readout = Literal["centre", "window", "sum"]
READOUTS = get_args(Readout)
MaskGate = Literal["input", "every_layer"]
MASK_GATES = get_args(MaskGate)
PredictorDna = Literal["everywhere", "centre"]
PREDICTOR_DNA = get_args(PredictorDna)
SumContribution = Literal["predictor", "signals"]
SUM_CONTRIBUTIONS = get_args(SumContribution)
SumJoin = Literal["head", "additive"]
SUM_JOINS = get_args(SumJoin)


@dataclass
class SignalTrack:
    """One epigenomic signal channel and its Beta prior: alpha = (x + beta_min) * scale,
    beta = (constant + beta_min) * scale; ``weight`` is its share in the weighted sum.

    ``transform`` is applied to the raw track first, inside the model: ``none`` (the paper's
    fold-change-scale bigWigs) or ``log10p1`` for read-count pileups (1..358 per base on real
    chr22), which would otherwise saturate the signal Beta and the signal embedding.

    ``normalise: depth`` rescales each input file to the training file's sequencing depth before
    the transform: x * reference_depth / file_depth, with depth = mean signal per covered base
    (the data layer reads it from the file's header). A shallower library of the same cell then
    gives the same inputs. ``reference_depth`` is filled in from the training file when a run
    starts (0 = not yet known) and travels with the member.
    """

    name: str
    constant: float
    weight: float
    transform: Transform = "none"
    normalise: Normalise = "none"
    reference_depth: float = 0.0


PAPER_SIGNALS = (SignalTrack("h3k27ac", 1.5, 0.4), SignalTrack("dnase", 0.2, 0.4), SignalTrack("hic", 1.0, 0.2))
ACCESSIBILITY_SIGNALS = (SignalTrack("dnase", 0.2, 1.0),)


@dataclass
class ModelConfig:
    """Everything that decides the Seq2Exp architecture and its loss; see the module docstring
    for the authors' names of each field."""

    variant: Variant = "soft"
    combine: Combine = "released"
    hard_gradient: HardGradient = "released"
    d_model: int = 128
    n_layers_generator: int = 4
    n_layers_predictor: int = 4
    shared_backbone: bool = False
    positional_embedding: bool = False
    generator_reads_signals: bool = False
    rc_equivariant: bool = False
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 0
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    norm_eps: float = 1e-5
    window: int = 200_000
    centre: int = 2_000
    signals: list[SignalTrack] = field(default_factory=lambda: [dataclasses.replace(s) for s in PAPER_SIGNALS])
    signal_scale: float = 10.0
    beta_min: float = 1.0
    prior_mean: float = 0.1
    prior_scale: float = 10.0
    mask_threshold: float = 0.5
    n_gene_features: int = 9
    #: applied to the last gene feature (promoter activity, raw track units) inside the model
    promoter_transform: Transform = "none"
    kl_weight: float = 0.01
    init_residual_layers: int = 64
    #: recompute each backbone block in the backward pass (training memory ~ O(layers x L x d_model))
    activation_checkpointing: bool = False
    #: bases per token. 1 = the authors' per-base model. > 1: the DNA goes through a convolutional
    #: stem max-pooled to window / resolution tokens (signals averaged per token), the backbones run
    #: on tokens and the mask is learned per token (repeated to bases in the outputs): the backbone
    #: then spans the whole window (diagnosis in README, "Why the mask did not learn")
    resolution: int = 1
    #: width (bp) of the stem's motif filters (resolution > 1); JASPAR sites are 8-20 bp
    stem_kernel: int = 15
    #: "" (random filters) or a JASPAR count-matrix JSON ("embedded": the motif file shipped with the
    #: simulated genome) whose motifs, both strands, start the stem's first filters as scanners that
    #: fire on sites scoring >= 0.75 of the best (the rest stay random; all keep training). Read only
    #: when the model is built; the weights then travel in the member. From one scalar per gene a
    #: random stem does not find the motifs within a CPU budget (README, "Why the mask did not learn")
    stem_motifs: str = ""
    #: "centre": mean predictor output over the central bases (the authors'); "window": also the
    #: mask-weighted mean over the whole window, so a selected distal element reaches the head directly;
    #: "sum": also log(1 + sum over tokens of mask x a non-negative contribution read from each token),
    #: the additive form of enhancer models (ABC: activity x contact), in ``sum_channels`` channels
    readout: Readout = "centre"
    sum_channels: int = 4
    #: what each token's non-negative contribution to the ``sum`` readout is read from.
    #: "predictor": the predictor's output at that token (a bidirectional scan over the window, so
    #: it can read motifs and memorise genes itself). "signals": exp(linear(the token's own
    #: signals) + a learned bias per position in the window), the ABC form activity x contact; the
    #: mask is then the ONLY way distal sequence reaches the prediction, and with one scalar per gene
    #: it is what the generator must learn (README, "Why the mask did not learn", finding 5)
    sum_contribution: SumContribution = "predictor"
    #: how the ``sum`` readout reaches the expression. "head": an input of the MLP head beside the
    #: centre readout, which may use it with either sign. "additive": expression = head(centre,
    #: gene features) + sum_c softplus(slope_c) log(1 + sum_t mask_t contribution_tc), with the
    #: ``signals`` contribution's signal weights >= 0 too: a kept element can only add expression,
    #: so the mask cannot come to mean "not an element" (it did: README, finding 5)
    sum_join: SumJoin = "head"
    #: hard variant: the predictor reads only the selected tokens, compacted (the authors'). False:
    #: it reads every token times the 0/1 mask, so an unselected token still gets the straight-through
    #: gradient and can be switched back on (compacted, it never sees one again: the mask collapses)
    compact_selected: bool = True
    #: where the predictor applies the mask. "input": to its input tokens (the authors'); every
    #: block's pre-norm RMSNorm then divides a per-token soft mask out again, so the soft mask
    #: barely gates anything (README, "Why the mask did not learn"). "every_layer": also to each
    #: block's normalised input, so a token the mask lowers really contributes less to every scan
    mask_gate: MaskGate = "input"
    #: training only, with mask_gate every_layer: what the mask takes away is replaced by standard
    #: normal noise, m x + (1 - m) eps (the information bottleneck of Schulz et al., ICLR 2020). Without
    #: it a uniformly lowered mask loses nothing (the norms rescale it) and the generator is redundant:
    #: the predictor reads every token itself, and any KL flattens the generator (README)
    mask_noise: bool = False
    #: "everywhere" (the authors'): the predictor reads DNA + signal embeddings of every token.
    #: "centre": it reads the DNA only in the forced centre (the promoter), elsewhere the signals
    #: alone, so distal sequence reaches the prediction only through the mask: the generator is
    #: the only way to use it (README, cause 3)
    predictor_dna: PredictorDna = "everywhere"
    #: > 0: the loss also charges budget_weight x max(0, mean mask outside the centre - mask_budget),
    #: a sparsity budget on the whole mask that, unlike the per-base KL to a fixed prior, costs
    #: nothing for WHERE the mask is high (use with kl_weight 0; README, cause 3)
    mask_budget: float = 0.0
    budget_weight: float = 1.0
    #: 0: the generator's Beta is (softplus(l1) + beta_min, softplus(l0) + beta_min) (the authors').
    #: > 0: its mean is sigmoid(l1 - l0) at this fixed concentration, so it cannot buy a less noisy
    #: mask sample by inflating both logits, which dilutes its own position-to-position variation
    generator_concentration: float = 0.0

    def __post_init__(self) -> None:
        check_instance_types(self, "invalid model config")  # before validate() compares a '64' with 0
        self.signals = [s if isinstance(s, SignalTrack) else _signal_from_dict(s, i) for i, s in enumerate(self.signals)]
        self.validate()

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def resolved_dt_rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)

    @property
    def n_signals(self) -> int:
        return len(self.signals)

    @property
    def prior_alpha_beta(self) -> tuple[float, float]:
        """Beta prior of the mask with the configured mean and scale (alpha = scale)."""
        return self.prior_scale, self.prior_scale * (1 - self.prior_mean) / self.prior_mean

    @property
    def centre_slice(self) -> slice:
        """The forced centre in bases."""
        start = (self.window - self.centre) // 2
        return slice(start, start + self.centre)

    @property
    def n_tokens(self) -> int:
        return self.window // self.resolution

    @property
    def token_centre_slice(self) -> slice:
        """The forced centre in tokens (= centre_slice at resolution 1)."""
        start = (self.n_tokens - self.centre // self.resolution) // 2
        return slice(start, start + self.centre // self.resolution)

    @property
    def depth_normalised(self) -> bool:
        return any(s.normalise == "depth" for s in self.signals)

    def validate(self) -> None:
        checks = [
            (self.variant in ("soft", "hard"), f"variant must be 'soft' or 'hard', got {self.variant!r}"),
            (self.combine in ("released", "paper"), f"combine must be 'released' or 'paper', got {self.combine!r}"),
            (self.hard_gradient in ("released", "straight_through"),
             f"hard_gradient must be 'released' or 'straight_through', got {self.hard_gradient!r}"),
            (self.d_model > 0 and self.n_layers_generator > 0, "d_model and n_layers_generator must be positive"),
            (self.shared_backbone or self.n_layers_predictor > 0, "n_layers_predictor must be positive"),
            (0 < self.centre <= self.window, f"centre ({self.centre}) must lie in (0, window={self.window}]"),
            (len(self.signals) > 0, "at least one signal track is needed"),
            (all(s.weight > 0 for s in self.signals), "signal weights must be positive"),
            *[(s.transform in TRANSFORMS, f"signals[{i}] ({s.name}).transform = {s.transform!r}: use one of {TRANSFORMS}")
              for i, s in enumerate(self.signals)],
            *[(s.normalise in NORMALISATIONS and s.reference_depth >= 0,
               f"signals[{i}] ({s.name}): normalise = {s.normalise!r}, reference_depth = {s.reference_depth}: "
               f"use one of {NORMALISATIONS} and a depth >= 0") for i, s in enumerate(self.signals)],
            (self.resolution >= 1 and self.window % self.resolution == 0 and self.centre % self.resolution == 0
             and (self.window - self.centre) % (2 * self.resolution) == 0,
             f"resolution ({self.resolution}) must be >= 1 and divide window ({self.window}), centre ({self.centre}) "
             "and each flank (window - centre) / 2, so the forced centre falls on whole tokens"),
            (self.resolution == 1 or self.stem_kernel >= 1, f"stem_kernel = {self.stem_kernel}: must be >= 1"),
            (self.readout in READOUTS, f"readout = {self.readout!r}: use one of {READOUTS}"),
            (self.mask_gate in MASK_GATES, f"mask_gate = {self.mask_gate!r}: use one of {MASK_GATES}"),
            (not self.mask_noise or self.mask_gate == "every_layer", "mask_noise needs mask_gate: every_layer"),
            (self.variant == "soft" or not self.compact_selected or self.mask_gate == "input",
             "mask_gate every_layer acts on every token: with the hard variant set compact_selected: false"),
            (self.sum_contribution in SUM_CONTRIBUTIONS,
             f"sum_contribution = {self.sum_contribution!r}: use one of {SUM_CONTRIBUTIONS}"),
            (self.sum_contribution == "predictor" or (self.readout == "sum" and (self.variant == "soft" or not self.compact_selected)),
             "sum_contribution: signals needs readout: sum and every token in place (soft, or hard with compact_selected: false)"),
            (self.sum_join in SUM_JOINS, f"sum_join = {self.sum_join!r}: use one of {SUM_JOINS}"),
            (self.sum_join == "head" or self.readout == "sum", "sum_join: additive needs readout: sum"),
            (not self.stem_motifs or self.resolution > 1, "stem_motifs needs resolution > 1 (a DNA stem)"),
            (self.predictor_dna in PREDICTOR_DNA, f"predictor_dna = {self.predictor_dna!r}: use one of {PREDICTOR_DNA}"),
            (self.generator_concentration >= 0, "generator_concentration must be >= 0 (0 = the authors' softplus)"),
            (0 <= self.mask_budget < 1 and self.budget_weight >= 0,
             f"mask_budget = {self.mask_budget}, budget_weight = {self.budget_weight}: need 0 <= mask_budget < 1 "
             "(0 = off) and budget_weight >= 0"),
            (not (self.predictor_dna == "centre" and self.shared_backbone),
             "predictor_dna: centre needs separate generator and predictor backbones (shared_backbone: false)"),
            (not (self.rc_equivariant and self.resolution > 1), "rc_equivariant needs resolution 1 (the stem is not RC-shared)"),
            (self.promoter_transform in TRANSFORMS,
             f"promoter_transform = {self.promoter_transform!r}: use one of {TRANSFORMS}"),
            (0 < self.prior_mean < 1 and self.prior_scale > 0, "prior_mean must be in (0, 1), prior_scale > 0"),
            (not (self.rc_equivariant and self.d_model % 2), "rc_equivariant needs an even d_model"),
            (not (self.rc_equivariant and (self.positional_embedding or self.variant == "hard")),
             "rc_equivariant is only defined for the soft variant without positional embedding"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid model config: {message}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model config") -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        try:
            return cls(**data)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from err

    def to_yaml(self, path: Union[str, Path]) -> None:
        """Write the config as YAML atomically: a member's config.yaml is never seen half written."""
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> "ModelConfig":
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of ModelConfig keys, got {type(data).__name__}. "
                             "Fix: write one `key: value` per line (see ModelConfig).")
        if "model" in data and isinstance(data["model"], dict) and len(data) == 1:
            data = data["model"]
        return cls.from_dict(data, source=str(path))


def _signal_from_dict(data: dict[str, Any], index: int) -> SignalTrack:
    known = {f.name for f in dataclasses.fields(SignalTrack)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"signal track: unknown key(s) {unknown}; valid keys are {sorted(known)}")
    check_field_types(SignalTrack, data, f"invalid model config: signals[{index}]")
    return SignalTrack(**data)


def paper_soft(**overrides: Any) -> ModelConfig:
    """The released soft model: two backbones, DNA-only generator, b_min 1, scale 10, prior Beta(10, 90)."""
    return ModelConfig(**{**dict(variant="soft", activation_checkpointing=True), **overrides})


def paper_hard(**overrides: Any) -> ModelConfig:
    """The released hard model: one shared backbone with a learned positional embedding, generator reads
    DNA + position + signals, b_min 0, scale 1, prior mean 0.45 scale 0.1 (Beta(0.1, 0.1222))."""
    base = dict(variant="hard", activation_checkpointing=True, shared_backbone=True, positional_embedding=True, generator_reads_signals=True,
                signal_scale=1.0, beta_min=0.0, prior_mean=0.45, prior_scale=0.1)
    return ModelConfig(**{**base, **overrides})


def tiny(variant: Variant = "soft", **overrides: Any) -> ModelConfig:
    """A small configuration for tests and demos (the authors' fixture size: d 16, 2+2 layers, 6 kb)."""
    small = dict(d_model=16, n_layers_generator=2, n_layers_predictor=2, dt_rank=4, window=6_000)
    return (paper_hard if variant == "hard" else paper_soft)(**{**small, **overrides})


def cpu_soft(**overrides: Any) -> ModelConfig:
    """Seq2Exp sized and shaped to train on a CPU (README, "Why the mask did not learn", has the
    ablation): 50-bp tokens from a motif stem (reach: the backbones span the window), the sum readout
    (every selected element adds to the head's input), and a signal Beta of concentration ~1 instead
    of ~10. 20-kb windows, d 64, 2 + 2 layers."""
    base = dict(variant="soft", d_model=64, n_layers_generator=2, n_layers_predictor=2, window=20_000, centre=2_000,
                resolution=50, stem_kernel=15, readout="sum", signal_scale=1.0, beta_min=1.0)
    return ModelConfig(**{**base, **overrides})


def cpu_hard(**overrides: Any) -> ModelConfig:
    """The hard 0/1 mask on :func:`cpu_soft`'s tokens with the straight-through gradient (the
    authors' hard model stops it before the mask head), every token read times its 0/1 value; as the
    authors' hard model, the generator reads DNA + signals and the prior is Beta(0.1, 0.12)."""
    hard = dict(variant="hard", hard_gradient="straight_through", compact_selected=False, generator_reads_signals=True,
                prior_mean=0.45, prior_scale=0.1)
    return cpu_soft(**{**hard, **overrides})


def cpu_motif_soft(**overrides: Any) -> ModelConfig:
    """:func:`cpu_soft` with a mask that finds the elements (README, "Why the mask did not learn",
    finding 5): the stem starts as scanners of the shipped JASPAR motifs, the mask comes from the DNA
    (signal Beta x0.01) and is the only way distal sequence reaches the prediction, each kept token
    adds exp(w . signals + contact) with w >= 0, and that sum adds to the expression with a positive
    slope; no KL, a budget of 10 % of the window outside the centre instead."""
    recipe = dict(stem_motifs="embedded", stem_kernel=17, predictor_dna="centre", signal_scale=0.01, kl_weight=0.0,
                  sum_contribution="signals", sum_join="additive", mask_budget=0.1)
    return cpu_soft(**{**recipe, **overrides})


PRESETS = {"paper_soft": paper_soft, "paper_hard": paper_hard,
           "tiny_soft": lambda **kw: tiny("soft", **kw), "tiny_hard": lambda **kw: tiny("hard", **kw),
           "cpu_soft": cpu_soft, "cpu_hard": cpu_hard, "cpu_motif_soft": cpu_motif_soft}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """A named preset (``paper_soft``, ``paper_hard``, ``tiny_soft``, ``tiny_hard``, ``cpu_soft``,
    ``cpu_hard``) with overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](**overrides)

"""Seq2Exp (Su, Yu, Zhi, Ji, ICLR 2025), read top to bottom as in the paper's section 4:

1. generator: a Caduceus backbone reads the DNA (hard: + position + signals) and gives each base a
   Beta(alpha1, beta1) over "this base is a regulatory element";
2. mask distribution: the epigenomic signals give a second Beta per base; the two combine into the
   mask Beta (``released``: additive weighted sum; ``paper``: product of densities, Proposition 2);
   training draws a reparameterised sample, inference takes the mean; ``hard`` thresholds at 0.5
   with a straight-through gradient; blacklisted bases are dropped and the central 2 kb kept;
3. predictor: a Caduceus backbone reads the masked embeddings (hard: only the selected bases, in
   order), its output over the central 2 kb is averaged, joined with 9 gene features, and an MLP
   predicts log expression;
4. loss: smooth-L1 + kl_weight x KL(mask Beta || prior Beta), averaged over all bases.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.memory import reuse_freed_memory
from .caduceus import build_backbone, reverse_complement
from .config import ModelConfig
from .mamba import BiMamba, MambaDirection, init_mamba_direction_, init_out_proj_
from .stem import DnaStem, any_per_token, bin_mean, motif_filters, to_bases

EPS = 1e-8
#: positions (bases, or tokens at resolution > 1) from which activations are large enough for
#: allocator reuse to pay (ops/memory.py)
LONG_WINDOW = 50_000


@dataclass
class Seq2ExpOutput:
    """What one forward pass computes. Shapes: expression (batch,); mask, alpha, beta, post_alpha,
    post_beta (batch, length), per base (a token's value on each of its bases when resolution > 1);
    kl a scalar (unweighted, mean over batch and tokens = bases at resolution 1)."""

    expression: Tensor
    mask: Tensor
    alpha: Tensor
    beta: Tensor
    post_alpha: Tensor
    post_beta: Tensor
    kl: Tensor
    details: Optional[dict[str, Tensor]] = None

    @property
    def mask_ratio(self) -> Tensor:
        """Fraction of the window selected (soft: summed soft values), per example, as in the paper."""
        return self.mask.mean(dim=-1)


@dataclass
class LossTerms:
    total: Tensor
    prediction: Tensor
    kl: Tensor
    budget: Tensor  # mask-budget excess (0 unless cfg.mask_budget > 0)


def beta_kl(alpha: Tensor, beta: Tensor, prior_alpha: float, prior_beta: float) -> Tensor:
    """Closed-form KL(Beta(alpha, beta) || Beta(prior_alpha, prior_beta)), elementwise."""
    a0 = torch.as_tensor(prior_alpha, dtype=alpha.dtype, device=alpha.device)
    b0 = torch.as_tensor(prior_beta, dtype=alpha.dtype, device=alpha.device)
    log_b = torch.lgamma(alpha) + torch.lgamma(beta) - torch.lgamma(alpha + beta)
    log_b0 = torch.lgamma(a0) + torch.lgamma(b0) - torch.lgamma(a0 + b0)
    return (log_b0 - log_b + (alpha - a0) * torch.digamma(alpha) + (beta - b0) * torch.digamma(beta)
            + (a0 - alpha + b0 - beta) * torch.digamma(alpha + beta))


def sample_beta(alpha: Tensor, beta: Tensor) -> Tensor:
    """A reparameterised Beta sample, drawn in float32: PyTorch's Dirichlet sampler has no
    bfloat16/float16 kernel, so ``precision: bf16-mixed`` would otherwise fail on the CPU."""
    if alpha.dtype in (torch.float32, torch.float64):
        return torch.distributions.Beta(alpha, beta).rsample()
    with torch.autocast(alpha.device.type, enabled=False):
        return torch.distributions.Beta(alpha.float(), beta.float()).rsample().to(alpha.dtype)


class Seq2Exp(nn.Module):
    """Seq2Exp model (``released`` architecture by default; see :class:`ModelConfig`).

    Inputs of :meth:`forward`: ``seq`` (batch, length, 4) one-hot A, C, G, T (N = zeros);
    ``signals`` (batch, length, n_signals) non-negative, channel order of ``cfg.signals``;
    ``gene_features`` (batch, 9); optional ``blacklist`` (batch, length) bool; optional
    ``signal_depth`` (batch, n_signals): each input file's depth, read by tracks with
    ``normalise: depth`` (None = the inputs are at the reference depth already).

    With ``cfg.resolution`` R > 1 everything between the inputs and the outputs runs on
    length / R tokens (``stem.py``); the outputs are per base again.
    """

    def __init__(self, cfg: ModelConfig, initialise: bool = True) -> None:
        """``initialise`` False: the caller loads every weight right after (an export, a checkpoint), so
        the released initialisation is skipped, and with it reading a ``stem_motifs`` file that need
        not exist where a trained member is loaded."""
        super().__init__()
        self.cfg = cfg
        embed_width = cfg.d_model // 2 if cfg.rc_equivariant else cfg.d_model
        self.dna_embed = (nn.Linear(4, embed_width) if cfg.resolution == 1
                          else DnaStem(embed_width, cfg.stem_kernel, cfg.resolution))
        self.signal_embed = nn.Linear(cfg.n_signals, embed_width)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.n_tokens, cfg.d_model)) if cfg.positional_embedding else None
        self.generator = build_backbone(cfg, cfg.n_layers_generator)
        self.predictor = self.generator if cfg.shared_backbone else build_backbone(cfg, cfg.n_layers_predictor)
        # Strand-folded features (rc_equivariant) are half as wide: the heads read embed_width.
        self.mask_head = nn.Linear(embed_width, 2)
        additive = cfg.sum_join == "additive"
        readout_width = embed_width + {"centre": 0, "window": embed_width, "sum": 0 if additive else cfg.sum_channels}[cfg.readout]
        from_signals = cfg.sum_contribution == "signals"
        self.contribution = (nn.Linear(cfg.n_signals if from_signals else embed_width, cfg.sum_channels)
                             if cfg.readout == "sum" else None)
        self.contact_bias = nn.Parameter(torch.zeros(cfg.n_tokens, cfg.sum_channels)) if from_signals else None
        self.sum_slope = nn.Parameter(torch.zeros(cfg.sum_channels)) if additive else None  # softplus(0) = 0.69
        self.head = nn.Sequential(nn.Linear(readout_width + cfg.n_gene_features, cfg.d_model), nn.ReLU(),
                                  nn.Linear(cfg.d_model, cfg.d_model), nn.ReLU(), nn.Linear(cfg.d_model, 1))
        weights = torch.tensor([s.weight for s in cfg.signals], dtype=torch.float32)
        self.register_buffer("signal_logit_weights", torch.log(weights / weights.sum()))
        self.register_buffer("signal_constants", torch.tensor([s.constant for s in cfg.signals], dtype=torch.float32))
        if initialise:
            self.reset_parameters()

    # ------------------------------------------------------------------ initialisation
    def reset_parameters(self) -> None:
        """The released initialisation: Linear biases zero (except dt_proj), mamba-ssm's dt/A/D
        init, out_proj kaiming / sqrt(init_residual_layers), positional embedding zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, MambaDirection):
                module.conv1d.reset_parameters()
                init_mamba_direction_(module, self.cfg)
            elif isinstance(module, BiMamba):
                init_out_proj_(module, self.cfg)
        if self.pos_embed is not None:
            nn.init.zeros_(self.pos_embed)
        if self.contribution is not None:  # ~0.02 per token at init: the sum starts near log(1 + #tokens / 50)
            nn.init.constant_(self.contribution.bias, -4.0)
        if self.contact_bias is not None:
            nn.init.zeros_(self.contact_bias)
        if self.sum_slope is not None:
            nn.init.zeros_(self.sum_slope)
        if self.cfg.stem_motifs:
            self.dna_embed.start_as_motif_scanners(motif_filters(self.cfg.stem_motifs))

    # ------------------------------------------------------------------ inputs
    def check_inputs(self, seq: Tensor, signals: Tensor, gene_features: Tensor,
                     blacklist: Optional[Tensor] = None) -> None:
        """Raise ValueError, before any computation, on inputs the model cannot use."""
        cfg = self.cfg
        expected = {"seq": (seq, 4), "signals": (signals, cfg.n_signals)}
        for name, (x, channels) in expected.items():
            if not torch.is_tensor(x) or not x.is_floating_point():
                raise ValueError(f"{name} must be a floating-point tensor (batch, length, {channels}); "
                                 f"got {type(x).__name__} {getattr(x, 'dtype', '')}")
            if x.dim() != 3 or x.shape[1] != cfg.window or x.shape[2] != channels:
                raise ValueError(f"{name} must have shape (batch, {cfg.window}, {channels}) "
                                 f"(window from the model config); got {tuple(x.shape)}")
        batch = seq.shape[0]
        if signals.shape[0] != batch:
            raise ValueError(f"signals batch size {signals.shape[0]} differs from seq batch size {batch}")
        if gene_features.dim() != 2 or gene_features.shape != (batch, cfg.n_gene_features):
            raise ValueError(f"gene_features must have shape ({batch}, {cfg.n_gene_features}); "
                             f"got {tuple(gene_features.shape)}")
        for name, x in (("signals", signals), ("gene_features", gene_features)):
            if not torch.isfinite(x).all():
                raise ValueError(f"{name} contains NaN or inf; replace missing values by 0 before the model")
        if (signals < 0).any():
            channel = int((signals < 0).any(dim=1).any(dim=0).nonzero()[0])
            raise ValueError(f"signal channel {channel} ({cfg.signals[channel].name}) has negative values; "
                             "signals must be non-negative (raw coverage, log10(1 + contact))")
        if blacklist is not None and blacklist.shape != seq.shape[:2]:
            raise ValueError(f"blacklist must have shape {tuple(seq.shape[:2])}; got {tuple(blacklist.shape)}")

    # ------------------------------------------------------------------ 1. generator
    def embed(self, seq: Tensor, signals: Tensor) -> tuple[Tensor, Tensor]:
        """DNA (+ position) and signal embeddings, each (batch, length, d_model)."""
        if self.cfg.rc_equivariant:
            dna = self.dna_embed(seq)
            dna = torch.cat([dna, reverse_complement(self.dna_embed(reverse_complement(seq)))], dim=-1)
            sig = self.signal_embed(signals)
            sig = torch.cat([sig, reverse_complement(self.signal_embed(signals.flip(1)))], dim=-1)
            return dna, sig
        dna = self.dna_embed(seq)
        if self.pos_embed is not None:
            dna = dna + self.pos_embed
        return dna, self.signal_embed(signals)

    def fold_strands(self, hidden: Tensor) -> Tensor:
        """RC-equivariant features -> strand-invariant ones (sum of a half and the flipped other half)."""
        if not self.cfg.rc_equivariant:
            return hidden
        half = hidden.shape[-1] // 2
        return hidden[..., :half] + hidden[..., half:].flip(-1)

    def generator_beta(self, generator_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mask logits -> the generator's Beta(alpha1, beta1); logit channel 1 is alpha, 0 is beta."""
        logits = self.mask_head(self.fold_strands(generator_out))
        concentration = self.cfg.generator_concentration
        if concentration > 0:
            mean = torch.sigmoid(logits[..., 1] - logits[..., 0])
            return (concentration * mean + self.cfg.beta_min + EPS,
                    concentration * (1 - mean) + self.cfg.beta_min + EPS, logits)
        return (F.softplus(logits[..., 1]) + self.cfg.beta_min + EPS,
                F.softplus(logits[..., 0]) + self.cfg.beta_min + EPS, logits)

    def normalise_depth(self, signals: Tensor, gene_features: Tensor, signal_depth: Optional[Tensor]
                        ) -> tuple[Tensor, Tensor]:
        """Rescale ``normalise: depth`` tracks to the training file's depth (x reference / file depth);
        the promoter feature by the geometric mean of those factors. That assumes the promoter feature
        is computed from exactly these tracks (``data.promoter_tracks``), as in every packaged config.

        ``signal_depth`` None: the inputs are taken to be at the reference depth already.
        """
        channels = [i for i, s in enumerate(self.cfg.signals) if s.normalise == "depth"]
        if not channels or signal_depth is None:
            return signals, gene_features
        reference = torch.tensor([self.cfg.signals[i].reference_depth for i in channels],
                                 dtype=signals.dtype, device=signals.device)
        if (reference <= 0).any():
            raise ValueError("a track with normalise: depth has no reference_depth (0); it is set from the training "
                             "file when a run starts: train the model, or set model.signals[i].reference_depth")
        depth = signal_depth.to(signals.dtype)[:, channels]
        if not (torch.isfinite(depth).all() and (depth > 0).all()):
            raise ValueError(f"signal_depth must be positive and finite for the depth-normalised tracks; got {depth.tolist()}")
        factor = reference / depth  # (batch, k)
        signals = signals.clone()
        signals[..., channels] = signals[..., channels] * factor[:, None, :]
        promoter_factor = factor.log().mean(dim=1, keepdim=True).exp()
        gene_features = torch.cat([gene_features[:, :-1], gene_features[:, -1:] * promoter_factor], dim=1)
        return signals, gene_features

    def transform_inputs(self, signals: Tensor, gene_features: Tensor) -> tuple[Tensor, Tensor]:
        """Per-track and promoter-feature transforms of the config (identity for the paper presets).

        They live in the model, not the data layer, so a member's dataloader always hands over raw
        bigWig values and the model that was trained on log counts applies the same log itself.
        """
        logged = [i for i, s in enumerate(self.cfg.signals) if s.transform == "log10p1"]
        if logged:
            signals = signals.clone()
            signals[..., logged] = torch.log10(1 + signals[..., logged].clamp_min(0))
        if self.cfg.promoter_transform == "log10p1":
            gene_features = torch.cat([gene_features[:, :-1], torch.log10(1 + gene_features[:, -1:].clamp_min(0))], 1)
        return signals, gene_features

    # ------------------------------------------------------------------ 2. mask distribution
    @property
    def signal_weights(self) -> Tensor:
        return torch.softmax(self.signal_logit_weights, dim=0)

    def signal_beta(self, signals: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-channel signal Beta (alpha_i per base, beta_i constant) and their weighted sums."""
        cfg, w = self.cfg, self.signal_weights.to(signals.dtype)
        alpha_i = (signals + cfg.beta_min) * cfg.signal_scale
        beta_i = (self.signal_constants.to(signals.dtype) + cfg.beta_min) * cfg.signal_scale
        return alpha_i @ w, (beta_i * w).sum(), alpha_i

    def combine(self, post_alpha: Tensor, post_beta: Tensor, sig_alpha: Tensor, sig_beta: Tensor
                ) -> tuple[Tensor, Tensor]:
        """Mask Beta from the generator's and the signals' Betas."""
        if self.cfg.combine == "released":
            return post_alpha + sig_alpha, post_beta + sig_beta
        alpha, beta = post_alpha + sig_alpha - 1, post_beta + sig_beta - 1
        if (alpha <= 0).any() or (beta <= 0).any():
            raise ValueError("the paper's product-of-Betas rule needs alpha1 + alpha2 > 1 and beta1 + beta2 > 1; "
                             "raise beta_min or signal_scale (beta_min * (1 + signal_scale) > 1 guarantees it)")
        return alpha, beta

    def sample_mask(self, alpha: Tensor, beta: Tensor, mask_sample: Optional[Tensor]) -> Tensor:
        """Training: a reparameterised sample (or ``mask_sample`` replayed); inference: the mean.
        Hard: 1[z >= threshold] with the straight-through gradient."""
        if self.training:
            z = mask_sample if mask_sample is not None else sample_beta(alpha, beta)
        else:
            z = alpha / (alpha + beta)
        if self.cfg.variant == "soft":
            return z
        hard = (z >= self.cfg.mask_threshold).to(z.dtype)
        return hard - z.detach() + z if self.training else hard

    def apply_fixed_regions(self, mask: Tensor, blacklist: Optional[Tensor]) -> Tensor:
        """Blacklisted tokens to 0, then the central ``centre`` bases to 1 (the centre wins).
        A token is blacklisted when any of its bases is."""
        mask = mask.clone()
        if blacklist is not None:
            mask[any_per_token(blacklist.bool(), self.cfg.resolution)] = 0.0
        mask[:, self.cfg.token_centre_slice] = 1.0
        return mask

    # ------------------------------------------------------------------ 3. predictor
    def predictor_tokens(self, dna: Tensor, sig: Tensor) -> Tensor:
        """What the predictor reads, (batch, tokens, d_model): DNA + signal embeddings; with
        ``predictor_dna: centre`` the DNA only in the forced centre, so distal DNA reaches the
        prediction through the mask alone."""
        if self.cfg.predictor_dna == "everywhere":
            return dna + sig
        promoter = torch.zeros(1, dna.shape[1], 1, dtype=dna.dtype, device=dna.device)
        promoter[:, self.cfg.token_centre_slice] = 1
        return sig + dna * promoter

    def token_contributions(self, out: Tensor, signals: Tensor) -> Tensor:
        """Each token's non-negative contribution to the ``sum`` readout, (batch, tokens, channels):
        softplus(linear(predictor output)), or with ``sum_contribution: signals`` the ABC form
        exp(linear(the token's transformed signals) + a learned bias per position): activity x contact,
        capped at e^10 per token so one token cannot overflow the sum. With ``sum_join: additive``
        the signal weights are softplus'ed: more signal never means less activity."""
        if self.contact_bias is None:
            return F.softplus(self.contribution(out))
        weight = self.contribution.weight
        if self.sum_slope is not None:
            weight = F.softplus(weight)
        activity = F.linear(signals, weight, self.contribution.bias)
        return torch.exp((activity + self.contact_bias).clamp(max=10.0))

    def predict_soft(self, tokens: Tensor, mask: Tensor, signals: Tensor) -> tuple[Tensor, Tensor]:
        """Predictor on (embeddings x mask); readout = mean over the central tokens (``window``:
        joined with the mask-weighted mean over the whole window).

        ``mask_gate: every_layer``: the mask gates every block's normalised input instead. A token's
        own embedding then stays in its own residual stream, which reaches the head only through the
        mask-weighted readout, and a token at mask 0 keeps a gradient (tokens x mask, normalised,
        x mask again would have none).
        """
        if self.cfg.mask_gate == "every_layer":
            out = self.predictor(tokens, mask, self.cfg.mask_noise and self.training)
        else:
            out = self.predictor(tokens * mask.unsqueeze(-1))
        folded = self.fold_strands(out)
        centre = folded[:, self.cfg.token_centre_slice].mean(dim=1)
        return self.join_window_readout(centre, folded, mask, mask.shape[1], signals), out

    def predict_hard(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Predictor on the selected tokens only, compacted in order and zero-padded at the end to the
        batch's longest; readout = mean over the compacted positions holding the centre (``window``:
        joined with the sum over the selected tokens divided by the window's token count; ``sum``:
        joined with log(1 + sum of their contributions)).

        ``released``: gathered embeddings are used as they are, so the prediction loss cannot reach the
        mask head. ``straight_through``: they are scaled by the (value-1) straight-through mask, which
        carries the gradient to the generator.
        """
        cfg = self.cfg
        selected = mask.detach() >= 0.5
        counts = selected.sum(dim=1)
        longest = int(counts.max())
        order = torch.argsort((~selected).to(torch.int8), dim=1, stable=True)[:, :longest]
        gathered = torch.gather(tokens, 1, order.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        if cfg.hard_gradient == "straight_through":
            gathered = gathered * torch.gather(mask, 1, order).unsqueeze(-1)
        valid = torch.arange(longest, device=mask.device)[None, :] < counts[:, None]
        out = self.predictor(gathered * valid.unsqueeze(-1).to(gathered.dtype))
        centre = cfg.token_centre_slice
        centre_start = selected[:, :centre.start].sum(dim=1)
        index = centre_start[:, None] + torch.arange(centre.stop - centre.start, device=mask.device)[None, :]
        readout = torch.gather(out, 1, index.unsqueeze(-1).expand(-1, -1, out.shape[-1])).mean(dim=1)
        readout = self.join_window_readout(readout, out, valid.to(out.dtype), mask.shape[1])
        return readout, out, {"valid_counts": counts, "centre_start_in_compacted": centre_start}

    def join_window_readout(self, centre: Tensor, out: Tensor, weight: Tensor, n_tokens: int,
                            signals: Optional[Tensor] = None) -> Tensor:
        """The centre readout (batch, width), joined with what ``readout`` adds from the whole window:
        ``window`` the weighted sum of ``out`` (batch, positions, width) over the window's
        ``n_tokens``, ``sum`` log(1 + sum of weight x contribution); ``weight`` (batch, positions) is
        the mask (soft) or the compacted tokens' validity (hard); ``signals`` (batch, tokens,
        n_signals), read by ``sum_contribution: signals`` (every token in place)."""
        weight = weight.unsqueeze(-1)
        if self.cfg.readout == "window":
            return torch.cat([centre, (out * weight).sum(dim=1) / n_tokens], dim=-1)
        if self.cfg.readout == "sum":
            contributions = self.token_contributions(out, signals) * weight  # (b, positions, channels)
            return torch.cat([centre, torch.log1p(contributions.sum(dim=1))], dim=-1)
        return centre

    # ------------------------------------------------------------------ forward
    def forward(self, seq: Tensor, signals: Tensor, gene_features: Tensor, blacklist: Optional[Tensor] = None,
                mask_sample: Optional[Tensor] = None, return_details: bool = False,
                signal_depth: Optional[Tensor] = None) -> Seq2ExpOutput:
        self.check_inputs(seq, signals, gene_features, blacklist)
        signals, gene_features = self.normalise_depth(signals, gene_features, signal_depth)
        signals, gene_features = self.transform_inputs(signals, gene_features)
        cfg = self.cfg
        if seq.device.type == "cpu" and cfg.n_tokens >= LONG_WINDOW:
            reuse_freed_memory()
        signals = bin_mean(signals, cfg.resolution)  # (b, T, n_signals)
        dna, sig = self.embed(seq, signals)
        generator_out = self.generator(dna + sig if cfg.generator_reads_signals else dna)
        post_alpha, post_beta, logits = self.generator_beta(generator_out)
        sig_alpha, sig_beta, alpha_i = self.signal_beta(signals)
        alpha, beta = self.combine(post_alpha, post_beta, sig_alpha, sig_beta)
        mask = self.apply_fixed_regions(self.sample_mask(alpha, beta, mask_sample), blacklist)
        extra: dict[str, Tensor] = {}
        tokens = self.predictor_tokens(dna, sig)
        if cfg.variant == "soft" or not cfg.compact_selected:
            readout, predictor_out = self.predict_soft(tokens, mask, signals)
        else:
            readout, predictor_out, extra = self.predict_hard(tokens, mask)
        expression, p_embed = self.expression_head(readout, gene_features)
        kl = beta_kl(alpha, beta, *cfg.prior_alpha_beta).mean()
        details = None
        if return_details:
            details = dict(mask_logits=logits, generator_out=generator_out, predictor_out=predictor_out,
                           p_embed=p_embed, signal_alpha=alpha_i, **extra)
        per_base = [to_bases(x, cfg.resolution) for x in (mask, alpha, beta, post_alpha, post_beta)]
        return Seq2ExpOutput(expression, *per_base, kl, details)

    def expression_head(self, readout: Tensor, gene_features: Tensor) -> tuple[Tensor, Tensor]:
        """(expression (batch,), the head's input): the MLP head on readout + gene features; with
        ``sum_join: additive`` the sum readout's last ``sum_channels`` columns bypass the head and
        add with a positive slope each (the mask can only mean "this adds expression")."""
        if self.sum_slope is None:
            p_embed = torch.cat([readout, gene_features.to(readout.dtype)], dim=-1)
            return self.head(p_embed).squeeze(-1), p_embed
        head_in, sums = readout[..., :-self.cfg.sum_channels], readout[..., -self.cfg.sum_channels:]
        p_embed = torch.cat([head_in, gene_features.to(readout.dtype)], dim=-1)
        return self.head(p_embed).squeeze(-1) + (F.softplus(self.sum_slope) * sums).sum(dim=-1), p_embed

    def loss(self, output: Seq2ExpOutput, target: Tensor, kl_scale: float = 1.0) -> LossTerms:
        """smooth-L1(expression, target) + kl_weight x KL, as the released code trains; ``kl_scale``
        (a KL warm-up's current factor) multiplies kl_weight; with ``mask_budget`` > 0, plus
        budget_weight x the excess of the mean mask outside the centre over the budget."""
        cfg = self.cfg
        prediction = F.smooth_l1_loss(output.expression, target.reshape(output.expression.shape))
        budget = torch.zeros((), dtype=prediction.dtype, device=prediction.device)
        if cfg.mask_budget > 0:
            outside = output.mask.sum(dim=1) - output.mask[:, cfg.centre_slice].sum(dim=1)
            budget = F.relu(outside / (cfg.window - cfg.centre) - cfg.mask_budget).mean()
        total = prediction + kl_scale * cfg.kl_weight * output.kl + cfg.budget_weight * budget
        return LossTerms(total, prediction, output.kl, budget)

    @torch.no_grad()
    def predict(self, seq: Tensor, signals: Tensor, gene_features: Tensor, blacklist: Optional[Tensor] = None,
                rc_average: bool = False, signal_depth: Optional[Tensor] = None) -> Seq2ExpOutput:
        """Inference: eval-mode forward; with ``rc_average`` the reverse-complemented window is run too
        and expression and mask are averaged (mask flipped back to the forward strand)."""
        was_training = self.training
        self.eval()
        try:
            out = self(seq, signals, gene_features, blacklist, signal_depth=signal_depth)
            if rc_average:
                flipped_blacklist = None if blacklist is None else blacklist.flip(1)
                rc = self(reverse_complement(seq), signals.flip(1), gene_features, flipped_blacklist,
                          signal_depth=signal_depth)
                out.expression = (out.expression + rc.expression) / 2
                out.mask = (out.mask + rc.mask.flip(1)) / 2
        finally:
            self.train(was_training)
        return out

    def n_parameters(self) -> int:
        """Trainable parameters, each shared tensor counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def count_parameters_by_hand(cfg: ModelConfig) -> int:
    """The parameter count written out from the architecture (used to check the module tree), for
    the authors' per-base model with the centre readout."""
    if cfg.resolution != 1 or cfg.readout != "centre":
        raise ValueError("count_parameters_by_hand covers resolution 1 with the centre readout only")
    d, di, n, r, k = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.resolved_dt_rank, cfg.d_conv
    direction = di * k + di + di * (r + 2 * n) + r * di + di + di * n + di
    layer = d + d * 2 * di + di * d + 2 * direction
    backbone_layers = cfg.n_layers_generator + (0 if cfg.shared_backbone else cfg.n_layers_predictor)
    backbones = backbone_layers * layer + (1 if cfg.shared_backbone else 2) * d
    embeddings = (4 * d + d) + (cfg.n_signals * d + d) + (cfg.window * d if cfg.positional_embedding else 0)
    heads = (d * 2 + 2) + ((d + cfg.n_gene_features) * d + d) + (d * d + d) + (d + 1)
    return backbones + embeddings + heads


__all__ = ["Seq2Exp", "Seq2ExpOutput", "LossTerms", "beta_kl", "count_parameters_by_hand"]

"""Interpretation of a trained Seq2Exp: how far from the TSS the prediction listens (influence)."""
from .influence import DISTANCE_BANDS, InfluenceProfile, generator_spread, influence_profile, kipoi_batches

__all__ = ["DISTANCE_BANDS", "InfluenceProfile", "generator_spread", "influence_profile", "kipoi_batches"]

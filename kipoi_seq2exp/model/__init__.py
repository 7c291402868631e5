"""Seq2Exp model: configuration, Mamba/Caduceus backbones, the Seq2Exp module, released-layout mapping."""
from .airs_mapping import airs_to_ours, ours_to_airs
from .caduceus import Caduceus, RCEquivariantCaduceus, reverse_complement
from .config import ModelConfig, SignalTrack, paper_hard, paper_soft, preset, tiny
from .seq2exp import LossTerms, Seq2Exp, Seq2ExpOutput, beta_kl, count_parameters_by_hand

__all__ = ["ModelConfig", "SignalTrack", "paper_soft", "paper_hard", "tiny", "preset", "Seq2Exp", "Seq2ExpOutput",
           "LossTerms", "beta_kl", "count_parameters_by_hand", "Caduceus", "RCEquivariantCaduceus",
           "reverse_complement", "airs_to_ours", "ours_to_airs"]

"""Interpretation of a trained Seq2Exp: how far from the TSS the prediction listens (influence), what
silencing one element's chromatin does to a gene (in-silico CRISPRi, `perturb`), and what the mask
selects, as genome-browser tracks (`tracks`), which bases it reads (`attribution`: grad x input,
in-silico mutagenesis), and how sure it is (`intervals`: samples of the mask Beta)."""
from .influence import DISTANCE_BANDS, InfluenceProfile, generator_spread, influence_profile, kipoi_batches
from .perturb import (Element, ElementEffect, ElementIndex, perturb_gene, perturb_genes, read_elements_bed,
                      write_effects)
from .tracks import mask_segments, write_mask_tracks

__all__ = ["DISTANCE_BANDS", "Element", "ElementEffect", "ElementIndex", "InfluenceProfile",
           "generator_spread", "influence_profile", "kipoi_batches", "mask_segments",
           "perturb_gene", "perturb_genes", "read_elements_bed", "write_effects", "write_mask_tracks"]

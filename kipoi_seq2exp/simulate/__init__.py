"""A simulated genome whose regulatory elements are known: the project's embedded default data.

``generate(params_path, out_dir)`` draws it from a params YAML (numpy Generator, one
independent stream per stage; the same file gives byte-identical outputs) and writes what the
real pipeline reads, in real formats. The shipped copy lives in ``resources/sim`` (see
``embedded_dir()``); regenerate it with
``seq2exp simulate --params kipoi_seq2exp/resources/sim/params.yaml --out kipoi_seq2exp/resources/sim``.

Generative model (symbols as in ``params.yaml``)
------------------------------------------------
Layout. Each chromosome is a run of contact domains ("TADs") whose boundaries sit on 5 kb Hi-C
bin edges: a gene-free 20 kb flank at each end, and domains of 15-20 kb holding one gene or
25-30 kb holding two. Chromosome names follow the project's split (validation chr3 + chr21,
test chr22 + chrX, training the rest: 180 / 60 / 60 of 300 genes). TSSs are 0-based; strand is
random and plays no role (windows are not flipped).

Elements. Every gene gets a promoter (TSS +/- 150 bp, 1-2 SP1 sites) and, inside its own domain,
1.5-9.5 kb from its TSS (never within 1 kb of any TSS, so never in the model's forced centre),
Poisson numbers of three kinds of 300-600 bp candidates:
  - enhancer: 1-3 activator sites (GATA1::TAL1, NFE2, FOS::JUN), open chromatin;
  - closed_motif: the same motif grammar, closed chromatin (openness 0);
  - open_inert: open chromatin, 0-2 sites of TFs absent from this cell type (FOXA1, HNF4A,
    HNF1A), no activator site.
Every domain boundary carries a CTCF site (insulator, open, little H3K27ac). Sites are drawn
from the JASPAR 2024 matrices (``jaspar_motifs.json``) and kept only if their relative PWM score
is >= 0.9; every element is then scrubbed (background bases redrawn) until no enhancer activator
matches at >= 0.8 outside its planted activator sites, so the sequence says exactly what the
model says. Strength s_e = sum of the activator weights of its sites (0 without any).

Chromatin. Openness o_e ~ lnN(0, 0.5) for enhancers AND open decoys (same law: signal alone
cannot tell them apart), 0 when closed; promoters lnN(0, 0.3), closed with probability 0.05.
DNase = gamma background + a Gaussian of height 20 o_e over each open element; H3K27ac =
background + two flanking Gaussians of height 8 o_e a_e (a_e ~ lnN(0, 0.3), x0.2 at CTCF).
Both bigWigs are binned at 20 bp, with no entries over the N runs at the chromosome ends.

Hi-C (5 kb). Expected count = 500 (|i - j| + 1)^-1, x0.1 between bins of different domains;
observed = Poisson. Written with hictkpy (raw counts, no balancing weights), then canonicalised
(HDF5 timestamps off, fixed creation-date) so that regeneration is byte-identical.

Expression (one CAGE-like count per gene g):
    c(e, g) = (max(|centre_e - tss_g|, 1 kb) / 1 kb)^-0.87  if e and g share a domain, else 0
    P_g = s_p o_p                               (its own promoter p; promoters regulate only their gene)
    E_g = 20 sum_{e not a promoter} s_e o_e c(e, g)
    log10 mu_g = log10(10) + log10(P_g + 0.05) + log10(1 + E_g) + sum_j beta_j z_gj + eps_g
    count_g ~ Poisson(mu_g),  eps_g ~ N(0, 0.1^2)
with z_gj the gene's 8 mRNA half-life features, standardised, and small beta_j (|beta| <= 0.04
log10 per sd). The features are drawn from a Gaussian copula fitted once to the real
18,377-gene table (quantiles + correlations hard-coded in the params, origin noted there).
Hence:
  - sequence matters: an open element without activator sites (open_inert, CTCF) does nothing;
  - signal matters: the same activator grammar in closed chromatin (closed_motif) does nothing,
    and an active element's effect grows with its openness;
  - contact matters: another domain's enhancer, open and well-bound, does nothing here.
Causal elements of g = elements with a non-zero term (its open, activator-bearing elements of
its domain, including a domain-mate gene's, plus its open promoter). Effect = drop of
log10 mu_g when the element alone is deleted (an in-silico CRISPRi screen).

Files (``SIM_FILES``): genome.fa (+ .fai; soft-masked lowercase runs, N ends), genes.tsv
(gene_id, gene_name, chrom, tss, strand), expression.tsv (gene_id, expression: raw counts; the
loader takes log10(x + 1)), mrna_features.tsv (gene_id + the 8 features), dnase.bw, h3k27ac.bw,
hic_5kb.cool, causal_elements.bed (the truth: chrom, start, end, gene_id:element_id, effect),
elements.tsv (every candidate, decoys included, with kind, openness, strength, sites),
motif_sites.bed (every planted site), domains.bed, checksums.sha256, plus the params and motif
files that made them.
"""
from .diagnostics import element_lanes, expression_predictability
from .generate import SIM_FILES, SimFiles, draw_genome, embedded_dir, generate, simulate_genome
from .model import Element, Gene, SimulatedGenome, Site, Tad
from .params import SimParams, load_params, params_to_yaml

__all__ = [
    "SIM_FILES", "Element", "Gene", "SimFiles", "SimParams", "SimulatedGenome", "Site", "Tad", "draw_genome",
    "element_lanes", "embedded_dir", "expression_predictability", "generate", "load_params", "params_to_yaml",
    "simulate_genome",
]

"""``generate(params_path, out_dir)``: draw the genome and write every file the pipeline reads."""
from __future__ import annotations

import importlib.resources
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .features import draw_mrna_features
from .hic import draw_contacts, write_cool
from .layout import lay_out_chromosomes, place_elements
from .model import SimulatedGenome
from ..motifs import Pwm, encode, load_pwms
from .params import SimParams, load_params
from .sequence import draw_sequences
from .tracks import draw_tracks, write_bigwig
from .writers import write_bed, write_checksums, write_fasta, write_tsv

# Independent random streams, so that changing one stage's parameters leaves the others' draws alone.
_STREAMS = {"layout": 1, "elements": 2, "sequence": 3, "tracks": 4, "hic": 5, "features": 6, "expression": 7}


@dataclass(frozen=True)
class SimFiles:
    """File names of a simulated dataset inside its directory."""

    fasta: str = "genome.fa"
    fasta_index: str = "genome.fa.fai"
    genes: str = "genes.tsv"
    expression: str = "expression.tsv"
    mrna_features: str = "mrna_features.tsv"
    dnase: str = "dnase.bw"
    h3k27ac: str = "h3k27ac.bw"
    hic: str = "hic_5kb.cool"
    causal_elements: str = "causal_elements.bed"
    elements: str = "elements.tsv"
    motif_sites: str = "motif_sites.bed"
    domains: str = "domains.bed"
    checksums: str = "checksums.sha256"
    params: str = "params.yaml"  # the recipe, copied in verbatim (its motif file beside it)

    def outputs(self) -> list[str]:
        """Every generated file (what the checksum list covers)."""
        return [getattr(self, f.name) for f in fields(self) if f.name not in ("checksums", "params")]

    def path(self, directory: str | Path, name: str) -> Path:
        return Path(directory) / getattr(self, name)


SIM_FILES = SimFiles()


def embedded_dir() -> Path:
    """The simulated dataset shipped inside the package (the project's default data)."""
    return Path(str(importlib.resources.files("kipoi_seq2exp") / "resources" / "sim"))


def generate(params_path: str | Path, out_dir: str | Path) -> SimulatedGenome:
    """Draw a simulated genome from a params YAML and write it to ``out_dir``.

    The same params file gives byte-identical files (``checksums.sha256`` lists them). The
    params file (as ``params.yaml``) and its motif file are copied next to the outputs so the
    folder is its own recipe.

    Returns
    -------
    SimulatedGenome
        The full causal model, including what the files do not show (noise, per-element effects).
    """
    params_path = Path(params_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    genome = simulate_genome(params_path)
    params = genome.params
    with tqdm(total=6, desc="writing simulated genome", unit="file group") as progress:
        write_fasta(SIM_FILES.path(out_dir, "fasta"), genome.sequences)
        progress.update()
        _write_tables(genome, out_dir)
        progress.update()
        _write_truth(genome, out_dir)
        progress.update()
        tracks = draw_tracks(params, genome.chrom_sizes, genome.elements, _rng(params, "tracks"))
        for name in ("dnase", "h3k27ac"):
            write_bigwig(SIM_FILES.path(out_dir, name), genome.chrom_sizes, tracks[name],
                         params.tracks.bin_length, params.sequence.telomere_n)
        progress.update()
        pixels = draw_contacts(params, genome.chrom_sizes, genome.tads, _rng(params, "hic"))
        write_cool(SIM_FILES.path(out_dir, "hic"), genome.chrom_sizes, params.layout.bin_size, pixels,
                   params.creation_date)
        progress.update()
        motifs_path = params_path.parent / params.motifs_file
        for source, name in ((params_path, SIM_FILES.params), (motifs_path, params.motifs_file)):
            if source.resolve() != (out_dir / name).resolve():
                shutil.copyfile(source, out_dir / name)
        write_checksums(out_dir, SIM_FILES.outputs(), SIM_FILES.checksums)
        progress.update()
    return genome


def simulate_genome(params_path: str | Path) -> SimulatedGenome:
    """The causal model alone (layout, elements, sequence, features, expression), no files written."""
    params_path = Path(params_path)
    params = load_params(params_path)
    if Path(params.motifs_file).name != params.motifs_file:
        raise ValueError(f"{params_path}: motifs_file must be a file name beside the params file, "
                         f"got {params.motifs_file!r}")
    motifs_path = params_path.parent / params.motifs_file
    if not motifs_path.is_file():
        raise FileNotFoundError(f"{params_path}: motifs_file {params.motifs_file!r} not found at {motifs_path}")
    return draw_genome(params, load_pwms(motifs_path, params.sequence.gc_content, params.motifs.pseudocount))


def draw_genome(params: SimParams, pwms: dict[str, Pwm]) -> SimulatedGenome:
    """Layout, elements, sequence, features and expression: everything but the signal files."""
    missing = sorted({*params.motifs.activator_weights, *params.motifs.inert_motifs, params.motifs.insulator_motif}
                     - set(pwms))
    if missing:
        raise KeyError(f"motifs {missing} are named in the params but absent from the motif file {params.motifs_file}")
    chrom_sizes, tads, genes = lay_out_chromosomes(params, _rng(params, "layout"))
    widths = {motif_id: pwm.width for motif_id, pwm in pwms.items()}
    elements = place_elements(params, chrom_sizes, tads, genes, widths, _rng(params, "elements"))
    sequences = draw_sequences(params, chrom_sizes, elements, pwms, _rng(params, "sequence"))
    features = draw_mrna_features(params.mrna_features, len(genes), _rng(params, "features"))
    expression_rng = _rng(params, "expression")
    noise = expression_rng.normal(0.0, params.expression.noise_sd, size=len(genes))
    genome = SimulatedGenome(params, pwms, chrom_sizes, tads, genes, elements, sequences, features, noise,
                             counts=np.zeros(len(genes), dtype=np.int64))
    rates = np.array([10.0 ** genome.log10_rate(i) for i in range(len(genes))])
    genome.counts = expression_rng.poisson(rates).astype(np.int64)
    return genome


def _rng(params: SimParams, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([params.seed, _STREAMS[stream]]))


def _write_tables(genome: SimulatedGenome, out_dir: Path) -> None:
    pwms = genome.pwms
    genes = genome.genes
    write_tsv(SIM_FILES.path(out_dir, "genes"), ["gene_id", "gene_name", "chrom", "tss", "strand"],
              [(g.gene_id, g.gene_name, g.chrom, g.tss, g.strand) for g in genes])
    write_tsv(SIM_FILES.path(out_dir, "expression"), ["gene_id", "expression"],
              [(g.gene_id, int(count)) for g, count in zip(genes, genome.counts)])
    columns = genome.params.mrna_features.columns
    decimals = genome.params.mrna_features.decimals
    write_tsv(SIM_FILES.path(out_dir, "mrna_features"), ["gene_id", *columns],
              [(g.gene_id, *(f"{value:.{decimals}f}" for value in row)) for g, row in zip(genes, genome.features)])
    write_tsv(SIM_FILES.path(out_dir, "elements"),
              ["element_id", "chrom", "start", "end", "kind", "host_gene", "domain", "openness", "acetylation",
               "strength", "sites"],
              [(e.element_id, e.chrom, e.start, e.end, e.kind, e.host_gene or ".", e.tad, f"{e.openness:.4f}",
                f"{e.acetylation:.4f}", f"{e.strength:.4f}",
                ";".join(f"{s.motif_id},{pwms[s.motif_id].name},{s.start},{s.strand}" for s in e.sites) or ".")
               for e in genome.elements])
    write_bed(SIM_FILES.path(out_dir, "domains"),
              [(t.chrom, t.start, t.end, f"domain{t.index}") for t in genome.tads],
              'track name="sim_domains" description="Simulated contact domains (regulation stays inside)"')


def _write_truth(genome: SimulatedGenome, out_dir: Path) -> None:
    """The causal elements per gene (the evaluation's truth) and every planted motif site."""
    pwms = genome.pwms
    write_bed(SIM_FILES.path(out_dir, "causal_elements"),
              [(e.chrom, e.start, e.end, f"{gene_id}:{e.element_id}", f"{effect:.4g}")
               for gene_id, e, effect in genome.effects()],
              'track name="sim_causal_elements" description="Causal elements: name gene_id:element_id, '
              'score = log10 expression drop on deletion"')
    rows = []
    for element in genome.elements:
        codes = encode(genome.sequences[element.chrom][element.start:element.end].tobytes().decode())
        for site in element.sites:
            pwm = pwms[site.motif_id]
            best = float(pwm.scan(codes[site.start - element.start:site.start - element.start + pwm.width])[0])
            rows.append((element.chrom, site.start, site.start + pwm.width,
                         f"{element.element_id}|{site.motif_id}|{pwm.name}", int(round(1000 * best)), site.strand))
    write_bed(SIM_FILES.path(out_dir, "motif_sites"), rows,
              'track name="sim_motif_sites" description="Planted TF sites: element|JASPAR id|TF, '
              'score = 1000 x relative PWM score"')

"""DataConfig: YAML round trip, unknown keys named, relative paths, invalid values."""
import pytest
import yaml

from kipoi_seq2exp.data.config import DataConfig, HicOptions, SplitConfig, TrackConfig, accessibility_tracks, paper_tracks
from kipoi_seq2exp.data.errors import DataInputError


def test_yaml_round_trip(tmp_path):
    config = DataConfig(
        fasta="/data/hg38.fa",
        gene_table="/data/genes.tsv",
        tracks=paper_tracks("/data/k27.bw", None, "/data/k562.hic"),
        hic=HicOptions(normalization="KR", pseudocount=False),
        expression="/data/cage.tsv",
        expression_column="K562",
        target_transform="none",
        window=100_000,
        split=SplitConfig(column="fold_11"),
    )
    path = tmp_path / "data.yaml"
    config.to_yaml(path)
    assert DataConfig.from_yaml(path) == config
    assert [p.name for p in tmp_path.iterdir()] == ["data.yaml"]  # no temp file left


def test_defaults_are_the_paper_setup():
    config = DataConfig(fasta="g.fa", gene_table="genes.tsv")
    assert config.window == 200_000 and config.track_names == ["H3K27ac", "DNase", "Hi-C"]
    assert config.split.valid_chroms == ["chr3", "chr21"] and config.split.test_chroms == ["chr22", "chrX"]
    assert config.target_transform == "log10p1" and config.hic.bin_size == 5000
    assert DataConfig(fasta="g.fa", gene_table="t", tracks=accessibility_tracks("a.bw")).track_names == ["DNase"]


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "data.yaml"
    path.write_text(yaml.safe_dump({"fasta": "g.fa", "gene_table": "/abs/genes.tsv", "tracks": [{"name": "DNase", "path": "d.bw"}]}))
    config = DataConfig.from_yaml(path)
    assert config.fasta == str(tmp_path / "cfg" / "g.fa") and config.gene_table == "/abs/genes.tsv"
    assert config.tracks == [TrackConfig("DNase", str(tmp_path / "cfg" / "d.bw"), "bigwig")]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"fasta": "g", "gene_table": "t", "hic_fle": "x"}, r"DataConfig: unknown key\(s\) \['hic_fle'\]"),
        ({"fasta": "g", "gene_table": "t", "hic": {"binsize": 5}}, r"DataConfig\.hic: unknown key\(s\) \['binsize'\]"),
        ({"fasta": "g", "gene_table": "t", "tracks": [{"name": "a", "file": "x"}]}, r"DataConfig\.tracks\[0\]: unknown key\(s\) \['file'\]"),
        ({"fasta": "g", "gene_table": "t", "split": {"valid": ["chr1"]}}, r"DataConfig\.split: unknown key\(s\) \['valid'\]"),
        ({"fasta": "g", "gene_table": "t", "window": 1000}, r"window = 1000: must be an integer >= 2 \* promoter_flank"),
        ({"fasta": "g", "gene_table": "t", "target_transform": "log"}, r"target_transform = 'log'"),
        ({"fasta": "g", "gene_table": "t", "tracks": [{"name": "a", "kind": "bam"}]}, r"tracks\[0\] \('a'\)\.kind = 'bam'"),
        ({"fasta": "g", "gene_table": "t", "tracks": [{"name": "a"}, {"name": "a"}]}, "duplicate track names"),
    ],
)
def test_bad_config_named(tmp_path, data, message):
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataInputError, match=message):
        DataConfig.from_yaml(path)


def test_missing_required_key(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"fasta": "g.fa"}))
    with pytest.raises(DataInputError, match="gene_table"):
        DataConfig.from_yaml(path)

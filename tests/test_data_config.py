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


def _joint(tmp_path, **changes):
    data = {"fasta": "g.fa", "gene_table": "genes.tsv", "cell": "K562", "expression": "k562.tsv",
            "tracks": [{"name": "DNase", "path": "k562.bw"}],
            "joint_cells": [{"name": "GM12878", "tracks": [{"name": "DNase", "path": "gm.bw"}], "expression": "gm.tsv"}]}
    data.update(changes)
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_joint_cells_resolve_paths_round_trip_and_split_per_cell(tmp_path):
    config = DataConfig.from_yaml(_joint(tmp_path))
    main, other = config.per_cell()
    assert (main.cell, main.tracks[0].path, main.expression) == ("K562", str(tmp_path / "k562.bw"), str(tmp_path / "k562.tsv"))
    assert (other.cell, other.tracks[0].path, other.expression) == ("GM12878", str(tmp_path / "gm.bw"), str(tmp_path / "gm.tsv"))
    assert main.joint_cells == other.joint_cells == [] and other.fasta == main.fasta == str(tmp_path / "g.fa")
    config.to_yaml(tmp_path / "again.yaml")
    assert DataConfig.from_yaml(tmp_path / "again.yaml") == config
    assert DataConfig(fasta="g.fa", gene_table="t").per_cell() == [DataConfig(fasta="g.fa", gene_table="t")]


@pytest.mark.parametrize("changes, message", [
    ({"cell": ""}, "name the main cell"),
    ({"cell": "GM12878"}, "all distinct"),
    ({"joint_cells": [{"name": "", "tracks": [{"name": "DNase"}], "expression": "gm.tsv"}]}, r"names \[''\]"),
    ({"joint_cells": [{"name": n, "tracks": [{"name": "DNase"}], "expression": "x.tsv"} for n in ("G", "G")]},
     "all distinct"),
    ({"joint_cells": [{"name": "G", "tracks": [{"name": "DNase", "kind": "bigwg"}], "expression": "x.tsv"}]},
     r"joint_cells\[0\] \('G'\).tracks\[0\] \('DNase'\).kind = 'bigwg'"),
    ({"joint_cells": {"name": "G"}}, "expected a list of cells"),
    ({"joint_cells": [{"tracks": [{"name": "DNase"}], "expression": "x.tsv"}]}, r"joint_cells\[0\]: missing key 'name'"),
    ({"joint_cells": [{"name": "GM12878", "tracks": [{"name": "ATAC", "path": "gm.bw"}], "expression": "gm.tsv"}]},
     r"joint_cells\[0\] \('GM12878'\).tracks names \['ATAC'\]"),
    ({"joint_cells": [{"name": "GM12878", "tracks": [{"name": "DNase", "path": "gm.bw"}]}]},
     r"joint_cells\[0\] \('GM12878'\).expression = None"),
    ({"joint_cells": [{"name": "GM12878", "tracks": [], "expresion": "gm.tsv"}]}, r"joint_cells\[0\]: unknown key"),
])
def test_bad_joint_cells_named(tmp_path, changes, message):
    with pytest.raises(DataInputError, match=message):
        DataConfig.from_yaml(_joint(tmp_path, **changes))

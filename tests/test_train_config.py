"""Run configs: packaged YAMLs, dotted overrides, and errors that name the section and key."""
import pytest
import yaml

from kipoi_seq2exp.model import paper_hard, paper_soft
from kipoi_seq2exp.train.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    apply_overrides,
    load_run_config,
    packaged_configs,
)

PAPER_DATA = ["data.fasta=/data/hg38.fa", "data.gene_table=/data/genes.tsv"]


def write_config(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


MINIMAL = """
model: {preset: tiny_soft, window: 2000, centre: 200}
data:
  fasta: genome.fa
  gene_table: genes.tsv
  tracks: [{name: H3K27ac}, {name: DNase}, {name: Hi-C, kind: hic}]
train: {max_steps: 10, warmup_steps: 1}
"""


def test_packaged_configs_present():
    assert {"paper_soft", "paper_hard", "demo_soft", "demo_hard"} <= set(packaged_configs())


@pytest.mark.parametrize("name, preset", [("paper_soft", paper_soft), ("paper_hard", paper_hard)])
def test_paper_configs_are_the_released_recipe(name, preset):
    run = load_run_config(name, PAPER_DATA)
    assert run.model == preset()
    assert (run.model.window, run.model.d_model, run.model.n_layers_generator) == (200_000, 128, 4)
    assert run.data.window == 200_000
    assert run.data.split.valid_chroms == ["chr3", "chr21"] and run.data.split.test_chroms == ["chr22", "chrX"]
    expected = TrainConfig(output_dir=f"runs/{name}")
    assert run.train == expected
    assert (run.train.max_steps, run.train.batch_size, run.train.lr, run.train.betas) == (50_000, 8, 5e-4, [0.9, 0.95])


@pytest.mark.parametrize("name, variant", [("demo_soft", "soft"), ("demo_hard", "hard")])
def test_demo_configs_point_into_the_package(name, variant):
    run = load_run_config(name)
    assert run.model.variant == variant and run.model.window == run.data.window == 20_000
    assert run.data.fasta.endswith("resources/sim/genome.fa")
    assert [t.name for t in run.data.tracks] == ["H3K27ac", "DNase", "Hi-C"]


def test_paths_relative_to_file_and_overrides_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    path = write_config(tmp_path, MINIMAL)
    run = load_run_config(path, ["data.gene_table=other.tsv"])
    assert run.data.fasta == str(tmp_path / "genome.fa")
    assert run.data.gene_table == str(tmp_path.parent / "other.tsv")


def test_data_window_follows_model_window(tmp_path):
    run = load_run_config(write_config(tmp_path, MINIMAL), ["model.window=3000"])
    assert run.model.window == run.data.window == 3000


def test_overrides_parse_yaml_values_and_scientific_notation(tmp_path):
    run = load_run_config(write_config(tmp_path, MINIMAL), ["train.lr=1e-3", "train.betas=[0.8, 0.9]",
                                                           "train.deterministic=false", "model.kl_weight=2e-2"])
    assert run.train.lr == 1e-3 and isinstance(run.train.lr, float)
    assert run.train.betas == [0.8, 0.9] and run.train.deterministic is False
    assert run.model.kl_weight == 0.02


def test_list_item_override():
    raw = {"data": {"tracks": [{"name": "a", "path": None}, {"name": "b", "path": None}]}}
    out = apply_overrides(raw, ["data.tracks.1.path=/x.bw"])
    assert out["data"]["tracks"][1]["path"] == "/x.bw" and raw["data"]["tracks"][1]["path"] is None


@pytest.mark.parametrize("override, words", [
    ("model.d_modle=32", ["section 'model'", "d_modle"]),
    ("train.max_step=3", ["section 'train'", "max_step"]),
    ("data.fasta_file=x", ["section 'data'", "fasta_file"]),
    ("optim.lr=1", ["unknown section", "optim"]),
    ("train.max_steps", ["SECTION.KEY=VALUE"]),
    ("data.tracks.7.path=x", ["not an index"]),
])
def test_unknown_keys_name_section_and_key(tmp_path, override, words):
    with pytest.raises(ConfigError) as err:
        load_run_config(write_config(tmp_path, MINIMAL), [override])
    assert all(w in str(err.value) for w in words), str(err.value)


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = write_config(tmp_path, MINIMAL.replace("max_steps: 10", "max_stepz: 10"))
    with pytest.raises(ConfigError, match=r"run\.yaml, section 'train': unknown key\(s\) \['max_stepz'\]"):
        load_run_config(path)
    with pytest.raises(ConfigError, match="unknown section"):
        load_run_config(write_config(tmp_path, MINIMAL + "trainer: {}\n"))


@pytest.mark.parametrize("overrides, words", [
    (["data.window=4000"], ["model.window (2000)", "data.window (4000)"]),
    (["train.warmup_steps=10"], ["section 'train'", "warmup_steps"]),
    (["train.precision=fp8"], ["precision"]),
    (["model.variant=medium"], ["section 'model'", "variant"]),
    (["data.fasta=null"], ["required key", "fasta"]),
])
def test_invalid_values(tmp_path, overrides, words):
    with pytest.raises(ConfigError) as err:
        load_run_config(write_config(tmp_path, MINIMAL), overrides)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_tracks_must_match_model_signals(tmp_path):
    text = MINIMAL.replace("[{name: H3K27ac}, {name: DNase}", "[{name: DNase}, {name: H3K27ac}")
    with pytest.raises(ConfigError, match="same channels in the same order"):
        load_run_config(write_config(tmp_path, text))


def test_unknown_config_name_lists_packaged():
    with pytest.raises(ConfigError, match="demo_soft"):
        load_run_config("no_such_config")


def test_round_trip_through_yaml(tmp_path):
    run = load_run_config(write_config(tmp_path, MINIMAL))
    run.to_yaml(tmp_path / "saved.yaml")
    again = RunConfig.from_dict(yaml.safe_load((tmp_path / "saved.yaml").read_text()))
    assert again == run

"""The model source: registration in the kipoi config, members and their rendered YAML, example
files, metrics in the model info, missing / installed weights, the modes of the files it rewrites."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile

import pytest
import torch
import yaml
from safetensors.torch import load_file

import kipoi
from kipoi.sources import LocalComponentGroup, LocalSource
from kipoi_seq2exp.train.export import CONFIG_FILE, DATA_FILE, EXPORT_FILES, METRICS_FILE, WEIGHTS_FILE
from kipoi_seq2exp.zoo import source as zoo_source
from kipoi_seq2exp.zoo.source import (DATALOADER_YAML, EXPORT_COLUMNS, GROUP, MemberRow, ZooError, check_member_dir,
                                      dataloader_yaml, example_dataloader_args, export_columns, find_source_dir,
                                      format_metrics, install_weights, kipoi_config_path, member_row, read_members,
                                      register_source, sync_metrics, upsert_member)

from test_atomic import killed_while_staging
from test_zoo_helpers import REPO, SIM, copy_source, export_untrained_member

MEMBERS = ["K562", "GM12878", "K562-only", "K562-paper", "GM12878-paper", "Demo-soft", "Demo-hard"]
SOURCE = LocalSource(str(REPO / "model_zoo"))


# ------------------------------------------------------------------ registration
def test_register_adds_the_source_once_and_keeps_other_sources(isolated_home):
    config = kipoi_config_path()
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"model_sources": {"mine": {"type": "local", "local_path": "/data/zoo"}}}))
    assert register_source() is True
    assert register_source() is False
    sources = yaml.safe_load(config.read_text())["model_sources"]
    assert sources["mine"] == {"type": "local", "local_path": "/data/zoo"}
    assert sources["seq2exp"] == {"type": "local", "local_path": str(REPO / "model_zoo")}
    assert str(config).startswith(str(isolated_home))


def test_register_creates_kipoi_defaults_and_updates_the_running_kipoi(isolated_home):
    assert register_source(name="seq2exp-test") is True
    sources = yaml.safe_load(kipoi_config_path().read_text())["model_sources"]
    assert set(sources) == {"kipoi", "github-permalink", "seq2exp-test"}
    live = kipoi.config.get_source("seq2exp-test")
    assert live.local_path.rstrip("/") == str(REPO / "model_zoo")
    assert "Seq2Exp/Demo-soft" in list(live.list_models().model)


def test_register_rejects_a_folder_that_is_not_the_source(tmp_path):
    with pytest.raises(ZooError, match="not a Seq2Exp model source"):
        register_source(path=tmp_path)
    with pytest.raises(ZooError, match="reserved"):
        register_source(name="dir")


# ------------------------------------------------------------------ members and their YAML
def test_models_tsv_lists_the_seven_members():
    assert [row["model"] for row in read_members(REPO / "model_zoo" / GROUP)] == MEMBERS
    with pytest.raises(ZooError, match=r"unknown model 'Seq2Exp/K999'.*Seq2Exp/GM12878"):
        member_row("Seq2Exp/K999")


@pytest.mark.parametrize("member", MEMBERS)
def test_every_member_has_full_info_schemas_and_small_hdf5_chunks(member):
    row = member_row(member)[1]
    descr = SOURCE.get_model_descr(f"{GROUP}/{member}")
    info = descr.info
    assert [a.name for a in info.authors] == ["Xingyu Su", "Haiyang Yu", "Degui Zhi", "Shuiwang Ji"]
    assert info.cite_as == "https://doi.org/10.48550/arXiv.2502.13991"
    assert info.license == "MIT" and row["cell_type"] in info.tags
    assert row["trained_on"] == info.trained_on and row["metrics"] in info.training_procedure
    assert f"{row['window']}-bp window" in info.doc and "--layer mask" in info.doc
    window = int(row["window"])
    assert descr.schema.inputs["seq"].shape == (window, 4)
    assert descr.schema.inputs["signals"].shape == (window, len(row["signals"].split(",")))
    assert descr.schema.inputs["gene_features"].shape == (9,)
    assert descr.schema.targets.column_labels == ["expression"]
    assert all(descr.schema.inputs[k].doc for k in ("seq", "signals", "gene_features")) and descr.schema.targets.doc
    assert descr.args == {"member_dir": member, "train_config": row["train_config"], "cell_type": row["cell_type"],
                          "rc_average": False}
    # a chunk of per-base mask rows at the paper window stays far below a gigabyte
    assert descr.writers["hdf5_chunk_size"] * 200_000 * 4 < 32 * 2**20


@pytest.mark.parametrize("member", MEMBERS)
def test_member_dataloader_defaults_are_the_columns_its_export_fixes(member):
    row = member_row(member)[1]
    group = LocalComponentGroup.load(str(REPO / "model_zoo" / GROUP), which="dataloader")
    rendered = yaml.safe_load(group.template.render(**group.get_model_row(member)))
    SOURCE.get_dataloader_descr(f"{GROUP}/{member}")  # kipoi parses it
    defaults = {name: arg["default"] for name, arg in rendered["args"].items() if "default" in arg}
    assert defaults == {"signals": row["signals"], "window": int(row["window"]),
                        "hic_normalization": row["hic_normalization"]}
    exported = export_columns(REPO / "model_zoo" / GROUP / member)
    if exported:
        assert defaults == {"signals": exported["signals"], "window": int(exported["window"]),
                            "hic_normalization": exported["hic_normalization"]}


def test_the_dataloaders_yaml_is_the_template_for_no_member():
    assert DATALOADER_YAML.read_text() == dataloader_yaml(REPO / "model_zoo" / GROUP), \
        "Fix: python -c 'from kipoi_seq2exp.zoo.source import write_dataloader_yaml; write_dataloader_yaml()'"
    described = yaml.safe_load(DATALOADER_YAML.read_text())
    assert not [name for name, arg in described["args"].items() if {"default", "example"} & set(arg)]
    assert described["defined_as"] == "kipoi_seq2exp.data.kipoi_dataloader.Seq2ExpDataset"


@pytest.mark.parametrize("member", [m for m in MEMBERS if m not in ("K562", "GM12878", "K562-only")])  # test_zoo_chr22
def test_example_files_exist_and_are_the_simulated_genome(member):
    args = example_dataloader_args(f"{GROUP}/{member}")
    files = {k: v for k, v in args.items() if k.endswith(("_file", "_table", "_bigwig", "features"))}
    assert len(files) == 7 and all(v.startswith("/") for v in files.values())
    assert {k: v for k, v in files.items() if k != "gene_table"} == {
        "fasta_file": str(SIM / "genome.fa"), "h3k27ac_bigwig": str(SIM / "h3k27ac.bw"),
        "dnase_bigwig": str(SIM / "dnase.bw"), "hic_file": str(SIM / "hic_5kb.cool"),
        "mrna_features": str(SIM / "mrna_features.tsv"), "expression_file": str(SIM / "expression.tsv")}
    assert args["hic_normalization"] == "NONE"  # the simulated .cool holds raw counts
    example_rows = open(files["gene_table"]).read().splitlines()
    sim_rows = (SIM / "genes.tsv").read_text().splitlines()
    assert example_rows[0] == sim_rows[0] and set(example_rows[1:]) <= set(sim_rows[1:]) and len(example_rows) == 4


def test_kipoi_get_example_finds_the_example_files(capsys, tmp_path):
    from kipoi.cli.main import cli_get_example

    register_source()
    cli_get_example("get-example", [f"{GROUP}/Demo-hard", "--source", "seq2exp", "-o", str(tmp_path / "example")])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    group = REPO / "model_zoo" / GROUP  # kipoi gives them relative to the member's group folder
    assert {k: str((group / v).resolve()) if isinstance(v, str) and "/" in v else v for k, v in printed.items()} \
        == example_dataloader_args(f"{GROUP}/Demo-hard")


# ------------------------------------------------------------------ models.tsv written from the exports
def test_repository_models_tsv_is_what_the_exports_give(tmp_path):
    """Every exported member's variant, cell type, window, signals, Hi-C normalisation and metrics
    in models.tsv are the ones its config.yaml, data.yaml and metrics.json give."""
    shutil.copytree(REPO / "model_zoo", tmp_path / "model_zoo")
    assert sync_metrics(tmp_path / "model_zoo") == []
    assert (tmp_path / "model_zoo" / GROUP / "models.tsv").read_text() == (REPO / "model_zoo" / GROUP / "models.tsv").read_text()
    rows = {row["model"]: row for row in read_members(REPO / "model_zoo" / GROUP)}
    assert {k: rows["K562"][k] for k in EXPORT_COLUMNS[:-1]} == {
        "variant": "soft", "cell_type": "K562", "window": "20000", "signals": "dnase", "hic_normalization": "VC"}
    assert {k: rows["Demo-hard"][k] for k in EXPORT_COLUMNS[:-1]} == {
        "variant": "hard", "cell_type": "simulated", "window": "20000", "signals": "h3k27ac,dnase,hic",
        "hic_normalization": "NONE"}
    assert tuple(export_columns(REPO / "model_zoo" / GROUP / "K562")) == EXPORT_COLUMNS
    assert export_columns(REPO / "model_zoo" / GROUP / "K562-paper") == {}  # no export: its row is its description


def test_a_new_export_rewrites_the_members_row_and_kipoi_follows(tmp_path):
    """K562's export (soft, DNase only) put into Demo-hard's folder: its row, and so Kipoi's schema,
    become the export's; the hand-written columns stay. Kipoi loads the member from its export alone."""
    source = copy_source(tmp_path)  # no member holds an export
    for name in EXPORT_FILES:
        shutil.copy(REPO / "model_zoo" / GROUP / "K562" / name, source / GROUP / "Demo-hard" / name)
    before = {row["model"]: row for row in read_members(source / GROUP)}

    assert sync_metrics(source) == ["Demo-hard"]
    after = {row["model"]: row for row in read_members(source / GROUP)}
    assert {k: after["Demo-hard"][k] for k in EXPORT_COLUMNS} == {k: before["K562"][k] for k in EXPORT_COLUMNS}
    assert after["Demo-hard"]["signals"] == "dnase" and before["Demo-hard"]["signals"] == "h3k27ac,dnase,hic"
    assert {k: v for k, v in after["Demo-hard"].items() if k not in EXPORT_COLUMNS} == \
        {k: v for k, v in before["Demo-hard"].items() if k not in EXPORT_COLUMNS}
    assert {k: v for k, v in after.items() if k != "Demo-hard"} == {k: v for k, v in before.items() if k != "Demo-hard"}
    assert LocalSource(str(source)).get_model_descr(f"{GROUP}/Demo-hard").schema.inputs["signals"].shape == (20_000, 1)
    model = kipoi.get_model(f"{GROUP}/Demo-hard", source=LocalSource(str(source)))
    assert model.spec.channel_names == ["DNase"] and model.model.cfg.variant == "soft"


def test_a_row_is_written_only_for_an_exported_member(tmp_path):
    source = copy_source(tmp_path)
    with pytest.raises(ZooError, match=r"no value for the columns \['variant', 'cell_type', 'window', 'signals', "
                                       r"'hic_normalization'.*'metrics'\] of member 'Nothing'.*Fix: export"):
        upsert_member(source / GROUP, MemberRow("Nothing", "demo_soft", "x", "x", "x", "x"))


# ------------------------------------------------------------------ metrics in the model info
def export_config_of(member: str, folder):
    """The repository member's config.yaml and data.yaml in ``folder``: an export for models.tsv (no weights)."""
    for name in (CONFIG_FILE, DATA_FILE):
        shutil.copy(REPO / "model_zoo" / GROUP / member / name, folder / name)




def test_sync_metrics_copies_scores_into_the_model_info(tmp_path):
    source = copy_source(tmp_path)
    member = source / GROUP / "Demo-soft"
    export_config_of("Demo-soft", member)
    metrics = {"cell_type": "simulated", "global_step": 200,
               "val": {"mse": 0.31, "mae": 0.4, "pearson": 0.7, "global_step": 200},
               "test": {"mse": 0.25, "mae": 0.38, "pearson": 0.81, "mask_ratio": 0.2, "loss": 1.0, "global_step": 200}}
    (member / METRICS_FILE).write_text(json.dumps(metrics))
    assert format_metrics(metrics) == ("test: mse 0.25, mae 0.38, pearson 0.81, mask_ratio 0.2 (step 200); "
                                       "val: mse 0.31, mae 0.4, pearson 0.7 (step 200)")
    assert sync_metrics(source) == ["Demo-soft"]
    assert sync_metrics(source) == []
    info = LocalSource(str(source)).get_model_descr(f"{GROUP}/Demo-soft").info
    assert "test: mse 0.25, mae 0.38, pearson 0.81" in info.training_procedure
    k562 = LocalSource(str(source)).get_model_descr(f"{GROUP}/K562-paper").info
    assert "published Seq2Exp-soft K562 test scores (mean of 5 seeds): mse 0.1856" in k562.training_procedure


# ------------------------------------------------------------------ weights
@pytest.mark.parametrize("member,config", [("K562-paper", "paper_soft"), ("GM12878-paper", "paper_soft")])
def test_paper_members_say_how_to_produce_their_weights(member, config):
    with pytest.raises(ZooError) as err:
        check_member_dir(REPO / "model_zoo" / GROUP / member, config, member)
    message = str(err.value)
    assert "\n" not in message and f"{GROUP}/{member} has no trained weights" in message
    assert f"seq2exp train --config {config}" in message
    folder = REPO / "model_zoo" / GROUP / member
    assert f"seq2exp export <run folder>/best.ckpt --cell-type {member} --out {folder}" in message
    assert f"seq2exp install-weights {GROUP}/{member}" in message and "--md5" in message


def _archive(folder, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="Demo-soft-export")
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_install_weights_from_an_archive_checks_md5_and_config(tmp_path):
    source = copy_source(tmp_path)
    exported = export_untrained_member(tmp_path / "export", "demo_soft", seed=5)
    md5 = _archive(tmp_path / "export", tmp_path / "export.tar.gz")
    member = source / GROUP / "Demo-soft"

    with pytest.raises(ZooError, match="md5 .* differs"):
        install_weights("Seq2Exp/Demo-soft", str(tmp_path / "export.tar.gz"), md5="0" * 32, source_dir=source)
    assert not (member / WEIGHTS_FILE).exists()
    with pytest.raises(ZooError, match="declares variant hard"):
        install_weights("Seq2Exp/Demo-hard", str(tmp_path / "export.tar.gz"), md5=md5, source_dir=source)
    assert not (source / GROUP / "Demo-hard" / WEIGHTS_FILE).exists()
    with pytest.raises(ZooError, match="needs --md5"):
        install_weights("Seq2Exp/Demo-soft", "https://example.org/demo.tar.gz", source_dir=source)

    assert install_weights("Seq2Exp/Demo-soft", str(tmp_path / "export.tar.gz"), md5=md5, source_dir=source) == member
    installed = load_file(str(member / WEIGHTS_FILE))
    for name, tensor in exported.state_dict().items():
        assert torch.equal(installed[name], tensor)
    assert sorted(p.name for p in member.iterdir()) == sorted(p.name for p in (tmp_path / "export").iterdir())
    assert not [p for p in member.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_install_weights_from_a_folder_removes_a_killed_installs_staging(tmp_path):
    source = copy_source(tmp_path)
    member = source / GROUP / "Demo-hard"
    stale = killed_while_staging(member, "install")
    export_untrained_member(tmp_path / "export", "demo_hard", seed=2)
    install_weights("Demo-hard", str(tmp_path / "export"), source_dir=source)
    assert (member / WEIGHTS_FILE).read_bytes() == (tmp_path / "export" / WEIGHTS_FILE).read_bytes()
    assert not stale.exists() and not [p for p in member.parent.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------ file modes
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_models_tsv_and_kipoi_config_stay_world_readable(tmp_path, isolated_home, umask_022):
    """Both were rewritten through mkstemp (0600): kipoi run by another user, or a web server
    serving the zoo, could no longer read them."""
    source = copy_source(tmp_path)
    models_tsv = source / GROUP / "models.tsv"
    models_tsv.chmod(0o644)
    export_config_of("Demo-soft", source / GROUP / "Demo-soft")
    (source / GROUP / "Demo-soft" / METRICS_FILE).write_text(json.dumps({"test": {"mse": 0.25}}))
    assert sync_metrics(source) == ["Demo-soft"]
    register_source(path=source)
    assert stat.S_IMODE(models_tsv.stat().st_mode) == 0o644
    assert stat.S_IMODE(kipoi_config_path().stat().st_mode) == 0o644


def test_default_source_dir_is_this_checkout():
    assert find_source_dir() == REPO / "model_zoo" == zoo_source.DEFAULT_SOURCE_DIR

"""End to end on a tiny generated genome: training lowers the loss, resume continues the step and
schedule, export -> load reproduces predictions bit for bit, bad runs fail before any step."""
import json
import os

import kipoi
import pytest
import pytorch_lightning as pl
import torch
import yaml

from kipoi_seq2exp.data.config import DataConfig
from kipoi_seq2exp.data.synthetic import write_demo_genome
from kipoi_seq2exp.train.cli import main
from kipoi_seq2exp.train.config import ConfigError, load_run_config
from kipoi_seq2exp.train.datamodule import Seq2ExpDataModule
from kipoi_seq2exp.train.export import (
    CONFIG_FILE,
    DATA_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    export_checkpoint,
    load_exported,
    model_from_checkpoint,
    read_checkpoint,
)
from kipoi_seq2exp.train.optim import WarmupCosine
from kipoi_seq2exp.train.runner import build_trainer, evaluate, fit, predict, trained_module

from test_zoo_helpers import copy_source

SIZES = {"chr1": 6_000, "chr2": 5_000, "chr3": 4_000, "chr22": 4_000}
GENES = [{"gene_id": f"g{c}_{i}", "chrom": c, "tss": 700 + 900 * i, "strand": "+-"[i % 2]}
         for c, n in (("chr1", 5), ("chr2", 4), ("chr3", 3), ("chr22", 3)) for i in range(n)]
N_TRAIN = 9


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, and on a shared, busy CPU OpenMP's spinning
    threads make each step 10-30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    return write_demo_genome(tmp_path_factory.mktemp("genome"), SIZES, GENES, bin_size=100)


def run_yaml(genome, folder, variant="soft", **train):
    """A tiny run config: 1 kb windows, d_model 16, one layer per backbone, batch 4."""
    config = {
        "model": {"preset": f"tiny_{variant}", "window": 1000, "centre": 200, "n_layers_generator": 1,
                  "n_layers_predictor": 1},
        "data": {"fasta": genome["fasta"], "gene_table": genome["genes"], "mrna_features": genome["mrna"],
                 "expression": genome["expression"], "promoter_flank": 100,
                 "tracks": [{"name": "H3K27ac", "path": genome["h3k27ac"]}, {"name": "DNase", "path": genome["dnase"]},
                            {"name": "Hi-C", "path": genome["hic"], "kind": "hic"}],
                 "hic": {"bin_size": 100, "normalization": "NONE"},
                 "split": {"valid_chroms": ["chr3"], "test_chroms": ["chr22"]}},
        "train": {"max_steps": 6, "warmup_steps": 2, "batch_size": 4, "val_every_n_steps": 3,
                  "checkpoint_every_n_steps": 2, "log_every_n_steps": 1, "output_dir": str(folder / "run"), **train},
    }
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class TrainSetLoss(pl.Callback):
    """Eval-mode loss over the whole training set at the start and at the end of fit."""

    def __init__(self):
        self.losses = []

    def _measure(self, trainer, module):
        model = module.model.eval()
        with torch.no_grad():
            totals = [model.loss(model(b["seq"], b["signals"], b["gene_features"]), b["target"]).total * len(b["seq"])
                      for b in trainer.datamodule.train_dataloader()]
        model.train()
        self.losses.append(float(sum(totals)) / N_TRAIN)

    def on_train_start(self, trainer, module):
        self._measure(trainer, module)

    def on_train_end(self, trainer, module):
        self._measure(trainer, module)


class Crash(RuntimeError):
    pass


class CrashAtStep(pl.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Crash(f"simulated crash at step {self.step}")


class RecordStart(pl.Callback):
    def on_train_start(self, trainer, module):
        self.step = trainer.global_step
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


def test_training_lowers_the_loss(genome, tmp_path):
    run = load_run_config(run_yaml(genome, tmp_path), ["train.lr=1e-2", "train.min_lr=1e-2", "train.warmup_steps=0",
                                                       "train.max_steps=8"])
    recorder = TrainSetLoss()
    run_dir = fit(run, extra_callbacks=[recorder])
    before, after = recorder.losses
    assert after < 0.8 * before, recorder.losses
    checkpoint = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # loads with weights_only=True
    assert checkpoint["global_step"] == 8
    assert checkpoint["seq2exp"]["evaluated"]["val"]["global_step"] in (3, 6)
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "config.yaml").is_file()


def test_interrupted_run_resumes_step_and_schedule(genome, tmp_path):
    run = load_run_config(run_yaml(genome, tmp_path))
    with pytest.raises(Crash):
        fit(run, extra_callbacks=[CrashAtStep(3)])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == 2  # every 2 steps: step 3 alone is lost
    start = RecordStart()
    with pytest.warns(UserWarning, match="middle of an epoch"):
        fit(run, resume=last, extra_callbacks=[start])
    schedule = WarmupCosine.from_config(run.train)
    assert start.step == 2 and start.lr == pytest.approx(schedule.lr(2), rel=1e-12)
    final = read_checkpoint(last)
    assert final["global_step"] == 6
    scheduler = final["lr_schedulers"][0]
    assert scheduler["last_epoch"] == 6
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(schedule.lr(6), rel=1e-12)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_export_reproduces_predictions_bit_for_bit(genome, tmp_path, variant):
    run = load_run_config(run_yaml(genome, tmp_path, variant, max_steps=3))
    run_dir = fit(run)
    best = run_dir / "checkpoints" / "best.ckpt"
    scores = evaluate(best, "test")
    assert set(scores) >= {"mse", "mae", "pearson", "mask_ratio"}
    out = export_checkpoint(best, "SIM", tmp_path / "zoo" / "SIM")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # a new folder is not left private like a temp dir
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, DATA_FILE, METRICS_FILE])
    metrics = json.loads((out / METRICS_FILE).read_text())
    assert metrics["cell_type"] == "SIM" and metrics["test"]["mse"] == pytest.approx(scores["mse"])
    assert metrics["test"]["global_step"] == metrics["global_step"] == read_checkpoint(best)["global_step"] > 0
    assert "mse" in metrics["val"]
    assert yaml.safe_load((out / DATA_FILE).read_text())["window"] == 1000

    datamodule = Seq2ExpDataModule(run.data, run.train)
    trainer = build_trainer(run, None, training=False)
    lightning = trainer.predict(trained_module(run, read_checkpoint(best)), datamodule=datamodule)
    exported = load_exported(out)
    assert not exported.training and next(exported.parameters()).device.type == "cpu"
    for rows, batch in zip(lightning, datamodule.predict_dataloader()):
        again = exported.predict(batch["seq"], batch["signals"], batch["gene_features"])
        assert torch.equal(again.expression, rows["prediction"])
        assert torch.equal(again.mask_ratio, rows["mask_ratio"])
    assert sum(len(r["gene_id"]) for r in lightning) == len(GENES)

    table = predict(best, tmp_path / "pred.tsv", split="test")
    assert list(table["gene_id"]) == [g["gene_id"] for g in GENES if g["chrom"] == "chr22"]
    assert list(table.columns) == ["gene_id", "chrom", "start", "end", "strand", "qc", "prediction", "mask_ratio", "target"]


def test_export_keeps_other_files_and_replaces_its_own(genome, tmp_path):
    run_dir = fit(load_run_config(run_yaml(genome, tmp_path, max_steps=1, warmup_steps=0)))
    target = tmp_path / "zoo"
    target.mkdir()
    (target / "model.yaml").write_text("kipoi: yes\n")
    (target / WEIGHTS_FILE).write_text("stale")
    assert main(["export", str(run_dir / "checkpoints" / "last.ckpt"), "--cell-type", "K", "--out", str(target)]) == 0
    assert (target / "model.yaml").read_text() == "kipoi: yes\n"
    assert load_exported(target).cfg.window == 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("overrides, message", [
    (["data.expression=null"], "no targets"),
    (["data.split.valid_chroms=[chrM]"], "'valid' set is empty"),
    (["data.split.valid_chroms=[chr1, chr2, chr3]"], "'train' set is empty"),
])
def test_bad_data_fails_before_training(genome, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        fit(load_run_config(run_yaml(genome, tmp_path), overrides))
    assert not (tmp_path / "run").exists()


def test_checkpoint_of_another_model_is_refused(genome, tmp_path):
    config = run_yaml(genome, tmp_path, max_steps=1, warmup_steps=0)
    run_dir = fit(load_run_config(config))
    last = run_dir / "checkpoints" / "last.ckpt"
    other = load_run_config(config, ["model.d_model=8", "train.max_steps=4"])
    with pytest.raises(CheckpointError, match="d_model: checkpoint 16 vs config 8"):
        fit(other, resume=last)
    with pytest.raises(CheckpointError, match="another model config"):
        evaluate(last, "validate", config, ["model.d_model=8"])
    with pytest.raises(ConfigError, match="raise train.max_steps"):
        fit(load_run_config(config), resume=last)
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="not a kipoi-seq2exp training checkpoint"):
        read_checkpoint(tmp_path / "foreign.ckpt")


def test_cli_reports_user_errors(genome, tmp_path, capsys):
    config = run_yaml(genome, tmp_path)
    assert main(["train", "--config", str(config), "--set", "train.max_stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "seq2exp train: error:" in err and "section 'train'" in err and "max_stepz" in err
    assert main(["test", "--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_joint_cells_train_one_model_on_every_cell(genome, tmp_path):
    """A joint cell (its own tracks and targets) doubles every split; items, validation and predictions
    carry the cell, and each cell's rows are its own inputs through the one shared model."""
    doubled = tmp_path / "doubled.tsv"
    table = [line.split("\t") for line in open(genome["expression"]).read().splitlines()]
    column = table[0].index("expression")
    doubled.write_text("\n".join("\t".join(row if i == 0 else row[:column] + [str(2 * float(row[column]))] + row[column + 1:])
                                 for i, row in enumerate(table)) + "\n")
    swapped = [{"name": "H3K27ac", "path": genome["dnase"]}, {"name": "DNase", "path": genome["h3k27ac"]},
               {"name": "Hi-C", "path": genome["hic"], "kind": "hic"}]
    config = yaml.safe_load(run_yaml(genome, tmp_path).read_text())
    config["data"].update(cell="A", joint_cells=[{"name": "B", "tracks": swapped, "expression": str(doubled)}])
    path = tmp_path / "joint.yaml"
    path.write_text(yaml.safe_dump(config))
    run = load_run_config(path, ["train.max_steps=2", "train.warmup_steps=1", "train.val_every_n_steps=2"])
    data = Seq2ExpDataModule(run.data, run.train)
    train = data.dataset("train")
    assert len(train) == 2 * N_TRAIN and [train[i]["cell"] for i in (0, N_TRAIN)] == ["A", "B"]
    first, second = train[0], train[N_TRAIN]
    assert first["gene_id"] == second["gene_id"]
    assert torch.allclose(torch.log10(2 * (10 ** first["target"] - 1) + 1), second["target"])
    assert torch.equal(first["signals"][:, 0], second["signals"][:, 1])
    run_dir = fit(run)
    table = predict(run_dir / "checkpoints" / "last.ckpt", tmp_path / "pred.tsv", split="valid")
    assert table["cell"].tolist() == ["A"] * 3 + ["B"] * 3 and table["gene_id"].tolist()[:3] == table["gene_id"].tolist()[3:]
    model = model_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")[0].eval()
    item = data.dataset("valid")[3]
    with torch.no_grad():
        expected = model.predict(item["seq"][None], item["signals"][None], item["gene_features"][None]).expression
    assert table["prediction"].iloc[3] == pytest.approx(float(expected), abs=1e-5)
    exported = export_checkpoint(run_dir / "checkpoints" / "last.ckpt", "A", tmp_path / "member")
    text = (exported / DATA_FILE).read_text()
    assert str(tmp_path) not in text and genome["dnase"] not in text  # no machine-specific absolute path
    (cell,) = DataConfig.from_yaml(exported / DATA_FILE).joint_cells
    (expected,) = run.data.joint_cells
    resolved = [os.path.realpath(t.path) for t in cell.tracks] + [os.path.realpath(cell.expression)]
    assert resolved == [os.path.realpath(t.path) for t in expected.tracks] + [os.path.realpath(expected.expression)]


def test_export_into_a_model_group_lists_a_member_of_the_users_naming(genome, tmp_path, capsys):
    from kipoi_seq2exp.cli import main  # the zoo listing is the top-level command's (member_export), not train's
    run_dir = fit(load_run_config(run_yaml(genome, tmp_path), ["train.max_steps=2", "train.warmup_steps=1",
                                                               "train.val_every_n_steps=2"]))
    source = copy_source(tmp_path)
    checkpoint = str(run_dir / "checkpoints" / "best.ckpt")
    before = (source / "Seq2Exp" / "models.tsv").read_text()
    assert main(["export", checkpoint, "--cell-type", "liver", "--out", str(source / "Seq2Exp" / "MyLiver")]) == 0
    assert "listed as Seq2Exp/MyLiver" in capsys.readouterr().out
    after = (source / "Seq2Exp" / "models.tsv").read_text()
    assert after.startswith(before) and after.count("\nMyLiver\t") == 1
    model = kipoi.get_model("Seq2Exp/MyLiver", source=kipoi.sources.LocalSource(str(source)))
    assert model.model.cfg.window == 1000 and "liver" in model.info.trained_on
    assert main(["export", checkpoint, "--cell-type", "liver", "--out", str(source / "Seq2Exp" / "MyLiver")]) == 0
    assert (source / "Seq2Exp" / "models.tsv").read_text() == after  # listed once, row kept


def test_joint_cell_without_genes_in_a_split_is_named_before_training(genome, tmp_path):
    other = tmp_path / "other.tsv"
    other.write_text("gene_id\texpression\ngchr1_0\t5.0\n")  # train genes only: valid is empty for cell B
    config = yaml.safe_load(run_yaml(genome, tmp_path).read_text())
    config["data"].update(cell="A", joint_cells=[{"name": "B", "tracks": config["data"]["tracks"], "expression": str(other)}])
    path = tmp_path / "joint.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="the 'valid' set of cell 'B' is empty"):
        fit(load_run_config(path))

"""Sharded, resumable `seq2exp predict` on the tiny generated genome of test_train_run: shards merge to
the single-process table byte for byte, an interrupted run computes only its missing chunks, and
missing parts or parts of another checkpoint are refused with a message naming them."""
import hashlib
import json
import sys
from contextlib import contextmanager

import pandas as pd
import pytest
import torch

from kipoi_seq2exp.train import shards
from kipoi_seq2exp.train.cli import main
from kipoi_seq2exp.train.config import load_run_config
from kipoi_seq2exp.train.datamodule import Seq2ExpDataModule
from kipoi_seq2exp.train.export import read_checkpoint
from kipoi_seq2exp.train.module import Seq2ExpModule, prediction_table
from kipoi_seq2exp.train.runner import build_trainer, fit, predict, resolve_run, trained_module
from kipoi_seq2exp.train.shards import Plan, Shard, ShardError, merge

from test_train_run import GENES, Crash, genome, one_thread, run_yaml  # noqa: F401  (fixtures)

#: 15 genes in batches of 2: 8 batches, the last of 1 gene; parts of 2 batches (--chunk-genes 3 rounds up to 4)
OVERRIDES = ["train.eval_batch_size=2"]
CHUNK_GENES = 3
PREDICT_STEP = Seq2ExpModule.predict_step


@contextmanager
def single_thread():
    """As the tests' own `one_thread` (function-scoped, so not yet active in module fixtures): bits
    compare only between runs with the same number of threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(genome, tmp_path_factory):
    """A 1-step checkpoint of the tiny model."""
    with single_thread():
        run_dir = fit(load_run_config(run_yaml(genome, tmp_path_factory.mktemp("run"), max_steps=1, warmup_steps=0)))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def in_memory_tsv(checkpoint):
    """The TSV as `seq2exp predict` wrote it before parts existed: every batch in memory, one table."""
    stored = read_checkpoint(checkpoint)
    run = resolve_run(None, OVERRIDES, stored, checkpoint)
    trainer = build_trainer(run, None, training=False)
    with single_thread():
        batches = trainer.predict(trained_module(run, stored), datamodule=Seq2ExpDataModule(run.data, run.train))
    return pd.DataFrame(prediction_table(batches)).to_csv(sep="\t", index=False).encode()


def run_predict(checkpoint, out, shard="0/1"):
    return predict(checkpoint, out, overrides=OVERRIDES, shard=Shard.parse(shard), chunk_genes=CHUNK_GENES)


class CountRows:
    """Wraps `Seq2ExpModule.predict_step`: counts the rows predicted, and raises after ``fail_after`` batches."""

    def __init__(self, monkeypatch, fail_after=None):
        self.rows, self.batches, self.fail_after = 0, 0, fail_after

        def counted(module, batch, batch_idx):
            if self.batches == self.fail_after:
                raise Crash("simulated crash")
            self.batches += 1
            self.rows += len(batch["gene_id"])
            return PREDICT_STEP(module, batch, batch_idx)

        monkeypatch.setattr(Seq2ExpModule, "predict_step", counted)


def test_plan_cuts_whole_batches_into_balanced_contiguous_shards():
    plan = Plan.of(rows=15, shards=3, batch_size=2, chunk_genes=CHUNK_GENES)
    assert plan.chunk_batches == 2 and plan.batches == 8
    spans = {str(s): [(c.index, c.start, c.stop) for c in plan.chunks(s)]
             for s in map(Shard.parse, ("0/3", "1/3", "2/3"))}
    assert spans == {"0/3": [(0, 0, 4)], "1/3": [(0, 4, 8), (1, 8, 10)], "2/3": [(0, 10, 14), (1, 14, 15)]}
    genome_scale = Plan.of(rows=18_377, shards=100, batch_size=8, chunk_genes=64)
    rows = [r for c in genome_scale.all_chunks() for r in range(c.start, c.stop)]
    assert rows == list(range(18_377))
    sizes = [sum(c.rows for c in genome_scale.chunks(Shard(k, 100))) for k in range(100)]
    assert max(sizes) - min(sizes) <= 8
    assert plan.all_chunks()[2].name == "shard-0001-of-0003.chunk-00001.parquet"


@pytest.mark.parametrize("text, message", [("3/3", "0..N-1"), ("1-4", "expected I/N"), ("0/0", "0..N-1")])
def test_bad_shard_is_refused(text, message):
    with pytest.raises(ShardError, match=message) as error:
        Shard.parse(text)
    assert "Fix:" in str(error.value)


def test_single_run_and_three_shards_write_the_in_memory_table_byte_for_byte(checkpoint, in_memory_tsv, tmp_path,
                                                                              capsys, monkeypatch):
    single = tmp_path / "single.tsv"
    table = run_predict(checkpoint, single)
    assert single.read_bytes() == in_memory_tsv and len(table) == len(GENES)

    sharded = tmp_path / "sharded.tsv"
    base = ["predict", "--ckpt", str(checkpoint), "--out", str(sharded), "--chunk-genes", str(CHUNK_GENES),
            "--set", OVERRIDES[0]]
    for index in (2, 0, 1):  # in any order; the one completing the set merges
        argv = base + ["--shard", f"{index}/3"]
        monkeypatch.setattr(sys, "argv", ["seq2exp", *argv])  # what the manifest records
        assert main(argv) == 0
        assert sharded.exists() == (index == 1)
    assert "15 predictions written" in capsys.readouterr().out
    assert sharded.read_bytes() == in_memory_tsv
    sharded.unlink()
    assert main(["merge", str(sharded)]) == 0
    assert sharded.read_bytes() == in_memory_tsv

    manifest = json.loads((tmp_path / "sharded.tsv.manifest.json").read_text())
    assert manifest["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    gene_table = manifest["inputs"]["gene_table"]
    assert gene_table["sha256"] == hashlib.sha256(open(gene_table["path"], "rb").read()).hexdigest()
    assert manifest["output"] == {"path": str(sharded), "rows": 15, "sha256": hashlib.sha256(in_memory_tsv).hexdigest()}
    assert [(s["shard"], s["chunks_done"]) for s in manifest["shards"]] == [(0, [0]), (1, [0, 1]), (2, [0, 1])]
    assert manifest["shards"][1]["command"][-2:] == ["--shard", "1/3"]
    assert manifest["versions"]["kipoi_seq2exp"] and manifest["versions"]["torch"] == torch.__version__
    assert manifest["settings"]["split"] == "all" and {s["threads"] for s in manifest["shards"]} == {1}


def test_big_inputs_are_identified_by_size_and_mtime(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "HASH_LIMIT_BYTES", 0)
    run_predict(checkpoint, tmp_path / "pred.tsv")
    manifest = json.loads((tmp_path / "pred.tsv.manifest.json").read_text())
    fasta = manifest["inputs"]["fasta"]
    assert "sha256" not in fasta and fasta["mtime"] and fasta["bytes"] > 0
    assert "sha256" in manifest["checkpoint"]  # the checkpoint is always hashed


def test_interrupted_run_resumes_with_only_the_missing_chunks(checkpoint, in_memory_tsv, tmp_path, monkeypatch):
    out = tmp_path / "pred.tsv"
    crash = CountRows(monkeypatch, fail_after=5)  # batches 0-3 fill parts 0 and 1; batch 4 is lost with the crash
    with pytest.raises(Crash, match="simulated crash"):
        run_predict(checkpoint, out)
    parts = sorted(p.name for p in (tmp_path / "pred.tsv.parts").glob("*.parquet"))
    assert parts == ["shard-0000-of-0001.chunk-00000.parquet", "shard-0000-of-0001.chunk-00001.parquet"]
    assert crash.rows == 10 and not out.exists()

    resumed = CountRows(monkeypatch)
    run_predict(checkpoint, out)
    assert resumed.rows == 15 - 8  # chunks 2 and 3 (rows 8-15), nothing of chunks 0 and 1 again
    assert out.read_bytes() == in_memory_tsv

    (tmp_path / "pred.tsv.parts" / parts[1]).unlink()
    out.unlink()
    again = CountRows(monkeypatch)
    run_predict(checkpoint, out)
    assert again.rows == 4 and out.read_bytes() == in_memory_tsv


def test_merge_names_the_missing_parts(checkpoint, tmp_path, capsys):
    out = tmp_path / "pred.tsv"
    with pytest.raises(ShardError, match="no shard manifests"):
        merge(out)
    assert run_predict(checkpoint, out, "1/3") is None
    with pytest.raises(ShardError) as error:
        merge(out)
    message = str(error.value)
    assert "shard 0/3: chunk(s) 0 of 0-0; shard 2/3: chunk(s) 0, 1 of 0-1" in message
    assert "--shard I/3 again for I in 0 2" in message and not out.exists()
    assert main(["merge", str(out)]) == 2
    assert "seq2exp merge: error:" in capsys.readouterr().err


def test_parts_of_another_checkpoint_are_refused(checkpoint, tmp_path):
    other = tmp_path / "other.ckpt"
    stored = read_checkpoint(checkpoint)
    stored["state_dict"] = {k: v + 1 for k, v in stored["state_dict"].items()}
    torch.save(stored, other)

    out = tmp_path / "pred.tsv"
    run_predict(checkpoint, out, "0/2")
    with pytest.raises(ShardError, match=r"holds parts of another run .*differs in checkpoint\. Fix: give another"):
        run_predict(other, out, "1/2")

    elsewhere = tmp_path / "other.tsv"
    run_predict(other, elsewhere, "1/2")
    for part in (tmp_path / "other.tsv.parts").glob("*.parquet"):  # a part copied in by hand
        part.rename(tmp_path / "pred.tsv.parts" / part.name)
    with pytest.raises(ShardError, match="shard-0001-of-0002.chunk-00000.parquet: written by another run"):
        merge(out)
    with pytest.raises(ShardError, match="written by another run"):
        run_predict(checkpoint, out, "1/2")


def test_another_cut_of_the_same_run_is_refused(checkpoint, tmp_path):
    out = tmp_path / "pred.tsv"
    run_predict(checkpoint, out, "0/2")
    with pytest.raises(ShardError, match=r"cut as 15 rows in 2 shard\(s\).*--shard I/2 and --chunk-genes 4"):
        run_predict(checkpoint, out, "0/3")

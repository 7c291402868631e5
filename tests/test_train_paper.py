"""The packaged paper configs build the released architecture and take one optimiser step
(window shortened to 4 kb, the central 2 kb kept)."""
import pytest
import torch

from kipoi_seq2exp.data.synthetic import write_demo_genome
from kipoi_seq2exp.model import count_parameters_by_hand
from kipoi_seq2exp.train.config import load_run_config
from kipoi_seq2exp.train.datamodule import Seq2ExpDataModule
from kipoi_seq2exp.train.optim import build_optimizer, build_scheduler
from kipoi_seq2exp.train.runner import new_module

SIZES = {"chr1": 9_000, "chr3": 5_000, "chr22": 5_000}
GENES = [{"gene_id": "a", "chrom": "chr1", "tss": 2_500, "strand": "+"},
         {"gene_id": "b", "chrom": "chr1", "tss": 7_000, "strand": "-"},
         {"gene_id": "c", "chrom": "chr3", "tss": 2_000, "strand": "+"},
         {"gene_id": "d", "chrom": "chr22", "tss": 2_000, "strand": "+"}]


@pytest.fixture(scope="module")
def data_overrides(tmp_path_factory):
    files = write_demo_genome(tmp_path_factory.mktemp("genome"), SIZES, GENES, bin_size=1000)
    return [f"data.fasta={files['fasta']}", f"data.gene_table={files['genes']}",
            f"data.tracks.0.path={files['h3k27ac']}", f"data.tracks.1.path={files['dnase']}",
            f"data.tracks.2.path={files['hic']}", "data.hic.bin_size=1000", "data.hic.normalization=NONE",
            f"data.mrna_features={files['mrna']}", f"data.expression={files['expression']}"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["paper_soft", "paper_hard"])
def test_paper_config_takes_one_training_step(name, data_overrides):
    run = load_run_config(name, data_overrides + ["model.window=4000", "train.batch_size=1"])
    assert (run.model.d_model, run.model.n_layers_generator, run.model.centre) == (128, 4, 2000)
    module = new_module(run)
    model = module.model
    assert model.n_parameters() == count_parameters_by_hand(run.model)
    optimizer = build_optimizer(model, run.train)
    scheduler = build_scheduler(optimizer, run.train)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)
    batch = next(iter(Seq2ExpDataModule(run.data, run.train).train_dataloader()))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = module(batch)
    loss = model.loss(out, batch["target"]).total
    assert torch.isfinite(loss)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), run.train.gradient_clip)
    assert torch.isfinite(norm) and norm > 0
    optimizer.step()
    scheduler.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    predictor = "generator" if run.model.shared_backbone else "predictor"  # hard: one backbone, named once
    assert "head.0.weight" in changed and any(n.startswith(f"{predictor}.layers.3.") for n in changed)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5 + (5e-4 - 1e-5) / 5000, rel=1e-9)

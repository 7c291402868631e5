"""Importing the authors' checkpoints: no pickled code runs, configuration from the tensors, strict errors."""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch

from conftest import FIXTURE, airs_outputs
from kipoi_seq2exp import airs
from kipoi_seq2exp.airs import CheckpointError, Placeholder, import_airs, read_foreign_checkpoint
from kipoi_seq2exp.airs import checkpoint as airs_reader
from kipoi_seq2exp.train import export
from kipoi_seq2exp.train.export import load_exported


def predict_fixture(member: Path, inputs: dict) -> torch.Tensor:
    model = load_exported(member)
    return model.predict(inputs["seqs"], inputs["signals"], inputs["rna_feat"], inputs["mask_regions"][..., 1]).expression


def test_safe_reader_equals_torch_weights_only_load():
    ours = read_foreign_checkpoint(FIXTURE / "hard.ckpt.pt")["state_dict"]
    reference = torch.load(FIXTURE / "hard.ckpt.pt", weights_only=True)["state_dict"]
    assert set(ours) == set(reference)
    assert all(torch.equal(ours[k], reference[k]) and ours[k].dtype == reference[k].dtype for k in reference)


@pytest.mark.parametrize("variant,window", [("soft", 6_000), ("hard", None)])
def test_import_reproduces_authors_predictions(variant, window, tmp_path, airs_inputs):
    member = import_airs(FIXTURE / f"{variant}.ckpt.pt", variant, tmp_path / "K562", cell_type="K562", window=window)
    expected = airs_outputs(variant)["eval"]["pred"].squeeze(-1)
    got = predict_fixture(member, airs_inputs)
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()
    assert sorted(p.name for p in member.iterdir()) == ["config.yaml", "data.yaml", "metrics.json", "model.safetensors"]


def make_hostile_checkpoint(path: Path, marker: Path) -> None:
    """A checkpoint whose hyper_parameters hold an object of a class that does not exist at load time,
    and whose unpickling would run os.system / the class's __setstate__ if anything executed it."""
    module = types.ModuleType("lab_private_config")
    sys.modules[module.__name__] = module

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class LabConfig:
        def __setstate__(self, state):
            marker.write_text("setstate ran")

    for cls in (Exploit, LabConfig):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    config = LabConfig()
    config.__dict__.update(payload=Exploit(), d_model=16)
    ckpt = torch.load(FIXTURE / "soft.ckpt.pt", weights_only=True)
    ckpt["hyper_parameters"] = config
    try:
        torch.save(ckpt, path)
    finally:
        del sys.modules[module.__name__]


def test_foreign_classes_become_inert_placeholders(tmp_path, airs_inputs):
    marker = tmp_path / "code-ran"
    make_hostile_checkpoint(tmp_path / "hostile.ckpt", marker)
    raw = read_foreign_checkpoint(tmp_path / "hostile.ckpt")
    assert isinstance(raw["hyper_parameters"], Placeholder)
    assert raw["hyper_parameters"].qualname == "lab_private_config.LabConfig"
    member = import_airs(tmp_path / "hostile.ckpt", "soft", tmp_path / "member", window=6_000)
    assert not marker.exists()
    expected = airs_outputs("soft")["eval"]["pred"].squeeze(-1)
    assert torch.allclose(predict_fixture(member, airs_inputs), expected, rtol=1e-5)


def test_one_checkpoint_error_and_one_read_checkpoint():
    """Our checkpoints and the authors' fail with the same class; read_checkpoint means train.export's."""
    assert CheckpointError is export.CheckpointError
    assert not hasattr(airs_reader, "read_checkpoint") and not hasattr(airs, "read_checkpoint")


def test_truncated_and_non_zip_files_fail_without_writing(tmp_path):
    data = (FIXTURE / "soft.ckpt.pt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    for name in ("truncated.ckpt", "notes.ckpt"):
        with pytest.raises(CheckpointError, match=name):
            import_airs(tmp_path / name, "soft", tmp_path / "member")
        assert not (tmp_path / "member").exists()


def test_other_model_and_wrong_variant_and_window_fail_clearly(tmp_path):
    torch.save({"state_dict": {"model.encoder.weight": torch.zeros(3)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a Seq2Exp"):
        import_airs(tmp_path / "other.ckpt", "soft", tmp_path / "member")
    with pytest.raises(ValueError, match="pass --variant hard"):
        import_airs(FIXTURE / "hard.ckpt.pt", "soft", tmp_path / "member")
    with pytest.raises(ValueError, match="positional embedding covers 6,000 bp but --window is 200,000"):
        import_airs(FIXTURE / "hard.ckpt.pt", "hard", tmp_path / "member", window=200_000)
    assert not (tmp_path / "member").exists() and not list(tmp_path.glob(".member*"))

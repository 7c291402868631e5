"""Shared test setup: Kipoi writes ~/.kipoi on import, so every test gets its own HOME."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    # Triton decides compiled or interpreted for each kernel as it is defined, its own library
    # included when it is imported (Lightning imports it): set here, before any test module, so
    # the Triton scan's tests run in its interpreter on the CPU (tests/test_triton_scan.py).
    os.environ.setdefault("TRITON_INTERPRET", "1")

FIXTURE = Path(__file__).parent / "fixtures" / "airs"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(scope="session")
def airs_inputs() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE / "inputs.pt", weights_only=True)


def airs_outputs(variant: str) -> dict:
    return torch.load(FIXTURE / f"outputs_{variant}.pt", weights_only=True)


def airs_checkpoint(variant: str) -> dict:
    return torch.load(FIXTURE / f"{variant}.ckpt.pt", weights_only=True)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

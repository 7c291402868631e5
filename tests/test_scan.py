"""Selective scan: the chunked PyTorch path and the dispatcher against the float64 reference."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import torch

from conftest import requires_cuda

ss = importlib.import_module("kipoi_seq2exp.ops.selective_scan")  # the module, not the re-exported function


def scan_inputs(batch=2, d_inner=6, d_state=16, length=301, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    return dict(u=r(batch, d_inner, length), delta=r(batch, d_inner, length) * 0.5,
                A=-torch.rand(d_inner, d_state, generator=g, dtype=dtype) * 4, B=r(batch, d_state, length),
                C=r(batch, d_state, length), D=r(d_inner), z=r(batch, d_inner, length), delta_bias=r(d_inner) * 0.3)


@pytest.mark.parametrize("segment,chunk", [(64, 16), (96, 32), (2048, 16)])
def test_chunked_matches_reference_in_float32(segment, chunk):
    """Chunk and segment boundaries, and L = 301 not divisible by either."""
    x = scan_inputs()
    ref = ss.selective_scan_reference(**x, delta_softplus=True)
    x32 = {k: v.float() for k, v in x.items()}
    out = ss.selective_scan_chunked(**x32, delta_softplus=True, segment=segment, chunk=chunk)
    assert out.dtype == torch.float32
    assert (out.double() - ref).abs().max() < 1e-4


def test_chunked_without_optional_terms():
    x = scan_inputs(batch=1, length=77)
    x["delta"] = x["delta"].abs()
    for key in ("D", "z", "delta_bias"):
        x[key] = None
    ref = ss.selective_scan_reference(**x)
    out = ss.selective_scan_chunked(**x, segment=32, chunk=16)
    assert (out - ref).abs().max() < 1e-12 * ref.abs().max()


def test_chunked_gradients_match_reference():
    x = {k: v.requires_grad_() for k, v in scan_inputs(length=150).items()}
    upstream = torch.randn(2, 6, 150, dtype=torch.float64)
    names = list(x)
    ref = torch.autograd.grad((ss.selective_scan_reference(**x, delta_softplus=True) * upstream).sum(), list(x.values()))
    got = torch.autograd.grad((ss.selective_scan_chunked(**x, delta_softplus=True, segment=64, chunk=16) * upstream).sum(),
                              list(x.values()))
    for name, r, c in zip(names, ref, got):
        assert (r - c).abs().max() <= 1e-8 * max(1.0, r.abs().max().item()), name


def test_backend_override_and_errors(monkeypatch):
    x = {k: v.float() for k, v in scan_inputs(length=40).items()}
    ref = ss.selective_scan(**x, delta_softplus=True, backend="reference")
    monkeypatch.setenv(ss.ENV_BACKEND, "chunked")
    assert ss.resolve_backend(torch.device("cpu")) == "chunked"
    assert torch.allclose(ss.selective_scan(**x, delta_softplus=True), ref, atol=1e-5)
    monkeypatch.setenv(ss.ENV_BACKEND, "warp-drive")
    with pytest.raises(ValueError, match="not a selective-scan backend"):
        ss.resolve_backend(torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown selective-scan backend"):
        ss.set_scan_backend("warp-drive")


def test_cpu_never_chooses_cuda_backend(monkeypatch):
    monkeypatch.delenv(ss.ENV_BACKEND, raising=False)
    assert ss.resolve_backend(torch.device("cpu")) in ("compiled", "chunked")


def test_package_import_does_not_load_cuda_extensions():
    code = ("import sys, kipoi_seq2exp.model, kipoi_seq2exp.ops; "
            "bad = [m for m in ('mamba_ssm', 'causal_conv1d', 'triton') if m in sys.modules]; print(bad)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@requires_cuda
def test_cuda_backend_matches_chunked():
    x = {k: v.float().cuda() for k, v in scan_inputs(length=1000).items()}
    fused = ss.selective_scan(**x, delta_softplus=True)
    chunked = ss.selective_scan_chunked(**x, delta_softplus=True)
    assert (fused - chunked).abs().max() < 1e-3


def test_allocator_tuning_is_applied_once_and_can_be_disabled():
    code = ("from kipoi_seq2exp.ops.memory import reuse_freed_memory as r; "
            "print(r(), r())")
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert on == ["True", "True"]
    env = {**os.environ, "SEQ2EXP_MALLOC_TUNING": "0"}
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.split()
    assert off == ["False", "False"]

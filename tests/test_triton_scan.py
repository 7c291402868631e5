"""The Triton selective scan against the float64 sequential reference, and its dispatch.

Without a GPU the kernels run in Triton's interpreter (numpy, CPU tensors; conftest.py sets
$TRITON_INTERPRET before anything imports Triton): slow, so the shapes are tiny, but every kernel
line runs: L = 37 over chunks of 16 and tiles of 8 (a partial last chunk), 6 channels over blocks
of 4 (a partial last block), d_state 3 (padded to 4), both directions, every optional term on and
off, strided views. With a GPU the same checks run
compiled on CUDA, and CUDA-only tests add a model-sized call and bfloat16 inputs.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import torch

from conftest import requires_cuda
from kipoi_seq2exp.ops.selective_scan import selective_scan_reference
from kipoi_seq2exp.ops.triton_scan import TritonScanConfig, selective_scan_triton

dispatch = importlib.import_module("kipoi_seq2exp.ops.selective_scan")  # the package exports a same-named function

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
ARG_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
SMALL = TritonScanConfig(chunk=16, block_t=8, block_d=4)
FORWARD_TOL = 1e-5  # float32 kernels against float64: max |error| / max |reference|
GRAD_TOL = 2e-5


@pytest.fixture(scope="module")
def kernels():
    pytest.importorskip("triton")
    module = importlib.import_module("kipoi_seq2exp.ops._triton_kernels")
    if not ON_GPU and not module.INTERPRETED:
        pytest.skip("no GPU, and Triton's interpreter is off ($TRITON_INTERPRET is set by conftest.py unless "
                    "the environment sets it otherwise)")
    return module


needs_triton = pytest.mark.usefixtures("kernels")


def make_inputs(batch=2, d_inner=6, d_state=3, length=37, *, with_D=True, with_z=True, with_bias=True,
                positive_delta=False, strided=False, seed=0, dtype=torch.float64, device="cpu") -> dict:
    """Random scan inputs, the same values for every dtype and device; ``strided`` lays u, z, B and
    C out as the model does (views of a wider projection output) and delta channels-last."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, offset=0.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale + offset

    x = {"u": rand(batch, d_inner, length), "delta": rand(batch, d_inner, length, scale=0.5, offset=-0.5),
         "A": -torch.rand(d_inner, d_state, generator=g, dtype=torch.float64).mul(3).add(0.05),
         "B": rand(batch, d_state, length), "C": rand(batch, d_state, length),
         "D": rand(d_inner) if with_D else None, "z": rand(batch, d_inner, length) if with_z else None,
         "delta_bias": rand(d_inner, scale=0.3) if with_bias else None}
    if positive_delta:
        x["delta"] = x["delta"].abs()
    x = {k: None if v is None else v.to(device=device, dtype=dtype) for k, v in x.items()}
    if strided:
        x["u"], x["z"] = torch.cat([x["u"], x["z"]], dim=1).chunk(2, dim=1)
        x["B"], x["C"] = torch.cat([x["B"], x["B"], x["C"]], dim=1).split([d_state, d_state, d_state], 1)[1:]
        x["delta"] = x["delta"].transpose(1, 2).contiguous().transpose(1, 2)
        assert not any(x[k].is_contiguous() for k in ("u", "z", "B", "C", "delta"))
    return x


def run(fn, x: dict, dout: torch.Tensor, **kwargs) -> tuple[torch.Tensor, dict]:
    """fn's output and the gradients of every given input (strides kept), on the CPU."""
    leaves = {k: v.detach().requires_grad_() for k, v in x.items() if v is not None}
    out = fn(*[leaves.get(name) for name in ARG_NAMES], **kwargs)
    grads = torch.autograd.grad(out, list(leaves.values()), dout.to(device=out.device, dtype=out.dtype))
    return out.detach().cpu(), {k: g.cpu() for k, g in zip(leaves, grads)}


def reference_reversed(*args, delta_softplus=False):
    """The reference scan right to left: flip the sequence axis in and out."""
    flipped = [a.flip(-1) if a is not None and a.dim() == 3 else a for a in args]
    return selective_scan_reference(*flipped, delta_softplus=delta_softplus).flip(-1)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


VARIANTS = {
    "D, z, delta_bias, softplus, d_state 4": dict(kwargs=dict(d_state=4), softplus=True),
    "no D, z, delta_bias or softplus": dict(
        kwargs=dict(with_D=False, with_z=False, with_bias=False, positive_delta=True), softplus=False),
    "z without D, softplus, strided views": dict(kwargs=dict(with_D=False, strided=True), softplus=True),
}


@needs_triton
@pytest.mark.parametrize("reverse", [False, True], ids=["left to right", "right to left"])
@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_forward_and_every_gradient_match_float64_reference(variant, reverse):
    spec = VARIANTS[variant]
    x = make_inputs(**spec["kwargs"])
    dout = torch.randn(x["u"].shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = reference_reversed if reverse else selective_scan_reference
    want, want_grads = run(reference, x, dout, delta_softplus=spec["softplus"])
    x32 = make_inputs(**spec["kwargs"], dtype=torch.float32, device=DEVICE)
    got, grads = run(selective_scan_triton, x32, dout, delta_softplus=spec["softplus"], reverse=reverse, config=SMALL)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert relative_error(got, want) < FORWARD_TOL
    assert grads.keys() == want_grads.keys()
    for name, grad in grads.items():
        assert grad.dtype == torch.float32 and grad.shape == x[name].shape, name
        assert relative_error(grad, want_grads[name]) < GRAD_TOL, f"d{name}"


@needs_triton
@pytest.mark.parametrize("config", [TritonScanConfig(chunk=64, block_t=64, block_d=8),
                                    TritonScanConfig(chunk=8, block_t=4, block_d=2)],
                         ids=["one chunk, one tile", "five chunks of two tiles"])
def test_inference_call_matches_reference_for_other_tile_sizes(config):
    x = make_inputs(d_state=4, length=37, seed=2)
    x32 = make_inputs(d_state=4, length=37, seed=2, dtype=torch.float32, device=DEVICE)
    with torch.no_grad():
        got = selective_scan_triton(*[x32[k] for k in ARG_NAMES], delta_softplus=True, config=config)
    want = selective_scan_reference(*[x[k] for k in ARG_NAMES], delta_softplus=True)
    assert relative_error(got.cpu(), want) < FORWARD_TOL


@needs_triton
def test_bfloat16_inputs_give_bfloat16_results_within_their_resolution():
    """State and arithmetic stay float32; only the stored output is rounded (one bfloat16 ulp, 2^-7)."""
    x16 = make_inputs(length=20, seed=5, dtype=torch.bfloat16, device=DEVICE)
    with torch.no_grad():
        got = selective_scan_triton(*[x16[k] for k in ARG_NAMES], delta_softplus=True, config=SMALL)
    want = selective_scan_reference(*[x16[k].cpu().double() for k in ARG_NAMES], delta_softplus=True)
    assert got.dtype == torch.bfloat16
    assert relative_error(got.cpu(), want) < 2 ** -7


@needs_triton
def test_dispatcher_runs_triton_backend(monkeypatch):
    monkeypatch.setattr(dispatch, "_forced_backend", None)
    monkeypatch.setenv(dispatch.ENV_BACKEND, "triton")
    assert dispatch.resolve_backend(torch.device("cpu")) == "triton"
    x = make_inputs(length=20, dtype=torch.float32, device=DEVICE)
    args = [x[k] for k in ARG_NAMES]
    with torch.no_grad():
        got = dispatch.selective_scan(*args, delta_softplus=True)
        want = selective_scan_triton(*args, delta_softplus=True)
    assert torch.equal(got, want)


@needs_triton
def test_wrong_shapes_and_devices_are_named():
    x = make_inputs(length=10, dtype=torch.float32, device=DEVICE)
    bad = dict(x, B=x["B"][:, :, :5])
    with pytest.raises(ValueError, match=r"argument B has shape \(2, 3, 5\), expected \(2, 3, 10\)"):
        selective_scan_triton(*[bad[k] for k in ARG_NAMES])
    with pytest.raises(ValueError, match="must be a power of two"):
        TritonScanConfig(block_t=24)
    with pytest.raises(ValueError, match="multiple of block_t"):
        TritonScanConfig(chunk=40, block_t=16)


def test_auto_choice_on_cuda_is_mamba_ssm_then_triton_then_chunked(monkeypatch):
    monkeypatch.setattr(dispatch, "_forced_backend", None)
    monkeypatch.delenv(dispatch.ENV_BACKEND, raising=False)
    cuda = torch.device("cuda")
    for mamba_ssm, triton, expected in [(True, True, "cuda"), (False, True, "triton"), (False, False, "chunked")]:
        monkeypatch.setattr(dispatch, "_cuda_available", lambda m=mamba_ssm: m)
        monkeypatch.setattr(dispatch, "_triton_available", lambda t=triton: t)
        assert dispatch.resolve_backend(cuda) == expected
        assert dispatch.resolve_backend(torch.device("cpu")) in ("compiled", "chunked")


def test_module_imports_without_triton_and_says_what_to_install():
    code = ("import sys; sys.modules['triton'] = None; import torch; "
            "from kipoi_seq2exp.ops import triton_scan as t; assert not t.is_available(); "
            "x = torch.zeros(1, 2, 3); A = torch.zeros(2, 4); B = torch.zeros(1, 4, 3)\n"
            "try:\n    t.selective_scan_triton(x, x, A, B, B)\n"
            "except RuntimeError as err:\n    print(err)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "needs Triton" in out and "pip install triton" in out


@needs_triton
@requires_cuda
def test_cuda_model_sized_call_matches_chunked_in_float32_and_bfloat16():
    """d_inner 64, d_state 16 (the model's), L = 5,000 over the default tiles: forward and gradients
    against the float64 reference on the same float32 values; bfloat16 inputs within bfloat16's
    resolution (2^-8) of the same reference."""
    shape = dict(batch=2, d_inner=64, d_state=16, length=5000, seed=3)
    x = make_inputs(**shape)
    dout = torch.randn(x["u"].shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    want, want_grads = run(selective_scan_reference, x, dout, delta_softplus=True)
    got, grads = run(selective_scan_triton, make_inputs(**shape, dtype=torch.float32, device="cuda"), dout,
                     delta_softplus=True)
    assert relative_error(got, want) < 1e-4
    for name in grads:
        assert relative_error(grads[name], want_grads[name]) < 1e-3, f"d{name}"
    x16 = make_inputs(**shape, dtype=torch.bfloat16, device="cuda")
    want16, _ = run(selective_scan_reference, {k: v.cpu().double() for k, v in x16.items()}, dout,
                    delta_softplus=True)
    got16, grads16 = run(selective_scan_triton, x16, dout, delta_softplus=True)
    assert got16.dtype == torch.bfloat16 and all(g.dtype == torch.bfloat16 for g in grads16.values())
    assert relative_error(got16, want16) < 2 ** -7

"""The compiled CPU selective scan against the float64 sequential reference, and its dispatch.

Every kernel this machine can run (avx512, avx2, generic) is checked: forward and all eight
gradients, several time blocks with a partial last one, batch > 1, strided inputs, every
optional argument on and off. The kernels compute in float32; the reference runs in float64.
"""
from __future__ import annotations

import functools
import importlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from kipoi_seq2exp.ops import build
from kipoi_seq2exp.ops import scan_compiled as sc
from kipoi_seq2exp.ops.selective_scan import selective_scan, selective_scan_reference

dispatch = importlib.import_module("kipoi_seq2exp.ops.selective_scan")  # the package exports a same-named function

KERNELS_HERE = sc.available_kernels()
needs_kernel = pytest.mark.skipif(not KERNELS_HERE, reason="no compiled selective-scan kernel built")
ARG_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
FORWARD_TOL = 1e-5
GRAD_TOL = 5e-5


def make_inputs(batch=2, d_inner=6, d_state=16, length=150, *, with_D=True, with_z=True, with_bias=True,
                strided=False, delta_scale=0.5, positive_delta=False, seed=0, dtype=torch.float64) -> dict:
    """Random scan inputs; ``strided`` builds every tensor as a non-contiguous view;
    ``positive_delta`` for calls without softplus, where a negative step would blow up."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, offset=0.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale + offset).to(dtype)

    def channels_last(x):  # (b, c, L) values laid out as a transposed, every-other-element view
        wide = torch.zeros(x.shape[0], x.shape[2], 2 * x.shape[1], dtype=x.dtype)
        wide[:, :, ::2] = x.transpose(1, 2)
        return wide[:, :, ::2].transpose(1, 2)

    x = {
        "u": rand(batch, d_inner, length),
        "delta": rand(batch, d_inner, length, scale=delta_scale, offset=-0.5),
        "A": -torch.rand(d_inner, d_state, generator=g, dtype=torch.float64).mul(3).add(0.05).to(dtype),
        "B": rand(batch, d_state, length),
        "C": rand(batch, d_state, length),
        "D": rand(d_inner) if with_D else None,
        "z": rand(batch, d_inner, length) if with_z else None,
        "delta_bias": rand(d_inner, scale=0.3) if with_bias else None,
    }
    if positive_delta:
        x["delta"] = x["delta"].abs()
    if strided:
        for name in ("u", "delta", "B", "C", "z"):
            if x[name] is not None:
                x[name] = channels_last(x[name])
        x["A"] = x["A"].t().contiguous().t()
        for name in ("D", "delta_bias"):
            if x[name] is not None:
                x[name] = torch.stack([x[name], torch.zeros_like(x[name])], dim=1)[:, 0]
        assert not x["u"].is_contiguous() and not x["B"].is_contiguous() and not x["A"].is_contiguous()
    return x


def forward_and_grads(fn, x: dict, dout: torch.Tensor, **kwargs) -> tuple[torch.Tensor, dict]:
    leaves = {k: v.detach().requires_grad_() for k, v in x.items() if v is not None}  # strides kept
    args = [leaves.get(name) for name in ARG_NAMES]
    out = fn(*args, **kwargs)
    grads = torch.autograd.grad(out, list(leaves.values()), dout.to(out.dtype))
    return out.detach(), dict(zip(leaves, grads))


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


CASES = {
    "all options, several blocks": dict(kwargs=dict(), block=32),
    "without D, z, delta_bias, softplus": dict(
        kwargs=dict(with_D=False, with_z=False, with_bias=False, positive_delta=True), softplus=False, block=32),
    "strided inputs, batch 3": dict(kwargs=dict(batch=3, strided=True), block=48),
    "d_state 5 (padded), length 600 > default block": dict(kwargs=dict(d_state=5, length=600, batch=1),
                                                            block=sc.DEFAULT_BLOCK),
    "d_state 20, strong decays and steps": dict(kwargs=dict(d_state=20, delta_scale=4.0, length=100), block=16),
}


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_every_kernel_matches_float64_reference(case):
    spec = CASES[case]
    softplus = spec.get("softplus", True)
    x = make_inputs(**spec["kwargs"])
    dout = torch.randn(x["u"].shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want, want_grads = forward_and_grads(selective_scan_reference, x, dout, delta_softplus=softplus)
    for kernel in KERNELS_HERE:
        got, grads = forward_and_grads(sc.selective_scan_compiled, x, dout, delta_softplus=softplus,
                                       kernel=kernel, block=spec["block"])
        assert got.dtype == torch.float64 and got.shape == want.shape
        assert relative_error(got, want) < FORWARD_TOL, kernel
        assert grads.keys() == want_grads.keys()
        for name, grad in grads.items():
            assert grad.shape == x[name].shape
            assert relative_error(grad, want_grads[name]) < GRAD_TOL, f"{kernel}: d{name}"


@needs_kernel
def test_float32_strided_inputs_give_float32_results_matching_reference():
    x32 = make_inputs(strided=True, length=70, dtype=torch.float32)
    x64 = {k: None if v is None else v.double() for k, v in x32.items()}
    dout = torch.ones_like(x64["u"])
    want, want_grads = forward_and_grads(selective_scan_reference, x64, dout, delta_softplus=True)
    got, grads = forward_and_grads(sc.selective_scan_compiled, x32, dout, delta_softplus=True, block=16)
    assert got.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads.values())
    assert relative_error(got, want) < FORWARD_TOL
    for name in grads:
        assert relative_error(grads[name], want_grads[name]) < GRAD_TOL, name


@needs_kernel
def test_inference_call_matches_training_call():
    x = make_inputs(length=90)
    args = [x[name] for name in ARG_NAMES]
    with torch.no_grad():
        plain = sc.selective_scan_compiled(*args, delta_softplus=True)
    trained, _ = forward_and_grads(sc.selective_scan_compiled, x, torch.ones_like(x["u"]), delta_softplus=True)
    assert torch.equal(plain, trained)


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@needs_kernel
def test_results_are_bitwise_reproducible_for_a_fixed_thread_count(two_threads):
    x = make_inputs(batch=2, d_inner=9, length=200, seed=3)
    dout = torch.randn(x["u"].shape, dtype=torch.float64)
    for kernel in KERNELS_HERE:
        runs = [forward_and_grads(sc.selective_scan_compiled, x, dout, delta_softplus=True, kernel=kernel,
                                  block=32) for _ in range(2)]
        (out1, grads1), (out2, grads2) = runs
        assert torch.equal(out1, out2), kernel
        assert all(torch.equal(grads1[k], grads2[k]) for k in grads1), kernel
        torch.set_num_threads(1)  # another split of the channels: same values up to rounding
        out_one, grads_one = forward_and_grads(sc.selective_scan_compiled, x, dout, delta_softplus=True,
                                               kernel=kernel, block=32)
        torch.set_num_threads(2)
        assert torch.equal(out_one, out1), kernel  # no cross-channel sums in the forward pass
        assert all(relative_error(grads_one[k], grads1[k]) < 1e-6 for k in grads1), kernel


@needs_kernel
def test_long_sequence_gradients_agree_across_accumulation_spans(two_threads):
    """dB and dC are summed over threads once per span of blocks (32 MB of shares in all): at
    140,000 steps in blocks of 16 with d_state 16, two threads need two spans, one thread one."""
    x = make_inputs(batch=1, d_inner=2, length=140_000, seed=4, dtype=torch.float32)
    dout = torch.randn(x["u"].shape, generator=torch.Generator().manual_seed(5))
    for kernel in KERNELS_HERE:
        _, two_spans = forward_and_grads(sc.selective_scan_compiled, x, dout, delta_softplus=True, kernel=kernel,
                                         block=16)
        torch.set_num_threads(1)
        _, one_span = forward_and_grads(sc.selective_scan_compiled, x, dout, delta_softplus=True, kernel=kernel,
                                        block=16)
        torch.set_num_threads(2)
        assert all(relative_error(two_spans[k], one_span[k]) < 1e-6 for k in one_span), kernel


@needs_kernel
def test_dispatcher_runs_compiled_backend_when_available(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_BACKEND, raising=False)
    monkeypatch.setattr(dispatch, "_forced_backend", None)
    assert dispatch.resolve_backend(torch.device("cpu")) == "compiled"
    x = make_inputs(length=40)
    args = [x[name] for name in ARG_NAMES]
    assert torch.equal(selective_scan(*args, delta_softplus=True),
                       sc.selective_scan_compiled(*args, delta_softplus=True))


def test_cpu_capability_decides_runnable_kernels(monkeypatch):
    for capability, kernels in [("AVX512", sc.KERNELS), ("AVX2", ("avx2", "generic")),
                                ("DEFAULT", ("generic",)), ("SVE256", ("generic",))]:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert sc.cpu_kernels() == kernels


@needs_kernel
def test_auto_choice_is_fastest_available_and_env_var_overrides(monkeypatch):
    monkeypatch.setattr(sc, "_forced_kernel", None)
    monkeypatch.delenv(sc.ENV_KERNEL, raising=False)
    assert sc.selected_kernel() == KERNELS_HERE[0]
    for kernel in KERNELS_HERE:
        monkeypatch.setenv(sc.ENV_KERNEL, kernel)
        assert sc.selected_kernel() == kernel
    sc.set_scan_kernel(KERNELS_HERE[-1])
    monkeypatch.setenv(sc.ENV_KERNEL, KERNELS_HERE[0])
    assert sc.selected_kernel() == KERNELS_HERE[-1]  # the Python override wins over the environment
    sc.set_scan_kernel("auto")
    assert sc._forced_kernel is None


def test_kernel_the_cpu_cannot_run_is_refused_clearly(monkeypatch):
    monkeypatch.setattr(sc, "_forced_kernel", None)
    monkeypatch.setattr(sc, "cpu_kernels", lambda: ("generic",))
    monkeypatch.setenv(sc.ENV_KERNEL, "avx512")
    with pytest.raises(RuntimeError, match="cannot use the avx512 selective-scan kernel: this CPU cannot run it"):
        sc.selected_kernel()
    with pytest.raises(RuntimeError, match="cannot run"):
        sc.is_available()
    assert "avx512" not in sc.available_kernels() and "avx2" not in sc.available_kernels()


def test_unknown_kernel_names_are_rejected(monkeypatch):
    monkeypatch.setattr(sc, "_forced_kernel", None)
    with pytest.raises(ValueError, match="unknown selective-scan kernel 'sse4'"):
        sc.set_scan_kernel("sse4")
    monkeypatch.setenv(sc.ENV_KERNEL, "sse4")
    with pytest.raises(ValueError, match="SEQ2EXP_SCAN_KERNEL='sse4'"):
        sc.selected_kernel()


def test_without_a_compiler_the_dispatcher_falls_back_to_chunked_and_warns_once(monkeypatch, tmp_path):
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(sc, "_built", functools.lru_cache(maxsize=None)(sc._built.__wrapped__))
    monkeypatch.setattr(sc, "_forced_kernel", None)
    monkeypatch.setattr(sc, "_warned_unavailable", False)
    monkeypatch.delenv(sc.ENV_KERNEL, raising=False)
    monkeypatch.delenv(dispatch.ENV_BACKEND, raising=False)
    monkeypatch.setattr(dispatch, "_forced_backend", None)
    assert sc.available_kernels() == ()
    with pytest.warns(RuntimeWarning, match=r"generic: it could not be compiled \(no C\+\+ compiler.*chunked scan"):
        assert dispatch.resolve_backend(torch.device("cpu")) == "chunked"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not sc.is_available()
    monkeypatch.setenv(sc.ENV_KERNEL, "generic")
    with pytest.raises(RuntimeError, match="generic selective-scan kernel: it could not be compiled.*to build it, install"):
        sc.selected_kernel()


@needs_kernel
def test_library_built_for_another_instruction_set_is_refused(monkeypatch, tmp_path):
    shutil.copy(sc._built(KERNELS_HERE[-1]), tmp_path / "_scan_wrong.so")
    monkeypatch.setattr(sc, "_built", lambda name: tmp_path / "_scan_wrong.so")
    monkeypatch.setattr(sc, "cpu_kernels", lambda: sc.KERNELS)  # loading runs none of its code
    other = next(k for k in sc.KERNELS if k != KERNELS_HERE[-1])
    with pytest.raises(RuntimeError, match="stale build"):
        sc.load_kernel(other)


@needs_kernel
def test_bad_shapes_are_reported_by_argument_name():
    x = make_inputs(length=20)
    args = [x[name] for name in ARG_NAMES]
    args[3] = args[3][:, :, :10]
    with pytest.raises(ValueError, match="argument B has shape"):
        sc.selective_scan_compiled(*args)
    too_many = make_inputs(d_state=sc.load_kernel(KERNELS_HERE[0]).max_states + 1, length=8)
    with pytest.raises(ValueError, match="exceeds the compiled scan's limit"):
        sc.selective_scan_compiled(*[too_many[name] for name in ARG_NAMES])


@needs_kernel
def test_loading_kernels_keeps_denormals():
    """A library linked with -ffast-math would switch on flush-to-zero for the whole process."""
    for kernel in KERNELS_HERE:
        sc.load_kernel(kernel)
    assert np.float64(1e-310) * 1.0 != 0.0
    assert (torch.tensor([1e-40], dtype=torch.float32) * 1.0).item() != 0.0


@needs_kernel
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_kernels_share_torchs_openmp_runtime():
    """Two OpenMP runtimes in one process oversubscribe the cores and can crash at exit."""
    for kernel in KERNELS_HERE:
        sc.load_kernel(kernel)
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if any(name in line for name in ("libgomp", "libiomp", "libomp"))}
    assert len(mapped) == 1, mapped


def test_kernel_is_built_once_per_source_version_with_one_line(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv(build.ENV_CACHE, str(tmp_path))
    path = build.build_library("generic")
    assert path.parent.parent == tmp_path and path.is_file()
    assert capfd.readouterr().err.count("compiling the generic CPU selective-scan kernel") == 1
    assert build.build_library("generic") == path and capfd.readouterr().err == ""  # cached: no second build
    source = tmp_path / "selective_scan.cpp"
    source.write_text(build.SOURCE.read_text() + "\n// edited\n")
    monkeypatch.setattr(build, "SOURCE", source)
    assert build.library_path("generic") != path  # an edited source gets a library of its own

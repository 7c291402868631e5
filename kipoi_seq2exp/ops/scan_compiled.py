"""Compiled CPU selective scan: C++ forward and backward kernels, chosen at run time.

``csrc/selective_scan.cpp`` comes in three builds, compiled at first use (:mod:`.build`, once per
source version): ``avx512`` (16 states of a channel per 512-bit register), ``avx2`` and
``generic`` (any CPU). The best one the CPU executes is used (CPU features as PyTorch detects
them; only that one is built), overridable with ``$SEQ2EXP_SCAN_KERNEL`` or
:func:`set_scan_kernel`; the choice is logged once. When none can be built (no compiler),
:func:`is_available` is False and :func:`kipoi_seq2exp.ops.selective_scan` falls back to the
chunked PyTorch scan after one warning.

Semantics are mamba-ssm's ``selective_scan_fn`` (see :mod:`.selective_scan`). Compute is float32
whatever the input dtype, float64 included: the output and the gradients come back in the
inputs' dtypes. For the backward pass the forward keeps the state every ``block`` steps
((batch, d_inner, L / block, d_state) floats: 6.4 MB at L = 200,000, d_inner 256) and recomputes
each block; results are bitwise reproducible for a fixed ``torch.get_num_threads()``.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch  # before any kernel library: it loads the libgomp the kernels then share
from torch import Tensor

from . import build

log = logging.getLogger(__name__)

KERNELS = ("avx512", "avx2", "generic")  # fastest first
ENV_KERNEL = "SEQ2EXP_SCAN_KERNEL"
DEFAULT_BLOCK = 512
ABI_VERSION = 1
BUILD_HINT = "install a C++17 compiler with OpenMP (e.g. `apt install g++`); it is then built at the next run"

_forced_kernel: Optional[str] = None
_logged_kernels: set[str] = set()
_warned_unavailable = False

_p = ctypes.c_void_p
_i64 = ctypes.c_int64
_i32 = ctypes.c_int
# Argument types shared by both entry points: the inputs, then the sizes.
_INPUT_ARGS = [_p] * 8 + [_i32] + [_i64] * 5


class ScanKernel:
    """One compiled build of the scan (``name``: avx512, avx2 or generic) loaded with ctypes."""

    def __init__(self, name: str, path: Path):
        lib = ctypes.CDLL(str(path))
        try:
            abi = lib.seq2exp_scan_abi_version()
            lib.seq2exp_scan_isa.restype = ctypes.c_char_p
            built_for = lib.seq2exp_scan_isa().decode()
        except AttributeError:  # a library from another package or an older layout
            abi, built_for = None, None
        if abi != ABI_VERSION or built_for != name:
            raise OSError(f"it is a {built_for!r} build of ABI {abi}, expected {name!r} of ABI {ABI_VERSION} "
                          "(a stale build: delete it; it is rebuilt at the next run)")
        lib.seq2exp_scan_forward.argtypes = _INPUT_ARGS + [_p, _p, _i32]
        lib.seq2exp_scan_backward.argtypes = _INPUT_ARGS + [_p] * 10 + [_i32]
        self.name = name
        self.lanes: int = lib.seq2exp_scan_lanes()
        self.max_states: int = lib.seq2exp_scan_max_states()
        self._lib = lib

    def padded_states(self, d_state: int) -> int:
        """d_state rounded up to the register layouts the library was compiled for: lanes * 2^k."""
        padded = self.lanes
        while padded < d_state:
            padded *= 2
        return padded

    def forward(self, x: "_ScanInputs", keep_checkpoints: bool) -> tuple[Tensor, Optional[Tensor]]:
        """Output (batch, d_inner, L), and the block-start states the backward pass needs."""
        out = torch.empty_like(x.u)
        ckpt = x.u.new_empty(x.checkpoint_shape()) if keep_checkpoints else None
        _check(self._lib.seq2exp_scan_forward(*x.arguments(), _ptr(out), _ptr(ckpt), torch.get_num_threads()))
        return out, ckpt

    def backward(self, x: "_ScanInputs", ckpt: Tensor, dout: Tensor) -> dict[str, Tensor]:
        """Gradients in the kernel's layouts (B, C transposed and padded; per-batch partial sums)."""
        batch, d_inner, _ = x.u.shape
        grads = {
            "u": torch.empty_like(x.u),
            "delta": torch.empty_like(x.u),
            "A": x.u.new_empty(batch, d_inner, x.nstate),
            "Bt": torch.empty_like(x.Bt),
            "Ct": torch.empty_like(x.Ct),
            "D": x.u.new_empty(batch, d_inner),
            "z": torch.empty_like(x.u) if x.z is not None else None,
            "delta_bias": x.u.new_empty(batch, d_inner),
        }
        _check(self._lib.seq2exp_scan_backward(
            *x.arguments(), _ptr(ckpt), _ptr(dout), _ptr(grads["u"]), _ptr(grads["delta"]),
            _ptr(grads["A"]), _ptr(grads["Bt"]), _ptr(grads["Ct"]), _ptr(grads["D"]), _ptr(grads["z"]),
            _ptr(grads["delta_bias"]), torch.get_num_threads()))
        return grads


@dataclass
class _ScanInputs:
    """Float32 contiguous copies in the kernel's layouts. Holding them here keeps every buffer
    alive while C reads it through a raw pointer (a dropped temporary would dangle)."""

    u: Tensor
    delta: Tensor
    A: Tensor  # (d_inner, nstate), zero-padded states: A = B = C = 0 keeps them at h = 0
    Bt: Tensor  # (batch, L, nstate)
    Ct: Tensor
    D: Optional[Tensor]
    z: Optional[Tensor]
    delta_bias: Optional[Tensor]
    delta_softplus: bool
    block: int

    @property
    def nstate(self) -> int:
        return self.A.shape[1]

    def checkpoint_shape(self) -> tuple[int, ...]:
        batch, d_inner, length = self.u.shape
        return batch, d_inner, -(-length // self.block), self.nstate

    def arguments(self) -> list:
        batch, d_inner, length = self.u.shape
        return [_ptr(self.u), _ptr(self.delta), _ptr(self.A), _ptr(self.Bt), _ptr(self.Ct), _ptr(self.D),
                _ptr(self.z), _ptr(self.delta_bias), int(self.delta_softplus), batch, d_inner, self.nstate,
                length, self.block]


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _check(status: int) -> None:
    if status == 1:
        raise MemoryError("the compiled selective scan ran out of memory for its work buffers")
    if status != 0:
        raise RuntimeError(f"the compiled selective scan rejected its arguments (status {status}); "
                           "this is a bug in kipoi_seq2exp.ops.scan_compiled")


def _as_f32(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.detach().to(torch.float32).contiguous()


def _transposed_padded(x: Tensor, nstate: int) -> Tensor:
    """(batch, d_state, L) -> (batch, L, nstate): one time step's states contiguous, zero-padded."""
    batch, d_state, length = x.shape
    out = x.new_zeros((batch, length, nstate), dtype=torch.float32)
    out[:, :, :d_state] = x.detach().transpose(1, 2)
    return out


def _prepare(kernel: ScanKernel, block: int, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
             D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor],
             delta_softplus: bool) -> _ScanInputs:
    nstate = kernel.padded_states(A.shape[1])
    A_padded = A.new_zeros((A.shape[0], nstate), dtype=torch.float32)
    A_padded[:, :A.shape[1]] = A.detach()
    return _ScanInputs(_as_f32(u), _as_f32(delta), A_padded, _transposed_padded(B, nstate),
                       _transposed_padded(C, nstate), _as_f32(D), _as_f32(z), _as_f32(delta_bias),
                       bool(delta_softplus), block)


def _validate(kernel: ScanKernel, block: int, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
              D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor]) -> None:
    """Raise ValueError naming the argument, its shape and the expected one."""
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, d_inner, length), got shape {tuple(u.shape)}")
    batch, d_inner, length = u.shape
    d_state = A.shape[-1]
    expected = {"u": (batch, d_inner, length), "delta": (batch, d_inner, length), "A": (d_inner, d_state),
                "B": (batch, d_state, length), "C": (batch, d_state, length), "D": (d_inner,),
                "z": (batch, d_inner, length), "delta_bias": (d_inner,)}
    given = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "z": z, "delta_bias": delta_bias}
    for name, t in given.items():
        if t is None:
            continue
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"selective scan argument {name} has shape {tuple(t.shape)}, expected "
                             f"{expected[name]} (batch, d_inner, d_state, length = {batch}, {d_inner}, "
                             f"{d_state}, {length}); grouped or time-invariant B/C need backend 'chunked'")
        if t.device.type != "cpu" or not t.is_floating_point():
            raise ValueError(f"the compiled selective scan needs real floating-point CPU tensors; "
                             f"{name} is {t.dtype} on {t.device}")
    if d_state > kernel.max_states:
        raise ValueError(f"d_state = {d_state} exceeds the compiled scan's limit of {kernel.max_states}; "
                         f"use selective_scan(..., backend='chunked')")
    if block <= 0 or block % kernel.lanes:
        raise ValueError(f"block = {block} must be a positive multiple of {kernel.lanes}")


class _SelectiveScanFn(torch.autograd.Function):
    """Autograd wrapper: forward keeps the block checkpoints, backward runs the C adjoint scan."""

    @staticmethod
    def forward(ctx, kernel, block, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        x = _prepare(kernel, block, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        out, ckpt = kernel.forward(x, keep_checkpoints=True)
        ctx.save_for_backward(x.u, x.delta, x.A, x.Bt, x.Ct, x.D, x.z, x.delta_bias, ckpt)
        ctx.kernel, ctx.block, ctx.delta_softplus = kernel, block, bool(delta_softplus)
        ctx.d_state = A.shape[1]
        ctx.dtypes = [None if t is None else t.dtype for t in (u, delta, A, B, C, D, z, delta_bias)]
        return out.to(u.dtype)

    @staticmethod
    def backward(ctx, dout):
        u, delta, A, Bt, Ct, D, z, delta_bias, ckpt = ctx.saved_tensors
        x = _ScanInputs(u, delta, A, Bt, Ct, D, z, delta_bias, ctx.delta_softplus, ctx.block)
        g = ctx.kernel.backward(x, ckpt, dout.detach().to(torch.float32).contiguous())
        n = ctx.d_state
        grads = [g["u"], g["delta"], g["A"].sum(0)[:, :n], g["Bt"][:, :, :n].transpose(1, 2),
                 g["Ct"][:, :, :n].transpose(1, 2), g["D"].sum(0) if D is not None else None, g["z"],
                 g["delta_bias"].sum(0) if delta_bias is not None else None]
        grads = [None if grad is None or not needed else grad.to(dtype)
                 for grad, needed, dtype in zip(grads, ctx.needs_input_grad[2:10], ctx.dtypes)]
        return (None, None, *grads, None)


def cpu_kernels() -> tuple[str, ...]:
    """Kernels this CPU can execute, from PyTorch's CPU detection (CPUID and OS register support)."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return KERNELS
    if capability == "AVX2":
        return ("avx2", "generic")
    return ("generic",)


@functools.lru_cache(maxsize=None)
def _open(name: str, path: str) -> ScanKernel:
    return ScanKernel(name, Path(path))


@functools.lru_cache(maxsize=None)
def _built(name: str) -> Path | str:
    """The library of kernel ``name`` (built now if needed), or why it cannot be built: tried once per process."""
    try:
        return build.build_library(name)
    except build.BuildError as err:
        return f"it could not be compiled ({err})"


def _unusable_reason(name: str) -> Optional[str]:
    """Why kernel ``name`` cannot run here, in a few words; None when it can (it is then built and loaded)."""
    if name not in cpu_kernels():
        return f"this CPU cannot run it (PyTorch reports CPU capability {torch.backends.cpu.get_cpu_capability()})"
    path = _built(name)
    if isinstance(path, str):
        return path
    try:
        _open(name, str(path))
    except OSError as err:
        return f"{path} cannot be loaded: {err}"
    return None


def load_kernel(name: str) -> ScanKernel:
    """The loaded kernel ``name``; RuntimeError saying why when this machine cannot use it."""
    if name not in KERNELS:
        raise ValueError(f"unknown selective-scan kernel {name!r}; choose one of {KERNELS}")
    reason = _unusable_reason(name)
    if reason is not None:
        hint = f"; to build it, {BUILD_HINT}" if "compiled" in reason else ""
        raise RuntimeError(f"cannot use the {name} selective-scan kernel: {reason}{hint}. Kernels usable "
                           f"here: {', '.join(available_kernels()) or 'none'}")
    return _open(name, str(_built(name)))


def available_kernels() -> tuple[str, ...]:
    """Kernels this CPU executes that build and load here, fastest first (builds each one it checks)."""
    return tuple(name for name in KERNELS if _unusable_reason(name) is None)


def set_scan_kernel(name: Optional[str]) -> None:
    """Force one kernel for the whole process (``None`` or ``"auto"``: the fastest available);
    takes precedence over ``$SEQ2EXP_SCAN_KERNEL``."""
    global _forced_kernel
    if name is not None and name != "auto" and name not in KERNELS:
        raise ValueError(f"unknown selective-scan kernel {name!r}; choose one of {KERNELS} or 'auto'")
    _forced_kernel = None if name == "auto" else name


def selected_kernel() -> Optional[str]:
    """The kernel calls will use: forced, else ``$SEQ2EXP_SCAN_KERNEL``, else the fastest
    available; ``None`` when no kernel is available. A requested kernel that cannot run raises
    (ValueError for an unknown name, RuntimeError saying why) rather than silently slowing down."""
    requested = _forced_kernel or os.environ.get(ENV_KERNEL, "auto") or "auto"
    if requested == "auto":  # the fastest usable one; slower ones are not built
        name = next((k for k in cpu_kernels() if _unusable_reason(k) is None), None)
    else:
        if requested not in KERNELS:
            raise ValueError(f"${ENV_KERNEL}={requested!r} is not a selective-scan kernel; "
                             f"use one of {KERNELS} or 'auto'")
        load_kernel(requested)
        name = requested
    if name is not None and name not in _logged_kernels:
        _logged_kernels.add(name)
        log.info("compiled selective-scan kernel: %s (this CPU runs: %s)", name, ", ".join(cpu_kernels()))
    return name


def is_available() -> bool:
    """Whether a compiled kernel can run here; warns once when none can (the caller falls back)."""
    global _warned_unavailable
    name = selected_kernel()
    if name is None and not _warned_unavailable:
        _warned_unavailable = True
        reasons = "; ".join(f"{k}: {_unusable_reason(k)}" for k in cpu_kernels())
        warnings.warn(f"no compiled CPU selective scan is usable here ({reasons}); using the pure-PyTorch "
                      f"chunked scan, about 15x slower. To enable it, {BUILD_HINT}.",
                      RuntimeWarning, stacklevel=2)
    return name is not None


def selective_scan_compiled(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                            D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                            delta_bias: Optional[Tensor] = None, delta_softplus: bool = False, *,
                            kernel: Optional[str] = None, block: int = DEFAULT_BLOCK) -> Tensor:
    """Selective scan on the CPU with mamba-ssm ``selective_scan_fn`` semantics; differentiable.

    Parameters
    ----------
    u, delta : (batch, d_inner, length) input and raw step size.
    A : (d_inner, d_state) state matrix diagonal (negative for a decaying state).
    B, C : (batch, d_state, length) input and output projections, varying over time.
    D, delta_bias : (d_inner,) skip weight and step-size bias, optional.
    z : (batch, d_inner, length) gate, optional: the output is multiplied by silu(z).
    delta_softplus : step size softplus(delta + delta_bias) instead of delta + delta_bias.
    kernel : one of :data:`KERNELS` for this call; default :func:`selected_kernel`.
    block : time steps between stored states for the backward pass (a multiple of 16).

    Returns
    -------
    (batch, d_inner, length) tensor in u's dtype (computed in float32).
    """
    name = kernel or selected_kernel()
    if name is None:
        raise RuntimeError(f"no compiled CPU selective scan is available; {BUILD_HINT}, "
                           "or use selective_scan(..., backend='chunked')")
    scan_kernel = load_kernel(name)
    _validate(scan_kernel, block, u, delta, A, B, C, D, z, delta_bias)
    tensors = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _SelectiveScanFn.apply(scan_kernel, block, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    x = _prepare(scan_kernel, block, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    out, _ = scan_kernel.forward(x, keep_checkpoints=False)
    return out.to(u.dtype)

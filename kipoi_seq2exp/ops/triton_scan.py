"""Selective scan in Triton: the GPU path without a CUDA build, parallel along the sequence.

Same semantics and signature as :func:`.selective_scan.selective_scan_reference` (mamba-ssm's
``selective_scan_fn``), plus ``reverse``: scan right to left, as the backward direction of a
bidirectional layer does, without flipped copies of the inputs.

The sequence is cut into chunks of ``chunk`` positions (:mod:`._triton_kernels`):

1. each chunk is scanned from a zero state, in parallel: its end state and its summed step
   (the chunk's decay is exp(A * sum));
2. the chunks' true start states are carried from chunk to chunk, sequentially (L / chunk steps
   of one multiply-add per state);
3. each chunk is rescanned from its true start state, in parallel, writing y.

The backward pass does the same for the adjoint state, right to left: pass 1 and 2 give each
chunk's carry from the right, pass 3 rescans the forward states from the tile start states the
forward pass kept ((batch, d_inner, L / block_t, d_state) float32, 1/block_t of the state
sequence: recomputing them would read u, delta and B once more) and writes every gradient. dB
and dC are summed over channel blocks with atomic adds (as mamba-ssm does), so they reproduce to
float rounding only. State and arithmetic are float32 whatever the inputs' dtype (float32 or
bfloat16); outputs and gradients come back in the inputs' dtypes.

Triton is imported at the first call only: this module imports without it. The kernels run on
CUDA tensors, or on any tensors under Triton's interpreter ($TRITON_INTERPRET=1 before the first
call; for tests, slow).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Optional

import torch
from torch import Tensor

INSTALL_HINT = ("install Triton: PyTorch's CUDA wheels for Linux bring it; otherwise `pip install triton` in "
                "the version your torch pins (3.7.1 for torch 2.13.0)")


@dataclass(frozen=True)
class TritonScanConfig:
    """Tile sizes: ``chunk`` positions per program (a multiple of ``block_t``), ``block_t``
    positions and ``block_d`` channels per scanned tile (powers of two)."""

    chunk: int = 1024
    block_t: int = 32
    block_d: int = 4
    num_warps: int = 4

    def __post_init__(self) -> None:
        for name in ("block_t", "block_d"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"TritonScanConfig.{name} = {value} must be a power of two")
        if self.chunk < self.block_t or self.chunk % self.block_t:
            raise ValueError(f"TritonScanConfig.chunk = {self.chunk} must be a multiple of block_t = {self.block_t}")


DEFAULT_CONFIG = TritonScanConfig()


@functools.lru_cache(maxsize=None)
def is_available() -> bool:
    """Whether Triton imports here (says nothing about a GPU)."""
    try:
        import triton  # noqa: F401
    except Exception:  # missing, or a broken install (e.g. no matching CUDA driver libraries)
        return False
    return True


def _kernels() -> ModuleType:
    try:
        from . import _triton_kernels
    except ImportError as err:
        raise RuntimeError(f"the Triton selective scan needs Triton, which does not import here ({err}); "
                           f"Fix: {INSTALL_HINT}, or use selective_scan(..., backend='chunked')") from err
    return _triton_kernels


def _next_power_of_2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _strides(t: Optional[Tensor], rank: int) -> tuple[int, ...]:
    return tuple(t.stride()) if t is not None else (0,) * rank


def _validate(kernels: ModuleType, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
              D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor]) -> None:
    """Raise ValueError naming the argument, its shape and the expected one, or the device problem."""
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, d_inner, length), got shape {tuple(u.shape)}")
    batch, d_inner, length = u.shape
    d_state = A.shape[-1] if A.dim() == 2 else -1
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
        if not t.is_floating_point():
            raise ValueError(f"the Triton selective scan needs real floating-point tensors; {name} is {t.dtype}")
        if t.device != u.device:
            raise ValueError(f"selective scan argument {name} is on {t.device}, u on {u.device}; "
                             "Fix: move all arguments to one device")
    if u.device.type != "cuda" and not kernels.INTERPRETED:
        raise ValueError(f"the Triton selective scan runs on CUDA tensors, got {u.device}; Fix: move the "
                         "tensors to a GPU, use backend 'compiled' or 'chunked' on the CPU, or (tests) set "
                         "TRITON_INTERPRET=1 before the first call to run Triton's interpreter")


def _launch(u: Tensor, kernel, grid, *args, cfg: TritonScanConfig, **constexprs) -> None:
    if u.is_cuda:
        with torch.cuda.device(u.device):
            kernel[grid](*args, **constexprs, num_warps=cfg.num_warps)
    else:
        kernel[grid](*args, **constexprs)


def _chunk_carries(kernels: ModuleType, u: Tensor, A: Tensor, end: Tensor, step_sum: Tensor, backward: bool,
                   cfg: TritonScanConfig) -> Tensor:
    """Pass 2: (batch, d_inner, chunks, d_state) start states from each chunk's zero-start end state."""
    batch, d_inner, n_chunks, d_state = end.shape
    start = torch.empty_like(end)
    block_d = min(32, _next_power_of_2(d_inner))
    _launch(u, kernels.chunk_combine_kernel, (-(-d_inner // block_d), batch),
            end, step_sum, A, start, d_inner, d_state, n_chunks, *A.stride(), cfg=cfg,
            BACKWARD=backward, BLOCK_D=block_d, NSTATE=_next_power_of_2(d_state))
    return start


def _forward(kernels: ModuleType, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
             D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
             reverse: bool, cfg: TritonScanConfig, keep_states: bool) -> tuple[Tensor, Optional[Tensor]]:
    batch, d_inner, length = u.shape
    d_state = A.shape[1]
    n_chunks = -(-length // cfg.chunk)
    f32 = dict(device=u.device, dtype=torch.float32)
    grid = (n_chunks, -(-d_inner // cfg.block_d), batch)
    shape = dict(DELTA_SOFTPLUS=bool(delta_softplus), HAS_BIAS=delta_bias is not None, REVERSE=bool(reverse),
                 BLOCK_D=cfg.block_d, NSTATE=_next_power_of_2(d_state), BLOCK_T=cfg.block_t, CHUNK=cfg.chunk)
    common = (*u.stride(), *delta.stride(), *A.stride(), *B.stride())
    if n_chunks > 1:
        end = torch.empty(batch, d_inner, n_chunks, d_state, **f32)
        step_sum = torch.empty(batch, d_inner, n_chunks, **f32)
        _launch(u, kernels.chunk_end_kernel, grid, u, delta, A, B, delta_bias, end, step_sum,
                length, d_inner, d_state, n_chunks, *common, *_strides(delta_bias, 1), cfg=cfg, **shape)
        start = _chunk_carries(kernels, u, A, end, step_sum, False, cfg)
    else:
        start = torch.zeros(batch, d_inner, 1, d_state, **f32)
    out = torch.empty(batch, d_inner, length, device=u.device, dtype=u.dtype)
    tiles = n_chunks * (cfg.chunk // cfg.block_t)
    states = torch.empty(batch, d_inner, tiles, d_state, **f32) if keep_states else None
    _launch(u, kernels.forward_kernel, grid, u, delta, A, B, C, D, z, delta_bias, start, out, states,
            length, d_inner, d_state, n_chunks, *common, *C.stride(), *_strides(D, 1), *_strides(z, 3),
            *_strides(delta_bias, 1), *out.stride(), cfg=cfg,
            HAS_D=D is not None, HAS_Z=z is not None, STORE_STATES=keep_states, **shape)
    return out, states


def _backward(kernels: ModuleType, dout: Tensor, states: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor,
              C: Tensor, D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor],
              delta_softplus: bool, reverse: bool, cfg: TritonScanConfig) -> list[Optional[Tensor]]:
    batch, d_inner, length = u.shape
    d_state = A.shape[1]
    n_chunks = -(-length // cfg.chunk)
    f32 = dict(device=u.device, dtype=torch.float32)
    grid = (n_chunks, -(-d_inner // cfg.block_d), batch)
    shape = dict(DELTA_SOFTPLUS=bool(delta_softplus), HAS_BIAS=delta_bias is not None, HAS_Z=z is not None,
                 REVERSE=bool(reverse), BLOCK_D=cfg.block_d, NSTATE=_next_power_of_2(d_state),
                 BLOCK_T=cfg.block_t, CHUNK=cfg.chunk)
    if n_chunks > 1:
        end = torch.empty(batch, d_inner, n_chunks, d_state, **f32)
        step_sum = torch.empty(batch, d_inner, n_chunks, **f32)
        _launch(u, kernels.chunk_adjoint_kernel, grid, dout, delta, A, C, z, delta_bias, end, step_sum,
                length, d_inner, d_state, n_chunks, *dout.stride(), *delta.stride(), *A.stride(), *C.stride(),
                *_strides(z, 3), *_strides(delta_bias, 1), cfg=cfg, **shape)
        adjoint = _chunk_carries(kernels, u, A, end, step_sum, True, cfg)
    else:
        adjoint = torch.zeros(batch, d_inner, 1, d_state, **f32)
    du = torch.empty(u.shape, device=u.device, dtype=u.dtype)
    ddelta = torch.empty(u.shape, device=u.device, dtype=delta.dtype)
    dz = torch.empty(z.shape, device=z.device, dtype=z.dtype) if z is not None else None
    dB = torch.zeros(batch, d_state, length, **f32)
    dC = torch.zeros(batch, d_state, length, **f32)
    dA = torch.empty(batch, n_chunks, d_inner, d_state, **f32)
    dD = torch.empty(batch, n_chunks, d_inner, **f32)
    dbias = torch.empty(batch, n_chunks, d_inner, **f32)
    _launch(u, kernels.backward_kernel, grid, u, delta, A, B, C, D, z, delta_bias, dout, states, adjoint,
            du, ddelta, dz, dB, dC, dA, dD, dbias, length, d_inner, d_state, n_chunks,
            *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *_strides(D, 1),
            *_strides(z, 3), *_strides(delta_bias, 1), *dout.stride(), cfg=cfg,
            HAS_D=D is not None, **shape)
    return [du, ddelta, dA.sum((0, 1)).to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
            dD.sum((0, 1)).to(D.dtype) if D is not None else None, dz,
            dbias.sum((0, 1)).to(delta_bias.dtype) if delta_bias is not None else None]


class _TritonScanFn(torch.autograd.Function):
    """Forward keeps the tile start states; backward rescans from them (see the module docstring)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, cfg):
        kernels = _kernels()
        out, states = _forward(kernels, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, cfg,
                               keep_states=True)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.options = (delta_softplus, reverse, cfg)
        return out

    @staticmethod
    def backward(ctx, dout):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        delta_softplus, reverse, cfg = ctx.options
        grads = _backward(_kernels(), dout, states, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, cfg)
        grads = [grad if needed else None for grad, needed in zip(grads, ctx.needs_input_grad[:8])]
        return (*grads, None, None, None)


def selective_scan_triton(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                          D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                          delta_bias: Optional[Tensor] = None, delta_softplus: bool = False, *,
                          reverse: bool = False, config: TritonScanConfig = DEFAULT_CONFIG) -> Tensor:
    """Selective scan on the GPU with mamba-ssm ``selective_scan_fn`` semantics; differentiable.

    Parameters
    ----------
    u, delta : (batch, d_inner, length) input and raw step size.
    A : (d_inner, d_state) state matrix diagonal (negative for a decaying state).
    B, C : (batch, d_state, length) input and output projections, varying over time.
    D, delta_bias : (d_inner,) skip weight and step-size bias, optional.
    z : (batch, d_inner, length) gate, optional: the output is multiplied by silu(z).
    delta_softplus : step size softplus(delta + delta_bias) instead of delta + delta_bias.
    reverse : scan from the last position to the first; equals
        ``selective_scan_reference(*(x.flip(-1) for x in inputs)).flip(-1)`` without the copies.
    config : tile sizes (:class:`TritonScanConfig`).

    Returns
    -------
    (batch, d_inner, length) tensor in u's dtype (computed in float32). Any strides are read as
    they are; no input is copied.
    """
    kernels = _kernels()
    _validate(kernels, u, delta, A, B, C, D, z, delta_bias)
    tensors = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _TritonScanFn.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), bool(reverse), config)
    out, _ = _forward(kernels, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, config,
                      keep_states=False)
    return out

"""Selective scan (Mamba's S6 recurrence) with mamba-ssm's ``selective_scan_fn`` semantics.

Shapes follow mamba-ssm: ``u, delta, z`` are ``(batch, d_inner, length)``, ``A`` is
``(d_inner, d_state)``, ``B, C`` are ``(batch, d_state, length)``, ``D, delta_bias`` are
``(d_inner,)``. The recurrence per channel d and state n is::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = sum_n C_t h_t + D u_t,   then y_t *= silu(z_t)

Backends, chosen by :func:`selective_scan` (automatic, overridable, logged once):

- ``cuda``: mamba-ssm's fused kernel (tensors on CUDA and ``mamba_ssm`` importable);
- ``triton``: the package's Triton kernels, parallel along L (:mod:`kipoi_seq2exp.ops.triton_scan`);
  needs Triton, no compiler and no CUDA build;
- ``compiled``: the package's compiled CPU kernel (:mod:`kipoi_seq2exp.ops.scan_compiled`);
- ``chunked``: pure PyTorch, memory bounded by the segment length, not by L;
- ``reference``: a plain sequential loop, used by tests only.

The automatic choice: on CUDA tensors mamba-ssm's kernel when mamba-ssm is installed, else Triton
when it imports, else ``chunked``; on the CPU ``compiled`` when a kernel builds, else ``chunked``.
The CUDA order (mamba-ssm before Triton) is a default, not a measurement: it will be revisited
once ``benchmarks/gpu_check.py`` has run on a GPU.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

log = logging.getLogger(__name__)

BACKENDS = ("auto", "cuda", "triton", "compiled", "chunked", "reference")
ENV_BACKEND = "SEQ2EXP_SCAN_BACKEND"

_forced_backend: Optional[str] = None
_logged_choices: set[str] = set()


def effective_delta(delta: Tensor, delta_bias: Optional[Tensor], delta_softplus: bool) -> Tensor:
    """The step size the recurrence really uses: softplus(delta + bias) or delta + bias."""
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    return F.softplus(delta) if delta_softplus else delta


def _finish(y: Tensor, u: Tensor, D: Optional[Tensor], z: Optional[Tensor]) -> Tensor:
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return y


def selective_scan_reference(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                             D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                             delta_bias: Optional[Tensor] = None, delta_softplus: bool = False) -> Tensor:
    """One time step at a time, exactly the recurrence above; for tests (run it in float64)."""
    delta = effective_delta(delta, delta_bias, delta_softplus)
    batch, d_inner, length = u.shape
    h = u.new_zeros(batch, d_inner, A.shape[1])
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[:, :, None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    return _finish(torch.stack(ys, dim=-1), u, D, z)


def _scan_segment(h0: Tensor, delta: Tensor, u: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int
                  ) -> tuple[Tensor, Tensor]:
    """Scan one segment of S = n_chunks * chunk steps, all chunks of the segment at once.

    Inside each chunk a loop of ``chunk`` steps computes, for every chunk in parallel, the state
    reached from a zero start and the running decay product; a loop over chunks then carries the
    true chunk-start states, which enter each position through its decay product (<= 1: stable).
    Time-major layout (chunk step first) keeps every loop slice contiguous.
    """
    batch, d_inner, seg = u.shape
    n_chunks = seg // chunk

    def time_major(x: Tensor) -> Tensor:  # (batch, channels, S) -> (chunk, batch, channels, n_chunks)
        return x.reshape(x.shape[0], x.shape[1], n_chunks, chunk).permute(3, 0, 1, 2)

    delta_t, du_t = time_major(delta), time_major(delta * u)
    B_t, C_t = time_major(B), time_major(C)
    A_b = A[None, :, None, :]
    decay = torch.exp(delta_t[..., None] * A_b)                      # (T, b, d, c, n)
    drive = du_t[..., None] * B_t[:, :, None].transpose(-1, -2)      # (T, b, d, c, n)
    local, running = [drive[0]], [decay[0]]
    for t in range(1, chunk):
        local.append(torch.addcmul(drive[t], decay[t], local[-1]))
        running.append(decay[t] * running[-1])
    carried = []
    h = h0
    for c in range(n_chunks):
        carried.append(h)
        h = running[-1][:, :, c] * h + local[-1][:, :, c]
    states = torch.addcmul(torch.stack(local), torch.stack(running), torch.stack(carried, dim=2))
    y = torch.einsum("tbdcn,tbnc->bdct", states, C_t)
    return y.reshape(batch, d_inner, seg), h


def selective_scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                           D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                           delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                           segment: int = 1024, chunk: int = 32) -> Tensor:
    """Pure-PyTorch scan whose memory grows with ``segment``, not with the sequence length.

    Segments are processed in order, carrying the state; with autograd on, each segment is
    recomputed in the backward pass (activation checkpointing), so training memory also stays
    bounded by the segment.
    """
    delta = effective_delta(delta, delta_bias, delta_softplus)
    batch, d_inner, length = u.shape
    segment = max(chunk, (segment // chunk) * chunk)
    h = u.new_zeros(batch, d_inner, A.shape[1])
    outputs = []
    for start in range(0, length, segment):
        stop = min(start + segment, length)
        seg_len = stop - start
        padded = -(-seg_len // chunk) * chunk
        args = [x[..., start:stop] for x in (u, delta, B, C)]
        if padded != seg_len:
            args = [F.pad(x, (0, padded - seg_len)) for x in args]
        u_s, delta_s, B_s, C_s = args
        if torch.is_grad_enabled() and any(x.requires_grad for x in (u, delta, A, B, C, h)):
            y_seg, h = checkpoint(_scan_segment, h, delta_s, u_s, A, B_s, C_s, chunk, use_reentrant=False)
        else:
            y_seg, h = _scan_segment(h, delta_s, u_s, A, B_s, C_s, chunk)
        if padded != seg_len:
            # Zero-padded steps have delta = 0: decay 1 and no input, so the state is unchanged.
            y_seg = y_seg[..., :seg_len]
        outputs.append(y_seg)
    return _finish(torch.cat(outputs, dim=-1), u, D, z)


def _cuda_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False) -> Tensor:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # CUDA-only, lazy

    return selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


def _cuda_available() -> bool:
    try:
        import mamba_ssm.ops.selective_scan_interface  # noqa: F401
    except Exception:  # mamba-ssm missing or built without its CUDA extension
        return False
    return torch.cuda.is_available()


def _triton_available() -> bool:
    from . import triton_scan  # imports Triton only when asked

    return triton_scan.is_available()


def _compiled_scan() -> Optional[Callable[..., Tensor]]:
    try:
        from . import scan_compiled
    except ImportError:
        return None
    return scan_compiled.selective_scan_compiled if scan_compiled.is_available() else None


def set_scan_backend(name: Optional[str]) -> None:
    """Force one backend for the whole process (``None`` or ``"auto"``: automatic choice)."""
    global _forced_backend
    if name is not None and name not in BACKENDS:
        raise ValueError(f"unknown selective-scan backend {name!r}; choose one of {BACKENDS}")
    _forced_backend = None if name == "auto" else name


def resolve_backend(device: torch.device) -> str:
    """The backend a call on ``device`` will use: forced, else $SEQ2EXP_SCAN_BACKEND, else best."""
    requested = _forced_backend or os.environ.get(ENV_BACKEND, "auto")
    if requested not in BACKENDS:
        raise ValueError(f"${ENV_BACKEND}={requested!r} is not a selective-scan backend; use one of {BACKENDS}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        if _cuda_available():
            return "cuda"
        if _triton_available():
            return "triton"
    if device.type == "cpu" and _compiled_scan() is not None:
        return "compiled"
    return "chunked"


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                   z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None,
                   delta_softplus: bool = False, backend: Optional[str] = None) -> Tensor:
    """Selective scan on the best available backend (see module docstring)."""
    name = backend or resolve_backend(u.device)
    if name not in _logged_choices:
        _logged_choices.add(name)
        log.info("selective scan backend: %s", name)
    if name == "cuda":
        return _cuda_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if name == "triton":
        from .triton_scan import selective_scan_triton

        return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if name == "compiled":
        fn = _compiled_scan()
        if fn is None:
            raise RuntimeError("the compiled CPU selective scan is not available in this install "
                               "(no compiler at install time or unsupported CPU); use backend 'chunked'")
        return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if name == "chunked":
        return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)

"""Selective scan (Mamba's S6 recurrence) with mamba-ssm's ``selective_scan_fn`` semantics.

Shapes follow mamba-ssm: ``u, delta, z`` are ``(batch, d_inner, length)``, ``A`` is
``(d_inner, d_state)``, ``B, C`` are ``(batch, d_state, length)``, ``D, delta_bias`` are
``(d_inner,)``. The recurrence per channel d and state n is::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = sum_n C_t h_t + D u_t,   then y_t *= silu(z_t)

Backends, chosen by :func:`selective_scan` (automatic, overridable, logged once):

- ``cuda``: mamba-ssm's fused kernel (tensors on CUDA and ``mamba_ssm`` importable);
- ``compiled``: the package's compiled CPU kernel (:mod:`kipoi_seq2exp.ops.scan_compiled`);
- ``chunked``: pure PyTorch, memory bounded by the segment length, not by L;
- ``reference``: a plain sequential loop, used by tests only.
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

BACKENDS = ("auto", "cuda", "compiled", "chunked", "reference")
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


def _scan_segment(h0: Tensor, dA: Tensor, dBu: Tensor, C: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """Scan one segment of S = n_chunks * chunk steps, all chunks of the segment at once.

    ``dA`` (decay logs) and ``dBu`` are ``(batch, d_inner, S, d_state)``; ``C`` is
    ``(batch, d_state, S)``. Within each chunk the states are computed by a short loop over
    ``chunk`` steps for every chunk in parallel (starting from zero); the chunk-start states are
    then carried across chunks and added back with their cumulative decay, which is <= 1 and
    therefore numerically stable.
    """
    batch, d_inner, seg, d_state = dA.shape
    n_chunks = seg // chunk
    dA = dA.view(batch, d_inner, n_chunks, chunk, d_state)
    dBu = dBu.view(batch, d_inner, n_chunks, chunk, d_state)
    decay = torch.exp(dA)
    local = []
    h = torch.zeros_like(dBu[:, :, :, 0])
    for t in range(chunk):
        h = decay[:, :, :, t] * h + dBu[:, :, :, t]
        local.append(h)
    local_states = torch.stack(local, dim=3)
    cum_decay = torch.exp(torch.cumsum(dA, dim=3))
    chunk_decay = cum_decay[:, :, :, -1]
    carried = []
    h = h0
    for c in range(n_chunks):
        carried.append(h)
        h = chunk_decay[:, :, c] * h + local_states[:, :, c, -1]
    states = local_states + cum_decay * torch.stack(carried, dim=2)[:, :, :, None]
    y = torch.einsum("bdsn,bns->bds", states.reshape(batch, d_inner, seg, d_state), C)
    return y, h


def selective_scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                           D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                           delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                           segment: int = 2048, chunk: int = 32) -> Tensor:
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
        if torch.is_grad_enabled() and any(x.requires_grad for x in (u, delta, A, B, C, h)):
            y_seg, h = checkpoint(_segment_from_inputs, h, A, *args, chunk, use_reentrant=False)
        else:
            y_seg, h = _segment_from_inputs(h, A, *args, chunk)
        if padded != seg_len:
            # Zero-padded steps have delta = 0: decay 1 and no input, so the state is unchanged.
            y_seg = y_seg[..., :seg_len]
        outputs.append(y_seg)
    return _finish(torch.cat(outputs, dim=-1), u, D, z)


def _segment_from_inputs(h0: Tensor, A: Tensor, u: Tensor, delta: Tensor, B: Tensor, C: Tensor,
                         chunk: int) -> tuple[Tensor, Tensor]:
    dA = delta[..., None] * A[None, :, None, :]
    dBu = (delta * u)[..., None] * B.transpose(1, 2)[:, None, :, :]
    return _scan_segment(h0, dA, dBu, C, chunk)


def _cuda_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False) -> Tensor:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # CUDA-only, lazy

    return selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


def _cuda_available() -> bool:
    try:
        import mamba_ssm.ops.selective_scan_interface  # noqa: F401
    except Exception:  # mamba-ssm missing or built without its CUDA extension
        return False
    return torch.cuda.is_available()


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
    if device.type == "cuda" and _cuda_available():
        return "cuda"
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
    if name == "compiled":
        fn = _compiled_scan()
        if fn is None:
            raise RuntimeError("the compiled CPU selective scan is not available in this install "
                               "(no compiler at install time or unsupported CPU); use backend 'chunked'")
        return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if name == "chunked":
        return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)

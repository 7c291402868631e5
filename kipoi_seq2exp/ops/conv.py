"""Causal depthwise conv1d (Mamba's short convolution), optionally with SiLU."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor


def _fused_available(x: Tensor) -> bool:
    if x.device.type != "cuda":
        return False
    try:
        import causal_conv1d  # noqa: F401  CUDA-only, imported lazily
    except Exception:
        return False
    return True


def causal_conv1d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, silu: bool = False) -> Tensor:
    """Depthwise conv over time that only sees the past (left padding k-1).

    x: (batch, channels, length); weight: (channels, kernel) or (channels, 1, kernel).
    Returns (batch, channels, length).
    """
    if weight.dim() == 3:
        weight = weight.squeeze(1)
    if _fused_available(x):
        from causal_conv1d import causal_conv1d_fn

        return causal_conv1d_fn(x, weight, bias, activation="silu" if silu else None)
    k = weight.shape[-1]
    # A strided input makes PyTorch's depthwise conv (and its backward) many times slower.
    y = F.conv1d(F.pad(x.contiguous(), (k - 1, 0)), weight.unsqueeze(1), bias, groups=x.shape[1])
    return F.silu(y) if silu else y

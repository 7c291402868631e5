"""Numerical kernels: selective scan, causal depthwise conv, RMSNorm (pure PyTorch + optional fused)."""
from .conv import causal_conv1d
from .norm import rms_norm
from .selective_scan import selective_scan, selective_scan_chunked, selective_scan_reference, set_scan_backend

__all__ = ["causal_conv1d", "rms_norm", "selective_scan", "selective_scan_chunked",
           "selective_scan_reference", "set_scan_backend"]

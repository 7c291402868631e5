"""Kipoi model zoo for Seq2Exp: a member without Kipoi (`load_member`, `Member`), the model class
Kipoi loads (`Seq2ExpModel`), the ``model_zoo/`` source registration and member folders, and variant
scoring over gene windows.

Names load on first access: Kipoi resolves ``defined_as: kipoi_seq2exp.zoo.Seq2ExpModel`` by
attribute lookup, while ``seq2exp register`` must not pay for importing torch and kipoi's model code.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Seq2ExpModel": "model", "VariantEffectSpec": "model",
    "Member": "member", "MemberSpec": "member", "load_member": "member", "load_member_model": "member",
    "ZooError": "source", "register_source": "source", "install_weights": "source", "sync_metrics": "source",
    "example_dataloader_args": "source",
    "score_variants": "variants", "write_scores": "variants", "VariantScore": "variants",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    if name in {"model", "member", "source", "variants", "compat", "cli"}:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

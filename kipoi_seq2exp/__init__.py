"""kipoi-seq2exp: the Seq2Exp gene-expression model (Su et al., ICLR 2025) for Kipoi.

Subpackages load on first access (``kipoi_seq2exp.data``, ``.zoo``, ...): Kipoi resolves
``defined_as: kipoi_seq2exp.zoo.Seq2ExpModel`` by importing the top package and then getattr'ing,
and importing everything eagerly would pull in torch, kipoi and plotting for every ``--help``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

_SUBPACKAGES = {"ops", "model", "data", "simulate", "evaluate", "train", "zoo", "cli"}


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

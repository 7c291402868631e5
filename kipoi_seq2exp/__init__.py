"""kipoi-seq2exp: the Seq2Exp gene-expression model (Su et al., ICLR 2025) for Kipoi.

Subpackages load on first access (``kipoi_seq2exp.data``, ``.zoo``, ...): Kipoi resolves
``defined_as: kipoi_seq2exp.zoo.Seq2ExpModel`` by importing the top package and then getattr'ing,
and importing everything eagerly would pull in torch, kipoi and plotting for every ``--help``.

``load_member("Seq2Exp/K562")`` (or an exported folder) gives a member ready to predict without
Kipoi: ``member.inputs(fasta, genes, tracks={"DNase": "x.bw"})`` reads the user's files for it.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

__version__ = "0.1.0"

_SUBPACKAGES = {"ops", "model", "data", "simulate", "evaluate", "train", "zoo", "cli"}


def __getattr__(name: str) -> ModuleType | Callable:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "load_member":
        return importlib.import_module(f"{__name__}.zoo.member").load_member
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

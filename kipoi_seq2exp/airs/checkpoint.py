"""Read a PyTorch / Lightning checkpoint without executing any code from it.

A Lightning ``.ckpt`` is a zip: ``<name>/data.pkl`` (a pickle that builds the nested dict) and one
record per tensor storage (``<name>/data/<key>``). The authors' ``hyper_parameters`` is most likely
a pickled OmegaConf object, which ``torch.load(weights_only=True)`` refuses and
``weights_only=False`` would execute. We unpickle ``data.pkl`` ourselves: tensors are rebuilt from
the zip's records, plain containers are kept, and every other class or callable becomes an inert
:class:`Placeholder` that records its name and arguments and never runs anything.

Our own training checkpoints are read by :func:`kipoi_seq2exp.train.export.read_checkpoint`, which
refuses any class at all; both readers raise its `CheckpointError`.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..train.export import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


_REDOWNLOAD = "Fix: re-download it and compare its sha256 with the published one."


class Placeholder:
    """Stands in for any class or function the checkpoint names: holds what it was given, does nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses are rebuilt item by item
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:  # list subclasses likewise
        self.__dict__.setdefault("values", []).append(value)

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.qualname}>"


def _placeholder(module: str, name: str) -> type:
    return type(f"Placeholder_{name}", (Placeholder,), {"qualname": f"{module}.{name}"})


@dataclass
class _StorageRef:
    data: bytes
    dtype: torch.dtype


def _rebuild_tensor(storage: _StorageRef, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    flat = torch.frombuffer(bytearray(storage.data), dtype=storage.dtype) if storage.data else torch.empty(
        0, dtype=storage.dtype)
    return flat.as_strided(tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, *_: Any) -> torch.Tensor:
    return data


_SAFE = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("torch", "Size"): torch.Size,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE:
            return _SAFE[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch" and name in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"):
            return getattr(torch, name)
        return _placeholder(module, name)

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent record {pid!r}")
        storage_type, key = pid[1], pid[2]
        dtype = storage_type if isinstance(storage_type, torch.dtype) else torch.uint8
        try:
            data = self.archive.read(f"{self.prefix}/data/{key}")
        except KeyError as err:
            raise CheckpointError(f"tensor record {key} is missing: the file is truncated or damaged") from err
        return _StorageRef(data, dtype)


def read_foreign_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's top-level dict, with tensors as tensors and foreign objects as placeholders.

    Raises CheckpointError for a file that is not a zip-format PyTorch checkpoint (legacy
    non-zip pickles are refused: they cannot be read without executing them).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty (0 bytes): the download or copy was cut off. "
                              f"{_REDOWNLOAD}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a zip-format PyTorch checkpoint (truncated, or not a .ckpt/.pt file). "
                              f"{_REDOWNLOAD}")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{path}: expected one data.pkl record in the archive, found {len(pickles)}")
            prefix = pickles[0][: -len("/data.pkl")]
            result = _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix).load()
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, OSError) as err:
        reason = str(err).strip() or type(err).__name__  # EOFError() of a cut-off pickle has no text
        raise CheckpointError(f"{path}: cannot read the checkpoint ({reason}); the file is probably truncated. "
                              f"{_REDOWNLOAD}") from err
    if not isinstance(result, dict):
        raise CheckpointError(f"{path}: top level is {type(result).__name__}, not a checkpoint dict")
    return result

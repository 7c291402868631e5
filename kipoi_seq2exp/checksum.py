"""File checksums: the one place the package hashes a file (provenance records, checksum lists,
verified downloads, imported checkpoints).

No imports from the rest of the package: every layer may use it.
"""
from __future__ import annotations

import hashlib
import os
from typing import Union

PathLike = Union[str, os.PathLike]


def file_digest(path: PathLike, algorithm: str) -> str:
    """Hex digest of the file's bytes with ``algorithm`` (a `hashlib` name), read in blocks, so a
    multi-gigabyte checkpoint or bigWig never sits in memory whole."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def sha256_of(path: PathLike) -> str:
    """The file's sha256, as ``sha256sum`` prints it: what data.yaml, manifests and checksum lists record."""
    return file_digest(path, "sha256")


__all__ = ["file_digest", "sha256_of"]

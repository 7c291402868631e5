"""Genome-scale prediction runs: shards, resumable part files, their merge and a provenance manifest.

A prediction set has ``rows`` rows (one per gene, or per gene and cell with joint cells) in the
order a single process predicts them: the gene table's. A `Plan` cuts it into ``shards``
contiguous blocks, each into chunks; every chunk becomes one Parquet part file
``OUT.parts/shard-IIII-of-NNNN.chunk-CCCCC.parquet``, written atomically (temp file, then rename)
as soon as its last batch is predicted. A rerun skips the parts present, so a ``kill -9`` loses
at most the chunk in progress, and no chunk is computed twice.

Why contiguous blocks and not a hash of gene_id: the blocks need nothing but the gene table
(identical on every machine), differ in size by at most one batch (a hash leaves shards uneven on a
few hundred genes), keep each process on a few chromosomes (file reads stay local), and make the
merge a concatenation in the gene table's order.

Why boundaries fall on multiples of the eval batch size: every shard then forms exactly the
batches a single process forms, so the merged table is the single-process table bit for bit (a
batch of other genes may change the last bit of a batched kernel's result).

Every part carries the run's key (sha256 of checkpoint, configs, input files and package version)
in its Parquet metadata; each shard keeps a manifest ``OUT.parts/shard-IIII-of-NNNN.json``
(provenance, chunks done). Parts or manifests of another run are refused, never mixed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import __version__
from ..atomic import atomic_path, write_text_atomic
from ..checksum import sha256_of
from ..data.config import DataConfig

PathLike = Union[str, os.PathLike]
MANIFEST_FORMAT = 1
#: inputs above this size are identified by size + mtime: hashing a 3-GB FASTA in each of 100 shards costs more
#: than it protects against
HASH_LIMIT_BYTES = 100 * 2**20
PART_METADATA = b"seq2exp"
DEFAULT_CHUNK_GENES = 64
_FIX_OTHER_RUN = "Fix: give another --out, or delete {folder} to start this run afresh."


class ShardError(ValueError):
    """A sharded run that cannot go on or be merged: wrong --shard, parts missing or of another run."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``; written ``index/count`` as a job array's task id / size."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ShardError(f"--shard {text!r}: expected I/N, e.g. 0/4. Fix: pass the task id and the number of "
                             "tasks, e.g. --shard $SLURM_ARRAY_TASK_ID/4.")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise ShardError(f"--shard {text}: I must lie in 0..N-1 (shards are counted from 0). Fix: submit the "
                             f"array as --array=0-{max(count - 1, 0)}, or pass I-1 for 1-based task ids.")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def stem(self) -> str:
        return f"shard-{self.index:04d}-of-{self.count:04d}"


@dataclass(frozen=True)
class Chunk:
    """Rows [start, stop) of the prediction set, written as one part file by shard ``shard``."""

    shard: Shard
    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def name(self) -> str:
        return f"{self.shard.stem}.chunk-{self.index:05d}.parquet"


@dataclass(frozen=True)
class Plan:
    """How ``rows`` rows are cut: ``shards`` blocks of whole batches of ``batch_size``; each block into
    chunks of ``chunk_batches`` batches (the last chunk of a block may be shorter)."""

    rows: int
    shards: int
    batch_size: int
    chunk_batches: int

    @classmethod
    def of(cls, rows: int, shards: int, batch_size: int, chunk_genes: int = DEFAULT_CHUNK_GENES) -> "Plan":
        """``chunk_genes`` rounded up to a whole number of batches."""
        if chunk_genes < 1:
            raise ShardError(f"--chunk-genes {chunk_genes}: must be at least 1. Fix: e.g. --chunk-genes "
                             f"{DEFAULT_CHUNK_GENES}.")
        return cls(rows, shards, batch_size, -(-chunk_genes // batch_size))

    @property
    def batches(self) -> int:
        return -(-self.rows // self.batch_size)

    def chunks(self, shard: Shard) -> list[Chunk]:
        """The chunks of ``shard``, in row order; a shard beyond the number of batches has none."""
        first, last = (self.batches * k // self.shards for k in (shard.index, shard.index + 1))
        step = self.chunk_batches
        return [Chunk(shard, j, b * self.batch_size, min(min(b + step, last) * self.batch_size, self.rows))
                for j, b in enumerate(range(first, last, step))]

    def all_chunks(self) -> list[Chunk]:
        return [c for k in range(self.shards) for c in self.chunks(Shard(k, self.shards))]

    def describe(self) -> str:
        return (f"{self.rows} rows in {self.shards} shard(s), parts of {self.chunk_batches * self.batch_size} rows "
                f"(batch size {self.batch_size})")


# ---------------------------------------------------------------------- provenance
def parts_folder(out: PathLike) -> Path:
    return Path(f"{out}.parts")


def manifest_path(out: PathLike) -> Path:
    return Path(f"{out}.manifest.json")


def input_files(data: DataConfig) -> dict[str, str]:
    """Every file ``data`` reads, by role (``fasta``, ``tracks.DNase``, ``B.expression`` for joint cell B)."""
    files = {"fasta": data.fasta, "gene_table": data.gene_table, "mrna_features": data.mrna_features}
    for cell in data.per_cell():
        prefix = f"{cell.cell}." if data.joint_cells else ""
        files[f"{prefix}expression"] = cell.expression
        files.update({f"{prefix}tracks.{t.name}": t.path for t in cell.tracks})
    return {role: path for role, path in files.items() if path is not None}


def file_record(path: PathLike, always_hash: bool = False) -> dict[str, Any]:
    """Absolute path, size and sha256 of a file (size and mtime above `HASH_LIMIT_BYTES`, unless ``always_hash``)."""
    path = Path(path).resolve()
    stat = path.stat()
    record: dict[str, Any] = {"path": str(path), "bytes": stat.st_size}
    if stat.st_size > HASH_LIMIT_BYTES and not always_hash:
        record["mtime"] = datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()
    else:
        record["sha256"] = sha256_of(path)
    return record


@dataclass(frozen=True)
class Provenance:
    """What made a run's numbers: checkpoint, input files, settings and package versions.

    ``settings`` holds what else changes a prediction: split, model and data configs, precision, device.
    Two runs with equal `key` give identical parts (with the same threads per process: a reduction
    split over another number of threads may change a last bit), so their parts may be mixed and resumed.
    """

    checkpoint: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    versions: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"kipoi_seq2exp": __version__, "torch": torch.__version__})

    @classmethod
    def of(cls, checkpoint: PathLike, data: DataConfig, settings: dict[str, Any]) -> "Provenance":
        inputs = {role: file_record(path) for role, path in input_files(data).items()}
        return cls(file_record(checkpoint, always_hash=True), inputs, settings)

    def identity(self) -> dict[str, Any]:
        """The fields of the key: contents, not where the checkpoint lies."""
        content = {role: {k: v for k, v in record.items() if k != "path"} for role, record in self.inputs.items()}
        return {"checkpoint": self.checkpoint["sha256"], "inputs": content, "settings": self.settings,
                "versions": self.versions}

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "versions": self.versions, "checkpoint": self.checkpoint, "inputs": self.inputs,
                "settings": self.settings}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> "Provenance":
        return cls(stored["checkpoint"], stored["inputs"], stored["settings"], stored["versions"])


def differences(ours: Provenance, theirs: Provenance) -> list[str]:
    """Dotted names of the identity fields that differ (``checkpoint``, ``inputs.gene_table``, ``settings.split``)."""
    a, b = ours.identity(), theirs.identity()
    names = []
    for field in a:
        if isinstance(a[field], dict) and isinstance(b.get(field), dict):
            keys = sorted(set(a[field]) | set(b[field]))
            names += [f"{field}.{k}" for k in keys if a[field].get(k) != b[field].get(k)]
        elif a[field] != b.get(field):
            names.append(field)
    return names


def _describe(provenance: Provenance) -> str:
    checkpoint = provenance.checkpoint
    return f"checkpoint {checkpoint['path']} (sha256 {checkpoint['sha256'][:12]})"


# ---------------------------------------------------------------------- one shard's parts
class ShardRun:
    """The parts of one shard of a run in ``OUT.parts``: which chunks are done, writing one, the manifest.

    Opening checks that the folder holds nothing of another run (another key or plan), and removes
    the temp file a killed process may have left for one of this shard's parts.
    """

    def __init__(self, out: PathLike, plan: Plan, shard: Shard, provenance: Provenance) -> None:
        self.folder = parts_folder(out)
        self.plan = plan
        self.shard = shard
        self.provenance = provenance
        self.chunks = plan.chunks(shard)
        self.folder.mkdir(parents=True, exist_ok=True)
        check_same_run(self.folder, plan, provenance)
        for temporary in self.folder.glob(f".{shard.stem}.*.tmp"):
            temporary.unlink()
        for chunk in self.done():
            check_part(self.folder / chunk.name, provenance)
        self.write_manifest()

    def done(self) -> list[Chunk]:
        return [c for c in self.chunks if (self.folder / c.name).is_file()]

    def pending(self) -> list[Chunk]:
        return [c for c in self.chunks if not (self.folder / c.name).is_file()]

    def write(self, chunk: Chunk, table: pd.DataFrame) -> None:
        """Write ``chunk``'s rows atomically, then record it in the shard's manifest."""
        if len(table) != chunk.rows:
            raise ValueError(f"{chunk.name}: {len(table)} rows predicted, the plan has {chunk.rows}")
        write_part(self.folder / chunk.name, table, self.provenance.key)
        self.write_manifest()

    def write_manifest(self) -> None:
        """The shard's manifest: provenance, plan, this process's command line and host, chunks done."""
        record = {"format": MANIFEST_FORMAT, **self.provenance.to_dict(), "plan": dataclasses.asdict(self.plan),
                  **shard_entry(self.shard, len(self.chunks), [c.index for c in self.done()])}
        write_text_atomic(self.folder / f"{self.shard.stem}.json", json.dumps(record, indent=2) + "\n")


def shard_entry(shard: Shard, chunks: int, done: list[int]) -> dict[str, Any]:
    """What a manifest says of one shard: which, where and how it ran, and its chunks done."""
    return {"shard": shard.index, "shards": shard.count, "chunks": chunks, "chunks_done": done,
            "command": sys.argv, "host": socket.gethostname(), "threads": torch.get_num_threads()}


def write_part(path: Path, table: pd.DataFrame, key: str) -> None:
    """Parquet with the run's key in its metadata; temp file, fsync, rename: a part is whole or absent."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), PART_METADATA: key.encode()})
    with atomic_path(path) as temporary:
        pq.write_table(arrow, temporary)


def part_key(path: Path) -> Optional[str]:
    """The run key a part was written with (``None`` for a Parquet file not written here)."""
    value = (pq.read_schema(path).metadata or {}).get(PART_METADATA)
    return value.decode() if value is not None else None


def read_part(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def check_part(path: Path, provenance: Provenance) -> None:
    if part_key(path) != provenance.key:
        raise ShardError(f"{path}: written by another run (run key {part_key(path)}), not by this one "
                         f"({_describe(provenance)}, key {provenance.key}). "
                         + _FIX_OTHER_RUN.format(folder=path.parent))


def shard_manifests(folder: Path) -> dict[int, dict[str, Any]]:
    """The manifests in a parts folder, by shard index."""
    manifests = {}
    for path in sorted(folder.glob("shard-*.json")):
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ShardError(f"{path}: not a readable manifest ({err}). Fix: delete it; the next run of its shard "
                             "writes it again.") from err
        manifests[manifest["shard"]] = manifest
    return manifests


def check_same_run(folder: Path, plan: Plan, provenance: Provenance) -> None:
    """Refuse a parts folder whose manifests name another run or another plan, saying what differs."""
    for manifest in shard_manifests(folder).values():
        theirs = Provenance.from_dict(manifest)
        if theirs.key != provenance.key:
            raise ShardError(
                f"{folder} holds parts of another run ({_describe(theirs)}); this run ({_describe(provenance)}) "
                f"differs in {', '.join(differences(provenance, theirs)) or 'its run key'}. "
                f"{_FIX_OTHER_RUN.format(folder=folder)}")
        stored = Plan(**manifest["plan"])
        if stored != plan:
            raise ShardError(
                f"{folder} holds a run cut as {stored.describe()}; this run asks for {plan.describe()}. Fix: rerun "
                f"with --shard I/{stored.shards} and --chunk-genes {stored.chunk_batches * stored.batch_size} (and "
                f"the same eval batch size), or give another --out.")


# ---------------------------------------------------------------------- merge
def missing_parts(folder: Path, plan: Plan) -> dict[Shard, list[int]]:
    """Chunk indices without a part file, by shard (only shards with some missing)."""
    missing: dict[Shard, list[int]] = {}
    for chunk in plan.all_chunks():
        if not (folder / chunk.name).is_file():
            missing.setdefault(chunk.shard, []).append(chunk.index)
    return missing


def _missing_message(out: Path, plan: Plan, missing: dict[Shard, list[int]]) -> str:
    lines = [f"shard {shard}: chunk(s) {', '.join(map(str, chunks))} of 0-{len(plan.chunks(shard)) - 1}"
             for shard, chunks in missing.items()]
    shards = " ".join(str(s.index) for s in missing)
    return (f"{parts_folder(out)}: parts missing for {'; '.join(lines)}. Fix: run seq2exp predict --out {out} "
            f"--shard I/{plan.shards} again for I in {shards} (each computes only its missing chunks), then merge.")


def complete(out: PathLike, plan: Plan) -> bool:
    return not missing_parts(parts_folder(out), plan)


def merge(out: PathLike) -> pd.DataFrame:
    """Concatenate every part of ``OUT.parts`` into the TSV ``out``, as a single process writes it, and write
    ``OUT.manifest.json``. Refuses parts of several runs, and missing parts (naming shards and chunks)."""
    out = Path(out)
    folder = parts_folder(out)
    manifests = shard_manifests(folder) if folder.is_dir() else {}
    if not manifests:
        raise ShardError(f"{folder}: no shard manifests (shard-*.json), so nothing to merge. Fix: run "
                         f"seq2exp predict --out {out} first.")
    first = next(iter(manifests.values()))
    provenance, plan = Provenance.from_dict(first), Plan(**first["plan"])
    check_same_run(folder, plan, provenance)
    missing = missing_parts(folder, plan)
    if missing:
        raise ShardError(_missing_message(out, plan, missing))
    chunks = plan.all_chunks()
    for chunk in chunks:
        check_part(folder / chunk.name, provenance)
    table = pd.concat([read_part(folder / c.name) for c in chunks], ignore_index=True)
    text = table.to_csv(sep="\t", index=False)
    write_text_atomic(out, text)
    write_run_manifest(out, provenance, plan, manifests, text)
    return table


def write_run_manifest(out: Path, provenance: Provenance, plan: Plan, manifests: dict[int, dict[str, Any]],
                       text: str) -> None:
    """``OUT.manifest.json``: the output (rows, sha256), its provenance, and each shard's command, host and chunks."""
    shards = [{k: manifests[i][k] for k in ("shard", "chunks", "chunks_done", "command", "host", "threads")}
              for i in sorted(manifests)]
    record = {"format": MANIFEST_FORMAT,
              "output": {"path": str(out.resolve()), "rows": plan.rows,
                         "sha256": hashlib.sha256(text.encode()).hexdigest()},
              **provenance.to_dict(), "plan": dataclasses.asdict(plan), "shards": shards}
    write_text_atomic(manifest_path(out), json.dumps(record, indent=2) + "\n")


__all__ = ["Shard", "Chunk", "Plan", "Provenance", "ShardRun", "ShardError", "merge", "complete", "parts_folder",
           "manifest_path", "input_files", "file_record", "DEFAULT_CHUNK_GENES"]

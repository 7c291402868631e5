"""Atomic writes: a reader sees the old file or the new one, never half of one.

Files are written to a temp file beside the target, fsync'ed and renamed onto it. The result gets
the mode a plain ``open()`` would give it (``0o666`` less the umask), or the mode of the file it
replaces: ``tempfile.mkstemp`` would make it private (0600) while its neighbours are 0644.

Folders are staged beside their target as ``.<name>.<purpose>-<pid>-<random>`` and published in one
rename; a staging folder left by a killed process is removed by the next staging of that target.

No imports from the rest of the package: every layer may use it.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield the name of a temp file beside ``path`` for any writer that takes a file name (open,
    pyBigWig, h5py, a compiler) to create; when the block ends without an exception it replaces ``path``.

    The name does not exist yet (pyfaidx, for one, would read an existing empty file as its index).
    On an exception ``path`` keeps its old content and the temp file is removed. The parent folder
    is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    created_mode = _created_mode(temporary)
    try:
        yield temporary
        _fsync(temporary)
        os.chmod(temporary, _mode_to_keep(path, created_mode))  # writers may recreate the file, e.g. as 0600
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (`atomic_path`), with ``\\n`` line ends on every platform."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="\n") as handle:
        handle.write(text)


def _created_mode(probe: Path) -> int:
    """The permission bits a plain ``open()`` gives a new file here (0o666 less the umask), read off
    ``probe``, created and removed again: setting the umask to read it would race other threads."""
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return os.fstat(fd).st_mode & 0o7777
    finally:
        os.close(fd)
        os.unlink(probe)


def _fsync(path: Path) -> None:
    """Flush the file to disk before the rename, so a crash cannot leave a renamed but empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode_to_keep(path: Path, created_mode: int) -> int:
    """The replaced file's permission bits, or those a new file gets under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return created_mode


@contextmanager
def staging_folder(target: PathLike, purpose: str) -> Iterator[Path]:
    """Yield a new empty folder ``.<target name>.<purpose>-<pid>-<random>`` beside ``target``; removed on exit.

    Staging folders of the same target and purpose whose process is no longer alive (a killed
    ``seq2exp export``) are removed first. Made with ``mkdir``, so it and a folder published from
    it have the umask's mode (``mkdtemp`` would give 0700).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target, purpose)
    staging = target.with_name(f".{target.name}.{purpose}-{os.getpid()}-{secrets.token_hex(4)}")
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(target: PathLike, purpose: str) -> list[Path]:
    """Remove ``target``'s staging folders for ``purpose`` whose process is gone; returns those removed.

    A folder whose pid is alive (this process, another one still writing, or a pid reused since)
    is kept: removing it could pull files from under a running writer.
    """
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(purpose)}-(\d+)-[0-9a-f]{{8}}")
    stale = [entry for entry in target.parent.iterdir()
             if (match := pattern.fullmatch(entry.name)) and not _process_alive(int(match[1]))]
    for entry in stale:
        shutil.rmtree(entry, ignore_errors=True)
    return stale


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def publish(staging: Path, target: Path) -> list[Path]:
    """Move every file of ``staging`` into ``target``: a new ``target`` appears in one rename, complete;
    in an existing one each file is replaced by its own rename and other files are kept."""
    names = sorted(entry.name for entry in staging.iterdir())
    if not target.exists():
        os.replace(staging, target)
    else:
        for name in names:
            os.replace(staging / name, target / name)
    return [target / name for name in names]


__all__ = ["atomic_path", "write_text_atomic", "staging_folder", "remove_stale_staging", "publish"]

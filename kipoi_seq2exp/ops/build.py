"""Build the CPU selective-scan kernels at first use, once per source version.

``csrc/selective_scan.cpp`` is compiled into one plain shared library per instruction set (loaded
with ctypes by :mod:`.scan_compiled`, not imported). The library lives in a folder named by a hash
of the source, the flags and the compiler, so an install compiles nothing, an edited source is
rebuilt, and a machine pays the ~5-10 s build once, with one line on stderr saying so. The folder
is ``ops/_kernels`` inside the package when that is writable, else the user's cache
(``$SEQ2EXP_KERNEL_CACHE`` overrides both).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from ..atomic import atomic_path

SOURCE = Path(__file__).with_name("csrc") / "selective_scan.cpp"
ENV_CACHE = "SEQ2EXP_KERNEL_CACHE"
# Never -ffast-math: gcc then links crtfastmath, whose constructor turns on flush-to-zero for the
# whole process as soon as the library loads. -Wno-maybe-uninitialized silences a gcc 12 false
# positive inside its own AVX-512 headers; -Wno-psabi a note about passing vectors by value.
COMMON_FLAGS = ("-shared", "-fPIC", "-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp",
                "-fvisibility=hidden", "-fno-exceptions", "-fno-rtti", "-g0", "-Wno-maybe-uninitialized",
                "-Wno-psabi")
ISA_FLAGS = {
    "avx512": ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma"),
    "avx2": ("-mavx2", "-mfma"),
    "generic": (),
}


class BuildError(RuntimeError):
    """A kernel could not be compiled here (no compiler, no OpenMP, an unsupported flag)."""


def compiler() -> str:
    return os.environ.get("CXX", "c++")


def compile_command(isa: str, output: Path) -> list[str]:
    return [compiler(), *COMMON_FLAGS, f"-DSEQ2EXP_ISA_{isa.upper()}=1", *ISA_FLAGS[isa], str(SOURCE), "-o",
            str(output)]


def _cache_root() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    inside = Path(__file__).with_name("_kernels")
    if os.access(inside if inside.exists() else inside.parent, os.W_OK):
        return inside
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kipoi_seq2exp" / "kernels"


def library_path(isa: str) -> Path:
    """Where the library of ``isa`` for this source, these flags and this compiler lives (built or not)."""
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(compile_command(isa, Path("out"))).encode()
                         + (shutil.which(compiler()) or compiler()).encode()).hexdigest()[:16]
    return _cache_root() / key / f"_scan_{isa}.so"


def build_library(isa: str) -> Path:
    """The library of ``isa``, compiled now if this source version has none yet (one stderr line).

    Written to a temporary name and renamed, so concurrent processes never load a half-written file.
    """
    path = library_path(isa)
    if path.exists():
        return path
    print(f"kipoi_seq2exp: compiling the {isa} CPU selective-scan kernel (once per source version) into "
          f"{path.parent}", file=sys.stderr, flush=True)
    with ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_path(path))
        except OSError as err:
            raise BuildError(f"cannot write to {path.parent} ({err}); set ${ENV_CACHE} to a writable folder") from err
        try:
            done = subprocess.run(compile_command(isa, tmp), capture_output=True, text=True)
        except FileNotFoundError as err:
            raise BuildError(f"no C++ compiler ({compiler()!r} not found)") from err
        if done.returncode:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise BuildError(f"{compiler()} failed: {tail}")
    return path


__all__ = ["BuildError", "build_library", "library_path", "compile_command", "ISA_FLAGS", "SOURCE"]

"""Build the compiled CPU selective scan; all metadata lives in setup.cfg.

``kipoi_seq2exp/ops/csrc/selective_scan.cpp`` is compiled once per instruction set into plain
shared libraries (``kipoi_seq2exp/ops/_scan_<isa>.so``, loaded with ctypes, not imported), so
``kipoi_seq2exp.ops.scan_compiled`` can pick at run time the fastest one the CPU executes. A
variant that fails to compile (no compiler, an old one, another architecture) never fails the
install: the build prints one warning and the package runs on its pure-PyTorch scan instead.
"""
import os
import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SCAN_SOURCE = "kipoi_seq2exp/ops/csrc/selective_scan.cpp"

# Never -ffast-math: gcc then links crtfastmath, whose constructor turns on flush-to-zero for the
# whole process as soon as the library loads. -Wno-maybe-uninitialized silences a gcc 12 false
# positive inside its own AVX-512 headers; -Wno-psabi a note about passing vectors by value.
COMMON_FLAGS = ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp",
                "-fvisibility=hidden", "-fno-exceptions", "-fno-rtti", "-g0",
                "-Wno-maybe-uninitialized", "-Wno-psabi"]
ISA_FLAGS = {
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma"],
    "avx2": ["-mavx2", "-mfma"],
    "generic": [],
}
X86_MACHINES = {"x86_64", "amd64", "i386", "i686"}


def scan_extension(isa: str) -> Extension:
    return Extension(
        f"kipoi_seq2exp.ops._scan_{isa}",
        sources=[SCAN_SOURCE],
        language="c++",
        define_macros=[(f"SEQ2EXP_ISA_{isa.upper()}", "1")],
        extra_compile_args=COMMON_FLAGS + ISA_FLAGS[isa],
        extra_link_args=["-fopenmp"],
    )


def scan_extensions() -> list:
    """The x86 variants only on x86 machines: elsewhere they cannot compile, and need not."""
    x86 = platform.machine().lower() in X86_MACHINES
    return [scan_extension(isa) for isa in ISA_FLAGS if x86 or isa == "generic"]


class OptionalBuildExt(build_ext):
    """Build every variant that compiles and warn once about the others instead of failing."""

    def run(self):
        self.failures = []
        try:
            super().run()
        except Exception as err:  # noqa: BLE001 - whatever stops the build must not stop the install
            self.failures.append(("all variants", err))
            self.extensions = []
        self.drop_failed()
        if self.failures:
            self.warn(self.failure_message())

    def build_extension(self, ext):
        # The variants share one source file: give each its own object directory.
        shared_temp = self.build_temp
        self.build_temp = os.path.join(shared_temp, ext.name)
        try:
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001 - compiler missing, too old, flag unsupported
            self.failures.append((ext.name, err))
        finally:
            self.build_temp = shared_temp

    def copy_extensions_to_source(self):  # editable installs: copy only what was built
        self.drop_failed()
        super().copy_extensions_to_source()

    def drop_failed(self):
        failed = {name for name, _ in self.failures}
        self.extensions = [ext for ext in self.extensions if ext.name not in failed]

    def get_ext_filename(self, fullname):
        """Plain ``name.so``: the libraries hold no Python module, so no ABI tag in the name."""
        return os.path.join(*fullname.split(".")) + ".so"

    def failure_message(self) -> str:
        details = "; ".join(f"{name}: {err}" for name, err in self.failures)
        return ("could not compile the CPU selective-scan kernels (" + details + "). The package "
                "still works, using its slower pure-PyTorch scan. To get the fast scan, install a "
                "C++17 compiler with OpenMP (e.g. `apt install g++`) and reinstall.")


setup(ext_modules=scan_extensions(), cmdclass={"build_ext": OptionalBuildExt})

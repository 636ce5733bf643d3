"""Build configuration for the compiled placement kernels.

setuptools reads the project metadata from pyproject.toml; this file only declares
the Cython extensions, with the compiler directives set once here rather than in
each .pyx file.

OpenMP: the kernels' ``prange`` loops run in parallel when the C compiler accepts
OpenMP, which is checked at build time by compiling and linking a tiny OpenMP program
with the same compiler (``-fopenmp``; ``/openmp`` for MSVC). When it does not (Apple
clang without libomp, for one) the kernels are built without OpenMP: the loops run
serially and give the same results. ``MESHPLANE_OPENMP=0`` builds without OpenMP
whatever the compiler; ``MESHPLANE_OPENMP=1`` requires it (the build fails if the
compiler refuses it); unset or ``auto`` detects. The built module tells which in
``placement_ext.OPENMP``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, LinkError

COMPILER_DIRECTIVES = {
    "language_level": "3",
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
}

OPENMP_ENV = "MESHPLANE_OPENMP"
OPENMP_PROBE = """\
#include <omp.h>

int main(void) {
    int n = 0;
    #pragma omp parallel for reduction(+:n)
    for (int i = 0; i < 4; i++) n += omp_get_num_threads() > 0;
    return n == 4 ? 0 : 1;
}
"""


def openmp_wanted() -> bool | None:
    """True: required, False: off, None: use it if the compiler accepts it."""
    value = os.environ.get(OPENMP_ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{OPENMP_ENV} must be 0, 1 or auto, not {value!r}")


def openmp_flags(compiler) -> list[str]:
    return ["/openmp"] if compiler.compiler_type == "msvc" else ["-fopenmp"]


def compiler_accepts_openmp(compiler) -> bool:
    """Compile and link the probe program with OpenMP in a temporary directory."""
    flags = openmp_flags(compiler)
    with tempfile.TemporaryDirectory(prefix="meshplane-openmp-") as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(OPENMP_PROBE)
        try:
            objects = compiler.compile([str(src)], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=flags)
        except (CCompilerError, CompileError, LinkError):
            return False
    return True


def openmp_build_flags(compiler) -> list[str]:
    """The OpenMP flags to build the kernels with ([] = without OpenMP), after
    ``MESHPLANE_OPENMP`` and the probe; says which on standard error."""
    wanted = openmp_wanted()
    use = wanted is not False and compiler_accepts_openmp(compiler)
    if wanted and not use:
        raise SystemExit(f"{OPENMP_ENV}=1 but the C compiler does not accept OpenMP")
    why = ""
    if wanted is False:
        why = f" ({OPENMP_ENV}=0)"
    elif not use:
        why = " (the C compiler does not accept it; the parallel loops run serially)"
    print(f"meshplane: building the placement kernels {'with' if use else 'without'} OpenMP{why}", file=sys.stderr)
    return openmp_flags(compiler) if use else []


class BuildExt(build_ext):
    """build_ext that adds the OpenMP flags only where the compiler takes them."""

    def build_extensions(self) -> None:
        flags = openmp_build_flags(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args = [*ext.extra_compile_args, *flags]
            ext.extra_link_args = [*ext.extra_link_args, *flags]
        super().build_extensions()


extensions = [
    Extension(
        "placement_ext._kernels",
        ["placement_ext/_kernels.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    ),
]

if __name__ == "__main__":  # setuptools runs this file as __main__ (pip, build, setup.py ...)
    setup(
        ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES),
        cmdclass={"build_ext": BuildExt},
    )

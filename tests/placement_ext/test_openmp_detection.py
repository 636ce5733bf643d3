"""setup.py's OpenMP choice: a compiler that refuses ``-fopenmp`` (as Apple clang does)
gets a build without OpenMP; ``MESHPLANE_OPENMP`` forces it off (no probe) or on.

The compiler is the one setuptools would use, made to refuse ``-fopenmp`` by a wrapper
script in front of it, so the probe really compiles and links.
"""

from __future__ import annotations

import importlib.util
import shlex
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the refusing wrapper is a POSIX shell script")


@pytest.fixture(scope="module")
def setup_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("meshplane_setup", REPO / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: defines, does not build
    return module


def real_compiler() -> Any:
    # setuptools' copy of distutils (its distutils-precedence.pth shim provides it)
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    return compiler


def refusing_compiler(tmp_path: Path) -> Any:
    """The real compiler behind a wrapper that fails on -fopenmp like Apple clang."""
    compiler = real_compiler()
    cc = compiler.compiler_so[0]
    wrapper = tmp_path / "cc-without-openmp"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        '  if [ "$a" = "-fopenmp" ]; then echo "clang: error: unsupported option \'-fopenmp\'" >&2; exit 1; fi\n'
        "done\n"
        f'exec {shlex.quote(cc)} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    compiler.set_executables(
        compiler=[str(wrapper), *compiler.compiler[1:]],
        compiler_so=[str(wrapper), *compiler.compiler_so[1:]],
        linker_exe=[str(wrapper), *compiler.linker_exe[1:]],
    )
    return compiler


class NoProbe:
    """A compiler that must not be asked anything."""

    compiler_type = "unix"

    def compile(self, *args: object, **kwargs: object) -> list[str]:
        raise AssertionError("the probe ran although OpenMP was forced off")

    link_executable = compile


def test_a_compiler_refusing_openmp_gets_a_serial_build(setup_py, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MESHPLANE_OPENMP", raising=False)
    compiler = refusing_compiler(tmp_path)
    assert setup_py.compiler_accepts_openmp(compiler) is False
    assert setup_py.openmp_build_flags(compiler) == []
    assert "without OpenMP (the C compiler does not accept it" in capsys.readouterr().err
    monkeypatch.setenv("MESHPLANE_OPENMP", "1")
    with pytest.raises(SystemExit, match="does not accept OpenMP"):
        setup_py.openmp_build_flags(compiler)


def test_the_wrapper_compiles_without_openmp(setup_py, tmp_path):
    # the probe fails for OpenMP alone, not because the wrapper cannot compile at all
    compiler = refusing_compiler(tmp_path)
    src = tmp_path / "plain.c"
    src.write_text("int main(void) { return 0; }\n")
    objects = compiler.compile([str(src)], output_dir=str(tmp_path))
    compiler.link_executable(objects, "plain", output_dir=str(tmp_path))


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_meshplane_openmp_0_forces_it_off_without_a_probe(setup_py, monkeypatch, capsys, value):
    monkeypatch.setenv("MESHPLANE_OPENMP", value)
    assert setup_py.openmp_build_flags(NoProbe()) == []
    assert "without OpenMP (MESHPLANE_OPENMP=0)" in capsys.readouterr().err


def test_auto_uses_openmp_exactly_when_the_probe_passes(setup_py, monkeypatch):
    monkeypatch.setenv("MESHPLANE_OPENMP", "auto")
    compiler = real_compiler()
    expect = ["-fopenmp"] if setup_py.compiler_accepts_openmp(compiler) else []
    assert setup_py.openmp_build_flags(compiler) == expect


def test_a_bad_value_is_refused(setup_py, monkeypatch):
    monkeypatch.setenv("MESHPLANE_OPENMP", "maybe")
    with pytest.raises(SystemExit, match="must be 0, 1 or auto"):
        setup_py.openmp_build_flags(NoProbe())

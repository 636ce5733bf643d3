"""The operator as the image ships it: the wheel built and installed by the Dockerfile's
builder stage, run the way its runtime stage runs it, against the real API server.

No container engine runs here, so the session does what ``docker build`` would: it
copies the build context ``.dockerignore`` leaves into a temporary folder and runs the
builder stage's build command (its ``RUN`` line, parsed from the Dockerfile, with the
stage's ``ENV``; only the venv path moves from /opt into that folder). The result is
reused while the context is unchanged (keyed by its hash: a cold build and install
takes about two minutes). Then, as the runtime stage's numeric user (65532, when the
tests run as root) with its environment and nothing on PATH but the venv:

- the wheel holds the compiled kernels (built with OpenMP) and no test or bench code,
  and the kernels need no library the runtime stage does not install;
- ``meshctl validate`` and ``meshctl plan -o json`` work on examples/;
- ``meshplane-operator`` places the example workloads exactly as that plan says. It
  starts once the cluster holds the examples alone (what other tests created is gone,
  so the plan of examples/ is the plan of the cluster) with their statuses cleared (so
  every status read is its own), and the statuses are read once final: a finished
  solve of exactly the examples logged, none running meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_support import EXAMPLES_DIR, Kubectl, say
from tests.e2e.operator_support import (
    EXAMPLE_WORKLOADS,
    SOLVED,
    clear_statuses,
    final_statuses,
    free_port,
    wait_for,
    wait_for_the_examples_alone,
)
from tests.packaging.docker_context import DOCKERFILE, parse_dockerfile, stage_context, stage_env

pytestmark = pytest.mark.e2e

NONROOT = 65532  # the runtime stage's USER
NIGHT_IN_CALIFORNIA = "2026-11-21T23:30:00-08:00"  # the clock of both the plan and the operator
CACHE = Path(tempfile.gettempdir()) / "meshplane-image-venv"


@dataclass
class ImageVenv:
    venv: Path
    wheel: Path
    runtime_env: dict[str, str]  # the runtime stage's ENV on a bare PATH, VENV moved
    runtime_apt: list[str]  # the packages the runtime stage installs


def _stages() -> tuple[Any, Any]:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    named = {s.name: s for s in stages}
    return named["builder"], named["runtime"]


def _python() -> str:
    """The interpreter to build with: a Python 3.11 in a system folder (the image's base
    has it at /usr/local/bin) if there is one, so the runtime user can run the venv made
    from it; else this one's base interpreter."""
    for candidate in ("/usr/local/bin/python3.11", "/usr/bin/python3.11"):
        if os.access(candidate, os.X_OK) and subprocess.run(
            [candidate, "-c", "import ensurepip, venv, pip"], capture_output=True, check=False
        ).returncode == 0:
            return candidate
    return str(getattr(sys, "_base_executable", sys.executable))


def _build(entry: Path, builder: Any, venv: Path, config: pytest.Config) -> None:
    """Run the builder stage's build command on the staged context in ``entry``."""
    runs = [i.args for i in builder.all("RUN") if "scripts/build-wheel.sh" in i.args]
    assert len(runs) == 1, f"the builder stage should run scripts/build-wheel.sh once: {runs}"
    dev_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != dev_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # /opt is not ours to write here; the pip cache only saves downloads (every
    # dependency is checked against the lock's hashes either way); PYTHON: see _python.
    env |= stage_env(builder, {"PATH": path}) | {"VENV": str(venv), "PYTHON": _python()}
    env.pop("PIP_NO_CACHE_DIR", None)
    started = time.monotonic()
    log = entry / "build.log"
    with log.open("w") as out:
        result = subprocess.run(["bash", "-c", runs[0]], cwd=entry / "context", env=env,
                                stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        pytest.fail(f"the builder stage's {runs[0]!r} failed:\n{log.read_text()[-4000:]}", pytrace=False)
    timings = [line for line in log.read_text().splitlines() if line.startswith("build-wheel:")]
    say(config, f"\nmeshplane e2e: image venv built in {time.monotonic() - started:.0f} s: " + "; ".join(timings))


@pytest.fixture(scope="session")
def image_venv(request: pytest.FixtureRequest) -> ImageVenv:
    builder, runtime = _stages()
    staged = Path(tempfile.mkdtemp(prefix="meshplane-context-"))
    # the sources, what the builder stage does with them, and the interpreter
    recipe = "\n".join(f"{i.keyword} {i.args}" for i in builder.instructions) + f"\n{builder.base}\n{_python()}"
    key = hashlib.sha256((stage_context(staged) + recipe).encode()).hexdigest()
    CACHE.mkdir(mode=0o755, exist_ok=True)
    entry = CACHE / key[:16]
    if (entry / "complete").is_file():
        shutil.rmtree(staged)
        say(request.config, f"\nmeshplane e2e: image venv reused ({entry}: same build context)")
    else:
        for old in CACHE.iterdir():  # one entry: the current sources'
            shutil.rmtree(old, ignore_errors=True)
        entry.mkdir(mode=0o755)
        staged.rename(entry / "context")
        _build(entry, builder, entry / "venv", request.config)
        (entry / "complete").write_text(key)
    # The runtime stage's user must read the venv (as in the image: root-owned, not writable).
    for folder in (CACHE, entry, entry / "context"):
        folder.chmod(0o755)
    wheels = list((entry / "context" / "dist").glob("meshplane-*.whl"))
    assert len(wheels) == 1, wheels
    image_venv = stage_env(builder)["VENV"]
    runtime_env = stage_env(runtime, {"PATH": "/usr/bin:/bin"})
    runtime_env = {k: v.replace(image_venv, str(entry / "venv")) for k, v in runtime_env.items()}
    apt = [w for i in runtime.all("RUN") if "apt-get install" in i.args
           for w in i.args.split("apt-get install", 1)[1].split("&&")[0].split() if not w.startswith("-")]
    return ImageVenv(entry / "venv", wheels[0], runtime_env, apt)


def _as_runtime_user() -> dict[str, Any]:
    """Popen arguments that drop to the image's user when the tests run as root."""
    return {"user": NONROOT, "group": NONROOT, "extra_groups": []} if os.geteuid() == 0 else {}


def _run(image: ImageVenv, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = image.runtime_env | {"HOME": "/"}
    return subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, text=True, check=False,
                          **_as_runtime_user())


@pytest.fixture
def runtime_cwd() -> Iterator[Path]:
    """An empty working directory the runtime user can enter (the image's is /tmp)."""
    cwd = Path(tempfile.mkdtemp(prefix="meshplane-runtime-"))
    cwd.chmod(0o1777)
    yield cwd
    shutil.rmtree(cwd, ignore_errors=True)


def test_the_wheel_holds_the_compiled_kernels_and_no_test_code(image_venv: ImageVenv, runtime_cwd: Path) -> None:
    names = zipfile.ZipFile(image_venv.wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"controller", "placement", "placement_ext", "meshplane-0.1.0.dist-info"}, tops
    assert [n for n in names if n.startswith("placement_ext/_kernels") and n.endswith(".so")], names
    assert not [n for n in names if "/tests/" in n or "/test_" in n or "conftest" in n], names
    probe = (
        "import importlib.util, placement_ext, placement_ext._kernels as k\n"
        "print(k.__file__, placement_ext.OPENMP, [importlib.util.find_spec(m) for m in ('tests', 'bench')])"
    )
    # -I: no current directory, no user site: only what the venv holds
    result = _run(image_venv, str(image_venv.venv / "bin" / "python"), "-I", "-c", probe, cwd=runtime_cwd)
    assert result.returncode == 0, result.stderr
    kernels, openmp, test_specs = result.stdout.split(" ", 2)
    assert kernels.startswith(str(image_venv.venv)) and kernels.endswith(".so")
    assert openmp == "True", "the image's kernels must be built with OpenMP"
    assert test_specs.strip() == "[None, None]"


def test_the_kernels_need_only_what_the_runtime_stage_installs(image_venv: ImageVenv) -> None:
    """Every shared library the compiled kernels link against comes from libc6 (in every
    Debian image) or a package the runtime stage installs; this machine runs the same
    Debian release as the image's base, so ``dpkg -S`` tells which package that is."""
    if not (shutil.which("readelf") and shutil.which("dpkg")):
        pytest.skip("readelf and dpkg are needed to find the packages of the kernels' libraries")
    so = next((image_venv.venv / "lib").glob("python3*/site-packages/placement_ext/_kernels*.so"))
    dynamic = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True, check=True).stdout
    needed = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert "libgomp.so.1" in needed, f"the kernels are not linked with OpenMP: {needed}"
    missing = []
    for library in needed:
        owners = subprocess.run(["dpkg", "-S", f"*/{library}"], capture_output=True, text=True, check=False).stdout
        packages = {line.split(":", 1)[0] for line in owners.splitlines()}
        if not packages & ({"libc6"} | set(image_venv.runtime_apt)):
            missing.append(f"{library} (from {sorted(packages) or 'no package'})")
    assert not missing, f"the runtime stage installs {image_venv.runtime_apt}, not the packages of {missing}"


def _plan(image: ImageVenv, cwd: Path) -> dict[str, Any]:
    result = _run(image, "meshctl", "plan", "-f", str(EXAMPLES_DIR), "--at", NIGHT_IN_CALIFORNIA, "-o", "json",
                  cwd=cwd)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_meshctl_from_the_venv_validates_and_plans_the_examples(image_venv: ImageVenv, runtime_cwd: Path) -> None:
    assert shutil.which("meshctl", path=image_venv.runtime_env["PATH"]) == str(image_venv.venv / "bin" / "meshctl")
    validate = _run(image_venv, "meshctl", "validate", "-f", str(EXAMPLES_DIR), cwd=runtime_cwd)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    plan = _plan(image_venv, runtime_cwd)
    phases = {f"{w['metadata']['namespace']}/{w['metadata']['name']}": w["status"]["phase"] for w in plan["workloads"]}
    assert set(phases) == EXAMPLE_WORKLOADS
    assert phases["research/frontier-pretrain"] == "Placed"
    assert phases["serving/japan-medical-llm"] == "Unschedulable"


def _placements(statuses: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, list[tuple[str, int]]]]:
    return {key: (s.get("phase", ""), s.get("sites", ""),
                  sorted((a["site"], a["devices"]) for a in s.get("assignments") or []))
            for key, s in statuses.items()}


@pytest.fixture
def image_operator(
    kubectl: Kubectl, example_objects: list[dict[str, Any]], image_venv: ImageVenv,
    operator_env: tuple[Path, str, Path], runtime_cwd: Path,
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``meshplane-operator`` from the image venv, as the runtime user, with the
    runtime stage's environment and the operator's ServiceAccount kubeconfig, started
    on the examples alone, their statuses cleared."""
    kubeconfig, namespace, logs = operator_env
    # Before it starts, not after: status writes never make an operator solve, so a
    # status cleared after its first solve would stay empty; and anything another test
    # left (a copy of an example in a namespace still terminating, say) would be solved
    # with the examples.
    wait_for_the_examples_alone(kubectl, example_objects)
    clear_statuses(kubectl, EXAMPLE_WORKLOADS)
    readable = runtime_cwd / "kubeconfig"  # the original is root's, mode 0600
    shutil.copy(kubeconfig, readable)
    if os.geteuid() == 0:
        os.chown(readable, NONROOT, NONROOT)
    port = free_port()
    env = image_venv.runtime_env | {
        "HOME": "/",
        "KUBECONFIG": str(readable),
        "MESHPLANE_NAMESPACE": namespace,
        "MESHPLANE_HEALTH_PORT": str(port),
        "MESHPLANE_HTTP_PORT": str(free_port()),
        "MESHPLANE_CLOCK_START": NIGHT_IN_CALIFORNIA,
        "MESHPLANE_LEASE_DURATION_S": "4",
        "MESHPLANE_LEASE_RENEW_DEADLINE_S": "3",
        "MESHPLANE_LEASE_RETRY_PERIOD_S": "0.5",
    }
    log_path = logs / f"image-operator-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(["meshplane-operator"], env=env, cwd=runtime_cwd, stdout=log,
                                   stderr=subprocess.STDOUT, **_as_runtime_user())
    try:
        yield process, port, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def test_the_operator_from_the_venv_places_the_examples_as_planned(
    kubectl: Kubectl, example_objects: list[dict[str, Any]], image_venv: ImageVenv,
    image_operator: tuple[subprocess.Popen[bytes], int, Path], runtime_cwd: Path,
) -> None:
    process, port, log_path = image_operator
    sites = sum(1 for d in example_objects if d["kind"] in ("AIFactory", "EdgeFleet"))

    def ready() -> bool:
        assert process.poll() is None, f"the operator exited:\n{log_path.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for("the operator from the image venv to be ready", ready)
        current = wait_for(
            f"the statuses of a finished solve of the examples alone ({len(EXAMPLE_WORKLOADS)} workloads, "
            f"{sites} sites)",
            lambda: final_statuses(kubectl, log_path, len(EXAMPLE_WORKLOADS), sites),
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the operator's log ends:\n{log_path.read_text()[-3000:]}") from None
    solves = [m for m in map(SOLVED.search, log_path.read_text().splitlines()) if m]
    # every solve it ran was of the examples alone: nothing else was in the cluster
    solved = {(int(m["workloads"]), int(m["sites"])) for m in solves}
    assert solved == {(len(EXAMPLE_WORKLOADS), sites)}, log_path.read_text()[-3000:]

    planned = {f"{w['metadata']['namespace']}/{w['metadata']['name']}": w["status"]
               for w in _plan(image_venv, runtime_cwd)["workloads"]}
    stored = {key: item["status"] for key, item in current.items()}
    assert _placements(stored) == _placements(planned)

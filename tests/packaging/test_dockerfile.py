"""The Dockerfile and its build context, read without a container engine.

What tests/e2e/test_wheel.py cannot see by running the builder stage's build command:
the runtime stage takes that stage's venv and nothing else (no compiler), runs it as a
numeric non-root user with an environment fit for a read-only root filesystem, and
serves on the operator's health port; the build context holds every file the build
needs and no test, bench, virtualenv or build product.
"""

from __future__ import annotations

import shlex
import subprocess
import tomllib

import pytest

from controller.operator.settings import Settings
from tests.packaging.docker_context import (
    DOCKERFILE,
    REPO,
    Stage,
    context_files,
    ignore_rules,
    ignored,
    parse_dockerfile,
    stage_env,
)

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    assert [s.name for s in parsed] == ["builder", "runtime"]
    return {s.name: s for s in parsed}


def test_both_stages_use_one_python_311_base_pinned_by_tag(stages: dict[str, Stage]) -> None:
    builder, runtime = stages["builder"], stages["runtime"]
    assert builder.base == runtime.base  # the venv's interpreter path is the same in both
    image, _, tag = builder.base.partition(":")
    assert image == "python" and tag.startswith("3.11") and "latest" not in tag
    assert "Python 3.11" in (REPO / "requirements" / "runtime.lock").read_text()[:200]  # the lock's interpreter


def test_the_builder_runs_the_build_script_with_openmp_required(stages: dict[str, Stage]) -> None:
    builder = stages["builder"]
    env = stage_env(builder)
    assert env["MESHPLANE_OPENMP"] == "1"
    runs = [shlex.split(i.args) for i in builder.all("RUN") if "build-wheel.sh" in i.args]
    assert runs == [["bash", "scripts/build-wheel.sh", "all", "$VENV"]]
    assert any("build-essential" in i.args for i in builder.all("RUN"))


def test_the_runtime_stage_runs_the_builders_venv_as_nonroot(stages: dict[str, Stage]) -> None:
    builder, runtime = stages["builder"], stages["runtime"]
    venv = stage_env(builder)["VENV"]
    assert [i.args for i in runtime.all("COPY")] == [f"--from=builder {venv} {venv}"]
    installs = " ".join(i.args for i in runtime.all("RUN"))
    assert not any(tool in installs for tool in ("build-essential", "gcc", "g++", "make ")), installs
    env = stage_env(runtime, {"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[0] == f"{venv}/bin"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    user = runtime.all("USER")[-1].args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) == 65532 and gid == uid
    entry = runtime.all("ENTRYPOINT")[-1].args
    assert entry == '["meshplane-operator"]' and "meshplane-operator" in PROJECT["scripts"]
    assert [i.args for i in runtime.all("EXPOSE")] == [f"{Settings().health_port} {Settings().http_port}"]
    labels = " ".join(i.args for i in runtime.all("LABEL"))
    for key in ("title", "description", "version"):
        assert f"org.opencontainers.image.{key}=" in labels
    version_arg = next(i.args for i in runtime.all("ARG") if i.args.startswith("VERSION="))
    assert version_arg == f"VERSION={PROJECT['version']}"


def test_the_build_context_holds_the_sources_and_nothing_else() -> None:
    files = set(context_files())
    tracked = subprocess.run(["git", "ls-files", "controller", "placement", "placement_ext"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    needed = {"pyproject.toml", "setup.py", PROJECT["readme"], "requirements/runtime.lock", "scripts/build-wheel.sh"}
    assert needed | set(tracked) <= files, sorted((needed | set(tracked)) - files)
    unwanted = [f for f in files if f.split("/")[0] in ("tests", "bench", "docs", "helm", ".venv", "build", "dist")
                or f.endswith((".so", ".pyc")) or f.startswith("placement_ext/_kernels.c")]
    assert unwanted == []


@pytest.mark.parametrize(("rules", "path", "expected"), [
    ("*\n!controller", "controller/api/models.py", False),  # a re-included folder brings its files
    ("*\n!controller", "tests/x.py", True),
    ("*\n!requirements/runtime.lock", "requirements/runtime.lock", False),  # under an ignored folder
    ("*\n!requirements/runtime.lock", "requirements/scan.txt", True),
    ("**/__pycache__", "placement/__pycache__/a.pyc", True),
    ("**/__pycache__", "__pycache__/a.pyc", True),  # "**/" also matches no folder at all
    ("placement_ext/*.so", "placement_ext/_kernels.cpython-311-x86_64-linux-gnu.so", True),
    ("placement_ext/*.so", "placement_ext/sub/x.so", False),  # "*" stops at "/"
    ("*.md\n!README.md", "README.md", False),  # the last matching rule decides
])
def test_dockerignore_rules_follow_dockers_matching(rules: str, path: str, expected: bool) -> None:
    assert ignored(path, ignore_rules(rules)) is expected

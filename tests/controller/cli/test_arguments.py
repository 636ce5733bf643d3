"""``meshctl`` at its edges: arguments out of range, standard input, empty folders,
``--version``, and meshes with nothing to place or nowhere to place it: one clear
line or a plan, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main
from controller.cli.main import EXIT_USAGE, version_text

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
MESHCTL = Path(sys.executable).with_name("meshctl")


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("--time-limit", "0", "argument --time-limit: must be a number > 0 and <= 86400 (got '0')"),
        ("--time-limit", "-1", "argument --time-limit: must be a number > 0"),
        ("--time-limit", "nan", "argument --time-limit: must be a number > 0"),
        ("--time-limit", "soon", "argument --time-limit: must be a number > 0"),
        ("--workers", "0", "argument --workers: must be an integer >= 1 and <= 256 (got '0')"),
        ("--workers", "2.5", "argument --workers: must be an integer >= 1"),
        ("--seed", "-3", "argument --seed: must be an integer >= 0 and <= 2.14748e+09 (got '-3')"),
        ("--at", "tomorrow", "argument --at: not an ISO 8601 time: 'tomorrow'"),
    ],
)
def test_an_argument_out_of_range_is_one_line(
    argument: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-f", str(EXAMPLES), argument, value])
    assert exited.value.code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("meshctl plan: error: ") and expected in line, line


def test_the_console_script_prints_no_traceback_on_bad_arguments() -> None:
    result = subprocess.run(
        [str(MESHCTL), "plan", "-f", str(EXAMPLES), "--workers", "-1"], capture_output=True, text=True, check=False
    )
    assert result.returncode == EXIT_USAGE
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_version_names_the_release_and_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == version_text()
    assert out.startswith("meshctl 0.") and "meshplane.io/v1alpha1" in out


def test_standard_input_is_read_with_dash(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n---\n".join(p.read_text() for p in sorted(EXAMPLES.glob("*.yaml")))
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["plan", "-f", "-", "--at", "2026-11-21T23:30:00-08:00", "-o", "json"]) == 0
    assert '"frontier-pretrain"' in capsys.readouterr().out


def test_bad_input_on_standard_input_names_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("apiVersion: meshplane.io/v1alpha1\nkind: AIFactory\nmetadata: {name: x}\n"))
    assert main(["validate", "-f", "-"]) == 1
    assert "(stdin): AIFactory/x: spec: required field is missing" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_folder_without_manifests_exits_1(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("no manifests here")
    assert main([command, "-f", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip() == f"no YAML files found in {tmp_path}"


def _subset(tmp_path: Path, *names: str) -> str:
    for name in names:
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    return str(tmp_path)


@pytest.mark.parametrize(
    "files",
    [
        ("00-namespaces.yaml", "30-workloads.yaml"),  # workloads, no sites
        ("10-factories.yaml",),  # sites, no workloads
        ("20-fleets.yaml", "00-namespaces.yaml", "30-workloads.yaml"),  # fleets only
        ("10-factories.yaml", "00-namespaces.yaml", "30-workloads.yaml"),  # factories only
        ("00-namespaces.yaml",),  # no meshplane object at all
    ],
    ids=["no-sites", "no-workloads", "fleets-only", "factories-only", "nothing"],
)
@pytest.mark.parametrize("output", ["table", "json"])
def test_every_empty_combination_plans(tmp_path: Path, files: tuple[str, ...], output: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", _subset(tmp_path, *files), "--at", "2026-11-21T23:30:00-08:00", "-o", output]) == 0
    out = capsys.readouterr().out
    if "30-workloads.yaml" in files and "10-factories.yaml" not in files and "20-fleets.yaml" not in files:
        assert "0/0 sites fit" in out

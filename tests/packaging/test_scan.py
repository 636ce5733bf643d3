"""scripts/scan.py's decisions, on the shapes its scanners print.

pip-audit's vulnerability services cannot be reached from every machine (not from the
one these tests were written on), so the verdicts are checked on pip-audit's JSON
report as it prints it (dependencies with ``vulns`` or a ``skip_reason``), written out
here: a vulnerability fails, one dependency that could not be audited fails, a
service that answered for none says it could not run and passes. The chart switches
are read from the real values.yaml.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("meshplane_scan", REPO / "scripts" / "scan.py")
assert _spec and _spec.loader
scan = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = scan  # its dataclasses look their module up there
_spec.loader.exec_module(scan)

NOT_FOUND = "Dependency not found on PyPI and could not be audited: {} ({})"


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


def _dep(name: str, version: str, vulns: list[str] | None = None, skipped: bool = False) -> dict[str, Any]:
    if skipped:
        return {"name": name, "version": version, "skip_reason": NOT_FOUND.format(name, version)}
    return {"name": name, "version": version, "vulns": [{"id": v, "fix_versions": [], "aliases": []} for v in vulns or []]}


def test_a_clean_audit_passes_with_its_count() -> None:
    ok, summary = scan.classify_audit(0, _report(_dep("kopf", "1.45.2"), _dep("rich", "15.0.0")), None, "")
    assert ok and summary.startswith("0 vulnerabilities in 2")


def test_a_vulnerability_fails_even_if_others_were_skipped() -> None:
    report = _report(_dep("kopf", "1.45.2", ["PYSEC-2099-1"]), _dep("rich", "15.0.0", skipped=True))
    ok, summary = scan.classify_audit(1, None, report, "ERROR: rich could not be audited")
    assert not ok and "kopf==1.45.2 (PYSEC-2099-1)" in summary


def test_one_dependency_that_could_not_be_audited_fails() -> None:
    report = _report(_dep("kopf", "1.45.2"), _dep("rich", "15.0.0", skipped=True))
    ok, summary = scan.classify_audit(1, None, report, "")
    assert not ok and summary.startswith("1 of 2 dependencies could not be audited: rich")


def test_a_service_that_answers_for_none_could_not_run_and_does_not_fail() -> None:
    report = _report(_dep("kopf", "1.45.2", skipped=True), _dep("rich", "15.0.0", skipped=True))
    ok, summary = scan.classify_audit(1, None, report, "")
    assert ok and summary.startswith("COULD NOT RUN")


def test_an_unresolvable_service_could_not_run_and_any_other_crash_fails() -> None:
    unreachable = "requests.exceptions.ConnectionError: HTTPSConnectionPool(...): Max retries exceeded"
    assert scan.classify_audit(1, None, None, unreachable)[0] is True
    assert scan.classify_audit(1, None, None, "ValueError: bad requirement line 3")[0] is False


def _leaves(tree: Any, path: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{path}.{key}").items()}
    return {path: tree}


def test_every_optional_feature_of_the_chart_is_switched_on_and_nothing_else_changes() -> None:
    values = yaml.safe_load((REPO / "helm" / "meshplane" / "values.yaml").read_text())
    before, after = _leaves(values), _leaves(scan.switched_on(values))
    switches = {k for k, v in before.items() if k.endswith(".enabled") and isinstance(v, bool)}
    assert switches, "values.yaml has no 'enabled' switch"
    assert {k for k in before if before[k] != after[k]} == {k for k in switches if before[k] is False}
    assert all(after[k] is True for k in switches)


def test_checkov_counts_read_a_report_a_list_and_an_empty_scan() -> None:
    one = '{"check_type": "kubernetes", "results": {"failed_checks": [{"check_id": "CKV_K8S_8"}]},' \
          ' "summary": {"passed": 10, "failed": 1, "skipped": 2, "resource_count": 3}}'
    counts, failed = scan.checkov_counts(one)
    assert counts == {"passed": 10, "failed": 1, "skipped": 2, "resource_count": 3} and failed[0]["check_id"] == "CKV_K8S_8"
    assert scan.checkov_counts(f"[{one}, {one}]")[0]["passed"] == 20
    assert scan.checkov_counts('{"passed": 0, "failed": 0, "skipped": 0, "resource_count": 0}')[0]["resource_count"] == 0
    assert scan.checkov_counts("Traceback (most recent call last):") is None

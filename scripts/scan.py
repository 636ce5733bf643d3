"""Security scans of meshplane, run by `make scan` (and so by `make test`) with the
scanners of .venv-scan (requirements/scan.txt):

- bandit on controller/, placement/ and placement_ext/ (the code the wheel ships):
  fails on any finding of medium or high severity. A low finding is accepted by a
  ``# nosec BXXX  # reason`` on its line; the others are listed.
- checkov on the chart as the real helm (tests/tools/bin/helm) renders it, with its
  default values, with every ``enabled`` switch of values.yaml turned on, and with
  each helm/meshplane/ci/*-values.yaml if there are any; the chart's own
  .checkov.yaml is used when present. Fails on any failed check.
- pip-audit on requirements/runtime.lock (the image's dependencies), strict. When the
  vulnerability service cannot be reached at all (no dependency could be audited), it
  says so in one line and does not fail: nothing was learnt either way. A
  vulnerability, or a dependency that alone could not be audited, fails.

    python scripts/scan.py [bandit|checkov|audit ...]   (default: all three)

Prints one summary line per scanner with its time and counts; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the scanners live next to the interpreter (.venv-scan)
CHART = REPO / "helm" / "meshplane"
# make sets MESHPLANE_HELM to your helm when the tests run against a cluster of yours
HELM = Path(os.environ.get("MESHPLANE_HELM") or REPO / "tests" / "tools" / "bin" / "helm")
LOCK = REPO / "requirements" / "runtime.lock"
BANDIT_TARGETS = ["controller", "placement", "placement_ext"]
# Optional API groups a chart template may ask helm about (.Capabilities.APIVersions).
OPTIONAL_APIS = ["monitoring.coreos.com/v1"]


@dataclass
class Outcome:
    scanner: str
    ok: bool
    summary: str
    details: str = ""


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


# --------------------------------------------------------------------------- bandit


def bandit() -> Outcome:
    result = run([str(BIN / "bandit"), "-r", *BANDIT_TARGETS, "-c", "pyproject.toml", "-f", "json", "-q"], cwd=REPO)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return Outcome("bandit", False, f"did not run (exit {result.returncode})", result.stderr[-2000:])
    if report.get("errors"):
        return Outcome("bandit", False, "could not read some files", json.dumps(report["errors"], indent=1))
    findings = report["results"]
    by_severity = {s: [f for f in findings if f["issue_severity"] == s] for s in ("HIGH", "MEDIUM", "LOW")}
    lines = [f"  {f['issue_severity'].lower()} {f['test_id']} {f['filename']}:{f['line_number']}: {f['issue_text']}"
             for f in findings]
    totals = report["metrics"]["_totals"]
    accepted = totals.get("nosec", 0) + totals.get("skipped_tests", 0)  # "# nosec" alone, "# nosec BXXX"
    summary = (f"{len(by_severity['HIGH'])} high, {len(by_severity['MEDIUM'])} medium, {len(by_severity['LOW'])} low "
               f"({accepted} accepted with nosec) in {report['metrics']['_totals']['loc']} lines")
    return Outcome("bandit", not (by_severity["HIGH"] or by_severity["MEDIUM"]), summary, "\n".join(lines))


# --------------------------------------------------------------------------- checkov


def switched_on(values: Any) -> Any:
    """values.yaml with every boolean ``enabled`` set to true (the optional features)."""
    if isinstance(values, dict):
        return {k: True if k == "enabled" and isinstance(v, bool) else switched_on(v) for k, v in values.items()}
    if isinstance(values, list):
        return [switched_on(v) for v in values]
    return values


def value_sets(work: Path) -> dict[str, list[str]]:
    """Name -> the helm arguments of each rendering to scan."""
    everything = work / "all-on-values.yaml"
    everything.write_text(yaml.safe_dump(switched_on(yaml.safe_load((CHART / "values.yaml").read_text()))))
    sets = {"defaults": [], "all-on": ["-f", str(everything)]}
    for extra in sorted((CHART / "ci").glob("*-values.yaml")):
        sets[f"ci/{extra.name}"] = ["-f", str(extra)]
    return sets


def checkov() -> Outcome:
    if not HELM.is_file():
        return Outcome("checkov", False, f"no helm at {HELM} (make tools builds it)")
    failed_total, passed_total, skipped_total, notes = 0, 0, 0, []
    with tempfile.TemporaryDirectory(prefix="meshplane-checkov-") as tmp:
        work = Path(tmp)
        renderings = value_sets(work)
        for name, args in renderings.items():
            folder = work / name.replace("/", "_")
            folder.mkdir()
            apis = [a for api in OPTIONAL_APIS for a in ("--api-versions", api)]
            rendered = run([str(HELM), "template", "meshplane", str(CHART), "-n", "meshplane-system", *apis, *args])
            if rendered.returncode != 0:
                return Outcome("checkov", False, f"helm template ({name}) failed", rendered.stderr[-2000:])
            (folder / "rendered.yaml").write_text(rendered.stdout)
            config = CHART / ".checkov.yaml"
            argv = [str(BIN / "checkov"), "-d", str(folder), "--framework", "kubernetes", "-o", "json",
                    "--skip-download", "--quiet"]
            if config.is_file():
                argv[1:1] = ["--config-file", str(config)]
            result = run(argv, cwd=folder)
            parsed = checkov_counts(result.stdout)
            objects = sum(1 for doc in yaml.safe_load_all(rendered.stdout) if doc)
            if parsed is None or (objects and not parsed[0]["resource_count"]):
                return Outcome("checkov", False, f"checkov did not scan the {name} rendering (exit {result.returncode})",
                               (result.stderr or result.stdout)[-2000:])
            counts, failed = parsed
            passed_total += counts["passed"]
            skipped_total += counts["skipped"]
            failed_total += counts["failed"]
            notes += [f"  {name}: {c['check_id']} {c['resource']}: {c['check_name']}" for c in failed]
    summary = (f"{failed_total} failed, {passed_total} passed, {skipped_total} skipped by the chart's annotations"
               f" over {len(renderings)} renderings ({', '.join(renderings)})")
    return Outcome("checkov", failed_total == 0, summary, "\n".join(notes))


def checkov_counts(stdout: str) -> tuple[dict[str, int], list[dict[str, Any]]] | None:
    """(summary counts: passed, failed, skipped, resource_count; the failed checks) from
    checkov's JSON (one report, or a list of them); None if it is not checkov's JSON.
    With --quiet the passed checks are not listed, only counted in the summary."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0, "resource_count": 0}
    failed: list[dict[str, Any]] = []
    for report in data if isinstance(data, list) else [data]:
        summary = report.get("summary", report)  # nothing scanned: the summary alone
        if not all(k in summary for k in counts):
            return None
        for key in counts:
            counts[key] += int(summary[key])
        failed += (report.get("results") or {}).get("failed_checks", [])
    return counts, failed


# --------------------------------------------------------------------------- pip-audit


def _audit_json(strict: bool) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    argv = [str(BIN / "pip-audit"), "-r", str(LOCK), "--require-hashes", "--disable-pip", "--progress-spinner", "off",
            "-f", "json"] + (["--strict"] if strict else [])
    result = run(argv, cwd=REPO)
    try:
        return result, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result, None


def classify_audit(strict_exit: int, strict_report: dict[str, Any] | None, lenient_report: dict[str, Any] | None,
                   stderr: str) -> tuple[bool, str]:
    """(pass?, summary) from a strict run and, if it failed, a lenient one (which goes
    on past a dependency it cannot audit, so it tells one from all)."""
    if strict_exit == 0 and strict_report is not None:
        deps = strict_report.get("dependencies", [])
        return True, f"0 vulnerabilities in {len(deps)} locked dependencies"
    report = strict_report if strict_report and _vulns(strict_report) else lenient_report
    if report is None:
        reason = _last_error(stderr)
        if any(s in stderr for s in ("ConnectionError", "NameResolutionError", "Max retries", "timed out")):
            return True, f"COULD NOT RUN: the vulnerability service is unreachable ({reason}); nothing was audited"
        return False, f"failed: {reason}"
    vulnerable = _vulns(report)
    if vulnerable:
        return False, f"{sum(len(d['vulns']) for d in vulnerable)} vulnerabilities in " + ", ".join(
            f"{d['name']}=={d['version']} ({', '.join(v['id'] for v in d['vulns'])})" for d in vulnerable)
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    if deps and len(skipped) == len(deps):
        return True, (f"COULD NOT RUN: none of the {len(deps)} locked dependencies could be audited, the "
                      f"vulnerability service did not answer for any (e.g. {skipped[0]['skip_reason']})")
    if skipped:
        return False, f"{len(skipped)} of {len(deps)} dependencies could not be audited: " + ", ".join(
            f"{d['name']} ({d['skip_reason']})" for d in skipped)
    return False, f"failed: {_last_error(stderr)}"


def _vulns(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in report.get("dependencies", []) if d.get("vulns")]


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def audit() -> Outcome:
    strict, strict_report = _audit_json(strict=True)
    lenient_report = None
    if strict.returncode != 0:
        _, lenient_report = _audit_json(strict=False)
    ok, summary = classify_audit(strict.returncode, strict_report, lenient_report, strict.stderr)
    return Outcome("pip-audit", ok, summary)


# --------------------------------------------------------------------------- main

SCANNERS: dict[str, Callable[[], Outcome]] = {"bandit": bandit, "checkov": checkov, "audit": audit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scanners", nargs="*", help=f"any of {', '.join(SCANNERS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scanners) - set(SCANNERS))
    if unknown:
        parser.error(f"unknown scanner(s): {', '.join(unknown)}")
    failed = []
    for name in args.scanners or list(SCANNERS):
        started = time.monotonic()
        outcome = SCANNERS[name]()
        print(f"scan: {outcome.scanner}: {'ok' if outcome.ok else 'FAILED'}: {outcome.summary} "
              f"({time.monotonic() - started:.1f} s)", flush=True)
        if outcome.details:
            print(outcome.details, flush=True)
        if not outcome.ok:
            failed.append(outcome.scanner)
    if failed:
        print(f"scan: FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

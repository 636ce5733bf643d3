"""``meshctl plan --what-if CHANGE`` and ``meshctl plan --diff PREVIOUS.json``.

``--what-if`` (repeatable, applied in order; ``--add PATH`` adds or replaces manifests
first) plans the manifests with the changes of :mod:`controller.core.whatif` and prints
that plan and what changes against the plan without them; ``-o json|yaml`` prints
``{plan: <the status objects of meshctl plan -o json>, diff: <PlanDiff.to_dict()>}``.
``--diff PREVIOUS.json`` plans the manifests as they are and prints what changed since
a document saved by ``meshctl plan -o json``; ``-o json|yaml`` prints the diff alone.

A bad change syntax is an argument error (one line, exit 2, from argparse); a change
the mesh cannot take (an unknown site, a curtailment above the flexible power) or an
unreadable ``--diff`` file is one line and exit 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from controller.cli import render
from controller.cli.files import load_manifests
from controller.core.parse import Manifests
from controller.core.reconcile import Snapshot, reconcile
from controller.core.whatif import Change, WhatIfError, apply_changes, diff_plan_documents, parse_change, what_if
from placement.problem import SolverConfig

EXIT_OK = 0
EXIT_PROBLEMS = 1


def _change(text: str) -> Change:
    try:
        return parse_change(text)
    except WhatIfError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(plan: argparse.ArgumentParser) -> None:
    """The what-if and diff options of ``meshctl plan``."""
    group = plan.add_mutually_exclusive_group()
    group.add_argument(
        "--what-if", dest="what_if", type=_change, action="append", default=[], metavar="CHANGE",
        help="plan with this change and print what changes (repeatable, in order): 'curtail SITE=MW', "
        "'firm SITE=MW', 'cordon SITE', 'uncordon SITE', 'remove NAMESPACE/NAME', 'remove SITE', 'clock ISO-TIME' "
        "(see docs/what-if.md)",
    )
    group.add_argument(
        "--diff", metavar="PREVIOUS.json",
        help="print what changed since a plan saved by `meshctl plan -o json` (- for standard input)",
    )
    plan.add_argument(
        "--add", action="append", default=[], metavar="PATH",
        help="with --what-if: manifests to add, or to replace those of the same name (repeatable)",
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether ``meshctl plan`` was asked for a what-if or a diff."""
    return bool(args.what_if or args.diff or args.add)


def _fail(message: str) -> int:
    sys.stderr.write(f"meshctl plan: error: {message}\n")
    return EXIT_PROBLEMS


def _write(document: Any, output: str) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False))


def _as_manifests(snapshot: Snapshot) -> Manifests:
    return Manifests(factories=list(snapshot.factories), fleets=list(snapshot.fleets),
                     workloads=list(snapshot.workloads))


def _read_document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WhatIfError(f"--diff {path}: {reason}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WhatIfError(f"--diff {path}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def run(args: argparse.Namespace, manifests: Manifests, at: dt.datetime, config: SolverConfig) -> int:
    """The what-if or the diff of ``meshctl plan`` on valid ``manifests``."""
    if args.diff:
        return _run_diff(args, manifests, at, config)
    added = None
    if args.add:
        added = load_manifests(args.add)
        if added.problems:
            render.print_problems(added, render.console())
            return EXIT_PROBLEMS
    snapshot = Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at, grid_events=manifests.grid_events)
    try:
        changed = apply_changes(snapshot, args.what_if, added)  # the resources the plan is printed for
        outcome, diff = what_if(snapshot, args.what_if, config, add=added)
    except WhatIfError as exc:
        return _fail(str(exc))
    shown = _as_manifests(changed)
    if args.output != "table":
        _write({"plan": render.status_objects(shown, outcome), "diff": diff.to_dict()}, args.output)
        return EXIT_OK
    out = render.console()
    render.print_warnings(shown, out)
    what = "; ".join(str(c) for c in args.what_if) + ("; " if args.what_if and added else "")
    count = len(added.factories) + len(added.fleets) + len(added.workloads) + len(added.grid_events) if added else 0
    what += f"{count} added object(s)" if added else ""
    out.print(f"Plan for {changed.at.isoformat()} if {what}", style="bold", markup=False)
    out.print(render.workload_table(shown, outcome))
    out.print(render.site_table(shown, outcome))
    out.print(render.summary_line(outcome), markup=False)
    render.print_diff(diff, "against the plan without the change(s)", out)
    return EXIT_OK


def _run_diff(args: argparse.Namespace, manifests: Manifests, at: dt.datetime, config: SolverConfig) -> int:
    try:
        before = _read_document(args.diff)
        outcome = reconcile(Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at, grid_events=manifests.grid_events), config)
        diff = diff_plan_documents(before, render.status_objects(manifests, outcome))
    except WhatIfError as exc:
        return _fail(str(exc))
    if args.output != "table":
        _write(diff.to_dict(), args.output)
        return EXIT_OK
    out = render.console()
    render.print_warnings(manifests, out)
    out.print(f"Plan for {at.isoformat()}", style="bold")
    out.print(render.summary_line(outcome), markup=False)
    render.print_diff(diff, f"since {args.diff}", out)
    return EXIT_OK

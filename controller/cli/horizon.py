"""``meshctl plan --horizon 24h``: the next hours, planned at every wake-up.

Prints, for the manifests (with any ``--what-if`` changes, e.g. a scheduled
``curtail SITE=MW from TIME for 3h``), the grid events, each factory's usable power and
allocation and each fleet's online devices at every instant the operator will wake at
within the horizon (:mod:`controller.core.timeline`), and the moves planned then.
``-o json|yaml`` prints the same document as ``GET /api/v1/timeline``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from rich.console import Console
from rich.table import Table

from controller.cli import render
from controller.cli.files import load_manifests
from controller.core.parse import Manifests
from controller.core.reconcile import Snapshot
from controller.core.timeline import Timeline, timeline
from controller.core.whatif import WhatIfError, apply_changes, parse_duration_text
from controller.http.timeline import timeline_view
from placement.problem import SolverConfig

EXIT_OK = 0
EXIT_PROBLEMS = 1
MAX_HORIZON = dt.timedelta(hours=72)


def _horizon(text: str) -> dt.timedelta:
    try:
        horizon = parse_duration_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 24h, 90m, PT6H)") from None
    if horizon <= dt.timedelta(0) or horizon > MAX_HORIZON:
        raise argparse.ArgumentTypeError(f"the horizon must be more than 0 and at most 72h (got {text!r})")
    return horizon


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"not an IANA time zone: {text!r} (e.g. Europe/Berlin, UTC)") from None


def add_arguments(plan: argparse.ArgumentParser) -> None:
    plan.add_argument(
        "--horizon", type=_horizon, metavar="DURATION",
        help="print the timeline of the next DURATION (e.g. 24h): usable power, allocation and planned moves at "
        "every grid event and fleet window change (with --what-if: of the changed mesh)",
    )
    plan.add_argument(
        "--timezone", type=_zone, default=ZoneInfo("UTC"), metavar="ZONE",
        help="with --horizon: show times in this IANA time zone (default: UTC)",
    )


def run(args: argparse.Namespace, manifests: Manifests, at: dt.datetime, config: SolverConfig) -> int:
    snapshot = Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at,
                        grid_events=manifests.grid_events)
    added = None
    if args.add:
        added = load_manifests(args.add)
        if added.problems:
            render.print_problems(added, render.console())
            return EXIT_PROBLEMS
    if args.what_if or added is not None:
        try:
            changed = apply_changes(snapshot, args.what_if, added)
        except WhatIfError as exc:
            sys.stderr.write(f"meshctl plan: {exc}\n")
            return EXIT_PROBLEMS
        clock = any(change.op == "clock" for change in args.what_if)
        snapshot = Snapshot(changed.factories, changed.fleets, changed.workloads, changed.at if clock else at,
                            grid_events=changed.grid_events)
    found = timeline(snapshot, config, args.horizon)
    if args.output in ("json", "yaml"):
        document = timeline_view(found, snapshot).model_dump(by_alias=True, mode="json")
        text = json.dumps(document, indent=2) + "\n" if args.output == "json" else yaml.safe_dump(
            document, sort_keys=False)
        sys.stdout.write(text)
        return EXIT_OK
    print_timeline(found, snapshot, args.timezone, render.console())
    return EXIT_OK


def _when(at: dt.datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %H:%M %Z")


def print_timeline(found: Timeline, snapshot: Snapshot, zone: ZoneInfo, out: Console) -> None:
    out.print(f"Timeline from {_when(found.start, zone)} to {_when(found.end, zone)}: "
              f"{len(found.instants)} instant(s)" + (" (cut: more wake-ups in the horizon)" if found.truncated else ""),
              style="bold", markup=False)
    if found.events:
        events = Table(title="Grid events", header_style="bold")
        for name in ("GridEvent", "Factory", "Phase", "From", "To", "Lead", "Limit MW", "Peak curtailed MW", "Source"):
            events.add_column(name, justify="right" if "MW" in name else "left")
        for e in found.events:
            events.add_row(e.name, e.factory, e.phase, _when(e.start, zone), _when(e.end, zone), e.lead_time,
                           "-" if e.limit_mw is None else f"{e.limit_mw:,.1f}", f"{e.peak_curtailed_mw:,.1f}", e.source)
        out.print(events)
    # the sites whose figures change within the horizon; the others are one line each in `meshctl plan`
    changing = [name for name, points in found.factories.items() if len({(p.usable_mw, p.planned_curtailed_mw,
                                                                          p.allocated_mw) for p in points}) > 1]
    fleets = [name for name, points in found.fleets.items() if len({(p.online_devices, p.allocated_mw)
                                                                    for p in points}) > 1]
    power = Table(title="Power: allocated / usable MW (factories), devices online (fleets)", header_style="bold")
    power.add_column("Time")
    for name in changing + fleets:
        power.add_column(name, justify="right")
    power_of = {f.metadata.name: f.spec.power for f in snapshot.factories}
    for index, at in enumerate(found.instants):
        cells = []
        for name in changing:
            p = found.factories[name][index]
            cell = f"{p.allocated_mw:,.1f} / {p.usable_mw:,.1f}"
            if p.planned_curtailed_mw > p.curtailed_mw:
                planned_usable = power_of[name].firm_mw + power_of[name].flexible_mw - p.planned_curtailed_mw
                cell += f" (preparing: {planned_usable:,.1f})"
            cells.append(cell)
        cells += [f"{found.fleets[name][index].online_devices:,}" for name in fleets]
        power.add_row(_when(at, zone), *cells)
    if changing or fleets:
        out.print(power)
    else:
        out.print("No site's power or allocation changes within the horizon.", markup=False)
    if found.moves:
        moves = Table(title="Planned moves", header_style="bold")
        for name in ("Time", "MeshWorkload", "From", "To", "Phase", "Because"):
            moves.add_column(name)
        for m in found.moves:
            moves.add_row(_when(m.at, zone), m.workload, ", ".join(m.before_sites) or "-",
                          ", ".join(m.after_sites) or "-", m.phase, m.because or "-")
        out.print(moves)
    else:
        out.print("No workload moves within the horizon.", markup=False)


__all__ = ["add_arguments", "print_timeline", "run"]

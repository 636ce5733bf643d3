"""What ``meshctl`` prints: rich tables of the mesh, the plan and its sites, the one-line
solve summary, the status objects of ``-o json|yaml``, and the "What changes" table of
a what-if or a diff (:class:`controller.core.whatif.PlanDiff`).

Called by :mod:`controller.cli.main`; reads the core's ``Outcome`` and never computes a
placement figure itself (mesh-wide solve figures live here and in the plan, never in a
resource's status).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from controller.api.resources import AIFactory, EdgeFleet
from controller.core.parse import Manifests, topology_warnings
from controller.core.reconcile import Outcome
from controller.core.statuses import PHASE_PLACED, PHASE_UNSCHEDULABLE, status_object
from controller.core.whatif import PlanDiff, SiteDelta, WorkloadMove

# Tables printed into a pipe or a CI log get this width rather than rich's 80 columns.
_PIPE_WIDTH = 200
_PHASE_STYLES = {PHASE_PLACED: "green", PHASE_UNSCHEDULABLE: "red"}


def console() -> Console:
    # soft_wrap: problem lines stay one line each, whatever the terminal width.
    return Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def print_problems(manifests: Manifests, out: Console) -> None:
    for problem in manifests.problems:
        out.print(str(problem), markup=False)
    files = {p.file for p in manifests.problems}
    out.print(f"{len(manifests.problems)} problem(s) in {len(files)} file(s)", style="bold red")


def print_warnings(manifests: Manifests, out: Console) -> None:
    for warning in topology_warnings(manifests):
        out.print(f"warning: {warning}", style="yellow", markup=False)


def mesh_table(manifests: Manifests) -> Table:
    """A short table of the mesh: sites, power, devices, workloads."""
    factory_devices = sum(p.count for f in manifests.factories for p in f.spec.accelerator_pools)
    firm_mw = sum(f.spec.power.firm_mw for f in manifests.factories)
    flexible_mw = sum(f.spec.power.flexible_mw for f in manifests.factories)
    fleet_devices = sum(f.spec.devices for f in manifests.fleets)
    opted_in = sum(round(f.spec.devices * f.spec.opt_in_ratio) for f in manifests.fleets)
    fleet_cap_mw = sum(f.spec.max_fleet_mw for f in manifests.fleets)
    by_type = Counter(w.spec.type for w in manifests.workloads)

    table = Table(title="Mesh", show_header=True, header_style="bold")
    table.add_column("What")
    table.add_column("Count", justify="right")
    table.add_column("Detail")
    table.add_row(
        "AI factories", str(len(manifests.factories)),
        f"{firm_mw:,.0f} MW firm + {flexible_mw:,.0f} MW flexible; {factory_devices:,} devices",
    )
    table.add_row(
        "Edge fleets", str(len(manifests.fleets)),
        f"{fleet_devices:,} devices, {opted_in:,} opted in; cap {fleet_cap_mw:,.1f} MW",
    )
    table.add_row(
        "MeshWorkloads", str(len(manifests.workloads)),
        ", ".join(f"{count} {kind}" for kind, count in sorted(by_type.items())) or "-",
    )
    return table


def status_objects(manifests: Manifests, outcome: Outcome) -> dict[str, list[dict[str, Any]]]:
    """Every resource's status exactly as the operator writes it, keyed by kind."""
    return {
        "workloads": [status_object(w, outcome.workloads[w.key]) for w in manifests.workloads],
        "factories": [status_object(f, outcome.factories[f.metadata.name]) for f in manifests.factories],
        "fleets": [status_object(f, outcome.fleets[f.metadata.name]) for f in manifests.fleets],
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


Justify = Literal["left", "right"]
_WORKLOAD_COLUMNS: tuple[tuple[str, Justify], ...] = (
    ("MeshWorkload", "left"), ("Type", "left"), ("Phase", "left"), ("Sites", "left"), ("Devices", "right"),
    ("MW", "right"), ("Latency ms", "right"), ("Tokens/J", "right"), ("Reason", "left"),
)


def workload_table(manifests: Manifests, outcome: Outcome) -> Table:
    table = Table(title="Workloads", header_style="bold")
    for name, justify in _WORKLOAD_COLUMNS:
        table.add_column(name, justify=justify, overflow="fold")
    for workload in manifests.workloads:
        status = outcome.workloads[workload.key]
        devices = sum(a.devices for a in status.assignments)
        watts = status.power_mw * 1e6
        style = _PHASE_STYLES.get(status.phase, "yellow")
        table.add_row(
            workload.key, workload.spec.type, f"[{style}]{status.phase}[/]", status.sites.replace(",", ", ") or "-",
            f"{devices:,}" if devices else "-", _fmt(status.power_mw, 2) if devices else "-",
            _fmt(status.latency_ms), _fmt(status.tokens_per_second / watts if watts else None, 3),
            # the table may say what others hold now (the status says only what is stable)
            "" if status.phase == PHASE_PLACED else outcome.plan.workloads[workload.key].message,
        )
    return table


def site_table(manifests: Manifests, outcome: Outcome) -> Table:
    table = Table(title="Sites", header_style="bold")
    for name in ("Site", "Kind", "Delivered to", "Firm MW used/free", "Flexible MW used/free", "Devices used/free",
                 "Workloads", "Tokens/J", "Conditions"):
        table.add_column(name, justify="left" if name in ("Site", "Kind", "Delivered to", "Conditions") else "right")
    rows: list[tuple[AIFactory | EdgeFleet, Any]] = [(f, outcome.factories[f.metadata.name]) for f in manifests.factories]
    rows += [(f, outcome.fleets[f.metadata.name]) for f in manifests.fleets]
    for site, status in rows:
        power = status.power
        used = sum(p.devices_allocated for p in status.pools)
        free = sum(p.devices_available for p in status.pools)
        flags = [c.type for c in status.conditions if c.type != "Ready" and c.status == "True"]
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        if ready is not None and ready.status != "True" and ready.reason not in flags:
            flags.append(ready.reason)
        table.add_row(
            site.metadata.name, site.kind, site.spec.member_cluster or "local",
            f"{_fmt(power.firm_allocated_mw)} / {_fmt(power.firm_available_mw)}" if power else "-",
            f"{_fmt(power.flexible_allocated_mw)} / {_fmt(power.flexible_available_mw)}" if power else "-",
            f"{used:,} / {free:,}", str(status.workload_count), _fmt(status.tokens_per_joule, 3),
            ", ".join(flags) or "-",
        )
    return table


def summary_line(outcome: Outcome) -> str:
    """The mesh-wide figures of the solve: what was placed, its bound and gap, how."""
    stats = outcome.plan.stats
    decisions = outcome.plan.workloads.values()
    placed = [d for d in decisions if d.assignments]
    total_mw = sum(d.power_mw for d in placed)
    tokens = sum(d.tokens_per_second for d in placed)
    how = [str(stats.status), "warm" if stats.warm else "cold"]
    if stats.fallback_used:
        how.append("greedy fallback")
    if stats.wall_limit_hit:
        how.append("wall-clock safety limit hit: the plan may differ on a faster machine")
    return (
        f"placed {len(placed)}/{len(decisions)} workloads (priority-weighted demand "
        f"{stats.placed_priority_demand:,.0f}, kube-scheduler-style greedy {stats.greedy_placed_priority_demand:,.0f}); "
        f"{total_mw:,.1f} MW; {tokens:,.0f} tokens/s; bound {stats.bound:,.0f}, gap {stats.gap:.2%} "
        f"({', '.join(how)}); solve {stats.wall_ms:,.0f} ms"
        + (f"; stopped: {stats.stop_reason}" if stats.stop_reason else "")
    )


_DIFF_KINDS = (
    ("moved", "moved", "cyan"), ("newly_placed", "newly placed", "green"),
    ("newly_unschedulable", "newly unschedulable", "red"), ("newly_preempted", "newly preempted", "red"),
)


def _sites_or_phase(sites: tuple[str, ...], phase: str) -> str:
    return ", ".join(sites) if sites else (phase or "(absent)")


def _site_figures(mw: float, tokens_per_second: float) -> str:
    return f"{mw:,.2f} MW, {tokens_per_second:,.0f} tokens/s"


def diff_table(diff: PlanDiff, context: str) -> Table:
    """One row per workload whose outcome changes (before -> after sites, or its phase
    when it has none, and why), per workload or site removed or added, and per site whose
    MW or tokens/s change."""
    table = Table(title=f"What changes {context}", header_style="bold")
    for name in ("Change", "MeshWorkload / site", "Before", "After", "Reason"):
        table.add_column(name, overflow="fold")
    for field, label, style in _DIFF_KINDS:
        moves: tuple[WorkloadMove, ...] = getattr(diff, field)
        for move in moves:
            table.add_row(
                f"[{style}]{label}[/]", move.key, _sites_or_phase(move.before_sites, move.before_phase),
                _sites_or_phase(move.after_sites, move.after_phase), move.reason,
            )
    for key in diff.removed:
        table.add_row("removed", key, "", "", "")
    for key in diff.added:
        table.add_row("added", key, "", "", "")
    site: SiteDelta
    for site in diff.sites:
        table.add_row(
            "site", f"{site.site} ({site.kind})", _site_figures(site.mw_before, site.tokens_per_second_before),
            _site_figures(site.mw_after, site.tokens_per_second_after),
            f"{site.mw_after - site.mw_before:+,.2f} MW",
        )
    return table


def print_diff(diff: PlanDiff, context: str, out: Console) -> None:
    if diff.empty:
        out.print(f"What changes {context}: nothing (no workload moves; no site's MW or tokens/s change)",
                  markup=False)
        return
    out.print(diff_table(diff, context))
    counts = [f"{len(getattr(diff, field))} {label}" for field, label, _ in _DIFF_KINDS if getattr(diff, field)]
    counts += [f"{len(diff.removed)} removed"] if diff.removed else []
    counts += [f"{len(diff.added)} added"] if diff.added else []
    counts += [f"{len(diff.sites)} site(s) with other MW or tokens/s"] if diff.sites else []
    out.print("; ".join(counts), markup=False)

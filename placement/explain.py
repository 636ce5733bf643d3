"""Explanations: a one-line, kube-scheduler-style reason for every unplaced workload.

Called by :mod:`placement.pipeline` after the plan is fixed. Two cases:
- no site passes every filter: ``"0/12 sites fit: 7 latency > 50 ms, 3 country not
  allowed, 2 insufficient power"`` (counts per site, largest first);
- some sites pass but the plan has no room left: which resource ran out where, and
  how many placed workloads of higher priority sit on those sites: ``"feasible on 3
  sites but outbid: firm power exhausted at seoul-1, us-south-1; lower priority than 4
  placed workloads"``.
"""

from __future__ import annotations

from placement_ext import FILTER_NAMES


def filter_label(name: str, max_latency_ms: float | None) -> str:
    if name == "latency" and max_latency_ms is not None:
        return f"latency > {max_latency_ms:g} ms"
    if name == "offline now":
        return "offline now (outside availability windows)"
    return name


def rejection_dict(counts) -> dict[str, int]:
    return {FILTER_NAMES[k]: int(v) for k, v in enumerate(counts) if v > 0}


def no_fit_message(total_sites: int, rejections: dict[str, int], max_latency_ms: float | None) -> str:
    parts = [
        f"{n} {filter_label(name, max_latency_ms)}"
        for name, n in sorted(rejections.items(), key=lambda kv: (-kv[1], FILTER_NAMES.index(kv[0])))
    ]
    head = f"0/{total_sites} sites fit"
    return head + (": " + ", ".join(parts) if parts else "")


def _names(sites: list[str], limit: int = 3) -> str:
    shown = ", ".join(sites[:limit])
    return shown + (f" and {len(sites) - limit} more" if len(sites) > limit else "")


def outbid_message(
    feasible_sites: int,
    exhausted: dict[str, list[str]],
    higher_priority_placed: int,
) -> str:
    """``exhausted`` maps a resource ("devices", "firm power", "power", "fleet power
    cap") to the sites where it ran out."""
    parts = [f"{res} exhausted at {_names(sites)}" for res, sites in exhausted.items() if sites]
    msg = f"feasible on {feasible_sites} site{'s' if feasible_sites != 1 else ''} but outbid"
    if parts:
        msg += ": " + "; ".join(parts)
    else:
        msg += ": could not fit whole within its site limit"
    if higher_priority_placed:
        msg += f"; lower priority than {higher_priority_placed} placed workload" + (
            "s" if higher_priority_placed != 1 else ""
        )
    return msg

"""What-if planning: change a copy of the mesh, plan it, and say what would change.

Pure (no I/O). ``meshctl plan --what-if`` and the HTTP API's ``POST /api/v1/plan`` call
it; nothing is ever written anywhere.

Changes (text form, as ``parse_change`` reads it; JSON form ``{op, target, value}``):

- ``curtail SITE=MW``: a grid event withdraws MW of an AIFactory's flexible power now
  (sets ``spec.power.curtailedMW``; at most ``flexibleMW``: curtailment takes flexible
  power only, never firm power);
- ``curtail SITE=MW from TIME for DURATION``: a scheduled grid event (a GridEvent of one
  interval, lead time 15 min) withdraws MW from TIME for DURATION (``3h``, ``90m``,
  ``PT3H``); without a ``clock`` change the mesh is planned at TIME, when it is in force
  (``meshctl plan --horizon`` shows the hours around it);
- ``firm SITE=MW``: the AIFactory's firm power becomes MW (``spec.power.firmMW``);
- ``cordon SITE`` / ``uncordon SITE``: set ``spec.cordoned`` of a factory or a fleet;
- ``remove NAMESPACE/NAME``: delete a MeshWorkload; ``remove SITE`` (or
  ``remove AIFactory/NAME``, ``remove EdgeFleet/NAME``): delete a site;
- ``clock ISO-TIME``: plan for that time (fleets' availability windows depend on it;
  a time without a zone is UTC).

``add`` (extra manifests, parsed by :mod:`controller.core.parse`) adds workloads or
sites, or replaces those of the same key, before the changes are applied in order.

"What if us-memphis-1 loses 200 MW?" means ``curtail us-memphis-1=200``: a factory
loses power to a grid event, and curtailment removes flexible power first (its
``flexibleMW`` of 300 becomes 100 usable MW; its 900 firm MW stay). Losing firm power
is a different question: ``firm us-memphis-1=700``.

The what-if reconciles the changed copy as the operator would reconcile the changed
cluster: every resource carries the status of the current plan (as
``changes.with_statuses`` writes them back), and the current plan is the warm start.
So a workload placed now and displaced by the change comes out ``Preempted`` with the
message the operator would write, and a workload that is merely unplaced stays so.

The diff (:class:`PlanDiff`) compares two sets of statuses: the current plan and the
what-if (``diff_outcomes``), or two documents of ``meshctl plan -o json``
(``diff_plan_documents``). A workload is *moved* when placed in both with other sites
or devices, *newly placed* when placed only after, *newly preempted* / *newly
unschedulable* when it enters that phase; ``removed`` / ``added`` list the workload keys
(``namespace/name``) and site names present on one side only; ``sites`` lists the
sites whose allocated MW or tokens/s differ.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, cast, get_args

from pydantic import ValidationError

from controller.api.models import GridEventSource, GridEventSpec, GridInterval, MeshWorkloadStatus, SiteStatus
from controller.api.models.grid import parse_duration
from controller.api.resources import API_VERSION, AIFactory, EdgeFleet, GridEvent, MeshWorkload, ObjectMeta
from controller.core.parse import Manifests
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.statuses import PHASE_PLACED, PHASE_PREEMPTED, PHASE_UNSCHEDULABLE
from placement.decisions import Plan
from placement.problem import SolverConfig

Op = Literal["curtail", "cordon", "uncordon", "remove", "clock", "firm"]
OPS: Final[tuple[str, ...]] = get_args(Op)
_SITE_KINDS: Final = ("AIFactory", "EdgeFleet")
MAX_MW: Final = 100_000.0  # the models' limit on firmMW and curtailedMW
_KNOWN_SHOWN = 8  # names listed in an "unknown name" message
# Statuses round MW to 4 digits and tokens/s to 3: closer figures are the same figure.
_SAME = 1e-6
_SHORT_DURATION = re.compile(r"^(?:(?P<days>\d+)d)?(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?(?:(?P<seconds>\d+)s)?$")


class WhatIfError(ValueError):
    """A change that cannot be applied; ``str()`` is one line naming it and the problem."""


@dataclass(frozen=True)
class Change:
    """One what-if change (see the module docstring for each op)."""

    op: Op
    target: str = ""
    value: float | str | None = None
    start: str | None = None  # a scheduled curtailment: from (ISO 8601, aware) ...
    duration: str | None = None  # ... for (ISO 8601 duration)

    def __str__(self) -> str:
        if self.op in ("curtail", "firm"):
            value = self.value
            shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            when = f" from {self.start} for {self.duration}" if self.start is not None else ""
            return f"{self.op} {self.target}={shown}{when}"
        if self.op == "clock":
            return f"clock {self.value}"
        return f"{self.op} {self.target}"


def _usage() -> str:
    return (
        "expected one of: curtail SITE=MW [from ISO-TIME for DURATION], firm SITE=MW, cordon SITE, uncordon SITE, "
        "remove NAMESPACE/NAME, remove SITE, clock ISO-TIME"
    )


def _mw(label: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise WhatIfError(f"{label}: MW must be a number (got {raw!r})")
    try:
        value = float(raw)
    except ValueError:
        raise WhatIfError(f"{label}: MW must be a number (got {raw!r})") from None
    if not math.isfinite(value) or value < 0 or value > MAX_MW:
        raise WhatIfError(f"{label}: MW must be between 0 and {MAX_MW:,.0f} (got {raw!r})")
    return value


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time; UTC when it names no zone. ValueError if it is not one."""
    at = dt.datetime.fromisoformat(text.strip())
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def parse_duration_text(text: str) -> dt.timedelta:
    """``3h``, ``90m``, ``45s``, ``1h30m`` or ISO 8601 ``PT3H``; ValueError otherwise."""
    raw = text.strip()
    if raw.upper().startswith("P"):
        return parse_duration(raw.upper())
    match = _SHORT_DURATION.match(raw.lower())
    if match is None or not raw:
        raise ValueError(raw)
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if not parts:
        raise ValueError(raw)
    return dt.timedelta(**parts)


def _iso_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (
        f"{secs}S" if secs or not (hours or minutes) else "")


def _scheduled(label: str, change: Change, start: object, duration: object) -> Change:
    if change.op != "curtail":
        raise WhatIfError(f"{label}: only curtail takes 'from TIME for DURATION'")
    if not isinstance(start, str) or not isinstance(duration, str):
        raise WhatIfError(f"{label}: a scheduled curtailment needs both from TIME and for DURATION, "
                          "e.g. curtail us-memphis-1=200 from 2026-07-14T18:00:00Z for 3h")
    try:
        at = parse_time(start)
    except ValueError:
        raise WhatIfError(f"{label}: not an ISO 8601 time: {start!r} (e.g. 2026-07-14T18:00:00Z)") from None
    try:
        length = parse_duration_text(duration)
    except ValueError:
        raise WhatIfError(f"{label}: not a duration: {duration!r} (e.g. 3h, 90m, PT3H)") from None
    if length < dt.timedelta(seconds=1) or length > dt.timedelta(days=31) or length.microseconds:
        raise WhatIfError(f"{label}: the duration must be whole seconds, at least 1 s and at most 31 days "
                          f"(got {duration!r})")
    return replace(change, start=at.isoformat(), duration=_iso_duration(length))


def _checked(op: str, target: object, value: object, label: str, start: object = None,
             duration: object = None) -> Change:
    """The change, its op, target and value checked (the same for text and JSON)."""
    change = _checked_now(op, target, value, label, start, duration)
    if start is None and duration is None:
        return change
    return _scheduled(label, change, start, duration)


def _checked_now(op: str, target: object, value: object, label: str, start: object, duration: object) -> Change:
    if op not in OPS:
        raise WhatIfError(f"{label}: unknown change {op!r}; {_usage()}")
    if not isinstance(target, str):
        raise WhatIfError(f"{label}: the target must be a string (got {target!r})")
    target = target.strip()
    kind = cast(Op, op)
    if kind == "clock":
        text = value if value not in (None, "") else target
        if not isinstance(text, str) or not text.strip():
            raise WhatIfError(f"{label}: clock needs an ISO 8601 time, e.g. clock 2026-11-22T06:00:00Z")
        try:
            at = parse_time(text)
        except ValueError:
            raise WhatIfError(f"{label}: not an ISO 8601 time: {text!r} (e.g. 2026-11-22T06:00:00Z)") from None
        return Change("clock", "", at.isoformat())
    if not target or any(c.isspace() for c in target):
        what = "NAMESPACE/NAME or SITE" if kind == "remove" else "SITE"
        raise WhatIfError(f"{label}: {op} needs one {what} (got {target!r})")
    if kind in ("curtail", "firm"):
        if value is None or value == "":
            raise WhatIfError(f"{label}: {op} needs SITE=MW, e.g. {op} us-memphis-1=200")
        return Change(kind, target, _mw(label, value))
    if start is not None or duration is not None:
        raise WhatIfError(f"{label}: only curtail takes 'from TIME for DURATION'")
    if value not in (None, ""):
        raise WhatIfError(f"{label}: {op} takes no value (got {value!r})")
    return Change(kind, target)


def parse_change(text: str) -> Change:
    """``'curtail us-memphis-1=200'`` -> ``Change('curtail', 'us-memphis-1', 200.0)``.

    Raises :class:`WhatIfError` with one line naming the text and the problem.
    """
    label = " ".join(text.split()) or repr(text)
    op, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if not op:
        raise WhatIfError(f"empty change; {_usage()}")
    if op in ("curtail", "firm"):
        target, equals, value = rest.partition("=")
        if not equals:
            raise WhatIfError(f"{label}: {op} needs SITE=MW, e.g. {op} us-memphis-1=200")
        words = value.split()
        if len(words) > 1:
            if len(words) != 5 or words[1] != "from" or words[3] != "for":
                raise WhatIfError(f"{label}: expected {op} SITE=MW from ISO-TIME for DURATION, e.g. "
                                  f"curtail us-memphis-1=200 from 2026-07-14T18:00:00Z for 3h")
            return _checked(op, target, words[0], label, words[2], words[4])
        return _checked(op, target, value.strip(), label)
    if op == "clock":
        return _checked(op, "", rest, label)
    return _checked(op, rest, None, label)


def change_from_dict(document: Mapping[str, Any]) -> Change:
    """The JSON form ``{"op": "curtail", "target": "us-memphis-1", "value": 200}``."""
    if not isinstance(document, Mapping):
        raise WhatIfError(f"a change must be an object {{op, target, value}} (got {document!r})")
    unknown = sorted(set(document) - {"op", "target", "value", "from", "for"})
    op = document.get("op")
    target = document.get("target", "")
    value = document.get("value")
    label = f"{op} {target}" + (f"={value}" if value is not None else "")
    if unknown:
        raise WhatIfError(f"{label}: unknown field(s) {', '.join(map(str, unknown))}; a change has op, target, "
                          "value (and from, for: a scheduled curtailment)")
    if not isinstance(op, str):
        raise WhatIfError(f"a change needs an op, one of {', '.join(OPS)} (got {op!r})")
    return _checked(op, target, value, label, document.get("from"), document.get("for"))


# ------------------------------------------------------------------ applying changes


def _known(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_KNOWN_SHOWN])
    more = len(ordered) - _KNOWN_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown or "none"


def _next_generation(generation: int | None) -> int | None:
    # an edit of the spec: the API server would bump metadata.generation
    return generation + 1 if generation is not None else None


def _edited(site: AIFactory | EdgeFleet, spec: Any) -> Any:
    if spec == site.spec:
        return site  # an edit to the same spec changes nothing, not even the generation
    metadata = site.metadata.model_copy(update={"generation": _next_generation(site.metadata.generation)})
    return site.model_copy(update={"spec": spec, "metadata": metadata})


@dataclass
class _Mesh:
    """The mutable working copy of a snapshot while changes are applied."""

    factories: dict[str, AIFactory]
    fleets: dict[str, EdgeFleet]
    workloads: dict[str, MeshWorkload]
    at: dt.datetime
    grid_events: dict[str, GridEvent]
    clock_set: bool = False

    def factory(self, change: Change) -> AIFactory:
        found = self.factories.get(change.target)
        if found is not None:
            return found
        if change.target in self.fleets:
            raise WhatIfError(
                f"{change}: {change.target} is an EdgeFleet; {change.op} applies to the power of an AIFactory"
            )
        raise WhatIfError(f"{change}: no AIFactory named {change.target} (known: {_known(self.factories)})")

    def site_kind(self, change: Change) -> str:
        if change.target in self.factories:
            return "AIFactory"
        if change.target in self.fleets:
            return "EdgeFleet"
        raise WhatIfError(
            f"{change}: no AIFactory or EdgeFleet named {change.target} "
            f"(known: {_known([*self.factories, *self.fleets])})"
        )


def _curtail(mesh: _Mesh, change: Change, mw: float) -> None:
    factory = mesh.factory(change)
    power = factory.spec.power
    if mw > power.flexible_mw:
        raise WhatIfError(
            f"{change}: more than its flexibleMW {power.flexible_mw:g} (curtailment takes flexible power only; "
            f"to take firm power, set it: firm {change.target}=MW)"
        )
    spec = factory.spec.model_copy(update={"power": power.model_copy(update={"curtailed_mw": mw})})
    mesh.factories[change.target] = _edited(factory, spec)


def _scheduled_curtail(mesh: _Mesh, change: Change, mw: float) -> dt.datetime:
    """A manual GridEvent of one interval; returns its start."""
    factory = mesh.factory(change)
    flexible = factory.spec.power.flexible_mw
    if mw > flexible:
        raise WhatIfError(f"{change}: more than its flexibleMW {flexible:g} (curtailment takes flexible power "
                          "only; an import limit below firm power is a GridEvent's importLimitMW)")
    assert change.start is not None and change.duration is not None  # _scheduled checked both
    name = f"what-if-{len(mesh.grid_events) + 1}-{change.target}"[:253]
    mesh.grid_events[name] = GridEvent(
        api_version=API_VERSION, kind="GridEvent", metadata=ObjectMeta(name=name),
        spec=GridEventSpec(factory=change.target, source=GridEventSource(manual=True), intervals=[
            GridInterval(start=change.start, duration=change.duration, curtailed_mw=mw)]),
    )
    return parse_time(change.start)


def _firm(mesh: _Mesh, change: Change, mw: float) -> None:
    factory = mesh.factory(change)
    power = factory.spec.power
    if mw + power.flexible_mw <= 0:
        raise WhatIfError(f"{change}: firmMW + flexibleMW must be greater than 0 (a factory without power)")
    spec = factory.spec.model_copy(update={"power": power.model_copy(update={"firm_mw": mw})})
    mesh.factories[change.target] = _edited(factory, spec)


def _cordon(mesh: _Mesh, change: Change, cordoned: bool) -> None:
    sites: dict[str, Any] = mesh.factories if mesh.site_kind(change) == "AIFactory" else mesh.fleets
    site = sites[change.target]
    sites[change.target] = _edited(site, site.spec.model_copy(update={"cordoned": cordoned}))


def _remove(mesh: _Mesh, change: Change) -> None:
    target = change.target
    kind, slash, name = target.partition("/")
    if slash and kind in _SITE_KINDS:
        sites: dict[str, Any] = mesh.factories if kind == "AIFactory" else mesh.fleets
        if sites.pop(name, None) is None:
            raise WhatIfError(f"{change}: no {kind} named {name} (known: {_known(sites)})")
        return
    if slash:
        if mesh.workloads.pop(target, None) is None:
            raise WhatIfError(f"{change}: no MeshWorkload {target} (known: {_known(mesh.workloads)})")
        return
    if mesh.site_kind(change) == "AIFactory":
        del mesh.factories[target]
    else:
        del mesh.fleets[target]


def _add(mesh: _Mesh, add: Manifests) -> None:
    if add.problems:
        raise WhatIfError("added manifests: " + "; ".join(str(p) for p in add.problems))
    for factory in add.factories:
        mesh.factories[factory.metadata.name] = factory
    for fleet in add.fleets:
        mesh.fleets[fleet.metadata.name] = fleet
    for workload in add.workloads:
        mesh.workloads[workload.key] = workload
    for event in add.grid_events:
        mesh.grid_events[event.metadata.name] = event


def apply_changes(snapshot: Snapshot, changes: Sequence[Change], add: Manifests | None = None) -> Snapshot:
    """A new snapshot: ``add`` first (added, or replacing the same key), then each change
    in order. The input snapshot and its resources are left as they are (edited
    resources are copies). Raises :class:`WhatIfError` naming the first bad change."""
    mesh = _Mesh(
        {f.metadata.name: f for f in snapshot.factories},
        {f.metadata.name: f for f in snapshot.fleets},
        {w.key: w for w in snapshot.workloads},
        snapshot.at,
        {e.metadata.name: e for e in snapshot.grid_events},
    )
    if add is not None:
        _add(mesh, add)
    scheduled_at: dt.datetime | None = None
    for change in changes:
        if change.op == "curtail" and change.start is not None:
            start = _scheduled_curtail(mesh, change, _mw(str(change), change.value))
            scheduled_at = start if scheduled_at is None else min(scheduled_at, start)
        elif change.op in ("curtail", "firm"):
            mw = _mw(str(change), change.value)
            (_curtail if change.op == "curtail" else _firm)(mesh, change, mw)
        elif change.op in ("cordon", "uncordon"):
            _cordon(mesh, change, change.op == "cordon")
        elif change.op == "remove":
            _remove(mesh, change)
        else:  # clock
            try:
                mesh.at = parse_time(str(change.value))
                mesh.clock_set = True
            except ValueError:
                raise WhatIfError(f"{change}: not an ISO 8601 time") from None
    at = scheduled_at if scheduled_at is not None and not mesh.clock_set else mesh.at
    return Snapshot(list(mesh.factories.values()), list(mesh.fleets.values()), list(mesh.workloads.values()), at,
                    clusters=snapshot.clusters, observed=snapshot.observed, grid_events=list(mesh.grid_events.values()))


# ------------------------------------------------------------------------------ diffs


@dataclass(frozen=True)
class WorkloadMove:
    """One workload whose outcome differs; ``reason`` says how or why (one line)."""

    key: str
    before_phase: str
    after_phase: str
    before_sites: tuple[str, ...]
    after_sites: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "beforePhase": self.before_phase, "afterPhase": self.after_phase,
            "beforeSites": list(self.before_sites), "afterSites": list(self.after_sites), "reason": self.reason,
        }


@dataclass(frozen=True)
class SiteDelta:
    """A site whose allocated power (MW, PUE included) or tokens/s differ."""

    site: str
    kind: str
    mw_before: float
    mw_after: float
    tokens_per_second_before: float
    tokens_per_second_after: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site, "kind": self.kind, "mwBefore": self.mw_before, "mwAfter": self.mw_after,
            "tokensPerSecondBefore": self.tokens_per_second_before,
            "tokensPerSecondAfter": self.tokens_per_second_after,
        }


@dataclass(frozen=True)
class PlanDiff:
    """What changes from one plan to another (see the module docstring); sorted by key."""

    moved: tuple[WorkloadMove, ...] = ()
    newly_placed: tuple[WorkloadMove, ...] = ()
    newly_unschedulable: tuple[WorkloadMove, ...] = ()
    newly_preempted: tuple[WorkloadMove, ...] = ()
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    sites: tuple[SiteDelta, ...] = ()

    @property
    def empty(self) -> bool:
        return self == PlanDiff()

    @property
    def workloads(self) -> tuple[WorkloadMove, ...]:
        """Every workload entry, sorted by key."""
        entries = self.moved + self.newly_placed + self.newly_unschedulable + self.newly_preempted
        return tuple(sorted(entries, key=lambda m: m.key))

    def to_dict(self) -> dict[str, Any]:
        return {
            "moved": [m.to_dict() for m in self.moved],
            "newlyPlaced": [m.to_dict() for m in self.newly_placed],
            "newlyUnschedulable": [m.to_dict() for m in self.newly_unschedulable],
            "newlyPreempted": [m.to_dict() for m in self.newly_preempted],
            "removed": list(self.removed),
            "added": list(self.added),
            "sites": [s.to_dict() for s in self.sites],
        }


_Sites = Mapping[str, tuple[str, SiteStatus]]  # name -> (kind, status)


def _placement(status: MeshWorkloadStatus) -> list[tuple[str, str, int]]:
    return sorted((a.site, a.accelerator_model, a.devices) for a in status.assignments)


def _sites_of(status: MeshWorkloadStatus | None) -> tuple[str, ...]:
    if status is None or status.phase != PHASE_PLACED:
        return ()
    return tuple(dict.fromkeys(a.site for a in status.assignments))


def _where(status: MeshWorkloadStatus) -> str:
    return ", ".join(f"{a.site} ({a.devices:,} x {a.accelerator_model})" for a in status.assignments)


def _entry(key: str, before: MeshWorkloadStatus | None, after: MeshWorkloadStatus) -> tuple[str, WorkloadMove] | None:
    """(list name, entry) of one workload, or None when its outcome is the same."""
    before_phase = before.phase if before is not None else ""
    placed_before = before_phase == PHASE_PLACED
    move = WorkloadMove(key, before_phase, after.phase, _sites_of(before), _sites_of(after), "")
    if after.phase == PHASE_PLACED:
        if before is not None and placed_before:
            if _placement(before) == _placement(after):
                return None
            return "moved", replace(move, reason=f"moved from {_where(before)} to {_where(after)}")
        return "newly_placed", replace(move, reason=f"placed on {_where(after)}")
    if after.phase == before_phase:
        return None
    if after.phase == PHASE_PREEMPTED:
        return "newly_preempted", replace(move, reason=after.message)
    if after.phase == PHASE_UNSCHEDULABLE:
        return "newly_unschedulable", replace(move, reason=after.message)
    return None  # e.g. Pending: not a plan's outcome


def _site_figures(kind_and_status: tuple[str, SiteStatus] | None) -> tuple[float, float]:
    if kind_and_status is None:
        return 0.0, 0.0
    status = kind_and_status[1]
    return (status.power.allocated_mw if status.power is not None else 0.0), status.tokens_per_second


def _diff(
    before_workloads: Mapping[str, MeshWorkloadStatus], before_sites: _Sites,
    after_workloads: Mapping[str, MeshWorkloadStatus], after_sites: _Sites,
) -> PlanDiff:
    lists: dict[str, list[WorkloadMove]] = {
        "moved": [], "newly_placed": [], "newly_unschedulable": [], "newly_preempted": [],
    }
    for key in sorted(after_workloads):
        found = _entry(key, before_workloads.get(key), after_workloads[key])
        if found is not None:
            lists[found[0]].append(found[1])
    deltas = []
    for name in sorted({*before_sites, *after_sites}):
        mw_before, tps_before = _site_figures(before_sites.get(name))
        mw_after, tps_after = _site_figures(after_sites.get(name))
        if abs(mw_before - mw_after) > _SAME or abs(tps_before - tps_after) > _SAME:
            kind = (after_sites.get(name) or before_sites[name])[0]
            deltas.append(SiteDelta(name, kind, mw_before, mw_after, tps_before, tps_after))
    before_keys = {*before_workloads, *before_sites}
    after_keys = {*after_workloads, *after_sites}
    return PlanDiff(
        moved=tuple(lists["moved"]), newly_placed=tuple(lists["newly_placed"]),
        newly_unschedulable=tuple(lists["newly_unschedulable"]), newly_preempted=tuple(lists["newly_preempted"]),
        removed=tuple(sorted(before_keys - after_keys)), added=tuple(sorted(after_keys - before_keys)),
        sites=tuple(deltas),
    )


def _outcome_sites(outcome: Outcome) -> dict[str, tuple[str, SiteStatus]]:
    sites = {name: ("EdgeFleet", status) for name, status in outcome.fleets.items()}
    sites.update({name: ("AIFactory", status) for name, status in outcome.factories.items()})
    return sites


def diff_outcomes(before: Outcome, after: Outcome) -> PlanDiff:
    """What changes from the statuses of ``before`` to those of ``after``."""
    return _diff(before.workloads, _outcome_sites(before), after.workloads, _outcome_sites(after))


def _document_statuses(
    document: Any, side: str
) -> tuple[dict[str, MeshWorkloadStatus], dict[str, tuple[str, SiteStatus]]]:
    if isinstance(document, Mapping) and isinstance(document.get("plan"), Mapping):
        document = document["plan"]  # a `meshctl plan --what-if -o json` document: its plan
    if not isinstance(document, Mapping) or not isinstance(document.get("workloads"), list):
        raise WhatIfError(f"{side}: not a `meshctl plan -o json` document (no workloads list)")
    workloads: dict[str, MeshWorkloadStatus] = {}
    sites: dict[str, tuple[str, SiteStatus]] = {}

    def read(items: Any, field: str, add: Callable[[Mapping[str, Any], dict[str, Any]], None]) -> None:
        if not isinstance(items, list):
            raise WhatIfError(f"{side}: {field} must be a list")
        for index, item in enumerate(items):
            metadata = item.get("metadata") if isinstance(item, Mapping) else None
            status = item.get("status") if isinstance(item, Mapping) else None
            if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str) or not isinstance(
                status, dict
            ):
                raise WhatIfError(f"{side}: {field}[{index}] needs metadata.name and a status")
            try:
                add(metadata, status)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"])
                raise WhatIfError(f"{side}: {field}[{index}].status.{where}: {error['msg']}") from None

    def workload(metadata: Mapping[str, Any], status: dict[str, Any]) -> None:
        key = f"{metadata.get('namespace') or 'default'}/{metadata['name']}"
        workloads[key] = MeshWorkloadStatus.model_validate(status)

    def site(kind: str) -> Callable[[Mapping[str, Any], dict[str, Any]], None]:
        def add(metadata: Mapping[str, Any], status: dict[str, Any]) -> None:
            sites[str(metadata["name"])] = (kind, SiteStatus.model_validate(status))
        return add

    read(document["workloads"], "workloads", workload)
    read(document.get("fleets", []), "fleets", site("EdgeFleet"))
    read(document.get("factories", []), "factories", site("AIFactory"))
    return workloads, sites


def diff_plan_documents(before_doc: Any, after_doc: Any) -> PlanDiff:
    """What changes between two documents printed by ``meshctl plan -o json`` (the
    status objects of every workload, factory and fleet). Raises :class:`WhatIfError`
    on a document of another shape."""
    before_workloads, before_sites = _document_statuses(before_doc, "the earlier plan")
    after_workloads, after_sites = _document_statuses(after_doc, "the new plan")
    return _diff(before_workloads, before_sites, after_workloads, after_sites)


def _with_statuses(snapshot: Snapshot, outcome: Outcome) -> Snapshot:
    """``changes.with_statuses``, keeping the stored status of a resource the outcome
    does not know (a ``current`` outcome older than the snapshot)."""
    def status_of(statuses: Mapping[str, Any], key: str, stored: Any) -> dict[str, Any]:
        return {"status": statuses.get(key, stored)}

    return Snapshot(
        [f.model_copy(update=status_of(outcome.factories, f.metadata.name, f.status)) for f in snapshot.factories],
        [f.model_copy(update=status_of(outcome.fleets, f.metadata.name, f.status)) for f in snapshot.fleets],
        [w.model_copy(update=status_of(outcome.workloads, w.key, w.status)) for w in snapshot.workloads],
        snapshot.at,
        clusters=snapshot.clusters,
        observed=snapshot.observed,
        grid_events=[e.model_copy(update=status_of(outcome.grid_events, e.metadata.name, e.status))
                     for e in snapshot.grid_events],
    )


def what_if(
    snapshot: Snapshot,
    changes: Sequence[Change],
    config: SolverConfig | None = None,
    previous: Plan | None = None,
    add: Manifests | None = None,
    *,
    previous_plan: Plan | None = None,
    current: Outcome | None = None,
) -> tuple[Outcome, PlanDiff]:
    """Plan ``snapshot`` with ``changes`` (and ``add``) applied, and diff it against the
    plan without them.

    ``previous`` (alias ``previous_plan``) is the last plan, the warm start of the plan
    without the changes; ``current``, when the caller holds it already (the operator),
    is that plan's outcome and is not recomputed. The changed copy is reconciled with
    the current statuses in place and the current plan as warm start, as the operator
    would after the same edits (module docstring). Changes that leave every spec and
    the time as they are (none, or ``uncordon`` of an uncordoned site) plan nothing: the
    result is the current outcome and an empty diff, as the operator solves only when a
    spec changes. The input is never modified.
    """
    before = current or reconcile(snapshot, config, previous or previous_plan)
    settled = _with_statuses(snapshot, before)
    changed = apply_changes(settled, changes, add)
    if _specs(changed) == _specs(settled) and changed.at == settled.at:
        # the operator solves only when a spec changes: no change, no new plan (a warm
        # re-solve of the same mesh may place more, which no change would have caused)
        return before, PlanDiff()
    after = reconcile(changed, config, before.plan)
    return after, diff_outcomes(before, after)


def _specs(snapshot: Snapshot) -> tuple[dict[str, Any], ...]:
    return (
        {f.metadata.name: f.spec for f in snapshot.factories},
        {f.metadata.name: f.spec for f in snapshot.fleets},
        {w.key: w.spec for w in snapshot.workloads},
        {e.metadata.name: e.spec for e in snapshot.grid_events},
    )


__all__ = [
    "OPS",
    "Change",
    "PlanDiff",
    "SiteDelta",
    "WhatIfError",
    "WorkloadMove",
    "apply_changes",
    "change_from_dict",
    "diff_outcomes",
    "diff_plan_documents",
    "parse_change",
    "parse_time",
    "what_if",
]

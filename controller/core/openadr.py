"""OpenADR 3 events as GridEvents, and demand reports back: the pure half of ``meshplane-ven``.

``meshplane-ven`` (:mod:`controller.ven`) reads a utility's VTN (programs and events,
JSON as the VTN returns it, OpenADR 3.1 as LF Energy's openleadr-vtn 0.2.8 serves it;
3.0's target objects are read too) and server-side applies what this module makes of
them: one ``GridEvent`` per (event, targeted factory). The rules (docs/ven.md):

- **Which events**: those of the configured programs (by ``programName``; none
  configured: every program), targeting a factory: an event whose ``targets`` include
  the factory's OpenADR target name (by default the factory's own name), or an event
  without targets, which concerns every factory.
- **Intervals**: an interval with its own ``intervalPeriod`` starts there; one without
  starts where the previous one ends (the first at the event's ``intervalPeriod``
  start); a missing duration is the event's. Start ``0001-01-01`` means "now": the time
  the VEN first saw the event, kept in the annotation ``meshplane.io/openadr-first-seen``
  so that it stays put across polls. Years and months are calendar arithmetic from the
  start. ``P9999Y`` ("until further notice"), or any end more than 31 days ahead, is held
  a step at a time (``open_ended_step``, default 1 day): the interval ends at the first
  whole step (counted from its start) more than one step after now, so the spec changes
  once a step, not at every poll, and a VTN that stops answering leaves at least one
  step of curtailment in force.
  Zero-length intervals are dropped; ``randomizeStart``, ``priority`` and the event's
  own ``duration`` (looping) are not used (overlaps are resolved by the operator: the
  most restrictive wins).
- **Payloads**: ``IMPORT_CAPACITY_LIMIT`` becomes ``importLimitMW`` (kW unless the
  event's ``payloadDescriptors`` give ``W``, ``KW`` or ``MW``; converted in decimal, so
  75000 kW is exactly 75 MW); ``SIMPLE`` levels become ``curtailedFlexibleRatio``
  through the level map (default 0: 0, 1: 0.25, 2: 0.5, 3: 1.0); other payload types
  are ignored. An interval with both yields two GridEvent intervals over the same time
  (the larger curtailment wins). The first value of a payload is used.
- **Bad data** (a missing ID, an unreadable time, a negative limit, a unit or level it
  cannot convert...) skips that event with a reason: its GridEvents stay as last
  written, neither changed nor cancelled.

Names are ``<vtn>-<eventID>-<factory>`` lower-cased, cut to 52 characters and followed
by 10 hex digits of a hash of the exact three (so IDs differing only in case, or in
where a dash falls, never share a name): at most 63 characters, a valid DNS name.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from controller.api.models.grid import GridEventSpec, parse_duration
from controller.api.resources import API_VERSION, GridEvent
from controller.core.grid import interval_bounds, restore_duration
from controller.core.grid_statuses import STALE_ANNOTATION

MANAGER: Final = "meshplane-ven"
"""Field manager of every write, and the value of the managed-by label."""

LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_VTN: Final = "meshplane.io/openadr-vtn"
LABEL_EVENT: Final = "meshplane.io/openadr-event"
LABEL_FACTORY: Final = "meshplane.io/factory"
FIRST_SEEN_ANNOTATION: Final = "meshplane.io/openadr-first-seen"
"""When the VEN first saw the event (RFC 3339): "now" (start 0001-01-01) means this."""
BASELINE_ANNOTATION: Final = "meshplane.io/openadr-baseline-mw"
"""The factory's allocated MW when the VEN first saw the event: the BASELINE reported."""

IMPORT_CAPACITY_LIMIT: Final = "IMPORT_CAPACITY_LIMIT"
SIMPLE: Final = "SIMPLE"
DEMAND: Final = "DEMAND"
BASELINE: Final = "BASELINE"
DEFAULT_LEVELS: Final[Mapping[int, float]] = {0: 0.0, 1: 0.25, 2: 0.5, 3: 1.0}
DEFAULT_OPEN_ENDED_STEP: Final = dt.timedelta(days=1)
UNTIL_FURTHER_NOTICE_YEARS: Final = 9999
LONGEST_AHEAD: Final = dt.timedelta(days=31)  # an end further ahead is held a step at a time
MAX_INTERVALS: Final = 288  # GridEventSpec.intervals' max_length
MAX_LIMIT_MW: Final = 100_000.0  # GridInterval.import_limit_mw's bound
_NAME_LIMIT = 63
_HASH_DIGITS = 10
_UNIT_TO_MW: Final[Mapping[str, Decimal]] = {"W": Decimal("0.000001"), "KW": Decimal("0.001"), "MW": Decimal(1)}
_VTN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_NUMBER = r"\d+(?:[.,]\d+)?"
_OADR_DURATION = re.compile(
    rf"^P(?!$)(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?(?:(?P<weeks>{_NUMBER})W)?"
    rf"(?:(?P<days>{_NUMBER})D)?(?:T(?=\d)(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?"
    rf"(?:(?P<seconds>{_NUMBER})S)?)?$"
)
_DAYS_PER_YEAR = 365.2425
_DAYS_PER_MONTH = _DAYS_PER_YEAR / 12


class BadData(ValueError):
    """VTN data this module cannot map; the message says what and where."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class VenConfig:
    """What the VEN is configured with (``MESHPLANE_VEN_*``, see controller/ven/settings.py)."""

    vtn: str  # the VTN's name: a DNS label of at most 40 characters
    program_names: tuple[str, ...] = ()  # empty: every program
    level_map: Mapping[int, float] = field(default_factory=lambda: dict(DEFAULT_LEVELS))
    lead_time: str = "PT15M"
    restore_duration: str = ""  # empty: no ramp
    restore_steps: int = 4
    open_ended_step: dt.timedelta = DEFAULT_OPEN_ENDED_STEP

    def __post_init__(self) -> None:
        if not valid_vtn_name(self.vtn):
            raise ValueError(f"the VTN name must be a DNS label of 1-40 characters (got {self.vtn!r})")
        for level, ratio in self.level_map.items():
            if not 0.0 <= ratio <= 1.0 or not math.isfinite(ratio):
                raise ValueError(f"level {level} maps to {ratio}: a ratio must be within 0..1")
        parse_duration(self.lead_time)
        if self.restore_duration:
            parse_duration(self.restore_duration)
        if not 1 <= self.restore_steps <= 96:
            raise ValueError(f"restore steps must be 1..96 (got {self.restore_steps})")
        if self.open_ended_step <= dt.timedelta(0):
            raise ValueError("the open-ended step must be positive")


def valid_vtn_name(name: str) -> bool:
    return bool(_VTN_NAME.match(name))


def factory_targets(configured: Mapping[str, str], cluster_factories: Iterable[str]) -> dict[str, str]:
    """Factory -> OpenADR target name: the configured map (an empty target is the
    factory's name), or, when none is configured, every factory of the cluster by its name."""
    if configured:
        return {factory: target or factory for factory, target in configured.items()}
    return {factory: factory for factory in cluster_factories}


# --------------------------------------------------------------------------- units, times, names


def mw_to_kw(mw: float) -> float:
    """MW -> kW in decimal (the inverse of :func:`to_mw` of kW)."""
    return float(Decimal(repr(float(mw))) * 1000)


def to_mw(value: float, unit: str | None) -> float:
    """A power in ``unit`` (W, KW or MW; None: KW, OpenADR's unit of power) in MW, in
    decimal: 75000 kW -> 75.0, 1234.5 kW -> 1.2345 (never 1.2344999...)."""
    factor = _UNIT_TO_MW.get((unit or "KW").upper())
    if factor is None:
        raise BadData(f"unit {unit!r} is not a power meshplane converts (W, KW, MW)")
    return float(Decimal(repr(float(value))) * factor)


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; microseconds only when there are some."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def format_duration(span: dt.timedelta) -> str:
    """An ISO 8601 duration of days, hours, minutes and seconds (``P1DT2H``, ``PT20S``,
    ``PT0.5S``), as ``GridInterval.duration`` accepts it."""
    micros = round(span / dt.timedelta(microseconds=1))
    if micros < 0:
        raise ValueError(f"negative duration {span}")
    seconds, micro = divmod(micros, 1_000_000)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    second_text = f"{seconds}.{micro:06d}".rstrip("0") if micro else (str(seconds) if seconds else "")
    time_part = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    time_part += f"{second_text}S" if second_text else ""
    text = "P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "")
    return text if text != "P" else "PT0S"


def parse_time(text: object, where: str) -> dt.datetime:
    if not isinstance(text, str):
        raise BadData(f"{where}: not a time ({text!r})")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadData(f"{where}: not an RFC 3339 time ({text!r})") from None
    if moment.tzinfo is None:
        raise BadData(f"{where}: a time without an offset ({text!r})")
    return moment


def _means_now(moment: dt.datetime) -> bool:
    return moment.year == 1 and moment.month == 1 and moment.day == 1


def _number(text: str | None) -> float:
    return float(text.replace(",", ".")) if text else 0.0


def duration_end(start: dt.datetime, text: object, where: str) -> dt.datetime | None:
    """``start`` plus an OpenADR duration (years and months by the calendar); None for
    ``P9999Y`` (until further notice) or an end past the year 9999."""
    if not isinstance(text, str):
        raise BadData(f"{where}: not a duration ({text!r})")
    match = _OADR_DURATION.match(text)
    if match is None:
        raise BadData(f"{where}: not an ISO 8601 duration ({text!r})")
    parts = {k: _number(v) for k, v in match.groupdict().items()}
    if parts["years"] >= UNTIL_FURTHER_NOTICE_YEARS:
        return None
    years, year_fraction = divmod(parts["years"], 1)
    months, month_fraction = divmod(parts["months"], 1)
    total = start.month - 1 + int(months) + 12 * int(years)
    year, month = start.year + total // 12, total % 12 + 1
    if year > dt.MAXYEAR:
        return None
    day = min(start.day, calendar.monthrange(year, month)[1])
    try:
        moved = start.replace(year=year, month=month, day=day)
        return moved + dt.timedelta(
            days=parts["weeks"] * 7 + parts["days"] + year_fraction * _DAYS_PER_YEAR + month_fraction * _DAYS_PER_MONTH,
            hours=parts["hours"], minutes=parts["minutes"], seconds=parts["seconds"],
        )
    except OverflowError:
        return None


def open_ended_end(start: dt.datetime, now: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """Where an until-further-notice interval ends as written now: the first whole step
    after ``start`` that is more than one step after ``now``, so it lies between one and
    two steps ahead and moves on once a step."""
    steps = max(1, math.floor((now + step - start) / step) + 1)
    return start + step * steps


def _dns(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def grid_event_name(vtn: str, event_id: str, factory: str) -> str:
    """``<vtn>-<eventID>-<factory>`` made a DNS label, cut, plus a hash of the three."""
    digest = _digest(vtn, event_id, factory)[:_HASH_DIGITS]
    readable = _dns(f"{vtn}-{event_id}-{factory}")[: _NAME_LIMIT - _HASH_DIGITS - 1].strip("-")
    return f"{readable}-{digest}" if readable else digest


def label_value(text: str) -> str:
    """``text`` when it is a valid label value, else ``h-`` and 16 hex digits of its hash."""
    return text if _LABEL_VALUE.match(text) else f"h-{_digest(text)[:16]}"


def own_selector(vtn: str) -> str:
    """The label selector of the GridEvents the VEN of this VTN wrote."""
    return f"{LABEL_MANAGED_BY}={MANAGER},{LABEL_VTN}={vtn}"


# --------------------------------------------------------------------------- events -> GridEvents


@dataclass(frozen=True)
class Known:
    """What an existing GridEvent remembers: when the event was first seen, the baseline."""

    first_seen: dt.datetime | None = None
    baseline_mw: float | None = None


@dataclass(frozen=True)
class Mapped:
    """One GridEvent to apply."""

    name: str
    event_id: str
    factory: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    """An event not mapped because of bad data (its GridEvents are left as they are)."""

    event_id: str
    reason: str


@dataclass(frozen=True)
class Mirror:
    """The outcome of :func:`map_events`."""

    mapped: list[Mapped]
    skipped: list[Skipped]

    @property
    def event_ids(self) -> set[str]:
        """The events mirrored by at least one GridEvent."""
        return {m.event_id for m in self.mapped}


@dataclass(frozen=True)
class _Window:
    start: dt.datetime
    end: dt.datetime


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadData(f"{where}: not an object ({type(value).__name__})")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadData(f"{where}: not a list ({type(value).__name__})")
    return value


def _identifier(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 253:
        raise BadData(f"{where}: not an identifier ({value!r})")
    return value


def event_targets(event: Mapping[str, Any]) -> list[str]:
    """The event's target names: 3.1's strings, or the values of 3.0's ``{type, values}``."""
    names: list[str] = []
    for index, target in enumerate(_list(event.get("targets"), "targets")):
        if isinstance(target, str):
            names.append(target)
        elif isinstance(target, Mapping):
            names += [str(v) for v in _list(target.get("values"), f"targets[{index}].values")]
        else:
            raise BadData(f"targets[{index}]: not a string or a target object ({target!r})")
    return names


def _windows(event: Mapping[str, Any], first_seen: dt.datetime, now: dt.datetime,
             step: dt.timedelta) -> list[tuple[_Window | None, Mapping[str, Any]]]:
    """Each interval's ``[start, end)`` (None when it has none: it follows an open end)."""
    default = event.get("intervalPeriod")
    default_start: dt.datetime | None = None
    default_duration: object = None
    if default is not None:
        period = _object(default, "intervalPeriod")
        if period.get("start") is not None:
            default_start = parse_time(period["start"], "intervalPeriod.start")
        default_duration = period.get("duration")
    horizon = LONGEST_AHEAD
    out: list[tuple[_Window | None, Mapping[str, Any]]] = []
    cursor: dt.datetime | None = default_start
    open_before = False  # an earlier interval lasts until further notice
    for index, raw in enumerate(_list(event.get("intervals"), "intervals")):
        where = f"intervals[{index}]"
        interval = _object(raw, where)
        own = interval.get("intervalPeriod")
        period = _object(own, f"{where}.intervalPeriod") if own is not None else {}
        if period.get("start") is not None:
            start: dt.datetime | None = parse_time(period["start"], f"{where}.intervalPeriod.start")
        elif open_before:
            out.append((None, interval))
            continue
        else:
            start = cursor
        if start is None:
            raise BadData(f"{where}: no start (neither its own intervalPeriod nor the event's gives one)")
        if _means_now(start):
            start = first_seen
        duration = period.get("duration", default_duration)
        if duration is None:
            raise BadData(f"{where}: no duration (neither its own intervalPeriod nor the event's gives one)")
        end = duration_end(start, duration, f"{where}.intervalPeriod.duration")
        if end is None or end > max(start, now) + horizon:
            end = open_ended_end(start, now, step)
            open_before = True
        if end < start:
            raise BadData(f"{where}: ends before it starts")
        out.append((_Window(start, end), interval))
        cursor = end
    return out


def _units(event: Mapping[str, Any]) -> dict[str, str | None]:
    units: dict[str, str | None] = {}
    for index, raw in enumerate(_list(event.get("payloadDescriptors"), "payloadDescriptors")):
        descriptor = _object(raw, f"payloadDescriptors[{index}]")
        kind = descriptor.get("payloadType")
        unit = descriptor.get("units")
        if isinstance(kind, str):
            units[kind] = unit if isinstance(unit, str) else None
    return units


def _first_number(payload: Mapping[str, Any], where: str) -> float:
    values = _list(payload.get("values"), f"{where}.values")
    if not values:
        raise BadData(f"{where}: no value")
    value = values[0]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadData(f"{where}: {value!r} is not a number")
    return float(value)


def _levels(window: _Window, interval: Mapping[str, Any], units: Mapping[str, str | None],
            config: VenConfig, where: str) -> list[dict[str, Any]]:
    """The GridEvent intervals of one OpenADR interval (none when no payload concerns us)."""
    out: list[dict[str, Any]] = []
    timing = {"start": format_time(window.start), "duration": format_duration(window.end - window.start)}
    for index, raw in enumerate(_list(interval.get("payloads"), f"{where}.payloads")):
        at = f"{where}.payloads[{index}]"
        payload = _object(raw, at)
        kind = payload.get("type")
        if kind == IMPORT_CAPACITY_LIMIT:
            limit = to_mw(_first_number(payload, at), units.get(IMPORT_CAPACITY_LIMIT))
            if not 0.0 <= limit <= MAX_LIMIT_MW:
                raise BadData(f"{at}: an import limit of {limit} MW is outside 0..{MAX_LIMIT_MW:g} MW")
            out.append({**timing, "importLimitMW": limit})
        elif kind == SIMPLE:
            level = _first_number(payload, at)
            if not level.is_integer() or int(level) not in config.level_map:
                raise BadData(f"{at}: SIMPLE level {level:g} is not in the level map "
                              f"({', '.join(str(k) for k in sorted(config.level_map))})")
            out.append({**timing, "curtailedFlexibleRatio": float(config.level_map[int(level)])})
    return out


def _intervals(event: Mapping[str, Any], first_seen: dt.datetime, now: dt.datetime,
               config: VenConfig) -> list[dict[str, Any]]:
    units = _units(event)
    timed: list[tuple[dt.datetime, int, dict[str, Any]]] = []
    for index, (window, interval) in enumerate(_windows(event, first_seen, now, config.open_ended_step)):
        if window is None or window.end <= window.start:
            continue  # after an open end, or zero-length: never in force
        timed += [(window.start, len(timed) + k, level)
                  for k, level in enumerate(_levels(window, interval, units, config, f"intervals[{index}]"))]
    out = [level for _, _, level in sorted(timed, key=lambda t: (t[0], t[1]))]
    if len(out) > MAX_INTERVALS:
        raise BadData(f"{len(out)} intervals: a GridEvent holds at most {MAX_INTERVALS}")
    return out


def _text(value: object, limit: int = 253) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _manifest(*, name: str, event: Mapping[str, Any], event_id: str, program_id: str, program_name: str,
              factory: str, intervals: list[dict[str, Any]], known: Known, first_seen: dt.datetime,
              baseline_mw: float | None, config: VenConfig) -> dict[str, Any]:
    annotations = {FIRST_SEEN_ANNOTATION: format_time(known.first_seen or first_seen)}
    baseline = known.baseline_mw if known.baseline_mw is not None else baseline_mw
    if baseline is not None:
        annotations[BASELINE_ANNOTATION] = repr(float(baseline))
    spec: dict[str, Any] = {
        "factory": factory,
        "intervals": intervals,
        "leadTime": config.lead_time,
        "cancelled": False,
        "source": {"openadr": {
            "vtn": config.vtn, "programName": program_name, "programId": program_id, "eventId": event_id,
            "eventName": _text(event.get("eventName")),
            "modificationDateTime": _text(event.get("modificationDateTime"), 64),
        }},
    }
    if config.restore_duration:
        spec["restore"] = {"duration": config.restore_duration, "steps": config.restore_steps}
    return {
        "apiVersion": API_VERSION,
        "kind": "GridEvent",
        "metadata": {
            "name": name,
            "labels": {LABEL_MANAGED_BY: MANAGER, LABEL_VTN: config.vtn, LABEL_EVENT: label_value(event_id),
                       LABEL_FACTORY: label_value(factory)},
            "annotations": annotations,
        },
        "spec": spec,
    }


def program_names_by_id(programs: Iterable[object]) -> dict[str, str]:
    """programID -> programName of the programs listed (entries without both are left out)."""
    names: dict[str, str] = {}
    for program in programs:
        if isinstance(program, Mapping) and isinstance(program.get("id"), str):
            name = program.get("programName")
            names[program["id"]] = name if isinstance(name, str) else ""
    return names


def map_events(
    programs: Sequence[object], events: Sequence[object], factories: Mapping[str, str], config: VenConfig,
    now: dt.datetime, known: Mapping[str, Known] | None = None, allocated_mw: Mapping[str, float] | None = None,
) -> Mirror:
    """The GridEvents that mirror ``events`` (see the module docstring).

    ``factories``: factory -> OpenADR target name (:func:`factory_targets`); ``known``:
    GridEvent name -> what it remembers; ``allocated_mw``: factory -> MW allocated now
    (the baseline of a GridEvent written for the first time).
    """
    known = known or {}
    allocated_mw = allocated_mw or {}
    names = program_names_by_id(programs)
    wanted = set(config.program_names)
    mapped: list[Mapped] = []
    skipped: list[Skipped] = []
    for position, raw in enumerate(events):
        event_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = event_id if isinstance(event_id, str) and event_id else f"#{position}"
        try:
            event = _object(raw, "event")
            event_id = _identifier(event.get("id"), "id")
            program_id = _identifier(event.get("programID"), "programID")
            program_name = names.get(program_id, "")
            if wanted and program_name not in wanted:
                continue
            targets = event_targets(event)
            chosen = [f for f, target in sorted(factories.items()) if not targets or target in targets]
            if not chosen:
                continue
            made: list[Mapped] = []
            for factory in chosen:
                name = grid_event_name(config.vtn, event_id, factory)
                remembered = known.get(name, Known())
                first_seen = remembered.first_seen or now
                intervals = _intervals(event, first_seen, now, config)
                if not intervals:
                    break  # no payload of ours (a PRICE event, say): nothing to mirror
                manifest = _manifest(
                    name=name, event=event, event_id=event_id, program_id=program_id, program_name=program_name,
                    factory=factory, intervals=intervals, known=remembered, first_seen=first_seen,
                    baseline_mw=allocated_mw.get(factory), config=config,
                )
                try:
                    GridEvent.model_validate(manifest)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    place = ".".join(str(p) for p in first["loc"])
                    raise BadData(f"the GridEvent would be invalid: {place}: {first['msg']}") from None
                made.append(Mapped(name, event_id, factory, manifest))
            mapped += made
        except BadData as exc:
            skipped.append(Skipped(label, str(exc)))
    return Mirror(mapped, skipped)


# --------------------------------------------------------------------------- what is in the cluster


@dataclass(frozen=True)
class Existing:
    """A GridEvent the VEN wrote, as listed."""

    name: str
    event_id: str
    program_id: str
    factory: str
    spec: dict[str, Any]  # normalised by the model (defaults filled in)
    labels: dict[str, str]
    annotations: dict[str, str]
    cancelled: bool
    ends: dt.datetime | None  # end of its last interval plus the restore ramp (None: unreadable)
    last_report_at: dt.datetime | None
    # each interval: (start, end, import limit in MW or None), as controller.core.grid reads them
    intervals: tuple[tuple[dt.datetime, dt.datetime, float | None], ...] = ()

    @property
    def known(self) -> Known:
        first = self.annotations.get(FIRST_SEEN_ANNOTATION)
        baseline = self.annotations.get(BASELINE_ANNOTATION)
        try:
            first_seen = dt.datetime.fromisoformat(first) if first else None
        except ValueError:
            first_seen = None
        try:
            baseline_mw = float(baseline) if baseline else None
        except ValueError:
            baseline_mw = None
        if baseline_mw is not None and not math.isfinite(baseline_mw):
            baseline_mw = None
        return Known(first_seen if first_seen and first_seen.tzinfo else None, baseline_mw)

    @property
    def stale(self) -> bool:
        return STALE_ANNOTATION in self.annotations


def existing_of(obj: Mapping[str, Any]) -> Existing | None:
    """The listed GridEvent as :class:`Existing`, or None if it is not a readable one of ours."""
    try:
        event = GridEvent.model_validate(obj)
    except ValidationError:
        return None
    openadr = event.spec.source.openadr if event.spec.source is not None else None
    if openadr is None:
        return None
    try:
        bounds = interval_bounds(event)
        ends: dt.datetime | None = max(e for _, e in bounds) + restore_duration(event)
    except (ValueError, OverflowError):
        bounds, ends = [], None
    intervals = tuple((start, end, interval.import_limit_mw)
                      for (start, end), interval in zip(bounds, event.spec.intervals, strict=False))
    report = event.status.last_report if event.status is not None else None
    try:
        reported = dt.datetime.fromisoformat(report.at) if report is not None else None
    except ValueError:
        reported = None
    return Existing(
        name=event.metadata.name, event_id=openadr.event_id, program_id=openadr.program_id,
        factory=event.spec.factory, spec=event.spec.to_api(), labels=dict(event.metadata.labels),
        annotations=dict(event.metadata.annotations), cancelled=event.spec.cancelled, ends=ends,
        last_report_at=reported if reported is not None and reported.tzinfo is not None else None,
        intervals=intervals,
    )


def _normalised(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return GridEventSpec.model_validate(spec).to_api()
    except ValidationError:
        return None


def unchanged(manifest: Mapping[str, Any], existing: Existing) -> bool:
    """True when applying ``manifest`` would change nothing of what the VEN owns."""
    meta = manifest["metadata"]
    return (
        _normalised(manifest["spec"]) == existing.spec
        and meta["labels"].items() <= existing.labels.items()
        and meta["annotations"].items() <= existing.annotations.items()
    )


def cancelled_manifest(existing: Existing) -> dict[str, Any]:
    """``existing`` as the VEN applies it when its event is gone: the same, cancelled."""
    annotations = {k: v for k, v in existing.annotations.items() if k in (FIRST_SEEN_ANNOTATION, BASELINE_ANNOTATION)}
    labels = {k: v for k, v in existing.labels.items() if k in (LABEL_MANAGED_BY, LABEL_VTN, LABEL_EVENT, LABEL_FACTORY)}
    return {
        "apiVersion": API_VERSION,
        "kind": "GridEvent",
        "metadata": {"name": existing.name, "labels": labels, "annotations": annotations},
        "spec": {**existing.spec, "cancelled": True},
    }


@dataclass(frozen=True)
class SyncPlan:
    """What one successful poll writes."""

    apply: list[Mapped]  # new or changed
    cancel: list[Existing]  # their event is gone (or no longer targets their factory)
    unchanged: int


def plan_sync(mapping: Mirror, existing: Sequence[Existing], now: dt.datetime) -> SyncPlan:
    """Apply what is new or changed; cancel what the VTN no longer has.

    Only call this with the outcome of a SUCCESSFUL listing: a GridEvent is cancelled
    when its event was listed but no longer maps to it, or was not listed at all,
    unless its event was skipped for bad data (kept as it is), it is cancelled already,
    or it is over (kept as Completed, for the record).
    """
    by_name = {e.name: e for e in existing}
    wanted = {m.name for m in mapping.mapped}
    skipped = {s.event_id for s in mapping.skipped}
    apply = [m for m in mapping.mapped if m.name not in by_name or not unchanged(m.manifest, by_name[m.name])]
    cancel = [
        e for e in existing
        if e.name not in wanted and e.event_id not in skipped and not e.cancelled
        and (e.ends is None or e.ends > now)
    ]
    return SyncPlan(apply, cancel, len(mapping.mapped) - len(apply))


def missing_event_ids(existing: Sequence[Existing], listed: Iterable[object], now: dt.datetime) -> list[str]:
    """IDs of events that GridEvents in force mirror but the listing did not return: the
    VEN asks the VTN for each before cancelling (a page can miss an event deleted or
    created while the pages were read)."""
    ids = {e.get("id") for e in listed if isinstance(e, Mapping)}
    return sorted({e.event_id for e in existing
                   if e.event_id not in ids and not e.cancelled and (e.ends is None or e.ends > now)})


def stale_targets(existing: Sequence[Existing], now: dt.datetime) -> list[Existing]:
    """The GridEvents to mark stale while the VTN cannot be read: those still to come or
    in force (not cancelled, not over) that are not marked yet."""
    return [e for e in existing if not e.stale and not e.cancelled and (e.ends is None or e.ends > now)]


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class DueReport:
    """An interval end of a GridEvent in force, to report to the VTN."""

    name: str  # the GridEvent
    event_id: str
    program_id: str
    factory: str
    index: int  # of the interval (by end) within the event
    start: dt.datetime
    end: dt.datetime
    limit_mw: float | None
    baseline_mw: float | None


def due_reports(existing: Sequence[Existing], now: dt.datetime, grace: dt.timedelta) -> list[DueReport]:
    """For each GridEvent not cancelled: its latest interval end in ``(now - grace, now]``
    not reported yet (``status.lastReport.at`` before it), if any. Ends further back are
    not reported late: the demand read now would not be the demand of then."""
    due: list[DueReport] = []
    for event in existing:
        if event.cancelled:
            continue
        windows: dict[dt.datetime, tuple[dt.datetime, float | None]] = {}
        for start, end, new_limit in event.intervals:
            if end <= start:
                continue
            earliest, limit = windows.get(end, (start, None))
            if new_limit is not None:
                limit = new_limit if limit is None else min(limit, new_limit)
            windows[end] = (min(earliest, start), limit)
        ends = sorted(windows)
        candidates = [(i, end) for i, end in enumerate(ends)
                      if now - grace < end <= now and (event.last_report_at is None or event.last_report_at < end)]
        if not candidates:
            continue
        index, end = candidates[-1]
        start, limit = windows[end]
        due.append(DueReport(event.name, event.event_id, event.program_id, event.factory, index, start, end,
                             limit, event.known.baseline_mw))
    return due


def next_interval_end(existing: Sequence[Existing], after: dt.datetime) -> dt.datetime | None:
    """The first interval end strictly after ``after`` of a GridEvent not cancelled."""
    best: dt.datetime | None = None
    for event in existing:
        if event.cancelled:
            continue
        for _, end, _ in event.intervals:
            if end > after and (best is None or end < best):
                best = end
    return best


def report_body(due: DueReport, *, client_name: str, resource_name: str, demand_mw: float,
                baseline_mw: float | None) -> dict[str, Any]:
    """The OpenADR 3 report (POST /reports) of one interval: DEMAND, and BASELINE when
    known, in kW, for the factory's resource. ``programID`` is 3.0's (3.1 ignores it);
    the payload descriptors carry no ``objectType``, which 3.1 VTNs and clients accept."""
    payloads: list[dict[str, Any]] = [{"type": DEMAND, "values": [mw_to_kw(demand_mw)]}]
    descriptors: list[dict[str, Any]] = [{"payloadType": DEMAND, "readingType": "ESTIMATED", "units": "KW"}]
    if baseline_mw is not None:
        payloads.append({"type": BASELINE, "values": [mw_to_kw(baseline_mw)]})
        descriptors.append({"payloadType": BASELINE, "readingType": "ESTIMATED", "units": "KW"})
    return {
        "objectType": "REPORT",
        "programID": due.program_id,
        "eventID": due.event_id,
        "clientName": client_name,
        "reportName": f"{due.name}/{due.index}"[:128],
        "payloadDescriptors": descriptors,
        "resources": [{
            "resourceName": resource_name,
            "intervalPeriod": {"start": format_time(due.start), "duration": format_duration(due.end - due.start)},
            "intervals": [{"id": due.index, "payloads": payloads}],
        }],
    }


def last_report_status(due: DueReport, at: dt.datetime, demand_mw: float, baseline_mw: float | None) -> dict[str, Any]:
    """``status.lastReport`` of the GridEvent, as the VEN applies it."""
    report: dict[str, Any] = {"at": format_time(at), "demandMW": float(demand_mw)}
    if due.limit_mw is not None:
        report["limitMW"] = float(due.limit_mw)
    if baseline_mw is not None:
        report["baselineMW"] = float(baseline_mw)
    return {"apiVersion": API_VERSION, "kind": "GridEvent", "metadata": {"name": due.name},
            "status": {"lastReport": report}}


__all__ = [
    "BASELINE_ANNOTATION",
    "DEFAULT_LEVELS",
    "FIRST_SEEN_ANNOTATION",
    "IMPORT_CAPACITY_LIMIT",
    "LABEL_EVENT",
    "LABEL_FACTORY",
    "LABEL_MANAGED_BY",
    "LABEL_VTN",
    "MANAGER",
    "SIMPLE",
    "BadData",
    "DueReport",
    "Existing",
    "Known",
    "Mapped",
    "Mirror",
    "Skipped",
    "SyncPlan",
    "VenConfig",
    "cancelled_manifest",
    "due_reports",
    "duration_end",
    "event_targets",
    "existing_of",
    "factory_targets",
    "format_duration",
    "format_time",
    "grid_event_name",
    "label_value",
    "last_report_status",
    "map_events",
    "missing_event_ids",
    "mw_to_kw",
    "next_interval_end",
    "open_ended_end",
    "own_selector",
    "plan_sync",
    "program_names_by_id",
    "report_body",
    "stale_targets",
    "to_mw",
    "unchanged",
    "valid_vtn_name",
]

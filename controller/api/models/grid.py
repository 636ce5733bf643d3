"""The ``GridEvent`` spec and status: a curtailment a grid operator announced ahead of time.

A GridEvent names one AIFactory and a list of piecewise-constant intervals, each with
an import limit, a curtailment in MW or a share of the factory's flexible power. The
operator plans ahead of it: interruptible work leaves the factory ``leadTime`` before
the power goes, and returns after the end (in steps when ``restore`` is set). Events
are written by people (``kubectl apply``) or by ``meshplane-ven``, which turns an
OpenADR 3 VTN's events into them; the operator treats both alike (``source`` is
informative only).

Read by the CRD generator, by ``meshctl`` and by the reconcile core
(:mod:`controller.core.grid` does the time arithmetic); the status is written by the
operator, except ``lastReport``, which ``meshplane-ven`` writes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from controller.api.models.base import ApiModel, CrossFieldRule
from controller.api.models.status import Condition

# ISO 8601 durations without years or months (their length depends on the calendar):
# weeks, days (24 h each), hours, minutes, seconds. OpenADR's "P9999Y" (until further
# notice) is mapped by the VEN, not accepted here.
# (RE2 and the regex crate have no look-ahead: "P" and "...T" alone are refused by
# the CEL rule and the validator below.)
DURATION_PATTERN = r"^P(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def parse_duration(text: str) -> dt.timedelta:
    """``PT1H30M`` -> 1:30:00. Days are 24 h: an event's intervals are elapsed time."""
    match = _DURATION.match(text)
    if match is None or text == "P" or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return dt.timedelta(**parts)


def _check_duration(text: str) -> str:
    if _DURATION.match(text) is None or text == "P" or text.endswith("T"):
        raise PydanticCustomError(
            "iso_duration",
            "'{text}' is not an ISO 8601 duration of weeks, days, hours, minutes and seconds "
            "(e.g. PT15M, PT3H, P1DT2H)",
            {"text": text},
        )
    return text


def _check_time(text: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PydanticCustomError(
            "rfc3339", "'{text}' is not an RFC 3339 time with an offset (e.g. 2026-07-14T18:00:00-07:00)",
            {"text": text},
        )
    return text


IsoDuration = Annotated[
    str,
    # the pattern in the schema only: the validator below says what is wrong in words
    Field(max_length=64, json_schema_extra={"pattern": DURATION_PATTERN, "minLength": 2, "x-kubernetes-validations": [
        {"rule": "self != 'P' && !self.endsWith('T')", "message": "a duration needs at least one figure, e.g. PT15M"},
    ]}),
    AfterValidator(_check_duration),
]
"""An ISO 8601 duration such as ``PT15M`` or ``P1DT2H`` (no years or months)."""

Rfc3339Time = Annotated[
    str,
    Field(max_length=40, json_schema_extra={"format": "date-time", "pattern": _RFC3339}),
    AfterValidator(_check_time),
]
"""An instant with its offset, e.g. ``2026-07-14T18:00:00-07:00`` or ``...Z``."""


class GridInterval(ApiModel):
    """One piece of the event: from its start, for its duration, one constant level."""

    start: Rfc3339Time | None = Field(
        default=None,
        description="Start of the interval (RFC 3339 with offset). Required on the first "
        "interval; a later interval without one starts where the previous one ends.",
    )
    duration: IsoDuration = Field(description="Length of the interval, ISO 8601 (e.g. PT1H).")
    import_limit_mw: float | None = Field(
        default=None, ge=0, le=100_000,
        description="The most the factory may import, in MW (OpenADR IMPORT_CAPACITY_LIMIT). "
        "Becomes a curtailment of clamp(firm + flexible - limit, 0, flexible); a limit below "
        "firm power is reported (LimitBelowFirm), never applied to firm work.",
    )
    curtailed_mw: float | None = Field(
        default=None, ge=0, le=100_000,
        description="Flexible power withdrawn, in MW (at most the factory's flexible power).",
    )
    curtailed_flexible_ratio: float | None = Field(
        default=None, ge=0, le=1,
        description="Share of the factory's flexible power withdrawn, 0..1 (OpenADR SIMPLE "
        "levels map to it through the VEN's level map).",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="",
            cel="(has(self.importLimitMW) ? 1 : 0) + (has(self.curtailedMW) ? 1 : 0) + "
            "(has(self.curtailedFlexibleRatio) ? 1 : 0) == 1",
            message="give exactly one of importLimitMW, curtailedMW and curtailedFlexibleRatio",
            holds=lambda i: sum(v is not None for v in (i.import_limit_mw, i.curtailed_mw,
                                                          i.curtailed_flexible_ratio)) == 1,
        ),
    )


class RestoreRamp(ApiModel):
    """How power comes back after the event: in equal steps, not all at once."""

    duration: IsoDuration = Field(description="Time from the end of the event to full power (ISO 8601).")
    steps: int = Field(
        default=4, ge=1, le=96,
        description="Equal steps in which the curtailment is lifted over the duration (default 4).",
    )


class OpenAdrSource(ApiModel):
    """The OpenADR 3 event this GridEvent mirrors (written by meshplane-ven)."""

    vtn: str = Field(min_length=1, max_length=253, description="Name of the VTN, as the VEN is configured.")
    program_name: str = Field(default="", max_length=253, description="programName of the event's program.")
    program_id: str = Field(max_length=253, description="ID of the program at the VTN.")
    event_id: str = Field(max_length=253, description="ID of the event at the VTN.")
    event_name: str = Field(default="", max_length=253, description="eventName at the VTN.")
    modification_date_time: str = Field(
        default="", max_length=64,
        description="modificationDateTime of the event at the VTN when last read (a change re-plans).",
    )


class GridEventSource(ApiModel):
    """Where the event came from: absent or ``manual`` for a person, ``openadr`` for the VEN."""

    manual: bool | None = Field(default=None, description="True: written by a person.")
    openadr: OpenAdrSource | None = Field(default=None, description="The OpenADR event mirrored.")


class GridEventSpec(ApiModel):
    """A scheduled curtailment of one factory's grid import."""

    factory: str = Field(
        min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="Name of the AIFactory the event applies to.",
    )
    intervals: list[GridInterval] = Field(
        min_length=1, max_length=288,
        description="Piecewise-constant intervals, in time order; the first has a start.")
    lead_time: IsoDuration = Field(
        default="PT15M",
        description="How long before a level takes effect interruptible work starts leaving "
        "(checkpoint and drain time), ISO 8601; default PT15M.",
    )
    restore: RestoreRamp | None = Field(
        default=None, description="Lift the curtailment in steps after the end (absent: at once)."
    )
    cancelled: bool = Field(
        default=False,
        description="True: the event no longer applies (kept for the record); work returns at once.",
    )
    source: GridEventSource | None = Field(default=None, description="Who announced it (informative).")

    cross_field_rules = (
        CrossFieldRule(
            field="intervals",
            cel="has(self.intervals[0].start)",
            message="the first interval needs a start",
            holds=lambda s: bool(s.intervals) and s.intervals[0].start is not None,
        ),
    )


GridEventPhase = Literal["Scheduled", "Preparing", "Active", "Restoring", "Completed", "Cancelled"]


class CurtailmentStep(ApiModel):
    """The event's curtailment of its factory over one stretch of time."""

    start: str = Field(description="From (RFC 3339).", json_schema_extra={"format": "date-time"})
    end: str = Field(description="Until (RFC 3339).", json_schema_extra={"format": "date-time"})
    curtailed_mw: float = Field(description="Flexible power withdrawn, in MW.")
    limit_mw: float | None = Field(default=None, description="The import limit asked for, in MW, if any.")


class GridReport(ApiModel):
    """What the factory drew, as reported to the grid (written by meshplane-ven)."""

    at: str = Field(description="When it was reported (RFC 3339).", json_schema_extra={"format": "date-time"})
    demand_mw: float = Field(description="Power the factory's placed work draws, in MW.")
    limit_mw: float | None = Field(default=None, description="The import limit in force then, in MW.")
    baseline_mw: float | None = Field(default=None, description="What it drew before the event, in MW.")


class GridEventStatus(ApiModel):
    """Observed state of a grid event."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    phase: GridEventPhase = Field(
        default="Scheduled",
        description="Scheduled (before start - leadTime), Preparing (work is leaving), Active, "
        "Restoring (the ramp after the end), Completed or Cancelled.",
    )
    start: str | None = Field(default=None, description="Start of the first interval (RFC 3339).",
                              json_schema_extra={"format": "date-time"})
    end: str | None = Field(default=None, description="End of the last interval (RFC 3339).",
                            json_schema_extra={"format": "date-time"})
    limit_mw: float | None = Field(default=None, description="The lowest import limit of the event, in MW.")
    curtailed_mw: float = Field(default=0.0, description="Curtailment the event imposes now, in MW.")
    peak_curtailed_mw: float = Field(default=0.0, description="Largest curtailment of the event, in MW.")
    schedule: list[CurtailmentStep] = Field(
        default_factory=list, max_length=400, description="The event's curtailment over time, ramp included."
    )
    moved_workloads: list[str] = Field(
        default_factory=list, max_length=1000,
        description="Workloads (namespace/name) moved or preempted from the factory for this event.",
    )
    moved_count: int = Field(default=0, ge=0, description="How many workloads were moved or preempted for it.")
    last_report: GridReport | None = Field(default=None, description="The last demand report (meshplane-ven).")
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16,
        description="Valid (the factory exists), LimitBelowFirm, LateNotice (announced with less "
        "than its lead time), SourceStale (the VEN cannot reach the VTN).",
    )

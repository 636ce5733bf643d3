"""Conditions in the shape of metav1.Condition, and times as Kubernetes writes them.

Shared by :mod:`controller.core.statuses` and :mod:`controller.core.delivery`, which
both compute conditions from what they observe. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from controller.api.models import Condition


def timestamp(at: dt.datetime) -> str:
    """RFC 3339 in UTC, to the second, as Kubernetes writes times."""
    return at.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def condition(
    previous: Sequence[Condition], type_: str, status: bool, reason: str, message: str,
    at: dt.datetime, generation: int | None,
) -> Condition:
    """A condition that keeps its lastTransitionTime while its status does not change."""
    text: Literal["True", "False"] = "True" if status else "False"
    before = next((c for c in previous if c.type == type_), None)
    transition = before.last_transition_time if before and before.status == text else timestamp(at)
    return Condition(
        type=type_, status=text, reason=reason, message=message,
        last_transition_time=transition, observed_generation=generation,
    )


__all__ = ["condition", "timestamp"]

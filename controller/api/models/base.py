"""Building blocks shared by every meshplane resource model.

``ApiModel`` is the base of all spec and status models: snake_case attributes in
Python, the API's camelCase names on the wire (with units kept upper-case where they
are units: ``firmMW``, ``memoryGiB``, ``pricePerMWh``), strict types and no unknown
fields, exactly as the API server treats a manifest.

A ``CrossFieldRule`` is one rule that spans several fields. It is written once, as a
CEL expression for the API server and a Python predicate for the models, with one
message shared by both, so ``kubectl apply`` and ``meshctl validate`` say the same
thing. The CRD generator (``controller.api.crdgen``) emits the rules as
``x-kubernetes-validations``; ``ApiModel`` checks them after field validation.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from controller.api.models.countries import ISO_3166_ALPHA2

# Words rendered in a fixed case in API field names, because they are units.
_UNIT_WORDS = {"mw": "MW", "mwh": "MWh", "kwh": "KWh", "gib": "GiB"}


def to_api_name(attribute: str) -> str:
    """``firm_mw`` -> ``firmMW``; ``tokens_per_second`` -> ``tokensPerSecond``."""
    first, *rest = attribute.split("_")
    return first + "".join(_UNIT_WORDS.get(word, word.capitalize()) for word in rest)


@dataclass(frozen=True)
class CrossFieldRule:
    """A rule over several fields of one object, enforced by the API server and the models.

    ``field`` is the API name of the field the rule is reported on (relative to the
    object that carries the rule), so both validators name it in their messages.
    ``holds`` receives the validated model and must agree with ``cel`` on every input.
    """

    field: str
    cel: str
    message: str
    holds: Callable[[Any], bool]

    def as_crd_validation(self) -> dict[str, str]:
        rule = {"rule": self.cel, "message": self.message}
        if self.field:
            rule["fieldPath"] = f".{self.field}"
        return rule


class ApiModel(BaseModel):
    """Base of every spec and status model (see the module docstring)."""

    model_config = ConfigDict(
        alias_generator=to_api_name,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        validate_default=False,
    )

    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> ApiModel:
        for rule in type(self).cross_field_rules:
            if not rule.holds(self):
                raise PydanticCustomError(
                    "cross_field_rule", rule.message, {"field": rule.field}
                )
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler(core_schema)
        if cls.cross_field_rules:
            target = handler.resolve_ref_schema(schema)
            target["x-kubernetes-validations"] = [
                rule.as_crd_validation() for rule in cls.cross_field_rules
            ]
        return schema

    def to_api(self) -> dict[str, Any]:
        """The object as the API server stores it: API names, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------- field types

_COUNTRY_SET = frozenset(ISO_3166_ALPHA2)


def _check_country(code: str) -> str:
    if code not in _COUNTRY_SET:
        raise PydanticCustomError(
            "country_code",
            "'{code}' is not an ISO 3166-1 alpha-2 country code (e.g. US, KR, IN, FR)",
            {"code": code},
        )
    return code


CountryCode = Annotated[
    str,
    Field(min_length=2, max_length=2, json_schema_extra={"enum": list(ISO_3166_ALPHA2)}),
    AfterValidator(_check_country),
]
"""An ISO 3166-1 alpha-2 country code, upper case (``US``, ``KR``, ``FR``)."""

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

RegionName = Annotated[str, Field(min_length=1, max_length=63, pattern=_DNS_LABEL)]
"""A node of the topology graph: a lower-case DNS label such as ``us-south``."""

MemberClusterName = Annotated[
    str,
    Field(
        min_length=1, max_length=63, pattern=_DNS_LABEL,
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self != 'local'", "message": "local is not a member cluster: leave memberCluster out "
             "to run the site's work in the operator's own cluster"},
        ]},
    ),
    AfterValidator(lambda name: _check_not_local(name)),
]
"""The name of a ``MemberCluster`` (a DNS label, not ``local``)."""


def _check_not_local(name: str) -> str:
    if name == "local":
        raise PydanticCustomError(
            "member_cluster_name",
            "local is not a member cluster: leave memberCluster out to run the site's work in the "
            "operator's own cluster",
        )
    return name


ModelName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]
"""An accelerator model name, lower case, e.g. ``nvidia-gb200`` or ``tesla-ai5``."""

ClockTime = Annotated[
    str, Field(min_length=5, max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
]
"""A wall-clock time ``HH:MM`` (24 h). Quote it in YAML: ``"22:00"``."""


@cache
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_time_zone(name: str) -> str:
    if name not in _known_time_zones():
        raise PydanticCustomError(
            "time_zone",
            "'{name}' is not an IANA time zone (e.g. Europe/Berlin, America/Los_Angeles, UTC)",
            {"name": name},
        )
    return name


TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"),
    AfterValidator(_check_time_zone),
]
"""An IANA time zone name such as ``Asia/Seoul``."""


def unique_by(key: str) -> Callable[[list[Any]], list[Any]]:
    """A list validator rejecting two items with the same ``key`` (the list-map key)."""

    api_key = to_api_name(key)

    def check(items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for item in items:
            value = getattr(item, key)
            if value in seen:
                raise PydanticCustomError(
                    "duplicate_key",
                    "duplicate {api_key} '{value}': each {api_key} may appear once",
                    {"api_key": api_key, "value": value},
                )
            seen.add(value)
        return items

    return check


def list_map(key: str) -> dict[str, Any]:
    """JSON-schema extras making a list a Kubernetes list-map keyed by ``key``."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [to_api_name(key)]}


def list_set() -> dict[str, Any]:
    """JSON-schema extras making a list of scalars a Kubernetes set (no duplicates)."""
    return {"x-kubernetes-list-type": "set"}


def check_unique_scalars(items: list[Any]) -> list[Any]:
    """List validator for ``list_set`` lists: each value once, as the API server demands."""
    duplicates = sorted({item for item in items if items.count(item) > 1})
    if duplicates:
        raise PydanticCustomError(
            "duplicate_value",
            "duplicate value(s) {values}: each value may appear once",
            {"values": ", ".join(map(str, duplicates))},
        )
    return items


_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
CONDITION_REASON_PATTERN = _REASON.pattern

"""Parse manifests: YAML text or decoded objects in, resources or problems out.

Pure (no file or network I/O): ``meshctl`` reads the files and passes each text to
:func:`parse_text`; the operator and the HTTP API (what-if bodies) pass decoded
objects to :func:`parse_object` (or :func:`parse_objects`). Every problem is one
``Problem`` naming file, kind/name and field path, phrased as the API server would;
nothing here raises on bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from controller.api.resources import (
    API_VERSION,
    GROUP,
    KINDS,
    AIFactory,
    AnyResource,
    EdgeFleet,
    GridEvent,
    MemberCluster,
    MeshWorkload,
)
from controller.core.yamlcompat import load_documents

# (kind or "site", key) -> the first resource of that name, its file and document
Seen = dict[tuple[str, str], tuple[AnyResource, str, int]]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one manifest, phrased for a person."""

    file: str
    document: int
    kind: str
    name: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.kind}/{self.name}" if self.kind else f"document {self.document + 1}"
        prefix = f"{self.file}: " if self.file else ""
        return f"{prefix}{where}: {self.field}: {self.message}"


@dataclass
class Manifests:
    """The valid resources found, the problems of the invalid ones, and what was skipped."""

    factories: list[AIFactory] = field(default_factory=list)
    fleets: list[EdgeFleet] = field(default_factory=list)
    workloads: list[MeshWorkload] = field(default_factory=list)
    clusters: list[MemberCluster] = field(default_factory=list)
    grid_events: list[GridEvent] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    other_objects: int = 0  # e.g. Namespaces: valid Kubernetes, not ours to check
    files_read: int = 0


def field_path(location: Iterable[str | int]) -> str:
    """``('spec', 'pools', 0, 'count')`` -> ``spec.pools[0].count``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(object)"


_SHORT_INPUT_CHARS = 60
# Our own error types (controller.api.models.base) already quote the value they reject.
_MESSAGES_NAMING_THEIR_INPUT = {"cross_field_rule", "duplicate_key", "duplicate_value", "country_code", "time_zone",
                                "iso_duration", "rfc3339"}


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """(field path, message) of one pydantic error, in the API's vocabulary."""
    location = list(error["loc"])
    # Pydantic names the branch of a tagged union or a function validator in the loc.
    location = [part for part in location if not (isinstance(part, str) and part.startswith("function-"))]
    context = error.get("ctx") or {}
    if error["type"] == "cross_field_rule" and context.get("field"):
        location.append(context["field"])
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "required field is missing"
    else:
        message = error["msg"]
        value = error.get("input")
        if kind not in _MESSAGES_NAMING_THEIR_INPUT and not isinstance(value, (dict, list)):
            shown = repr(value)
            if len(shown) <= _SHORT_INPUT_CHARS:
                message += f" (got {shown})"
    return field_path(location), message


def _as_stored(value: Any, keep_nulls: bool = False) -> Any:
    """A value as the API server stores it: a null field of an object is pruned (every
    field of our schemas is non-nullable, so it then takes its default), except inside
    free-form objects (``spec.template``), which are kept as written."""
    if isinstance(value, dict):
        return {k: _as_stored(v, keep_nulls) for k, v in value.items() if keep_nulls or v is not None}
    if isinstance(value, list):
        return [_as_stored(item, keep_nulls) for item in value]
    return value


def _stored_document(document: dict[str, Any]) -> dict[str, Any]:
    stored = {k: _as_stored(v) for k, v in document.items() if v is not None and k not in ("metadata", "spec")}
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        # metav1.ObjectMeta: a null label or annotation value is stored as ""
        stored["metadata"] = {
            k: {key: "" if text is None else text for key, text in v.items()}
            if k in ("labels", "annotations") and isinstance(v, dict) else _as_stored(v)
            for k, v in metadata.items() if v is not None
        }
    elif metadata is not None:
        stored["metadata"] = metadata
    spec = document.get("spec")
    if isinstance(spec, dict):
        stored["spec"] = {
            k: _as_stored(v, keep_nulls=k == "template") for k, v in spec.items() if v is not None
        }
    elif spec is not None:
        stored["spec"] = spec
    return stored


def parse_object(document: Any, file: str, index: int, manifests: Manifests) -> AnyResource | None:
    """One decoded document as a resource of ours, or ``None`` with its problems added
    to ``manifests`` (objects of other API groups are counted and skipped)."""
    def problem(kind: str, name: str, path: str, message: str) -> None:
        manifests.problems.append(Problem(file, index, kind, name, path, message))

    if not isinstance(document, dict):
        problem("", "", "(document)", f"expected a mapping with apiVersion and kind, got {type(document).__name__}")
        return None
    kind = document.get("kind")
    api_version = document.get("apiVersion")
    metadata = document.get("metadata")
    name = metadata.get("name", "") if isinstance(metadata, dict) else ""
    name = name if isinstance(name, str) else ""
    if not isinstance(kind, str) or not kind:
        problem("", name, "kind", "required field is missing")
        return None
    info = KINDS.get(kind)
    if info is None:
        if isinstance(api_version, str) and api_version.split("/")[0] == GROUP:
            problem(kind, name, "kind", f"unknown kind; {GROUP} serves {', '.join(KINDS)}")
        else:
            manifests.other_objects += 1
        return None
    if api_version != API_VERSION:
        problem(kind, name, "apiVersion", f"must be {API_VERSION} (got {api_version!r})")
        return None
    document = _stored_document(document)
    metadata = document.get("metadata")
    if info.namespaced and isinstance(metadata, dict) and not metadata.get("namespace"):
        document = {**document, "metadata": {**metadata, "namespace": "default"}}
    try:
        resource = info.resource_model.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors():
            path, message = _describe(error)
            problem(kind, name or "(unnamed)", path, message)
        return None
    if not info.namespaced and resource.metadata.namespace:
        problem(kind, name, "metadata.namespace", f"{kind} is cluster-scoped: remove the namespace")
        return None
    return resource


def _add_unless_duplicate(
    resource: AnyResource, file: str, index: int, manifests: Manifests, seen: Seen
) -> None:
    """Two objects of one kind (and namespace) with one name would overwrite each other;
    a factory and a fleet with one name would be the same site in a plan."""
    scope = "site" if resource.kind in ("AIFactory", "EdgeFleet") else resource.kind
    first = seen.get((scope, resource.key))
    if first is None:
        seen[(scope, resource.key)] = (resource, file, index)
        if isinstance(resource, AIFactory):
            manifests.factories.append(resource)
        elif isinstance(resource, EdgeFleet):
            manifests.fleets.append(resource)
        elif isinstance(resource, MemberCluster):
            manifests.clusters.append(resource)
        elif isinstance(resource, GridEvent):
            manifests.grid_events.append(resource)
        else:
            manifests.workloads.append(resource)
        return
    previous, first_file, first_index = first
    if scope == "site":
        message = (
            f"duplicate name: {previous.kind}/{previous.key} in {first_file} (document "
            f"{first_index + 1}) has it already; site names are unique across AIFactory and EdgeFleet"
        )
    else:
        message = f"duplicate name: already defined in {first_file} (document {first_index + 1})"
    manifests.problems.append(
        Problem(file, index, resource.kind, resource.metadata.name, "metadata.name", message)
    )


def topology_warnings(manifests: Manifests) -> list[Problem]:
    """Valid manifests that still cannot mean what their author meant: a workload's
    user region that no site is in or links to can never be reached, so every
    latency target from it fails. The API server cannot see this (it checks one
    object at a time); ``meshctl validate`` and ``meshctl plan`` print it as a warning.
    """
    sites: list[AIFactory | EdgeFleet] = [*manifests.factories, *manifests.fleets]
    regions = {site.spec.region for site in sites}
    regions |= {link.to for site in sites for link in site.spec.links}
    warnings = []
    clusters = {c.metadata.name for c in manifests.clusters}
    for site in sites:
        if site.spec.member_cluster is not None and site.spec.member_cluster not in clusters:
            warnings.append(
                Problem(
                    "", 0, site.kind, site.key, "spec.memberCluster",
                    f"MemberCluster {site.spec.member_cluster!r} is not among the manifests: the operator "
                    "reports the site unreachable until it exists",
                )
            )
    factories = {f.metadata.name for f in manifests.factories}
    for event in manifests.grid_events:
        if event.spec.factory not in factories:
            warnings.append(Problem(
                "", 0, "GridEvent", event.key, "spec.factory",
                f"AIFactory {event.spec.factory!r} is not among the manifests: the event applies to nothing",
            ))
    for workload in manifests.workloads:
        if workload.spec.latency is None:
            continue
        for index, user in enumerate(workload.spec.latency.users):
            if user.region not in regions and user.weight > 0:
                warnings.append(
                    Problem(
                        "", 0, "MeshWorkload", workload.key, f"spec.latency.users[{index}].region",
                        f"region {user.region!r} is not in the topology: no site is in it or links to it",
                    )
                )
    return warnings


def parse_text(text: str, file: str, manifests: Manifests, seen: Seen) -> None:
    """Parse the YAML ``text`` of ``file`` into ``manifests``: its valid resources, and
    one problem per thing wrong; never raises on bad input. ``seen`` spans every text
    of one set of manifests, so duplicates across files are found."""
    manifests.files_read += 1
    try:
        documents = load_documents(text)  # as kubectl and the API server read it
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        reason = getattr(exc, "problem", None) or str(exc)
        manifests.problems.append(Problem(file, 0, "", "", where, f"invalid YAML: {reason}"))
        return
    for index, document in enumerate(documents):
        if document is None:
            continue
        resource = parse_object(document, file, index, manifests)
        if resource is not None:
            _add_unless_duplicate(resource, file, index, manifests, seen)


def parse_objects(objects: Iterable[Any], source: str) -> Manifests:
    """Decoded objects (e.g. a list from the API server) as one set of manifests; each
    problem names ``source`` and the object's position."""
    manifests = Manifests()
    seen: Seen = {}
    for index, document in enumerate(objects):
        resource = parse_object(document, source, index, manifests)
        if resource is not None:
            _add_unless_duplicate(resource, source, index, manifests, seen)
    manifests.problems.sort()
    return manifests

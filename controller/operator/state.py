"""The operator's view of the mesh: every object of our kinds, parsed and compact.

Fed by the kopf watch handlers (:func:`controller.operator.main.build_registry`) and the periodic
re-list; read by the solve loop, which takes a :class:`~controller.core.reconcile.Snapshot`
under the lock and then works without it. Thread-safe: kopf's event loop writes, the
solve loop's thread reads.

``observe`` says whether the change matters to the placement: a new or deleted object,
or a new ``metadata.generation`` (the spec changed). Status-only updates (our own
writes coming back) are stored, so the next diff is against what the API server holds,
but never trigger a solve. Statuses the writer has just written are recorded at once
(:meth:`record_statuses`), so a solve that runs before the watch delivers them does
not write them again.

Each object's ``metadata.resourceVersion`` is kept beside it: a snapshot comes with
the versions it saw (:meth:`MeshState.snapshot_and_versions`), the writer sends them as
preconditions, and a status patch refused with 409 Conflict (the object changed after
the snapshot) is dropped; :meth:`MeshState.conflicted` then makes sure a solve follows
once the state holds the object as it is now.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.api.resources import AIFactory, AnyResource, EdgeFleet, GridEvent, MemberCluster, MeshWorkload
from controller.core.changes import ObjectRef
from controller.core.delivery import NOTHING_OBSERVED, Observed
from controller.core.parse import Manifests, Problem, parse_object
from controller.core.reconcile import Outcome, Snapshot

log = logging.getLogger("meshplane.operator.state")

_TOMBSTONES = 10_000  # deletions remembered (oldest forgotten first)

# Fields of metadata the core reads; the rest (managedFields, annotations of other
# tools, ...) is dropped so the index stays compact. Of the annotations, only ours
# (e.g. meshplane-ven's meshplane.io/source-stale-since) are kept.
_KEPT_METADATA = ("name", "namespace", "generation", "uid", "labels", "creationTimestamp")
_OUR_ANNOTATIONS = "meshplane.io/"


def _key(ref: ObjectRef) -> str:
    return f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a watched object the core needs."""
    metadata = body.get("metadata") or {}
    kept = {k: metadata[k] for k in _KEPT_METADATA if k in metadata}
    ours = {k: v for k, v in (metadata.get("annotations") or {}).items() if k.startswith(_OUR_ANNOTATIONS)}
    if ours:
        kept["annotations"] = ours
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": body.get("spec"),
        **({"status": body["status"]} if body.get("status") else {}),
    }


@dataclass
class _Entry:
    resource: AnyResource
    uid: str
    observed_at: float = 0.0  # time.monotonic() of the last watch event or listing
    # when the watch delivered this generation as an ADDED or MODIFIED event (None when
    # it came from a listing, or once it was placed): the start of apply-to-placed
    spec_changed_at: float | None = None
    resource_version: str = ""  # metadata.resourceVersion of what the state holds


@dataclass
class Refused:
    """An object the core cannot read: why, and what the API server holds of it."""

    problems: list[Problem]
    generation: int | None
    uid: str
    status: dict[str, Any] | None
    resource_version: str = ""


@dataclass
class MeshState:
    """Parsed objects by kind and key, plus the objects the core refused and why."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _objects: dict[str, dict[str, _Entry]] = field(
        default_factory=lambda: {"AIFactory": {}, "EdgeFleet": {}, "MeshWorkload": {}, "MemberCluster": {},
                                 "GridEvent": {}}
    )
    refused: dict[ObjectRef, Refused] = field(default_factory=dict)
    # when the watch saw each recent deletion, so an older listing cannot resurrect it
    _deleted: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    # objects whose status patch was refused (409) while the state still held the version
    # sent: their next watch event calls for a solve, even when it changes only the status
    _stale: set[ObjectRef] = field(default_factory=set, repr=False)

    def observe(self, event_type: str | None, body: Mapping[str, Any], listed_at: float | None = None) -> bool:
        """Apply one watch event; True when the placement may change (solve needed).

        ``listed_at`` marks an item of a listing requested at that time.monotonic():
        it is older than anything the watch delivered since, so it is skipped for an
        object the watch has seen (or seen deleted) after that moment."""
        obj = compact(body)
        kind = str(obj.get("kind"))
        metadata = obj["metadata"]
        namespace = metadata.get("namespace")
        name = str(metadata.get("name", ""))
        key = f"{namespace}/{name}" if namespace else name
        ref = ObjectRef(kind, name, namespace)
        if kind not in self._objects:
            return False
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        if event_type == "DELETED":
            with self._lock:
                self._stale.discard(ref)
                gone = self._objects[kind].pop(key, None)
                refused = self.refused.pop(ref, None)
                self._deleted[(kind, key)] = time.monotonic()
                if len(self._deleted) > _TOMBSTONES:
                    self._deleted.pop(next(iter(self._deleted)))
            return gone is not None or refused is not None
        manifests = Manifests()
        resource = parse_object(obj, f"{kind.lower()}/{key}", 0, manifests)
        with self._lock:
            if listed_at is not None:
                known = self._objects[kind].get(key)
                if (known is not None and known.observed_at >= listed_at) or (
                    self._deleted.get((kind, key), -1.0) >= listed_at
                ):
                    return False  # the watch knows better than this listing
            self._deleted.pop((kind, key), None)
            stale = ref in self._stale
            self._stale.discard(ref)
            if resource is None:
                known = self._objects[kind].pop(key, None)
                before_refused = self.refused.get(ref)
                generation = metadata.get("generation")
                self.refused[ref] = Refused(manifests.problems, generation, str(metadata.get("uid", "")),
                                            body.get("status") or None, version)
                if stale or before_refused is None or before_refused.generation != generation:
                    log.warning("%s/%s cannot be placed: %s", kind, key,
                                "; ".join(str(p) for p in manifests.problems))
                    return True  # its status must say why (and it may have held capacity)
                return known is not None
            self.refused.pop(ref, None)
            before = self._objects[kind].get(key)
            now = time.monotonic()
            same_generation = before is not None and before.resource.metadata.generation == resource.metadata.generation
            changed_at = before.spec_changed_at if before is not None and same_generation else (
                now if event_type in ("ADDED", "MODIFIED") else None)
            self._objects[kind][key] = _Entry(resource, str(metadata.get("uid", "")), now, changed_at, version)
        return stale or before is None or before.resource.metadata.generation != resource.metadata.generation or (
            before.resource.metadata.labels != resource.metadata.labels
        ) or before.resource.metadata.annotations != resource.metadata.annotations

    def replace_all(self, kind: str, bodies: Iterable[Mapping[str, Any]], listed_at: float | None = None) -> bool:
        """A full re-list of ``kind`` requested at ``listed_at`` (time.monotonic()): drop
        what is gone (deleted during a watch gap), unless a watch event newer than the
        request has seen it since; apply the rest. True when anything relevant changed."""
        listed_at = time.monotonic() if listed_at is None else listed_at
        seen: set[str] = set()
        changed = False
        for body in bodies:
            metadata = body.get("metadata") or {}
            namespace = metadata.get("namespace")
            seen.add(f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name")))
            changed |= self.observe("MODIFIED", {**body, "kind": kind}, listed_at)
        with self._lock:
            for key in [k for k, e in self._objects[kind].items() if k not in seen and e.observed_at < listed_at]:
                del self._objects[kind][key]
                changed = True
        return changed

    def snapshot(self, at: dt.datetime, observed: Observed = NOTHING_OBSERVED) -> Snapshot:
        """The mesh now, sorted by key so the same objects always give the same plan,
        with what the clusters report (``observed``, from the delivery layer)."""
        return self.snapshot_and_versions(at, observed)[0]

    def snapshot_and_versions(
        self, at: dt.datetime, observed: Observed = NOTHING_OBSERVED
    ) -> tuple[Snapshot, dict[ObjectRef, str]]:
        """:meth:`snapshot`, and the ``metadata.resourceVersion`` of every object in it
        (refused ones too) as the state held them at that moment: the preconditions of
        the status patches computed from it."""
        with self._lock:
            entries = {kind: [e for _, e in sorted(by_key.items())] for kind, by_key in self._objects.items()}
            versions = {ObjectRef.of(e.resource): e.resource_version
                        for by_kind in entries.values() for e in by_kind if e.resource_version}
            versions.update({ref: r.resource_version for ref, r in self.refused.items() if r.resource_version})
        factories = [e.resource for e in entries["AIFactory"]]
        fleets = [e.resource for e in entries["EdgeFleet"]]
        workloads = [e.resource for e in entries["MeshWorkload"]]
        clusters = [e.resource for e in entries["MemberCluster"]]
        grid_events = [e.resource for e in entries["GridEvent"]]
        snapshot = Snapshot(
            [r for r in factories if isinstance(r, AIFactory)],
            [r for r in fleets if isinstance(r, EdgeFleet)],
            [r for r in workloads if isinstance(r, MeshWorkload)],
            at,
            clusters=[r for r in clusters if isinstance(r, MemberCluster)],
            observed=observed,
            grid_events=[r for r in grid_events if isinstance(r, GridEvent)],
        )
        return snapshot, versions

    def conflicted(self, refs: Iterable[ObjectRef], sent: Mapping[ObjectRef, str]) -> bool:
        """Status patches of ``refs`` were refused with 409 (sent with the versions
        ``sent``): the object changed after the snapshot. True when a solve is needed now
        (the state already holds a newer version, which may have changed only the status:
        its watch event did not call for a solve); otherwise the object's next watch event
        calls for one (:meth:`observe`)."""
        now = False
        with self._lock:
            for ref in refs:
                key = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
                entry = self._objects.get(ref.kind, {}).get(key)
                refused = self.refused.get(ref)
                held = entry.resource_version if entry is not None else refused.resource_version if refused else None
                if held is None:
                    continue  # deleted meanwhile: nothing to write
                if held != sent.get(ref):
                    now = True
                else:
                    self._stale.add(ref)
        return now

    def generations_of(self, refs: Iterable[ObjectRef]) -> dict[ObjectRef, int | None]:
        """The generation the state holds now of each of ``refs`` it still holds (newer
        than a snapshot's when the watch delivered a change since)."""
        with self._lock:
            found = {}
            for ref in refs:
                entry = self._objects.get(ref.kind, {}).get(_key(ref))
                if entry is not None:
                    found[ref] = entry.resource.metadata.generation
            return found

    def uids(self) -> dict[ObjectRef, str]:
        with self._lock:
            found = {ObjectRef.of(e.resource): e.uid for by_key in self._objects.values() for e in by_key.values()}
            found.update({ref: r.uid for ref, r in self.refused.items()})
            return found

    def uids_of(self, refs: Iterable[ObjectRef]) -> dict[ObjectRef, str]:
        """:meth:`uids` of ``refs`` only."""
        with self._lock:
            found = {}
            for ref in refs:
                entry = self._objects.get(ref.kind, {}).get(_key(ref))
                refused = self.refused.get(ref)
                uid = entry.uid if entry is not None else refused.uid if refused is not None else None
                if uid is not None:
                    found[ref] = uid
            return found

    def refused_objects(self) -> list[tuple[ObjectRef, Refused]]:
        with self._lock:
            return sorted(self.refused.items(), key=lambda item: item[0])

    def record_refused_status(
        self, ref: ObjectRef, status: dict[str, Any], sent: str | None = None, stored: str | None = None
    ) -> None:
        """``status`` was written for a refused object, with the precondition ``sent``;
        the server's new resourceVersion is ``stored``."""
        with self._lock:
            entry = self.refused.get(ref)
            if entry is not None:
                entry.status = status
                if stored and entry.resource_version == sent:
                    entry.resource_version = stored

    def record_statuses(
        self, outcome: Outcome, written: Iterable[ObjectRef], sent: Mapping[ObjectRef, str] | None = None,
        stored: Mapping[ObjectRef, str] | None = None,
    ) -> None:
        """The statuses just written are what the API server now holds. ``sent`` are the
        resourceVersions the patches were sent with, ``stored`` the ones the server
        answered: an object the watch has not delivered since the snapshot takes the
        new version, so the next patch's precondition holds."""
        sent = sent or {}
        stored = stored or {}
        by_kind: dict[str, Mapping[str, object]] = {"AIFactory": outcome.factories, "EdgeFleet": outcome.fleets, "MeshWorkload": outcome.workloads,
                   "MemberCluster": outcome.clusters, "GridEvent": outcome.grid_events}
        with self._lock:  # the objects written only: a solve that wrote one status touches one entry
            for ref in set(written):
                key = _key(ref)
                status = by_kind.get(ref.kind, {}).get(key)
                entry = self._objects.get(ref.kind, {}).get(key)
                if status is None or entry is None:
                    continue
                entry.resource = entry.resource.model_copy(update={"status": status})
                if ref in stored and entry.resource_version == sent.get(ref):
                    entry.resource_version = stored[ref]

    def take_spec_changed_at(self, ref: ObjectRef, generation: int | None) -> float | None:
        """When the watch delivered ``generation`` of ``ref`` (time.monotonic()), once:
        the solve loop asks when it has written that generation's first Placed status."""
        key = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
        with self._lock:
            entry = self._objects.get(ref.kind, {}).get(key)
            if entry is None or entry.resource.metadata.generation != generation:
                return None
            changed_at, entry.spec_changed_at = entry.spec_changed_at, None
            return changed_at

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {kind: len(by_key) for kind, by_key in self._objects.items()}

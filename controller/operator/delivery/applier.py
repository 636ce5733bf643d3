"""The applier: makes one cluster hold exactly the objects the core says it should.

One :class:`ClusterApplier` per target: the operator's own cluster (``local``: the
Deployments owned by their MeshWorkload, as before member clusters existed), a
member cluster (Deployments with origin labels, and their namespaces) or, for a member
delivered through Open Cluster Management, the ManifestWorks with origin labels in the
ManagedCluster's namespace of the hub (``resource=MANIFEST_WORKS``). Called by
:class:`controller.operator.delivery.layer.DeliveryLayer` after each solve with
:class:`controller.core.delivery.ClusterObjects`; :meth:`ClusterApplier.sync`:

- applies each desired object server-side (``PATCH``, ``application/apply-patch+yaml``,
  ``fieldManager=meshplane-operator``, ``force=true``) unless this process last
  applied exactly the same body (a hash per object, in memory), so an unchanged mesh
  sends nothing after the first round; a member's namespaces before its Deployments;
- lists what is ours there, the first time and after every :meth:`reset` (on taking
  the Lease, when a member comes back, every ``resync_every_s``), and deletes what is
  not desired any more, each with its uid as precondition. Ours means: locally,
  controlled by a MeshWorkload and labelled ``app.kubernetes.io/managed-by=meshplane``,
  per namespace of the mesh's workloads; in a member, labelled with this hub's
  ``meshplane.io/origin``, listed across namespaces (ManifestWorks: in the one
  namespace of their ManagedCluster). Nothing else is ever changed or deleted;
  namespaces are never deleted;
- asks the fence (the Lease) before each request; once it says no the rest is skipped
  and counted as fenced, and everything cached is forgotten;
- never raises for a failed request: errors are counted and logged. A body refused as
  invalid (400, 422, or the 500 of a body that does not fit the schema) is not sent
  again until it changes.

Rights it needs: ``apps/deployments`` patch, create, list, delete (locally per
namespace; in a member cluster-wide) and, in a member, ``namespaces`` patch and create
(the meshplane-member chart grants exactly these, plus the reads of the monitor); for
OCM, ``work.open-cluster-management.io/manifestworks`` the same, on the hub.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.resources import API_VERSION
from controller.core.delivery import ORIGIN_LABEL, ClusterObjects, origin_selector
from controller.core.materialise import MANAGED_SELECTOR, label_value
from controller.core.ocm import WORK_API_VERSION
from controller.operator.delivery.kubeconfig import get_json, request_json
from controller.operator.fence import Fence

log = logging.getLogger("meshplane.operator.delivery")

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "meshplane-operator"

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Resource:
    """The kind of object an applier keeps: where it lives in the API."""

    kind: str
    api_prefix: str  # /apis/<group>/<version>
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"{self.api_prefix}{scope}/{self.plural}" + (f"/{name}" if name else "")


DEPLOYMENTS = Resource("Deployment", "/apis/apps/v1", "deployments")
MANIFEST_WORKS = Resource("ManifestWork", f"/apis/{WORK_API_VERSION}", "manifestworks")


@dataclass
class ApplyStats:
    """Counts of one :meth:`ClusterApplier.sync` call, for logs, metrics and tests."""

    applied: int = 0  # apply requests that succeeded
    unchanged: int = 0  # desired bodies identical to the last applied: nothing sent
    deleted: int = 0  # objects deleted (not counted: already gone, or replaced since it was seen)
    errors: int = 0  # failed requests, refused bodies, name conflicts, undeliverable assignments
    fenced: int = 0  # requests skipped because the fence said no
    listed: int = 0  # listings (namespaces locally, the whole cluster in a member)

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def requests(self) -> int:
        """Requests that succeeded."""
        return self.applied + self.deleted + self.listed

    def add(self, other: ApplyStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class _Applied:
    digest: str
    uid: str  # of the object, for the delete precondition ("" if unknown)


def body_digest(body: dict[str, Any]) -> str:
    """A hash of an apply body (key order does not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _controlled_by_workload(item: dict[str, Any]) -> bool:
    refs = (item.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("kind") == "MeshWorkload" and r.get("apiVersion") == API_VERSION
               for r in refs)


def _refused(exc: ApiException) -> bool:
    """Whether the API server refused the body itself (sending it again cannot help):
    invalid (400, 422), or not of the object's schema (server-side apply answers that
    with a 500 "failed to create typed patch object")."""
    if exc.status in (400, 422):
        return True
    return exc.status == 500 and "failed to create typed patch object" in str(exc.body or "")


class ClusterApplier:
    """See the module docstring. ``hub`` set: a member cluster (origin labels, listed
    across namespaces, or in ``list_namespace`` only); None: the operator's own cluster
    (owner references)."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        name: str,
        hub: str | None = None,
        field_manager: str = FIELD_MANAGER,
        may_write: Callable[[], bool] = lambda: True,
        request_timeout_s: float = 10.0,
        max_concurrency: int = 8,
        resync_every_s: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
        resource: Resource = DEPLOYMENTS,
        list_namespace: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.name = name
        self.hub = hub
        self.resource = resource
        self.list_namespace = list_namespace
        self._client = api_client
        self.field_manager = field_manager
        self._may_write = may_write
        self.request_timeout_s = request_timeout_s
        self.max_concurrency = max_concurrency
        self.resync_every_s = resync_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._applied: dict[Key, _Applied] = {}  # Deployments this process applied and are stored
        self._namespaces: dict[str, str] = {}  # namespace -> digest applied (members)
        self._refused: dict[Key, str] = {}  # digest of a body the API server refused as invalid
        self._listed: set[str] = set()  # namespaces listed since the last reset ("*": the whole member)
        self._reset_at = monotonic()

    @property
    def member(self) -> bool:
        return self.hub is not None

    # ----------------------------------------------------------------- public

    def reset(self) -> None:
        """Forget what was applied and listed: the next sync applies every desired body
        and lists again (deleting what is not desired)."""
        with self._lock:
            self._applied.clear()
            self._namespaces.clear()
            self._refused.clear()
            self._listed.clear()
            self._reset_at = self._monotonic()

    def sync(self, objects: ClusterObjects, namespaces: Collection[str] = ()) -> ApplyStats:
        """Make the cluster hold ``objects``; locally, ``namespaces`` (those of every
        workload of the mesh) are where leftovers are looked for. Never raises for a
        failed request."""
        started = time.perf_counter()
        if self._monotonic() - self._reset_at >= self.resync_every_s:
            self.reset()
        stats = ApplyStats(errors=len(objects.problems))
        for problem in objects.problems:
            log.warning("delivery to %s: %s", self.name, problem)
        desired = objects.deployments
        fence = Fence(self._may_write, f"delivery to {self.name}")
        if not fence.allows():  # not leading: nothing to send, and what is cached may go stale
            stats.fenced += len(desired)
            self.reset()
            return stats
        with self._lock:
            known = dict(self._applied)
            listed = set(self._listed)
        stale: dict[Key, str] = {key: entry.uid for key, entry in known.items() if key not in desired}
        # 1. listings: leftovers of an earlier process, leader, or of a plan made while
        # this cluster was away
        if self.member:
            scope_all = self.list_namespace or "*"
            scopes = [] if scope_all in listed else [scope_all]
        else:
            scopes = sorted(({ns for ns, _ in desired} | set(namespaces) | {ns for ns, _ in known}) - listed)
        for scope in scopes:
            if not fence.allows():
                stats.fenced += 1
                continue
            found = self._list(scope, stats)
            if found is None:
                continue
            with self._lock:
                self._listed.add(scope)
            for key, uid in found.items():
                if key not in desired:
                    stale[key] = uid
        # 2. a member's namespaces, before the Deployments in them
        if self.member:
            self._apply_namespaces(objects.namespaces, fence, stats)
        # 3. applies of what changed, 4. deletes of what is not desired any more
        todo: list[Callable[[], None]] = []
        for key, body in sorted(desired.items()):
            digest = body_digest(body)
            entry = known.get(key)
            if entry is not None and entry.digest == digest:
                stats.unchanged += 1
                continue
            with self._lock:
                refused = self._refused.get(key) == digest
            if refused:
                stats.errors += 1  # still invalid; said when it was refused
                continue
            todo.append(functools.partial(self._apply, key, body, digest, fence, stats))
        for key, uid in sorted(stale.items()):
            todo.append(functools.partial(self._delete, key, uid, fence, stats))
        if len(todo) <= 1 or self.max_concurrency == 1:
            for job in todo:
                job()
        else:
            with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"meshplane-apply-{self.name}") as pool:
                list(pool.map(lambda job: job(), todo))
        if fence.closed.is_set():
            self.reset()  # another leader may write meanwhile: trust nothing cached
        if stats.errors or stats.fenced or stats.applied or stats.deleted:
            log.info("delivery to %s: %s in %.0f ms", self.name, stats.counts(), (time.perf_counter() - started) * 1e3)
        return stats

    # ----------------------------------------------------------------- internals

    def _list(self, scope: str, stats: ApplyStats) -> dict[Key, str] | None:
        """(namespace, name) -> uid of our objects in ``scope`` (a namespace, or ``*``:
        the whole member)."""
        selector = origin_selector(self.hub) if self.hub is not None else MANAGED_SELECTOR
        kind = self.resource.kind
        try:
            listed = get_json(self._client, self.resource.path(None if scope == "*" else scope),
                              {"labelSelector": selector}, self.request_timeout_s)
        except ApiException as exc:
            stats.errors += 1
            log.error("delivery to %s: listing %ss in %s failed: %s %s", self.name, kind, scope, exc.status,
                      exc.reason)
            return None
        except Exception as exc:
            stats.errors += 1
            log.error("delivery to %s: listing %ss in %s failed: %s", self.name, kind, scope, exc)
            return None
        with self._lock:
            stats.listed += 1
        found: dict[Key, str] = {}
        for item in listed.get("items") or []:
            metadata = item.get("metadata") or {}
            if not metadata.get("name") or not self._ours(item):
                continue
            found[(metadata.get("namespace") or "", metadata["name"])] = metadata.get("uid") or ""
        return found

    def _ours(self, item: dict[str, Any]) -> bool:
        if self.hub is None:
            return _controlled_by_workload(item)
        labels = (item.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(ORIGIN_LABEL) == label_value(self.hub))

    def _apply_query(self) -> dict[str, str]:
        return {"fieldManager": self.field_manager, "force": "true"}

    def _apply_namespaces(self, bodies: dict[str, dict[str, Any]], fence: Fence, stats: ApplyStats) -> None:
        for name, body in sorted(bodies.items()):
            digest = body_digest(body)
            with self._lock:
                if self._namespaces.get(name) == digest:
                    continue
            if not fence.allows():
                stats.fenced += 1
                return
            try:
                request_json(self._client, "PATCH", f"/api/v1/namespaces/{name}", self._apply_query(),
                             self.request_timeout_s, body=body, content_type=APPLY_PATCH)
            except Exception as exc:
                stats.errors += 1
                detail = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else str(exc)
                log.error("delivery to %s: applying Namespace %s failed: %s", self.name, name, detail)
                continue
            with self._lock:
                stats.applied += 1
                self._namespaces[name] = digest

    def _apply(self, key: Key, body: dict[str, Any], digest: str, fence: Fence, stats: ApplyStats) -> None:
        namespace, name = key
        if not fence.allows():
            with self._lock:
                stats.fenced += 1
            return
        try:
            # the answer as plain JSON: a typed Deployment costs more to build than the request
            stored = request_json(self._client, "PATCH", self.resource.path(namespace, name),
                                  self._apply_query(), self.request_timeout_s, body=body, content_type=APPLY_PATCH)
            uid = ((stored.get("metadata") if isinstance(stored, dict) else None) or {}).get("uid") or ""
        except ApiException as exc:
            with self._lock:
                stats.errors += 1
                self._applied.pop(key, None)
                if _refused(exc):
                    self._refused[key] = digest
            log.error("delivery to %s: applying %s %s/%s failed: %s %s %s",
                      self.name, self.resource.kind, namespace, name, exc.status, exc.reason, (exc.body or "")[:500])
            return
        except Exception as exc:
            with self._lock:
                stats.errors += 1
                self._applied.pop(key, None)
            log.error("delivery to %s: applying %s %s/%s failed: %s", self.name, self.resource.kind, namespace, name,
                      exc)
            return
        with self._lock:
            stats.applied += 1
            self._applied[key] = _Applied(digest, uid)
            self._refused.pop(key, None)

    def _delete(self, key: Key, uid: str, fence: Fence, stats: ApplyStats) -> None:
        namespace, name = key
        if not fence.allows():
            with self._lock:
                stats.fenced += 1
            return
        options: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        kind = self.resource.kind
        try:
            request_json(self._client, "DELETE", self.resource.path(namespace, name), None, self.request_timeout_s,
                         body={"apiVersion": "v1", "kind": "DeleteOptions", **options})
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or replaced by another (uid precondition)
                with self._lock:
                    stats.errors += 1
                log.error("delivery to %s: deleting %s %s/%s failed: %s %s", self.name, kind, namespace, name,
                          exc.status, exc.reason)
                return
        except Exception as exc:
            with self._lock:
                stats.errors += 1
            log.error("delivery to %s: deleting %s %s/%s failed: %s", self.name, kind, namespace, name, exc)
            return
        else:
            with self._lock:
                stats.deleted += 1
        with self._lock:
            self._applied.pop(key, None)
            self._refused.pop(key, None)


__all__ = ["APPLY_PATCH", "DEPLOYMENTS", "FIELD_MANAGER", "MANIFEST_WORKS", "ApplyStats", "ClusterApplier",
           "Resource", "body_digest"]

"""The materialiser: keeps one Deployment per assignment of every placed workload that
has a pod template (the bodies come from :mod:`controller.core.materialise`).

:meth:`Materialiser.sync` is given every workload of the mesh with its status and uid,
after each solve, and:

- applies each desired Deployment server-side (``PATCH``, ``Content-Type:
  application/apply-patch+yaml``, a JSON body, ``fieldManager=meshplane-operator``,
  ``force=true``), unless this process last applied exactly the same body (a hash per
  namespace/name, kept in memory), so an unchanged mesh sends nothing after the first
  round;
- deletes the Deployments it applied that are not desired any more, and, the first
  time it sees a namespace (and after every resync), lists that namespace's
  Deployments labelled ``app.kubernetes.io/managed-by=meshplane,meshplane.io/workload``
  to delete the ones left over by an earlier process or leader. Only Deployments
  controlled by a MeshWorkload are ever deleted, each with its uid as precondition;
- asks ``may_write()`` (the Lease) before each request; once it says no, the rest of
  the call is skipped and counted as fenced, and everything cached is forgotten: the
  next leader's writes may have changed what is stored, so the next round that may
  write applies and lists again (server-side apply of an unchanged body changes
  nothing on the server);
- forgets its cache every ``resync_every_s`` too, which repairs Deployments edited or
  deleted by hand;
- never raises for a failed request: errors are counted and logged. A body the API
  server refused as invalid (400, 422, or the 500 of a body that does not fit the
  Deployment schema: e.g. a bad pod template) is not sent again until it changes.

Every workload of the mesh must be given to each call: a Deployment of a workload not
given (in a namespace it lists) is deleted.

Needs exactly these RBAC verbs on ``apps/deployments``: ``patch`` and ``create``
(server-side apply is a PATCH; the API server also checks ``create`` when it creates the
Deployment), ``list`` and ``delete``. Clusters with the
``OwnerReferencesPermissionEnforcement`` admission plugin (OpenShift) also want
``update`` on ``meshworkloads/finalizers`` (group meshplane.io) for
``blockOwnerDeletion``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.models import MeshWorkloadStatus
from controller.api.resources import API_VERSION, MeshWorkload
from controller.core.materialise import MANAGED_SELECTOR, materialise

log = logging.getLogger("meshplane.operator.materialiser")

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "meshplane-operator"

Key = tuple[str, str]  # (namespace, name)


@dataclass
class MaterialiseStats:
    """Counts of one :meth:`Materialiser.sync` call, for logs, metrics and tests."""

    applied: int = 0  # apply requests that succeeded
    unchanged: int = 0  # desired bodies identical to the last applied: nothing sent
    deleted: int = 0  # Deployments deleted (not counted: already gone, or replaced since it was seen)
    errors: int = 0  # failed requests, refused bodies, name conflicts, unmaterialisable assignments
    fenced: int = 0  # requests skipped because may_write() said no
    listed: int = 0  # namespaces listed

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def requests(self) -> int:
        """Requests that succeeded."""
        return self.applied + self.deleted + self.listed


@dataclass(frozen=True)
class _Applied:
    digest: str
    uid: str  # of the Deployment, for the delete precondition ("" if unknown)


def body_digest(body: dict[str, Any]) -> str:
    """A hash of an apply body (key order does not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _controlled_by_workload(item: Any) -> bool:
    refs = getattr(item.metadata, "owner_references", None) or []
    return any(r.controller and r.kind == "MeshWorkload" and r.api_version == API_VERSION for r in refs)


def _refused(exc: ApiException) -> bool:
    """Whether the API server refused the body itself (sending it again cannot help):
    invalid (400, 422), or not of the Deployment's schema (server-side apply answers
    that with a 500 "failed to create typed patch object")."""
    if exc.status in (400, 422):
        return True
    return exc.status == 500 and "failed to create typed patch object" in str(exc.body or "")


class _Fence:
    """may_write(), asked before each request of one call; closed after its first no."""

    def __init__(self, may_write: Callable[[], bool]) -> None:
        self._may_write = may_write
        self.closed = threading.Event()

    def allows(self) -> bool:
        if self.closed.is_set():
            return False
        try:
            allowed = bool(self._may_write())
        except Exception:  # a broken fence is a closed fence
            log.exception("materialiser: may_write() failed; not writing")
            allowed = False
        if not allowed:
            self.closed.set()
        return allowed


class Materialiser:
    """See the module docstring."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        field_manager: str = FIELD_MANAGER,
        may_write: Callable[[], bool] = lambda: True,
        request_timeout_s: float = 10.0,
        max_concurrency: int = 8,
        resync_every_s: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self.field_manager = field_manager
        self._may_write = may_write
        self.request_timeout_s = request_timeout_s
        self.max_concurrency = max_concurrency
        self.resync_every_s = resync_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._applied: dict[Key, _Applied] = {}  # what this process applied and is stored
        self._refused: dict[Key, str] = {}  # digest of a body the API server refused as invalid
        self._listed: set[str] = set()  # namespaces listed since the last reset
        self._reset_at = monotonic()

    # ----------------------------------------------------------------- public

    def reset(self) -> None:
        """Forget what was applied and listed: the next sync applies every desired body
        and lists every namespace again."""
        with self._lock:
            self._applied.clear()
            self._refused.clear()
            self._listed.clear()
            self._reset_at = self._monotonic()

    def sync(self, workloads: Iterable[tuple[MeshWorkload, MeshWorkloadStatus, str]]) -> MaterialiseStats:
        """Make the Deployments match the workloads (every workload of the mesh, with its
        status and ``metadata.uid``); never raises for a failed request."""
        started = time.perf_counter()
        if self._monotonic() - self._reset_at >= self.resync_every_s:
            self.reset()
        stats = MaterialiseStats()
        desired: dict[Key, dict[str, Any]] = {}
        owners: dict[Key, str] = {}
        namespaces: set[str] = set()
        for workload, status, uid in workloads:
            namespace = workload.metadata.namespace or "default"
            namespaces.add(namespace)
            result = materialise(workload, status, uid)
            for problem in result.problems:
                stats.errors += 1
                log.warning("materialiser: %s", problem)
            for body in result.deployments:
                key = (namespace, body["metadata"]["name"])
                if key in desired:
                    stats.errors += 1
                    log.error("materialiser: Deployment %s/%s is wanted by MeshWorkloads %s and %s; kept for %s",
                              *key, owners[key], workload.metadata.name, owners[key])
                    continue
                desired[key] = body
                owners[key] = workload.metadata.name

        fence = _Fence(self._may_write)
        if not fence.allows():  # not leading: nothing to send, and what is cached may go stale
            stats.fenced += len(desired)
            self.reset()
            return stats
        with self._lock:
            known = dict(self._applied)
            namespaces |= {ns for ns, _ in known}
            to_list = sorted(namespaces - self._listed)
        # 1. listings: leftovers of an earlier process or leader
        stale: dict[Key, str] = {key: entry.uid for key, entry in known.items() if key not in desired}
        for namespace in to_list:
            if not fence.allows():
                stats.fenced += 1
                continue
            listed = self._list(namespace, stats)
            if listed is None:
                continue
            with self._lock:
                self._listed.add(namespace)
            for name, uid in listed.items():
                if (namespace, name) not in desired:
                    stale[(namespace, name)] = uid
        # 2. applies of what changed, 3. deletes of what is not desired any more
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
            with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="meshplane-materialiser") as pool:
                list(pool.map(lambda job: job(), todo))
        if fence.closed.is_set():
            self.reset()  # another leader may write meanwhile: trust nothing cached
        if stats.errors or stats.fenced or stats.applied or stats.deleted:
            log.info("materialiser: %s in %.0f ms", stats.counts(), (time.perf_counter() - started) * 1e3)
        return stats

    # ----------------------------------------------------------------- internals

    def _list(self, namespace: str, stats: MaterialiseStats) -> dict[str, str] | None:
        """name -> uid of the Deployments meshplane materialised in ``namespace``."""
        try:
            listed = self._apps.list_namespaced_deployment(
                namespace, label_selector=MANAGED_SELECTOR, _request_timeout=self.request_timeout_s
            )
        except ApiException as exc:
            stats.errors += 1
            log.error("materialiser: listing Deployments in %s failed: %s %s", namespace, exc.status, exc.reason)
            return None
        except Exception as exc:
            stats.errors += 1
            log.error("materialiser: listing Deployments in %s failed: %s", namespace, exc)
            return None
        with self._lock:
            stats.listed += 1
        found: dict[str, str] = {}
        for item in listed.items or []:
            if item.metadata is not None and item.metadata.name and _controlled_by_workload(item):
                found[item.metadata.name] = item.metadata.uid or ""
        return found

    def _apply(self, key: Key, body: dict[str, Any], digest: str, fence: _Fence, stats: MaterialiseStats) -> None:
        namespace, name = key
        if not fence.allows():
            with self._lock:
                stats.fenced += 1
            return
        try:
            stored = self._apps.patch_namespaced_deployment(
                name, namespace, body, field_manager=self.field_manager, force=True,
                _content_type=APPLY_PATCH, _request_timeout=self.request_timeout_s,
            )
        except ApiException as exc:
            with self._lock:
                stats.errors += 1
                self._applied.pop(key, None)
                if _refused(exc):
                    self._refused[key] = digest
            log.error("materialiser: applying Deployment %s/%s failed: %s %s %s",
                      namespace, name, exc.status, exc.reason, (exc.body or "")[:500])
            return
        except Exception as exc:
            with self._lock:
                stats.errors += 1
                self._applied.pop(key, None)
            log.error("materialiser: applying Deployment %s/%s failed: %s", namespace, name, exc)
            return
        uid = getattr(getattr(stored, "metadata", None), "uid", None) or ""
        with self._lock:
            stats.applied += 1
            self._applied[key] = _Applied(digest, uid)
            self._refused.pop(key, None)

    def _delete(self, key: Key, uid: str, fence: _Fence, stats: MaterialiseStats) -> None:
        namespace, name = key
        if not fence.allows():
            with self._lock:
                stats.fenced += 1
            return
        options: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            self._apps.delete_namespaced_deployment(
                name, namespace, body=kubernetes.client.V1DeleteOptions.model_validate(options),
                _request_timeout=self.request_timeout_s,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or replaced by another (uid precondition)
                with self._lock:
                    stats.errors += 1
                log.error("materialiser: deleting Deployment %s/%s failed: %s %s", namespace, name, exc.status,
                          exc.reason)
                return
        except Exception as exc:
            with self._lock:
                stats.errors += 1
            log.error("materialiser: deleting Deployment %s/%s failed: %s", namespace, name, exc)
            return
        else:
            with self._lock:
                stats.deleted += 1
        with self._lock:
            self._applied.pop(key, None)
            self._refused.pop(key, None)


__all__ = ["APPLY_PATCH", "FIELD_MANAGER", "MaterialiseStats", "Materialiser", "body_digest"]

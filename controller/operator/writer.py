"""The writer: writes what the core says must change, and nothing more.

:func:`controller.core.changes.changes` gives, per object, a JSON merge patch of
``/status`` (or None) and the Events of its transitions. :class:`StatusWriter` sends
them to the API server:

- one ``PATCH .../status`` per object and call, ``Content-Type:
  application/merge-patch+json`` (a ``null`` deletes a field), in a thread pool of
  ``max_concurrency``; a 404 means the object was deleted meanwhile (counted, skipped);
  any other error is counted and logged with the object named, never raised, so one bad
  object does not stop the others;
- optimistic concurrency: given the ``metadata.resourceVersion`` each object had in the
  snapshot the status was computed from (``Change.version``), the patch carries it as a
  precondition, so the API server answers 409 Conflict when the object changed since
  (its spec, or a status someone else wrote). Such a patch is dropped, not retried: it
  was computed from what is no longer there (the next solve computes it again; see
  :meth:`controller.operator.state.MeshState.conflicted`). The objects are returned in
  ``WriteStats.conflicted``, and each stored patch's new resourceVersion in
  ``WriteStats.versions``;
- core/v1 Events (what ``kubectl describe`` lists), once every status patch of the call
  is sent (statuses are what placement and users act on), and only for objects whose
  status patch succeeded (when it fails, the next reconcile computes the same
  transition again). With ``events_in_background`` (the operator), :meth:`write`
  returns once the statuses are stored and the Events are sent by one background
  thread, batch after batch in the order of the calls (so an object's Events keep
  their order), the fence asked before each of them too; their counts go to
  ``on_event_stats``. The solve loop then plans again while they are being sent.
  The same (involvedObject, type, reason, message) emitted again by this writer
  updates its Event (``count`` + 1, ``lastTimestamp``) instead of creating another,
  like client-go's event correlator; the names of the Events created are kept in a
  bounded LRU;
- ``may_write()`` (the Lease) is asked before EACH request: once it says no, the rest
  of the batch is skipped and counted as fenced.

Events of namespaced objects go to the object's namespace. Events of cluster-scoped
sites go to ``events_namespace``; the API server accepts an Event whose involvedObject
has no namespace only in ``default`` (core/v1 Event validation), so in any other
namespace the involvedObject carries that namespace, and ``kubectl describe aifactory
NAME`` (which looks for ``involvedObject.namespace=""``) lists them only when
``events_namespace`` is ``default``.

Needs exactly these RBAC verbs: ``patch`` on ``aifactories/status``,
``edgefleets/status`` and ``meshworkloads/status`` (group meshplane.io), and
``create`` and ``patch`` on core ``events``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import queue
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.resources import API_VERSION, GROUP, KINDS, VERSION
from controller.core.changes import Change, Event, ObjectRef, combine_patches
from controller.operator.fence import Fence

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
MESSAGE_LIMIT = 1024  # bytes, as the API server counts them (Event note length limit)
NAME_LIMIT = 253
EVENT_CACHE_SIZE = 4096
_ELLIPSIS = "..."


@dataclass
class WriteStats:
    """Counts of one :meth:`StatusWriter.write` call, for logs, metrics and tests."""

    status_patches: int = 0
    events_created: int = 0
    events_updated: int = 0  # a repeat of the same event bumped count/lastTimestamp
    not_found: int = 0  # 404: the object was deleted meanwhile: skipped, not an error
    conflicts: int = 0  # 409
    errors: int = 0
    fenced: int = 0  # requests skipped because may_write() said no
    written: set[ObjectRef] = field(default_factory=set)  # objects whose status patch succeeded
    fenced_refs: set[ObjectRef] = field(default_factory=set)  # objects whose status patch was fenced
    conflicted: set[ObjectRef] = field(default_factory=set)  # 409: the object changed since its snapshot
    versions: dict[ObjectRef, str] = field(default_factory=dict)  # resourceVersion after each stored patch

    def add(self, other: WriteStats) -> None:
        for f in fields(self):
            if f.name in _SETS:
                getattr(self, f.name).update(getattr(other, f.name))
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def requests(self) -> int:
        """Requests that succeeded."""
        return self.status_patches + self.events_created + self.events_updated

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _SETS}


_SETS = ("written", "fenced_refs", "conflicted", "versions")


# --------------------------------------------------------------------------- pure helpers


def plural_of(kind: str) -> str:
    """The resource plural of one of our kinds (``MeshWorkload`` -> ``meshworkloads``)."""
    try:
        return KINDS[kind].plural
    except KeyError:
        raise ValueError(f"not a meshplane kind: {kind!r}") from None


def truncate_message(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` cut to at most ``limit`` UTF-8 bytes, ending in ``...`` when cut."""
    if len(message.encode()) <= limit:
        return message
    budget = limit - len(_ELLIPSIS)
    cut = message.encode()[:budget].decode(errors="ignore")  # never half a character
    return cut + _ELLIPSIS


def event_key(event: Event) -> Event:
    """What makes two events "the same" for deduplication: involvedObject, type, reason
    and the message as it is sent (truncated)."""
    return Event(event.involved, event.type, event.reason, truncate_message(event.message))


def event_name(object_name: str, key: Event, salt: str = "") -> str:
    """``<object name>.<16 hex digits>``, a valid name of at most 253 characters.

    The digits hash the key and ``salt``; the writer salts with its instance and a
    creation counter, so a restarted writer (or one whose cache forgot the key)
    creates a new Event instead of colliding with an old one, as client-go does.
    """
    digest = hashlib.sha256(repr((salt, key)).encode()).hexdigest()[:16]
    prefix = object_name[: NAME_LIMIT - len(digest) - 1].rstrip(".-")
    return f"{prefix}.{digest}" if prefix else digest


def event_namespace(ref: ObjectRef, events_namespace: str) -> str:
    """Where the Event of ``ref`` is stored."""
    return ref.namespace or events_namespace


def involved_object(ref: ObjectRef, events_namespace: str, uid: str | None = None) -> dict[str, Any]:
    """The ``involvedObject`` of an Event about ``ref`` (see the module docstring for
    the namespace of cluster-scoped sites)."""
    obj: dict[str, Any] = {"apiVersion": API_VERSION, "kind": ref.kind, "name": ref.name}
    namespace = ref.namespace or (events_namespace if events_namespace != "default" else None)
    if namespace:
        obj["namespace"] = namespace
    if uid:
        obj["uid"] = uid
    return obj


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(ref: ObjectRef) -> str:
    return f"{ref.kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind} {ref.name}"


@dataclass
class _Recorded:
    name: str
    namespace: str
    count: int
    first_timestamp: str


# --------------------------------------------------------------------------- the writer


class StatusWriter:
    """Writes :class:`~controller.core.changes.Change` s: status merge patches and Events."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        events_namespace: str,
        component: str = "meshplane-operator",
        max_concurrency: int = 8,
        request_timeout_s: float = 10.0,
        may_write: Callable[[], bool] = lambda: True,
        instance: str | None = None,
        event_cache_size: int = EVENT_CACHE_SIZE,
        events_in_background: bool = False,
        on_event_stats: Callable[[WriteStats], None] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self.events_namespace = events_namespace
        self.component = component
        self.instance = (instance or socket.gethostname())[:128]
        self.max_concurrency = max_concurrency
        self.request_timeout_s = request_timeout_s
        self._may_write = may_write
        self._salt = f"{self.instance}/{uuid.uuid4().hex}"
        self._serial = itertools.count()
        self._events: OrderedDict[Event, _Recorded] = OrderedDict()
        self._cache_size = event_cache_size
        self._lock = threading.Lock()
        # one pool for the status patches and one for the Events, kept for the writer's
        # life (not a pool of new threads per call)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._on_event_stats = on_event_stats
        self._event_batches: queue.Queue[list[tuple[list[Event], str | None]] | None] | None = None
        self._event_thread: threading.Thread | None = None
        if events_in_background:
            self._event_batches = queue.Queue()
            self._event_thread = threading.Thread(target=self._send_events, name="meshplane-events", daemon=True)
            self._event_thread.start()

    # ----------------------------------------------------------------- public

    def write(self, changes: Iterable[Change], uids: Mapping[ObjectRef, str] | None = None) -> WriteStats:
        """Write every change; never raises for a failed request (see :class:`WriteStats`).

        ``uids`` gives the ``metadata.uid`` of the objects, for the Events'
        ``involvedObject.uid`` (``kubectl describe`` matches on it when it is known).
        A change's ``version`` (the ``metadata.resourceVersion`` it was computed from)
        is sent as the precondition of its status patch.
        """
        merged: dict[ObjectRef, tuple[dict[str, Any] | None, list[Event]]] = {}
        versions: dict[ObjectRef, str] = {}
        for change in changes:
            patch, events = merged.setdefault(change.ref, (None, []))
            if change.patch is not None:
                patch = combine_patches(patch if patch is not None else {}, change.patch)
            events.extend(change.events)
            merged[change.ref] = (patch, events)
            if change.version:
                versions[change.ref] = change.version
        stats = WriteStats()
        if not merged:
            return stats
        fence = Fence(self._may_write, "status writer")  # closed at its first no: the rest is skipped
        uids = uids or {}
        # every status first, then the Events of the objects whose status is stored: a
        # status is what placement and users act on; its Event only tells the story
        patches = [(ref, patch, versions.get(ref), fence) for ref, (patch, _) in merged.items()]
        for result in self._map("status", lambda job: self._write_status(*job), patches):
            stats.add(result)
        failed = {ref for ref, (patch, _) in merged.items() if patch is not None and ref not in stats.written}
        if self._event_batches is not None:
            batch = [(events, uids.get(ref)) for ref, (_, events) in merged.items() if events and ref not in failed]
            if batch:
                self._event_batches.put(batch)
        else:
            recorded = [(events, uids.get(ref), fence) for ref, (_, events) in merged.items()
                        if events and ref not in failed]
            for result in self._map("events", lambda job: self._write_events(*job), recorded):
                stats.add(result)
        # the Events of a status that was fenced are fenced too
        stats.fenced += sum(len(merged[ref][1]) for ref in failed if ref in stats.fenced_refs)
        if stats.errors or stats.fenced:
            log.warning("status writer: %s", stats.counts())
        elif stats.conflicts:  # expected when specs change while a solve runs
            log.info("status writer: %d stale status patch(es) dropped (409: changed since the snapshot)",
                     stats.conflicts)
        return stats

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every Event handed to the background thread is sent; True when
        none is left (at once without ``events_in_background``)."""
        if self._event_batches is None:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._event_batches.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop the background thread, once the Events handed to it are sent (at most
        10 s; what is left then is dropped), and the pools."""
        if self._event_batches is not None and self._event_thread is not None:
            self._event_batches.put(None)
            self._event_thread.join(timeout=10)
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------------- internals

    def _send_events(self) -> None:
        assert self._event_batches is not None
        while True:
            batch = self._event_batches.get()
            try:
                if batch is None:
                    return
                fence = Fence(self._may_write, "event writer")
                stats = WriteStats()
                jobs = [(events, uid, fence) for events, uid in batch]
                for result in self._map("events", lambda job: self._write_events(*job), jobs):
                    stats.add(result)
                if stats.errors or stats.fenced:
                    log.warning("event writer: %s", stats.counts())
                if self._on_event_stats is not None:
                    self._on_event_stats(stats)
            except Exception:  # never let one batch stop the thread
                log.exception("event writer: a batch failed")
            finally:
                self._event_batches.task_done()

    def _map(self, purpose: str, job: Callable[[Any], WriteStats], items: list[Any]) -> list[WriteStats]:
        if self.max_concurrency == 1 or len(items) <= 1:
            return [job(item) for item in items]
        with self._lock:
            pool = self._pools.get(purpose)
            if pool is None:
                pool = self._pools[purpose] = ThreadPoolExecutor(
                    self.max_concurrency, thread_name_prefix=f"meshplane-writer-{purpose}")
        return list(pool.map(job, items))

    def _write_status(
        self, ref: ObjectRef, patch: dict[str, Any] | None, version: str | None, fence: Fence
    ) -> WriteStats:
        stats = WriteStats()
        if patch is None:
            return stats
        if not fence.allows():
            stats.fenced += 1
            stats.fenced_refs.add(ref)
            return stats
        if version:  # the precondition: 409 when the object is no longer what the patch was computed from
            patch = {**patch, "metadata": {"resourceVersion": version}}
        if self._patch_status(ref, patch, stats):
            stats.written.add(ref)
        return stats  # deleted, refused, stale or fenced: its events wait for a stored status

    def _write_events(self, events: list[Event], uid: str | None, fence: Fence) -> WriteStats:
        stats = WriteStats()
        for index, event in enumerate(events):
            if not fence.allows():
                stats.fenced += len(events) - index
                break
            self._record(event, uid, fence, stats)
        return stats

    def _patch_status(self, ref: ObjectRef, patch: dict[str, Any], stats: WriteStats) -> bool:
        try:
            plural = plural_of(ref.kind)
            if ref.namespace:
                stored = self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, ref.namespace, plural, ref.name, patch,
                    _content_type=MERGE_PATCH, _request_timeout=self.request_timeout_s,
                )
            else:
                stored = self._custom.patch_cluster_custom_object_status(
                    GROUP, VERSION, plural, ref.name, patch,
                    _content_type=MERGE_PATCH, _request_timeout=self.request_timeout_s,
                )
        except ApiException as exc:
            if exc.status == 409:
                stats.conflicted.add(ref)
            self._count_failure(exc, f"status of {_describe(ref)}", stats)
            return False
        except Exception as exc:
            stats.errors += 1
            log.error("status writer: patching the status of %s failed: %s", _describe(ref), exc)
            return False
        stats.status_patches += 1
        version = ((stored or {}).get("metadata") or {}).get("resourceVersion") if isinstance(stored, dict) else None
        if version:
            stats.versions[ref] = str(version)
        return True

    def _count_failure(self, exc: ApiException, what: str, stats: WriteStats) -> None:
        if exc.status == 404:
            stats.not_found += 1
            log.info("status writer: %s: not found (deleted meanwhile); skipped", what)
        elif exc.status == 409:
            stats.conflicts += 1
            log.debug("status writer: %s: conflict: %s", what, exc.reason)
        else:
            stats.errors += 1
            log.error("status writer: %s failed: %s %s %s", what, exc.status, exc.reason, (exc.body or "")[:500])

    def _record(self, event: Event, uid: str | None, fence: Fence, stats: WriteStats) -> None:
        key = event_key(event)
        with self._lock:
            recorded = self._events.get(key)
            if recorded is not None:
                self._events.move_to_end(key)
        now = _now()
        what = f"event {key.reason} of {_describe(event.involved)}"
        if recorded is not None:
            body = {"count": recorded.count + 1, "lastTimestamp": now}
            try:
                self._core.patch_namespaced_event(
                    recorded.name, recorded.namespace, body,
                    _content_type=MERGE_PATCH, _request_timeout=self.request_timeout_s,
                )
            except ApiException as exc:
                if exc.status != 404:
                    self._count_failure(exc, what, stats)
                    return
                # expired (events live an hour) or deleted: record it anew
                with self._lock:
                    self._events.pop(key, None)
            except Exception as exc:
                stats.errors += 1
                log.error("status writer: %s failed: %s", what, exc)
                return
            else:
                recorded.count += 1
                stats.events_updated += 1
                return
            if not fence.allows():
                stats.fenced += 1
                return
        self._create(key, uid, now, what, stats)

    def _create(self, key: Event, uid: str | None, now: str, what: str, stats: WriteStats) -> None:
        ref = key.involved
        namespace = event_namespace(ref, self.events_namespace)
        name = event_name(ref.name, key, f"{self._salt}/{next(self._serial)}")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved_object(ref, self.events_namespace, uid),
            "type": key.type,
            "reason": key.reason,
            "message": key.message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._core.create_namespaced_event(
                namespace, kubernetes.client.CoreV1Event.model_validate(body), _request_timeout=self.request_timeout_s
            )
        except ApiException as exc:
            self._count_failure(exc, what, stats)
            return
        except Exception as exc:
            stats.errors += 1
            log.error("status writer: %s failed: %s", what, exc)
            return
        stats.events_created += 1
        with self._lock:
            self._events[key] = _Recorded(name, namespace, 1, now)
            self._events.move_to_end(key)
            while len(self._events) > self._cache_size:
                self._events.popitem(last=False)


__all__ = [
    "StatusWriter",
    "WriteStats",
    "event_key",
    "event_name",
    "involved_object",
    "plural_of",
    "truncate_message",
]

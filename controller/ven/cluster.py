"""What ``meshplane-ven`` reads and writes in the cluster, and nothing more.

- **Reads**: its own GridEvents (``list`` by the labels it puts on them:
  ``app.kubernetes.io/managed-by=meshplane-ven,meshplane.io/openadr-vtn=<vtn>``) and
  the AIFactories (``list``: their names, and ``status.power.allocatedMW`` for the
  reports).
- **Writes**, each only while ``may_write()`` (the Lease) says yes:
  - a GridEvent: server-side apply (``PATCH``, ``application/apply-patch+yaml``,
    field manager ``meshplane-ven``, ``force``), so the VEN owns its spec and the
    fields it sets and nothing else (an ``kubectl annotate`` of a user is kept);
  - ``status.lastReport``: server-side apply on the status subresource, same manager
    (the operator writes the rest of the status with merge patches and carries
    ``lastReport`` over);
  - the stale annotation ``meshplane.io/source-stale-since``: a JSON merge patch
    (``null`` removes it), so applying the spec never touches it and marking stale
    never touches the spec;
  - Kubernetes Events about GridEvents, through the operator's
    :class:`~controller.operator.writer.StatusWriter` (a repeat bumps ``count``).

Needs exactly (docs/ven.md, helm/meshplane/templates/ven.yaml): gridevents get, list,
watch, create, patch; gridevents/status get, patch; aifactories get, list; events
create, patch; and its Lease (get, create, update) in its namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.resources import GROUP, VERSION
from controller.core.changes import Change, Event, EventType, ObjectRef
from controller.core.grid_statuses import STALE_ANNOTATION
from controller.core.openadr import MANAGER, own_selector
from controller.operator.delivery.kubeconfig import request_json
from controller.operator.writer import StatusWriter

log = logging.getLogger("meshplane.ven.cluster")

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
GRIDEVENTS = f"/apis/{GROUP}/{VERSION}/gridevents"
AIFACTORIES = f"/apis/{GROUP}/{VERSION}/aifactories"


class NotLeading(RuntimeError):
    """A write was skipped: this replica does not hold the Lease."""


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason} {(exc.body or '')[:300]}".strip()
    return f"{type(exc).__name__}: {exc}"


class Cluster:
    """The VEN's calls to the API server (blocking: the VEN runs them in a thread)."""

    def __init__(self, api_client: kubernetes.client.ApiClient, *, events_namespace: str, identity: str,
                 request_timeout_s: float = 10.0, may_write: Callable[[], bool] = lambda: True) -> None:
        self._client = api_client
        self._timeout = request_timeout_s
        self._may_write = may_write
        self._writer = StatusWriter(api_client, events_namespace=events_namespace, component=MANAGER,
                                    max_concurrency=1, request_timeout_s=request_timeout_s, may_write=may_write,
                                    instance=identity)

    # ------------------------------------------------------------------ reads

    def own_grid_events(self, vtn: str) -> list[dict[str, Any]]:
        listed = request_json(self._client, "GET", GRIDEVENTS, {"labelSelector": own_selector(vtn)}, self._timeout)
        return list(listed.get("items") or []) if isinstance(listed, dict) else []

    def factories(self) -> list[dict[str, Any]]:
        listed = request_json(self._client, "GET", AIFACTORIES, None, self._timeout)
        return list(listed.get("items") or []) if isinstance(listed, dict) else []

    # ------------------------------------------------------------------ writes

    def _fence(self) -> None:
        if not self._may_write():
            raise NotLeading("not the Lease holder: write skipped")

    def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply of a whole GridEvent (spec, labels, annotations)."""
        self._fence()
        request_json(self._client, "PATCH", f"{GRIDEVENTS}/{manifest['metadata']['name']}",
                     {"fieldManager": MANAGER, "force": "true"}, self._timeout, body=manifest,
                     content_type=APPLY_PATCH)

    def apply_status(self, body: dict[str, Any]) -> None:
        """Server-side apply on the status subresource (``status.lastReport``)."""
        self._fence()
        request_json(self._client, "PATCH", f"{GRIDEVENTS}/{body['metadata']['name']}/status",
                     {"fieldManager": MANAGER, "force": "true"}, self._timeout, body=body,
                     content_type=APPLY_PATCH)

    def mark_stale(self, name: str, since: str | None) -> None:
        """Set (``since``) or remove (None) the stale annotation of one GridEvent."""
        self._fence()
        request_json(self._client, "PATCH", f"{GRIDEVENTS}/{name}", {"fieldManager": MANAGER}, self._timeout,
                     body={"metadata": {"annotations": {STALE_ANNOTATION: since}}}, content_type=MERGE_PATCH)

    def record(self, events: Iterable[tuple[str, str | None, EventType, str, str]]) -> None:
        """Kubernetes Events: (GridEvent name, its uid, type, reason, message) each. Never raises."""
        events = list(events)
        changes = [Change(ObjectRef("GridEvent", name), None, (Event(ObjectRef("GridEvent", name), kind, reason,
                                                                      message),))
                   for name, _, kind, reason, message in events]
        uids = {ObjectRef("GridEvent", name): uid for name, uid, *_ in events if uid}
        if changes:
            try:
                self._writer.write(changes, uids=uids)
            except Exception:  # Events tell the story; they never stop the VEN
                log.exception("recording Events failed")


__all__ = ["AIFACTORIES", "GRIDEVENTS", "Cluster", "NotLeading", "describe"]

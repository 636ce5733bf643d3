"""Placement scores for Open Cluster Management: each ManagedCluster's headroom, published.

Called by :class:`controller.operator.sinks.PlacementScoreSink` after each plan (leader
only), when the chart's ``delivery.ocm.placementScores`` is on. For every MemberCluster
with ``spec.ocm`` it keeps one ``AddOnPlacementScore`` named ``meshplane`` in the
ManagedCluster's namespace of the hub (this cluster), whose ``status.scores`` are the
free power and accelerator shares of the cluster's sites
(:func:`controller.core.ocm.placement_scores`). OCM's Placement can then prefer
clusters with headroom (a ``prioritizerPolicy`` with ``scoreCoordinate: {type: AddOn,
addOn: {resourceName: meshplane, scoreName: freePowerPercent}}``) for other tools;
meshplane's own placements never go through it.

Writes only what changed: the scores last written (or read back once, after a start or
a new Lease) are remembered per ManagedCluster, so an unchanged mesh sends nothing. The
score carries no ``validUntil`` (it would force a write each period): when meshplane
stops, the last scores stay until an admin deletes them (labelled with the origin).
Rights: ``addonplacementscores`` get and create, ``addonplacementscores/status`` patch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.core.delivery import ORIGIN_LABEL
from controller.core.materialise import MANAGED_BY, MANAGED_BY_LABEL, label_value
from controller.core.ocm import CLUSTER_GROUP, PLACEMENT_SCORE_NAME
from controller.operator.delivery.kubeconfig import get_json, request_json
from controller.operator.delivery.monitor import short_error

log = logging.getLogger("meshplane.operator.delivery")

_API = f"/apis/{CLUSTER_GROUP}/v1alpha1"
MERGE_PATCH = "application/merge-patch+json"


class PlacementScorePublisher:
    """See the module docstring."""

    def __init__(
        self, client: kubernetes.client.ApiClient, hub: str, may_write: Callable[[], bool],
        request_timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._hub = hub
        self._may_write = may_write
        self._timeout = request_timeout_s
        self._written: dict[str, list[dict[str, Any]]] = {}

    def forget(self) -> None:
        """Trust nothing remembered (a new leader): read each score back before writing."""
        self._written.clear()

    def publish(self, scores: Mapping[str, list[dict[str, Any]]]) -> None:
        """Make each ManagedCluster's score hold ``scores[name]``. Never raises."""
        for managed_cluster, wanted in sorted(scores.items()):
            if self._written.get(managed_cluster) == wanted:
                continue
            if not self._may_write():
                self.forget()
                return
            try:
                self._publish(managed_cluster, wanted)
            except ApiException as exc:
                self._written.pop(managed_cluster, None)
                log.error("placement score of ManagedCluster %s: %s %s", managed_cluster, short_error(exc),
                          (exc.body or "")[:300])
            except Exception as exc:
                self._written.pop(managed_cluster, None)
                log.error("placement score of ManagedCluster %s: %s", managed_cluster, short_error(exc))

    def _publish(self, managed_cluster: str, wanted: list[dict[str, Any]]) -> None:
        path = f"{_API}/namespaces/{managed_cluster}/addonplacementscores"
        if managed_cluster not in self._written:  # not known since a start or a new Lease: read it first
            try:
                held = get_json(self._client, f"{path}/{PLACEMENT_SCORE_NAME}", None, self._timeout)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                held = None
            if held is None:
                request_json(self._client, "POST", path, None, self._timeout, body={
                    "apiVersion": f"{CLUSTER_GROUP}/v1alpha1", "kind": "AddOnPlacementScore",
                    "metadata": {"name": PLACEMENT_SCORE_NAME, "namespace": managed_cluster,
                                 "labels": {MANAGED_BY_LABEL: MANAGED_BY, ORIGIN_LABEL: label_value(self._hub)}},
                })
            elif ((held.get("status") or {}).get("scores") or []) == wanted:
                self._written[managed_cluster] = wanted
                return
            if not self._may_write():
                self.forget()
                return
        request_json(self._client, "PATCH", f"{path}/{PLACEMENT_SCORE_NAME}/status", None, self._timeout,
                     body={"status": {"scores": wanted}}, content_type=MERGE_PATCH)
        self._written[managed_cluster] = wanted


__all__ = ["PlacementScorePublisher"]

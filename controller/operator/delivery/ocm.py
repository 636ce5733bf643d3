"""The ``ocm`` backend's monitor: a member seen through its Open Cluster Management hub.

Created by :class:`controller.operator.delivery.layer.DeliveryLayer` for each
MemberCluster with ``spec.ocm``; the hub is the cluster the operator runs in, so the
operator needs no credential for the member. Each round (every ``probe_every_s``) it
reads the ManagedCluster and, when OCM says it is available, lists our ManifestWorks in
its namespace; the health state machine (Unknown, Reachable, Unreachable, Lost after
``lost_after_s``) is :class:`controller.operator.delivery.monitor.ClusterMonitor`'s,
so both backends fail over by the same rules. What the ManifestWorks and the
ManagedCluster say is read by :mod:`controller.core.ocm`.

The layer's worker applies the ManifestWorks with a
:class:`controller.operator.delivery.applier.ClusterApplier` on the hub
(``resource=MANIFEST_WORKS``), only while this monitor says the cluster is reachable:
a ManifestWork is never deleted while its cluster is away (its agent would delete the
work it may still be running the moment it reconnects, before the plan that moved it
could be checked against its return).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.core.delivery import DeploymentObservation, origin_selector
from controller.core.ocm import CLUSTER_API_VERSION, managed_cluster_health, observe_manifest_work
from controller.operator.delivery.applier import MANIFEST_WORKS
from controller.operator.delivery.kubeconfig import get_json
from controller.operator.delivery.monitor import ClusterMonitor, RoundFailed, short_error


class OcmClusterMonitor(ClusterMonitor):
    """See the module docstring. ``managed_cluster``: the ManagedCluster's name (also
    its namespace on the hub)."""

    def __init__(
        self,
        name: str,
        *,
        managed_cluster: str,
        hub_client: kubernetes.client.ApiClient,
        hub: str,
        lost_after_s: float,
        probe_every_s: float,
        probe_timeout_s: float,
        on_change: Callable[[str, bool], None],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        super().__init__(
            name, member=True, hub=hub, lost_after_s=lost_after_s, probe_every_s=probe_every_s,
            probe_timeout_s=probe_timeout_s, on_change=on_change, local_client=hub_client, now=now,
        )
        self.managed_cluster = managed_cluster

    def _connect(self) -> kubernetes.client.ApiClient:
        client = self.client()
        if client is None:
            raise RoundFailed("Unreachable", "no client for the OCM hub")
        return client

    def _read(self, client: kubernetes.client.ApiClient) -> dict[tuple[str, str], DeploymentObservation]:
        timeout = self.probe_timeout_s
        name = self.managed_cluster
        try:
            item = get_json(client, f"/apis/{CLUSTER_API_VERSION}/managedclusters/{name}", None, timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise RoundFailed("Unreachable", f"reading ManagedCluster {name} on the hub: {short_error(exc)}") \
                    from None
            item = None
        except Exception as exc:
            raise RoundFailed("Unreachable", f"reading ManagedCluster {name} on the hub: {short_error(exc)}") from None
        health = managed_cluster_health(name, item if isinstance(item, dict) else None)
        if not health.available:
            raise RoundFailed(health.reason, health.message)
        try:
            listed = get_json(client, MANIFEST_WORKS.path(name), {"labelSelector": origin_selector(self.hub)}, timeout)
        except Exception as exc:
            raise RoundFailed("Unreachable", f"listing ManifestWorks in {name} on the hub: {short_error(exc)}") \
                from None
        found: dict[tuple[str, str], DeploymentObservation] = {}
        for work in listed.get("items") or []:
            observed = observe_manifest_work(work)
            if observed is not None:
                found[observed[0]] = observed[1]
        return found


__all__ = ["OcmClusterMonitor"]

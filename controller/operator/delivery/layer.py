"""The delivery layer: one monitor, one applier and one worker per cluster.

Created by :func:`controller.operator.main.run`; the solve loop calls it through
:class:`controller.operator.sinks.DeliverySink` and reads :meth:`DeliveryLayer.observed`
into each snapshot. Targets: ``local`` (the operator's own cluster, when it
materialises Deployments) and every MemberCluster, plus every name a site gives in
``spec.memberCluster`` (one that does not exist fails every probe with ``NotFound``, so
its sites are reported unreachable, then lost). A MemberCluster's backend picks its
monitor and what its applier keeps: ``direct``, Deployments in the member through its
kubeconfig (:class:`ClusterMonitor`); ``ocm``, one ManifestWork per Deployment in its
ManagedCluster's namespace of this cluster, the OCM hub
(:class:`controller.operator.delivery.ocm.OcmClusterMonitor`,
:func:`controller.core.ocm.manifest_works`). Changing a MemberCluster's backend
replaces its monitor and worker; what the old backend made there is left as it is.

:meth:`DeliveryLayer.submit` hands each target the objects it should hold; its worker
thread applies the latest of them as soon as the cluster answers, so a member that
hangs delays only itself, and nothing is sent to (or deleted in) a cluster that does
not answer. When a cluster answers again after an outage, or with a new kubeconfig,
its applier forgets what it knew, lists what is ours there and deletes what the plan
no longer puts there: the stale copies of work that was re-placed while it was away.
The monitors call back ``on_replan`` when a cluster becomes lost or stops being lost
(capacity changed) and ``on_observed`` when only what the statuses say changed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import kubernetes

from controller.api.resources import MemberCluster
from controller.core.delivery import LOCAL, ClusterObjects, DeploymentKey, DeploymentObservation, Observed
from controller.core.ocm import manifest_works
from controller.operator.delivery.applier import MANIFEST_WORKS, ApplyStats, ClusterApplier
from controller.operator.delivery.monitor import ClusterMonitor
from controller.operator.delivery.ocm import OcmClusterMonitor

log = logging.getLogger("meshplane.operator.delivery")


@dataclass(frozen=True)
class DeliverySettings:
    """The delivery settings of :class:`controller.operator.settings.Settings`."""

    hub: str
    namespace: str  # where the kubeconfig Secrets are (the operator's own)
    local: bool  # deliver local sites' work (materialise)
    lost_after_s: float = 60.0
    probe_every_s: float = 5.0
    probe_timeout_s: float = 3.0
    secret_refresh_s: float = 30.0
    resync_every_s: float = 300.0
    request_timeout_s: float = 10.0
    max_concurrency: int = 8


def ocm_namespace_of(cluster: MemberCluster | None) -> str | None:
    """The ManagedCluster (and hub namespace) of a MemberCluster with ``spec.ocm``; None
    for the ``direct`` backend (and for a name no MemberCluster has)."""
    if cluster is not None and cluster.spec.ocm is not None:
        return cluster.spec.ocm.managed_cluster_name or cluster.metadata.name
    return None


class _Worker:
    """Applies the latest objects of one target whenever its cluster answers.
    ``ocm_namespace``: the ManagedCluster's namespace on the hub (the ``ocm`` backend)."""

    def __init__(self, layer: DeliveryLayer, monitor: ClusterMonitor, ocm_namespace: str | None = None) -> None:
        self._layer = layer
        self.monitor = monitor
        self.ocm_namespace = ocm_namespace
        self._cond = threading.Condition()
        self._pending: tuple[ClusterObjects, frozenset[str]] | None = None
        self._applier: ClusterApplier | None = None
        self._applier_for: tuple[int, dt.datetime | None] | None = None  # (client generation, reachable since)
        self._stopped = False
        self.last: ApplyStats | None = None
        self.syncs = 0
        self._thread = threading.Thread(target=self._run, name=f"deliver-{monitor.name}", daemon=True)
        self._thread.start()

    def submit(self, objects: ClusterObjects, namespaces: frozenset[str]) -> None:
        if self.ocm_namespace is not None:
            objects = manifest_works(objects, self.ocm_namespace)
        with self._cond:
            self._pending = (objects, namespaces)
            self._cond.notify_all()

    def poke(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def discard_pending(self) -> None:
        with self._cond:
            self._pending = None

    def reset(self) -> None:
        with self._cond:
            if self._applier is not None:
                self._applier.reset()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (self._pending is None or self.monitor.health.state != "Reachable"):
                    self._cond.wait(timeout=1.0)
                if self._stopped or self._pending is None:
                    return
                objects, namespaces = self._pending
                self._pending = None
            try:
                self.last = self._sync(objects, namespaces)
                self.syncs += 1
            except Exception:
                log.exception("delivery to %s failed; retried on the next plan", self.monitor.name)

    def _sync(self, objects: ClusterObjects, namespaces: frozenset[str]) -> ApplyStats | None:
        client = self.monitor.client()
        if client is None:
            return None
        health = self.monitor.health
        key = (self.monitor.generation, health.since)
        if self._applier is None or self._applier_for is None or self._applier_for[0] != key[0]:
            self._applier = self._layer.new_applier(self.monitor.name, client, self.ocm_namespace)
        elif self._applier_for != key:
            self._applier.reset()  # back after an outage: list what is there, delete what moved away
        self._applier_for = key
        stats = self._applier.sync(objects, namespaces)
        self._layer.count(self.monitor.name, stats)
        return stats


class DeliveryLayer:
    """See the module docstring."""

    def __init__(
        self,
        local_client: kubernetes.client.ApiClient,
        settings: DeliverySettings,
        may_write: Callable[[], bool],
        on_replan: Callable[[], None],
        on_observed: Callable[[], None],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_stats: Callable[[str, ApplyStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self._local_client = local_client
        self._core = kubernetes.client.CoreV1Api(local_client)
        self._may_write = may_write
        self._on_replan = on_replan
        self._on_observed = on_observed
        self._on_stats = on_stats
        self._now = now
        self._lock = threading.Lock()
        self._workers: dict[str, _Worker] = {}
        if settings.local:
            self._add(LOCAL, None)

    # ----------------------------------------------------------------- targets

    def _read_secret(self, name: str) -> dict[str, str]:
        secret = self._core.read_namespaced_secret(name, self.settings.namespace,
                                                   _request_timeout=self.settings.probe_timeout_s)
        return {key: str(value) for key, value in (secret.data or {}).items()}

    def _changed(self, name: str, lost_changed: bool) -> None:
        with self._lock:
            workers = dict(self._workers)
        returned = workers.get(name)
        if lost_changed and returned is not None and returned.monitor.health.state == "Reachable":
            # back from lost: what it was last given was planned without it (it would
            # delete work the next plan puts back there): wait for that plan
            returned.discard_pending()
        if lost_changed:
            self._on_replan()
        else:
            self._on_observed()
        for worker in workers.values():
            worker.poke()

    def _add(self, name: str, cluster: MemberCluster | None) -> None:
        s = self.settings
        member = name != LOCAL
        lost_after = float(cluster.spec.lost_after_seconds or s.lost_after_s) if cluster else s.lost_after_s
        managed_cluster = ocm_namespace_of(cluster)
        monitor: ClusterMonitor
        if managed_cluster is not None:
            monitor = OcmClusterMonitor(
                name, managed_cluster=managed_cluster, hub_client=self._local_client, hub=s.hub,
                lost_after_s=lost_after, probe_every_s=s.probe_every_s, probe_timeout_s=s.probe_timeout_s,
                on_change=self._changed, now=self._now,
            )
        else:
            direct = cluster.spec.direct if cluster else None
            monitor = ClusterMonitor(
                name, member=member, hub=s.hub, lost_after_s=lost_after, probe_every_s=s.probe_every_s,
                probe_timeout_s=s.probe_timeout_s, on_change=self._changed,
                secret_ref=direct.kubeconfig_secret_ref if direct else None,
                read_secret=self._read_secret if member else None,
                local_client=None if member else self._local_client, secret_refresh_s=s.secret_refresh_s,
                now=self._now,
            )
        self._workers[name] = _Worker(self, monitor, managed_cluster)
        monitor.start()
        if not member:
            log.info("delivering to the operator's own cluster (local)")
        elif managed_cluster is not None:
            log.info("delivering to %s through Open Cluster Management (ManagedCluster %s)", name, managed_cluster)
        else:
            log.info("delivering to %s", name)

    def _remove(self, name: str) -> None:
        worker = self._workers.pop(name)
        worker.monitor.stop()
        worker.stop()

    def update(self, clusters: Sequence[MemberCluster], site_targets: Mapping[str, str]) -> None:
        """Follow the mesh: a monitor for every MemberCluster and every name a site gives."""
        by_name = {c.metadata.name: c for c in clusters}
        wanted = set(by_name) | {t for t in site_targets.values() if t != LOCAL}
        with self._lock:
            for name in sorted(set(self._workers) - wanted - {LOCAL}):
                self._remove(name)
                log.info("no longer delivering to %s", name)
            for name in sorted(wanted):
                cluster = by_name.get(name)
                managed_cluster = ocm_namespace_of(cluster)
                if name in self._workers and self._workers[name].ocm_namespace != managed_cluster:
                    self._remove(name)  # another backend (or ManagedCluster): a new monitor and worker
                    log.info("delivery to %s changes to %s", name, "direct" if managed_cluster is None else "ocm")
                if name not in self._workers:
                    self._add(name, cluster)
                    continue
                lost_after = self.settings.lost_after_s
                if cluster is not None and cluster.spec.lost_after_seconds:
                    lost_after = float(cluster.spec.lost_after_seconds)
                direct = cluster.spec.direct if cluster else None
                self._workers[name].monitor.configure(direct.kubeconfig_secret_ref if direct else None, lost_after)

    def new_applier(
        self, name: str, client: kubernetes.client.ApiClient, ocm_namespace: str | None = None
    ) -> ClusterApplier:
        s = self.settings
        if ocm_namespace is not None:  # ManifestWorks on the hub, this cluster
            return ClusterApplier(
                client, name, hub=s.hub, may_write=self._may_write, request_timeout_s=s.request_timeout_s,
                max_concurrency=s.max_concurrency, resync_every_s=s.resync_every_s, resource=MANIFEST_WORKS,
                list_namespace=ocm_namespace,
            )
        return ClusterApplier(
            client, name, hub=None if name == LOCAL else s.hub, may_write=self._may_write,
            request_timeout_s=s.request_timeout_s if name == LOCAL else max(s.probe_timeout_s, 5.0),
            max_concurrency=s.max_concurrency, resync_every_s=s.resync_every_s,
        )

    def count(self, name: str, stats: ApplyStats) -> None:
        if self._on_stats is not None:
            self._on_stats(name, stats)

    # ----------------------------------------------------------------- reads and writes

    def observed(self) -> Observed:
        """What every cluster reports now (for the next snapshot)."""
        with self._lock:
            workers = dict(self._workers)
        clusters = {}
        deployments: dict[DeploymentKey, DeploymentObservation] = {}
        for name, worker in workers.items():
            health, found, was_read = worker.monitor.snapshot()
            if name != LOCAL:
                clusters[name] = health
            if was_read:
                for (namespace, deployment), observation in found.items():
                    deployments[(name, namespace, deployment)] = observation
        return Observed(clusters=clusters, deployments=deployments, delivering=frozenset(workers))

    def submit(
        self, desired: Mapping[str, ClusterObjects], namespaces: Collection[str],
        planned_without: Collection[str] = (),
    ) -> None:
        """Each target's worker applies what it should hold (every target gets an entry,
        empty when it should hold nothing), except the targets in ``planned_without``
        (lost when the plan was made): what they were last given is dropped instead."""
        with self._lock:
            workers = dict(self._workers)
        frozen = frozenset(namespaces)
        for name, worker in workers.items():
            if name in planned_without:
                worker.discard_pending()
            else:
                worker.submit(desired.get(name, ClusterObjects()), frozen)

    def reset(self) -> None:
        """Trust nothing cached (a new leader): every applier lists again."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.reset()

    def stop(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.monitor.stop()
            worker.stop()

    def targets(self) -> list[str]:
        with self._lock:
            return sorted(self._workers)

    def sync_counts(self) -> dict[str, int]:
        """Syncs done per target (for tests and logs)."""
        with self._lock:
            return {name: worker.syncs for name, worker in self._workers.items()}


__all__ = ["DeliveryLayer", "DeliverySettings"]

"""The materialiser: the ``local`` delivery backend on its own, for callers that hand it
workloads rather than a plan's per-cluster objects (tests, tools).

:meth:`Materialiser.sync` is given every workload of the mesh with its status and
uid, takes their Deployments from :func:`controller.core.delivery.desired_objects`
(every site local) and sends them with a
:class:`~controller.operator.delivery.applier.ClusterApplier` of the operator's own
cluster: server-side applied, owned by their MeshWorkload, leftovers in the
workloads' namespaces deleted, the fence asked before each request (see
:mod:`controller.operator.delivery.applier` for the rules). The operator itself goes
through :class:`controller.operator.delivery.layer.DeliveryLayer`, which also delivers
to member clusters.

Needs exactly these RBAC verbs on ``apps/deployments``: ``patch`` and ``create``
(server-side apply is a PATCH; the API server also checks ``create`` when it creates the
Deployment), ``list`` and ``delete``; and ``watch`` for the readiness monitor of the
delivery layer. Clusters with the ``OwnerReferencesPermissionEnforcement`` admission
plugin (OpenShift) also want ``update`` on ``meshworkloads/finalizers`` (group
meshplane.io) for ``blockOwnerDeletion``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import kubernetes

from controller.api.models import MeshWorkloadStatus
from controller.api.resources import MeshWorkload
from controller.core.delivery import LOCAL, ClusterObjects, desired_objects
from controller.operator.delivery.applier import APPLY_PATCH, FIELD_MANAGER, ApplyStats, ClusterApplier, body_digest

MaterialiseStats = ApplyStats
"""Counts of one :meth:`Materialiser.sync` call."""


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
        self.applier = ClusterApplier(
            api_client, LOCAL, hub=None, field_manager=field_manager, may_write=may_write,
            request_timeout_s=request_timeout_s, max_concurrency=max_concurrency, resync_every_s=resync_every_s,
            monotonic=monotonic,
        )

    def reset(self) -> None:
        self.applier.reset()

    def sync(self, workloads: Iterable[tuple[MeshWorkload, MeshWorkloadStatus, str]]) -> ApplyStats:
        """Make the Deployments match the workloads (every workload of the mesh, with its
        status and ``metadata.uid``); never raises for a failed request."""
        given = list(workloads)
        objects = desired_objects(given, {}, hub="", targets=[LOCAL]).get(LOCAL, ClusterObjects())
        namespaces = {w.metadata.namespace or "default" for w, _, _ in given}
        return self.applier.sync(objects, namespaces)


__all__ = ["APPLY_PATCH", "FIELD_MANAGER", "MaterialiseStats", "Materialiser", "body_digest"]

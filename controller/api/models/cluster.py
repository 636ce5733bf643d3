"""The ``MemberCluster`` spec and status: a Kubernetes cluster that runs sites' work.

A site (``AIFactory`` or ``EdgeFleet``) names its member cluster in
``spec.memberCluster``; a site without one is delivered to the cluster the operator runs
in (``local``). Shaped after Kueue's ``MultiKueueCluster`` (a kubeconfig in a Secret) and
SIG Multicluster's ``ClusterProfile`` (one object per cluster, its health in status),
so several sites can share one cluster and its health is read in one place. Exactly one
backend says how work gets there: ``direct`` (the operator applies it with a kubeconfig)
or ``ocm`` (an Open Cluster Management hub's ManifestWorks, applied by the member's work
agent; the operator holds no member credentials).

Read by the CRD generator, by ``meshctl`` and by the reconcile core; the operator's
delivery layer (:mod:`controller.operator.delivery`) connects to what it names.
"""

from __future__ import annotations

from pydantic import Field

from controller.api.models.base import ApiModel, CrossFieldRule, MemberClusterName
from controller.api.models.status import Condition

_SECRET_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_SECRET_KEY = r"^[-._a-zA-Z0-9]+$"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the operator's own namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern=_SECRET_NAME,
        description="Name of the Secret, in the namespace the operator runs in (the only "
        "namespace whose Secrets it may read).",
    )
    key: str = Field(
        default="kubeconfig", min_length=1, max_length=253, pattern=_SECRET_KEY,
        description="Key of the Secret holding the kubeconfig (default kubeconfig).",
    )


class DirectDelivery(ApiModel):
    """Push delivery: the operator applies the work in the member with a kubeconfig."""

    kubeconfig_secret_ref: SecretKeyRef = Field(
        description="The Secret key holding a kubeconfig for the member cluster. It must "
        "carry its credentials inline: a token or client certificate data and the CA "
        "data; insecure TLS, file paths, exec and auth-provider plugins are refused. "
        "The identity needs only the rights of the meshplane-member chart.",
    )


class OcmDelivery(ApiModel):
    """Pull delivery through Open Cluster Management: one ManifestWork per (workload,
    site) in the ManagedCluster's namespace of the OCM hub the operator runs on."""

    managed_cluster_name: MemberClusterName | None = Field(
        default=None,
        description="Name of the OCM ManagedCluster (also the hub namespace its "
        "ManifestWorks go in). Default: the MemberCluster's own name.",
    )


class MemberClusterSpec(ApiModel):
    """How to reach a member cluster and when to give up on it."""

    direct: DirectDelivery | None = Field(
        default=None,
        description="Deliver by applying Deployments in the member with a kubeconfig "
        "(the operator pushes; the member needs no agent). Exactly one of direct and ocm.",
    )
    ocm: OcmDelivery | None = Field(
        default=None,
        description="Deliver through Open Cluster Management: ManifestWorks on the OCM hub "
        "(the cluster the operator runs in), applied by the member's work agent; "
        "readiness comes back as status feedback and reachability from the "
        "ManagedCluster's Available condition. Exactly one of direct and ocm.",
    )
    lost_after_seconds: int | None = Field(
        default=None, ge=1, le=86_400,
        description="Seconds the cluster may stay unreachable before its sites count as "
        "having no capacity and their work is placed elsewhere. Default: the operator's "
        "setting (the chart's delivery.lostAfterSeconds, 60 s).",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="",
            cel="has(self.direct) != has(self.ocm)",
            message="give exactly one delivery backend: direct (a kubeconfig Secret) or ocm "
            "(an Open Cluster Management ManagedCluster)",
            holds=lambda s: (s.direct is None) != (s.ocm is None),
        ),
    )


class MemberClusterStatus(ApiModel):
    """Observed state of a member cluster."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    sites: list[str] = Field(
        default_factory=list, max_length=1024, description="Sites whose work this cluster runs."
    )
    last_seen_time: str | None = Field(
        default=None,
        description="While unreachable: the last time the cluster answered (RFC 3339). Absent "
        "while it is reachable (the Reachable condition says since when).",
        json_schema_extra={"format": "date-time"},
    )
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16,
        description="Reachable (reasons Reachable, Unreachable, Lost, InvalidKubeconfig, "
        "SecretNotFound, Unknown; with ocm also ManagedClusterNotFound, NotAccepted, "
        "ManagedClusterUnavailable, ManagedClusterAvailableUnknown, Tainted).",
    )

"""Small meshes with member clusters, as parsed resources: shared by the tests of the
delivery core (tests/controller/core/test_delivery.py) and of the read API
(tests/controller/http/test_clusters_view.py)."""

from __future__ import annotations

from typing import Any

from controller.api.resources import AIFactory, MemberCluster, MeshWorkload

API_VERSION = "meshplane.io/v1alpha1"


def factory(name: str, country: str, price: float, cluster: str | None) -> AIFactory:
    """A factory of 8 devices (one token per second each) in region ``eu``, delivered to
    ``cluster`` (None: local)."""
    spec: dict[str, Any] = {
        "region": "eu", "country": country, "power": {"firmMW": 1, "pricePerMWh": price},
        "acceleratorPools": [{"model": "gpu", "count": 8, "wattsPerDevice": 700, "tokensPerSecondPerDevice": 1,
                              "memoryGiB": 80}],
    }
    if cluster:
        spec["memberCluster"] = cluster
    return AIFactory.model_validate({"apiVersion": API_VERSION, "kind": "AIFactory",
                                     "metadata": {"name": name, "generation": 1}, "spec": spec})


def workload(name: str, allowed: list[str] | None = None, template: bool = True) -> MeshWorkload:
    """Two devices of inference in namespace ``team``, one replica per device."""
    spec: dict[str, Any] = {"type": "inference", "accelerators": 2, "devicesPerReplica": 1}
    if template:
        spec["template"] = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    if allowed:
        spec["sovereignty"] = {"allowedCountries": allowed}
    return MeshWorkload.model_validate({"apiVersion": API_VERSION, "kind": "MeshWorkload",
                                        "metadata": {"name": name, "namespace": "team", "generation": 1},
                                        "spec": spec})


def member_cluster(name: str) -> MemberCluster:
    """A MemberCluster whose kubeconfig is Secret ``<name>-kubeconfig``."""
    return MemberCluster.model_validate({
        "apiVersion": API_VERSION, "kind": "MemberCluster", "metadata": {"name": name, "generation": 1},
        "spec": {"direct": {"kubeconfigSecretRef": {"name": f"{name}-kubeconfig"}}},
    })

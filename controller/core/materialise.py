"""Materialisation: a placed workload's pod template as one Deployment per assignment.

Pure (no Kubernetes client): :func:`planned_deployments` and :func:`deployment_body`
give the full server-side apply body of every Deployment a workload should have;
:func:`controller.core.delivery.desired_objects` gathers them per target and the
operator's delivery layer (:mod:`controller.operator.delivery`) sends them.

Only a workload with ``spec.template`` and phase ``Placed`` has Deployments. Each
assignment (site and accelerator model, devices > 0) gives one Deployment in the
workload's namespace:

- name ``<workload>-<site>``, or ``<workload>-<site>-<model>`` when the workload has
  devices of several models at that site; a DNS-1123 label of at most 63 characters,
  else shortened (dots become dashes) and ended by ``-`` and 10 hex digits hashing the
  workload, site and model, so it stays stable and unique;
- labels ``app.kubernetes.io/managed-by: meshplane``, ``meshplane.io/workload``,
  ``meshplane.io/site`` and ``meshplane.io/accelerator-model`` on the Deployment and
  its pods (a value longer than 63 characters is shortened the same way); the selector
  matches the workload and site, and the model only when the name carries it, so the
  selector of a name never changes (the API server refuses to change one);
- ``replicas = ceil(devices / spec.devicesPerReplica)``;
- the pod template as written, its labels completed with the ones above and
  ``nodeSelector: {meshplane.io/site: <site>}`` merged into its own nodeSelector (the
  template's other entries kept, ours winning a conflict);
- owned by the workload (``controller: true``, ``blockOwnerDeletion: true``), so
  deleting the workload deletes them.

A site whose name is longer than 63 characters cannot be a node label value, so no
node can match its nodeSelector: its assignment is skipped and
:func:`planned_deployments` says why.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from controller.api.models import MeshWorkloadStatus
from controller.api.resources import API_VERSION, MeshWorkload

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "meshplane"
WORKLOAD_LABEL = "meshplane.io/workload"
SITE_LABEL = "meshplane.io/site"
MODEL_LABEL = "meshplane.io/accelerator-model"
DEVICES_ANNOTATION = "meshplane.io/devices"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{WORKLOAD_LABEL}"
"""Label selector of the Deployments materialised by meshplane (any workload)."""

NAME_LIMIT = 63  # DNS-1123 label
LABEL_VALUE_LIMIT = 63
HASH_LENGTH = 10

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:HASH_LENGTH]


def replicas(devices: int, devices_per_replica: int) -> int:
    """``ceil(devices / devices_per_replica)`` (exact for any size of int)."""
    if devices_per_replica < 1:
        raise ValueError("devices_per_replica must be at least 1")
    return -(-max(devices, 0) // devices_per_replica)


def deployment_name(workload: str, site: str, model: str | None = None) -> str:
    """``<workload>-<site>[-<model>]`` as a DNS-1123 label of at most 63 characters."""
    parts = [workload, site] if model is None else [workload, site, model]
    name = "-".join(parts)
    if len(name) <= NAME_LIMIT and _DNS_LABEL.fullmatch(name):
        return name
    digest = _digest(*parts)
    prefix = re.sub(r"[^a-z0-9-]", "-", name.lower())[: NAME_LIMIT - HASH_LENGTH - 1].strip("-")
    return f"{prefix}-{digest}" if prefix else digest


def label_value(text: str) -> str:
    """``text`` as a label value: itself when valid, else shortened with a hash."""
    if len(text) <= LABEL_VALUE_LIMIT and (text == "" or _LABEL_VALUE.fullmatch(text)):
        return text
    prefix = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[: LABEL_VALUE_LIMIT - HASH_LENGTH - 1]
    prefix = prefix.strip("-_.")
    return f"{prefix}-{_digest(text)}" if prefix else _digest(text)


def _pod_template(template: dict[str, Any], labels: dict[str, str], site: str) -> dict[str, Any]:
    """The workload's template with our labels and nodeSelector merged in."""
    pod = copy.deepcopy(template)
    metadata = pod.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    own_labels = metadata.get("labels")
    metadata["labels"] = {**(own_labels if isinstance(own_labels, dict) else {}), **labels}
    pod["metadata"] = metadata
    spec = pod.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    selector = spec.get("nodeSelector")
    spec["nodeSelector"] = {**(selector if isinstance(selector, dict) else {}), SITE_LABEL: site}
    pod["spec"] = spec
    return pod


@dataclass(frozen=True)
class PlannedDeployment:
    """One Deployment a placed workload should have: where, what and how many."""

    site: str
    accelerator_model: str
    name: str
    devices: int
    replicas: int
    several_models: bool  # the site holds devices of several models: the model is in the name and selector


def planned_deployments(workload: MeshWorkload, status: MeshWorkloadStatus) -> tuple[list[PlannedDeployment], list[str]]:
    """The Deployments of a placed workload with a template (one per site and model, in
    a stable order), and the assignments that cannot have one and why."""
    template = workload.spec.template
    if template is None or status.phase != "Placed":
        return [], []
    name = workload.metadata.name
    namespace = workload.metadata.namespace or "default"
    devices: dict[tuple[str, str], int] = defaultdict(int)
    for assignment in status.assignments:
        if assignment.devices > 0:
            devices[(assignment.site, assignment.accelerator_model)] += assignment.devices
    models_at: dict[str, int] = defaultdict(int)
    for site, _ in devices:
        models_at[site] += 1
    planned: list[PlannedDeployment] = []
    problems: list[str] = []
    for (site, model), count in sorted(devices.items()):
        if len(site) > LABEL_VALUE_LIMIT:
            problems.append(
                f"MeshWorkload {namespace}/{name}: site {site[:80]!r} has a name longer than "
                f"{LABEL_VALUE_LIMIT} characters, which no node label can hold: no Deployment there"
            )
            continue
        several = models_at[site] > 1
        planned.append(PlannedDeployment(
            site=site, accelerator_model=model, name=deployment_name(name, site, model if several else None),
            devices=count, replicas=replicas(count, workload.spec.devices_per_replica), several_models=several,
        ))
    return planned, problems


def deployment_body(
    workload: MeshWorkload, planned: PlannedDeployment, owner: dict[str, Any] | None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The server-side apply body of one planned Deployment: owned by ``owner`` (an
    ownerReference, for the workload's own cluster) or carrying ``extra_labels`` (the
    origin labels of a member cluster, where no MeshWorkload exists to own it)."""
    template = workload.spec.template or {}
    selector = {WORKLOAD_LABEL: label_value(workload.metadata.name), SITE_LABEL: planned.site}
    if planned.several_models:
        selector[MODEL_LABEL] = label_value(planned.accelerator_model)
    labels = {MANAGED_BY_LABEL: MANAGED_BY, **selector, MODEL_LABEL: label_value(planned.accelerator_model)}
    metadata: dict[str, Any] = {
        "name": planned.name,
        "namespace": workload.metadata.namespace or "default",
        "labels": {**labels, **(extra_labels or {})},
        "annotations": {DEVICES_ANNOTATION: str(planned.devices)},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": planned.replicas,
            "selector": {"matchLabels": selector},
            "template": _pod_template(template, labels, planned.site),
        },
    }


def owner_reference(workload: MeshWorkload, uid: str) -> dict[str, Any]:
    """The workload as the controller owner of what it materialises in its own cluster."""
    return {
        "apiVersion": API_VERSION,
        "kind": "MeshWorkload",
        "name": workload.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


__all__ = [
    "DEVICES_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MANAGED_SELECTOR",
    "MODEL_LABEL",
    "SITE_LABEL",
    "WORKLOAD_LABEL",
    "PlannedDeployment",
    "deployment_body",
    "deployment_name",
    "label_value",
    "owner_reference",
    "planned_deployments",
    "replicas",
]

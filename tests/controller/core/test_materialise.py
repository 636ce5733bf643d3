"""controller.core.materialise: the Deployments of a placed workload with a template, as
``controller.core.delivery.desired_objects`` gathers them for the operator's own cluster."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.api.models import Assignment, MeshWorkloadStatus
from controller.api.resources import MeshWorkload
from controller.core.delivery import LOCAL, ClusterObjects, desired_objects
from controller.core.materialise import (
    MANAGED_BY_LABEL,
    MODEL_LABEL,
    SITE_LABEL,
    WORKLOAD_LABEL,
    deployment_name,
    label_value,
    replicas,
)
from controller.core.parse import Manifests
from controller.core.reconcile import Snapshot, reconcile
from tests.controller.core.conftest import CONFIG, edit_spec

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
UID = "0b7d1c9e-0000-4000-8000-000000000001"


def _local(workload: MeshWorkload, status: MeshWorkloadStatus, uid: str) -> ClusterObjects:
    """What the operator's own cluster should hold for this workload alone, as the
    delivery layer computes it (:func:`controller.core.delivery.desired_objects`)."""
    return desired_objects([(workload, status, uid)], {}, hub="", targets=[LOCAL])[LOCAL]


def desired_deployments(workload: MeshWorkload, status: MeshWorkloadStatus, uid: str) -> list[dict[str, Any]]:
    """The apply bodies of the workload's Deployments, in their planned order."""
    return list(_local(workload, status, uid).deployments.values())

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "chat", SITE_LABEL: "spoofed"}, "annotations": {"team": "a"}},
    "spec": {
        "nodeSelector": {"kubernetes.io/arch": "amd64", SITE_LABEL: "elsewhere"},
        "containers": [{"name": "server", "image": "registry.example/chat:1"}],
    },
}


def _workload(name: str = "chat", namespace: str = "serving", template: dict[str, Any] | None = TEMPLATE,
              per_replica: int = 1) -> MeshWorkload:
    spec: dict[str, Any] = {"type": "inference", "accelerators": 8, "devicesPerReplica": per_replica}
    if template is not None:
        spec["template"] = template
    return MeshWorkload.model_validate({"apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
                                        "metadata": {"name": name, "namespace": namespace}, "spec": spec})


def _placed(*assignments: tuple[str, str, int], phase: str = "Placed") -> MeshWorkloadStatus:
    return MeshWorkloadStatus.model_validate({
        "phase": phase,
        "assignments": [Assignment(site=s, kind="AIFactory", accelerator_model=m, devices=d).to_api()
                        for s, m, d in assignments],
    })


# --------------------------------------------------------------------------- the body


def test_one_deployment_per_assignment_with_everything_the_brief_lists() -> None:
    (body,) = desired_deployments(_workload(per_replica=8), _placed(("fr-grenoble-1", "nvidia-gb200", 100)), UID)
    assert body["apiVersion"] == "apps/v1" and body["kind"] == "Deployment"
    meta = body["metadata"]
    assert meta["name"] == "chat-fr-grenoble-1" and meta["namespace"] == "serving"
    assert meta["labels"] == {MANAGED_BY_LABEL: "meshplane", WORKLOAD_LABEL: "chat", SITE_LABEL: "fr-grenoble-1",
                              MODEL_LABEL: "nvidia-gb200"}
    assert meta["annotations"] == {"meshplane.io/devices": "100"}
    assert meta["ownerReferences"] == [{"apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
                                        "name": "chat", "uid": UID, "controller": True,
                                        "blockOwnerDeletion": True}]
    spec = body["spec"]
    assert spec["replicas"] == 13  # ceil(100 / 8)
    assert spec["selector"] == {"matchLabels": {WORKLOAD_LABEL: "chat", SITE_LABEL: "fr-grenoble-1"}}
    pod = spec["template"]
    # our labels added (and winning a conflict), the template's own kept
    assert pod["metadata"]["labels"] == {"app": "chat", **meta["labels"]}
    assert pod["metadata"]["annotations"] == {"team": "a"}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64", SITE_LABEL: "fr-grenoble-1"}
    assert pod["spec"]["containers"] == TEMPLATE["spec"]["containers"]
    assert set(spec["selector"]["matchLabels"].items()) <= set(pod["metadata"]["labels"].items())
    # the workload's template is not modified
    assert TEMPLATE["spec"]["nodeSelector"][SITE_LABEL] == "elsewhere"


def test_a_template_without_labels_or_nodeselector_gets_ours() -> None:
    for template in ({"spec": {"containers": []}}, {"metadata": {"labels": None}, "spec": {"nodeSelector": None}},
                     {}):
        (body,) = desired_deployments(_workload(template=template), _placed(("s1", "m1", 1)), UID)
        pod = body["spec"]["template"]
        assert pod["spec"]["nodeSelector"] == {SITE_LABEL: "s1"}
        assert pod["metadata"]["labels"][WORKLOAD_LABEL] == "chat"


def test_several_assignments_and_several_pools_at_one_site() -> None:
    status = _placed(("us-memphis-1", "nvidia-gb200", 16), ("us-memphis-1", "nvidia-h100", 8), ("kr-sejong-1",
                                                                                                "nvidia-gb200", 4))
    bodies = desired_deployments(_workload(per_replica=4), status, UID)
    by_name = {b["metadata"]["name"]: b for b in bodies}
    assert sorted(by_name) == ["chat-kr-sejong-1", "chat-us-memphis-1-nvidia-gb200", "chat-us-memphis-1-nvidia-h100"]
    assert {n: b["spec"]["replicas"] for n, b in by_name.items()} == {
        "chat-kr-sejong-1": 1, "chat-us-memphis-1-nvidia-gb200": 4, "chat-us-memphis-1-nvidia-h100": 2}
    assert by_name["chat-us-memphis-1-nvidia-h100"]["spec"]["selector"]["matchLabels"] == {
        WORKLOAD_LABEL: "chat", SITE_LABEL: "us-memphis-1", MODEL_LABEL: "nvidia-h100"}
    assert MODEL_LABEL not in by_name["chat-kr-sejong-1"]["spec"]["selector"]["matchLabels"]
    for body in bodies:
        assert body["spec"]["template"]["spec"]["nodeSelector"][SITE_LABEL] == body["metadata"]["labels"][SITE_LABEL]


def test_no_deployment_without_template_placement_devices_or_uid() -> None:
    placed = _placed(("s1", "m1", 8))
    assert desired_deployments(_workload(template=None), placed, UID) == []
    for phase in ("Pending", "Unschedulable", "Preempted"):
        assert desired_deployments(_workload(), _placed(("s1", "m1", 8), phase=phase), UID) == []
    assert desired_deployments(_workload(), _placed(("s1", "m1", 0)), UID) == []
    assert desired_deployments(_workload(), _placed(), UID) == []
    result = _local(_workload(), placed, "")
    assert result.deployments == {} and "no uid" in result.problems[0]


def test_a_site_name_no_node_label_can_hold_is_skipped_with_a_reason() -> None:
    long_site = "a" * 64
    result = _local(_workload(), _placed((long_site, "m1", 8), ("s1", "m1", 8)), UID)
    assert [b["metadata"]["name"] for b in result.deployments.values()] == ["chat-s1"]
    (problem,) = result.problems
    assert "longer than 63" in problem


def test_the_body_is_deterministic() -> None:
    status = _placed(("b", "m", 3), ("a", "m", 2))
    first = desired_deployments(_workload(), status, UID)
    assert first == desired_deployments(_workload(), _placed(("a", "m", 2), ("b", "m", 3)), UID)
    assert [b["metadata"]["name"] for b in first] == ["chat-a", "chat-b"]


# --------------------------------------------------------------------------- replicas


@pytest.mark.parametrize(("devices", "per_replica", "expected"), [
    (1, 1, 1), (8, 8, 1), (9, 8, 2), (200_000, 8, 25_000), (200_001, 8, 25_001), (0, 4, 0), (3, 1024, 1),
    (10_000_000, 1, 10_000_000),
])
def test_replicas_round_up(devices: int, per_replica: int, expected: int) -> None:
    assert replicas(devices, per_replica) == expected


def test_devices_per_replica_is_bounded_and_defaults_to_one() -> None:
    assert _workload().spec.devices_per_replica == 1
    for bad in (0, 1025):
        with pytest.raises(ValueError, match="devicesPerReplica|devices_per_replica"):
            _workload(per_replica=bad)
    with pytest.raises(ValueError):
        replicas(1, 0)


def test_frontier_pretrain_of_the_example_mesh(examples: Manifests, night: Snapshot) -> None:
    """200,000 GPUs at 8 per pod: 25,000 replicas on the one factory big enough."""
    workloads = [edit_spec(w, template=TEMPLATE, devices_per_replica=8) if w.metadata.name == "frontier-pretrain"
                 else w for w in night.workloads]
    snapshot = Snapshot(night.factories, night.fleets, workloads, night.at)
    outcome = reconcile(snapshot, CONFIG)
    workload = next(w for w in workloads if w.metadata.name == "frontier-pretrain")
    status = outcome.workloads[workload.key]
    assert status.phase == "Placed"
    (body,) = desired_deployments(workload, status, UID)
    (assignment,) = status.assignments
    assert body["metadata"]["name"] == f"frontier-pretrain-{assignment.site}"
    assert body["metadata"]["namespace"] == "research"
    assert body["spec"]["replicas"] == 25_000
    # the example's other templates: one Deployment per placed site, 1,024 devices a pod
    for other in workloads:
        if other is workload:
            continue
        other_status = outcome.workloads[other.key]
        bodies = desired_deployments(other, other_status, UID)
        if other.spec.template is None or other_status.phase != "Placed":
            assert bodies == []
            continue
        assert {b["spec"]["template"]["spec"]["nodeSelector"]["meshplane.io/site"] for b in bodies} == {
            a.site for a in other_status.assignments}
        assert sum(b["spec"]["replicas"] for b in bodies) == sum(-(-a.devices // 1024) for a in other_status.assignments)


# --------------------------------------------------------------------------- names


def test_short_names_are_kept_as_they_are() -> None:
    assert deployment_name("chat", "fr-grenoble-1") == "chat-fr-grenoble-1"
    assert deployment_name("chat", "us-memphis-1", "nvidia-h100") == "chat-us-memphis-1-nvidia-h100"
    assert label_value("chat.v2") == "chat.v2"


def test_long_or_dotted_names_are_shortened_with_a_stable_hash() -> None:
    workload, site = "w" * 60, "site-1"
    name = deployment_name(workload, site)
    assert len(name) == 63 and DNS_LABEL.fullmatch(name)
    assert name == deployment_name(workload, site)  # stable
    assert name.startswith("w" * 52 + "-")
    assert name != deployment_name(workload, "site-2") != deployment_name(workload, site, "m")
    dotted = deployment_name("chat.v2", "s")
    assert DNS_LABEL.fullmatch(dotted) and dotted.startswith("chat-v2-s-")
    assert dotted != deployment_name("chat-v2", "s") == "chat-v2-s"  # no collision with the undotted name
    long_value = label_value("x" * 200)
    assert len(long_value) == 63 and LABEL_VALUE.fullmatch(long_value) and long_value == label_value("x" * 200)


def test_a_long_workload_name_gives_valid_labels_and_selector() -> None:
    name = "a" * 100 + ".b"
    (body,) = desired_deployments(_workload(name=name), _placed(("s1", "m1", 2)), UID)
    assert DNS_LABEL.fullmatch(body["metadata"]["name"]) and len(body["metadata"]["name"]) <= 63
    for value in body["metadata"]["labels"].values():
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value)
    assert body["metadata"]["ownerReferences"][0]["name"] == name  # the owner is named in full


_SUBDOMAIN = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?){0,4}",
                           fullmatch=True).filter(lambda s: len(s) <= 253)
_MODEL = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?", fullmatch=True)


@given(workload=_SUBDOMAIN, site=_SUBDOMAIN, model=st.none() | _MODEL)
def test_every_name_is_a_dns_label_of_at_most_63_characters(workload: str, site: str, model: str | None) -> None:
    name = deployment_name(workload, site, model)
    assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name
    assert name == deployment_name(workload, site, model)
    plain = "-".join(p for p in (workload, site, model) if p is not None)
    if len(plain) <= 63 and DNS_LABEL.fullmatch(plain):
        assert name == plain


_PARTS = st.tuples(_SUBDOMAIN, _SUBDOMAIN, st.none() | _MODEL)


@given(a=_PARTS, b=_PARTS)
def test_distinct_shortened_names_do_not_collide(a: tuple[str, str, str | None], b: tuple[str, str, str | None]) -> None:
    def hashed(parts: tuple[str, str, str | None]) -> bool:
        plain = "-".join(p for p in parts if p is not None)
        return not (len(plain) <= 63 and DNS_LABEL.fullmatch(plain))

    if a != b and (hashed(a) or hashed(b)):  # the hash tells them apart
        assert deployment_name(*a) != deployment_name(*b)


@given(text=st.text(min_size=0, max_size=300))
def test_every_label_value_is_valid(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value

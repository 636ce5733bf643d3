"""The Helm chart as rendered, with the real helm (built from Go modules by
tests/tools/build.sh) and the suite's API server.

- ``helm lint --strict`` passes with the default values and with every option on;
- the values schema refuses a typo, a negative count, a value outside an enum, naming
  the key; the template refuses operator timings the operator would refuse;
- the operator's ClusterRole is exactly an allowlist written here (with and without
  materialisation), its Role holds only its own Lease, and nothing grants a wildcard;
  so is the VEN's (ven.enabled), with a Role of its own for its own Lease;
- every rendered object, defaults and all options, passes the API server's own
  validation (``kubectl apply --dry-run=server --validate=strict``); the ServiceMonitor
  against a minimal ServiceMonitor CRD installed for the test (the Prometheus Operator's
  CRDs are not in the test control plane), with the schema of the fields the chart sets;
- names derive from the release: two releases in two namespaces share no cluster-scoped
  name, and long release names are truncated to 63 characters;
- the Deployment: leader-election friendly rollout, the env the operator reads, probes,
  the image reference, and optional objects rendered only when asked for.

Installing, upgrading, uninstalling and running the operator with the chart's RBAC
are in test_chart_install.py. That the chart's crds/ are the generated files is
checked by tests/controller/api/test_crdgen.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from controller.ven.settings import VenSettings
from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.operator_support import CHART, helm_for, render_chart, rules_of

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def helm(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return helm_for(kubeconfig, tmp_path_factory)

# Every option on (and non-default values wherever they change the rendering): the
# chart's ci/ values, which the checkov scan renders too.
ALL_OPTIONS_FILE = CHART / "ci" / "all-options-values.yaml"
ALL_OPTIONS: dict[str, Any] = yaml.safe_load(ALL_OPTIONS_FILE.read_text())

# What the operator may do cluster-wide: the calls of controller/operator/*.py (kopf's
# list+watch of the three kinds, status patches, Events, and the materialiser's
# server-side apply, listing and deletion of Deployments). Written out here on purpose:
# a rule added to the chart must be added here, deliberately.
MESH_RULES = [
    {"apiGroups": ["meshplane.io"],
     "resources": ["aifactories", "edgefleets", "meshworkloads", "memberclusters", "gridevents"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["meshplane.io"],
     "resources": ["aifactories/status", "edgefleets/status", "meshworkloads/status", "memberclusters/status",
                   "gridevents/status"],
     "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]
DEPLOYMENT_RULES = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "patch", "list", "delete"]},
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
# The kubeconfig Secrets of member clusters, read by name in the release's namespace
# (controller/operator/delivery/layer.py), with delivery.memberClusters.
SECRET_RULES = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
# Delivery through Open Cluster Management (delivery.ocm.enabled; this cluster is the
# OCM hub): the ManagedClusters are read (controller/operator/delivery/ocm.py) and one
# ManifestWork per (workload, site) is applied, listed and deleted in each
# ManagedCluster's namespace (controller/operator/delivery/applier.py).
OCM_CLUSTER_RULES = [{"apiGroups": ["cluster.open-cluster-management.io"], "resources": ["managedclusters"],
                      "verbs": ["get"]}]
OCM_WORK_RULES = [{"apiGroups": ["work.open-cluster-management.io"], "resources": ["manifestworks"],
                   "verbs": ["create", "patch", "list", "delete"]}]
# with delivery.ocm.placementScores: each ManagedCluster's AddOnPlacementScore
# (controller/operator/delivery/scores.py)
OCM_SCORE_RULES = [
    {"apiGroups": ["cluster.open-cluster-management.io"], "resources": ["addonplacementscores"],
     "verbs": ["get", "create"]},
    {"apiGroups": ["cluster.open-cluster-management.io"], "resources": ["addonplacementscores/status"],
     "verbs": ["patch"]},
]
# The HTTP API (operator.apiPort > 0) checks each caller's bearer token with the API
# server: a TokenReview, then a SubjectAccessReview (controller/operator/reviews.py).
REVIEW_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
]


# meshplane-ven (ven.enabled), its own ClusterRole: its GridEvents listed by label and
# server-side applied (PATCH; "create" when new), "get"/"watch" for clients of its
# identity, never deleted; status.lastReport applied on the status subresource; the
# AIFactories listed (names, allocatedMW); Events about GridEvents
# (controller/ven/cluster.py). Its Lease is in a Role of its own.
VEN_RULES = [
    {"apiGroups": ["meshplane.io"], "resources": ["gridevents"], "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": ["meshplane.io"], "resources": ["gridevents/status"], "verbs": ["get", "patch"]},
    {"apiGroups": ["meshplane.io"], "resources": ["aifactories"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]
VEN_VALUES = ("--set", "ven.enabled=true", "--set", "ven.vtn.url=https://vtn.example/openadr3/3.1.0",
              "--set", "ven.credentials.secretName=vtn-credentials")


def lease_rules(lease: str) -> list[dict[str, Any]]:
    return [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [lease],
         "verbs": ["get", "update"]},
    ]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def the(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [obj] = by_kind(objects, kind)
    return obj


# --------------------------------------------------------------------------- lint and schema


@pytest.mark.parametrize("options", [False, True], ids=["defaults", "all-options"])
def test_chart_lints_strictly(helm: Kubectl, options: bool):
    extra = ["-f", str(ALL_OPTIONS_FILE)] if options else []
    result = helm("lint", "--strict", str(CHART), *extra)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(("setting", "named"), [
    ("rbac.aggregateClusterRole=true", "aggregateClusterRole"),  # a typo
    ("replicaCount=-1", "/replicaCount"),
    ("operator.logFormat=xml", "/operator/logFormat"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
    ("image.digest=latest", "/image/digest"),
    ("operator.solverWorkers=0", "/operator/solverWorkers"),
    ("operator.debounceMaxSeconds=-1", "/operator/debounceMaxSeconds"),
    ("podAntiAffinity=always", "/podAntiAffinity"),
    ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval"),
])
def test_values_schema_refuses_bad_values_naming_the_key(helm: Kubectl, setting: str, named: str):
    result = helm("template", "x", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0, f"--set {setting} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr, result.stderr


def test_values_schema_accepts_a_fraction_given_by_set(helm: Kubectl):
    """`--set` passes 0.5 as a string; the schema takes a string of digits for numbers."""
    rendered = helm("template", "x", str(CHART), "--set", "operator.debounceQuietSeconds=0.5").stdout
    env = {e["name"]: e.get("value") for e in container(the(list(yaml.safe_load_all(rendered)), "Deployment"))["env"]}
    assert env["MESHPLANE_DEBOUNCE_QUIET_S"] == "0.5"


@pytest.mark.parametrize(("settings", "message"), [
    (["operator.debounceQuietSeconds=3"], "operator.debounceMaxSeconds (2) must be >= operator.debounceQuietSeconds (3)"),
    (["operator.leaderElection.renewDeadlineSeconds=20"], "retryPeriodSeconds (2) < renewDeadlineSeconds (20)"),
    (["metrics.serviceMonitor.enabled=true", "service.enabled=false"], "metrics.serviceMonitor.enabled needs service"),
    (["serviceAccount.create=false"], "serviceAccount.name is required"),
])
def test_template_refuses_settings_the_operator_would_refuse(helm: Kubectl, settings: list[str], message: str):
    args = [a for s in settings for a in ("--set", s)]
    result = helm("template", "x", str(CHART), *args, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# --------------------------------------------------------------------------- RBAC


@pytest.mark.parametrize(("materialise", "api"), [(True, True), (False, True), (True, False), (False, False)])
def test_operator_rules_are_exactly_the_allowlist(materialise: bool, api: bool):
    objects = render_chart("--set", f"materialise.enabled={str(materialise).lower()}",
                           "--set", f"operator.apiPort={8080 if api else 0}")
    assert rules_of(objects, "ClusterRole") == (
        MESH_RULES + (DEPLOYMENT_RULES if materialise else []) + (REVIEW_RULES if api else []))
    ports = {p["name"]: p["containerPort"] for p in container(the(objects, "Deployment"))["ports"]}
    assert ports == ({"http": 8081, "api": 8080} if api else {"http": 8081})
    assert [p["name"] for p in the(objects, "Service")["spec"]["ports"]] == (["http", "api"] if api else ["http"])
    assert rules_of(objects, "Role") == lease_rules("meshplane") + SECRET_RULES  # the release's fullname
    for role in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
        for rule in role["rules"]:
            granted = rule["apiGroups"] + rule["resources"] + rule["verbs"]
            assert "*" not in granted, (role["metadata"]["name"], rule)
    for role in by_kind(objects, "ClusterRole"):  # Secrets: only in the release's namespace, by a Role
        assert all("secrets" not in rule["resources"] for rule in role["rules"]), role["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in container(the(objects, "Deployment"))["env"]}
    assert env["MESHPLANE_MATERIALISE"] == str(materialise).lower()  # the grant follows the setting
    assert env["MESHPLANE_HTTP_PORT"] == ("8080" if api else "0")
    assert env["MESHPLANE_LEASE_NAME"] == "meshplane"  # the Lease the Role names


def test_the_kubeconfig_secrets_role_follows_the_delivery_values():
    named = render_chart("--set", "delivery.kubeconfigSecrets={grenoble-kubeconfig,memphis-kubeconfig}")
    assert rules_of(named, "Role") == lease_rules("meshplane") + [
        {**SECRET_RULES[0], "resourceNames": ["grenoble-kubeconfig", "memphis-kubeconfig"]}]
    none = render_chart("--set", "delivery.memberClusters=false")
    assert rules_of(none, "Role") == lease_rules("meshplane")
    env = {e["name"]: e.get("value") for e in container(the(named, "Deployment"))["env"]}
    assert (env["MESHPLANE_HUB_NAME"], env["MESHPLANE_LOST_AFTER_S"]) == ("meshplane", "60")


def test_the_ocm_rules_are_granted_only_when_ocm_delivery_is_enabled():
    default = render_chart()
    assert not [rule for role in by_kind(default, "ClusterRole") + by_kind(default, "Role")
                for rule in role["rules"] if any("open-cluster-management" in g for g in rule["apiGroups"])]
    anywhere = render_chart("--set", "delivery.ocm.enabled=true")
    assert rules_of(anywhere, "ClusterRole") == MESH_RULES + DEPLOYMENT_RULES + OCM_CLUSTER_RULES + OCM_WORK_RULES \
        + REVIEW_RULES
    assert len(by_kind(anywhere, "Role")) == 1  # only the release's own
    env = {e["name"]: e.get("value") for e in container(the(anywhere, "Deployment"))["env"]}
    assert env["MESHPLANE_OCM_PLACEMENT_SCORES"] == "false"
    scores = render_chart("--set", "delivery.ocm.enabled=true", "--set", "delivery.ocm.placementScores=true")
    assert rules_of(scores, "ClusterRole") == MESH_RULES + DEPLOYMENT_RULES + OCM_CLUSTER_RULES + OCM_WORK_RULES \
        + OCM_SCORE_RULES + REVIEW_RULES
    env = {e["name"]: e.get("value") for e in container(the(scores, "Deployment"))["env"]}
    assert env["MESHPLANE_OCM_PLACEMENT_SCORES"] == "true"
    # scores without OCM delivery: nothing granted, nothing published
    alone = render_chart("--set", "delivery.ocm.placementScores=true")
    assert rules_of(alone, "ClusterRole") == MESH_RULES + DEPLOYMENT_RULES + REVIEW_RULES
    env = {e["name"]: e.get("value") for e in container(the(alone, "Deployment"))["env"]}
    assert env["MESHPLANE_OCM_PLACEMENT_SCORES"] == "false"


def test_named_managed_clusters_get_one_role_each_and_are_read_by_name():
    objects = render_chart("--set", "delivery.ocm.enabled=true", "--set", "delivery.ocm.managedClusters={grenoble,memphis}")
    assert rules_of(objects, "ClusterRole") == MESH_RULES + DEPLOYMENT_RULES + [
        {**OCM_CLUSTER_RULES[0], "resourceNames": ["grenoble", "memphis"]}] + REVIEW_RULES
    ocm_roles = {r["metadata"]["namespace"]: r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-ocm")}
    assert sorted(ocm_roles) == ["grenoble", "memphis"]
    assert all(role["rules"] == OCM_WORK_RULES for role in ocm_roles.values())
    with_scores = render_chart("--set", "delivery.ocm.enabled=true", "--set", "delivery.ocm.managedClusters={grenoble}",
                               "--set", "delivery.ocm.placementScores=true")
    [role] = [r for r in by_kind(with_scores, "Role") if r["metadata"]["name"].endswith("-ocm")]
    assert role["rules"] == OCM_WORK_RULES + OCM_SCORE_RULES
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(objects, "RoleBinding")
                if b["metadata"]["name"].endswith("-ocm")}
    assert sorted(bindings) == ["grenoble", "memphis"]
    for binding in bindings.values():
        [subject] = binding["subjects"]
        assert (subject["name"], binding["roleRef"]["name"]) == ("meshplane", "meshplane-ocm")


def ven_objects(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The VEN's objects by kind (one each)."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "ven":
            assert obj["kind"] not in found, obj["kind"]
            found[obj["kind"]] = obj
    return found


def test_the_ven_is_rendered_only_when_enabled_with_exactly_its_rules():
    assert ven_objects(render_chart()) == {}
    objects = render_chart(*VEN_VALUES)
    ven = ven_objects(objects)
    assert sorted(ven) == ["ClusterRole", "ClusterRoleBinding", "Deployment", "NetworkPolicy", "Role", "RoleBinding",
                           "ServiceAccount"]
    assert ven["ClusterRole"]["rules"] == VEN_RULES
    assert ven["ClusterRole"]["metadata"]["name"] == "meshplane-system-meshplane-ven"
    assert ven["Role"]["rules"] == lease_rules("meshplane-ven")  # its own Lease, not the operator's
    for binding in (ven["ClusterRoleBinding"], ven["RoleBinding"]):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "meshplane-ven",
                                        "namespace": "meshplane-system"}]
    # the operator's rights do not change with the VEN
    assert rules_of(objects, "ClusterRole") == MESH_RULES + DEPLOYMENT_RULES + REVIEW_RULES
    assert ven["ServiceAccount"]["automountServiceAccountToken"] is False


def test_the_ven_deployment():
    ven = ven_objects(render_chart(*VEN_VALUES, "--set", "ven.factories.us-memphis-1=TVA-RES-0042",
                                   "--set", "ven.programs={dc-flex,emergency}"))["Deployment"]
    pod = ven["spec"]["template"]["spec"]
    [container_] = pod["containers"]
    assert ven["spec"]["replicas"] == 2 and container_["command"] == ["meshplane-ven"]
    assert container_["image"] == container(the(render_chart(), "Deployment"))["image"]  # the operator's image
    assert pod["serviceAccountName"] == "meshplane-ven" and pod["automountServiceAccountToken"] is True
    env = {e["name"]: e for e in container_["env"]}
    assert env["MESHPLANE_VEN_CLIENT_ID"]["valueFrom"] == {"secretKeyRef": {"name": "vtn-credentials",
                                                                             "key": "client_id"}}
    assert env["MESHPLANE_VEN_CLIENT_SECRET"]["valueFrom"] == {"secretKeyRef": {"name": "vtn-credentials",
                                                                                 "key": "client_secret"}}
    values = {name: e.get("value") for name, e in env.items()}
    assert {k: values[k] for k in ("MESHPLANE_VEN_VTN_URL", "MESHPLANE_VEN_PROGRAMS", "MESHPLANE_VEN_FACTORIES",
                                   "MESHPLANE_VEN_LEVELS", "MESHPLANE_VEN_LEASE_NAME", "MESHPLANE_VEN_POLL_INTERVAL_S",
                                   "MESHPLANE_VEN_LEAD_TIME", "MESHPLANE_VEN_REPORTS")} == {
        "MESHPLANE_VEN_VTN_URL": "https://vtn.example/openadr3/3.1.0", "MESHPLANE_VEN_PROGRAMS": "dc-flex,emergency",
        "MESHPLANE_VEN_FACTORIES": "us-memphis-1=TVA-RES-0042", "MESHPLANE_VEN_LEVELS": "0=0,1=0.25,2=0.5,3=1",
        "MESHPLANE_VEN_LEASE_NAME": "meshplane-ven", "MESHPLANE_VEN_POLL_INTERVAL_S": "60",
        "MESHPLANE_VEN_LEAD_TIME": "PT15M", "MESHPLANE_VEN_REPORTS": "true"}
    assert env["MESHPLANE_VEN_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # every MESHPLANE_VEN_* variable the chart sets is a setting the VEN reads
    known = {f"MESHPLANE_VEN_{name.upper()}" for name in VenSettings.__dataclass_fields__}
    assert {name for name in env if name.startswith("MESHPLANE_VEN_")} <= known
    assert container_["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container_["securityContext"]["readOnlyRootFilesystem"] is True
    selector = ven["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "ven"
    assert selector != the(render_chart(), "Deployment")["spec"]["selector"]["matchLabels"]


def test_the_ven_renders_with_nothing_but_enabled_and_its_network_policy_follows_the_values():
    """``--set ven.enabled=true`` alone renders (the scan's all-on rendering does that):
    the Secret is then <fullname>-ven, and the VEN, without a VTN URL, refuses to start
    naming MESHPLANE_VEN_VTN_URL (tests/controller/ven/test_settings.py)."""
    ven = ven_objects(render_chart("--set", "ven.enabled=true"))
    env = {e["name"]: e for e in ven["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MESHPLANE_VEN_VTN_URL"]["value"] == ""
    assert env["MESHPLANE_VEN_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "meshplane-ven"
    policy = ven["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ven"
    assert policy["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert policy["egress"][-1] == {"ports": [{"port": 443, "protocol": "TCP"}]}  # the VTN, by default anywhere
    narrowed = ven_objects(render_chart(*VEN_VALUES, "--set", "ven.egress[0].to[0].ipBlock.cidr=192.0.2.10/32",
                                        "--set", "ven.egress[0].ports[0].port=8443"))["NetworkPolicy"]["spec"]
    assert narrowed["egress"][-1] == {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"port": 8443}]}
    assert "NetworkPolicy" not in ven_objects(render_chart(*VEN_VALUES, "--set", "networkPolicy.enabled=false"))


@pytest.mark.parametrize(("settings", "message"), [
    (["ven.enabled=true", "ven.leaderElection.renewDeadlineSeconds=20"],
     "retryPeriodSeconds (2) < renewDeadlineSeconds (20)"),
    (["ven.vtn.name=Not_A_Label"], "/ven/vtn/name"),
    (["ven.levels.1=1.5"], "/ven/levels/1"),
    (["ven.leadTime=15m"], "/ven/leadTime"),
])
def test_the_ven_values_are_checked(helm: Kubectl, settings: list[str], message: str):
    args = [a for s in settings for a in ("--set", s)]
    result = helm("template", "x", str(CHART), *args, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_rbac_can_be_turned_off():
    objects = render_chart("--set", "rbac.aggregateClusterRoles=false")
    names = [o["metadata"]["name"] for o in by_kind(objects, "ClusterRole")]
    assert names == ["meshplane-system-meshplane-operator"]
    objects = render_chart("--set", "rbac.create=false", "--set", "rbac.aggregateClusterRoles=false")
    assert not [o for o in objects if o["apiVersion"].startswith("rbac.")]
    assert by_kind(objects, "Deployment")  # the operator is still there, bound by whoever manages RBAC


# --------------------------------------------------------------------------- names


def test_two_releases_in_two_namespaces_share_no_cluster_scoped_name():
    first = render_chart(namespace="team-a", release="meshplane")
    second = render_chart(namespace="team-b", release="meshplane")
    cluster_kinds = {"ClusterRole", "ClusterRoleBinding"}
    names_a = {(o["kind"], o["metadata"]["name"]) for o in first if o["kind"] in cluster_kinds}
    names_b = {(o["kind"], o["metadata"]["name"]) for o in second if o["kind"] in cluster_kinds}
    assert len(names_a) == 4 and names_a.isdisjoint(names_b)
    # and every namespaced object stays in its release's namespace
    assert {o["metadata"].get("namespace") for o in first if o["kind"] not in cluster_kinds} == {"team-a"}
    [binding] = by_kind(second, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "meshplane", "namespace": "team-b"}]


def test_long_release_names_are_truncated_to_63_characters():
    release = "a-release-name-of-fifty-three-characters-helms-limit"[:53]
    objects = render_chart("--set", "nameOverride=meshplane-operator", release=release)
    for obj in objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
    name = the(objects, "Deployment")["metadata"]["name"]
    untruncated = f"{release}-meshplane-operator"
    assert len(untruncated) > 63 and name == untruncated[:63].rstrip("-")


# --------------------------------------------------------------------------- the Deployment


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [operator] = deployment["spec"]["template"]["spec"]["containers"]
    return operator


def test_deployment_defaults():
    objects = render_chart()
    deployment = the(objects, "Deployment")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    operator = container(deployment)
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert operator["image"] == f"meshplane/operator:{chart['appVersion']}"
    env = {e["name"]: e for e in operator["env"]}
    assert env["MESHPLANE_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["MESHPLANE_LOG_FORMAT"]["value"] == "json"
    assert env["MESHPLANE_SITE_EVENTS_NAMESPACE"]["value"] == "default"
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert operator["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"},
                                 {"name": "api", "containerPort": 8080, "protocol": "TCP"}]
    assert env["MESHPLANE_HEALTH_PORT"]["value"] == "8081" and env["MESHPLANE_HTTP_PORT"]["value"] == "8080"
    assert {"cpu", "memory"} <= set(operator["resources"]["limits"]) & set(operator["resources"]["requests"])
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in operator["volumeMounts"]
    assert pod["serviceAccountName"] == "meshplane" and pod["automountServiceAccountToken"] is True
    assert the(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert the(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert the(objects, "Service")["spec"]["ports"][0]["targetPort"] == "http"
    assert by_kind(objects, "ServiceMonitor") == []


def test_optional_objects_follow_their_values():
    assert by_kind(render_chart("--set", "replicaCount=1"), "PodDisruptionBudget") == []
    assert by_kind(render_chart("--set", "podDisruptionBudget.enabled=false"), "PodDisruptionBudget") == []
    assert by_kind(render_chart("--set", "networkPolicy.enabled=false"), "NetworkPolicy") == []
    objects = render_chart("-f", str(ALL_OPTIONS_FILE))
    [deployment] = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "meshplane"]
    assert ven_objects(objects)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] \
        == f"meshplane/operator@{ALL_OPTIONS['image']['digest']}"
    pod = deployment["spec"]["template"]["spec"]
    assert container(deployment)["image"] == f"meshplane/operator@{ALL_OPTIONS['image']['digest']}"
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]
    [spread] = pod["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    monitor = the(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= the(objects, "Service")["metadata"]["labels"].items()
    # the checkov skips of the image go away once the image is pinned and always pulled
    annotations = deployment["metadata"]["annotations"]
    assert [k for k in annotations if k.startswith("checkov.io/skip")] == ["checkov.io/skip-token"]


# --------------------------------------------------------------------------- the API server's validation

SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com", "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor",
                  "listKind": "ServiceMonitorList"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "required": ["spec"],
            "properties": {"spec": {
                "type": "object", "required": ["selector"],
                "properties": {
                    "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "namespaceSelector": {"type": "object", "properties": {
                        "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
                    "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                        "port": {"type": "string"}, "path": {"type": "string"},
                        "scheme": {"type": "string", "enum": ["http", "https"]},
                        "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?"
                                                                  "(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        "scrapeTimeout": {"type": "string"}}}},
                }}},
        }}}],
    },
}


@pytest.fixture(scope="module")
def service_monitor_crd(kubectl: Kubectl) -> Iterator[None]:
    """A minimal ServiceMonitor CRD (the fields the chart sets, from the Prometheus
    Operator's monitoring.coreos.com/v1), unless the cluster has the real one; removed
    afterwards if it was installed here."""
    existed = kubectl("get", "crd", SERVICE_MONITOR_CRD["metadata"]["name"], check=False).returncode == 0
    if not existed:
        kubectl.apply_obj(SERVICE_MONITOR_CRD)
        kubectl("wait", "--for", "condition=established", "--timeout=60s",
                f"crd/{SERVICE_MONITOR_CRD['metadata']['name']}")
    yield
    if not existed:
        kubectl("delete", "crd", SERVICE_MONITOR_CRD["metadata"]["name"], "--wait=false", check=False)


@pytest.mark.parametrize("options", [False, True], ids=["defaults", "all-options"])
def test_every_object_passes_the_api_servers_validation(
    kubectl: Kubectl, installed_crds: Any, service_monitor_crd: None, options: bool
):
    namespace = unique_name("chart-dry-run")
    managed_cluster = unique_name("chart-dry-run-mc")  # its namespace holds the chart's -ocm Role
    kubectl("create", "namespace", namespace)
    kubectl("create", "namespace", managed_cluster)
    try:
        extra = ["-f", str(ALL_OPTIONS_FILE), "--set", f"delivery.ocm.managedClusters={{{managed_cluster}}}"] \
            if options else []
        objects = render_chart(*extra, namespace=namespace)
        kinds = {o["kind"] for o in objects}
        expected = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
                    "Deployment", "PodDisruptionBudget", "NetworkPolicy"} | ({"ServiceMonitor"} if options else set())
        assert kinds == expected
        result = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                         input=yaml.safe_dump_all(objects))
        assert result.stdout.count("(server dry run)") == len(objects), result.stdout
        assert "Warning" not in result.stderr, result.stderr
    finally:
        kubectl("delete", "namespace", namespace, managed_cluster, "--wait=false", check=False)


def test_the_api_server_would_refuse_a_wrong_field(kubectl: Kubectl, service_monitor_crd: None):
    """The dry run above can fail: a misspelt field of the chart's ServiceMonitor is refused."""
    namespace = unique_name("chart-dry-run")
    kubectl("create", "namespace", namespace)
    try:
        monitor = the(render_chart("--set", "metrics.serviceMonitor.enabled=true", namespace=namespace),
                      "ServiceMonitor")
        monitor["spec"]["endpoints"][0]["intervall"] = monitor["spec"]["endpoints"][0].pop("interval")
        result = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                         input=yaml.safe_dump(monitor), check=False)
        assert result.returncode != 0 and "intervall" in result.stderr, result.stderr
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)

"""The member RBAC package (helm/meshplane-member and its plain rendering
docs/member/member-rbac.yaml) and the member clusters of the delivery tests
(tests/e2e/member_support.py).

- the chart lints strictly and its values schema refuses a typo, naming the key;
- its ClusterRole is exactly an allowlist written here: what meshplane's delivery does
  in a member (Deployments, namespaces, listing Pods), no wildcard, no Secret; a
  release's cluster-scoped names derive from its namespace; ``tokenSecret.create``
  adds a service-account-token Secret and no right;
- docs/member/member-rbac.yaml is the chart as ``helm template`` renders it (a drift
  fails, printing the command that regenerates the file);
- installed with the real helm into a member cluster, ``kubectl auth can-i`` as the
  ServiceAccount allows each granted verb and denies the rest (Secrets, update, Nodes,
  Deployments' subresources, ...);
- a kubeconfig minted by ``member_kubeconfig()`` (CA data and a TokenRequest token
  inline, nothing else) creates a namespace and server-side applies a Deployment whose
  Pods run on the member's KWOK site Nodes, and is refused Secrets; the hub Secret of
  ``kubeconfig_secret()`` holds it;
- a member frozen with SIGSTOP is unreachable and keeps its state; killed and restarted
  on the same data dir and port, the kubeconfig minted before still works and the
  Deployment is still there, Running.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.core.materialise import SITE_LABEL
from tests.e2e.e2e_support import REPO_ROOT, Kubectl, tail, unique_name
from tests.e2e.member_support import (
    DELIVERY_SERVICE_ACCOUNT,
    MEMBER_CHART,
    MEMBER_NAMESPACE,
    MEMBER_RELEASE,
    ORIGIN_LABEL,
    MemberCluster,
    install_member_rbac,
    kubeconfig_secret,
    member_kubeconfig,
    origin_deployments,
    run_helm,
    wait_origin_deployments,
)
from tests.e2e.operator_support import helm_binary, wait_for

pytestmark = pytest.mark.e2e

PLAIN_MANIFEST = REPO_ROOT / "docs" / "member" / "member-rbac.yaml"
# What meshplane's delivery does in a member cluster: server-side apply, watch and
# delete the Deployments it delivers (in the workloads' namespaces, so cluster-wide),
# make sure their namespaces exist, list Pods to say why a Deployment does not
# progress. Written out here on purpose: a rule added to the chart must be added here,
# deliberately.
MEMBER_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
]


def render(*args: str, namespace: str = MEMBER_NAMESPACE, release: str = MEMBER_RELEASE) -> str:
    result = subprocess.run([helm_binary(), "template", release, str(MEMBER_CHART), "--namespace", namespace, *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"helm template {' '.join(args)} failed:\n{tail(result.stderr)}", pytrace=False)
    return result.stdout


def objects(*args: str, **kwargs: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render(*args, **kwargs)) if doc]


def the(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [obj] = [o for o in objs if o["kind"] == kind]
    return obj


# --------------------------------------------------------------------------- the chart


@pytest.mark.parametrize("options", [[], ["--set", "tokenSecret.create=true"]], ids=["defaults", "token-secret"])
def test_member_chart_lints_strictly(options: list[str]):
    result = subprocess.run([helm_binary(), "lint", "--strict", str(MEMBER_CHART), *options],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "0 chart(s) failed" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(("setting", "named"), [
    ("tokenSecret.enabled=true", "enabled"),  # a typo
    ("serviceAccount.name=Not_A_Name", "/serviceAccount/name"),
    ("tokenSecret.create=yes-please", "/tokenSecret/create"),
    ("rbac.create=false", "rbac"),  # the rules are not optional
])
def test_member_values_schema_refuses_bad_values_naming_the_key(setting: str, named: str):
    result = subprocess.run([helm_binary(), "template", "x", str(MEMBER_CHART), "--set", setting],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0, f"--set {setting} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr, result.stderr


@pytest.mark.parametrize("token_secret", [False, True])
def test_member_rules_are_exactly_the_allowlist(token_secret: bool):
    objs = objects("--set", f"tokenSecret.create={str(token_secret).lower()}")
    assert sorted(o["kind"] for o in objs) == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"] + (["Secret"] if token_secret else []))
    role, binding, account = the(objs, "ClusterRole"), the(objs, "ClusterRoleBinding"), the(objs, "ServiceAccount")
    assert role["rules"] == MEMBER_RULES
    for rule in role["rules"]:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        assert "secrets" not in rule["resources"] and "update" not in rule["verbs"], rule
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
    assert account["metadata"] == {**account["metadata"], "name": DELIVERY_SERVICE_ACCOUNT,
                                   "namespace": MEMBER_NAMESPACE}
    assert account["automountServiceAccountToken"] is False
    name = f"{MEMBER_NAMESPACE}-{DELIVERY_SERVICE_ACCOUNT}"
    assert role["metadata"]["name"] == binding["metadata"]["name"] == name
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": DELIVERY_SERVICE_ACCOUNT,
                                    "namespace": MEMBER_NAMESPACE}]
    if token_secret:
        secret = the(objs, "Secret")
        assert secret["type"] == "kubernetes.io/service-account-token"
        assert secret["metadata"]["name"] == f"{DELIVERY_SERVICE_ACCOUNT}-token"
        assert secret["metadata"]["namespace"] == MEMBER_NAMESPACE
        assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": DELIVERY_SERVICE_ACCOUNT}
        assert "data" not in secret and "stringData" not in secret  # the token controller fills it in


def test_two_member_releases_share_no_cluster_scoped_name():
    first = objects(namespace="hub-a", release="member")
    second = objects("--set", "serviceAccount.name=delivery", namespace="hub-b", release="member")
    names = [{(o["kind"], o["metadata"]["name"]) for o in objs if o["kind"].startswith("Cluster")}
             for objs in (first, second)]
    assert names[0] == {("ClusterRole", "hub-a-meshplane-delivery"), ("ClusterRoleBinding", "hub-a-meshplane-delivery")}
    assert names[1] == {("ClusterRole", "hub-b-delivery"), ("ClusterRoleBinding", "hub-b-delivery")}
    assert the(second, "ClusterRoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": "delivery", "namespace": "hub-b"}]
    assert the(objects("--set", "tokenSecret.create=true", "--set", "tokenSecret.name=t"), "Secret")["metadata"][
        "name"] == "t"


def test_notes_tell_how_to_mint_the_kubeconfig_and_the_hub_secret():
    result = subprocess.run([helm_binary(), "install", MEMBER_RELEASE, str(MEMBER_CHART), "--namespace", "team-x",
                             "--dry-run=client", "--set", "tokenSecret.create=true"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for line in (
        f"kubectl -n team-x create token {DELIVERY_SERVICE_ACCOUNT} --duration=24h",
        f"kubectl -n team-x get secret {DELIVERY_SERVICE_ACCOUNT}-token -o jsonpath='{{.data.token}}' | base64 -d",
        "kubectl config set clusters.member.certificate-authority-data \"$CA\"",
        "--from-file=kubeconfig=member.kubeconfig",
    ):
        assert line in notes, notes


def test_the_plain_manifest_is_the_chart_rendered():
    helm = helm_binary()
    shown = str(Path(helm).relative_to(REPO_ROOT)) if Path(helm).is_relative_to(REPO_ROOT) else helm
    command = (f"{shown} template {MEMBER_RELEASE} {MEMBER_CHART.relative_to(REPO_ROOT)} "
               f"--namespace {MEMBER_NAMESPACE} > {PLAIN_MANIFEST.relative_to(REPO_ROOT)}")
    assert PLAIN_MANIFEST.is_file(), f"{PLAIN_MANIFEST} is missing; generate it with:\n  {command}"
    assert PLAIN_MANIFEST.read_text() == render(), (
        f"{PLAIN_MANIFEST.relative_to(REPO_ROOT)} is not what the chart renders; regenerate it (from the "
        f"repository's root) with:\n  {command}")


# --------------------------------------------------------------------------- in a member cluster


def can(member: MemberCluster, identity: str, *args: str) -> bool:
    answer = member.kubectl("auth", "can-i", *args, f"--as={identity}", check=False)
    assert answer.stdout.strip() in ("yes", "no"), answer.stdout + answer.stderr
    return answer.stdout.strip() == "yes"


def test_installed_with_helm_the_service_account_may_do_exactly_that(member_clusters: dict[str, MemberCluster]):
    member = member_clusters["member-a"]
    namespace, release, workloads = unique_name("member-rbac"), unique_name("member"), unique_name("e2e")
    install = run_helm(member, "install", release, str(MEMBER_CHART), "--namespace", namespace,
                       "--create-namespace", "--wait", "--timeout", "2m", "--set", "tokenSecret.create=true")
    try:
        assert "Warning" not in install.stderr, install.stderr
        member.kubectl("create", "namespace", workloads)
        identity = f"system:serviceaccount:{namespace}:{DELIVERY_SERVICE_ACCOUNT}"
        allowed = [
            *[(verb, "deployments.apps", "-n", ns) for verb in ("get", "list", "watch", "create", "patch", "delete")
              for ns in (workloads, "default")],
            ("list", "deployments.apps", "-A"), ("watch", "deployments.apps", "-A"),
            ("get", "namespaces"), ("create", "namespaces"), ("patch", "namespaces"),
            ("get", f"namespace/{workloads}"), ("patch", f"namespace/{workloads}"),
            ("list", "pods", "-A"), ("list", "pods", "-n", workloads),
        ]
        denied = [
            ("get", "secrets", "-n", workloads), ("list", "secrets", "-A"), ("get", "secrets", "-n", namespace),
            ("update", "deployments.apps", "-n", "kube-system"), ("update", "deployments.apps", "-n", workloads),
            ("patch", "deployments.apps", "-n", workloads, "--subresource=status"),
            ("patch", "deployments.apps", "-n", workloads, "--subresource=scale"),
            ("list", "nodes"), ("get", "pods", "-n", workloads), ("watch", "pods", "-A"),
            ("create", "pods", "-n", workloads), ("delete", "pods", "-n", workloads),
            ("get", "pods", "--subresource=log", "-n", workloads),
            ("delete", "namespaces"), ("list", "namespaces"), ("update", "namespaces"),
            ("list", "replicasets.apps", "-A"), ("create", "statefulsets.apps", "-n", workloads),
            ("create", "serviceaccounts", "--subresource=token", "-n", namespace), ("create", "clusterrolebindings"),
            ("escalate", "clusterroles"), ("bind", "clusterroles"), ("impersonate", "users"),
            ("list", "configmaps", "-A"), ("create", "services", "-n", workloads),
            ("get", "*", "-A"), ("*", "*", "-A"),
        ]
        refused = [args for args in allowed if not can(member, identity, *args)]
        granted = [args for args in denied if can(member, identity, *args)]
        assert (refused, granted) == ([], []), f"allowed but refused: {refused}; granted though not allowed: {granted}"
        # what the chart made is what it rendered
        role = member.kubectl.json("get", "clusterrole", f"{namespace}-{DELIVERY_SERVICE_ACCOUNT}")
        assert role["rules"] == MEMBER_RULES
        secret = member.kubectl.json("get", "secret", f"{DELIVERY_SERVICE_ACCOUNT}-token", "-n", namespace)
        assert secret["type"] == "kubernetes.io/service-account-token"
    finally:
        run_helm(member, "uninstall", release, "--namespace", namespace, "--wait", check=False)
        member.delete_namespaces(namespace, workloads)
    assert member.kubectl("get", "clusterrole", f"{namespace}-{DELIVERY_SERVICE_ACCOUNT}",
                          "--ignore-not-found", "-o", "name").stdout == ""


def delivered_deployment(namespace: str, name: str, site: str, replicas: int, origin: str) -> dict[str, Any]:
    """A Deployment as meshplane's delivery would apply it: origin-labelled, pinned to a site."""
    labels = {"app": name, ORIGIN_LABEL: origin}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {SITE_LABEL: site},
                         "containers": [{"name": "server", "image": "registry.example/llm-server:1.0",
                                         "resources": {"requests": {"cpu": "100m", "nvidia.com/gpu": "1"},
                                                       "limits": {"nvidia.com/gpu": "1"}}}]},
            },
        },
    }


def test_a_minted_kubeconfig_delivers_a_deployment_and_nothing_more(
    member_clusters: dict[str, MemberCluster], kubectl: Kubectl, scratch_namespace: str, tmp_path: Path
):
    member = member_clusters["member-a"]
    path = tmp_path / "member-a.kubeconfig"
    text = member_kubeconfig(member, path)
    assert path.read_text() == text and path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(text)
    [cluster], [user] = config["clusters"], config["users"]
    assert cluster["cluster"] == {"server": member.server, "certificate-authority-data": member.ca_data()}
    assert set(user["user"]) == {"token"}  # no client certificate, file, exec or auth provider
    delivery = Kubectl(member.kubectl_binary, str(path))
    assert delivery.json("auth", "whoami")["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{MEMBER_NAMESPACE}:{DELIVERY_SERVICE_ACCOUNT}")

    namespace, origin = unique_name("e2e"), unique_name("hub")
    try:
        delivery("create", "namespace", namespace)
        site = member.sites[0]
        deployment = delivered_deployment(namespace, "llm", site, 2, origin)
        delivery("apply", "--server-side", "--field-manager=meshplane", "-f", "-", input=json.dumps(deployment))
        assert origin_deployments(member, origin=origin) == {(namespace, "llm"): 2}
        wait_origin_deployments(member, {(namespace, "llm"): 2}, origin=origin, count="readyReplicas",
                                what="2 ready replicas")
        pods = delivery.json("get", "pods", "-n", namespace)["items"]  # list: granted, to explain progress
        on = {p["spec"]["nodeName"] for p in pods}
        assert len(pods) == 2 and on <= set(member.nodes.by_site[site]), on
        for refused in (("get", "secrets", "-n", namespace), ("get", "secrets", "-A"), ("get", "nodes")):
            result = delivery(*refused, check=False)
            assert result.returncode != 0 and "forbidden" in result.stderr.lower(), (refused, result.stderr)
        delivery("delete", "deployment.apps", "llm", "-n", namespace)
        wait_origin_deployments(member, {}, origin=origin, what="the deleted Deployment to go")
    finally:
        member.delete_namespaces(namespace)

    # the hub's Secret holds the same kubeconfig
    ref = kubeconfig_secret(kubectl, scratch_namespace, "member-a", text)
    assert ref == {"name": "member-a", "key": "kubeconfig"}
    stored = kubectl.json("get", "secret", "member-a", "-n", scratch_namespace)
    assert base64.b64decode(stored["data"]["kubeconfig"]).decode() == text
    assert "kubectl.kubernetes.io/last-applied-configuration" not in stored["metadata"].get("annotations", {})
    kubeconfig_secret(kubectl, scratch_namespace, "member-a", text.replace(member.name, "renamed"))  # an update
    stored = kubectl.json("get", "secret", "member-a", "-n", scratch_namespace)
    assert "renamed" in base64.b64decode(stored["data"]["kubeconfig"]).decode()


def test_a_member_frozen_then_killed_and_restarted_keeps_its_state_and_kubeconfigs(
    member_clusters: dict[str, MemberCluster], tmp_path: Path
):
    member = member_clusters["member-b"]
    path = tmp_path / "member-b.kubeconfig"
    member_kubeconfig(member, path)
    delivery = Kubectl(member.kubectl_binary, str(path), timeout=30)
    namespace, origin = unique_name("e2e"), unique_name("hub")
    server, ca = member.server, member.ca_data()
    try:
        delivery("create", "namespace", namespace)
        deployment = delivered_deployment(namespace, "svc", member.sites[1], 1, origin)
        delivery("apply", "--server-side", "--field-manager=meshplane", "-f", "-", input=json.dumps(deployment))
        wait_origin_deployments(member, {(namespace, "svc"): 1}, origin=origin, count="readyReplicas")

        with member.frozen():
            assert member.state == "frozen"
            probe = delivery("get", "deployments.apps", "-n", namespace, "--request-timeout=2s", check=False)
            assert probe.returncode != 0, "a frozen member answered"
        assert member.state == "running"
        assert origin_deployments(member, origin=origin, count="readyReplicas") == {(namespace, "svc"): 1}

        restarts = len(member.restart_seconds)
        with member.down(signal.SIGKILL):
            assert member.process is not None and member.process.poll() == -signal.SIGKILL
            probe = delivery("get", "deployments.apps", "-n", namespace, "--request-timeout=5s", check=False)
            assert probe.returncode != 0 and "refused" in probe.stderr, probe.stderr
        assert len(member.restart_seconds) == restarts + 1
        assert (member.server, member.ca_data()) == (server, ca)  # same port, same CA
        # the token minted before the restart is still good, and etcd kept everything
        assert delivery.json("get", "deployments.apps", "svc", "-n", namespace)["metadata"]["labels"][ORIGIN_LABEL] == origin
        wait_for("the Pod to be Running again after the restart", lambda: origin_deployments(
            member, origin=origin, count="readyReplicas") == {(namespace, "svc"): 1})
        # and a graceful restart (SIGTERM) keeps it all too
        member.restart()
        assert delivery.json("auth", "whoami")["status"]["userInfo"]["username"].endswith(DELIVERY_SERVICE_ACCOUNT)
    finally:
        member.ensure_healthy()
        member.delete_namespaces(namespace)


def test_the_documented_kubeconfig_commands_make_a_working_kubeconfig(
    member_clusters: dict[str, MemberCluster], tmp_path: Path
):
    """The sh block under "The kubeconfig for the hub" of docs/member/README.md, run as
    written against a member (its admin kubeconfig as KUBECONFIG), gives a kubeconfig
    like member_kubeconfig()'s: inline CA and token, working, with the chart's rights."""
    member = member_clusters["member-a"]
    install_member_rbac(member)
    readme = (REPO_ROOT / "docs" / "member" / "README.md").read_text()
    section = readme.split("## The kubeconfig for the hub", 1)[1]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "KUBECONFIG": member.kubeconfig,
           "PATH": f"{Path(member.kubectl_binary).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((tmp_path / "member.kubeconfig").read_text())
    [cluster], [user] = config["clusters"], config["users"]
    assert cluster["cluster"] == {"server": member.server, "certificate-authority-data": member.ca_data()}
    assert set(user["user"]) == {"token"}
    delivery = Kubectl(member.kubectl_binary, str(tmp_path / "member.kubeconfig"))
    assert delivery.json("auth", "whoami")["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{MEMBER_NAMESPACE}:{DELIVERY_SERVICE_ACCOUNT}")
    assert delivery("auth", "can-i", "create", "deployments.apps", "-n", "default").stdout.strip() == "yes"
    assert delivery("auth", "can-i", "get", "secrets", "-n", "default", check=False).stdout.strip() == "no"

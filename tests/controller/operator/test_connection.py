"""One source of credentials for the operator's clients (controller.operator.connection):
kopf's watches log in with exactly what the kubernetes client of the writes uses, read
from ``Settings.kubeconfig`` (``MESHPLANE_KUBECONFIG`` over ``KUBECONFIG``), else the
service account; the ``KUBECONFIG`` variable itself is never read behind its back."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.config import ConfigException, incluster_config

from controller.operator.connection import api_client, kopf_login
from controller.operator.settings import Settings

CA = "-----BEGIN CERTIFICATE-----\nnot-a-real-ca\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nnot-a-real-client-cert\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_kubeconfig(
    path: Path, server: str, user: dict[str, Any], cluster: dict[str, Any] | None = None, namespace: str | None = None
) -> Path:
    context: dict[str, Any] = {"cluster": "c", "user": "u"} | ({"namespace": namespace} if namespace else {})
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": context}],
        "current-context": "ctx",
    }))
    return path


def settings_for(kubeconfig: Path | str) -> Settings:
    return Settings(identity="test", kubeconfig=str(kubeconfig))


@pytest.fixture(autouse=True)
def no_kubeconfig_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """KUBECONFIG names a file that does not exist: nothing here may read it."""
    missing = tmp_path / "no-such.kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    return missing


def test_a_token_and_inline_ca_become_kopfs_bearer_credentials(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "token.kubeconfig", "https://10.1.2.3:6443/",
                            {"token": "abc.def"}, {"certificate-authority-data": b64(CA)}, namespace="ops")
    info = kopf_login(settings_for(path))
    assert info.server == "https://10.1.2.3:6443"
    assert (info.scheme, info.token) == ("Bearer", "abc.def")
    assert info.ca_path is not None and Path(str(info.ca_path)).read_text() == CA
    assert info.insecure is False
    assert (info.username, info.password) == (None, None)
    assert (info.certificate_path, info.private_key_path) == (None, None)
    assert info.default_namespace == "ops"


def test_client_certificate_data_become_kopfs_certificate_and_key_files(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "cert.kubeconfig", "https://127.0.0.1:40001",
        {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)},
        {"certificate-authority-data": b64(CA)},
    )
    info = kopf_login(settings_for(path))
    assert info.server == "https://127.0.0.1:40001"
    assert (info.scheme, info.token) == (None, None)
    assert info.certificate_path is not None and Path(str(info.certificate_path)).read_text() == CERT
    assert info.private_key_path is not None and Path(str(info.private_key_path)).read_text() == KEY
    assert info.ca_path is not None and Path(str(info.ca_path)).read_text() == CA
    assert info.default_namespace is None


def test_files_relative_to_the_kubeconfig_and_an_insecure_cluster(tmp_path: Path) -> None:
    (tmp_path / "client.crt").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    path = write_kubeconfig(
        tmp_path / "files.kubeconfig", "https://example.test:443",
        {"client-certificate": "client.crt", "client-key": "client.key"}, {"insecure-skip-tls-verify": True},
    )
    info = kopf_login(settings_for(path))
    assert info.insecure is True and info.ca_path is None
    assert Path(str(info.certificate_path)) == tmp_path / "client.crt"
    assert Path(str(info.private_key_path)) == tmp_path / "client.key"


def test_a_user_and_password_become_basic_credentials(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "basic.kubeconfig", "https://example.test",
                            {"username": "admin", "password": "s3cret"}, {"insecure-skip-tls-verify": True})
    info = kopf_login(settings_for(path))
    assert info.scheme == "Basic"
    assert base64.b64decode(str(info.token)).decode() == "admin:s3cret"


def test_kopf_and_the_client_read_the_same_cluster_as_the_same_user(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "same.kubeconfig", "https://10.9.9.9:6443",
                            {"token": "same-token"}, {"certificate-authority-data": b64(CA)})
    settings = settings_for(path)
    info = kopf_login(settings, trust_env=True)
    client = api_client(settings)
    assert client.configuration.host == info.server
    assert client.configuration.get_api_key_with_prefix("BearerToken") == f"{info.scheme} {info.token}"
    assert Path(client.configuration.ssl_ca_cert).read_text() == Path(str(info.ca_path)).read_text()
    assert info.trust_env is True


def test_a_changed_file_is_read_again_at_the_next_login(tmp_path: Path) -> None:
    """kopf logs in again after a 401: a rotated token in the file is picked up."""
    path = tmp_path / "rotating.kubeconfig"
    write_kubeconfig(path, "https://example.test", {"token": "old"}, {"insecure-skip-tls-verify": True})
    assert kopf_login(settings_for(path)).token == "old"
    write_kubeconfig(path, "https://example.test", {"token": "new"}, {"insecure-skip-tls-verify": True})
    assert kopf_login(settings_for(path)).token == "new"


def test_meshplane_kubeconfig_wins_over_kubeconfig(tmp_path: Path) -> None:
    ours = write_kubeconfig(tmp_path / "ours.kubeconfig", "https://ours.test", {"token": "ours"},
                            {"insecure-skip-tls-verify": True})
    theirs = write_kubeconfig(tmp_path / "theirs.kubeconfig", "https://theirs.test", {"token": "theirs"},
                              {"insecure-skip-tls-verify": True})
    both = Settings.from_env({"MESHPLANE_KUBECONFIG": str(ours), "KUBECONFIG": str(theirs)})
    assert both.kubeconfig == str(ours)
    assert (kopf_login(both).server, kopf_login(both).token) == ("https://ours.test", "ours")
    assert api_client(both).configuration.host == "https://ours.test"
    only_kubeconfig = Settings.from_env({"KUBECONFIG": str(theirs)})
    assert only_kubeconfig.kubeconfig == str(theirs)
    assert kopf_login(only_kubeconfig).server == "https://theirs.test"
    empty_ours = Settings.from_env({"MESHPLANE_KUBECONFIG": "", "KUBECONFIG": str(theirs)})
    assert empty_ours.kubeconfig == str(theirs)


def test_the_kubeconfig_variable_is_not_read_when_the_setting_names_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage = tmp_path / "garbage.kubeconfig"
    garbage.write_text("this: [is not a kubeconfig\n")
    monkeypatch.setenv("KUBECONFIG", str(garbage))
    path = write_kubeconfig(tmp_path / "good.kubeconfig", "https://good.test", {"token": "good"},
                            {"insecure-skip-tls-verify": True})
    settings = Settings.from_env({"MESHPLANE_KUBECONFIG": str(path), "KUBECONFIG": str(garbage)})
    assert kopf_login(settings).server == "https://good.test"


def test_a_missing_file_is_an_error_not_a_fallback(tmp_path: Path, no_kubeconfig_variable: Path) -> None:
    """No silent fallback to another source (in-cluster, ~/.kube/config): kopf retries the login."""
    with pytest.raises((ConfigException, OSError)):
        kopf_login(settings_for(no_kubeconfig_variable))


def test_without_a_kubeconfig_the_service_account_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("service-account-token")
    ca.write_text(CA)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    settings = Settings(identity="test")
    info = kopf_login(settings)
    assert info.server == "https://10.96.0.1:443"
    assert (info.scheme, info.token) == ("bearer", "service-account-token")
    assert info.ca_path == str(ca) and info.insecure is False
    assert api_client(settings).configuration.host == info.server

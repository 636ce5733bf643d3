"""Member kubeconfigs are checked as Kueue's MultiKueue checks them before any use."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from controller.operator.delivery.kubeconfig import KubeconfigError, api_client, check

CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def _config(cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None, **top: Any) -> str:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "m",
        "clusters": [{"name": "m", "cluster": cluster if cluster is not None else
                      {"server": "https://127.0.0.1:6443", "certificate-authority-data": CA}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "abc"}}],
        "contexts": [{"name": "m", "context": {"cluster": "m", "user": "u"}}],
        **top,
    }
    return yaml.safe_dump(config)


def test_an_inline_token_kubeconfig_is_accepted() -> None:
    _, target = check(_config())
    assert (target.server, target.user) == ("https://127.0.0.1:6443", "u")


@pytest.mark.parametrize(("text", "says"), [
    (_config(cluster={"server": "https://x:6443", "insecure-skip-tls-verify": True}), "insecure-skip-tls-verify"),
    (_config(cluster={"server": "https://x:6443", "certificate-authority": "/etc/ca.crt"}), "file path"),
    (_config(user={"tokenFile": "/var/run/token"}), "tokenFile is a file path"),
    (_config(user={"client-certificate": "/c.crt", "client-key": "/c.key"}), "client-certificate is a file path"),
    (_config(user={"exec": {"command": "aws"}}), "exec plugins are not allowed"),
    (_config(user={"auth-provider": {"name": "gcp"}}), "auth-provider plugins are not allowed"),
    (_config(user={}), "no credential"),
    (_config(cluster={"server": "http://x:8080", "certificate-authority-data": CA}), "https://"),
    (_config(**{"current-context": ""}), "no current-context"),
    ("key: [unclosed", "not YAML"),
    ("[]", "not a kubeconfig"),
])
def test_unsafe_or_incomplete_kubeconfigs_are_refused_naming_why(text: str, says: str) -> None:
    with pytest.raises(KubeconfigError, match=says.replace("+", r"\+")):
        api_client(text)

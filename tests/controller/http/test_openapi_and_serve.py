"""The committed OpenAPI document follows the code, and ``meshctl serve`` serves the
examples from a real process on a real port (and refuses a non-loopback host)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from controller.cli import main
from controller.http.openapi import openapi_text

REPO = Path(__file__).resolve().parents[3]
MESHCTL = Path(sys.executable).with_name("meshctl")


def test_the_committed_openapi_document_is_current():
    assert (REPO / "docs" / "openapi.json").read_text() == openapi_text(), "run `make crds`"


def test_the_document_describes_every_endpoint_and_bearer_auth():
    document = json.loads(openapi_text())
    assert set(document["paths"]) == {
        "/api/v1/mesh", "/api/v1/workloads", "/api/v1/workloads/{namespace}/{name}", "/api/v1/solve",
        "/api/v1/plan", "/api/v1/version", "/api/v1/timeline",
    }
    mesh = document["paths"]["/api/v1/mesh"]["get"]
    assert {"200", "401", "403", "503"} <= set(mesh["responses"]) and mesh["security"] == [{"HTTPBearer": []}]
    site = document["components"]["schemas"]["SiteView"]["properties"]
    assert "onlineDevicesNext24h" in site and "workloadCount" in site


def test_serve_refuses_a_non_loopback_host_without_the_flag(capsys):
    assert main(["serve", "-f", str(REPO / "examples"), "--host", "0.0.0.0"]) == 2
    assert "--insecure-no-auth" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served():
    port = _free_port()
    process = subprocess.Popen(
        [str(MESHCTL), "serve", "-f", str(REPO / "examples"), "--port", str(port), "--at", "2026-11-22T22:00:00Z"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/api/v1/version", timeout=1)
            break
        except httpx.TransportError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_meshctl_serve_answers_on_loopback(served: str):
    assert httpx.get(f"{served}/api/v1/version").json() == {"version": 1}
    mesh = httpx.get(f"{served}/api/v1/mesh").json()
    assert mesh["at"] == "2026-11-22T22:00:00Z" and len(mesh["sites"]) == 8
    page = httpx.get(f"{served}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")

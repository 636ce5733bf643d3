"""What the dashboard's browser tests share: a ``meshctl serve`` process, a watched
Playwright page, and the checks of the mesh graph read through cytoscape's own API
(``window.__meshplane.cy``): labels that do not collide, a graph that fills its panel,
workload edges aggregated as the page says it does them.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MESHPLANE_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1280, "height": 800}
READY = "() => window.__meshplane && window.__meshplane.ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def meshctl_serve(directory: Path, at: str, timeout_s: float = 60) -> Iterator[str]:
    """``meshctl serve -f DIRECTORY --at AT`` on a free loopback port; its base URL once
    it answers with a plan (version 1)."""
    port = free_port()
    meshctl = Path(sys.executable).with_name("meshctl")
    process = subprocess.Popen(
        [str(meshctl), "serve", "-f", str(directory), "--port", str(port), "--at", at],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"meshctl serve exited {process.returncode}: {process.stdout.read() if process.stdout else ''}")
            try:
                with urllib.request.urlopen(base + "api/v1/version", timeout=2) as response:
                    if json.load(response)["version"] > 0:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"meshctl serve did not answer within {timeout_s:g} s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return json.load(response)


@dataclass
class Watched:
    """A page, every URL it requested and every error Chromium logged for it."""

    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        foreign = [url for url in self.requests if origin_of(url) != self.origin]
        assert not foreign, f"requests left {self.origin}: {foreign}"
        assert not self.errors, f"Chromium logged errors: {self.errors}"
        assert self.requests, "the page made no request at all"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def watch(context: Any, base: str) -> Watched:
    page = context.new_page()
    page.set_default_timeout(60_000)
    w = Watched(page, origin_of(base))
    page.on("request", lambda request: w.requests.append(request.url))

    def console(message: Any) -> None:
        if message.type == "error":
            w.errors.append(message.text)
        elif message.type == "warning":
            w.warnings.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: w.errors.append(f"uncaught: {error}"))
    return w


def assert_png_size(path: Path, width: int, height: int) -> None:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert struct.unpack(">II", header[16:24]) == (width, height), f"{path} is not {width}x{height}"


# ---- the graph, as the page draws it -----------------------------------------------


def main_user_region(workload: dict[str, Any]) -> str | None:
    """The region a workload's placed work is drawn from: its heaviest user region,
    ties by name (the page's rule, written apart from it)."""
    users = sorted(workload.get("users") or [], key=lambda u: (-u["weight"], u["region"]))
    return users[0]["region"] if users else None


def expected_flows(mesh: dict[str, Any], workloads: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str], int]:
    """From the API's answers: placed assignments per drawn workload edge
    (``flow:REGION->SITE``), per site for work without user regions, and in all."""
    sites = {s["name"] for s in mesh["sites"]}
    flows: Counter[str] = Counter()
    local: Counter[str] = Counter()
    total = 0
    for w in workloads:
        if w["phase"] != "Placed":
            continue
        main = main_user_region(w)
        for assignment in w["assignments"]:
            if assignment["site"] not in sites:
                continue
            total += 1
            if main is None:
                local[assignment["site"]] += 1
            else:
                flows[f"flow:{main}->{assignment['site']}"] += 1
    return flows, local, total


# Every drawn label (a label string, not hidden by the page, its element shown) with its
# rendered box as cytoscape computes it; every drawn node body; the panel's size.
GRAPH_GEOMETRY = """() => {
  const cy = window.__meshplane.cy;
  const labelOnly = { includeNodes: false, includeEdges: false, includeLabels: true, includeOverlays: false,
    includeUnderlays: false };
  const shown = (e) => e.visible() && e.effectiveOpacity() > 0;
  const labels = cy.elements().filter((e) => shown(e) && e.pstyle('label').strValue
    && e.pstyle('text-opacity').value > 0).map((e) => ({
      id: e.id(), text: e.pstyle('label').strValue, box: e.renderedBoundingBox(labelOnly),
      px: e.pstyle('font-size').pfValue * cy.zoom(), type: e.data('type') }));
  const bodies = cy.nodes().filter((n) => shown(n) && !n.isParent()).map((n) => ({ id: n.id(),
    box: n.renderedBoundingBox({ includeLabels: false, includeOverlays: false, includeUnderlays: false }) }));
  const all = cy.elements().renderedBoundingBox();
  const panel = cy.container().getBoundingClientRect();
  const card = cy.container().closest('section').getBoundingClientRect();
  return { labels, bodies, all, width: cy.width(), height: cy.height(), zoom: cy.zoom(),
    panelHeight: panel.height, cardHeight: card.height };
}"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]


def check_graph_geometry(page: Any, min_label_px: float = 7.0, whole: bool = True) -> dict[str, Any]:
    """No two drawn labels intersect, no label covers another node, every label is drawn
    at a readable size; with the ``whole`` graph in view (as the page fits it), every
    label is inside the panel, the graph fills its panel and the panel its card.
    Returns the geometry for further checks."""
    g = page.evaluate(GRAPH_GEOMETRY)
    labels = g["labels"]
    assert labels, "no label is drawn"
    collisions = [(a["id"], b["id"]) for i, a in enumerate(labels) for b in labels[i + 1:] if _overlap(a["box"], b["box"])]
    assert not collisions, f"labels drawn over each other: {collisions}"
    covered = [(label["id"], body["id"]) for label in labels for body in g["bodies"]
               if label["id"] != body["id"] and _overlap(label["box"], body["box"])]
    assert not covered, f"labels drawn over nodes: {covered}"
    tiny = [(label["id"], round(label["px"], 1)) for label in labels if label["px"] < min_label_px]
    assert not tiny, f"labels too small to read: {tiny}"
    if not whole:
        return dict(g)
    outside = [label["id"] for label in labels if label["box"]["x1"] < -1 or label["box"]["y1"] < -1
               or label["box"]["x2"] > g["width"] + 1 or label["box"]["y2"] > g["height"] + 1]
    assert not outside, f"labels cut by the panel's edge: {outside}"
    # the graph fills its panel: one side (nearly) whole, most of the area; the panel its card
    box, width, height = g["all"], g["width"], g["height"]
    assert box["w"] >= 0.9 * width or box["h"] >= 0.9 * height, (box, width, height)
    assert box["w"] * box["h"] >= 0.6 * width * height, (box, width, height)
    assert g["panelHeight"] >= 0.75 * g["cardHeight"], g
    return dict(g)

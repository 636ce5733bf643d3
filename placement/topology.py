"""Topology: the network graph of regions and sites, and the latency matrix.

Called by :mod:`placement.snapshot`. Nodes are regions and factories; a factory sits
in its region (0 ms) and its links join it to other regions, so factories also carry
traffic between regions. Fleets are leaves: they reach the graph at their region and
at each link target, always through their uplink (they never carry transit traffic).
Links are undirected; parallel links keep the lowest latency.

Latency from a user region to a site = shortest path (networkx Dijkstra). The
matrix is cached on the links alone, so it is recomputed only when links change.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from placement.problem import Mesh

Node = tuple[str, str]  # ("region", name) or ("site", name)
_CACHE: OrderedDict[tuple[Any, ...], LatencyMatrix] = OrderedDict()
_CACHE_SIZE = 8
# the operator's solve loop and the HTTP API's threads plan at the same time: a lookup's
# move_to_end must not meet another thread's eviction of that key
_CACHE_LOCK = threading.Lock()


class LatencyMatrix:
    """Shortest-path latency in ms, regions x sites (inf = unreachable)."""

    __slots__ = ("regions", "sites", "ms", "region_index", "site_index")

    def __init__(self, regions: tuple[str, ...], sites: tuple[str, ...], ms: NDArray[np.float64]):
        self.regions = regions
        self.sites = sites
        self.ms = ms
        self.ms.setflags(write=False)
        self.region_index = {r: i for i, r in enumerate(regions)}
        self.site_index = {s: i for i, s in enumerate(sites)}

    def latency_ms(self, region: str, site: str) -> float:
        r = self.region_index.get(region)
        if r is None:
            return math.inf
        return float(self.ms[r, self.site_index[site]])


def _topology_key(mesh: Mesh, regions: tuple[str, ...]) -> tuple[Any, ...]:
    fac = tuple(
        (f.name, f.region, tuple((link.to, link.latency_ms) for link in f.links)) for f in mesh.factories
    )
    flt = tuple(
        (f.name, f.region, f.uplink_latency_ms, tuple((link.to, link.latency_ms) for link in f.links))
        for f in mesh.fleets
    )
    return (fac, flt, regions)


def build_graph(mesh: Mesh) -> nx.Graph:
    """Regions and factories joined by links (weight = latency_ms)."""
    g = nx.Graph()

    def add(a: Node, b: Node, ms: float) -> None:
        if g.has_edge(a, b):
            ms = min(ms, g[a][b]["latency_ms"])
        g.add_edge(a, b, latency_ms=float(ms))

    for f in mesh.factories:
        g.add_node(("region", f.region))
        add(("site", f.name), ("region", f.region), 0.0)
        for link in f.links:
            add(("site", f.name), ("region", link.to), link.latency_ms)
    for fl in mesh.fleets:
        g.add_node(("region", fl.region))
        for link in fl.links:
            g.add_node(("region", link.to))
    return g


def all_regions(mesh: Mesh) -> tuple[str, ...]:
    """Every region named anywhere in the mesh, sorted."""
    regions: set[str] = set()
    for f in mesh.factories:
        regions.add(f.region)
        regions.update(link.to for link in f.links)
    for fl in mesh.fleets:
        regions.add(fl.region)
        regions.update(link.to for link in fl.links)
    for w in mesh.workloads:
        regions.update(u.region for u in w.users)
    return tuple(sorted(regions))


def latency_matrix(mesh: Mesh) -> LatencyMatrix:
    """Latency (ms) from every region to every site (factories, then fleets)."""
    regions = all_regions(mesh)
    key = _topology_key(mesh, regions)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    g = build_graph(mesh)
    sites = tuple(f.name for f in mesh.factories) + tuple(f.name for f in mesh.fleets)
    ms = np.full((len(regions), len(sites)), np.inf)
    nf = len(mesh.factories)
    for ri, region in enumerate(regions):
        node = ("region", region)
        dist: dict[Node, float] = (
            nx.single_source_dijkstra_path_length(g, node, weight="latency_ms") if node in g else {}
        )
        for si, f in enumerate(mesh.factories):
            ms[ri, si] = dist.get(("site", f.name), np.inf)
        for fi, fl in enumerate(mesh.fleets):
            best = dist.get(("region", fl.region), math.inf)
            for link in fl.links:
                best = min(best, dist.get(("region", link.to), math.inf) + link.latency_ms)
            ms[ri, nf + fi] = best + fl.uplink_latency_ms
    result = LatencyMatrix(regions, sites, ms)
    with _CACHE_LOCK:
        _CACHE[key] = result
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result

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
from collections import OrderedDict

import networkx as nx
import numpy as np

from placement.problem import Mesh

_CACHE: OrderedDict[tuple, "LatencyMatrix"] = OrderedDict()
_CACHE_SIZE = 8


class LatencyMatrix:
    """Shortest-path latency in ms, regions x sites (inf = unreachable)."""

    __slots__ = ("regions", "sites", "ms", "region_index", "site_index")

    def __init__(self, regions: tuple[str, ...], sites: tuple[str, ...], ms: np.ndarray):
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


def _topology_key(mesh: Mesh, regions: tuple[str, ...]) -> tuple:
    fac = tuple(
        (f.name, f.region, tuple((l.to, l.latency_ms) for l in f.links)) for f in mesh.factories
    )
    flt = tuple(
        (f.name, f.region, f.uplink_latency_ms, tuple((l.to, l.latency_ms) for l in f.links))
        for f in mesh.fleets
    )
    return (fac, flt, regions)


def build_graph(mesh: Mesh) -> nx.Graph:
    """Regions and factories joined by links (weight = latency_ms)."""
    g = nx.Graph()

    def add(a: str, b: str, ms: float) -> None:
        if g.has_edge(a, b):
            ms = min(ms, g[a][b]["latency_ms"])
        g.add_edge(a, b, latency_ms=float(ms))

    for f in mesh.factories:
        g.add_node(("region", f.region))
        add(("site", f.name), ("region", f.region), 0.0)
        for link in f.links:
            add(("site", f.name), ("region", link.to), link.latency_ms)
    for f in mesh.fleets:
        g.add_node(("region", f.region))
        for link in f.links:
            g.add_node(("region", link.to))
    return g


def all_regions(mesh: Mesh) -> tuple[str, ...]:
    """Every region named anywhere in the mesh, sorted."""
    regions: set[str] = set()
    for f in mesh.factories:
        regions.add(f.region)
        regions.update(l.to for l in f.links)
    for f in mesh.fleets:
        regions.add(f.region)
        regions.update(l.to for l in f.links)
    for w in mesh.workloads:
        regions.update(u.region for u in w.users)
    return tuple(sorted(regions))


def latency_matrix(mesh: Mesh) -> LatencyMatrix:
    """Latency (ms) from every region to every site (factories, then fleets)."""
    regions = all_regions(mesh)
    key = _topology_key(mesh, regions)
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
        if node not in g:
            dist: dict = {}
        else:
            dist = nx.single_source_dijkstra_path_length(g, node, weight="latency_ms")
        for si, f in enumerate(mesh.factories):
            ms[ri, si] = dist.get(("site", f.name), np.inf)
        for fi, f in enumerate(mesh.fleets):
            best = dist.get(("region", f.region), np.inf)
            for link in f.links:
                best = min(best, dist.get(("region", link.to), np.inf) + link.latency_ms)
            ms[ri, nf + fi] = best + f.uplink_latency_ms
    result = LatencyMatrix(regions, sites, ms)
    _CACHE[key] = result
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result

import math

from placement.problem import FactorySite, FleetSite, Link, Mesh
from placement.topology import latency_matrix


def mesh():
    a = FactorySite(name="fa", region="ra", country="US", firm_mw=1, links=(Link("rb", 10.0), Link("rc", 50.0)))
    b = FactorySite(name="fb", region="rb", country="US", firm_mw=1, links=(Link("rc", 15.0),))
    car = FleetSite(name="cars", region="rc", country="US", uplink_latency_ms=30.0)
    lonely = FleetSite(name="island", region="rz", country="US", uplink_latency_ms=5.0)
    return Mesh(factories=(a, b), fleets=(car, lonely))


def test_shortest_paths_through_factories():
    lm = latency_matrix(mesh())
    assert lm.latency_ms("ra", "fa") == 0.0
    assert lm.latency_ms("rc", "fa") == 25.0  # rc -> fb (15) -> rb -> fa (10) beats 50
    assert lm.latency_ms("ra", "fb") == 10.0


def test_fleets_are_reached_through_their_uplink():
    lm = latency_matrix(mesh())
    assert lm.latency_ms("rc", "cars") == 30.0
    assert lm.latency_ms("ra", "cars") == 25.0 + 30.0
    assert lm.latency_ms("rz", "island") == 5.0
    assert math.isinf(lm.latency_ms("ra", "island"))
    assert math.isinf(lm.latency_ms("nowhere", "fa"))


def test_matrix_cached_until_links_change():
    m = mesh()
    assert latency_matrix(m) is latency_matrix(mesh())
    changed = Mesh(factories=(m.factories[0],), fleets=m.fleets)
    assert latency_matrix(changed) is not latency_matrix(m)


def test_the_cache_serves_threads_planning_at_once():
    """The operator's solve loop and the HTTP API's threads look matrices up at the
    same time; with more topologies than the cache holds, lookups meet evictions.
    Every thread must get its own topology's matrix and no error."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    base = mesh()
    variants = [replace(base, factories=(replace(base.factories[0], links=(Link("rb", 10.0 + i),)),
                                         base.factories[1])) for i in range(20)]

    def look(i: int) -> float:
        return latency_matrix(variants[i % len(variants)]).latency_ms("rb", "fa")

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(look, range(2_000)))
    assert got == [10.0 + i % len(variants) for i in range(2_000)]

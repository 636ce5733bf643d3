"""The writer's pure parts (names, truncation, dedup keys, plurals) and its bookkeeping
against stub API objects: nothing here needs an API server (tests/e2e/test_writer.py
does the real thing)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from controller.core.changes import Change, Event, ObjectRef
from controller.operator.writer import (
    MESSAGE_LIMIT,
    StatusWriter,
    WriteStats,
    event_key,
    event_name,
    involved_object,
    plural_of,
    truncate_message,
)

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
WORKLOAD = ObjectRef("MeshWorkload", "chat-us-west", "inference")
FACTORY = ObjectRef("AIFactory", "us-memphis-1")


def test_plurals_come_from_the_kinds_registry():
    assert plural_of("AIFactory") == "aifactories"
    assert plural_of("EdgeFleet") == "edgefleets"
    assert plural_of("MeshWorkload") == "meshworkloads"
    with pytest.raises(ValueError, match="Pod"):
        plural_of("Pod")


def test_messages_are_cut_to_1024_bytes_never_inside_a_character():
    assert truncate_message("short") == "short"
    exact = "x" * MESSAGE_LIMIT
    assert truncate_message(exact) == exact
    cut = truncate_message("y" * 5000)
    assert len(cut.encode()) == MESSAGE_LIMIT and cut.endswith("...")
    wide = truncate_message("\u00e9\u6771" * 1000)  # 2- and 3-byte characters
    assert len(wide.encode()) <= MESSAGE_LIMIT and wide.endswith("...")
    wide.encode().decode()  # still valid UTF-8


def test_the_dedup_key_is_the_event_as_sent():
    long = "z" * 3000
    a = event_key(Event(WORKLOAD, "Warning", "Unschedulable", long + "a"))
    b = event_key(Event(WORKLOAD, "Warning", "Unschedulable", long + "b"))
    assert a == b  # they differ only past the cut: the same Event on the server
    assert len(a.message.encode()) <= MESSAGE_LIMIT
    assert event_key(Event(WORKLOAD, "Normal", "Placed", "m")) != event_key(Event(WORKLOAD, "Normal", "Moved", "m"))
    assert event_key(Event(WORKLOAD, "Normal", "Placed", "m")) != event_key(
        Event(ObjectRef("MeshWorkload", "chat-us-west", "other"), "Normal", "Placed", "m")
    )


def test_event_names_are_valid_bounded_and_deterministic():
    key = event_key(Event(WORKLOAD, "Normal", "Placed", "placed on x"))
    name = event_name("chat-us-west", key, "salt")
    assert name == event_name("chat-us-west", key, "salt")
    assert name.startswith("chat-us-west.") and DNS_SUBDOMAIN.match(name)
    assert event_name("chat-us-west", key, "other salt") != name
    other = event_key(Event(WORKLOAD, "Normal", "Moved", "placed on x"))
    assert event_name("chat-us-west", other, "salt") != name
    for long_name in ("a" * 253, "a" * 235 + "-b" + "c" * 16, ("ab." * 84)[:253]):
        n = event_name(long_name, key, "s")
        assert len(n) <= 253 and DNS_SUBDOMAIN.match(n), n


def test_involved_object_of_namespaced_and_cluster_scoped_objects():
    assert involved_object(WORKLOAD, "meshplane-system", "u-1") == {
        "apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload", "name": "chat-us-west",
        "namespace": "inference", "uid": "u-1",
    }
    # the API server takes an Event about a cluster-scoped object in "default" only
    assert "namespace" not in involved_object(FACTORY, "default")
    assert involved_object(FACTORY, "meshplane-system")["namespace"] == "meshplane-system"


def test_write_stats_add_up():
    a = WriteStats(status_patches=2, events_created=1, written={WORKLOAD})
    a.add(WriteStats(status_patches=1, fenced=3, written={FACTORY}))
    assert a.counts() == {"status_patches": 3, "events_created": 1, "events_updated": 0, "not_found": 0,
                          "conflicts": 0, "errors": 0, "fenced": 3}
    assert a.written == {WORKLOAD, FACTORY} and a.requests == 4
    assert WriteStats().counts() == dict.fromkeys(WriteStats().counts(), 0)


# --------------------------------------------------------------------------- stubs


class _Custom:
    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail or {}

    def _call(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["_content_type"] == "application/merge-patch+json"
        self.calls.append(args)
        name = args[-2]
        if name in self.fail:
            raise ApiException(status=self.fail[name], reason="stub")
        return {}

    patch_namespaced_custom_object_status = _call
    patch_cluster_custom_object_status = _call


class _Core:
    def __init__(self) -> None:
        self.created: list[Any] = []
        self.patched: list[tuple[str, str, dict[str, Any]]] = []

    def create_namespaced_event(self, namespace: str, body: Any, **kwargs: Any) -> Any:
        self.created.append((namespace, body))
        return body

    def patch_namespaced_event(self, name: str, namespace: str, body: dict[str, Any], **kwargs: Any) -> Any:
        assert kwargs["_content_type"] == "application/merge-patch+json"
        self.patched.append((name, namespace, body))
        return body


def _writer(**kwargs: Any) -> tuple[StatusWriter, _Custom, _Core]:
    fail = kwargs.pop("fail", None)
    writer = StatusWriter(ApiClient(), "meshplane-system", instance="test", **kwargs)
    custom, core = _Custom(fail), _Core()
    writer._custom, writer._core = custom, core  # type: ignore[assignment]
    return writer, custom, core


def _ref(i: int) -> ObjectRef:
    return ObjectRef("MeshWorkload", f"w{i}", "ns")


def test_one_patch_per_object_and_call_and_one_event_object_per_key():
    writer, custom, core = _writer()
    ev = Event(WORKLOAD, "Normal", "Placed", "placed on us-memphis-1")
    stats = writer.write([
        Change(WORKLOAD, {"status": {"phase": "Placed", "message": "a"}}, (ev,)),
        Change(WORKLOAD, {"status": {"message": None}}, (ev,)),
    ])
    assert len(custom.calls) == 1
    assert custom.calls[0][-1] == {"status": {"phase": "Placed", "message": None}}
    assert (stats.status_patches, stats.events_created, stats.events_updated) == (1, 1, 1)
    assert core.patched[0][2]["count"] == 2
    site = Event(FACTORY, "Warning", "Curtailed", "grid")
    writer.write([Change(FACTORY, None, (site,))])
    assert core.created[-1][0] == "meshplane-system"


def test_errors_and_deletions_are_counted_never_raised_and_the_others_are_written():
    writer, custom, core = _writer(fail={"w1": 404, "w2": 500, "w3": 409})
    changes = [Change(_ref(i), {"status": {"phase": "Placed"}}, (Event(_ref(i), "Normal", "Placed", "x"),))
               for i in range(6)]
    stats = writer.write(changes)
    assert (stats.not_found, stats.errors, stats.conflicts, stats.status_patches) == (1, 1, 1, 3)
    assert stats.events_created == 3  # no event for an object whose status was not written
    assert stats.written == {_ref(0), _ref(4), _ref(5)}


def test_the_fence_is_asked_before_each_request_and_closes_the_rest_of_the_batch():
    answers = iter([True, True, True, False, True, True])
    writer, custom, core = _writer(may_write=lambda: next(answers, True), max_concurrency=1)
    changes = [Change(_ref(i), {"status": {"phase": "Placed"}}, (Event(_ref(i), "Normal", "Placed", "x"),))
               for i in range(4)]
    stats = writer.write(changes)
    # statuses first (three allowed, the fourth fenced), then events: all fenced
    assert (stats.status_patches, stats.events_created, stats.fenced) == (3, 0, 5)
    assert len(custom.calls) + len(core.created) == 3
    # the next call asks again
    assert writer.write(changes[3:]).status_patches == 1


class _VersionedCustom(_Custom):
    """Answers like the API server: 409 when the precondition is not the stored version,
    else the object with a new resourceVersion."""

    def __init__(self, stored: dict[str, str]) -> None:
        super().__init__()
        self.stored = stored

    def _call(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(args)
        name, body = args[-2], args[-1]
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if sent is not None and sent != self.stored[name]:
            raise ApiException(status=409, reason="Conflict")
        self.stored[name] = str(int(self.stored[name]) + 1)
        return {"metadata": {"name": name, "resourceVersion": self.stored[name]}, "status": body["status"]}

    patch_namespaced_custom_object_status = _call
    patch_cluster_custom_object_status = _call


def test_a_patch_carries_its_version_and_a_stale_one_is_dropped_without_its_events():
    writer, _, core = _writer()
    custom = _VersionedCustom({"w0": "10", "w1": "20", "w2": "30"})
    writer._custom = custom  # type: ignore[assignment]
    changes = [Change(_ref(i), {"status": {"phase": "Placed"}}, (Event(_ref(i), "Normal", "Placed", "x"),),
                      version=version) for i, version in enumerate(["10", "19", None])]
    stats = writer.write(changes)
    sent = {args[-2]: args[-1] for args in custom.calls}
    assert sent["w0"] == {"status": {"phase": "Placed"}, "metadata": {"resourceVersion": "10"}}
    assert sent["w2"] == {"status": {"phase": "Placed"}}  # no version known: no precondition
    assert stats.conflicted == {_ref(1)} and stats.conflicts == 1 and stats.errors == 0
    assert stats.written == {_ref(0), _ref(2)}
    assert stats.versions == {_ref(0): "11", _ref(2): "31"}  # the next patch's precondition
    assert sorted(body.involved_object.name for _, body in core.created) == ["w0", "w2"]  # none for w1


class _SlowCore(_Core):
    def __init__(self) -> None:
        super().__init__()
        import threading

        self.release = threading.Event()

    def create_namespaced_event(self, namespace: str, body: Any, **kwargs: Any) -> Any:
        self.release.wait(5)
        return super().create_namespaced_event(namespace, body, **kwargs)


def test_events_in_the_background_follow_the_statuses_in_order_per_object():
    counted: list[WriteStats] = []
    writer, custom, _ = _writer(events_in_background=True, on_event_stats=counted.append, max_concurrency=4)
    core = _SlowCore()
    writer._core = core  # type: ignore[assignment]
    try:
        first = writer.write([Change(_ref(i), {"status": {"phase": "Placed"}},
                                     (Event(_ref(i), "Normal", "Placed", f"first {i}"),)) for i in range(6)])
        # the statuses are stored and write() returned while no Event could be sent yet
        assert first.status_patches == 6 and first.events_created == 0 and core.created == []
        writer.write([Change(_ref(i), {"status": {"phase": "Preempted"}},
                             (Event(_ref(i), "Warning", "Preempted", f"second {i}"),)) for i in range(6)])
        core.release.set()
        assert writer.flush(10)
        for i in range(6):
            reasons = [body.reason for _, body in core.created if body.involved_object.name == f"w{i}"]
            assert reasons == ["Placed", "Preempted"]  # one object's Events in the order of the solves
        assert sum(s.events_created for s in counted) == 12
    finally:
        writer.stop()


def test_background_events_ask_the_fence_too():
    answers = iter([True, True, False])  # two status patches allowed, then the Lease is lost
    writer, custom, core = _writer(events_in_background=True, may_write=lambda: next(answers, False),
                                   max_concurrency=1)
    try:
        stats = writer.write([Change(_ref(i), {"status": {"phase": "Placed"}},
                                     (Event(_ref(i), "Normal", "Placed", "x"),)) for i in range(2)])
        assert stats.status_patches == 2
        assert writer.flush(10)
        assert core.created == []  # the fence closed before the first Event
    finally:
        writer.stop()

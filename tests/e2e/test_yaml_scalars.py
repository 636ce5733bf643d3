"""YAML scalars as the API server reads them, against ``controller.core.yamlcompat``.

``meshctl validate/plan`` must read a manifest exactly as ``kubectl`` and the API server
do (go-yaml v2 resolution, then JSON). Every edge scalar of ``SCALARS`` is written,
as raw YAML text, into fields of each type of real meshplane objects (a number, an
integer, a boolean, strings with and without a pattern) and goes both ways:

- ``kubectl create --dry-run=server -o json -f -``: the real kubectl's reader, then
  the API server's decoding, schema validation and admission; nothing is stored;
- ``controller.core.parse.parse_text`` (as ``meshctl`` reads a file): our loader, then the models.

For each case (a) the API server accepts it <=> we accept it, and (b) when accepted,
the value the server returns equals the value our loader parsed (same JSON type and
value). Whole-document cases check duplicate keys, merge keys and document
separators the same way. One test collects every disagreement and lists them all.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, say

pytestmark = pytest.mark.e2e

MARK = "«value»"

FACTORY = """\
apiVersion: meshplane.io/v1alpha1
kind: AIFactory
metadata:
  name: yaml-scalars-factory
  annotations:
    meshplane.io/probe: {annotation}
spec:
  region: {region}
  country: US
  power:
    firmMW: {firm}
    flexibleMW: 20
    curtailedMW: 0
    pue: 1.2
    pricePerMWh: 60
    carbonGramsPerKWh: 300
  acceleratorPools:
  - model: nvidia-gb200
    count: 1000
    wattsPerDevice: 1800
    tokensPerSecondPerDevice: 3000
    memoryGiB: 186
"""

WORKLOAD = """\
apiVersion: meshplane.io/v1alpha1
kind: MeshWorkload
metadata:
  name: yaml-scalars-workload
  namespace: {namespace}
spec:
  type: inference
  tokensPerSecond: 5000
  interruptible: {interruptible}
  priority: {priority}
"""

FLEET = """\
apiVersion: meshplane.io/v1alpha1
kind: EdgeFleet
metadata:
  name: yaml-scalars-fleet
spec:
  region: us-west
  country: US
  deviceClass: vehicle
  devices: 1000
  optInRatio: 0.3
  perDevice:
    acceleratorModel: vehicle-ai5
    tokensPerSecond: 150
    watts: 1000
    memoryGiB: 16
  availability:
  - start: {start}
    end: "06:00"
    timezone: America/Los_Angeles
    onlineRatio: 0.7
  maxFleetMW: 50
  uplink: {{latencyMs: 35, bandwidthMbps: 50}}
"""


@dataclass(frozen=True)
class Field:
    name: str  # what the field holds, for messages
    template: str
    placeholder: str
    path: tuple[str | int, ...]
    defaults: dict[str, str]

    def text(self, scalar: str, namespace: str) -> str:
        values = {**self.defaults, "namespace": namespace, self.placeholder: MARK}
        return self.template.format(**values).replace(MARK, scalar)


_FACTORY_DEFAULTS = {"annotation": "x", "region": "us-south", "firm": "100"}
_WORKLOAD_DEFAULTS = {"interruptible": "false", "priority": "100"}
FIELDS = [
    Field("number AIFactory spec.power.firmMW", FACTORY, "firm", ("spec", "power", "firmMW"), _FACTORY_DEFAULTS),
    Field("integer MeshWorkload spec.priority", WORKLOAD, "priority", ("spec", "priority"), _WORKLOAD_DEFAULTS),
    Field("boolean MeshWorkload spec.interruptible", WORKLOAD, "interruptible", ("spec", "interruptible"),
          _WORKLOAD_DEFAULTS),
    Field("DNS-label string AIFactory spec.region", FACTORY, "region", ("spec", "region"), _FACTORY_DEFAULTS),
    Field("HH:MM string EdgeFleet spec.availability[0].start", FLEET, "start",
          ("spec", "availability", 0, "start"), {}),
    Field("string AIFactory metadata.annotations", FACTORY, "annotation",
          ("metadata", "annotations", "meshplane.io/probe"), _FACTORY_DEFAULTS),
]

# Raw YAML text of each scalar, as written after "key: ".
SCALARS = [
    # numbers
    "100", "+1", "-0", "-1", "0.5", "1.", "1.0", "5.", ".5", "+.5", "1e3", "1E3", "1E+3", "0.1e-2", "-1.5e-3",
    "1e-7", "1_000", "1_000.5", "0777", "0o777", "017", "0o17", "08", "09.5", "0x1F", "0x_1F", "-0x1F", "0b101",
    "-0b101", "9223372036854775807", "18446744073709551615", "1e400", ".inf", "-.Inf", ".nan",
    # booleans (YAML 1.1, as go-yaml v2 reads them)
    "true", "True", "TRUE", "tRUE", "false", "yes", "Yes", "YES", "no", "NO", "y", "Y", "n", "N", "on", "On", "OFF",
    "off",
    # nulls
    "~", "null", "Null", "NULL", "",
    # times and dates: no sexagesimal numbers, timestamps stay strings
    "22:00", "06:00", "12:30", "1:30:00", "190:20:30", "2026-11-22", "2026-11-22T10:00:00Z", "2026-11-22 10:00:00",
    # strings
    "us-west", "eu-central", "'us-west'", '"us-west"', "'1e3'", '"yes"', "'22:00'", "'100'", "yes-please",
    "on-prem", "0x1F-a", "1e3x", "= x", "<<", "'<<'", '"\\u0031\\u0030\\u0030"', '"tab\\there"',
    # explicit tags
    "!!str 1e3", "!!str yes", "!!str 22:00", "!!float 1", "!!float '2'", "!!int 0x1F", "!!int '12'", "!!int 1.5",
    "!!int yes", "!!bool yes", "!!bool 1", "!!null ~", "!!null x", "!!timestamp 2026-11-22", "!!timestamp x",
    "!!binary dXMtd2VzdA==", "! 12", "!custom 12", "!custom us-west",
    # anchors and aliases inside one scalar position
    "&a 12", "&a us-west",
]

# Whole documents: (description, text with {namespace}, path compared).
DOCUMENTS: list[tuple[str, str, tuple[str | int, ...]]] = [
    ("a duplicate key: the last one wins", WORKLOAD.replace("  priority: {priority}\n", "  priority: 5\n  priority: 7\n"),
     ("spec", "priority")),
    ("a key after a merge overrides it",
     WORKLOAD.replace("  priority: {priority}\n", "  <<: {{priority: 3}}\n  priority: 9\n"), ("spec", "priority")),
    ("a merge after a key overrides the key (go-yaml)",
     WORKLOAD.replace("  priority: {priority}\n", "  priority: 9\n  <<: {{priority: 3}}\n"), ("spec", "priority")),
    ("of merged mappings the first wins",
     WORKLOAD.replace("  priority: {priority}\n", "  <<: [{{priority: 3}}, {{priority: 4}}]\n"), ("spec", "priority")),
    ("a merge of an alias",
     WORKLOAD.replace("  type: inference\n", "  type: &t inference\n").replace(
         "  priority: {priority}\n", "  latency: &l {{maxMs: 40, users: [{{region: us-west, weight: 1}}]}}\n"
         "  placement: {{<<: *l, splittable: true}}\n"), ("spec", "placement")),
    ("a merge of a scalar is an error", WORKLOAD.replace("  priority: {priority}\n", "  <<: 3\n"), ("spec",)),
    ("an alias of a whole mapping", WORKLOAD.replace("  priority: {priority}\n", "  latency: &l {{maxMs: 40, "
     "users: [{{region: us-west, weight: 1}}]}}\n  placement: *l\n"), ("spec", "placement")),
    ("text after '...' is not read", WORKLOAD.replace("  priority: {priority}\n", "  priority: 4\n...\nbogus: [\n"),
     ("spec", "priority")),
    ("a '---' line with text after it is an error", WORKLOAD + "--- foo\n", ("spec",)),
    ("a '---' line with a comment is a separator", "--- # first\n" + WORKLOAD + "---  # end\n",
     ("spec", "priority")),
    ("an unknown escape in double quotes (\\/)", WORKLOAD.replace("{priority}", '100\n  type: "infer\\/ence"'),
     ("spec", "type")),
    ("a null key", WORKLOAD.replace("  priority: {priority}\n", "  ~: 1\n"), ("spec",)),
    ("an integer key becomes a string", WORKLOAD.replace("  priority: {priority}\n", "  0x10: 1\n"), ("spec",)),
    ("CRLF line ends", WORKLOAD.replace("\n", "\r\n"), ("spec", "priority")),
]


def lookup(document: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path``, or MISSING."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(document, list) or part >= len(document):
                return MISSING
        elif not isinstance(document, dict) or part not in document:
            return MISSING
        document = document[part]
    return document


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING = _Missing()


def typed(value: Any) -> tuple[str, Any]:
    """A JSON value with its JSON type, so that True != 1 and 1 == 1.0."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if value is None:
        return ("null", None)
    if isinstance(value, (str, list, dict)):
        return (type(value).__name__, json.loads(json.dumps(value)))
    return ("missing", None)


@dataclass
class Outcome:
    accepted: bool
    value: Any
    message: str


def server_outcome(kubectl: Kubectl, text: str, path: tuple[str | int, ...]) -> Outcome:
    proc = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=text, check=False)
    if proc.returncode != 0:
        return Outcome(False, MISSING, " ".join((proc.stderr or proc.stdout).split())[:240])
    return Outcome(True, lookup(json.loads(proc.stdout), path), "")


def our_outcome(text: str, path: tuple[str | int, ...]) -> Outcome:
    from tests.support.manifests import parse_texts

    manifests = parse_texts([("probe.yaml", text)])
    resources = [*manifests.factories, *manifests.fleets, *manifests.workloads]
    if manifests.problems or len(resources) != 1:
        return Outcome(False, MISSING, "; ".join(str(p) for p in manifests.problems)[:240])
    # the object as the models hold it, defaults included, as the API server stores it
    stored = resources[0].model_dump(by_alias=True, mode="json", exclude_none=True)
    return Outcome(True, lookup(stored, path), "")


def compare(label: str, server: Outcome, ours: Outcome) -> str | None:
    if server.accepted != ours.accepted:
        if server.accepted:
            return f"{label}: the API server ACCEPTS it (value {server.value!r}), we reject it: {ours.message}"
        return f"{label}: the API server REJECTS it ({server.message}), we accept it (value {ours.value!r})"
    if server.accepted and typed(server.value) != typed(ours.value):
        return f"{label}: the API server stores {server.value!r}, our loader reads {ours.value!r}"
    return None


@pytest.fixture(scope="module")
def verdicts(kubectl: Kubectl, installed_crds: Any, request: pytest.FixtureRequest) -> list[tuple[str, str]]:
    """(label, disagreement or "") of every case."""
    namespace = "yaml-scalars"
    if kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kubectl("create", "namespace", namespace)
    cases: list[tuple[str, str, tuple[str | int, ...]]] = []
    for scalar in SCALARS:
        for field in FIELDS:
            cases.append((f"{field.name} = {scalar!r}", field.text(scalar, namespace), field.path))
    for description, template, path in DOCUMENTS:
        text = template.format(namespace=namespace, interruptible="false", priority="100")
        cases.append((f"document: {description}", text, path))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        servers = list(pool.map(lambda case: server_outcome(kubectl, case[1], case[2]), cases))
    elapsed = time.monotonic() - started

    results = []
    accepted = 0
    for (label, text, path), server in zip(cases, servers, strict=True):
        ours = our_outcome(text, path)
        accepted += server.accepted
        results.append((label, compare(label, server, ours) or ""))
    say(request.config, f"\nyaml scalars: {len(cases)} cases ({len(SCALARS)} scalars x {len(FIELDS)} fields + "
                        f"{len(DOCUMENTS)} documents), {accepted} accepted by the API server; kubectl took "
                        f"{elapsed:.1f}s")
    return results


def test_yaml_scalars_read_as_the_api_server_reads_them(verdicts: list[tuple[str, str]]) -> None:
    """Accepted by both or refused by both, and when accepted, the same stored value (a
    null field is pruned and defaulted by both; a null label or annotation is "")."""
    disagreements = [problem for _, problem in verdicts if problem]
    assert not disagreements, (
        f"{len(disagreements)} of {len(verdicts)} cases read differently by the API server and by "
        "controller.core.yamlcompat + the models:\n  " + "\n  ".join(disagreements)
    )


def test_duplicate_keys_are_no_error_for_kubectl(
    kubectl: Kubectl, installed_crds: Any, scratch_namespace: str
) -> None:
    """kubectl reads YAML with sigs.k8s.io/yaml's non-strict decoder: the last of two equal
    keys wins without a word; so does our loader (see the module docstring)."""
    text = WORKLOAD.format(namespace=scratch_namespace, interruptible="false", priority="5\n  priority: 7")
    server = server_outcome(kubectl, text, ("spec", "priority"))
    assert server.accepted and server.value == 7, server
    assert our_outcome(text, ("spec", "priority")) == Outcome(True, 7, "")

"""The bad-input corpus against the real API server and the Python models.

Every ``tests/corpus/bad/*.yaml`` holds one manifest that must be refused. Its first
line ``# expect: <field path fragment>`` names the field the error must name; a line
``# apiserver: no`` says the CRD schema cannot catch it (only the models can).

The two validators must agree: one test sends every file with
``kubectl create --dry-run=server`` and loads it with the models, collects every
disagreement, and fails listing all of them at once.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.e2e_support import REPO_ROOT, Kubectl, load_documents

pytestmark = pytest.mark.e2e

CORPUS = REPO_ROOT / "tests" / "corpus" / "bad"
HEADER = re.compile(r"^#\s*(expect|apiserver)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str
    apiserver: bool  # False when marked "# apiserver: no"

    @property
    def name(self) -> str:
        return self.path.name


def corpus_cases() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        headers: dict[str, str] = {}
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            match = HEADER.match(line)
            if match:
                headers[match.group(1)] = match.group(2)
        cases.append(Case(path, headers.get("expect", ""), headers.get("apiserver", "yes").lower() != "no"))
    return cases


@dataclass
class ServerVerdict:
    rejected: bool
    message: str


def server_verdict(kubectl: Kubectl, case: Case) -> ServerVerdict:
    """Create the manifest with a server-side dry run.

    ``create`` rather than ``apply``: an apply of an existing object would merge the bad
    manifest into the stored one. AlreadyExists comes from storage, which the API
    server reaches only after validation and admission passed: it counts as accepted.
    """
    proc = kubectl("create", "--dry-run=server", "-f", str(case.path), "-o", "name", check=False)
    message = (proc.stderr or proc.stdout).strip()
    if proc.returncode == 0 or "AlreadyExists" in message or "already exists" in message:
        return ServerVerdict(False, message)
    return ServerVerdict(True, message)


def _short(message: str, limit: int = 300) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_problems(case: Case) -> list[str]:
    """What the Python models say about the manifest (empty: accepted)."""
    from controller.cli.files import load_manifests  # the package under test

    return [f"{p.field}: {p.message}" for p in load_manifests([case.path]).problems]


def test_corpus_is_present():
    cases = corpus_cases()
    assert cases, f"no bad-input corpus in {CORPUS}"
    unmarked = [c.name for c in cases if not c.expect]
    assert not unmarked, f"corpus files without a '# expect: <field>' first line: {unmarked}"
    for case in cases:
        docs = load_documents(case.path)
        assert len(docs) == 1, f"{case.name}: one manifest per corpus file, found {len(docs)}"


def test_api_server_and_models_agree_on_the_bad_corpus(kubectl: Kubectl, installed_crds):
    cases = corpus_cases()
    # The manifests' namespaces must exist, or NamespaceLifecycle would reject them for
    # a reason that has nothing to do with the manifest.
    namespaces = {
        doc.get("metadata", {}).get("namespace")
        for case in cases
        for doc in load_documents(case.path)
        if isinstance(doc.get("metadata"), dict)
    } - {None}
    for namespace in sorted(namespaces):
        if kubectl("get", "namespace", namespace, check=False).returncode != 0:
            kubectl("create", "namespace", namespace)

    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = dict(zip(cases, pool.map(lambda c: server_verdict(kubectl, c), cases), strict=True))

    disagreements: list[str] = []
    for case in cases:
        server = verdicts[case]
        problems = model_problems(case)
        said = _short(server.message)
        models = f"the models reject it ({'; '.join(problems)})" if problems else "the models accept it"
        if not problems:
            disagreements.append(f"{case.name}: the models ACCEPT this bad input (the API server "
                                 f"{'rejects' if server.rejected else 'accepts'} it)")
        elif not any(case.expect in p for p in problems):
            disagreements.append(f"{case.name}: the models reject it, but name no {case.expect!r}: {problems}")
        if case.apiserver and not server.rejected:
            disagreements.append(
                f"{case.name}: the API server ACCEPTS it and {models}: tighten the CRD schema, "
                "or mark the file '# apiserver: no' if no schema can express the rule"
            )
        elif case.apiserver and case.expect not in server.message:
            disagreements.append(f"{case.name}: the API server rejects it, but names no {case.expect!r}: {said}")
        elif not case.apiserver and server.rejected:
            disagreements.append(
                f"{case.name}: marked '# apiserver: no', yet the API server rejects it ({said}): drop the mark"
            )
    assert not disagreements, (
        f"{len(disagreements)} disagreement(s) between the API server and the models "
        f"over {len(cases)} corpus files:\n  " + "\n  ".join(disagreements)
    )

"""Property-based tests of the whole API from its own OpenAPI document (schemathesis):
every generated request gets a documented status, never a 5xx, and a body that
conforms to the response schema. About 1,300 cases over the 7 operations.

The authorizer is a test double at the protocol seam (what is under test here is the
API, not the cluster's RBAC; see test_security.py): it allows the one token every case
sends and rejects any other, so schemathesis' own check that invalid credentials are
refused has something to find. The long-poll is capped at 50 ms so a generated
``after`` does not wait."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from controller.cli.files import load_manifests
from controller.http.app import create_app
from controller.http.security import Decision, Unauthenticated
from controller.http.source import StaticSource

from .conftest import AT, REPO_EXAMPLES

CASES_PER_OPERATION = 180  # x 7 operations (hypothesis adds its explicit cases) >= 1,000


TOKEN = "schemathesis-token"


class _OneToken:
    def authorize(self, token: str) -> Decision:
        if token != TOKEN:
            raise Unauthenticated("unknown token")
        return Decision(allowed=True, user="schemathesis")


app = create_app(StaticSource(load_manifests([REPO_EXAMPLES]), AT), authorizer=_OneToken(), long_poll_max_s=0.05)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
generated: dict[str, int] = {}


@schema.parametrize()
@settings(max_examples=CASES_PER_OPERATION, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    generated[case.operation.label] = generated.get(case.operation.label, 0) + 1
    # Two checks are left out, both about what a schema cannot say: negative_data_rejection
    # counts an unknown query parameter (FastAPI ignores them, as HTTP servers do) and a
    # missing Authorization header (every case here carries the token) as invalid data;
    # positive_data_acceptance wants every schema-valid body accepted, but which strings
    # are valid changes ("curtail SITE=MW") is for the what-if parser, a documented 400.
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                           excluded_checks=[checks.negative_data_rejection, checks.positive_data_acceptance])


def test_enough_cases_ran() -> None:
    """Runs after the parametrized test (file order): the total the docstring promises."""
    if not generated:  # run alone (-k): nothing to count
        return
    assert len(generated) == 7, generated
    assert sum(generated.values()) >= 1000, generated


"""The OpenAPI document of the API as text, for ``docs/openapi.json``.

Written by ``meshctl crds`` with the other generated files, and compared by
``meshctl crds --check`` and the tests, so the committed copy follows the code. The
document is the one the operator serves (with bearer auth described), built from an
app over an empty source: no mesh is needed to describe the API.
"""

from __future__ import annotations

import json

from controller.http.app import create_app
from controller.http.security import Decision
from controller.http.source import Published

FILENAME = "openapi.json"


class _Nothing:
    def current(self) -> Published | None:
        return None


class _Nobody:
    def authorize(self, token: str) -> Decision:
        return Decision(allowed=False, user="", reason="documentation only")


def openapi_document() -> dict[str, object]:
    return create_app(_Nothing(), authorizer=_Nobody(), static_dir=None).openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2) + "\n"

"""Manifests from YAML texts held in memory, for the tests: each ``(file name, text)``
pair goes through :func:`controller.core.parse.parse_text` as ``meshctl`` reads files
(``controller.cli.files.load_manifests``), one set of manifests, problems sorted."""

from __future__ import annotations

from collections.abc import Iterable

from controller.core.parse import Manifests, Seen, parse_text


def parse_texts(texts: Iterable[tuple[str, str]]) -> Manifests:
    """Parse ``(file name, YAML text)`` pairs into one set of manifests, problems sorted."""
    manifests = Manifests()
    seen: Seen = {}
    for file, text in texts:
        parse_text(text, file, manifests, seen)
    manifests.problems.sort()
    return manifests

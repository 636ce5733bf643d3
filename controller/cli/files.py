"""Read manifest files for ``meshctl``: files, folders of ``*.yaml``/``*.yml`` and ``-``
(standard input), in a stable order; the text goes to ``controller.core.parse``.

The only file I/O of ``meshctl validate`` and ``meshctl plan``; an unreadable file
becomes one problem line, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from controller.core.parse import Manifests, Problem, parse_text

YAML_SUFFIXES = (".yaml", ".yml")
STDIN = "-"


def yaml_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, and ``*.yaml``/``*.yml`` below folders, in a stable order."""
    for raw in paths:
        path = Path(raw)
        if str(raw) == STDIN:
            yield Path(STDIN)
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
        else:
            yield path


def load_manifests(paths: Iterable[str | Path]) -> Manifests:
    """Read and parse every manifest under ``paths`` (``-`` is standard input)."""
    manifests = Manifests()
    seen: dict = {}
    for path in yaml_files(paths):
        if str(path) == STDIN:
            parse_text(sys.stdin.read(), "(stdin)", manifests, seen)
            continue
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            manifests.problems.append(Problem(str(path), 0, "", "", "(file)", reason))
            continue
        parse_text(text, str(path), manifests, seen)
    manifests.problems.sort()
    return manifests

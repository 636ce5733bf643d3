"""Every file generated from the models, in one place: the CRDs in ``crds/``, the chart's
identical copies in ``helm/meshplane/crds/``, and ``docs/api-reference.md``.

Called by ``meshctl crds`` (``make crds``) to write them and by ``meshctl crds --check``
and the drift tests to compare them; generation itself is pure (text out).
"""

from __future__ import annotations

from pathlib import Path

from controller.api import apidocs, crdgen

DEFAULT_CRDS_DIR = Path("crds")
DEFAULT_DOCS_DIR = Path("docs")
DEFAULT_CHART_DIR = Path("helm/meshplane")


def generated_files(
    crds_dir: Path = DEFAULT_CRDS_DIR, docs_dir: Path = DEFAULT_DOCS_DIR, chart_dir: Path = DEFAULT_CHART_DIR
) -> dict[Path, str]:
    """Path -> text of every generated file."""
    files = {}
    for name, text in crdgen.rendered_crds().items():
        files[crds_dir / name] = text
        files[chart_dir / "crds" / name] = text
    files[docs_dir / apidocs.REFERENCE_FILENAME] = apidocs.render_reference()
    return files


def stale_files(files: dict[Path, str]) -> list[Path]:
    """The generated files that are missing or differ from what the models give."""
    return [path for path, text in files.items() if not path.is_file() or path.read_text() != text]

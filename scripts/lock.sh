#!/usr/bin/env bash
# Re-resolves requirements/runtime.lock, the exact runtime dependencies of the
# wheel (pyproject.toml's [project.dependencies], transitively), with the sha256
# of every distribution, for Python 3.11 on Linux (the interpreter of the image).
# Run by `make lock` with pip-compile from .venv-scan; needs the package index.
# tests/packaging/test_lock.py fails when pyproject's dependencies and the lock part.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${SCAN_VENV:-.venv-scan}"
version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$version" != "3.11" ]]; then
    # The lock pins what Python 3.11 needs (markers are resolved, not kept).
    echo "lock: $venv runs Python $version; the image runs 3.11: make $venv with PYTHON=python3.11" >&2
    exit 1
fi

# Options that would write this machine's index or wheel folder into the lock are
# off: the lock must mean the same on any machine.
CUSTOM_COMPILE_COMMAND="make lock" "$venv/bin/pip-compile" \
    --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
    --output-file requirements/runtime.lock pyproject.toml
echo "lock: wrote requirements/runtime.lock ($(grep -c '==' requirements/runtime.lock) pins)" >&2

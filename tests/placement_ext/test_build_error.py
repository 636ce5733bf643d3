"""Without the compiled kernels, importing placement_ext says how to build them.

A real missing module cannot be arranged in a built tree without deleting the .so, so
a meta-path finder refuses ``placement_ext._kernels`` in a fresh interpreter: the
seam is the import system itself, not the package under test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_missing_extension_raises_with_build_instructions():
    program = textwrap.dedent(
        """
        import importlib.abc, sys

        class RefuseKernels(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "placement_ext._kernels":
                    raise ImportError("No module named 'placement_ext._kernels'")
                return None

        sys.meta_path.insert(0, RefuseKernels())
        try:
            import placement_ext
        except ImportError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "pip install -e ." in result.stdout
    assert "not built" in result.stdout

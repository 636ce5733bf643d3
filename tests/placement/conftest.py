"""Make the repo root (for ``bench.generator``) and this folder (for
``plan_invariants``) importable from the placement tests."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parents[1]), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

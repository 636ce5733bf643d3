"""Helpers shared by the tests and the benchmarks (``bench/``).

- ``tests.support.meshes``: seeded synthetic meshes (``synthetic_mesh``);
- ``tests.support.invariants``: an independent checker of a plan against its mesh
  (``check_plan``), in real units, without the engine's arrays.

Imported as ``tests.support.*`` from the repository root (``python -m pytest`` and
``python -m bench.run`` both put it on the path), so no ``sys.path`` edits.
"""

"""The placement engine: plain data in, decisions out.

Callers (the controller's reconcile core, ``meshctl plan``, benchmarks) build a
``placement.problem`` mesh and ask for a plan. Nothing here knows Kubernetes, kopf or
the HTTP API; the layering ``controller > placement > placement_ext`` is checked by
import-linter in the tests.
"""

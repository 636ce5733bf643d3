"""The meshplane API: resource models (the single source of truth), the registry of
kinds, and the code generated from them (CRDs, the chart's copies, the API reference).

Imported by every other part of ``controller``; imports nothing of kopf, kubernetes,
FastAPI or rich (an import-linter contract checks it).
"""

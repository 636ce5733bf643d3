"""``meshplane-ven``: an OpenADR 3 VEN that mirrors a utility's VTN events as GridEvents
and reports demand back (docs/ven.md).

A layer above :mod:`controller.operator` (it reuses its Lease, connection and event
writer); the mapping itself is pure and lives in :mod:`controller.core.openadr`.
"""

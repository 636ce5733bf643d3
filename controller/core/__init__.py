"""The reconcile core, pure: parse dicts into resources, convert them into the placement
engine's problem, reconcile a snapshot into statuses, and compute the changes (status
merge patches and events) an operator must write.

Called by ``controller.cli`` (``meshctl plan``), the operator and the HTTP API alike, so
all three see the same statuses. No I/O here: no kopf, kubernetes client, FastAPI or
rich (import-linter contracts check it).
"""

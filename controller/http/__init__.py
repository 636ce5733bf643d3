"""The HTTP API and dashboard of meshplane (FastAPI): read the mesh and the last plan,
ask what-if questions, see it live. A library that ``meshctl serve`` and the operator
both serve; it reaches a cluster only through the protocols the operator implements.
"""

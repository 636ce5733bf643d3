# Declarations shared by the compiled kernels (_kernels.pyx) and Python.
#
# ``Filter`` names the engine's filters in pipeline order: a pair gets the first one
# that refuses it, and ``FEASIBLE`` when none does. ``cpdef`` makes it a Python
# ``enum.IntEnum`` too (``placement_ext.Filter``), so the Cython kernel, the NumPy
# and pure-Python twins (placement_ext.reference), the explanations
# (placement.explain) and the kube-scheduler-style greedy (placement.kube_greedy)
# share one definition instead of copying codes.

cpdef enum Filter:
    CORDONED = 0
    TRAINING_NEEDS_FACTORY = 1
    FLEETS_NOT_ALLOWED = 2
    COUNTRY_NOT_ALLOWED = 3
    LATENCY = 4
    ACCELERATOR_MODEL = 5
    MEMORY = 6
    OFFLINE_NOW = 7
    INSUFFICIENT_DEVICES = 8
    INSUFFICIENT_POWER = 9
    FEASIBLE = 10

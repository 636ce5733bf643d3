"""The delivery layer of the operator: the plan's Deployments sent to the clusters
that run them, and what those clusters say read back.

- :mod:`.layer`: :class:`~.layer.DeliveryLayer`, the one interface the solve loop uses
  (which clusters exist, what they report, what they should hold);
- :mod:`.monitor`: one thread per cluster probing it and reading its Deployments;
- :mod:`.applier`: server-side apply and garbage collection of our objects in one
  cluster;
- :mod:`.kubeconfig`: member kubeconfigs checked before use.

What each cluster should hold is computed by the pure core
(:mod:`controller.core.delivery`); nothing here decides placement.
"""

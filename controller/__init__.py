"""meshplane's Kubernetes side: resource models, CRD generation, the reconcile core,
the kopf adapter, the HTTP API and the ``meshctl`` command line.

``controller`` may import ``placement``; ``placement`` never imports ``controller``.
"""

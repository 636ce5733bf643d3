# syntax=docker/dockerfile:1
# The meshplane operator's image: two stages on the same Python base.
#
# builder: a C compiler, then scripts/build-wheel.sh, which builds the wheel (the Cython
#          kernels compiled with OpenMP) and installs it with the locked runtime
#          dependencies (requirements/runtime.lock, hash-checked) into /opt/meshplane.
#          tests/e2e/test_wheel.py runs this stage's ENV and RUN lines on the build
#          context .dockerignore leaves, so the tested venv is the image's.
# runtime: no compiler; the venv copied over, the OpenMP runtime, a non-root numeric
#          user (runAsNonRoot can check it), nothing written at run time (read-only
#          root filesystem).
#
#   docker build -t meshplane-operator:0.1.0 .
#
# The base is pinned by tag; pin it by digest too where the registry can be reached.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
# MESHPLANE_OPENMP=1: the build fails rather than ship serial kernels.
ENV MESHPLANE_OPENMP=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHON=python3 VENV=/opt/meshplane
WORKDIR /src
COPY . .
RUN bash scripts/build-wheel.sh all "$VENV"

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="meshplane-operator" \
      org.opencontainers.image.description="Places AI work across power-limited AI factories and intermittent edge fleets." \
      org.opencontainers.image.version="${VERSION}"
# libgomp1: the OpenMP runtime the compiled kernels link against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/meshplane /opt/meshplane
# No .pyc written next to the code (the root filesystem is read-only; the builder's pip
# compiled them already) and logs reach the container runtime line by line.
# The passwd file has no entry for 65532 (nor for any uid a cluster may pick): the
# operator never asks for one (it gives kopf its identity; tests/e2e/test_wheel.py runs
# it as such a uid).
ENV PATH=/opt/meshplane/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" id; numeric, so the kubelet can tell it is not root.
USER 65532:65532
WORKDIR /tmp
# /healthz, /readyz and /metrics on MESHPLANE_HEALTH_PORT; the HTTP API and dashboard
# on MESHPLANE_HTTP_PORT
EXPOSE 8081 8080
ENTRYPOINT ["meshplane-operator"]

# meshplane — every set-up step lives here, so that `make run` and `make test` work
# on a fresh clone. Targets are idempotent: the install re-runs only when the
# packaging files or the Cython sources change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := .make
PYTEST_ARGS ?=

.PHONY: help run test test-fast test-e2e lint scan lock bench crds check-crds install controlplane ocm vtn tools browser clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP)/installed: $(BIN)/python pyproject.toml setup.py $(wildcard placement_ext/*.pyx placement_ext/*.pxd)
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=69" wheel "cython>=3.0" "numpy>=2.0"
	$(BIN)/pip install --quiet --no-build-isolation -e ".[test,bench]"
	@mkdir -p $(STAMP) && touch $@

install: $(STAMP)/installed ## virtual environment, dependencies, compiled kernels

run: install ## set up, then place the example mesh (the embedded default)
	$(BIN)/meshctl validate -f examples/
	$(BIN)/meshctl plan -f examples/

controlplane: ## build the test control plane (kube-apiserver + etcd) from Go modules (cached)
ifeq ($(MESHPLANE_E2E_KUBECONFIG),)
	bash tests/controlplane/build.sh
else
	@echo "MESHPLANE_E2E_KUBECONFIG is set: the e2e tests use that cluster; no control plane to build"
endif

ocm: ## build the Open Cluster Management hub controllers and agent the e2e tests run (cached outside the clone)
ifeq ($(MESHPLANE_E2E_KUBECONFIG),)
	bash tests/ocm/build.sh
else
	@echo "MESHPLANE_E2E_KUBECONFIG is set: no OCM built ahead (the ocm_hub fixture builds it, with Go, if a test needs it)"
endif

vtn: ## build the OpenADR VTN (openleadr-vtn), its PostgreSQL and the utility's client the e2e tests run (cached outside the clone)
ifeq ($(MESHPLANE_E2E_KUBECONFIG),)
	bash tests/vtn/build.sh
else
	@echo "MESHPLANE_E2E_KUBECONFIG is set: no VTN built ahead (the vtn fixture builds it, with cargo, if a test needs it)"
endif

# Against a cluster of yours (MESHPLANE_E2E_KUBECONFIG) the tests use the helm on your
# PATH, so no Go toolchain is needed; MESHPLANE_HELM=/path/to/helm picks one explicitly.
ifneq ($(MESHPLANE_E2E_KUBECONFIG),)
MESHPLANE_HELM ?= $(shell command -v helm 2>/dev/null)
endif
export MESHPLANE_HELM

tools: ## build the real helm the tests run, from Go modules (cached; skipped when MESHPLANE_HELM is set)
ifeq ($(MESHPLANE_HELM),)
	bash tests/tools/build.sh
else
	@echo "the tests use $(MESHPLANE_HELM) ($$($(MESHPLANE_HELM) version --short)); no helm to build"
endif

lint: install ## ruff, mypy (strict for controller/core and placement) and the import-linter layer contracts
	$(BIN)/ruff check controller placement placement_ext tests bench setup.py
	$(BIN)/mypy controller placement placement_ext
	$(BIN)/lint-imports --no-cache

# The dashboard's tests drive Debian's Chromium (MESHPLANE_CHROMIUM, default /usr/bin/chromium)
# with Playwright; installed here when missing (as root, or with sudo).
browser: ## the Chromium the dashboard tests drive (apt-get install when missing)
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; }

test: install controlplane ocm vtn tools browser lint scan ## set up, lint, scan, then the whole suite, end-to-end tests included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The scanners and pip-compile live in their own venv: checkov pins dozens of libraries.
SCAN_VENV := .venv-scan
$(STAMP)/scan-tools: requirements/scan.txt
	rm -rf $(SCAN_VENV) && $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet -r requirements/scan.txt
	@mkdir -p $(STAMP) && touch $@

scan: tools $(STAMP)/scan-tools ## bandit on the packages, checkov on the rendered chart, pip-audit on the lock
	$(SCAN_VENV)/bin/python scripts/scan.py

lock: $(STAMP)/scan-tools ## re-resolve requirements/runtime.lock (hashed) from pyproject's dependencies
	SCAN_VENV=$(SCAN_VENV) bash scripts/lock.sh

test-fast: install ## the suite without the end-to-end tests
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: install controlplane ocm vtn tools ## only the end-to-end tests (MESHPLANE_E2E_KUBECONFIG=... for kind)
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

bench: install ## benchmarks at 1k x 100, 5k x 500, 10k x 1000: bench/results.json, docs/benchmarks.md
	$(BIN)/python -m bench.run $(BENCH_ARGS)

crds: install ## regenerate crds/, the chart's copies and docs/api-reference.md from the models
	$(BIN)/meshctl crds

check-crds: install ## fail if crds/ differs from the models
	$(BIN)/meshctl crds --check

clean: ## remove the environment and build products
	rm -rf $(VENV) $(SCAN_VENV) $(STAMP) build dist *.egg-info placement_ext/*.c placement_ext/*.so

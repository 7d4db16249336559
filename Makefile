# netmesh — the two set-up commands: `make demo` and `make test` (as root on Debian).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.netmesh-installed
PYTEST_ARGS ?=

.PHONY: all deps test lint pytest unit e2e demo bench clean image image-test

all: test

# System packages, kernel-headers fallback and the venv, through the one install script.
# Re-run when the packaging or the script changes.
$(STAMP): setup.cfg pyproject.toml scripts/install-deps.sh
	bash scripts/install-deps.sh
	touch $(STAMP)

deps: $(STAMP)

lint: deps
	$(VENV)/bin/ruff check netmesh agent collector lab tests scripts
	$(VENV)/bin/ruff format --check netmesh agent collector lab tests scripts
	$(VENV)/bin/mypy
	$(PY) scripts/check_imports.py

pytest: deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The one image (agent and collector), with whichever engine this machine has: docker, else
# podman/buildah with the Debian base bootstrapped offline-safely (scripts/build-image.sh).
IMAGE ?= localhost/netmesh:dev
image: deps
	bash scripts/build-image.sh $(IMAGE)

# Build it, then run it as the manifests declare it (podman + runc) in lab namespaces:
# collector + 3 agents + one agent under the runtime's default seccomp; collector + 3
# pod-network endpoints in the nodes' pod namespaces (tests/image).
image-test: image
	NETMESH_IMAGE=$(IMAGE) $(PY) -m pytest tests/image -v -s $(PYTEST_ARGS)

unit: deps
	$(PY) -m pytest --ignore=tests/e2e $(PYTEST_ARGS)

e2e: deps
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

test: lint pytest

# The main job on the local lab: 4 nodes in network namespaces, baseline ->
# 10 % receiver-side loss on a random node -> recovery; cleans up afterwards.
DEMO_ARGS ?= --loss 10%
demo: deps
	$(VENV)/bin/netmesh-lab experiment $(DEMO_ARGS)

# Benchmarks print tables (and JSON under bench-results/); they assert nothing about time.
bench: deps
	mkdir -p bench-results
	for b in tests/benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

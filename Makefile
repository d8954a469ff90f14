# Two commands matter: `make dev` and `make test`. Both run `make setup` first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-python dev test lint crds bench clean image

setup:  ## Debian packages, .venv, pinned Kubernetes/etcd/helm binaries (idempotent)
	scripts/setup.sh

setup-python:
	scripts/setup.sh --python

dev: setup  ## local cluster, registry and a node until Ctrl-C
	$(PY) -m imagestreams.localcluster up --apply crds/ --node --operator --demo

test: setup  ## the whole suite against the real local cluster and registries
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup-python  ## ruff, mypy (strict on operator/imagestreams) and the layer contracts (import-linter)
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

crds: setup-python  ## regenerate the CRD, cluster roles and operator RBAC YAML (also the Helm chart's copies)
	$(PY) -m imagestreams.api.crd --crds crds --deploy deploy --chart helm/imagestream-operator

bench: setup  ## benchmarks print their numbers; record them in docs/benchmarks.md
	$(PY) bench/harness_start.py
	$(PY) bench/import_cycle.py
	$(PY) bench/cli_start.py
	$(PY) bench/parse_worst.py
	$(PY) bench/orphans.py
	$(PY) bench/self_healing.py
	$(PY) bench/isolation.py
	$(PY) bench/admission_latency.py
	$(PY) bench/fanout.py
	$(PY) bench/memory.py
	$(PY) bench/registry_gc.py
	$(PY) bench/throughput.py
	$(PY) bench/latency.py

image: setup-python  ## the operator image without Docker (build/image: OCI layout, SBOM, digest); REGISTRY=host/repo[:tag] pushes it
	$(PY) -m imagestreams.imagebuild $(if $(REGISTRY),--push $(REGISTRY)) $(if $(SOURCE_URL),--source-url $(SOURCE_URL))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

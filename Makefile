# sreops: `make demo` runs the platform on demo data; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SREOPS_HOME ?= $(CURDIR)/.sreops
export DAGSTER_HOME ?= $(SREOPS_HOME)/dagster
# absolute, so they hold after `make demo` changes into DAGSTER_HOME
override SREOPS_HOME := $(abspath $(SREOPS_HOME))
override DAGSTER_HOME := $(abspath $(DAGSTER_HOME))
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# torch's CPU build, pinned first so sentence-transformers does not pull a CUDA build.
TORCH := torch==2.13.0

.PHONY: install demo demo-reset test lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	@if [ ! -f "$(SREOPS_HOME)/demo/incidents.json" ]; then $(BIN)/sreops demo; \
	  else echo "demo data already in $(SREOPS_HOME) (make demo-reset to start over)"; fi
	@echo "Dagster UI: http://127.0.0.1:3000 (sensors ingest the demo files within seconds)"
	@# the demo's config (partitions from its first day) unless SREOPS_CONFIG names another, else
	@# ./sreops.yaml. It runs from DAGSTER_HOME, so Dagster reads the instance settings copied there
	@# and does not warn that the checkout's dagster.yaml is ignored. With Debian's prometheus and
	@# prometheus-node-exporter installed, this machine's CPU and memory join the demo as a live
	@# Prometheus source (stopped when Dagster stops).
	@cd $(DAGSTER_HOME) && CONFIG="$${SREOPS_CONFIG:-$$(for f in $(SREOPS_HOME)/demo/sreops.yaml \
	  $(CURDIR)/sreops.yaml; do test -f $$f && echo $$f && break; done)}"; \
	if [ -z "$${SREOPS_CONFIG:-}" ] && [ "$$CONFIG" = "$(SREOPS_HOME)/demo/sreops.yaml" ] \
	  && command -v prometheus >/dev/null && command -v prometheus-node-exporter >/dev/null; then \
	  $(CURDIR)/$(BIN)/python -m sreops.devtools.prometheus_server $(SREOPS_HOME)/prometheus \
	    --write-config "$$CONFIG" > $(SREOPS_HOME)/prometheus.log 2>&1 & PROMETHEUS=$$!; \
	  trap 'kill $$PROMETHEUS 2>/dev/null' EXIT; \
	  echo "live source: Prometheus scraping node exporter (log: $(SREOPS_HOME)/prometheus.log)"; fi; \
	SREOPS_CONFIG="$$CONFIG" $(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p 3000

demo-reset:
	rm -rf $(SREOPS_HOME)

test: install
	$(BIN)/ruff check sreops assets sensors tests
	$(BIN)/pytest -q -ra

lint: install
	$(BIN)/ruff check sreops assets sensors tests
	$(BIN)/ruff format --check sreops assets sensors tests

format: install
	$(BIN)/ruff format sreops assets sensors tests
	$(BIN)/ruff check --fix sreops assets sensors tests

bench: install
	$(BIN)/sreops bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

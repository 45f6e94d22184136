# sre-operator — every entry point of the project.
#   make demo   set up and run the main job
#   make test   set up and run the tests (what CI runs, via .ci/run)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup demo shop-local test test-unit test-services test-cluster lint coverage \
        cluster-bin cluster-up cluster-down kind-up kind-down bench bench-scenarios bench-policies bench-scale bench-cycle crds clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install Debian packages and the Python environment (.venv)
	@bash scripts/setup.sh

demo: setup ## the local cluster, Prometheus, the shop under traffic and the operator (root); builds only what it needs first, the local model in the background; prints what to run next
	$(PY) -m localkube provision --for demo
	$(PY) scripts/demo.py

shop-local: setup ## the shop alone as local processes behind its NGINX gateway (no cluster, no root)
	$(PY) -m shop.localrun

test: setup lint cluster-bin ## set up everything, run the quality gate (lint), then every test tier
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup ## fast tier only
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-services: setup ## shop services, NGINX and Prometheus as real processes
	$(PY) -m pytest tests/services $(PYTEST_ARGS)

test-cluster: setup cluster-bin ## tests on the local Kubernetes cluster (root)
	$(PY) -m pytest tests/cluster $(PYTEST_ARGS)

coverage: setup ## line coverage of the operator from the unit tier alone (report per package)
	$(PY) -m coverage run --source=operator/sre_operator -m pytest tests/unit -q -p no:cacheprovider $(PYTEST_ARGS)
	$(PY) -m coverage report --skip-empty

lint: setup ## the quality gate: ruff (every package), mypy --strict (operator, dashboard), import contracts, hadolint, helm lint
	@bash scripts/lint.sh $(PYTEST_ARGS)

bench: setup cluster-bin ## print speed and memory figures (shop, cluster, node agent), then bench-scenarios and bench-scale
	$(PY) bench/bench.py
	$(PY) bench/scenarios.py --runs $(BENCH_RUNS)
	$(PY) bench/scale.py --sizes $(BENCH_SCALE_SIZES)

BENCH_SCALE_SIZES ?= 10,50,100
bench-scale: setup cluster-bin ## the operator over 10, 50, 100 shops on kwok (BENCH_SCALE_SIZES=100,1000: ~25 min), a tenth faulted at once: detector cycle, memory, time to detect and to plan (→ bench/scale.json)
	$(PY) bench/scale.py --sizes $(BENCH_SCALE_SIZES)

bench-cycle: setup cluster-bin ## the detector's cycle over 100 and 1,000 shops offline (no cluster: a local stand-in for the API server, the operator's own adapter and loop), with cProfile's top functions (→ bench/cycle_profile.json)
	$(PY) bench/cycle_profile.py --profile

BENCH_RUNS ?= 1
BENCH_CONTROL_MINUTES ?= 10
BENCH_CASES ?=
bench-scenarios: setup cluster-bin ## the benchmark as a judge: every case (10 FaultScenarios, 15 kubectl/runtime faults) BENCH_RUNS times + a BENCH_CONTROL_MINUTES no-fault control; healed by its own oracle, TTD/TTM, collateral, diagnosis (→ bench/scenarios.json)
	$(PY) bench/scenarios.py --runs $(BENCH_RUNS) --control-minutes $(BENCH_CONTROL_MINUTES) $(foreach c,$(BENCH_CASES),--case $(c))

# The three planner policies, one fresh cluster each, one after another. Rules: no model at all; hybrid and
# llm: BENCH_POLICY_MODEL on llama-server (charts/llm) in the bench cluster. The same timeout for the three
# (a model's triage and plan are two calls of 40–60 s each). No control by default: it measures detection,
# which the planner does not change.
BENCH_POLICY_MODEL ?= 1.5b
BENCH_POLICY_TIMEOUT ?= 600
BENCH_POLICY_CONTROL_MINUTES ?= 0
BENCH_POLICIES := rules hybrid llm
bench-policies: setup cluster-bin ## the benchmark once per planner policy (rules, hybrid, llm; the model: BENCH_POLICY_MODEL=1.5b on llama-server) over BENCH_CASES, BENCH_RUNS times, then the table per policy (→ bench/policies-<policy>.json). Slow: each model call takes 40–60 s on 2 cores; ~3–6 min a run, up to ~13 min for one not healed; the whole catalogue ~8 h per BENCH_RUNS (an estimate), 3 cases ~1 h
	$(foreach p,$(BENCH_POLICIES),$(PY) bench/scenarios.py --planner $(p) $(if $(filter rules,$(p)),,--model $(BENCH_POLICY_MODEL)) --runs $(BENCH_RUNS) --timeout $(BENCH_POLICY_TIMEOUT) --control-minutes $(BENCH_POLICY_CONTROL_MINUTES) $(foreach c,$(BENCH_CASES),--case $(c)) --out bench/policies-$(p).json &&) true
	$(PY) bench/scenarios.py --policy-table $(foreach p,$(BENCH_POLICIES),bench/policies-$(p).json) --markdown

cluster-bin: setup ## build or unpack the Kubernetes, etcd, CoreDNS, kwok, Jaeger, helm and llama-server binaries and the local models into ~/.cache
	$(PY) -m localkube provision

cluster-up: setup cluster-bin ## start the local cluster (root; no Docker needed)
	$(PY) -m localkube up --config kind-config.yaml

cluster-down: ## stop the local cluster (and the demo's background model build) and remove everything it made
	$(PY) -m localkube down

crds: ## apply the CRDs to the current kubeconfig's cluster (Helm installs crds/ once and never upgrades them)
	kubectl apply --server-side --force-conflicts -f charts/sre-operator/crds/

kind-up: ## (machines with Docker) kind cluster, images, CRDs and charts
	bash scripts/kind-up.sh

kind-down: ## (machines with Docker) delete the kind cluster
	bash scripts/kind-down.sh

clean: cluster-down
	rm -rf $(VENV) bin .pytest_cache .ruff_cache .mypy_cache

# fedbackup developer targets. Every target finds or installs what it needs (Node >= 22.19, npm
# dependencies, the control-plane binaries), so each works on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_BIN := $(shell hack/ensure-node.sh)
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)
CLUSTER_DIR ?= .cluster
KUBECONFIG ?= $(CURDIR)/$(CLUSTER_DIR)/kubeconfig
export KUBECONFIG

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: deps
deps: node_modules/.package-lock.json ## Install npm dependencies (npm ci).

.PHONY: controlplane
controlplane: ## Find or build kube-apiserver, etcd, kube-controller-manager, kwok, kubectl, helm.
	@hack/controlplane/build.sh >/dev/null

.PHONY: objectstore
objectstore: ## Find or build the SeaweedFS S3 server the tests and the demo run (weed).
	@hack/objectstore/build.sh >/dev/null

.PHONY: generate
generate: deps ## Regenerate the BackupSchedule CRD (its template is the FederatedBackup spec) and the TypeScript API types from crds/.
	tsx hack/gen-schedule-crd.ts
	tsx hack/gen-api-types.ts

.PHONY: manifests
manifests: deps controlplane ## Render deploy/*.yaml from the Helm chart with its default values (helm template).
	HELM="$$(hack/controlplane/build.sh)/bin/helm" tsx hack/manifests.ts

.PHONY: build
build: deps ## Compile the product (src/) to dist/.
	tsc -p tsconfig.build.json

.PHONY: cli
cli: deps ## One executable that needs no Node: dist/cli/kubectl-fedbackup (kubectl plugin; dist/cli/fedbackup links to it).
	tsx hack/build-cli.ts

.PHONY: lint
lint: deps ## Type-check, lint, check formatting and that generated types match crds/.
	tsc -p tsconfig.json --noEmit
	eslint --max-warnings=0 .
	prettier --check --log-level=warn .
	tsx hack/gen-schedule-crd.ts --check
	tsx hack/gen-api-types.ts --check

.PHONY: format
format: deps ## Format the sources with prettier.
	prettier --write --log-level=warn .

.PHONY: test-tools
test-tools: ## Debian packages the tests use: xfsprogs, for the reflink tests on a loop-mounted XFS; lua5.4, for the Argo CD health checks; rclone, the reference of the S3 upload benchmark; restic, a reference of the data-path benchmark (root only).
	@command -v mkfs.xfs >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
	  { apt-get install -y -qq xfsprogs >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq xfsprogs >/dev/null; }; } || true
	@command -v mkfs.xfs >/dev/null 2>&1 || echo "note: mkfs.xfs is missing; the reflink tests will be skipped"
	@command -v lua5.4 >/dev/null 2>&1 || command -v lua5.3 >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
	  { apt-get install -y -qq lua5.4 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq lua5.4 >/dev/null; }; } || true
	@command -v lua5.4 >/dev/null 2>&1 || command -v lua5.3 >/dev/null 2>&1 || echo "note: lua5.4 is missing; the Argo CD health check tests will be skipped"
	@command -v rclone >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
	  { apt-get install -y -qq rclone >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq rclone >/dev/null; }; } || true
	@command -v rclone >/dev/null 2>&1 || echo "note: rclone is missing; make bench skips its rclone rows"
	@command -v restic >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
	  { apt-get install -y -qq restic >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq restic >/dev/null; }; } || true
	@command -v restic >/dev/null 2>&1 || echo "note: restic is missing; make bench skips its restic row"

.PHONY: test-unit
test-unit: deps test-tools ## Unit tests (no cluster); promtool for the PrometheusRule tests from hack/promtool.sh.
	PROMTOOL="$$(hack/promtool.sh)" mocha --reporter-option label=unit 'test/unit/**/*.test.ts'

# A test whose title (its own or its describe's) holds "[long]" is a long scenario (many VMs, several nodes,
# several runs): make test leaves it to test-long and runs a short form of the same feature instead.
LONG_TAG := \[long\]

.PHONY: test-integration
test-integration: deps test-tools controlplane objectstore ## Integration tests against a real local control plane, without the [long] scenarios.
	mocha --reporter-option label=integration --require test/integration/setup.ts --timeout 180000 \
	  --grep '$(LONG_TAG)' --invert 'test/integration/**/*.test.ts'

.PHONY: test-long
test-long: deps test-tools controlplane objectstore ## The long integration scenarios, tagged [long] in their titles (not part of make test).
	mocha --reporter-option label=long --require test/integration/setup.ts --timeout 180000 \
	  --grep '$(LONG_TAG)' 'test/integration/**/*.test.ts'

.PHONY: e2e
e2e: deps test-tools controlplane objectstore ## The chart installed with helm into a local control plane, the operator running from its pod as its ServiceAccount; backup and restore scenarios; RBAC granted vs used.
	mocha --reporter-option label=e2e --require test/integration/setup.ts --timeout 600000 'test/e2e/**/*.test.ts'

# make chaos: seeded chaos runs on one control plane (5 kwok nodes, 30 VMs per run, agents run for real), the
# invariants checked after every run; exits 1 on a violation. CHAOS_SEED repeats a run; CHAOS_SCENARIOS picks some.
CHAOS_RUNS ?= 20
.PHONY: chaos
chaos: deps test-tools controlplane ## Chaos: 20 runs of each of six scenarios (operator SIGKILLed, kube-apiserver restarted, live migrations, a node NotReady, an agent killed mid-copy, two backups and a restore at once), invariants after each (root).
	CHAOS_RUNS=$(CHAOS_RUNS) tsx test/chaos/chaos.ts

# The short form in make test: one run each of the scenarios no integration test covers (the others are in
# make test's integration tests in a shorter form).
CHAOS_SHORT_SCENARIOS := operator-sigkill,apiserver-restart,agent-killed-mid-copy
.PHONY: chaos-short
chaos-short: deps test-tools controlplane ## make chaos's short form (part of make test): one run of the operator SIGKILL, kube-apiserver restart and agent-kill scenarios.
	CHAOS_RUNS=1 CHAOS_SCENARIOS=$(CHAOS_SHORT_SCENARIOS) tsx test/chaos/chaos.ts

.PHONY: test
test: lint test-unit test-integration e2e chaos-short ## Everything CI runs: lint, unit, integration (without [long]), end-to-end tests and make chaos's short form.

# Benchmarks report and never fail on a missed goal (only on an error). test-tools installs xfsprogs (as root)
# for the agent's Reflink freeze-window case; the CSI freeze-window case and the digest benchmark run against
# a local control plane.
.PHONY: kopia
kopia: ## Find or build Kopia, a reference of the data-path benchmark (make bench skips its row if it cannot be built).
	@hack/kopia/build.sh >/dev/null || echo "note: Kopia could not be built (it needs go); make bench skips its kopia row"

.PHONY: bench
bench: deps test-tools controlplane objectstore kopia ## Benchmarks vs their goals: the agent's data path (2 GiB copy+hash, memory, freeze windows; root for Reflink), the CSI freeze window per claim, the digest, the S3 upload, and the operator at 100/300/1,000 nodes (make bench-scale; up to an hour in all).
	tsx test/bench/agent-goals.ts
	tsx test/bench/csi-freeze-bench.ts
	tsx test/bench/digest-bench.ts
	tsx test/bench/s3-bench.ts
	tsx test/bench/scale-bench.ts

.PHONY: bench-scale
bench-scale: deps controlplane ## The operator at 100, 300 and 1,000 kwok nodes with a simulated agent, beside a kubectl create + wait loop over the same node steps (SCALE_SIZES=100 for one size; up to an hour on 2 cores); writes bench-results/scale.json.
	tsx test/bench/scale-bench.ts

.PHONY: cluster
cluster: deps controlplane ## Start a local control plane with 3 simulated nodes; kubeconfig in .cluster/kubeconfig.
	@mkdir -p $(CLUSTER_DIR)
	@if [ -f $(CLUSTER_DIR)/supervisor.pid ] && kill -0 $$(cat $(CLUSTER_DIR)/supervisor.pid) 2>/dev/null; then \
	  echo "a local cluster is already running; KUBECONFIG=$(CLUSTER_DIR)/kubeconfig"; exit 0; fi; \
	rm -f $(CLUSTER_DIR)/ready; \
	nohup tsx test/harness/cli.ts up --dir $(CLUSTER_DIR) --nodes 3 > $(CLUSTER_DIR)/cluster.log 2>&1 < /dev/null & \
	pid=$$!; \
	for _ in $$(seq 1 600); do \
	  [ -f $(CLUSTER_DIR)/ready ] && break; \
	  kill -0 $$pid 2>/dev/null || { cat $(CLUSTER_DIR)/cluster.log; echo "make cluster: failed" >&2; exit 1; }; \
	  sleep 0.1; \
	done; \
	[ -f $(CLUSTER_DIR)/ready ] || { cat $(CLUSTER_DIR)/cluster.log; echo "make cluster: not ready after 60 s" >&2; exit 1; }; \
	cat $(CLUSTER_DIR)/cluster.log; \
	echo "export KUBECONFIG=$(CURDIR)/$(CLUSTER_DIR)/kubeconfig"

.PHONY: cluster-down
cluster-down: deps ## Stop the local control plane started by `make cluster`.
	@tsx test/harness/cli.ts down --dir $(CLUSTER_DIR)

.PHONY: demo
demo: deps controlplane objectstore ## The whole product on a throw-away cluster: 8 VMs on 3 nodes backed up node by node to an S3 server (SeaweedFS), three damaged and restored from it, then the digest (needs root: pod runner).
	tsx hack/demo.ts

.PHONY: run
run: deps controlplane ## Run the operator from source against $KUBECONFIG as its user (agent pods need a pod runner: not with make cluster).
	@[ -f "$(KUBECONFIG)" ] || { echo "make run: no kubeconfig at $(KUBECONFIG); run make cluster first or set KUBECONFIG" >&2; exit 1; }
	"$$(hack/controlplane/build.sh)/bin/kubectl" apply --server-side --force-conflicts -f crds/ -f deploy/rbac.yaml
	tsx src/cli/main.ts operator --kubeconfig "$(KUBECONFIG)" --namespace fedbackup-system \
	  --metrics-bind-address 127.0.0.1:8080 --health-bind-address 127.0.0.1:8081

.PHONY: clean
clean: ## Remove build output (not the control-plane cache).
	rm -rf dist

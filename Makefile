# omnisync — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
BIN := bin
DIST := dist
EDGE_PLATFORMS := linux/amd64 linux/arm64 linux/arm windows/amd64
# Seconds each fuzz target runs inside `make test`; `make fuzz` runs longer.
FUZZTIME ?= 2s
# `make test` fuzzes an eighth of the targets, a different eighth each day
# (every seed corpus still runs in `unit`); `make fuzz` fuzzes them all.
FUZZ_SHARDS ?= 8

.PHONY: help run build bins test unit unit-full fuzz-short fuzz chaos scale import-bench bench bench-customers bench-identity bench-all lint clean deploy-check upgrade-test package screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: bins ## run the platform locally: hub + embedded NATS + 3 simulated stores
	@BIN=$(BIN) ./deploy/local/run.sh

bins: ## build omni-hub, omni-edge, omnictl and omni-nats for this machine into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/ ./cloud/cmd/omni-hub ./cloud/cmd/omnictl ./cloud/cmd/omni-nats ./edge/cmd/omni-edge

build: bins ## build, and cross-compile the edge agent for its platforms into dist/
	@mkdir -p $(DIST)
	@for p in $(EDGE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		out=$(DIST)/omni-edge-$$os-$$arch$$ext; \
		echo "  $$out"; \
		GOOS=$$os GOARCH=$$arch GOARM=7 CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $$out ./edge/cmd/omni-edge || exit 1; \
	done

# The lint first: go vet compiles every package, which the tests then
# take from the build cache (run beside them on a cold cache, both would
# compile the same packages at once). Then the tests and the short fuzz
# side by side, each one's output printed whole when it ends: the tests
# spend much of their time waiting (on fsyncs, processes, timers), and the
# fuzzing's instrumented builds and runs fill that time.
test: lint ## everything CI runs: lint, all tests (every fuzz seed corpus included), a short fuzz of an eighth of the parsers (a different eighth each day)
	@$(MAKE) --no-print-directory -j2 --output-sync=target unit fuzz-short

# Test binaries are linked without symbol table and DWARF: about 100 of
# them link on every run, and -s -w cuts each link's CPU by a third (stack
# traces still work: they come from the pcln table, not DWARF).
TEST_LDFLAGS := -ldflags=-s -w

# -short: the property and bookkeeping tests replay smaller random logs
# (every test still runs); `make unit-full` replays them at full size.
# The tests that start the hub, agent, omnictl or omni-nats as processes
# take them from bin/, built once here (testkit.BuildBinary).
# -p 4: four test binaries at a time (go test's default is one per core).
# The two longest, the e2e and store packages, spend most of their time
# waiting on processes and on PostgreSQL; with two slots they held both
# while the cores were 40% idle (make test 5 min 46 s against 4 min 48 s
# with four, on 2 cores with a warm build cache).
unit: bins ## all tests (property tests at their short sizes)
	OMNI_TEST_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -short -count=1 -p 4 -timeout 12m "$(TEST_LDFLAGS)" ./...

unit-full: bins ## all tests, property tests at full size
	OMNI_TEST_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m "$(TEST_LDFLAGS)" ./...

fuzz-short: ## run the fuzz targets briefly (FUZZTIME each; FUZZ_SHARDS=1 for all of them)
	@FUZZTIME=$(FUZZTIME) FUZZ_SHARDS=$(FUZZ_SHARDS) GO=$(GO) ./.ci/fuzz-short

fuzz: ## fuzz every parser for longer
	$(MAKE) fuzz-short FUZZTIME=60s FUZZ_SHARDS=1

chaos: ## the long chaos run: random kills, partitions, DB and NATS restarts for OMNI_CHAOS_DURATION (10m), a hub frozen for OMNI_CHAOS_FREEZE (30s), NATS cluster nodes killed for OMNI_CHAOS_CLUSTER (5m), a store leaf's uplink down for OMNI_CHAOS_LEAF_OFFLINE (3m), then the books against the oracle
	OMNI_CHAOS_DURATION=$${OMNI_CHAOS_DURATION:-10m} OMNI_CHAOS_FREEZE=$${OMNI_CHAOS_FREEZE:-30s} OMNI_CHAOS_CLUSTER=$${OMNI_CHAOS_CLUSTER:-5m} OMNI_CHAOS_LEAF_OFFLINE=$${OMNI_CHAOS_LEAF_OFFLINE:-3m} $(GO) test -count=1 -timeout 90m -run '^TestChaos' -v ./cloud/internal/e2e/

scale: ## a fleet of OMNI_FLEET_STORES (2000) real agents against one hub: connect time, hub memory and CPU
	OMNI_FLEET_STORES=$${OMNI_FLEET_STORES:-2000} $(GO) test -count=1 -timeout 60m -run '^TestFleet$$' -v ./edge/internal/agent/

# Debian architecture of each GOARCH the packages are built for.
DEB_ARCHS := amd64:amd64 arm64:arm64 arm:armhf
package: ## Debian packages into dist/: omnisync-edge (amd64, arm64, armhf) and omnisync-hub (amd64, arm64)
	@mkdir -p $(DIST)
	@for pair in $(DEB_ARCHS); do \
		goarch=$${pair%%:*}; debarch=$${pair#*:}; out=$(DIST)/linux-$$goarch; mkdir -p $$out; \
		cmds=./edge/cmd/omni-edge; [ $$goarch = arm ] || cmds="$$cmds ./cloud/cmd/omni-hub ./cloud/cmd/omnictl ./cloud/cmd/omni-nats"; \
		GOOS=linux GOARCH=$$goarch GOARM=7 CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $$out/ $$cmds || exit 1; \
		./deploy/package/build-deb.sh $(DIST) $(VERSION) $$debarch $$out || exit 1; \
	done

upgrade-test: ## build the previous release (OMNI_UPGRADE_FROM, else the newest v* tag, else the commit pinned in the test), run a chain on it (SQLite and PostgreSQL), upgrade the hub, keep its agents syncing, check the books
	OMNI_UPGRADE_TEST=1 $(GO) test -count=1 -timeout 30m -run '^TestUpgrade$$' -v ./cloud/internal/e2e/

HELM_VERSION ?= v4.3.2
deploy-check: ## check deploy/: systemd units (verify, security, a real start), alerts (promtool test rules), dashboards, compose, a NATS cluster from its config, the Helm chart (lint, template, Kubernetes schema)
	@command -v promtool >/dev/null || { echo "promtool missing: apt-get install prometheus"; exit 1; }
	@command -v helm >/dev/null || [ -x "$$($(GO) env GOPATH)/bin/helm" ] || $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	cd deploy/tools/k8scheck && $(GO) test -count=1 ./...
	OMNI_DEPLOY_CHECK=1 $(GO) test -count=1 -v -run . ./deploy/

import-bench: ## import a generated 500 MB catalog into a fresh hub, and through the API alone: time and peak memory
	./deploy/bench/catalog-import.sh
	OMNI_IMPORT_PRODUCTS=$${OMNI_IMPORT_PRODUCTS:-360000} $(GO) test -count=1 -timeout 60m -run '^TestImportMemory$$' -v ./cloud/internal/api/

bench: ## measure and print the figures table (outbox, edge->hub vs nats bench, hub apply, agent RSS)
	./deploy/bench/bench.sh

bench-customers: ## measure the customer analytics at 1M customers: CLV fit time, RFM refresh after a sale, segment summary; the hub's refresh and refit; automation rule evaluation and webhook delivery
	$(GO) test -run='^$$' -bench='Fit1M' -benchtime=3x ./cloud/internal/clv/
	$(GO) test -run='^$$' -bench='SaleThenScore1M|Summary1M|Restore1M' ./cloud/internal/rfm/
	$(GO) test -run='^$$' -bench='RefreshAfterSale1M' -benchtime=2000x ./cloud/internal/insights/
	$(GO) test -run='^$$' -bench='Refit1M' -benchtime=1x ./cloud/internal/insights/
	$(GO) test -run='^$$' -bench='Plan' ./cloud/internal/automation/
	$(GO) test -run='^$$' -bench='Handle' -benchtime=20x ./cloud/internal/automation/runner/
	$(GO) test -run='^$$' -bench='WebhookDelivery' -benchtime=5000x ./cloud/internal/automation/runner/

bench-identity: ## identify events applied/s on PostgreSQL (OMNI_BENCH_IDENTIFIERS loaded first, default 100k) and merge/unmerge of a 1,000-identifier customer
	$(GO) test -run='^$$' -bench='IdentifyApply|MergeUnmerge1000' -benchtime=10x ./cloud/internal/store/

bench-all: ## run every Go benchmark once
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

screenshots: ## refresh docs/screenshots/console-*.png: every HQ console page in headless Chromium at tablet width (800 x 1280)
	mkdir -p docs/screenshots
	OMNI_SCREENSHOTS=$(CURDIR)/docs/screenshots CI=1 $(GO) test -count=1 -run '^Test(ConsoleInBrowser|ConflictActInBrowser|CountsAndChartsInBrowser|ExceptionsInBrowser)$$' ./cloud/internal/e2e/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if $(GO) list -deps ./shared/... | grep -E '/(edge|cloud)/'; then echo "shared must not import edge or cloud"; exit 1; fi

clean: ## remove build outputs and local run data
	rm -rf $(BIN) $(DIST) omni-data

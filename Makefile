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

.PHONY: help run build bins test unit fuzz-short fuzz chaos scale import-bench bench bench-customers bench-all lint clean deploy-check upgrade-test package

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

test: lint unit fuzz-short ## everything CI runs: lint, all tests, a short fuzz of every parser

unit: ## all tests
	$(GO) test -count=1 -timeout 12m ./...

fuzz-short: ## run every fuzz target briefly (FUZZTIME each)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) ./.ci/fuzz-short

fuzz: ## fuzz every parser for longer
	$(MAKE) fuzz-short FUZZTIME=60s

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

bench-customers: ## measure the customer analytics at 1M customers: CLV fit time, RFM refresh after a sale, segment summary
	$(GO) test -run='^$$' -bench='Fit1M' -benchtime=3x ./cloud/internal/clv/
	$(GO) test -run='^$$' -bench='SaleThenScore1M|Summary1M|Restore1M' ./cloud/internal/rfm/

bench-all: ## run every Go benchmark once
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if $(GO) list -deps ./shared/... | grep -E '/(edge|cloud)/'; then echo "shared must not import edge or cloud"; exit 1; fi

clean: ## remove build outputs and local run data
	rm -rf $(BIN) $(DIST) omni-data

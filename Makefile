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

.PHONY: help run build bins test unit fuzz-short fuzz chaos scale import-bench bench bench-all lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: bins ## run the platform locally: hub + embedded NATS + 3 simulated stores
	@BIN=$(BIN) ./deploy/local/run.sh

bins: ## build omni-hub, omni-edge and omnictl for this machine into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/ ./cloud/cmd/omni-hub ./cloud/cmd/omnictl ./edge/cmd/omni-edge

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

chaos: ## the long chaos run: random kills, partitions, DB and NATS restarts for OMNI_CHAOS_DURATION (10m), then the books against the oracle
	OMNI_CHAOS_DURATION=$${OMNI_CHAOS_DURATION:-10m} $(GO) test -count=1 -timeout 90m -run '^TestChaos' -v ./cloud/internal/e2e/

scale: ## a fleet of OMNI_FLEET_STORES (2000) real agents against one hub: connect time, hub memory and CPU
	OMNI_FLEET_STORES=$${OMNI_FLEET_STORES:-2000} $(GO) test -count=1 -timeout 60m -run '^TestFleet$$' -v ./edge/internal/agent/

import-bench: ## import a generated 500 MB catalog into a fresh hub, and through the API alone: time and peak memory
	./deploy/bench/catalog-import.sh
	OMNI_IMPORT_PRODUCTS=$${OMNI_IMPORT_PRODUCTS:-360000} $(GO) test -count=1 -timeout 60m -run '^TestImportMemory$$' -v ./cloud/internal/api/

bench: ## measure and print the figures table (outbox, edge->hub vs nats bench, hub apply, agent RSS)
	./deploy/bench/bench.sh

bench-all: ## run every Go benchmark once
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if $(GO) list -deps ./shared/... | grep -E '/(edge|cloud)/'; then echo "shared must not import edge or cloud"; exit 1; fi

clean: ## remove build outputs and local run data
	rm -rf $(BIN) $(DIST) omni-data

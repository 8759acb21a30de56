.PHONY: run test e2e bench bench-micro build fuzz
GO ?= go
DATA ?= $(abspath ../shared/data)

run: ## the quick start: serve on :8080 (trains a demo model on first start)
	$(GO) run ./cmd/towerrecall serve --config configs/local.yaml

test: ## every test, race detector on
	$(GO) test -race ./...

e2e: ## end-to-end checks on the real data
	TOWERRECALL_DATA=$(DATA) TOWERRECALL_E2E=1 $(GO) test -count=1 -run E2E -v ./cmd/towerrecall/

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/towerrecall ./cmd/towerrecall

bench: ## the published benchmarks: writes docs/benchmarks.md and docs/bench-*.svg (~10 min; --quick for a CI smoke run)
	$(GO) run ./cmd/benchreport --data $(DATA) --out docs

bench-micro: ## go test micro-benchmarks (medians over 5 runs)
	mkdir -p var && TOWERRECALL_DATA=$(DATA) $(GO) test -run '^$$' -bench . -benchmem -count 5 ./internal/... | tee var/bench.txt

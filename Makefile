.PHONY: run test lint contract alerts e2e bench bench-micro bench-scale build image fuzz reliability
GO ?= go
DATA ?= $(abspath ../shared/data)

run: ## the quick start: serve on :8080 (trains a demo model on first start)
	$(GO) run ./cmd/towerrecall serve --config configs/local.yaml

test: ## every test: the race detector over all but the ones that train a model (-short), then every test without it (the training ones, allocation counts, ann's one-goroutine graph builds)
	$(GO) test -race -short ./...
	$(GO) test ./...

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint: ## gofmt, go vet and staticcheck, on the product and on tools/benchreport
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd tools/benchreport && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

contract: ## openapi.yaml as client developers use it: Redocly lint, openapi-typescript types under tsc, Prism's proxy over the real service (Node.js and npm)
	tools/contract/run.sh

alerts: ## deploy/prometheus/alerts.yaml: promtool's rule check and its unit tests (alerts_test.yaml; Debian package prometheus)
	cd deploy/prometheus && promtool check rules alerts.yaml && promtool test rules alerts_test.yaml

e2e: ## end-to-end checks on the real data, the quality bars included (as .ci/run)
	TOWERRECALL_DATA=$(DATA) TOWERRECALL_E2E=1 $(GO) test -p 1 -count=1 -timeout 15m -run E2E -v ./cmd/towerrecall/ ./internal/pipeline/

build: ## the static release binary at bin/towerrecall, built as in the image (deploy/build-binary.sh)
	GO=$(GO) deploy/build-binary.sh bin/towerrecall

IMAGE ?= localhost/towerrecall:dev
image: ## the container image without a Docker engine or registry: podman, FROM scratch (deploy/build-image.sh)
	GO=$(GO) deploy/build-image.sh $(IMAGE)

bench: ## the published benchmarks: writes docs/benchmarks.md and docs/bench-*.svg (~10 min; smoke run, < 2 min: cd tools/benchreport && go run . --quick --out /tmp/bench)
	cd tools/benchreport && $(GO) run . --data $(DATA) --out ../../docs

SCALE_MOVIES ?= 1000000
SCALE_USERS ?= 6000
SCALE_RATINGS ?= 600000
bench-scale: ## the whole path at catalogue scale: data synth (1M movies) → train → serve → /recall at k = 10, 100, 1,000; RSS, artifact size, load time, latency (~10 min; not in any test run)
	$(GO) build -o var/bench-scale-bin/towerrecall ./cmd/towerrecall
	$(GO) run ./tools/benchscale --bin var/bench-scale-bin/towerrecall --work var/bench-scale \
	  --movies $(SCALE_MOVIES) --users $(SCALE_USERS) --ratings $(SCALE_RATINGS) | tee var/bench-scale.txt

bench-micro: ## go test micro-benchmarks (medians over 5 runs)
	mkdir -p var && TOWERRECALL_DATA=$(DATA) $(GO) test -run '^$$' -bench . -benchmem -count 5 ./internal/... | tee var/bench.txt

FUZZTIME ?= 1000000x
fuzz: ## every fuzz target, 1,000,000 executions each (FUZZTIME=30s for a time budget)
	@for pkg in $$($(GO) list ./internal/...); do \
	  for target in $$($(GO) test -list 'Fuzz.*' $$pkg | grep -E '^Fuzz'); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

reliability: ## the long reliability suite: faults, 60 s loopback load with flat RSS/goroutines, long fuzzing
	TOWERRECALL_DATA=$(DATA) TOWERRECALL_E2E=1 TOWERRECALL_LOAD=1 $(GO) test -p 1 -count=1 -timeout 30m -run E2E -v ./cmd/towerrecall/ ./internal/pipeline/
	$(MAKE) fuzz

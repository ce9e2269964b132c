# Every target runs on a fresh machine with only Go installed.
GO      ?= go
BIN     := bin/ttp
PKGS    := ./...
# Packages with concurrency, run under the race detector.
RACE    := ./rules/... ./host/...
FUZZTIME ?= 10s

.PHONY: all build test bench run lint fuzz clean testdata plugins

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ttp

# Everything the project can check without a network: formatting, vet, unit and integration
# tests, the race detector, the rule linter and the precision corpora.
test: lint
	$(GO) test -count=1 $(PKGS)
	$(GO) test -count=1 -race $(RACE)
	$(GO) run ./cmd/ttp rules lint rules/ttp
	$(GO) run ./cmd/ttp rules test rules/ttp

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Benchmarks; compare runs with benchstat (go run golang.org/x/perf/cmd/benchstat@latest old new).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./rules/ | tee bench.txt

# The bundled sample through the offline path, printed as a table.
run:
	$(GO) run ./cmd/ttp tag --format table testdata/events/sample.jsonl

# A short run of every fuzz target (make fuzz FUZZTIME=5m for a longer one).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz '^FuzzExpand$$' -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzEngineEqualsNaive$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzPrefilterPattern$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzScan$$' -fuzztime $(FUZZTIME) ./rules/internal/ahocorasick/
	$(GO) test -run '^$$' -fuzz '^FuzzRecordReset$$' -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeReply$$' -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeManifest$$' -fuzztime $(FUZZTIME) ./abi/

# Regenerate committed fixtures made by other tools: the hand-written WAT test modules
# (installs Debian's wabt when wat2wasm is missing).
testdata:
	bash host/testdata/wat/build.sh

# Build every plugins/*/ (a main package using sdk) into plugins/*.wasm.
plugins:
	@set -e; for d in plugins/*/; do \
		[ -f "$$d/main.go" ] || continue; \
		name=$$(basename $$d); \
		echo "plugins/$$name.wasm"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o plugins/$$name.wasm ./$$d; \
	done

clean:
	rm -rf bin bench.txt

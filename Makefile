# Every target runs on a fresh machine with only Go installed.
GO      ?= go
BIN     := bin/ttp
PKGS    := ./...
# Packages with concurrency, run under the race detector.
RACE    := ./rules/... ./wasm/... ./dispatch/... ./host/... ./telemetry/... ./bus/... ./store/... ./ingest/...
FUZZTIME ?= 10s

.PHONY: all build install test bench run lint fuzz clean testdata plugins conform crashtest clustertest guestchecks guestprof footprint cowrie-bench ingesttest cguest

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ttp

# `ttp` on the PATH: go install puts it in $(go env GOBIN), else $(go env GOPATH)/bin. The
# README's commands say `ttp`; `bin/ttp` (make build) is the same binary.
install:
	$(GO) install ./cmd/ttp
	@echo "installed $$($(GO) env GOBIN || true)$$( [ -n "$$($(GO) env GOBIN)" ] || echo "$$($(GO) env GOPATH)/bin")/ttp"

# Everything the project can check without a network: formatting, vet, unit and integration
# tests, the race detector, the rule linter and the precision corpora.
test: lint plugins build
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 20m -race $(RACE)
	$(BIN) rules lint rules/ttp
	$(MAKE) conform
	$(BIN) rules test --plugins plugins rules/ttp

# Every built plugin must pass `ttp conform` (vectors in testdata/vectors/<name>), and so must
# the C reference lifter, a committed fixture (wasm/testdata/reference/c), on its own rules.
conform: build
	@set -e; for w in plugins/*.wasm; do [ -f "$$w" ] || continue; $(BIN) conform --rules rules/ttp $$w; done
	$(BIN) conform --rules wasm/testdata/reference/rules --vectors wasm/testdata/reference/vectors wasm/testdata/reference/c/lifter.wasm

# Regenerate the C reference lifter's committed lifter.wasm from lifter.c and sdk/c/ttp.h
# (installs Debian's clang, lld, wasi-libc and libclang-rt-14-dev-wasm32 when clang cannot
# link for wasm32-wasi). TestCReferenceSource fails when the two drift apart.
cguest:
	bash wasm/testdata/reference/c/build.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Benchmarks; compare runs with benchstat (go run golang.org/x/perf/cmd/benchstat@latest old new).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./rules/ | tee bench.txt
	$(GO) test -run '^$$' -bench Reference -benchmem -count 6 ./wasm/ | tee -a bench.txt

# How many termination checks one call of the reference guests runs, by function (installs
# Debian's binaryen when wasm-opt is missing). RATIONALE.md, "What a deadline costs a Go guest".
guestchecks:
	bash wasm/testdata/reference/checks.sh

# The same count for built plugins over their conform vectors, by function and package, and
# their ns/event with and without checks (PLUGINS="behavioral email" by default; needs
# binaryen). internal/guestprof.
PLUGINS ?= behavioral email
guestprof: plugins
	bash internal/guestprof/guestprof.sh "$(PLUGINS)"

# The daemon on its embedded defaults in a fresh data directory, fed the bundled samples through
# the bus (the event JSONL by --replay, the Cowrie log by --ingest); tags are printed as they are



run: build plugins
	@data=$$(mktemp -d); trap 'rm -rf "$$data"' EXIT INT TERM; echo "data in $$data, removed at exit (Ctrl-C to stop)"; \
	$(BIN) serve --data $$data --metrics "" --replay testdata/events/sample.jsonl \
		--ingest cowrie:testdata/cowrie/sample.json --print

# The crash test at scale: 50,000 events and 10 SIGKILLs of the built binary.
crashtest: build
	TTP_CRASH_EVENTS=50000 TTP_CRASH_KILLS=10 $(GO) test -count=1 -v -timeout 60m -run 'TestCrashSafety' ./cmd/ttp

# The crash test on a cluster: a three-node JetStream cluster in process, three workers with
# --replicas 3 and PostgreSQL (TTP_TEST_POSTGRES_URL), 50,000 events, one worker SIGKILLed and
# one NATS node stopped and started again (cmd/ttp TestClusterCrash; RATIONALE.md, "A cluster").
clustertest: build
	TTP_CLUSTER_EVENTS=50000 $(GO) test -count=1 -v -timeout 60m -run 'TestClusterCrash' ./cmd/ttp

# The Cowrie ingest on a generated 1,000,000-line log (the mix is in internal/cowriegen):
# the Go benchmark of parse and sessionize, then lines/s and peak RSS of the same on the first
# 100,000 lines and on all of them (flat memory: the two peaks match), then `ttp tag --input
# cowrie` end to end on the same file (RATIONALE.md, "Cowrie ingest").
COWRIE_BENCH_LOG ?= $(or $(TMPDIR),/tmp)/ttp-cowrie-bench-1m.json
cowrie-bench: build plugins
	$(GO) test -run '^$$' -bench '^BenchmarkDecode$$' -benchmem -count 3 ./ingest/cowrie/
	$(GO) build -o bin/cowriebench ./internal/cowriegen/cowriebench
	bin/cowriebench gen -n 1000000 -o $(COWRIE_BENCH_LOG)
	bin/cowriebench parse -n 100000 $(COWRIE_BENCH_LOG)
	bin/cowriebench parse $(COWRIE_BENCH_LOG)
	/usr/bin/time -f 'ttp tag --input cowrie: %e s wall, %U s user, peak RSS %M KiB' \
		$(BIN) tag --input cowrie $(COWRIE_BENCH_LOG) > /dev/null
	rm -f $(COWRIE_BENCH_LOG)

# The restart test of `ttp serve --ingest` at scale: 100,000 Cowrie lines, 8 SIGKILLs.
ingesttest: build
	TTP_INGEST_LINES=100000 TTP_INGEST_KILLS=8 $(GO) test -count=1 -v -timeout 30m -run 'TestIngestRestart' ./cmd/ttp

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
	$(GO) test -run '^$$' -fuzz '^FuzzSkipCommon$$' -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendRecord$$' -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz '^FuzzPunycode$$' -fuzztime $(FUZZTIME) ./plugins/email/
	$(GO) test -run '^$$' -fuzz '^FuzzPack$$' -fuzztime $(FUZZTIME) ./internal/wasmdata/
	$(GO) test -run '^$$' -fuzz '^FuzzText$$' -fuzztime $(FUZZTIME) ./plugins/email/
	$(GO) test -run '^$$' -fuzz '^FuzzTag$$' -fuzztime $(FUZZTIME) ./plugins/intel/
	$(GO) test -run '^$$' -fuzz '^FuzzTag$$' -fuzztime $(FUZZTIME) ./plugins/canary/
	$(GO) test -run '^$$' -fuzz '^FuzzIceAddrs$$' -fuzztime $(FUZZTIME) ./plugins/canary/
	$(GO) test -run '^$$' -fuzz '^FuzzCowrieLine$$' -fuzztime $(FUZZTIME) ./ingest/cowrie/
	$(GO) test -run '^$$' -fuzz '^FuzzFastDecode$$' -fuzztime $(FUZZTIME) ./ingest/cowrie/
	$(GO) test -run '^$$' -fuzz '^FuzzHostCalls$$' -fuzztime $(FUZZTIME) ./wasm/hostfn/
	$(GO) test -run '^$$' -fuzz '^FuzzLiterals$$' -fuzztime $(FUZZTIME) ./wasm/hostfn/
	$(GO) test -run '^$$' -fuzz '^FuzzLower$$' -fuzztime $(FUZZTIME) ./wasm/hostfn/
	$(GO) test -run '^$$' -fuzz '^FuzzSpan$$' -fuzztime $(FUZZTIME) ./wasm/hostfn/
	$(GO) test -run '^$$' -fuzz '^FuzzIndex$$' -fuzztime $(FUZZTIME) ./wasm/hostfn/
	$(GO) test -run '^$$' -fuzz '^FuzzRegexp$$' -fuzztime $(FUZZTIME) ./wasm/hostfn/

# Regenerate committed fixtures made by other tools: the hand-written WAT test modules
# (installs Debian's wabt when wat2wasm is missing).
testdata:
	bash wasm/testdata/wat/build.sh

.PHONY: report-screenshot navigator-golden

# docs/report.png, the README's picture of `ttp report`: the fixture's report rendered in
# headless Chromium by the browser test (apt-get install chromium when missing).
report-screenshot:
	TTP_REPORT_SCREENSHOT=$(CURDIR)/docs/report.png $(GO) test -count=1 -run '^TestReportInBrowser$$' -v ./report/

# Rewrite testdata/navigator/*.golden after a deliberate change to the layer.
navigator-golden:
	$(GO) test -count=1 -run '^TestGolden$$' ./navigator/ -update

# Build every plugins/*/ (a main package using sdk) into plugins/*.wasm.
# Each module's data segments are packed after the build (internal/wasmdata: the Go linker's
# 40,000 segments cost host heap in every module and instance). PLUGIN_OUT and PLUGIN_TAGS
# build elsewhere and with tags (make footprint).
PLUGIN_OUT  ?= plugins
PLUGIN_TAGS ?=
plugins:
	@set -e; mkdir -p $(PLUGIN_OUT); for d in plugins/*/; do \
		[ -f "$$d/main.go" ] || continue; \
		name=$$(basename $$d); \
		echo "$(PLUGIN_OUT)/$$name.wasm"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -tags "$(PLUGIN_TAGS)" -buildmode=c-shared -o $(PLUGIN_OUT)/$$name.wasm ./$$d; \
	done; $(GO) run ./internal/wasmdata/wasmpack $(PLUGIN_OUT)/*.wasm

# What each plugin's module and instances hold (wasm TestInstanceFootprint), with the guest Go
# runtime's MemStats: the plugins built with the ttpmemstats tag into a temporary directory.
# RATIONALE.md, "What an instance holds".
footprint:
	@dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	$(MAKE) --no-print-directory plugins PLUGIN_OUT=$$dir PLUGIN_TAGS=ttpmemstats >/dev/null && \
	TTP_FOOTPRINT_PLUGINS=$$dir $(GO) test -count=1 -v -run 'TestInstanceFootprint' ./wasm/

clean:
	rm -rf bin bench.txt

# perfhound: one binary, three jobs. `make demo` runs the main job (diagnose
# a fixture workload); `make test` runs every test (what CI runs, through
# .ci/run).

GO        ?= go
BIN       := bin/perfhound
FUZZTIME  ?= 10s
DEMO_PAIR ?= fixtures/corpus/HashBlocks-10
# The demo's workload (fixtures/workloads -mode): hash, fsync, churn, mutex, slowclient, sleep...
DEMO_MODE ?= hash

.PHONY: all build install test unit test-busy fuzz fuzz-long demo demo-compare bench fixtures eval eval-regress lint generate

all: build

build:
	$(GO) build -o $(BIN) ./cmd/perfhound

# The binary, the agent's systemd unit (its ExecStart names BINDIR's binary),
# its guide and example config, and that example as SYSCONFDIR's
# perfhound/agent.yaml unless one is there already (never overwritten).
# DESTDIR stages it all for a package. Then: systemctl daemon-reload;
# systemctl enable --now perfhound-agent (docs/agent.md).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/perfhound
SYSCONFDIR ?= /etc

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/perfhound
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/perfhound|$(BINDIR)/perfhound|' -e 's|/usr/local/share/doc/perfhound|$(DOCDIR)|' \
	  -e 's|/etc/perfhound/|$(SYSCONFDIR)/perfhound/|' packaging/perfhound-agent.service > $(DESTDIR)$(UNITDIR)/perfhound-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/perfhound-agent.service
	install -D -m 0644 docs/agent.md $(DESTDIR)$(DOCDIR)/agent.md
	install -D -m 0644 docs/agent.example.yaml $(DESTDIR)$(DOCDIR)/agent.example.yaml
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/perfhound/agent.yaml ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/perfhound/agent.yaml (the new example is $(DESTDIR)$(DOCDIR)/agent.example.yaml)"; \
	else install -D -m 0644 docs/agent.example.yaml $(DESTDIR)$(SYSCONFDIR)/perfhound/agent.yaml; fi

# Every test, vet and format check, and short fuzz runs of the input parsers,
# the observation loader and the analyzer.
test: lint unit fuzz

# The eBPF tests and the live diagnoses watch the whole machine (run-queue
# latency, CPU shares, the host's busiest process), so they run after the
# rest, one package at a time, and never from the test cache (their outcome
# depends on the kernel, not on the files); without root they skip and say
# why.
unit:
	$(GO) test $$($(GO) list ./... | grep -v -e '/bpf$$' -e '/cmd/perfhound$$')
	$(GO) test -count=1 -p 1 -timeout 40m ./bpf ./cmd/perfhound

# The live tests beside stress-ng hogging every CPU, at its priority and
# niced below it: what CI's other jobs do to them (needs stress-ng; root
# for the eBPF tests). RUNS=3 repeats each variant.
test-busy:
	scripts/test-busy.sh

# The fuzz targets, as package:Target. `make test` runs each for FUZZTIME
# (10 s); `make fuzz-long` for FUZZLONG (5 m) each, to run before a release
# or after touching a parser.
FUZZ_TARGETS := \
	analyzer/input:FuzzDetect \
	analyzer/compare:FuzzCompareProfiles \
	analyzer/observation:FuzzLoadIndex \
	analyzer/verdict:FuzzJudge \
	analyzer/profdecode:FuzzMeasure \
	analyzer/compare:FuzzCompareBench \
	analyzer/htmlreport:FuzzChart \
	agent/pprofui:FuzzSafeName \
	analyzer/observation:FuzzLoadObservationDir \
	agent/ingest:FuzzIngest \
	analyzer/observation:FuzzUnmarshal \
	agent/config:FuzzLoad \
	agent/api:FuzzQuery \
	agent/identity:FuzzParseCgroup \
	agent/identity:FuzzParseNotes \
	agent/identity:FuzzRuleCompile \
	agent/forward/relabel:FuzzRelabel \
	cmd/perfhound:FuzzAgentCheckConfig
FUZZLONG ?= 5m

# scripts/fuzz.sh runs them, and tells a finding from Go 1.26's race at the
# end of -fuzztime (golang/go#75804), which reports no input.
fuzz:
	@GO=$(GO) scripts/fuzz.sh $(FUZZTIME) $(FUZZFLAGS) -- $(FUZZ_TARGETS)

# Minimizing each new input (60 s by default) would stall the long runs.
fuzz-long:
	$(MAKE) fuzz FUZZTIME=$(FUZZLONG) FUZZFLAGS=-fuzzminimizetime=1x

# The main job: run a fixture workload and diagnose it to its end. As root
# eBPF shows where every thread's time went; without root perfhound uses
# /proc and PSI and says what that costs the verdict.
demo: build
	@$(GO) build -o bin/workloads ./fixtures/workloads
	@echo "\$$ $(BIN) diagnose -- bin/workloads -mode $(DEMO_MODE) -dir /var/tmp -duration 6s"
	@$(BIN) diagnose -- bin/workloads -mode $(DEMO_MODE) -dir /var/tmp -duration 6s

# CI's job on bundled data: compare a base with a head whose HashBlocks
# was slowed by 10% (exit status 1 means a regression was found).
demo-compare: build
	@echo "\$$ $(BIN) compare $(DEMO_PAIR)/base $(DEMO_PAIR)/head"
	@$(BIN) compare $(DEMO_PAIR)/base $(DEMO_PAIR)/head; \
	  status=$$?; echo; echo "perfhound exited with status $$status (0: no regression, 1: regression found, 2: bad input)"; \
	  test $$status -le 1

# Speed: go test benchmarks, then the CLI against pprof and benchstat
# (fixtures/profiles/speed.sh; installs benchstat into /tmp/bin, uses hyperfine when present),
# then the eBPF collectors' overhead on a CPU-bound workload (bpf/bench/overhead.sh, root only).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	fixtures/profiles/speed.sh
	@if [ "$$(id -u)" = 0 ]; then bpf/bench/overhead.sh; else echo "bpf/bench/overhead.sh skipped: needs root"; fi

# Re-record the accuracy corpus (about 15 minutes; see fixtures/record/README.md).
fixtures:
	fixtures/record/record.sh

# Accuracy of compare on the corpus: recall, false positives, attribution.
eval:
	$(GO) run ./fixtures/eval/cmd/perfhound-eval -corpus fixtures/corpus

# The regression detector's evaluation (analyzer/regress/eval): simulated
# deploys, null deploys, load changes, cost shifts and restarts replayed into
# regress.New(regress.DefaultOptions()); Markdown on stdout (docs/benchmarks.md
# has a run). -model prints the binomial model's expectation alone.
eval-regress:
	$(GO) run ./analyzer/regress/eval/cmd/evalregress

# Regenerate the committed BPF objects and bindings (needs clang, bpftool,
# libbpf-dev: apt-get install clang llvm bpftool libbpf-dev).
generate:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/c/vmlinux.h
	cd bpf && $(GO) generate .

# vet, gofmt and staticcheck (pinned as a tool in go.mod: `go tool` fetches it
# through the module proxy, nothing to install).
lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

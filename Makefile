# Build, test and demo entry points for visitrelay. `make test` is what CI runs.

GO ?= go

# VERSION is stamped into the binaries, shown on the status pages and in
# the build-info metric.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/visitrelay/visitrelay/internal/version.Version=$(VERSION)

# build compiles every binary under cmd/ into bin/.
.PHONY: build
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# test installs PostgreSQL and Chromium if they are missing, runs every test
# with the race detector, and then fuzzes the input parsers briefly.
.PHONY: test
test: ensure-postgres ensure-chromium
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# test-faults runs the fault matrix in its long variants: 60 s outages, a
# minute of link flapping and a backlog of 10,000 visits. `make test` runs
# the same scenarios with shorter outages and smaller backlogs.
.PHONY: test-faults
test-faults: ensure-postgres
	VISITRELAY_FAULT_LONG=1 $(GO) test -race -count=1 -timeout 40m -run Fault ./e2e/

# fuzz runs each fuzz target for a short while on top of its seed corpus in
# testdata/fuzz; raise FUZZTIME for a longer search.
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/visit
	$(GO) test -run '^$$' -fuzz '^FuzzReadCSV$$' -fuzztime $(FUZZTIME) ./appliance

# ensure-postgres installs the PostgreSQL server binaries that the tests and demo run.
.PHONY: ensure-postgres
ensure-postgres:
	scripts/ensure-postgres.sh

# ensure-chromium installs Debian's chromium, which the browser tests in e2e/ drive.
.PHONY: ensure-chromium
ensure-chromium:
	scripts/ensure-chromium.sh

# vet runs go vet on every package.
.PHONY: vet
vet:
	$(GO) vet ./...

# clean removes build output and coverage files; the demo's data in .demo/ stays.
.PHONY: clean
clean:
	rm -rf bin/ coverage.out coverage.html

# demo runs PostgreSQL, the appliance and the gateway on this machine and
# replays a working day of visits; DEMO_ONCE=1 stops after the replay.
.PHONY: demo
demo: ensure-postgres build
	bin/visitrelay-demo

# bench runs the end-to-end benchmarks in e2e/bench_*_test.go, once each
# because each is a whole load run, keeps their output in BENCH_OUTPUT,
# prints the table of figures and appends it, with the date, the commit and
# the machine, to docs/benchmarks.md. It took 7 minutes on 2 cores with an
# empty build cache and the Go modules already downloaded. BENCH_SPIKE
# (60s), BENCH_STEP (5s) and BENCH_BACKLOG (100000) shorten the phases for
# a quick look; such a run prints its table but does not append it. When
# a benchmark fails, the table of what was measured is printed but not
# appended.
BENCH_OUTPUT ?= bin/bench.txt
.PHONY: bench
bench: ensure-postgres
	mkdir -p $(dir $(BENCH_OUTPUT))
	bash -o pipefail -c '$(GO) test -run "^$$" -bench . -benchtime=1x -count=1 -timeout 15m ./e2e/ | tee $(BENCH_OUTPUT)' || \
		{ $(GO) run ./cmd/visitrelay-benchreport $(BENCH_OUTPUT); exit 1; }
	@if [ -n "$(BENCH_SPIKE)$(BENCH_STEP)$(BENCH_BACKLOG)" ]; then \
		$(GO) run ./cmd/visitrelay-benchreport $(BENCH_OUTPUT) && \
		echo "bench: a quick run (BENCH_SPIKE, BENCH_STEP or BENCH_BACKLOG set), so docs/benchmarks.md is left as it was"; \
	else \
		$(GO) run ./cmd/visitrelay-benchreport -append docs/benchmarks.md $(BENCH_OUTPUT); \
	fi

# deb builds the visitrelay-appliance and visitrelay-gateway Debian packages
# into DIST with nfpm, pinned as a Go tool in go.mod; the binaries go to
# build/, where packaging/nfpm-*.yaml expects them. VERSION must start with
# a digit; ARCH is a Go and Debian architecture name (amd64, arm64).
VERSION ?= 0.1.0~dev$(shell date -u +%Y%m%d%H%M%S)
ARCH ?= $(shell $(GO) env GOARCH)
DIST ?= dist
DEB_LDFLAGS = -s -w -X github.com/visitrelay/visitrelay/internal/version.Version=$(VERSION)
.PHONY: deb
deb:
	mkdir -p build $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -buildmode=pie -ldflags '$(DEB_LDFLAGS)' \
		-o build/ ./cmd/visitrelay-appliance ./cmd/visitrelay-gateway
	gzip -9n -c packaging/changelog > build/changelog.Debian.gz
	for side in appliance gateway; do \
		VERSION='$(VERSION)' ARCH='$(ARCH)' $(GO) tool nfpm package --packager deb \
			--config packaging/nfpm-$$side.yaml --target $(DIST)/ || exit 1; \
	done
	ls -l $(DIST)/*.deb

# test-install builds two versions of the packages and installs, upgrades
# and purges them in a root directory the test builds (see
# e2e/install_test.go); it needs root, dpkg, lintian and PostgreSQL.
.PHONY: test-install
test-install: ensure-postgres
	command -v lintian >/dev/null && command -v debootstrap >/dev/null || \
		{ apt-get update && apt-get install -y --no-install-recommends lintian debootstrap; }
	VISITRELAY_TEST_INSTALL=1 $(GO) test -count=1 -timeout 20m -run 'TestInstall|TestPackage' -v ./e2e/

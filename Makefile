# Build, test and demo entry points for visitrelay. `make test` is what CI runs.

GO ?= go

# build compiles every binary under cmd/ into bin/.
.PHONY: build
build:
	$(GO) build -o bin/ ./cmd/...

# test installs PostgreSQL if it is missing, runs every test with the race
# detector, and then fuzzes the input parsers briefly.
.PHONY: test
test: ensure-postgres
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

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

# bench runs the benchmarks only, skipping the tests. The end-to-end
# benchmarks are whole load runs, so each runs once.
.PHONY: bench
bench: ensure-postgres
	$(GO) test -run '^$$' -bench . -benchtime=1x -timeout 30m ./...

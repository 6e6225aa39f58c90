GO ?= go
BIN := bin/unhost

.PHONY: build demo test tools fuzz bench bench-paths clean

build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN) ./cmd/unhost

# The main job on the demo stack: print the migration diff and the plan.
demo: build
	./$(BIN) migrate -f testdata/demo/compose.yaml
	./$(BIN) migrate -f testdata/demo/compose.yaml --format markdown

# Everything the tests need that a fresh machine lacks (the compose v2 CLI).
tools:
	scripts/install-compose.sh

# Every test. Docker tests fail (not skip) when CI is truthy (true, 1, yes;
# .ci/run sets CI=true) and no engine answers.
# -p 1: packages run one after another, because the swarm tests initialise
# and leave a swarm on the shared engine, which breaks name lookup inside
# containers that another package's tests run at that moment.
test: tools
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 60m ./...

# The CLI's migrate against `docker compose config -q` on generated files of
# 500 and 5,000 host-network services: medians of interleaved pairs, wall
# time, as BENCHMARKS.md records them (run on an idle machine). The
# engine-bound check of verify --bench is separate: make bench-paths.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 5x ./...
	scripts/bench-migrate.sh 500 7
	scripts/bench-migrate.sh 5000 5

# verify --bench's path baselines beside a plain ping-pong on the same
# paths (issue 14's check on the method; BENCHMARKS.md). Uses the engine,
# under flock /tmp/unhost-engine.lock; about 5 minutes for 2 pairs.
bench-paths: tools
	scripts/bench-paths.sh 2

clean:
	rm -rf bin

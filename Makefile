# The test command of the README. kubebins builds kube-apiserver and etcd
# into ~/.cache/tenure (or $TENURE_CACHE_DIR) when they are not cached yet,
# so that the cold build (about 13 minutes on 2 cores) does not count
# against a test timeout; with $KUBEBUILDER_ASSETS set it only checks the
# binaries there.
.PHONY: test test-short binaries fuzz bench chaos-long

test: binaries
	go test -race -timeout 30m ./...
	cd contrib/controllerruntime && go vet ./... && go test -race -timeout 10m ./...
	cd examples/controllerruntime && go vet ./... && go test -race -timeout 10m ./...

# The quick inner loop: skips every test that needs the real kube-apiserver.
test-short:
	go test -short ./...
	cd contrib/controllerruntime && go test -short ./...
	cd examples/controllerruntime && go test -short ./...

binaries:
	go run ./internal/kubetest/cmd/kubebins

# Fuzz the record decoder and the config loader (longer than .ci/run does).
fuzz:
	go test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 5m ./locks
	go test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 5m ./config

# Measure tenure against client-go on a real API server; writes BENCHMARKS.md.
bench: binaries
	go run ./bench

# The chaos suite's long form (see RELIABILITY.md): in-process elections
# in 100 elections, then the processes, under faults.
chaos-long: binaries
	CHAOS=long CHAOS_DURATION=25m CHAOS_ELECTIONS=100 go test -count=1 -v -run TestElectionsUnderFaults -timeout 40m ./chaos
	CHAOS=long CHAOS_DURATION=15m go test -count=1 -v -run TestProcessesUnderFaults -timeout 30m ./chaos

# The test command of the README. kubebins builds kube-apiserver and etcd
# into ~/.cache/tenure (or $TENURE_CACHE_DIR) when they are not cached yet,
# so that the cold build (about 13 minutes on 2 cores) does not count
# against a test timeout.
.PHONY: test test-short binaries fuzz bench

test: binaries
	go test -race -timeout 30m ./...

# The quick inner loop: skips every test that needs the real kube-apiserver.
test-short:
	go test -short ./...

binaries:
	go run ./internal/kubetest/cmd/kubebins

# Fuzz the record decoder and the config loader (longer than .ci/run does).
fuzz:
	go test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 5m ./locks
	go test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 5m ./config

# Measure tenure against client-go on a real API server; writes BENCHMARKS.md.
bench: binaries
	go run ./bench

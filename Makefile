# The test command of the README. kubebins builds kube-apiserver and etcd
# into ~/.cache/tenure (or $TENURE_CACHE_DIR) when they are not cached yet,
# so that the cold build (about 13 minutes on 2 cores) does not count
# against a test timeout.
.PHONY: test test-short binaries

test: binaries
	go test -race -timeout 30m ./...

# The quick inner loop: skips every test that needs the real kube-apiserver.
test-short:
	go test -short ./...

binaries:
	go run ./internal/kubetest/cmd/kubebins

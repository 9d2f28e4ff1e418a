package kubetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// KubernetesVersion is the version of kube-apiserver the tests run; the
// module under hack/kube-apiserver pins it.
const KubernetesVersion = "v1.37.2"

// Binaries are the paths of the built test servers.
type Binaries struct {
	APIServer string
	Etcd      string
}

// binary is one server program and how to build it from a module under
// hack/.
type binary struct {
	name    string // file name in the cache
	module  string // folder under hack/
	pkg     string // main package to build
	ldflags string
	about   string // what is built and how long it takes cold
}

var binaries = []binary{
	{
		name:   "kube-apiserver",
		module: "kube-apiserver",
		pkg:    "k8s.io/kubernetes/cmd/kube-apiserver",
		ldflags: "-s -w" +
			" -X k8s.io/component-base/version.gitVersion=" + KubernetesVersion +
			" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37",
		about: "kube-apiserver " + KubernetesVersion + " (cold: about 12 minutes on 2 cores)",
	},
	{name: "etcd", module: "etcd", pkg: "go.etcd.io/etcd/server/v3", ldflags: "-s -w", about: "etcd (cold: about 1 minute)"},
}

// CacheDir is where built binaries are kept: $TENURE_CACHE_DIR if set,
// else tenure/k8s-<version> under the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache). It is outside the repository so that a
// fresh clone reuses an earlier build.
func CacheDir() (string, error) {
	if dir := os.Getenv("TENURE_CACHE_DIR"); dir != "" {
		return filepath.Join(dir, "k8s-"+KubernetesVersion), nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory (set TENURE_CACHE_DIR): %w", err)
	}
	return filepath.Join(base, "tenure", "k8s-"+KubernetesVersion), nil
}

// EnsureBinaries returns the cached kube-apiserver and etcd, building the
// missing ones from the modules under hack/ with the go command (about ten
// minutes on two cores for kube-apiserver). Concurrent callers, in this
// process or others, serialize on a file lock in the cache directory, and
// a binary appears in the cache only once fully built, so a cache is never
// seen half written.
func EnsureBinaries(ctx context.Context, progress func(string)) (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	bins := Binaries{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}
	if allExecutable(bins) {
		return bins, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("create cache directory: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".build.lock"))
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	root, err := repoRoot()
	if err != nil {
		return Binaries{}, err
	}
	for _, b := range binaries {
		out := filepath.Join(dir, b.name)
		if isExecutable(out) {
			continue // built by another process while we waited for the lock
		}
		if progress != nil {
			progress(fmt.Sprintf("building %s into %s", b.about, dir))
		}
		if err := build(ctx, filepath.Join(root, "hack", b.module), b, out); err != nil {
			return Binaries{}, err
		}
	}
	return bins, nil
}

func build(ctx context.Context, moduleDir string, b binary, out string) error {
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", b.ldflags, "-o", tmp, b.pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	output, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build %s in %s: %w\n%s", b.name, moduleDir, err, tail(output, 40))
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("install %s: %w", b.name, err)
	}
	return nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("take build lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func allExecutable(b Binaries) bool { return isExecutable(b.APIServer) && isExecutable(b.Etcd) }

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// repoRoot finds tenure's module root from the working directory, which
// for a test is its package folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if strings.TrimSpace(line) == "module github.com/tenure/tenure" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the tenure module root (go.mod) above the working directory")
		}
		dir = parent
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

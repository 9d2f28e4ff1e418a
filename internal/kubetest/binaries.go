package kubetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KubernetesVersion is the version of kube-apiserver that kubetest builds
// when no binaries are given; the module under hack/kube-apiserver pins it.
const KubernetesVersion = "v1.37.2"

// oldestMinor and newestMinor bound the kube-apiserver 1.x versions whose
// flags Start passes: the CoordinatedLeaderElection gate and the
// coordination.k8s.io/v1beta1 group it enables are served from 1.33, and
// newestMinor is KubernetesVersion's (a test checks they agree); a newer
// version may have dropped a flag. etcd needs 3.5 or later for
// --unsafe-no-fsync.
const (
	oldestMinor     = 33
	newestMinor     = 37
	oldestEtcdMinor = 5
)

// The environment variables that name binaries, as controller-runtime's
// envtest reads them: one per binary, else a folder holding both, such as
// `setup-envtest use -p path` prints.
const (
	envAssets    = "KUBEBUILDER_ASSETS"
	envAPIServer = "TEST_ASSET_KUBE_APISERVER"
	envEtcd      = "TEST_ASSET_ETCD"
)

// errAssets marks a fault in the binaries the environment names. The user
// asked for them, so tests fail on it even without CI=true rather than
// skip or build others.
var errAssets = errors.New("kubetest: bad test binaries")

// Binaries are the paths of the test servers and the versions they report.
type Binaries struct {
	APIServer string
	Etcd      string
	// APIServerVersion is what kube-apiserver --version reports, such as
	// v1.37.2; EtcdVersion is etcd's, such as 3.7.3.
	APIServerVersion, EtcdVersion string
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

// EnsureBinaries returns the kube-apiserver and etcd to test with, after
// checking that Start can drive their versions (kube-apiserver v1.33 to
// KubernetesVersion, etcd 3.5 or later), and reports which it uses through
// progress.
//
// If TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD or KUBEBUILDER_ASSETS is
// set (and not empty), the binaries are the files they name, as in
// controller-runtime's envtest: each binary's TEST_ASSET_ variable, else
// the file of its name in KUBEBUILDER_ASSETS. A file missing or not
// executable is an error that says so; nothing is built in its place.
//
// Otherwise they are the cached ones (see CacheDir), built first if
// missing from the modules under hack/ with the go command (about 13
// minutes on two cores). Concurrent callers, in this process or others,
// serialize on a file lock in the cache directory, and a binary appears
// in the cache only once fully built, so a cache is never seen half
// written.
func EnsureBinaries(ctx context.Context, progress func(string)) (Binaries, error) {
	bins, from, err := fromEnvironment()
	if err != nil {
		return Binaries{}, err
	}
	if from == "" {
		if bins, err = cachedOrBuilt(ctx, progress); err != nil {
			return Binaries{}, err
		}
		from = "the cache"
	}
	if err := bins.readVersions(ctx, from); err != nil {
		return Binaries{}, err
	}
	if progress != nil {
		progress(fmt.Sprintf("using kube-apiserver %s (%s) and etcd %s (%s), from %s",
			bins.APIServerVersion, bins.APIServer, bins.EtcdVersion, bins.Etcd, from))
	}
	return bins, nil
}

// fromEnvironment returns the binaries the environment names and which
// variables named them, or from "" when none is set.
func fromEnvironment() (bins Binaries, from string, err error) {
	each := []struct {
		path      *string
		name, env string
	}{{&bins.APIServer, "kube-apiserver", envAPIServer}, {&bins.Etcd, "etcd", envEtcd}}
	var named []string
	for _, b := range each {
		if path := os.Getenv(b.env); path != "" {
			*b.path = path
			named = append(named, b.env+"="+path)
		}
	}
	dir := os.Getenv(envAssets)
	if dir != "" {
		named = append(named, envAssets+"="+dir)
	}
	if len(named) == 0 {
		return Binaries{}, "", nil
	}
	from = strings.Join(named, ", ")
	unset := "unset " + strings.Join(setVariables(), " and ") +
		" to have kubetest build its own into " + cacheDirForHumans() + " (about 13 minutes the first time)"
	for _, b := range each {
		switch {
		case *b.path != "":
			if err := checkExecutable(*b.path); err != nil {
				return Binaries{}, "", fmt.Errorf("%w: %s=%s: %v; point it at %s, or %s", errAssets, b.env, *b.path, err, b.name, unset)
			}
		case dir == "":
			return Binaries{}, "", fmt.Errorf("%w: %s is set but nothing names %s: set %s or %s too, or %s", errAssets, from, b.name, b.env, envAssets, unset)
		default:
			*b.path = filepath.Join(dir, b.name)
			if err := checkExecutable(*b.path); err != nil {
				return Binaries{}, "", fmt.Errorf("%w: %s=%s has no usable %s: %v; put kube-apiserver and etcd there (`setup-envtest use -p path` prints such a folder), or %s", errAssets, envAssets, dir, b.name, err, unset)
			}
		}
	}
	return bins, from, nil
}

// setVariables lists the variables that name binaries and are set.
func setVariables() []string {
	var set []string
	for _, env := range []string{envAssets, envAPIServer, envEtcd} {
		if os.Getenv(env) != "" {
			set = append(set, env)
		}
	}
	return set
}

// cacheDirForHumans is CacheDir for an error message, which must not fail.
func cacheDirForHumans() string {
	if dir, err := CacheDir(); err == nil {
		return dir
	}
	return "$TENURE_CACHE_DIR"
}

// cachedOrBuilt returns the binaries in the cache, building the missing
// ones.
func cachedOrBuilt(ctx context.Context, progress func(string)) (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	bins := Binaries{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}
	if checkExecutable(bins.APIServer) == nil && checkExecutable(bins.Etcd) == nil {
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
		if checkExecutable(out) == nil {
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

var (
	apiServerVersion = regexp.MustCompile(`Kubernetes (v(\d+)\.(\d+)\.\d+\S*)`)
	etcdVersion      = regexp.MustCompile(`etcd Version: ((\d+)\.(\d+)\.\d+\S*)`)
)

// readVersions runs each binary with --version, records what it reports
// and checks that Start can drive it. from names where the binaries came
// from, for the error.
func (b *Binaries) readVersions(ctx context.Context, from string) error {
	var err error
	var major, minor int
	if b.APIServerVersion, major, minor, err = version(ctx, b.APIServer, apiServerVersion); err != nil {
		return err
	}
	if major != 1 || minor < oldestMinor || minor > newestMinor {
		return fmt.Errorf("%w: %s is kube-apiserver %s (from %s); kubetest drives v1.%d to v1.%d: use one of those (`setup-envtest use -p path 1.%d.x`)",
			errAssets, b.APIServer, b.APIServerVersion, from, oldestMinor, newestMinor, newestMinor)
	}
	if b.EtcdVersion, major, minor, err = version(ctx, b.Etcd, etcdVersion); err != nil {
		return err
	}
	if major != 3 || minor < oldestEtcdMinor {
		return fmt.Errorf("%w: %s is etcd %s (from %s); kubetest drives etcd 3.%d or later 3.x",
			errAssets, b.Etcd, b.EtcdVersion, from, oldestEtcdMinor)
	}
	return nil
}

// version runs path --version and returns the version that re finds in
// its output, and the version's major and minor numbers.
func version(ctx context.Context, path string, re *regexp.Regexp) (v string, major, minor int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", 0, 0, fmt.Errorf("%w: %s --version: %v\n%s", errAssets, path, err, tail(out, 10))
	}
	m := re.FindSubmatch(out)
	if m == nil {
		return "", 0, 0, fmt.Errorf("%w: %s --version printed no version matching %q:\n%s", errAssets, path, re, tail(out, 10))
	}
	major, _ = strconv.Atoi(string(m[2])) // digits, so no error
	minor, _ = strconv.Atoi(string(m[3]))
	return string(m[1]), major, minor, nil
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

// checkExecutable says why path, or the file a symbolic link at path
// points to, is not an executable file.
func checkExecutable(path string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	case st.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not executable (mode %s)", path, st.Mode().Perm())
	}
	return nil
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

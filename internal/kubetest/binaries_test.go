package kubetest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/internal/kubetest"
)

// fakeBinary writes an executable script into dir that prints version for
// --version and otherwise exits at once with status 1, as a server that
// cannot start.
func fakeBinary(t *testing.T, dir, name, version string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --version ]; then echo %q; exit 0; fi\necho cannot serve >&2\nexit 1\n", version)
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

// useBinaries sets the variables that name binaries ("" unsets one) and
// points the cache at an empty folder, whose path it returns: a build
// would create it.
func useBinaries(t *testing.T, assets, apiserver, etcd string) (cache string) {
	t.Helper()
	t.Setenv("KUBEBUILDER_ASSETS", assets)
	t.Setenv("TEST_ASSET_KUBE_APISERVER", apiserver)
	t.Setenv("TEST_ASSET_ETCD", etcd)
	cache = filepath.Join(t.TempDir(), "cache")
	t.Setenv("TENURE_CACHE_DIR", cache)
	return cache
}

// nextMinor is the kube-apiserver version after KubernetesVersion's minor.
func nextMinor(t *testing.T) string {
	m := regexp.MustCompile(`^v1\.(\d+)\.`).FindStringSubmatch(kubetest.KubernetesVersion)
	require.NotNil(t, m, kubetest.KubernetesVersion)
	minor, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return fmt.Sprintf("v1.%d.0", minor+1)
}

func TestBinariesFromTheEnvironment(t *testing.T) {
	const (
		v133  = "Kubernetes v1.33.0"
		etcd3 = "etcd Version: 3.5.21"
	)
	tests := []struct {
		name string
		// setup makes files in dir and returns KUBEBUILDER_ASSETS,
		// TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD.
		setup func(t *testing.T, dir string) (assets, apiserver, etcd string)
		// want are the binaries' names under dir and their versions.
		want       kubetest.Binaries
		wantErrors []string
	}{{
		name: "a folder of both",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", v133)
			fakeBinary(t, dir, "etcd", etcd3)
			return dir, "", ""
		},
		want: kubetest.Binaries{APIServer: "kube-apiserver", Etcd: "etcd", APIServerVersion: "v1.33.0", EtcdVersion: "3.5.21"},
	}, {
		name: "a folder of symbolic links",
		setup: func(t *testing.T, dir string) (string, string, string) {
			real := t.TempDir()
			require.NoError(t, os.Symlink(fakeBinary(t, real, "kube-apiserver", "Kubernetes "+kubetest.KubernetesVersion), filepath.Join(dir, "kube-apiserver")))
			require.NoError(t, os.Symlink(fakeBinary(t, real, "etcd", "etcd Version: 3.7.3"), filepath.Join(dir, "etcd")))
			return dir, "", ""
		},
		want: kubetest.Binaries{APIServer: "kube-apiserver", Etcd: "etcd", APIServerVersion: kubetest.KubernetesVersion, EtcdVersion: "3.7.3"},
	}, {
		name: "a variable per binary wins over the folder",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", v133)
			fakeBinary(t, dir, "etcd", etcd3)
			return dir, fakeBinary(t, dir, "my-apiserver", "Kubernetes v1.36.1"), ""
		},
		want: kubetest.Binaries{APIServer: "my-apiserver", Etcd: "etcd", APIServerVersion: "v1.36.1", EtcdVersion: "3.5.21"},
	}, {
		name: "a variable per binary, no folder",
		setup: func(t *testing.T, dir string) (string, string, string) {
			return "", fakeBinary(t, dir, "a", v133), fakeBinary(t, dir, "e", etcd3)
		},
		want: kubetest.Binaries{APIServer: "a", Etcd: "e", APIServerVersion: "v1.33.0", EtcdVersion: "3.5.21"},
	}, {
		name: "a binary missing from the folder",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", v133)
			return dir, "", ""
		},
		wantErrors: []string{"KUBEBUILDER_ASSETS=<dir> has no usable etcd", "<dir>/etcd: no such file", "unset KUBEBUILDER_ASSETS to have kubetest build its own"},
	}, {
		name: "a folder that does not exist",
		setup: func(t *testing.T, dir string) (string, string, string) {
			return filepath.Join(dir, "nowhere"), "", ""
		},
		wantErrors: []string{"KUBEBUILDER_ASSETS=<dir>/nowhere has no usable kube-apiserver", "no such file", "unset KUBEBUILDER_ASSETS"},
	}, {
		name: "a binary that is not executable",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", v133)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "etcd"), nil, 0o644))
			return dir, "", ""
		},
		wantErrors: []string{"has no usable etcd", "<dir>/etcd is not executable (mode -rw-r--r--)", "unset KUBEBUILDER_ASSETS"},
	}, {
		name: "a folder where a binary should be",
		setup: func(t *testing.T, dir string) (string, string, string) {
			return "", filepath.Join(dir), fakeBinary(t, dir, "etcd", etcd3)
		},
		wantErrors: []string{"TEST_ASSET_KUBE_APISERVER=<dir>", "is not a regular file", "point it at kube-apiserver, or unset TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD"},
	}, {
		name: "one binary named and no folder",
		setup: func(t *testing.T, dir string) (string, string, string) {
			return "", fakeBinary(t, dir, "kube-apiserver", v133), ""
		},
		wantErrors: []string{"TEST_ASSET_KUBE_APISERVER=<dir>/kube-apiserver is set but nothing names etcd: set TEST_ASSET_ETCD or KUBEBUILDER_ASSETS too, or unset TEST_ASSET_KUBE_APISERVER"},
	}, {
		name: "a kube-apiserver too old for the flags",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", "Kubernetes v1.32.4")
			fakeBinary(t, dir, "etcd", etcd3)
			return dir, "", ""
		},
		wantErrors: []string{"<dir>/kube-apiserver is kube-apiserver v1.32.4 (from KUBEBUILDER_ASSETS=<dir>)", "kubetest drives v1.33 to " + strings.Join(strings.Split(kubetest.KubernetesVersion, ".")[:2], ".")},
	}, {
		name: "a kube-apiserver newer than kubetest knows",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", "Kubernetes "+nextMinor(t))
			fakeBinary(t, dir, "etcd", etcd3)
			return dir, "", ""
		},
		wantErrors: []string{"is kube-apiserver " + nextMinor(t), "kubetest drives v1.33 to"},
	}, {
		name: "an etcd too old for the flags",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", v133)
			fakeBinary(t, dir, "etcd", "etcd Version: 3.4.30")
			return dir, "", ""
		},
		wantErrors: []string{"<dir>/etcd is etcd 3.4.30", "kubetest drives etcd 3.5 or later"},
	}, {
		name: "a binary that is not kube-apiserver",
		setup: func(t *testing.T, dir string) (string, string, string) {
			fakeBinary(t, dir, "kube-apiserver", "hello")
			fakeBinary(t, dir, "etcd", etcd3)
			return dir, "", ""
		},
		wantErrors: []string{"<dir>/kube-apiserver --version printed no version", "hello"},
	}, {
		name: "a binary whose --version fails",
		setup: func(t *testing.T, dir string) (string, string, string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "kube-apiserver"), []byte("#!/bin/sh\necho broken; exit 2\n"), 0o755))
			fakeBinary(t, dir, "etcd", etcd3)
			return dir, "", ""
		},
		wantErrors: []string{"<dir>/kube-apiserver --version: exit status 2", "broken"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			assets, apiserver, etcd := tt.setup(t, dir)
			cache := useBinaries(t, assets, apiserver, etcd)
			var progress []string
			bins, err := kubetest.EnsureBinaries(context.Background(), func(msg string) { progress = append(progress, msg) })
			assert.NoDirExists(t, cache, "nothing is built")
			if tt.wantErrors != nil {
				require.Error(t, err)
				for _, want := range tt.wantErrors {
					assert.Contains(t, err.Error(), strings.ReplaceAll(want, "<dir>", dir))
				}
				return
			}
			require.NoError(t, err)
			tt.want.APIServer = filepath.Join(dir, tt.want.APIServer)
			tt.want.Etcd = filepath.Join(dir, tt.want.Etcd)
			assert.Equal(t, tt.want, bins)
			require.Len(t, progress, 1)
			assert.Contains(t, progress[0], fmt.Sprintf("using kube-apiserver %s (%s) and etcd %s (%s)", bins.APIServerVersion, bins.APIServer, bins.EtcdVersion, bins.Etcd))
		})
	}
}

// TestServersStartFromKubebuilderAssets: a KUBEBUILDER_ASSETS folder of
// links to the binaries in use is used as it is, without a build.
func TestServersStartFromKubebuilderAssets(t *testing.T) {
	kubetest.Shared(t) // skips or fails like every test that needs servers
	ctx := context.Background()
	inUse, err := kubetest.EnsureBinaries(ctx, nil)
	require.NoError(t, err)
	assets := t.TempDir()
	links := []string{filepath.Join(assets, "kube-apiserver"), filepath.Join(assets, "etcd")}
	require.NoError(t, os.Symlink(inUse.APIServer, links[0]))
	require.NoError(t, os.Symlink(inUse.Etcd, links[1]))
	cache := useBinaries(t, assets, "", "")

	bins, err := kubetest.EnsureBinaries(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, kubetest.Binaries{APIServer: links[0], Etcd: links[1], APIServerVersion: inUse.APIServerVersion, EtcdVersion: inUse.EtcdVersion}, bins)
	assert.NoDirExists(t, cache, "nothing is built")

	before := childPIDs(t, os.Getpid())
	s, err := kubetest.Start(ctx, bins)
	require.NoError(t, err)
	defer s.Stop()
	var started []string
	for _, pid := range childPIDs(t, os.Getpid()) {
		if slices.Contains(before, pid) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		require.NoError(t, err)
		started = append(started, strings.Split(string(cmdline), "\x00")[0])
	}
	assert.ElementsMatch(t, links, started, "the servers run from the links in KUBEBUILDER_ASSETS")
}

// TestWhenServersCannotStart runs a test that needs the servers in a child
// process whose servers cannot start: it fails with CI=true and skips
// without, unless the binaries the environment names are at fault, which
// fails either way.
func TestWhenServersCannotStart(t *testing.T) {
	if os.Getenv("KUBETEST_CHILD") == "shared" {
		kubetest.Shared(t)
		return
	}
	assets := t.TempDir()
	fakeBinary(t, assets, "kube-apiserver", "Kubernetes "+kubetest.KubernetesVersion)
	fakeBinary(t, assets, "etcd", "etcd Version: 3.7.3")
	tests := []struct {
		name, ci, assets string
		wantFail         bool
		wantOutput       string
	}{
		{name: "servers that exit, CI", ci: "true", assets: assets, wantFail: true, wantOutput: "CI=true, so this fails instead of skipping"},
		{name: "servers that exit, not CI", ci: "", assets: assets, wantOutput: "--- SKIP"},
		{name: "a missing folder, not CI", ci: "", assets: filepath.Join(assets, "nowhere"), wantFail: true, wantOutput: "has no usable kube-apiserver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWhenServersCannotStart$", "-test.v")
			cmd.Env = append(os.Environ(), "KUBETEST_CHILD=shared", "CI="+tt.ci, "KUBEBUILDER_ASSETS="+tt.assets,
				"TEST_ASSET_KUBE_APISERVER=", "TEST_ASSET_ETCD=", "TENURE_CACHE_DIR="+filepath.Join(t.TempDir(), "cache"))
			out, err := cmd.CombinedOutput()
			if tt.wantFail {
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "%s", out)
				assert.Contains(t, string(out), "--- FAIL")
			} else {
				require.NoError(t, err, "%s", out)
			}
			assert.Contains(t, string(out), tt.wantOutput)
		})
	}
}

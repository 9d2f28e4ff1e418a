// Package proctest builds the project's programs and runs them as
// processes in tests, reading their output line by line.
package proctest

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Build builds the main package in dir (relative to the test's package,
// such as ".") into a temporary directory of t and returns the binary.
func Build(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(must(filepath.Abs(dir))))
	cmd := exec.Command("go", "build", "-o", bin, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("proctest: build %s: %v\n%s", dir, err, out)
	}
	return bin
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// Process is a running program.
type Process struct {
	Name string
	Cmd  *exec.Cmd

	mu     sync.Mutex
	lines  []string
	stderr strings.Builder
	grew   chan struct{} // closed and replaced when a line arrives
	done   chan struct{}
	err    error
}

// Start runs bin with args and extra environment variables. Each line of
// its standard output is kept (see Lines, WaitFor) and passed to onLine,
// if not nil, as it arrives; standard error is kept (see Stderr) and goes
// to t.Log, prefixed with name. The process is killed when t ends if it still runs.
func Start(t testing.TB, name string, onLine func(line string), env []string, bin string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &Process{Name: name, Cmd: cmd, grew: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = logWriter{t: t, prefix: name + ": ", p: p}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("proctest: start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if onLine != nil {
				onLine(line)
			}
			p.mu.Lock()
			p.lines = append(p.lines, line)
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Lines returns the lines of output so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns the output so far as one string.
func (p *Process) Output() string { return strings.Join(p.Lines(), "\n") }

// WaitFor waits up to timeout for a line containing s and fails t if none
// comes.
func (p *Process) WaitFor(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		grew := p.grew
		found := strings.Contains(strings.Join(p.lines, "\n"), s)
		p.mu.Unlock()
		if found {
			return
		}
		select {
		case <-grew:
		case <-p.done:
			if !strings.Contains(p.Output(), s) {
				t.Fatalf("proctest: %s exited without printing %q; output:\n%s", p.Name, s, p.Output())
			}
			return
		case <-deadline:
			t.Fatalf("proctest: %s did not print %q within %v; output:\n%s", p.Name, s, timeout, p.Output())
		}
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for exit code 0); it fails t on timeout.
func (p *Process) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("proctest: %s did not exit within %v", p.Name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Done is closed when the process has exited and its output is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stderr returns the standard error so far.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type logWriter struct {
	t      testing.TB
	prefix string
	p      *Process
}

func (w logWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	w.p.stderr.Write(b)
	w.p.mu.Unlock()
	w.t.Logf("%s%s", w.prefix, strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// Get fetches url, such as a program's HTTP endpoint, and returns the
// status code and body; it fails t if the request fails.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("proctest: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("proctest: GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

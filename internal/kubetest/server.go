package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// Server is a kube-apiserver and its etcd, running as child processes on
// loopback ports, with an admin user.
type Server struct {
	dir       string
	etcd      *exec.Cmd
	apiserver *exec.Cmd
	exited    map[*exec.Cmd]chan struct{}
	// etcdArgs and apiserverArgs start each server again on restart:
	// the binary's path, then its arguments.
	etcdArgs, apiserverArgs []string
	mu                      sync.Mutex // guards the fields above after Start
	// URL is the API server's address, https://127.0.0.1:port.
	URL string
	// EtcdURL is etcd's client address.
	EtcdURL string
	// CAFile holds the certificate that the API server's serving
	// certificate chains to.
	CAFile string
	// AdminToken is the bearer token of a member of system:masters.
	AdminToken string
}

// Start starts etcd and kube-apiserver from bins on free loopback ports and
// waits until the API server is ready. Their data and logs live in a
// temporary folder that Stop removes. If ctx ends first, or a server exits,
// Start stops what it started and reports why, with the log's last lines.
func Start(ctx context.Context, bins Binaries) (*Server, error) {
	removeAbandoned()
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	s := &Server{dir: dir, exited: map[*exec.Cmd]chan struct{}{}}
	if err := s.start(ctx, bins); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bins Binaries) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	etcdPeer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.EtcdURL = etcdClient
	s.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	s.CAFile = filepath.Join(s.dir, "certs", "apiserver.crt")
	s.AdminToken = randomToken()

	s.etcdArgs = []string{bins.Etcd,
		"--name", "default",
		"--data-dir", filepath.Join(s.dir, "etcd"),
		"--listen-client-urls", etcdClient,
		"--advertise-client-urls", etcdClient,
		"--listen-peer-urls", etcdPeer,
		"--initial-advertise-peer-urls", etcdPeer,
		"--initial-cluster", "default=" + etcdPeer,
		"--unsafe-no-fsync",
		"--log-level", "warn",
	}
	if err := s.startEtcd(ctx); err != nil {
		return err
	}

	if err := writeServiceAccountKey(s.dir); err != nil {
		return err
	}
	tokens := s.AdminToken + ",admin,admin-uid,system:masters\n"
	if err := os.WriteFile(filepath.Join(s.dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	s.apiserverArgs = []string{bins.APIServer,
		"--etcd-servers", etcdClient,
		"--secure-port", strconv.Itoa(ports[2]),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--cert-dir", filepath.Join(s.dir, "certs"),
		"--service-account-key-file", filepath.Join(s.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(s.dir, "sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--token-auth-file", filepath.Join(s.dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--endpoint-reconciler-type", "none",
		"--enable-priority-and-fairness=false",
		// Serves spec.strategy and spec.preferredHolder of Leases, which
		// the locks must preserve.
		"--feature-gates", "CoordinatedLeaderElection=true",
		"--runtime-config", "coordination.k8s.io/v1beta1=true",
	}
	return s.startAPIServer(ctx)
}

// startEtcd starts etcd with its arguments and waits until it is healthy.
func (s *Server) startEtcd(ctx context.Context) (err error) {
	if s.etcd, err = s.spawn(s.etcdArgs[0], "etcd.log", s.etcdArgs[1:]...); err != nil {
		return err
	}
	return s.waitReady(ctx, s.etcd, "etcd.log", s.EtcdURL+"/health", nil)
}

// startAPIServer starts the API server with its arguments and waits until
// it is ready.
func (s *Server) startAPIServer(ctx context.Context) (err error) {
	if s.apiserver, err = s.spawn(s.apiserverArgs[0], "apiserver.log", s.apiserverArgs[1:]...); err != nil {
		return err
	}
	return s.waitReady(ctx, s.apiserver, "apiserver.log", s.URL+"/readyz", s.adminTransport)
}

// RestartAPIServer kills the API server and starts it again on the same
// port, with the same certificates, users and etcd, and waits until it is
// ready: for tests of what clients do while it is away and after.
func (s *Server) RestartAPIServer(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill(s.apiserver)
	return s.startAPIServer(ctx)
}

// RestartEtcd kills etcd and starts it again on the same ports and data,
// and waits until it and then the API server are ready again.
func (s *Server) RestartEtcd(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill(s.etcd)
	if err := s.startEtcd(ctx); err != nil {
		return err
	}
	return s.waitReady(ctx, s.apiserver, "apiserver.log", s.URL+"/readyz", s.adminTransport)
}

// kill ends a server's process group and waits for it to exit.
func (s *Server) kill(cmd *exec.Cmd) {
	done, ok := s.exited[cmd]
	if cmd == nil || cmd.Process == nil || !ok {
		return // never started, or already killed
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	delete(s.exited, cmd)
}

// spawn starts a server whose output goes to a log file in s.dir. The
// child is killed if this process dies (Pdeathsig), so that a test that
// panics or times out leaves no server behind.
func (s *Server) spawn(path, logName string, args ...string) (*exec.Cmd, error) {
	logFile, err := os.OpenFile(filepath.Join(s.dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	done := make(chan struct{})
	s.exited[cmd] = done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return cmd, nil
}

func (s *Server) waitReady(ctx context.Context, cmd *exec.Cmd, logName, url string, transport func() (*http.Transport, error)) error {
	client := &http.Client{Timeout: 2 * time.Second}
	if transport != nil {
		client.Transport = lazyTransport(transport)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-s.exited[cmd]:
			return fmt.Errorf("%s exited before it was ready:\n%s", filepath.Base(cmd.Path), s.logTail(logName))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (last error: %v)\n%s", filepath.Base(cmd.Path), ctx.Err(), last, s.logTail(logName))
		case <-tick.C:
		}
	}
}

// lazyTransport builds the real transport at the first request, once the
// API server has written its certificate.
type lazyTransport func() (*http.Transport, error)

func (f lazyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t, err := f()
	if err != nil {
		return nil, err
	}
	defer t.CloseIdleConnections()
	return t.RoundTrip(req)
}

func (s *Server) adminTransport() (*http.Transport, error) {
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no certificate in %s", s.CAFile)
	}
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, nil
}

// Config returns a client configuration for the admin user, verifying the
// server's certificate.
func (s *Server) Config() *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     s.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile},
		QPS:             -1, // tests make bursts of requests; no client-side throttling
	}
}

// Stop kills the servers and removes their folder; their data is
// throwaway, so there is no graceful shutdown to wait for. It is safe to
// call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cmd := range []*exec.Cmd{s.apiserver, s.etcd} {
		s.kill(cmd)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func (s *Server) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return err.Error()
	}
	return tail(b, 30)
}

const tempPrefix = "tenure-kubetest-"

// removeAbandoned deletes the folders of servers whose test process died
// without stopping them (its servers died with it; see spawn).
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(dir)
		}
	}
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeServiceAccountKey(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600),
		os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644),
	)
}

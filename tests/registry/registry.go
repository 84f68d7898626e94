// Package registry runs a real OCI distribution registry (Debian's
// docker-registry) on 127.0.0.1 for tests, and builds small deterministic
// image fixtures to push to it, so pull tests need no network.
package registry

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Binary is the registry server started by Start.
const Binary = "/usr/bin/docker-registry"

// Options configure Start.
type Options struct {
	// Auth turns on htpasswd (bcrypt) basic auth with a random password.
	Auth bool
}

// Registry is a running registry.
type Registry struct {
	Host           string // "127.0.0.1:PORT"
	User, Password string // empty without auth
	Dir            string // storage root directory
}

// Start runs a registry on a free 127.0.0.1 port with storage in a
// t.TempDir(), waits until /v2/ answers, and stops it (and removes its files)
// in t.Cleanup. It skips the test if docker-registry (or, with Auth, htpasswd)
// is not installed.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("registry: %s not installed (apt-get install -y docker-registry): %v", Binary, err)
	}
	r := &Registry{Dir: t.TempDir()}
	conf := t.TempDir() // config and htpasswd, kept out of the storage root
	auth := ""
	if opts.Auth {
		if _, err := exec.LookPath("htpasswd"); err != nil {
			t.Skip("registry: htpasswd not installed (apt-get install -y apache2-utils)")
		}
		r.User, r.Password = "berth", rand.Text()
		out, err := exec.Command("htpasswd", "-Bbn", r.User, r.Password).Output()
		if err != nil {
			t.Fatalf("registry: htpasswd: %v", err)
		}
		pw := filepath.Join(conf, "htpasswd")
		if err := os.WriteFile(pw, out, 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", pw)
	}

	// The free port is found by binding :0 and closing it, so another process
	// can take it before the registry binds it: retry on a fresh port then.
	var errs []error
	for range 3 {
		r.Host = freeAddr(t)
		cfg := filepath.Join(conf, "config.yml")
		yml := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, r.Dir, r.Host, auth)
		if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		err := r.serve(t, cfg)
		if err == nil {
			return r
		}
		errs = append(errs, err)
	}
	t.Fatalf("registry: could not start: %v", errors.Join(errs...))
	return nil
}

// serve starts the registry and waits for /v2/. On success the process is
// stopped in t.Cleanup; on failure it is already stopped.
func (r *Registry) serve(t testing.TB, cfg string) error {
	var log strings.Builder // the registry logs only errors; shown on failure
	cmd := exec.Command(Binary, "serve", cfg)
	cmd.Stdout, cmd.Stderr = &log, &log
	// Kill the registry if the test binary dies without running cleanups
	// (a test timeout panics past them).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() { cmd.Process.Kill(); <-exited }

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited (%v): %s", cmd.ProcessState, log.String())
		default:
		}
		resp, err := client.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 401 is the answer of a registry with auth: it is up.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				t.Cleanup(stop) // registered after TempDir's, so it runs first
				return nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("/v2/ on %s not ready after 15s (last: %v): %s", r.Host, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ref returns the reference of repo (which may carry a :tag or @digest) in r.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Authenticator returns r's credentials for go-containerregistry.
func (r *Registry) Authenticator() authn.Authenticator {
	if r.User == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.User, Password: r.Password}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

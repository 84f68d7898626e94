package engine

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/tests/registry"
)

// authFile reads the engine's DOCKER_CONFIG/config.json ("" if missing).
func authFile(t *testing.T, e *engine) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.DockerConfig, "config.json"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// failWith runs berth with stdin and checks exit 125 with a single-line
// error containing one of wants (case-insensitive).
func failWith(t *testing.T, e *engine, stdin []byte, wants []string, args ...string) {
	t.Helper()
	r := e.run(stdin, args...)
	msg := strings.TrimSpace(r.Stderr)
	if i := strings.LastIndex(msg, "\nError: "); i >= 0 && args[0] == "login" {
		msg = msg[i+1:] // after login's warning about -p
	}
	ok := false
	for _, w := range wants {
		ok = ok || strings.Contains(strings.ToLower(msg), w)
	}
	if r.Code != 125 || !strings.HasPrefix(msg, "Error: ") || strings.Contains(msg, "\n") || !ok {
		t.Errorf("berth %v: exit %d, stderr %q; want one line \"Error: ...\" with one of %q", args, r.Code, r.Stderr, wants)
	}
}

func TestLogin(t *testing.T) {
	reg := registry.Start(t, registry.Options{Auth: true})
	ref := reg.Ref("private/busybox:1")
	id := busyboxID(t, reg, ref)
	e := newEngine(t)
	unauthorized := []string{"unauthorized", "authentication required"}

	failWith(t, e, nil, unauthorized, "pull", "-q", ref)
	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("store after refused pull: %q", out)
	}

	// Other tools' keys in the credentials file are kept.
	if err := os.MkdirAll(e.DockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	orig := `{"foo": "bar"}`
	if err := os.WriteFile(filepath.Join(e.DockerConfig, "config.json"), []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	failWith(t, e, []byte("wrong\n"), []string{"unauthorized"}, "login", "-u", reg.User, "--password-stdin", reg.Host)
	failWith(t, e, nil, []string{"unauthorized"}, "login", "-u", "nobody", "-p", reg.Password, reg.Host)
	// Not a terminal: no prompts.
	failWith(t, e, nil, []string{"username required"}, "login", reg.Host)
	failWith(t, e, nil, []string{"password required"}, "login", "-u", reg.User, reg.Host)
	failWith(t, e, nil, []string{"cannot be used together"}, "login", "-u", reg.User, "-p", "x", "--password-stdin", reg.Host)
	if got := authFile(t, e); got != orig {
		t.Fatalf("credentials file changed by failed logins: %q", got)
	}

	r := e.run([]byte(reg.Password+"\n"), "login", "-u", reg.User, "--password-stdin", reg.Host)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "Login Succeeded" {
		t.Fatalf("login: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	var doc struct {
		Foo   string
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal([]byte(authFile(t, e)), &doc); err != nil {
		t.Fatal(err)
	}
	want := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	if doc.Foo != "bar" || doc.Auths[reg.Host].Auth != want {
		t.Errorf("credentials file after login: %s", authFile(t, e))
	}
	if fi, err := os.Stat(filepath.Join(e.DockerConfig, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v %v", fi.Mode(), err)
	}

	pullID(t, e, ref, id)
	push(t, e, ref, reg.Ref("private/pushed:1"))
	pullID(t, newEngineLoggedIn(t, e), reg.Ref("private/pushed:1"), id)

	if out := e.ok("logout", reg.Host); strings.TrimSpace(out) != "Removed login credentials for "+reg.Host {
		t.Errorf("logout: %q", out)
	}
	doc.Auths = nil
	if err := json.Unmarshal([]byte(authFile(t, e)), &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Auths[reg.Host]; ok || doc.Foo != "bar" {
		t.Errorf("credentials file after logout: %s", authFile(t, e))
	}
	e.fail("not logged in", "logout", reg.Host)
	failWith(t, e, nil, unauthorized, "pull", "-q", ref)
}

// newEngineLoggedIn is a fresh engine (empty store) with e's credentials.
func newEngineLoggedIn(t *testing.T, e *engine) *engine {
	t.Helper()
	f := newEngine(t)
	f.DockerConfig = e.DockerConfig
	return f
}

func TestLogout(t *testing.T) {
	e := newEngine(t)
	// docker.io by default; nothing to do with the network.
	e.fail("not logged in", "logout")
	e.fail("invalid registry", "logout", "https://")
	e.fail("accepts at most 1", "logout", "a", "b")
	if got := authFile(t, e); got != "" {
		t.Errorf("credentials file written by failed logouts: %q", got)
	}
}

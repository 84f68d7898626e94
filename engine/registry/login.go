package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// AuthFile is the docker credentials file: $DOCKER_CONFIG/config.json or
// ~/.docker/config.json.
func AuthFile() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

// authKey is the entry a registry has in the credentials file; Docker Hub's
// is its old index URL.
func authKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return authn.DefaultAuthKey
	}
	return reg.RegistryStr()
}

// ParseRegistry parses "host[:port]" (or docker.io) applying berth.conf's
// settings. docker's URL forms ("https://index.docker.io/v1/") are accepted.
// A single word is a host, as with docker: "berth login myregistry" must not
// log in to docker.io.
func (c *Client) ParseRegistry(host string) (name.Registry, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	reg, err := name.NewRegistry(h)
	if err != nil || h == "" {
		return name.Registry{}, fmt.Errorf("invalid registry %q: want host[:port]", host)
	}
	ref, err := c.Resolve(reg.Repo("x").Tag("x"))
	if err != nil {
		return name.Registry{}, err
	}
	return ref.Context().Registry, nil
}

// Login checks the credentials against the registry and stores them in
// the credentials file.
func (c *Client) Login(ctx context.Context, reg name.Registry, user, password string) error {
	if err := c.CheckLogin(ctx, reg, user, password); err != nil {
		return err
	}
	return editAuthFile(func(auths map[string]json.RawMessage) error {
		entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
		auths[authKey(reg)] = entry
		return nil
	})
}

// CheckLogin checks the credentials against the registry (basic auth or a
// bearer token exchange), storing nothing.
func (c *Client) CheckLogin(ctx context.Context, reg name.Registry, user, password string) error {
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, c.transport(reg), []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return fmt.Errorf("log in to %s: %w", reg.RegistryStr(), err)
	}
	// The token exchange happens on the first request; /v2/ must answer 200.
	req, err := httpGet(ctx, reg)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized:
		// A token server refused the credentials.
		return fmt.Errorf("log in to %s: unauthorized: incorrect username or password", reg.RegistryStr())
	case err != nil:
		return fmt.Errorf("log in to %s: %w", reg.RegistryStr(), err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return fmt.Errorf("log in to %s: unauthorized: incorrect username or password", reg.RegistryStr())
	default:
		return fmt.Errorf("log in to %s: %s", reg.RegistryStr(), resp.Status)
	}
	return nil
}

// ErrNotLoggedIn is returned by Logout when there are no stored credentials.
var ErrNotLoggedIn = errors.New("not logged in")

// Logout removes the registry's credentials from the credentials file.
func Logout(reg name.Registry) error {
	return editAuthFile(func(auths map[string]json.RawMessage) error {
		key := authKey(reg)
		if _, ok := auths[key]; !ok {
			return fmt.Errorf("%w to %s", ErrNotLoggedIn, reg.RegistryStr())
		}
		delete(auths, key)
		return nil
	})
}

// editAuthFile changes the "auths" of the credentials file, keeping every
// other key docker and other tools keep there, and replaces it atomically.
func editAuthFile(edit func(map[string]json.RawMessage) error) error {
	path := AuthFile()
	doc := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := doc["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("parse %s: auths: %w", path, err)
		}
	}
	if err := edit(auths); err != nil {
		return err
	}
	doc["auths"], _ = json.Marshal(auths)
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.json-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func httpGet(ctx context.Context, reg name.Registry) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return nil, fmt.Errorf("log in to %s: %w", reg.RegistryStr(), err)
	}
	return req, nil
}

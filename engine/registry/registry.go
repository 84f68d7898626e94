// Package registry connects to image registries with the user's credentials
// and the per-registry settings of berth.conf (insecure, mirrors).
package registry

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-containers/berth/engine/config"
)

// Client makes remote options for registry calls.
type Client struct {
	cfg      *config.Config
	keychain authn.Keychain
}

// New returns a client using the docker credentials file (DOCKER_CONFIG or
// ~/.docker/config.json) and cfg's registry settings.
func New(cfg *config.Config) *Client {
	return &Client{cfg: cfg, keychain: authn.DefaultKeychain}
}

// WithAuth is a client that uses auth, for every registry, before the
// credentials file: the Engine API's X-Registry-Auth.
func (c *Client) WithAuth(auth authn.AuthConfig) *Client {
	return &Client{cfg: c.cfg, keychain: authn.NewMultiKeychain(fixedKeychain{authn.FromConfig(auth)}, c.keychain)}
}

type fixedKeychain struct{ auth authn.Authenticator }

func (k fixedKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

// hostOf is the host[:port] a reference names, as berth.conf spells it.
func hostOf(ref name.Reference) string {
	h := ref.Context().RegistryStr()
	if h == name.DefaultRegistry {
		return "docker.io"
	}
	return h
}

// Resolve applies the registry's settings to ref: insecure registries are
// reached over plain HTTP or unverified TLS. Loopback registries are plain
// HTTP already, as with docker.
func (c *Client) Resolve(ref name.Reference) (name.Reference, error) {
	if !c.cfg.Registry(hostOf(ref)).Insecure {
		return ref, nil
	}
	return name.ParseReference(ref.String(), name.Insecure)
}

// Sources are the references to try in order when pulling ref: its mirrors,
// then ref itself.
func (c *Client) Sources(ref name.Reference) ([]name.Reference, error) {
	var out []name.Reference
	for _, m := range c.cfg.Registry(hostOf(ref)).Mirrors {
		mirrored, err := name.ParseReference(m + "/" + ref.Context().RepositoryStr() + separator(ref) + ref.Identifier())
		if err != nil {
			return nil, err
		}
		if mirrored, err = c.Resolve(mirrored); err != nil {
			return nil, err
		}
		out = append(out, mirrored)
	}
	ref, err := c.Resolve(ref)
	if err != nil {
		return nil, err
	}
	return append(out, ref), nil
}

func separator(ref name.Reference) string {
	if _, ok := ref.(name.Digest); ok {
		return "@"
	}
	return ":"
}

// Options are the remote options for calls to ref's registry.
func (c *Client) Options(ctx context.Context, ref name.Reference, extra ...remote.Option) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport(ref.Context().Registry)),
		remote.WithUserAgent("berth"),
		// One quick retry: an unreachable registry should fail in
		// seconds, not after a long backoff.
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 2}),
	}
	return append(opts, extra...)
}

func (c *Client) transport(reg name.Registry) http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if c.cfg.Registry(hostOf(reg.Repo("x").Tag("x"))).Insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user marked this registry insecure
	}
	return t
}

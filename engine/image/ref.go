// Package image keeps OCI and Docker images in containers/storage: pulling,
// pushing, saving, loading, importing, listing and removing them.
package image

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"go.podman.io/storage"
)

// ErrNotFound is returned (wrapped) when no local image matches a name.
var ErrNotFound = errors.New("no such image")

// ParseName parses a user's image reference, filling in docker.io and
// :latest as docker does.
func ParseName(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w", s, err)
	}
	return ref, nil
}

// Canonical is the name an image is stored under: "docker.io/library/busybox:latest".
func Canonical(ref name.Reference) string {
	repo := Repository(ref)
	if d, ok := ref.(name.Digest); ok {
		return repo + "@" + d.DigestStr()
	}
	return repo + ":" + ref.Identifier()
}

// Repository is the canonical repository of ref: "docker.io/library/busybox".
func Repository(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.Context().RepositoryStr()
}

// SplitName splits a stored name into repository and tag (or "<none>").
func SplitName(n string) (repo, tag string) {
	if i := strings.LastIndex(n, "@"); i >= 0 {
		return n[:i], "<none>"
	}
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[:i], n[i+1:]
	}
	return n, "latest"
}

var hexPrefix = regexp.MustCompile(`^(sha256:)?[0-9a-f]{3,64}$`)

// localName is where images imported without a registry live, as podman does.
func localName(ref name.Reference) string {
	return "localhost/" + strings.TrimPrefix(ref.Context().RepositoryStr(), "library/") + ":" + ref.Identifier()
}

// hasRegistry tells whether a user's reference names its registry, as
// docker decides: a first component, before a slash, with a dot or a port,
// or "localhost".
func hasRegistry(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// Lookup finds a local image by ID, unique ID prefix, name or digest.
func Lookup(s storage.Store, ref string) (*storage.Image, error) {
	if hexPrefix.MatchString(ref) {
		if img, err := byIDPrefix(s, strings.TrimPrefix(ref, "sha256:")); img != nil || err != nil {
			return img, err
		}
	}
	parsed, err := ParseName(ref)
	if err != nil {
		return nil, err
	}
	candidates := []string{Canonical(parsed)}
	if !hasRegistry(ref) {
		candidates = append(candidates, localName(parsed))
	}
	for _, c := range candidates {
		if img, err := s.Image(c); err == nil {
			return img, nil
		}
	}
	if d, ok := parsed.(name.Digest); ok {
		imgs, err := s.ImagesByDigest(digest.Digest(d.DigestStr()))
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", ref, err)
		}
		repo := Repository(parsed)
		for _, img := range imgs {
			for _, n := range img.Names {
				if r, _ := SplitName(n); r == repo {
					return img, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

func byIDPrefix(s storage.Store, prefix string) (*storage.Image, error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var found *storage.Image
	for i := range imgs {
		if strings.HasPrefix(imgs[i].ID, prefix) {
			if found != nil {
				return nil, fmt.Errorf("image ID prefix %q is ambiguous", prefix)
			}
			found = &imgs[i]
		}
	}
	return found, nil
}

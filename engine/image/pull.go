package image

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.opentelemetry.io/otel/attribute"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/registry"
	"github.com/berth-containers/berth/engine/tracing"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Platform picks an image from a manifest list; default linux/amd64.
	Platform *v1.Platform
	Progress Progress
}

// Pull fetches ref (tag or digest; a manifest list is resolved to the
// platform's image) from its mirrors or registry into the store.
func Pull(ctx context.Context, s storage.Store, c *registry.Client, refStr string, o PullOptions) (_ *storage.Image, err error) {
	ctx, span := tracing.Start(ctx, "pull", attribute.String("image.name", refStr))
	defer func() { tracing.End(span, err) }()
	ref, err := ParseName(refStr)
	if err != nil {
		return nil, err
	}
	var extra []remote.Option
	if o.Platform != nil {
		extra = append(extra, remote.WithPlatform(*o.Platform))
	}
	src, desc, err := fetchManifest(ctx, c, ref, extra...)
	if err != nil {
		return nil, err
	}
	var fetched int64
	wo := writeOptions{names: []string{Canonical(ref)}, compressed: true, progress: o.Progress, fetched: &fetched}
	if desc.MediaType.IsIndex() {
		wo.extraManifests = [][]byte{desc.Manifest}
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, Explain(err))
	}
	stored, err := write(ctx, s, img, wo)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, Explain(err))
	}
	events.ImageAttrs(s.RunRoot(), "pull", Canonical(ref), map[string]string{events.PulledBytes: strconv.FormatInt(fetched, 10)}, Repository(ref))
	return stored, nil
}

// fetchManifest gets ref's manifest from the first of its mirrors or its
// registry that has it.
func fetchManifest(ctx context.Context, c *registry.Client, ref name.Reference, extra ...remote.Option) (name.Reference, *remote.Descriptor, error) {
	sources, err := c.Sources(ref)
	if err != nil {
		return nil, nil, err
	}
	var lastErr error
	for _, src := range sources {
		desc, err := remote.Get(src, c.Options(ctx, src, extra...)...)
		if err == nil {
			return src, desc, nil
		}
		lastErr = fmt.Errorf("pull %s: %w", src, Explain(err))
	}
	return nil, nil, lastErr
}

// FetchLayers stores the layers of the image ref, with no image record:
// a build's cache from a registry (build --cache-from), held by no image
// until one uses it. It returns the image's config.
func FetchLayers(ctx context.Context, s storage.Store, c *registry.Client, refStr string) (*v1.ConfigFile, error) {
	ref, err := ParseName(refStr)
	if err != nil {
		return nil, err
	}
	src, desc, err := fetchManifest(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, Explain(err))
	}
	cfg, _, _, err := putLayers(ctx, s, img, writeOptions{compressed: true})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, Explain(err))
	}
	return cfg, nil
}

// Explain shortens a registry error to what the user needs: the registry's
// own message ("manifest unknown", "unauthorized: ...") instead of a dump.
func Explain(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && len(terr.Errors) > 0 {
		// As docker words it: "unauthorized: authentication required".
		d := terr.Errors[0]
		return fmt.Errorf("%s: %s", strings.ToLower(string(d.Code)), d.Message)
	}
	return err
}

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	return p, nil
}

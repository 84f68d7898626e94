package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/storage"
)

// Summary is one stored image as `images` lists it.
type Summary struct {
	ID      string
	Names   []string
	Digest  string
	Created time.Time
	Size    int64
	Labels  map[string]string
	// Containers is the number of containers made from the image.
	Containers int
}

// Config reads an image's config from the store.
func Config(s storage.Store, id string) (*v1.ConfigFile, error) {
	_, cfg, err := readConfig(s, id)
	return cfg, err
}

// Extras are the config fields go-containerregistry's ConfigFile has not,
// carried beside it so that a build keeps them.
type Extras struct {
	// HealthStartInterval is docker's Healthcheck.StartInterval.
	HealthStartInterval time.Duration
}

// ConfigExtras reads an image's config and the fields the parsed config
// lacks.
func ConfigExtras(s storage.Store, id string) (*v1.ConfigFile, Extras, error) {
	raw, cfg, err := readConfig(s, id)
	if err != nil {
		return nil, Extras{}, err
	}
	var doc struct {
		Config struct {
			Healthcheck struct {
				StartInterval time.Duration
			}
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, Extras{}, fmt.Errorf("image %s: parse config: %w", short(id), err)
	}
	return cfg, Extras{HealthStartInterval: doc.Config.Healthcheck.StartInterval}, nil
}

// DockerConfig is v1.Config as docker writes and shows it, with the
// health check's StartInterval.
type DockerConfig struct {
	v1.Config
	// Healthcheck shadows v1.Config's in JSON and in templates.
	Healthcheck *Healthcheck `json:"Healthcheck,omitempty"`
}

// Healthcheck is v1.HealthConfig with StartInterval.
type Healthcheck struct {
	v1.HealthConfig
	StartInterval time.Duration `json:",omitempty"`
}

// WithExtras joins a config and the fields it lacks.
func WithExtras(c v1.Config, x Extras) DockerConfig {
	d := DockerConfig{Config: c}
	if c.Healthcheck != nil {
		d.Healthcheck = &Healthcheck{HealthConfig: *c.Healthcheck, StartInterval: x.HealthStartInterval}
	}
	return d
}

// marshalConfig encodes cfg with x's fields in their places.
func marshalConfig(cfg *v1.ConfigFile, x Extras) ([]byte, error) {
	return json.Marshal(struct {
		*v1.ConfigFile
		Config DockerConfig `json:"config"`
	}{cfg, WithExtras(cfg.Config, x)})
}

// RawConfig reads an image's config as stored, for fields
// go-containerregistry's type has not (Healthcheck.StartInterval).
func RawConfig(s storage.Store, id string) ([]byte, error) {
	raw, _, err := readConfig(s, id)
	return raw, err
}

// readConfig reads an image's config, as stored (its digest is the image
// ID) and parsed.
func readConfig(s storage.Store, id string) ([]byte, *v1.ConfigFile, error) {
	raw, err := s.ImageBigData(id, configKey)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: read config: %w", short(id), err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: parse config: %w", short(id), err)
	}
	return raw, cfg, nil
}

// containerCounts maps image IDs to the number of containers using them.
func containerCounts(s storage.Store) (map[string]int, error) {
	cs, err := s.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	n := map[string]int{}
	for _, c := range cs {
		n[c.ImageID]++
	}
	return n, nil
}

// List returns the stored images, newest first, that match every filter.
func List(s storage.Store, filters []string) ([]Summary, error) {
	match, refs, err := parseFilters(s, filters)
	if err != nil {
		return nil, err
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	used, err := containerCounts(s)
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, img := range imgs {
		cfg, err := Config(s, img.ID)
		if err != nil {
			return nil, err
		}
		size, err := s.ImageSize(img.ID)
		if err != nil {
			return nil, fmt.Errorf("image %s: size: %w", short(img.ID), err)
		}
		sum := Summary{ID: img.ID, Names: img.Names, Digest: img.Digest.String(), Created: img.Created,
			Size: size, Labels: cfg.Config.Labels, Containers: used[img.ID]}
		if !cfg.Created.IsZero() {
			sum.Created = cfg.Created.Time
		}
		// A reference filter selects names, not only images, as docker's does.
		for _, pattern := range refs {
			sum.Names = matchReference(sum.Names, pattern)
		}
		if match(sum) && (len(refs) == 0 || len(sum.Names) > 0) {
			out = append(out, sum)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// parseFilters turns docker's `--filter key=value` list into a predicate
// (dangling, label, before, since) and the reference patterns.
func parseFilters(s storage.Store, filters []string) (func(Summary) bool, []string, error) {
	var preds []func(Summary) bool
	var refs []string
	for _, f := range filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, nil, fmt.Errorf("invalid filter %q: want key=value", f)
		}
		switch key {
		case "dangling":
			want := value == "true" || value == "1"
			if !want && value != "false" && value != "0" {
				return nil, nil, fmt.Errorf("invalid filter %q: dangling is true or false", f)
			}
			preds = append(preds, func(i Summary) bool { return (len(i.Names) == 0) == want })
		case "reference":
			refs = append(refs, value)
		case "label":
			k, v, hasValue := strings.Cut(value, "=")
			preds = append(preds, func(i Summary) bool {
				got, ok := i.Labels[k]
				return ok && (!hasValue || got == v)
			})
		case "before", "since":
			ref, err := Lookup(s, value)
			if err != nil {
				return nil, nil, fmt.Errorf("invalid filter %q: %w", f, err)
			}
			cfg, err := Config(s, ref.ID)
			if err != nil {
				return nil, nil, err
			}
			t, before := cfg.Created.Time, key == "before"
			preds = append(preds, func(i Summary) bool {
				if before {
					return i.Created.Before(t)
				}
				return i.Created.After(t)
			})
		default:
			return nil, nil, fmt.Errorf("invalid filter %q: unknown key %q", f, key)
		}
	}
	return func(i Summary) bool {
		for _, p := range preds {
			if !p(i) {
				return false
			}
		}
		return true
	}, refs, nil
}

// matchReference keeps the names that, in full or in a short form
// ("busybox", "library/busybox:latest"), match a pattern that may hold * and ?.
func matchReference(names []string, pattern string) []string {
	var out []string
	for _, n := range names {
		if referenceMatches(n, pattern) {
			out = append(out, n)
		}
	}
	return out
}

func referenceMatches(n, pattern string) bool {
	repo, tag := SplitName(n)
	for _, cand := range shortForms(repo) {
		for _, full := range []string{cand, cand + ":" + tag} {
			if ok, _ := path.Match(pattern, full); ok {
				return true
			}
		}
	}
	return false
}

// shortForms are the ways a user may write a stored repository name.
func shortForms(repo string) []string {
	forms := []string{repo}
	if _, rest, ok := strings.Cut(repo, "/"); ok {
		forms = append(forms, rest)
		if r, ok := strings.CutPrefix(rest, "library/"); ok {
			forms = append(forms, r)
		}
	}
	return forms
}

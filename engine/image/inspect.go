package image

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.podman.io/storage"
)

// Inspect is an image as `docker image inspect` shows it.
type Inspect struct {
	ID            string       `json:"Id"`
	RepoTags      []string     `json:"RepoTags"`
	RepoDigests   []string     `json:"RepoDigests"`
	Parent        string       `json:"Parent"`
	Comment       string       `json:"Comment"`
	Created       time.Time    `json:"Created"`
	DockerVersion string       `json:"DockerVersion"`
	Author        string       `json:"Author"`
	Config        DockerConfig `json:"Config"`
	Architecture  string       `json:"Architecture"`
	Variant       string       `json:"Variant,omitempty"`
	Os            string       `json:"Os"`
	Size          int64        `json:"Size"`
	GraphDriver   GraphDriver  `json:"GraphDriver"`
	RootFS        RootFS       `json:"RootFS"`
}

// GraphDriver names the storage driver and the layer directories.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// RootFS lists the diff IDs.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// InspectImage describes a stored image.
func InspectImage(s storage.Store, img *storage.Image) (*Inspect, error) {
	cfg, x, err := ConfigExtras(s, img.ID)
	if err != nil {
		return nil, err
	}
	size, err := s.ImageSize(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: size: %w", short(img.ID), err)
	}
	in := &Inspect{
		ID: "sha256:" + img.ID, RepoTags: []string{}, RepoDigests: []string{},
		Created: cfg.Created.Time, DockerVersion: cfg.DockerVersion, Author: cfg.Author,
		Config: WithExtras(cfg.Config, x), Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS,
		Size: size, RootFS: RootFS{Type: "layers", Layers: []string{}},
	}
	if n := len(cfg.History); n > 0 {
		in.Comment = cfg.History[n-1].Comment
	}
	for _, d := range cfg.RootFS.DiffIDs {
		in.RootFS.Layers = append(in.RootFS.Layers, d.String())
	}
	in.RepoTags, in.RepoDigests = RepoNames(img)
	in.GraphDriver.Name = s.GraphDriverName()
	if d, err := s.GraphDriver(); err == nil && img.TopLayer != "" {
		in.GraphDriver.Data, _ = d.Metadata(img.TopLayer)
	}
	return in, nil
}

// RepoNames splits an image's names into tags and repo@digest names, one
// per repository and manifest digest, as docker reports them.
func RepoNames(img *storage.Image) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	seen := map[string]bool{}
	for _, n := range img.Names {
		if strings.Contains(n, "@") {
			if !seen[n] {
				digests, seen[n] = append(digests, n), true
			}
			continue
		}
		tags = append(tags, n)
		repo, _ := SplitName(n)
		for _, d := range img.Digests {
			rd := repo + "@" + d.String()
			if !seen[rd] {
				digests, seen[rd] = append(digests, rd), true
			}
		}
	}
	return tags, digests
}

// ExposedPorts lists an image's EXPOSEd ports as -p specs publishing each
// on a random host port ("80/tcp").
func ExposedPorts(s storage.Store, ref string) ([]string, error) {
	img, err := Lookup(s, ref)
	if err != nil {
		return nil, err
	}
	cfg, err := Config(s, img.ID)
	if err != nil {
		return nil, err
	}
	var out []string
	for p := range cfg.Config.ExposedPorts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

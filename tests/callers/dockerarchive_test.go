package callers

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// writeBusyboxDockerArchive writes to dst the busybox image of
// writeBusyboxImage in the layout of `docker save` (docker-archive): docker
// 20.10's `docker load` reads only that, not OCI image layouts. The layer is
// stored uncompressed, as docker save does, and the image is tagged name.
func writeBusyboxDockerArchive(dst, busybox, name string) error {
	gzipped, diffID, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	gz, err := gzip.NewReader(bytes.NewReader(gzipped))
	if err != nil {
		return fmt.Errorf("read busybox layer: %w", err)
	}
	layer, err := io.ReadAll(gz)
	if err != nil {
		return fmt.Errorf("decompress busybox layer: %w", err)
	}
	config, err := imageConfig(diffID, []string{"sh"})
	if err != nil {
		return err
	}
	configName := strings.TrimPrefix(digestOf(config), "sha256:") + ".json"
	layerDir := strings.TrimPrefix(diffID, "sha256:") + "/"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{name},
		"Layers":   []string{layerDir + "layer.tar"},
	}})
	if err != nil {
		return fmt.Errorf("encode archive manifest: %w", err)
	}

	return writeArchive(dst, []string{layerDir}, []tarFile{
		{layerDir + "layer.tar", layer},
		{configName, config},
		{"manifest.json", manifest},
	})
}

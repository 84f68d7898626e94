package callers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
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
	config, err := json.Marshal(map[string]any{
		"created":      imageTime.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": []string{"sh"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return fmt.Errorf("encode image config: %w", err)
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

	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create image archive: %w", err)
	}
	tw := tar.NewWriter(f)
	err = writeTarDir(tw, layerDir)
	for _, file := range []tarFile{
		{layerDir + "layer.tar", layer},
		{configName, config},
		{"manifest.json", manifest},
	} {
		if err == nil {
			err = writeTarFile(tw, file.name, 0o644, file.data)
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write image archive %s: %w", dst, err)
	}
	return nil
}

package callers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strings"
	"time"
)

const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// A fixed time keeps the layer, and so every digest, the same from run to run.
var imageTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func describe(mediaType string, data []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
}

// writeBusyboxImage writes to dst an OCI image layout tarball of one layer:
// the host's static busybox with its applets linked in /bin. The index names
// the image `name` through containerd's io.containerd.image.name annotation,
// which `ctr images import` uses as is, without --base-name.
func writeBusyboxImage(dst, busybox, name string) error {
	return writeImage(dst, busybox, name, []string{"sh"})
}

// writePauseImage writes a pod sandbox image: the same layer, with a
// command that sleeps until it is killed, as the pause image's.
func writePauseImage(dst, busybox, name string) error {
	return writeImage(dst, busybox, name, []string{"/bin/sleep", "2147483647"})
}

// writeImage writes the busybox layer with cmd as the image's command.
func writeImage(dst, busybox, name string, cmd []string) error {
	layer, diffID, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	config, err := imageConfig(diffID, cmd)
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        describe(mediaTypeConfig, config),
		"layers":        []descriptor{describe(mediaTypeLayer, layer)},
	})
	if err != nil {
		return fmt.Errorf("encode image manifest: %w", err)
	}
	manifestDesc := describe(mediaTypeManifest, manifest)
	tag := name[strings.LastIndex(name, ":")+1:]
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": tag,
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeIndex,
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return fmt.Errorf("encode image index: %w", err)
	}

	files := []tarFile{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
	}
	for _, blob := range [][]byte{layer, config, manifest} {
		files = append(files, tarFile{"blobs/sha256/" + strings.TrimPrefix(digestOf(blob), "sha256:"), blob})
	}
	return writeArchive(dst, []string{"blobs/", "blobs/sha256/"}, files)
}

// imageConfig is the image configuration of the busybox image whose one
// layer has diffID, with cmd as its command.
func imageConfig(diffID string, cmd []string) ([]byte, error) {
	config, err := json.Marshal(map[string]any{
		"created":      imageTime.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": cmd,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	return config, nil
}

// writeArchive writes to dst a tar of the directories dirs, then of files.
func writeArchive(dst string, dirs []string, files []tarFile) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create image archive: %w", err)
	}
	tw := tar.NewWriter(f)
	for _, dir := range dirs {
		if err == nil {
			err = writeTarDir(tw, dir)
		}
	}
	for _, file := range files {
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

// busyboxLayer returns the gzipped layer tar and its diff ID (the digest of
// the uncompressed tar).
func busyboxLayer(busybox string) (layer []byte, diffID string, err error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, "", fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, "", fmt.Errorf("list busybox applets: %w", err)
	}

	var gzipped bytes.Buffer
	gz := gzip.NewWriter(&gzipped)
	diffHash := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	for _, dir := range []string{"bin/", "dev/", "etc/", "proc/", "root/", "sys/", "usr/", "var/"} {
		if err := writeTarDir(tw, dir); err != nil {
			return nil, "", err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: imageTime}); err != nil {
		return nil, "", fmt.Errorf("write layer tmp/: %w", err)
	}
	if err := writeTarFile(tw, "etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")); err != nil {
		return nil, "", err
	}
	if err := writeTarFile(tw, "etc/group", 0o644, []byte("root:x:0:\n")); err != nil {
		return nil, "", err
	}
	if err := writeTarFile(tw, "bin/busybox", 0o755, bin); err != nil {
		return nil, "", err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: path.Join("bin", applet), Linkname: "busybox", Mode: 0o777, ModTime: imageTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", fmt.Errorf("write layer link %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("close layer tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, "", fmt.Errorf("close layer gzip: %w", err)
	}
	return gzipped.Bytes(), "sha256:" + hex.EncodeToString(diffHash.Sum(nil)), nil
}

type tarFile struct {
	name string
	data []byte
}

func writeTarDir(tw *tar.Writer, name string) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: imageTime}); err != nil {
		return fmt.Errorf("write tar dir %s: %w", name, err)
	}
	return nil
}

func writeTarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: imageTime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write tar file %s: %w", name, err)
	}
	return nil
}

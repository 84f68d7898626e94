package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WriteBundle writes s as dir/config.json (mode 0600: the environment may
// hold secrets), replacing any earlier one in one step. Like docker, it first
// creates the process's working directory in the rootfs if it is missing,
// owned by root with mode 0755; a symlink on the way resolves inside the
// rootfs.
func WriteBundle(dir string, s *specs.Spec) error {
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("write bundle: root.path is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bundle directory: %w", err)
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(dir, root)
	}
	if s.Process != nil && s.Process.Cwd != "" {
		if err := pathrs.MkdirAll(root, s.Process.Cwd, 0o755); err != nil {
			return fmt.Errorf("create working directory %s in rootfs %s: %w", s.Process.Cwd, root, err)
		}
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("encode config.json: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config.json-")
	if err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write config.json: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "config.json")); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

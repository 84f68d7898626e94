package container

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"go.podman.io/storage"
)

// Rename gives a container a new name: in the store, where lookups find
// it, and in its record. The store would take a name from another
// container, so a name in use is refused first (another berth renaming
// or creating at the same moment can still race this check).
func Rename(s storage.Store, c *Container, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if name == c.Name {
		return fmt.Errorf("rename %s: the new name is the current name", c.Name)
	}
	all, err := s.Containers()
	if err != nil {
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	for _, sc := range all {
		if sc.ID != c.ID && (slices.Contains(sc.Names, name) || sc.ID == name) {
			return fmt.Errorf("rename %s to %s: name already in use by container %s", c.Name, name, short(sc.ID))
		}
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(c.Dir, configFile)
	var cfg Config
	if err := readJSON(path, &cfg); err != nil {
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	old := cfg.Name
	if err := s.SetNames(c.ID, []string{name}); err != nil {
		if errors.Is(err, storage.ErrDuplicateName) {
			return fmt.Errorf("rename %s to %s: name already in use", c.Name, name)
		}
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	cfg.Name = name
	if err := writeJSON(path, &cfg); err != nil {
		_ = s.SetNames(c.ID, []string{old})
		return fmt.Errorf("rename %s: %w", c.Name, err)
	}
	c.Config.Name = name
	return nil
}

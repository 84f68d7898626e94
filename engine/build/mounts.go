package build

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runMount is one RUN --mount made ready: the runtime's mount, an env
// entry (a secret given as env), and its part of the step's key.
type runMount struct {
	mount specs.Mount
	env   string
	key   string
	skip  bool
}

// runMounts prepares a RUN's --mount flags.
func (b *builder) runMounts(ctx context.Context, stage int, s *state, c *instructions.RunCommand) ([]runMount, error) {
	var out []runMount
	for _, m := range instructions.GetMounts(c) {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", s.cfg.Config.WorkingDir, target)
		}
		var rm runMount
		var err error
		switch m.Type {
		case instructions.MountTypeBind:
			rm, err = b.bindMount(ctx, stage, m, target)
		case instructions.MountTypeCache:
			rm, err = b.cacheMount(m, target)
		case instructions.MountTypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.SizeLimit > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", m.SizeLimit))
			}
			rm = runMount{mount: specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts}, key: "tmpfs " + target}
		case instructions.MountTypeSecret:
			rm, err = b.secretMount(m, target)
		default:
			err = fmt.Errorf("--mount=type=%s is not supported", m.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("--mount=type=%s: %w", m.Type, err)
		}
		if !rm.skip {
			out = append(out, rm)
		}
	}
	return out, nil
}

func (b *builder) bindMount(ctx context.Context, stage int, m *instructions.Mount, target string) (runMount, error) {
	if target == "" {
		return runMount{}, errors.New("target is required")
	}
	if !m.ReadOnly {
		return runMount{}, errors.New("rw bind mounts are not supported yet: berth binds read-only")
	}
	opts := []string{"rbind", "ro", "rprivate"}
	if m.From == "" {
		if b.o.Context == nil {
			return runMount{}, errors.New("there is no build context to bind")
		}
		rel, err := cleanRel(m.Source)
		if err != nil {
			return runMount{}, err
		}
		if _, err := b.o.Context.stat(rel); err != nil && rel != "" {
			return runMount{}, err
		}
		abs, err := b.o.Context.path(rel)
		if err != nil {
			return runMount{}, err
		}
		d, err := b.o.Context.digest([]string{rel})
		if err != nil {
			return runMount{}, err
		}
		return runMount{mount: specs.Mount{Destination: target, Type: "bind", Source: abs, Options: opts}, key: "bind " + target + " " + d}, nil
	}
	root, key, err := b.mountFrom(ctx, stage, m.From)
	if err != nil {
		return runMount{}, err
	}
	src, err := securejoinIn(root, m.Source)
	if err != nil {
		return runMount{}, err
	}
	return runMount{mount: specs.Mount{Destination: target, Type: "bind", Source: src, Options: opts}, key: "bind " + target + " from " + key + " " + m.Source}, nil
}

// cacheMount is a directory of the store kept across builds, by id (the
// target by default); its content is not part of any layer or key.
func (b *builder) cacheMount(m *instructions.Mount, target string) (runMount, error) {
	if target == "" {
		return runMount{}, errors.New("target is required")
	}
	id := m.CacheID
	if id == "" {
		id = target
	}
	sum := sha256.Sum256([]byte(id))
	dir := filepath.Join(filepath.Dir(b.cacheDir()), "cache-mounts", fmt.Sprintf("%x", sum[:16]))
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		mode := fs.FileMode(0o755)
		if m.Mode != nil {
			mode = fs.FileMode(*m.Mode)
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return runMount{}, err
		}
		if err := os.Mkdir(dir, mode); err != nil {
			return runMount{}, err
		}
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return runMount{}, err
		}
		if err := os.Chmod(dir, mode); err != nil {
			return runMount{}, err
		}
	}
	opts := []string{"rbind", "rprivate"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return runMount{mount: specs.Mount{Destination: target, Type: "bind", Source: dir, Options: opts}, key: "cache " + target + " " + id}, nil
}

// secretMount binds a --secret file read-only (at /run/secrets/ID by
// default), or gives its content as an env variable; a secret is never
// part of a layer, the history or the key.
func (b *builder) secretMount(m *instructions.Mount, target string) (runMount, error) {
	id := m.CacheID
	if id == "" && target != "" {
		id = path.Base(target)
	}
	if id == "" {
		return runMount{}, errors.New("id is required")
	}
	src, ok := b.o.Secrets[id]
	if !ok {
		if m.Required {
			return runMount{}, fmt.Errorf("secret %s is required but was not given (--secret id=%s,src=FILE)", id, id)
		}
		return runMount{skip: true}, nil
	}
	if m.Env != nil && *m.Env != "" {
		data, err := os.ReadFile(src)
		if err != nil {
			return runMount{}, fmt.Errorf("secret %s: %w", id, err)
		}
		rm := runMount{env: *m.Env + "=" + strings.TrimRight(string(data), "\n"), key: "secret-env " + *m.Env}
		if target == "" {
			rm.mount = specs.Mount{Destination: "/run/secrets/" + id, Type: "bind", Source: src, Options: []string{"rbind", "ro", "rprivate"}}
		}
		return rm, nil
	}
	if target == "" {
		target = "/run/secrets/" + id
	}
	return runMount{mount: specs.Mount{Destination: target, Type: "bind", Source: src, Options: []string{"rbind", "ro", "rprivate"}}, key: "secret " + target}, nil
}

func securejoinIn(root, p string) (string, error) {
	return securejoin.SecureJoin(root, strings.TrimPrefix(path.Clean("/"+p), "/"))
}

// mountFrom mounts the top of a stage or an image (for COPY --from and
// RUN --mount from=) and returns its root and its key. The mount lasts
// until the build's end.
func (b *builder) mountFrom(ctx context.Context, stage int, from string) (root, key string, err error) {
	var s *state
	if i, ok := b.df.stageIndex(from, stage); ok {
		if s, err = b.stageState(ctx, i); err != nil {
			return "", "", err
		}
	} else {
		ref, err := b.expandFrom(from)
		if err != nil {
			return "", "", err
		}
		if s, err = b.from(ctx, stage, ref); err != nil {
			return "", "", err
		}
	}
	w, err := b.newWorkLayer(s.top())
	if err != nil {
		return "", "", err
	}
	if err := makeDirs(w.root, s.dirs); err != nil {
		w.discard()
		return "", "", err
	}
	b.mu.Lock()
	b.mounted = append(b.mounted, w)
	b.mu.Unlock()
	return w.root, s.key, nil
}

package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/engine/network"
)

// RunError is a RUN whose command failed.
type RunError struct {
	Command []string
	Code    int
	Line    int
}

func (e *RunError) Error() string {
	return fmt.Sprintf("RUN (line %d): the command %q returned a non-zero code: %d", e.Line, strings.Join(e.Command, " "), e.Code)
}

// run executes a RUN instruction in a container of the build and keeps
// what it changed as a layer.
func (b *builder) run(ctx context.Context, stage int, s *state, c *instructions.RunCommand) error {
	argv, err := runArgv(s, c)
	if err != nil {
		return err
	}
	argEnv := s.argEnv()
	netMode := instructions.GetNetwork(c)
	mounts, err := b.runMounts(ctx, stage, s, c)
	if err != nil {
		return err
	}
	// The key holds what RUN sees that earlier steps did not fix: its
	// command, network and mounts' sources (their digests for the
	// context's); the args and env are in the parent's key.
	keyParts := []string{"RUN", fmt.Sprintf("%q", argv), "net=" + netMode}
	for _, m := range mounts {
		keyParts = append(keyParts, m.key)
	}
	created := "RUN " + strings.Join(argv, " ") + " # buildkit"
	if len(argEnv) > 0 {
		created = fmt.Sprintf("RUN |%d %s %s # buildkit", len(argEnv), strings.Join(argEnv, " "), strings.Join(argv, " "))
	}
	return b.layerStep(ctx, s, strings.Join(keyParts, " "), created, func(root string) error {
		return b.runIn(ctx, s, root, argv, argEnv, netMode, mounts, c)
	})
}

// runArgv is RUN's command: the exec form as it is, the shell form (and
// heredocs) through the stage's shell.
func runArgv(s *state, c *instructions.RunCommand) ([]string, error) {
	if len(c.Files) == 0 {
		argv := s.commandLine(c.ShellDependantCmdLine)
		if len(argv) == 0 {
			return nil, errors.New("RUN needs a command")
		}
		return argv, nil
	}
	// A lone heredoc is the script; otherwise the shell reads the
	// heredocs itself, as written.
	if len(c.Files) == 1 && len(c.CmdLine) == 1 && strings.HasPrefix(c.CmdLine[0], "<<") {
		return append(slices.Clone(s.shell()), c.Files[0].Data), nil
	}
	script := strings.Join(c.CmdLine, " ")
	for _, f := range c.Files {
		script += "\n" + f.Data + f.Name
	}
	return append(slices.Clone(s.shell()), script), nil
}

// runIn runs argv with root as the container's rootfs.
func (b *builder) runIn(ctx context.Context, s *state, root string, argv, argEnv []string, netMode string, mounts []runMount, c *instructions.RunCommand) (err error) {
	id := workName()
	dir := filepath.Join(b.store.RunRoot(), "build", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bundle directory: %w", err)
	}
	defer os.RemoveAll(dir)
	env := append(slices.Clone(argEnv), b.proxyEnv(s)...)
	img := &ocispec.Image{Config: ocispec.ImageConfig{Env: s.cfg.Config.Env, WorkingDir: s.cfg.Config.WorkingDir, User: s.cfg.Config.User}}
	// docker's RUN containers have buildkit's host name.
	o := bundle.Options{Args: argv, Entrypoint: &[]string{}, Env: env, Hostname: "buildkitsandbox", Rootless: b.o.Rootless}
	if !b.o.Rootless {
		o.CgroupsPath = "/berth/" + id
	}
	var sandbox *network.Manager
	switch mode := b.networkFor(netMode); mode {
	case "none", "host":
		o.NetworkMode = mode
	default:
		m, err := network.New(b.o.NetConfDir, b.o.NetRunDir, nil)
		if err != nil {
			return err
		}
		sb, err := m.Setup(ctx, id, id, []network.Attachment{{Network: mode}}, nil)
		if err != nil {
			return fmt.Errorf("build network: %w", err)
		}
		sandbox = m
		o.NetworkMode = "ns:" + sb.NetnsPath
	}
	if sandbox != nil {
		defer func() { _ = sandbox.Teardown(context.WithoutCancel(ctx), id) }()
	}
	spec, err := bundle.Generate(img, root, o)
	if err != nil {
		return err
	}
	if err := bundle.AddEtcFiles(dir, spec, bundle.EtcOptions{ExtraHosts: b.o.AddHosts}); err != nil {
		return err
	}
	for _, m := range mounts {
		spec.Mounts = append(spec.Mounts, m.mount)
		if m.env != "" {
			spec.Process.Env = append(spec.Process.Env, m.env)
		}
	}
	made, err := missingMountpoints(root, spec.Mounts)
	if err != nil {
		return err
	}
	// Mountpoints the runtime makes are not the step's changes.
	defer removeMountpoints(made)
	if err := bundle.WriteBundle(dir, spec); err != nil {
		return err
	}
	cmd := b.o.Runtime.Command(ctx, "run", "--bundle", dir, id)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	runErr := cmd.Run()
	// A cancelled build's container is killed with its runtime.
	_ = b.o.Runtime.Delete(context.WithoutCancel(ctx), id, true)
	if err := context.Cause(ctx); err != nil && runErr != nil {
		return err
	}
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		line := 0
		if loc := c.Location(); len(loc) > 0 {
			line = loc[0].Start.Line
		}
		return &RunError{Command: argv, Code: ee.ExitCode(), Line: line}
	}
	if runErr != nil {
		return fmt.Errorf("run the runtime %s: %w", b.o.Runtime.Path, runErr)
	}
	return nil
}

// networkFor is the network a RUN uses: its --network, else the build's;
// "default" and "" name the default network.
func (b *builder) networkFor(step string) string {
	mode := step
	if mode == "" || mode == "default" {
		mode = b.o.Network
	}
	if mode == "" || mode == "default" || mode == "bridge" {
		if b.o.Rootless {
			return "host" // the rootless user's own network namespace
		}
		return ""
	}
	return mode
}

// proxyEnv are the predefined proxy args the user gave that no ARG of the
// stage declares: RUN sees them, the history and the key do not.
func (b *builder) proxyEnv(s *state) []string {
	var env []string
	for _, k := range proxyArgs {
		if _, declared := s.args[k]; declared {
			continue
		}
		if v, ok := b.o.BuildArgs[k]; ok {
			b.markUsed(k)
			env = append(env, k+"="+v)
		}
	}
	return env
}

// missingMountpoints lists, for each mount destination missing in root,
// the highest directory or file that the runtime will create for it.
func missingMountpoints(root string, mounts []specs.Mount) ([]string, error) {
	var made []string
	for _, m := range mounts {
		rel := strings.Trim(filepath.Clean(m.Destination), "/")
		if rel == "" {
			continue
		}
		parts := strings.Split(rel, "/")
		for i := range parts {
			p := filepath.Join(append([]string{root}, parts[:i+1]...)...)
			fi, err := os.Lstat(p)
			if errors.Is(err, os.ErrNotExist) {
				if !slices.Contains(made, p) {
					made = append(made, p)
				}
				break
			}
			if err != nil {
				return nil, err
			}
			if !fi.IsDir() {
				break // a symlink or file: the runtime resolves it
			}
		}
	}
	return made, nil
}

// removeMountpoints removes what missingMountpoints listed if it holds
// nothing but empty directories and files: a RUN that wrote there keeps it.
func removeMountpoints(paths []string) {
	for _, p := range paths {
		if onlyEmpty(p) {
			_ = os.RemoveAll(p)
		}
	}
}

func onlyEmpty(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil {
		return false
	}
	switch {
	case fi.Mode().IsRegular():
		return fi.Size() == 0
	case fi.IsDir():
		entries, err := os.ReadDir(p)
		if err != nil {
			return false
		}
		for _, e := range entries {
			if !onlyEmpty(filepath.Join(p, e.Name())) {
				return false
			}
		}
		return true
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

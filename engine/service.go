package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/api"
	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/rootless"
)

func systemServiceCommand() *cli.Command {
	return &cli.Command{
		Name:      "service",
		Usage:     "serve the Docker Engine API (for the docker CLI, docker compose and the SDKs)",
		ArgsUsage: "[unix:///PATH | tcp://ADDR]",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 5, Usage: "exit after `SECONDS` without a request (0: never)"},
			&cli.StringFlag{Name: "runtime", Usage: "OCI runtime `PATH` for containers (default berth-runtime)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 1); err != nil {
				return err
			}
			if c.Int("time") < 0 {
				return fmt.Errorf("invalid --time %d: want seconds, 0 for no limit", c.Int("time"))
			}
			return withEnv(c, func(e *env) error {
				l, err := serviceListener(c)
				if err != nil {
					return err
				}
				defer l.Close()
				confDir, runDir := networkDirs(c, e)
				srv := api.New(api.Options{
					Store: e.store, Registry: e.reg, Version: version, Rootless: rootless.Enabled(),
					Runtime:    container.Runtime{Path: runtimePath(c), Root: filepath.Join(e.cfg.Storage.RunRoot, "runtime")},
					NetConfDir: confDir, NetRunDir: runDir,
					NewMonitor: func(attach *os.File) (*container.Monitor, error) { return spawnMonitor(c, e, attach) },
					ExecHelper: func(args ...string) (*exec.Cmd, error) { return selfCommand(c, e, args...) },
				})
				ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return api.Serve(ctx, l, srv, time.Duration(c.Int("time"))*time.Second)
			})
		},
	}
}

// serviceListener is the socket systemd passed (LISTEN_FDS), or the URI's.
func serviceListener(c *cli.Context) (net.Listener, error) {
	if pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID")); pid == os.Getpid() {
		if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n >= 1 {
			l, err := net.FileListener(os.NewFile(3, "listen-fd"))
			if err != nil {
				return nil, fmt.Errorf("socket activation: %w", err)
			}
			return l, nil
		}
	}
	uri := c.Args().First()
	if uri == "" {
		uri = "unix://" + defaultSocket()
	}
	switch {
	case strings.HasPrefix(uri, "unix://"):
		return unixListener(strings.TrimPrefix(uri, "unix://"))
	case strings.HasPrefix(uri, "tcp://"):
		fmt.Fprintln(c.App.ErrWriter, "WARNING: the API on TCP has no authentication: whoever reaches", strings.TrimPrefix(uri, "tcp://"), "can act as", serviceUser())
		l, err := net.Listen("tcp", strings.TrimPrefix(uri, "tcp://"))
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", uri, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("invalid URI %q: want unix:///PATH or tcp://HOST:PORT", uri)
}

// defaultSocket is podman's place for berth: /run/berth/berth.sock as
// root, $XDG_RUNTIME_DIR/berth/berth.sock rootless.
func defaultSocket() string {
	if rootless.Enabled() {
		return filepath.Join(rootless.RunDir(), "berth", "berth.sock")
	}
	return "/run/berth/berth.sock"
}

func serviceUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// unixListener listens on path, mode 0600 (0660 with the group berth when
// it exists), replacing a stale socket but nothing else.
func unixListener(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if conn, err := net.Dial("unix", path); err == nil {
			conn.Close()
			return nil, fmt.Errorf("%s: another service is listening there", path)
		}
		_ = os.Remove(path)
	}
	// The socket is made with no access, then opened up as asked.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if g, err := user.LookupGroup("berth"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil && os.Chown(path, -1, gid) == nil {
			_ = os.Chmod(path, 0o660)
		}
	}
	return l, nil
}

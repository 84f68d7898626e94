package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/engine/config"
	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/network"
	"github.com/berth-containers/berth/engine/progress"
)

// createFlags are docker create's (and run's) flags.
func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "container name"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.BoolFlag{Name: "rm", Usage: "remove the container when it exits"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` (KEY alone: from berth's environment)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read environment variables from `FILE`"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "`USER[:GROUP]` to run as"},
		&cli.StringFlag{Name: "entrypoint", Usage: "replace the image's entrypoint (JSON array or a command)"},
		&cli.StringFlag{Name: "hostname", Usage: "container host name"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the root filesystem read-only"},
		&cli.BoolFlag{Name: "privileged", Usage: "all capabilities and devices, no seccomp"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add a capability"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop a capability"},
		&cli.StringSliceFlag{Name: "security-opt", Usage: "seccomp=FILE|unconfined, no-new-privileges"},
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit (e.g. 512m)"},
		&cli.Float64Flag{Name: "cpus", Usage: "CPU quota in CPUs"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes"},
		&cli.StringSliceFlag{Name: "ulimit", Usage: "`NAME=SOFT[:HARD]`"},
		&cli.StringFlag{Name: "shm-size", Usage: "size of /dev/shm (default 64m)"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "mount a tmpfs: `PATH[:OPTIONS]`"},
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "mount a volume or a host path: `[NAME|/HOST:]PATH[:OPTIONS]` (ro, nocopy, a propagation)"},
		&cli.StringSliceFlag{Name: "mount", Usage: "mount `type=volume|bind|tmpfs,source=...,target=...[,readonly][,...]`"},
		&cli.StringSliceFlag{Name: "volumes-from", Usage: "mount another container's volumes and binds: `CONTAINER[:ro|:rw]`"},
		&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set a `KEY=VALUE` label"},
		&cli.BoolFlag{Name: "init", Usage: "run an init (tini) that forwards signals and reaps zombies"},
		&cli.StringFlag{Name: "stop-signal", Usage: "signal to stop the container"},
		&cli.IntFlag{Name: "stop-timeout", Usage: "seconds to wait before killing on stop (default 10)"},
		&cli.StringFlag{Name: "restart", Value: "no", Usage: "no, on-failure[:N], always, unless-stopped"},
		&cli.StringFlag{Name: "runtime", Usage: "OCI runtime `PATH` (default berth-runtime)"},
		&cli.StringSliceFlag{Name: "network", Aliases: []string{"net"}, Usage: "bridge (default), NAME, none, host or container:NAME; NAME may repeat"},
		&cli.StringFlag{Name: "ip", Usage: "IPv4 address on the (first) network"},
		&cli.StringSliceFlag{Name: "network-alias", Usage: "another name of the container on its (first) network"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish a port: `[IP:][HOSTPORT:]PORT[/PROTO]`"},
		&cli.BoolFlag{Name: "publish-all", Aliases: []string{"P"}, Usage: "publish the image's exposed ports on random host ports"},
		&cli.StringSliceFlag{Name: "add-host", Usage: "add `NAME:IP` to /etc/hosts"},
		&cli.StringSliceFlag{Name: "dns", Usage: "nameserver for /etc/resolv.conf"},
		&cli.StringFlag{Name: "log-driver", Value: "k8s-file", Usage: "k8s-file, json-file or none"},
		&cli.StringSliceFlag{Name: "log-opt", Usage: "max-size=SIZE, max-file=N"},
		&cli.StringFlag{Name: "pull", Value: "missing", Usage: "pull the image: missing, always, never"},
		&cli.StringFlag{Name: "health-cmd", Usage: "command to check health (run by /bin/sh -c)"},
		&cli.StringFlag{Name: "health-interval", Usage: "time between checks (default 30s)"},
		&cli.StringFlag{Name: "health-timeout", Usage: "time a check may take (default 30s)"},
		&cli.StringFlag{Name: "health-start-period", Usage: "time to start before failures count (default 0s)"},
		&cli.StringFlag{Name: "health-start-interval", Usage: "time between checks in the start period (default 5s)"},
		&cli.IntFlag{Name: "health-retries", Usage: "failures in a row that make it unhealthy (default 3)"},
		&cli.StringFlag{Name: "health-on-failure", Usage: "when unhealthy: none, kill, restart or stop"},
		&cli.BoolFlag{Name: "no-healthcheck", Usage: "disable the image's health check"},
	}
}

// healthcheck reads the --health-* flags; nil when none is given.
func healthcheck(c *cli.Context) (*container.Healthcheck, error) {
	set := false
	for _, f := range []string{"health-cmd", "health-interval", "health-timeout", "health-start-period",
		"health-start-interval", "health-retries", "health-on-failure", "no-healthcheck"} {
		set = set || c.IsSet(f)
	}
	if !set {
		return nil, nil
	}
	h := &container.Healthcheck{Retries: c.Int("health-retries"), OnFailure: c.String("health-on-failure")}
	if c.Bool("no-healthcheck") {
		if c.IsSet("health-cmd") {
			return nil, errors.New("--no-healthcheck conflicts with --health-cmd")
		}
		h.Test = []string{"NONE"}
	} else if cmd := c.String("health-cmd"); cmd != "" {
		h.Test = []string{"CMD-SHELL", cmd}
	}
	for _, d := range []struct {
		flag string
		to   *time.Duration
	}{
		{"health-interval", &h.Interval}, {"health-timeout", &h.Timeout},
		{"health-start-period", &h.StartPeriod}, {"health-start-interval", &h.StartInterval},
	} {
		if v := c.String(d.flag); v != "" {
			var err error
			if *d.to, err = time.ParseDuration(v); err != nil {
				return nil, fmt.Errorf("invalid --%s %q: a duration such as 30s or 1m30s", d.flag, v)
			}
		}
	}
	return h, nil
}

// createOptions turns the flags into the library's options.
func createOptions(c *cli.Context, e *env, img string, args []string) (container.CreateOptions, error) {
	o := container.CreateOptions{
		Name: c.String("name"), Image: img, Tty: c.Bool("tty"), OpenStdin: c.Bool("interactive"),
		AutoRemove: c.Bool("rm"), StopTimeout: c.Int("stop-timeout"),
		Runtime: container.Runtime{Path: runtimePath(c), Root: filepath.Join(e.cfg.Storage.RunRoot, "runtime")},
		Etc:     bundle.EtcOptions{ExtraHosts: c.StringSlice("add-host"), DNS: c.StringSlice("dns")},
	}
	b := &o.Bundle
	b.Args, b.WorkingDir, b.User, b.Hostname = args, c.String("workdir"), c.String("user"), c.String("hostname")
	b.ReadOnly, b.Privileged = c.Bool("read-only"), c.Bool("privileged")
	b.CapAdd, b.CapDrop = c.StringSlice("cap-add"), c.StringSlice("cap-drop")
	b.CPUs, b.PidsLimit, b.Ulimits = c.Float64("cpus"), c.Int64("pids-limit"), c.StringSlice("ulimit")
	b.Tmpfs, b.StopSignal = c.StringSlice("tmpfs"), c.String("stop-signal")
	var err error
	if o.Mounts, err = mountOptions(c.StringSlice("volume"), c.StringSlice("mount")); err != nil {
		return o, err
	}
	o.VolumesFrom = c.StringSlice("volumes-from")
	if b.Env, err = environment(c.StringSlice("env-file"), c.StringSlice("env")); err != nil {
		return o, err
	}
	if c.IsSet("entrypoint") {
		ep := entrypoint(c.String("entrypoint"))
		b.Entrypoint = &ep
	}
	if v := c.String("memory"); v != "" {
		if b.Memory, err = units.RAMInBytes(v); err != nil {
			return o, fmt.Errorf("invalid --memory %q: %w", v, err)
		}
	}
	if v := c.String("shm-size"); v != "" {
		if b.ShmSize, err = units.RAMInBytes(v); err != nil {
			return o, fmt.Errorf("invalid --shm-size %q: %w", v, err)
		}
	}
	for _, opt := range c.StringSlice("security-opt") {
		switch k, v, _ := strings.Cut(opt, "="); {
		case k == "seccomp" && v != "":
			b.SeccompProfile = v
		case k == "no-new-privileges" && (v == "" || v == "true"):
			b.NoNewPrivileges = true
		case k == "no-new-privileges" && v == "false":
		default:
			return o, fmt.Errorf("invalid --security-opt %q: want seccomp=FILE|unconfined or no-new-privileges", opt)
		}
	}
	if b.Labels, err = keyValues("label", c.StringSlice("label")); err != nil {
		return o, err
	}
	if o.Network, err = networkOptions(c, e, img); err != nil {
		return o, err
	}
	if o.Restart, err = restartPolicy(c.String("restart")); err != nil {
		return o, err
	}
	if o.AutoRemove && o.Restart.Name != "no" {
		return o, errors.New("--rm and --restart cannot be used together")
	}
	if o.Log, err = logConfig(c.String("log-driver"), c.StringSlice("log-opt")); err != nil {
		return o, err
	}
	if o.Healthcheck, err = healthcheck(c); err != nil {
		return o, err
	}
	if c.Bool("init") {
		if err := container.UseInit(b); err != nil {
			return o, err
		}
	}
	return o, nil
}

// mountOptions parses -v and --mount.
func mountOptions(volumes, mounts []string) ([]container.Mount, error) {
	var out []container.Mount
	for _, v := range volumes {
		m, err := container.ParseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("invalid -v %q: %w", v, err)
		}
		out = append(out, m)
	}
	for _, v := range mounts {
		m, err := container.ParseMount(v)
		if err != nil {
			return nil, fmt.Errorf("invalid --mount %q: %w", v, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// runtimePath is --runtime, or berth-runtime beside berth, or on PATH.
func runtimePath(c *cli.Context) string {
	if p := c.String("runtime"); p != "" {
		return p
	}
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "berth-runtime"); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath("berth-runtime"); err == nil {
		return p
	}
	return "berth-runtime"
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// environment reads --env-file files, then --env values; a bare KEY takes
// the value from berth's own environment, as docker does.
func environment(files, vars []string) ([]string, error) {
	var env []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("read --env-file: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			env = append(env, line)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read --env-file %s: %w", f, err)
		}
	}
	for i, kv := range append(env, vars...) {
		if !strings.Contains(kv, "=") {
			if v, ok := os.LookupEnv(kv); ok {
				kv = kv + "=" + v
			}
		}
		if i < len(env) {
			env[i] = kv
		} else {
			env = append(env, kv)
		}
	}
	return env, nil
}

// entrypoint takes a JSON array or a plain command, as docker.
func entrypoint(v string) []string {
	if v == "" {
		return []string{}
	}
	var list []string
	if strings.HasPrefix(v, "[") && json.Unmarshal([]byte(v), &list) == nil {
		return list
	}
	return []string{v}
}

func keyValues(flag string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid --%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func restartPolicy(v string) (container.RestartPolicy, error) {
	name, n, hasN := strings.Cut(v, ":")
	p := container.RestartPolicy{Name: name}
	switch name {
	case "no", "always", "unless-stopped":
		if hasN {
			return p, fmt.Errorf("invalid --restart %q: only on-failure takes a count", v)
		}
	case "on-failure":
		if hasN {
			count, err := strconv.Atoi(n)
			if err != nil || count < 0 {
				return p, fmt.Errorf("invalid --restart %q: bad retry count", v)
			}
			p.MaxRetries = count
		}
	default:
		return p, fmt.Errorf("invalid --restart %q: want no, on-failure[:N], always or unless-stopped", v)
	}
	return p, nil
}

func logConfig(driver string, opts []string) (container.LogConfig, error) {
	l := container.LogConfig{Driver: driver}
	switch driver {
	case "k8s-file", "json-file", "none":
	default:
		return l, fmt.Errorf("invalid --log-driver %q: want k8s-file, json-file or none", driver)
	}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "max-size":
			size, err := units.RAMInBytes(v)
			if err != nil || size <= 0 {
				return l, fmt.Errorf("invalid --log-opt %q", o)
			}
			l.MaxSize = size
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return l, fmt.Errorf("invalid --log-opt %q", o)
			}
			l.MaxFiles = n
		default:
			return l, fmt.Errorf("invalid --log-opt %q: want max-size= or max-file=", o)
		}
	}
	return l, nil
}

// ensureImage pulls the image as --pull says.
func ensureImage(c *cli.Context, e *env, ref string) error {
	policy := c.String("pull")
	switch policy {
	case "missing", "always", "never":
	default:
		return fmt.Errorf("invalid --pull %q: want missing, always or never", policy)
	}
	_, err := image.Lookup(e.store, ref)
	if policy == "never" || (policy == "missing" && err == nil) {
		return err
	}
	if err != nil && !errors.Is(err, image.ErrNotFound) {
		return err
	}
	bars := progress.New(os.Stderr)
	_, err = image.Pull(c.Context, e.store, e.reg, ref, image.PullOptions{Progress: bars})
	bars.Wait()
	return err
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a container",
		ArgsUsage: "IMAGE [COMMAND [ARG...]]",
		Flags:     createFlags(),
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := createContainer(c, e)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(c.App.Writer, ctr.ID)
				return err
			})
		},
	}
}

func createContainer(c *cli.Context, e *env) (*container.Container, error) {
	ref := c.Args().First()
	if err := ensureImage(c, e, ref); err != nil {
		return nil, err
	}
	o, err := createOptions(c, e, ref, c.Args().Tail())
	if err != nil {
		return nil, err
	}
	return container.Create(c.Context, e.store, o)
}

// networkOptions reads --network, --ip, --network-alias, -p and -P.
func networkOptions(c *cli.Context, e *env, img string) (container.NetworkOptions, error) {
	o := container.NetworkOptions{Ports: c.StringSlice("publish")}
	o.ConfDir, o.RunDir = networkDirs(c, e)
	nets := c.StringSlice("network")
	for _, n := range nets {
		switch {
		case n == "none" || n == "host" || strings.HasPrefix(n, "container:"):
			if len(nets) > 1 {
				return o, fmt.Errorf("--network %s cannot be combined with other networks", n)
			}
			o.Mode = n
		case n == "bridge" || n == "default":
			o.Attachments = append(o.Attachments, network.Attachment{})
		default:
			o.Attachments = append(o.Attachments, network.Attachment{Network: n})
		}
	}
	if o.Mode == "" && len(o.Attachments) == 0 {
		o.Attachments = []network.Attachment{{}}
	}
	if ip, aliases := c.String("ip"), c.StringSlice("network-alias"); ip != "" || len(aliases) > 0 {
		if o.Mode != "" {
			return o, fmt.Errorf("--ip and --network-alias need a network, not --network %s", o.Mode)
		}
		o.Attachments[0].IP, o.Attachments[0].Aliases = ip, aliases
	}
	if c.Bool("publish-all") {
		exposed, err := image.ExposedPorts(e.store, img)
		if err != nil {
			return o, err
		}
		o.Ports = append(o.Ports, exposed...)
	}
	return o, nil
}

// networkDirs are the network manager's: conflists beside the
// configuration file (/etc/berth/networks), state under the run root.
func networkDirs(c *cli.Context, e *env) (confDir, runDir string) {
	path := c.String("config")
	if path == "" {
		path = config.DefaultPath()
	}
	return filepath.Join(filepath.Dir(path), "networks"), filepath.Join(e.cfg.Storage.RunRoot, "network")
}

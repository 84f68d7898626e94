package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run a process in a running container",
	ArgsUsage: "<container-id> [command [args...]]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "process.json describing the process"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the process"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the process id to this file"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket to receive the pty master on"},
		&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=VALUE to add to the environment"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "uid[:gid]"},
		&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional gids"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs for the process"},
		&cli.StringFlag{Name: "process-label", Usage: "SELinux label of the process"},
		&cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile of the process"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra descriptors (from 3) to the process"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "exec even in a paused container"},
		&cli.StringSliceFlag{Name: "cgroup", Usage: "run the process in the container's sub-cgroup PATH, or CONTROLLER[,CONTROLLER]:PATH (repeatable)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() < 1 {
			return fmt.Errorf("exec: container id required")
		}
		o := libcontainer.ExecOptions{
			Root: c.String("root"), ID: c.Args().First(), Args: c.Args().Tail(),
			Cwd: c.String("cwd"), Env: c.StringSlice("env"), Caps: c.StringSlice("cap"),
			NoNewPrivs: c.Bool("no-new-privs"), Tty: c.Bool("tty"), ConsoleSocket: c.String("console-socket"),
			PidFile: c.String("pid-file"), Detach: c.Bool("detach"), PreserveFds: c.Int("preserve-fds"),
			IgnorePaused: c.Bool("ignore-paused"),
			AppArmor:     c.String("apparmor"), Label: c.String("process-label"),
		}
		subs, err := parseSubCgroups(c.StringSlice("cgroup"))
		if err != nil {
			return err
		}
		o.SubCgroups = subs
		if path := c.String("process"); path != "" {
			p, err := readProcess(path)
			if err != nil {
				return err
			}
			o.Process = p
		} else if len(o.Args) == 0 {
			return fmt.Errorf("exec: a command or --process is required")
		}
		if u := c.String("user"); u != "" {
			user, err := parseUser(u, c.Int64Slice("additional-gids"))
			if err != nil {
				return err
			}
			o.User = user
		}
		code, err := libcontainer.Exec(o)
		if err != nil {
			// runc's convention: 255 when the runtime itself fails.
			fmt.Fprintln(os.Stderr, "berth-runtime:", err)
			logError(err)
			return exitError{255}
		}
		if code != 0 {
			return exitError{code}
		}
		return nil
	},
}

func readProcess(path string) (*specs.Process, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read process file: %w", err)
	}
	var p specs.Process
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("parse process file %s: %w", path, err)
	}
	return &p, nil
}

func parseUser(s string, gids []int64) (*specs.User, error) {
	uidStr, gidStr, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("--user %q: uid must be a number", s)
	}
	u := &specs.User{UID: uint32(uid)}
	if gidStr != "" {
		gid, err := strconv.ParseUint(gidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: gid must be a number", s)
		}
		u.GID = uint32(gid)
	}
	for _, g := range gids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	return u, nil
}

// parseSubCgroups reads runc's --cgroup values: one PATH for every
// controller, or any number of CONTROLLER[,CONTROLLER]:PATH.
func parseSubCgroups(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	subs := map[string]string{}
	for _, arg := range args {
		ctrls, path, found := strings.Cut(arg, ":")
		switch {
		case !found && len(args) > 1:
			return nil, fmt.Errorf("invalid --cgroup %q: give CONTROLLER:PATH when --cgroup is repeated", arg)
		case !found:
			subs[""] = arg
		case strings.Contains(path, ":") || ctrls == "" || path == "":
			return nil, fmt.Errorf("invalid --cgroup %q: want PATH or CONTROLLER[,CONTROLLER]:PATH", arg)
		default:
			for _, ctrl := range strings.Split(ctrls, ",") {
				subs[ctrl] = path
			}
		}
	}
	return subs, nil
}

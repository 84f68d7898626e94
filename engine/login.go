package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/registry"
)

// defaultRegistry is where login and logout go without an argument.
const defaultRegistry = "docker.io"

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "log in to a registry",
		ArgsUsage: "[REGISTRY]",
		Description: "Checks the credentials with the registry (default docker.io) and stores\n" +
			"them in $DOCKER_CONFIG/config.json (~/.docker/config.json).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user `NAME`"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "`PASSWORD` (visible to other users: prefer --password-stdin)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 1); err != nil {
				return err
			}
			user, password := c.String("username"), c.String("password")
			if c.Bool("password-stdin") {
				if c.IsSet("password") {
					return errors.New("--password and --password-stdin cannot be used together")
				}
				if user == "" {
					return errors.New("username required with --password-stdin: give -u")
				}
				b, err := io.ReadAll(os.Stdin)
				if err != nil {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			} else if c.IsSet("password") {
				fmt.Fprintln(os.Stderr, "WARNING! Using --password via the command line is insecure. Use --password-stdin.")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			client := registry.New(cfg)
			reg, err := client.ParseRegistry(registryArg(c))
			if err != nil {
				return err
			}
			// Prompts only on a terminal: a script must not hang on a read.
			term := isTerminal(os.Stdin)
			in := bufio.NewReader(os.Stdin)
			if user == "" {
				if !term {
					return errors.New("username required: give -u (stdin is not a terminal)")
				}
				if user, err = prompt(in, "Username: ", true); err != nil {
					return err
				}
			}
			if password == "" && !c.Bool("password-stdin") {
				if !term {
					return errors.New("password required: give -p or --password-stdin (stdin is not a terminal)")
				}
				if password, err = prompt(in, "Password: ", false); err != nil {
					return err
				}
			}
			if user == "" || password == "" {
				return errors.New("username and password required")
			}
			if err := client.Login(c.Context, reg, user, password); err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, "Login Succeeded")
			return err
		},
	}
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "remove the stored credentials of a registry",
		ArgsUsage: "[REGISTRY]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 1); err != nil {
				return err
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			host := registryArg(c)
			reg, err := registry.New(cfg).ParseRegistry(host)
			if err != nil {
				return err
			}
			if err := registry.Logout(reg); err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, "Removed login credentials for", host)
			return err
		},
	}
}

func registryArg(c *cli.Context) string {
	if c.NArg() == 0 {
		return defaultRegistry
	}
	return c.Args().First()
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// prompt asks on stderr and reads a line from the terminal on stdin,
// without echo for passwords.
func prompt(in *bufio.Reader, question string, echo bool) (string, error) {
	fmt.Fprint(os.Stderr, question)
	if !echo {
		fd := int(os.Stdin.Fd())
		old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		quiet := *old
		quiet.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		defer func() {
			_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
			fmt.Fprintln(os.Stderr) // the newline the user typed was not echoed
		}()
	}
	line, err := in.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("read %s%w", strings.ToLower(question), err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed returns args with the flags that follow a command's
// positional arguments moved in front of them: docker's command line takes
// `berth logs web -f` as `berth logs -f web`, while urfave/cli/v2 stops
// reading flags at the first argument. Commands whose arguments end in a
// command line of their own (run, create, exec, bundle: ArgsUsage names a
// COMMAND) keep their order, and so does everything after "--"; those that
// parse their own flags are left as they are. A short flag glued to its
// value (`-t1`, `-p8080:80`), which docker's parser takes and urfave/cli's
// does not, is split in two.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	i := 1 + flagsLength(app.Flags, args[1:])
	var cmd *cli.Command
	for cmds := app.Commands; i < len(args); {
		c := findCommand(cmds, args[i])
		if c == nil {
			break
		}
		cmd, cmds, i = c, c.Subcommands, i+1
		if len(cmds) == 0 {
			break
		}
	}
	if cmd == nil || cmd.SkipFlagParsing {
		return args
	}
	inOrder := strings.Contains(cmd.ArgsUsage, "COMMAND")
	var flags, positional []string
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" || (inOrder && !isFlag(a)) {
			positional = append(positional, rest[j:]...)
			break
		}
		if !isFlag(a) {
			positional = append(positional, a)
			continue
		}
		split := unglue(cmd.Flags, a)
		flags = append(flags, split...)
		if len(split) == 1 && takesValue(cmd.Flags, a) && !strings.Contains(a, "=") && j+1 < len(rest) {
			j++
			flags = append(flags, rest[j])
		}
	}
	out := append([]string(nil), args[:i]...)
	out = append(out, flags...)
	return append(out, positional...)
}

// unglue splits a short flag glued to its value (-t1) into flag and value;
// other flags, bool groups such as -it among them, come back as they are.
func unglue(flags []cli.Flag, a string) []string {
	if len(a) < 3 || a[1] == '-' || isFlagName(flags, a) || !takesValue(flags, a[:2]) {
		return []string{a}
	}
	return []string{a[:2], a[2:]}
}

// flagsLength is how many of args are flags of this list (with their
// values), up to the first other word.
func flagsLength(flags []cli.Flag, args []string) int {
	n := 0
	for n < len(args) && isFlag(args[n]) && args[n] != "--" {
		if takesValue(flags, args[n]) && !strings.Contains(args[n], "=") {
			n++
		}
		n++
	}
	return min(n, len(args))
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue tells whether the flag a (-x, --name or --name=value) is one
// of flags that takes a value. Unknown flags do not: urfave/cli reports them.
func takesValue(flags []cli.Flag, a string) bool {
	f := lookupFlag(flags, a)
	v, ok := f.(cli.DocGenerationFlag)
	return ok && v.TakesValue()
}

// isFlagName tells whether a (-x, --name or --name=value) names one of flags.
func isFlagName(flags []cli.Flag, a string) bool { return lookupFlag(flags, a) != nil }

func lookupFlag(flags []cli.Flag, a string) cli.Flag {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

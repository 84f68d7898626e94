// Command measure runs one command and reports its wall time and peak RSS.
//
//	measure CMD [ARG...]
//
// It prints "<wall_ns> <maxrss_kib> <exit_code>" on stdout. The command's
// stdout is discarded and its stderr is replayed only when it fails, so a
// benchmark loop stays quiet but failures stay diagnosable. Peak RSS comes
// from wait4's rusage: the largest resident set of the command or of any
// descendant it waited for (for an OCI runtime, its init helper too).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: measure CMD [ARG...]")
		os.Exit(2)
	}
	wall, maxRSS, code, err := run(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(2)
	}
	fmt.Printf("%d %d %d\n", wall.Nanoseconds(), maxRSS, code)
}

func run(name string, args []string) (time.Duration, int64, int, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdin = nil
	cmd.Stdout = nil
	cmd.Stderr = &stderr

	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)

	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
		os.Stderr.Write(stderr.Bytes())
	case err != nil:
		return 0, 0, 0, fmt.Errorf("run %s: %w", name, err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, 0, fmt.Errorf("run %s: no rusage", name)
	}
	// Linux reports ru_maxrss in KiB.
	return wall, ru.Maxrss, code, nil
}

package engine

import (
	"strings"
	"testing"

	"github.com/berth-containers/berth/tests/terminal"
)

// TestAPITerminal runs, with each docker CLI on a terminal of its own,
// `docker run -it` and `docker exec -it` of a shell: the shell has a
// terminal, reads what is typed, and its exit code is docker's.
func TestAPITerminal(t *testing.T) {
	eachDockerCLI(t, func(t *testing.T, e *engine, s *service) {
		p := terminal.Start(t, s.cli, []string{"run", "-it", "--rm", "--network", "none", "busybox", "sh"}, s.dockerEnv(e))
		if code, out := p.Shell(t, 5); code != 5 || !strings.Contains(out, "/dev/pts/") {
			t.Errorf("docker run -it: exit %d, %q", code, out)
		}
		s.dockerOK(t, e, "run", "-d", "--name", "sh", "--network", "none", "busybox", "sleep", "1000")
		p = terminal.Start(t, s.cli, []string{"exec", "-it", "sh", "sh"}, s.dockerEnv(e))
		if code, out := p.Shell(t, 4); code != 4 || !strings.Contains(out, "/dev/pts/") {
			t.Errorf("docker exec -it: exit %d, %q", code, out)
		}
		// docker run --rm waits for the removal (wait condition=removed).
		if out := s.dockerOK(t, e, "ps", "-aq"); strings.Count(out, "\n") != 1 {
			t.Errorf("containers after run -it --rm: %q", out)
		}
		s.dockerOK(t, e, "rm", "-f", "sh")
	})
}

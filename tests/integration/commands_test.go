package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// exec runs processes in a running container with runc's flags, returns
// their exit code, and 255 when the runtime itself fails.
func TestExec(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	s := newSpec(t, "sleep", "30")
	s.Process.Env = append(s.Process.Env, "FROM_SPEC=1")
	id, _ := e.start(s)

	r := e.rt("exec", "--env", "EXTRA=2", "--cwd", "/etc", "--user", "1000:1000", "--additional-gids", "10",
		id, "sh", "-c", `echo "$FROM_SPEC $EXTRA $(pwd) $(id -u):$(id -g) $(id -G)"; exit 5`)
	if r.code != 5 || strings.TrimSpace(r.stdout) != "1 2 /etc 1000:1000 1000 10" {
		t.Errorf("exec with env/cwd/user: %s", r)
	}
	// It joins the container's namespaces: pid 1 there is the sleep.
	if r := e.rt("exec", id, "cat", "/proc/1/cmdline"); r.code != 0 || !strings.HasPrefix(r.stdout, "sleep") {
		t.Errorf("exec sees pid 1 %q: %s", r.stdout, r)
	}
	if r := e.rt("exec", id, "no-such-program"); r.code != 255 || !strings.Contains(r.stderr, "executable file not found") {
		t.Errorf("exec of a missing program: %s", r)
	}

	// --process with a process.json, detached, with a pid file.
	proc := specs.Process{Args: []string{"sh", "-c", "echo from-process-json > /dev/shm/out; sleep 5"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	data, _ := json.Marshal(proc)
	pfile := filepath.Join(e.dir, "process.json")
	writeFile(t, pfile, string(data), 0o644)
	pidFile := filepath.Join(e.dir, "exec.pid")
	if r := e.rt("exec", "--detach", "--pid-file", pidFile, "--process", pfile, id); r.code != 0 {
		t.Fatalf("exec --detach --process: %s", r)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	st := e.state(id)
	waitOutput(t, "/proc/"+strconv.Itoa(st.Pid)+"/root/dev/shm/out", "from-process-json")
	if ns, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid"); ns == "" {
		t.Errorf("detached exec pid %d is not running", pid)
	}

	// ps lists both processes.
	var pids []int
	if r := e.mustRT("ps", "--format", "json", id); json.Unmarshal([]byte(r.stdout), &pids) != nil || len(pids) != 2 {
		t.Errorf("ps --format json: %q", r.stdout)
	}
}

// pause freezes every process, resume thaws them; update changes limits;
// events --stats reports them.
func TestPauseUpdateEvents(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	s := shell(t, "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.01; done")
	id, _ := e.start(s)
	st := e.state(id)
	counter := "/proc/" + strconv.Itoa(st.Pid) + "/root/dev/shm/n"
	waitOutput(t, counter, "")

	e.mustRT("pause", id)
	if got := e.state(id).Status; got != "paused" {
		t.Fatalf("status after pause = %s", got)
	}
	before := readFile(t, counter)
	time.Sleep(200 * time.Millisecond)
	if after := readFile(t, counter); after != before {
		t.Errorf("counter moved while paused: %q -> %q", before, after)
	}
	if r := e.rt("exec", id, "true"); r.code == 0 {
		t.Errorf("exec in a paused container succeeded")
	}
	e.mustRT("resume", id)
	if got := e.state(id).Status; got != "running" {
		t.Fatalf("status after resume = %s", got)
	}
	time.Sleep(200 * time.Millisecond)
	if after := readFile(t, counter); after == before {
		t.Errorf("counter did not move after resume")
	}
	if r := e.rt("resume", id); r.code == 0 {
		t.Errorf("resume of a running container succeeded")
	}

	e.mustRT("update", "--memory", "64m", "--pids-limit", "42", id)
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Limit uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	r := e.mustRT("events", "--stats", id)
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.Type != "stats" ||
		ev.Data.Memory.Usage.Limit != 64<<20 || ev.Data.Pids.Limit != 42 {
		t.Errorf("events --stats after update: %v %s", err, r.stdout)
	}
	// The update is recorded: a second update of one value keeps the other.
	e.mustRT("update", "--pids-limit", "43", id)
	r = e.mustRT("events", "--stats", id)
	if json.Unmarshal([]byte(r.stdout), &ev) != nil || ev.Data.Memory.Usage.Limit != 64<<20 || ev.Data.Pids.Limit != 43 {
		t.Errorf("second update lost the first: %s", r.stdout)
	}
	if r := e.rt("update", "--memory", "lots", id); r.code == 0 || !strings.Contains(r.stderr, "--memory") {
		t.Errorf("update with a bad value: %s", r)
	}
}

// kill --all reaches every process of a container without a pid namespace,
// where killing init alone would leave the others.
func TestKillAll(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	s := shell(t, "sleep 31 & sleep 32 & wait")
	withoutNamespace(s, specs.PIDNamespace)
	id, _ := e.start(s)
	var pids []int
	deadline := time.Now().Add(5 * time.Second)
	for len(pids) < 3 && time.Now().Before(deadline) {
		json.Unmarshal([]byte(e.mustRT("ps", "--format", "json", id).stdout), &pids)
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) != 3 {
		t.Fatalf("ps: %v, want 3 processes", pids)
	}
	e.mustRT("kill", "--all", id, "KILL")
	e.waitStatus(id, "stopped")
	for _, pid := range pids {
		for i := 0; i < 100; i++ {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil {
				break
			}
			if data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(data), ") Z") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(data), ") Z") {
			t.Errorf("pid %d survived kill --all: %s", pid, data)
		}
	}
}

// --no-pivot uses chroot; time namespace offsets shift the monotonic and
// boot clocks; domainname is set.
func TestNoPivotTimeNamespaceDomainname(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	s := shell(t, "cut -d. -f1 /proc/uptime; cat /proc/sys/kernel/domainname")
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}, "monotonic": {Secs: 1000}}
	s.Domainname = "berth.example"
	out := lines(e.mustRun(s))
	host, _ := os.ReadFile("/proc/uptime")
	hostUp, _ := strconv.ParseFloat(strings.Fields(string(host))[0], 64)
	up, err := strconv.Atoi(out[0])
	if err != nil || up < int(hostUp)+86400*365-5 {
		t.Errorf("uptime in a time namespace with a year's boottime offset = %q (host %.0f)", out[0], hostUp)
	}
	if len(out) < 2 || out[1] != "berth.example" {
		t.Errorf("domainname = %q", out)
	}

	np := shell(t, "echo pivot-less; cat /proc/self/mountinfo | wc -l")
	if r := e.run(np, "--no-pivot"); r.code != 0 || !strings.Contains(r.stdout, "pivot-less") {
		t.Errorf("run --no-pivot: %s", r)
	}
}

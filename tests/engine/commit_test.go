package engine

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// savedLayers reads a docker-archive (berth save) of one image: its layer
// tars, bottom first.
func savedLayers(t testing.TB, archive []byte) [][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	var layers [][]byte
	for _, l := range manifest[0].Layers {
		layers = append(layers, files[l])
	}
	return layers
}

func TestCommit(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	if r := e.run(nil, "run", "--name", "c1", "-e", "FROMRUN=1", "busybox", "sh", "-c", "echo committed > /hello.txt"); r.Code != 0 {
		t.Fatalf("run: %+v", r)
	}
	out := e.ok("commit", "-m", "my message", "-a", "Jane <jane@example.org>",
		"--change", `CMD ["cat","/hello.txt"]`, "-c", "ENV FOO=bar", "-c", "LABEL team=berth", "c1", "mine:v1")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Fatalf("commit printed %q", out)
	}
	id := strings.TrimSpace(out)
	if got := e.ok("image", "inspect", "--format", "{{.Id}}", "mine:v1"); strings.TrimSpace(got) != id {
		t.Errorf("mine:v1 is %q, commit said %q", got, id)
	}
	// The command follows --change; the file is there.
	if r := e.run(nil, "run", "--rm", "mine:v1"); r.Code != 0 || r.Stdout != "committed\n" {
		t.Errorf("run mine:v1: %+v", r)
	}
	got := e.ok("image", "inspect", "--format", "{{json .Config.Cmd}}|{{json .Config.Env}}|{{.Config.Labels.team}}|{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}", "mine:v1")
	for _, want := range []string{`["cat","/hello.txt"]|`, `FOO=bar`, `FROMRUN=1`, `PATH=`, "|berth|Jane <jane@example.org>|my message|2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("inspect: %q lacks %q", got, want)
		}
	}
	if h := e.ok("history", "--format", "{{.CreatedBy}}|{{.Comment}}", "mine:v1"); !strings.HasPrefix(h, "sh -c echo committed > /hello.txt|my message\n") {
		t.Errorf("history: %q", h)
	}
	// The new layer holds the container's changes, and only them.
	layers := savedLayers(t, []byte(e.ok("save", "mine:v1")))
	if len(layers) != 2 {
		t.Fatalf("saved %d layers", len(layers))
	}
	hdrs, bodies := tarEntries(t, layers[1])
	if bodies["hello.txt"] != "committed\n" {
		t.Errorf("new layer: %v", hdrs)
	}
	if _, ok := hdrs["bin/busybox"]; ok {
		t.Error("the new layer repeats the image's files")
	}

	// Without changes the image runs the container's command.
	e.ok("commit", "c1", "mine:v2")
	if got := e.ok("image", "inspect", "--format", "{{json .Config.Cmd}}", "mine:v2"); got != `["sh","-c","echo committed \u003e /hello.txt"]`+"\n" && got != `["sh","-c","echo committed > /hello.txt"]`+"\n" {
		t.Errorf("Cmd of mine:v2: %q", got)
	}
	// Without a name: a dangling image.
	if out := e.ok("commit", "c1"); !strings.HasPrefix(out, "sha256:") {
		t.Errorf("commit without a name: %q", out)
	}

	// A running container, paused meanwhile, keeps running.
	e.ok("run", "-d", "--name", "c2", "busybox", "sh", "-c", "echo running > /r.txt && touch /ready && exec sleep 1000")
	untilOK(t, e, "cp", "c2:/ready", "-")
	e.ok("commit", "c2", "mine:v3")
	if r := e.run(nil, "run", "--rm", "mine:v3", "cat", "/r.txt"); r.Code != 0 || r.Stdout != "running\n" {
		t.Errorf("run mine:v3: %+v", r)
	}
	if st := e.ok("inspect", "--format", "{{.State.Status}}", "c2"); st != "running\n" {
		t.Errorf("c2 after commit: %q", st)
	}
	e.ok("rm", "-f", "c2")

	e.fail("no such container", "commit", "nosuch", "x:y")
	e.fail("invalid", "commit", "c1", "Bad::Name")
	e.fail("unknown instruction", "commit", "-c", "FROB x", "c1", "x:y")
}

func TestExportImport(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	if r := e.run(nil, "run", "--name", "ex", "busybox", "sh", "-c", "echo exported > /exported.txt && mkdir /d && ln -s /exported.txt /d/link"); r.Code != 0 {
		t.Fatalf("run: %+v", r)
	}
	id := strings.TrimSpace(e.ok("inspect", "--format", "{{.Id}}", "ex"))
	hdrs, bodies := tarEntries(t, []byte(e.ok("export", "ex")))
	if bodies["exported.txt"] != "exported\n" || hdrs["bin/busybox"] == nil || hdrs["d/"] == nil || hdrs["d/link"] == nil || hdrs["d/link"].Linkname != "/exported.txt" {
		t.Errorf("export: %d entries, exported.txt %q", len(hdrs), bodies["exported.txt"])
	}
	for name := range hdrs {
		if strings.HasPrefix(name, "/") || strings.HasPrefix(name, "./") {
			t.Errorf("export entry %q: want names relative to the root", name)
			break
		}
	}
	// -o, then import and run: the image has what the container made.
	file := filepath.Join(t.TempDir(), "ex.tar")
	if out := e.ok("export", "-o", file, "ex"); out != "" {
		t.Errorf("export -o printed %q", out)
	}
	e.ok("import", file, "roundtrip:1")
	if r := e.run(nil, "run", "--rm", "roundtrip:1", "cat", "/exported.txt"); r.Code != 0 || r.Stdout != "exported\n" {
		t.Errorf("run the imported export: %+v", r)
	}
	if layerMounted(t, layerOf(t, e, id)) {
		t.Error("the exported container's layer is still mounted")
	}
	// A reader that goes away early leaves nothing mounted either.
	cmd := e.cmd("export", "ex")
	cmd.Stdout = &closingWriter{limit: 4096}
	_ = cmd.Run()
	if layerMounted(t, layerOf(t, e, id)) {
		t.Error("an export cut short left the layer mounted")
	}
	e.fail("no such container", "export", "nosuch")
	e.fail("no such file or directory", "export", "-o", "/nonexistent/dir/x.tar", "ex")
}

// closingWriter fails writes past limit, as a closed pipe does.
type closingWriter struct{ limit int }

func (w *closingWriter) Write(p []byte) (int, error) {
	if w.limit -= len(p); w.limit < 0 {
		return 0, errors.New("closed")
	}
	return len(p), nil
}

// complete runs the bash completion for the command line line (the cursor
// at its end) and returns COMPREPLY.
func complete(t *testing.T, line string) []string {
	t.Helper()
	script := `source "$1"
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_berth
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "-c", script, "bash", "../../contrib/completion/berth.bash", line).Output()
	if err != nil {
		t.Fatalf("completion of %q: %v", line, err)
	}
	return strings.Fields(string(out))
}

func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("create", "--name", "compl-ctr", "busybox")
	global := berthBin + " --root " + e.root + " --runroot " + e.runroot + " --config " + e.Config
	has := func(list []string, w string) bool {
		for _, x := range list {
			if x == w {
				return true
			}
		}
		return false
	}
	if got := complete(t, "berth ru"); len(got) != 1 || got[0] != "run" {
		t.Errorf("berth ru<TAB>: %q", got)
	}
	if got := complete(t, global+" rm "); !has(got, "compl-ctr") {
		t.Errorf("berth rm <TAB>: %q", got)
	}
	if got := complete(t, global+" container stop compl"); len(got) != 1 || got[0] != "compl-ctr" {
		t.Errorf("berth container stop compl<TAB>: %q", got)
	}
	if got := complete(t, global+" run --rm busy"); !has(got, "busybox:latest") {
		t.Errorf("berth run busy<TAB>: %q", got)
	}
	if got := complete(t, global+" cp compl"); len(got) != 1 || got[0] != "compl-ctr:" {
		t.Errorf("berth cp compl<TAB>: %q", got)
	}
	if got := complete(t, "berth commit --"); !has(got, "--change") || !has(got, "--message") {
		t.Errorf("berth commit --<TAB>: %q", got)
	}
	if got := complete(t, "berth run --health-on-failure "); !has(got, "restart") {
		t.Errorf("berth run --health-on-failure <TAB>: %q", got)
	}
	if got := complete(t, global+" healthcheck run compl"); len(got) != 1 || got[0] != "compl-ctr" {
		t.Errorf("berth healthcheck run compl<TAB>: %q", got)
	}
	if got := complete(t, "berth events --filter "); !has(got, "type=container") {
		t.Errorf("berth events --filter <TAB>: %q", got)
	}
	// Every command of `berth --help` is in both completions.
	help := e.ok("--help")
	cmds := regexp.MustCompile(`(?m)^   ([a-z][a-z-]*)(, [a-z]+)*\s{2,}`).FindAllStringSubmatch(help[strings.Index(help, "COMMANDS:"):strings.Index(help, "GLOBAL OPTIONS:")], -1)
	if len(cmds) < 20 {
		t.Fatalf("commands in --help: %q", cmds)
	}
	all := complete(t, "berth ")
	zsh, err := os.ReadFile("../../contrib/completion/_berth")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cmds {
		if m[1] == "help" {
			continue
		}
		if !has(all, m[1]) {
			t.Errorf("command %s of berth --help is not completed by contrib/completion/berth.bash: add it (__berth_commands, __berth_flags, __berth_args)", m[1])
		}
		if !bytes.Contains(zsh, []byte("\t'"+m[1]+":")) {
			t.Errorf("command %s of berth --help is not in contrib/completion/_berth: add it (__berth_command_list, __berth_flag_specs, __berth_args)", m[1])
		}
	}
}

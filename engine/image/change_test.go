package image

import (
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestApplyChanges(t *testing.T) {
	set := func(keys ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		base    v1.Config
		changes []string
		want    v1.Config
	}{
		{name: "cmd json", changes: []string{`CMD ["sh", "-c", "echo hi"]`},
			want: v1.Config{Cmd: []string{"sh", "-c", "echo hi"}}},
		{name: "cmd shell", changes: []string{`cmd echo "hi there"`},
			want: v1.Config{Cmd: []string{"/bin/sh", "-c", `echo "hi there"`}}},
		{name: "cmd broken json is shell form", changes: []string{`CMD ["sh"`},
			want: v1.Config{Cmd: []string{"/bin/sh", "-c", `["sh"`}}},
		{name: "entrypoint", changes: []string{`ENTRYPOINT ["/bin/app"]`, `ENTRYPOINT /bin/app --x`},
			want: v1.Config{Entrypoint: []string{"/bin/sh", "-c", "/bin/app --x"}}},
		{name: "env pairs", base: v1.Config{Env: []string{"A=old", "PATH=/bin"}},
			changes: []string{`ENV A=b C="x y" D=a\ b E='$q'`},
			want:    v1.Config{Env: []string{"A=b", "PATH=/bin", "C=x y", "D=a b", "E=$q"}}},
		{name: "env legacy", changes: []string{"ENV GREETING hello  world"},
			want: v1.Config{Env: []string{"GREETING=hello  world"}}},
		{name: "label", base: v1.Config{Labels: map[string]string{"a": "1"}},
			changes: []string{`LABEL a=2 "com.example.x"="va lue" empty=`},
			want:    v1.Config{Labels: map[string]string{"a": "2", "com.example.x": "va lue", "empty": ""}}},
		{name: "expose", changes: []string{"EXPOSE 80 53/udp", "EXPOSE 8000-8001/TCP"},
			want: v1.Config{ExposedPorts: set("80/tcp", "53/udp", "8000/tcp", "8001/tcp")}},
		{name: "user workdir", base: v1.Config{WorkingDir: "/app"},
			changes: []string{"USER 1000:1000", "WORKDIR sub", "WORKDIR /srv//x/"},
			want:    v1.Config{User: "1000:1000", WorkingDir: "/srv/x"}},
		{name: "relative workdir", base: v1.Config{WorkingDir: "/app"}, changes: []string{"WORKDIR sub"},
			want: v1.Config{WorkingDir: "/app/sub"}},
		{name: "volume", changes: []string{`VOLUME ["/data", "/logs"]`, "VOLUME /a /b"},
			want: v1.Config{Volumes: set("/data", "/logs", "/a", "/b")}},
		{name: "stopsignal", changes: []string{"STOPSIGNAL SIGINT"}, want: v1.Config{StopSignal: "SIGINT"}},
		{name: "stopsignal number", changes: []string{"STOPSIGNAL 9"}, want: v1.Config{StopSignal: "9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.base
			if err := ApplyChanges(&cfg, tc.changes); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Errorf("got %+v\nwant %+v", cfg, tc.want)
			}
		})
	}
}

func TestApplyChangesErrors(t *testing.T) {
	for _, tc := range []struct{ change, want string }{
		{"ONBUILD RUN true", "ONBUILD is not supported"},
		{"RUN true", "unknown instruction RUN"},
		{"HEALTHCHECK NONE", "unknown instruction HEALTHCHECK"},
		{"", "empty instruction"},
		{"CMD", "CMD needs an argument"},
		{"ENV A=b C", `"C" is not KEY=VALUE`},
		{"ENV =b", `"=b" is not KEY=VALUE`},
		{"ENV A", `"A" has no value`},
		{`LABEL a="b`, "unterminated quote"},
		{"EXPOSE 70000", `invalid port "70000"`},
		{"EXPOSE 80/icmp", "invalid protocol"},
		{"EXPOSE 90-80", "invalid port"},
		{"STOPSIGNAL SIGNOPE", `unknown signal "SIGNOPE"`},
		{`VOLUME [""]`, "empty path"},
	} {
		t.Run(tc.change, func(t *testing.T) {
			err := ApplyChanges(&v1.Config{}, []string{tc.change})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

package main

import (
	"slices"
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		// Flags after arguments move in front of them, with their values.
		{"berth rm web -f", "berth rm -f web"},
		{"berth logs web -f --tail 5", "berth logs -f --tail 5 web"},
		{"berth export c1 -o out.tar", "berth export -o out.tar c1"},
		{"berth --root /r --log-level debug stop a -t 1 b", "berth --root /r --log-level debug stop -t 1 a b"},
		{"berth network create net --subnet 10.9.0.0/24", "berth network create --subnet 10.9.0.0/24 net"},
		{"berth container rm x --force", "berth container rm --force x"},
		{"berth volume import v - --help", "berth volume import --help v -"},
		{"berth tag a b --help=true", "berth tag --help=true a b"},
		// A command line of the container's own is left alone.
		{"berth run --rm busybox ls -l", "berth run --rm busybox ls -l"},
		{"berth exec -it c sh -c x", "berth exec -it c sh -c x"},
		{"berth container create busybox top -b", "berth container create busybox top -b"},
		{"berth bundle busybox dir echo -n hi", "berth bundle busybox dir echo -n hi"},
		{"berth top c -o pid", "berth top c -o pid"},
		// A short flag glued to its value is split, as docker's parser
		// reads it; bool groups and the container's command line stay.
		{"berth stop -t1 a", "berth stop -t 1 a"},
		{"berth stop a -t1", "berth stop -t 1 a"},
		{"berth ps -aq -fname=x", "berth ps -aq -f name=x"},
		{"berth run -p8080:80 -eA=b -it busybox sh -c -eX", "berth run -p 8080:80 -e A=b -it busybox sh -c -eX"},
		{"berth exec -uroot -w/tmp c ls -la", "berth exec -u root -w /tmp c ls -la"},
		{"berth stop -t=1 a", "berth stop -t=1 a"},
		// After "--" everything is an argument; unknown words stay.
		{"berth rm -- -odd -f", "berth rm -- -odd -f"},
		{"berth nosuch a -f", "berth nosuch a -f"},
		{"berth", "berth"},
	} {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	// The caller's slice is not changed.
	in := strings.Fields("berth rm web -f")
	interspersed(app, in)
	if !slices.Equal(in, strings.Fields("berth rm web -f")) {
		t.Errorf("input changed: %q", in)
	}
}

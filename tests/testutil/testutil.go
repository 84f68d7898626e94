// Package testutil holds helpers that tests of several packages share.
package testutil

import (
	"net"
	"testing"
)

// FreePort is a TCP port of 127.0.0.1 that was free a moment ago (bound and
// released, as docker picks one).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Package loop holds the C constructor that is a container monitor's steady
// state: with no client attached and no health check to run, the Go monitor
// re-executes itself into it, and it copies the container's output to the
// log until a client dials or the init exits, then hands back to Go
// (monitor.Resume). Its memory is a C program's, not a Go runtime's. Only
// the berth command imports it.
package loop

// #cgo CFLAGS: -Wall -O2
import "C"

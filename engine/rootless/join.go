package rootless

// join.c's constructor runs in every process of the binary that links this
// package, before the Go runtime starts.

// #cgo CFLAGS: -Wall
import "C"

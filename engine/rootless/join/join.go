// Package join holds the C constructor that moves a rootless berth into its
// user's namespaces before the Go runtime starts (setns(2) of a user or
// mount namespace is refused to a multithreaded process). Only the berth
// command imports it, so that no other binary linking the engine's packages
// (their tests among them) joins anything.
package join

// #cgo CFLAGS: -Wall
import "C"

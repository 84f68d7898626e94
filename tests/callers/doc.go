// Package callers holds end-to-end tests that drive berth-runtime through the
// programs that call OCI runtimes in practice (containerd's runc shim first),
// each run against runc as well to show the test itself is right.
//
// The tests need root and the callers installed; they skip otherwise. They use
// $BERTH_RUNTIME, or bin/berth-runtime from `make build`.
package callers

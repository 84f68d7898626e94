//go:build !amd64 && !arm64

package seccomp

// No ENOSYS filter here: the profile alone decides.
const (
	nativeArch = 0
	x32Bit     = 0
)

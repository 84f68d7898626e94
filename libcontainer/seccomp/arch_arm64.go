package seccomp

import "golang.org/x/sys/unix"

// nativeArch is seccomp_data.arch of this architecture's own syscalls.
const (
	nativeArch = unix.AUDIT_ARCH_AARCH64
	x32Bit     = 0
)

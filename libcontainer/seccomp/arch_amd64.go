package seccomp

import "golang.org/x/sys/unix"

// nativeArch is seccomp_data.arch of this architecture's own syscalls;
// x32Bit marks the x32 ABI's syscall numbers, which the ENOSYS filter
// leaves to the profile.
const (
	nativeArch = unix.AUDIT_ARCH_X86_64
	x32Bit     = 0x40000000
)

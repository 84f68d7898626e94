// Package bundle turns an OCI image's configuration and `docker run`-style
// options into an OCI runtime bundle: config.json with docker's defaults
// (capabilities, masked paths, mounts, seccomp), plus the /etc/hosts,
// /etc/hostname and /etc/resolv.conf files the container sees.
//
//	s, err := bundle.Generate(img, rootfs, opts)
//	err = bundle.AddEtcFiles(dir, s, bundle.EtcOptions{})
//	err = bundle.WriteBundle(dir, s)
//
// docs/bundle.md describes every default and how it compares with docker.
package bundle

// Options are what `docker run` adds to an image's configuration. The zero
// value runs the image as docker would with no flags, except that the
// hostname defaults to "berth" (docker uses the container id's prefix).
type Options struct {
	// Args replaces the image's Cmd when not empty.
	Args []string
	// Entrypoint, when not nil, replaces the image's Entrypoint and drops
	// its Cmd (only Args then follow it); an empty slice clears it.
	Entrypoint *[]string
	// Env entries are set after the image's: KEY=VALUE sets, a bare KEY
	// removes.
	Env []string
	// WorkingDir replaces the image's; it must be absolute.
	WorkingDir string
	// User replaces the image's: "name", "uid", "name:group", "uid:gid"...,
	// resolved in the rootfs's /etc/passwd and /etc/group.
	User string
	// Hostname of the container; with NetworkMode "host", the host's.
	Hostname string
	// Terminal gives the process a pseudo-terminal, and TERM=xterm.
	Terminal bool
	// ReadOnly mounts the rootfs (and the /etc files) read-only.
	ReadOnly bool
	// Privileged gives every capability and device, and drops the masked
	// and read-only paths and, unless SeccompProfile names one, seccomp.
	Privileged bool
	// CapAdd and CapDrop change docker's default set: names with or
	// without CAP_, in any case, or ALL.
	CapAdd, CapDrop []string
	// SeccompProfile is a profile file (see package bundle/seccomp),
	// "unconfined", or "" for the default profile.
	SeccompProfile string
	// NoNewPrivileges sets the process's no_new_privs bit.
	NoNewPrivileges bool
	// Memory limit in bytes; 0 means none.
	Memory int64
	// CPUs is the CPU quota in CPUs (1.5 = 150 ms per 100 ms); 0 means none.
	CPUs float64
	// PidsLimit caps the number of tasks; 0 (or less) means none.
	PidsLimit int64
	// Ulimits are "name=soft:hard" or "name=limit" with docker's names
	// (nofile, nproc, core, ...); a limit is a number, -1 or unlimited.
	Ulimits []string
	// ShmSize of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64
	// Tmpfs mounts, "/path" or "/path:opt,opt" (after nosuid,nodev,noexec).
	Tmpfs []string
	// Binds are "/host:/container" or "/host:/container:opt,opt" with opts
	// ro, rw and a propagation mode (default rprivate).
	Binds []string
	// ImageVolumes says what becomes of the image's Volumes that no Tmpfs
	// or Binds entry covers: "" or "ignore" leaves them in the rootfs,
	// "tmpfs" mounts an empty tmpfs on each.
	ImageVolumes string
	// NetworkMode is "" or "none" (a new network namespace), "host", or
	// "ns:/path" to join an existing network namespace.
	NetworkMode string
	// Labels of the container; they become annotations, after the image's.
	Labels map[string]string
	// Annotations are added last, over everything else.
	Annotations map[string]string
	// StopSignal replaces the image's, as the
	// org.opencontainers.image.stopSignal annotation.
	StopSignal string
	// Init, when set, is a path in the container of an init (tini) that
	// runs the command: "INIT -- COMMAND...", as docker run --init.
	Init string
	// CgroupsPath is linux.cgroupsPath.
	CgroupsPath string
	// Rootless makes the container for a rootless engine, whose containers
	// run as root of the user's namespace: no cgroup filesystem (cgroup v1
	// hierarchies cannot be mounted there, and the user has no cgroup to
	// show) and no ping_group_range (it would name groups not mapped).
	Rootless bool
}

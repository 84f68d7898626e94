// The operations of the C init stage's create path, which the runtime
// computed (rootfs.Plan for the filesystem), executed in order. Each is "KIND\x1fFIELD\x1f...". Targets
// inside the rootfs are resolved with openat2(RESOLVE_IN_ROOT), created
// component by component where missing, and mounted on through
// /proc/self/fd, so a symlink in the image cannot redirect a mount.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "nsexec.h"
#include "cinit.h"

#define PROC_ROOT_INO 1 // the kernel's fixed inode of a procfs root

#define MAX_FIELDS 16

static int rootfd = -1;

// Mounts made writable that `latero` makes read-only, pinned by handle.
static struct late_ro {
	int fd;
	int recursive;
	const char *dest;
} *late;
static int nlate;

static unsigned long long field_num(char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (end == s || *end != '\0')
		fail_plain("bad number %s in plan", s);
	return v;
}

static int split(char *op, char **f)
{
	int n = 0;
	f[n++] = op;
	for (char *c = op; *c; c++) {
		if (*c != '\x1f')
			continue;
		if (n == MAX_FIELDS)
			fail_plain("plan operation with too many fields");
		*c = '\0';
		f[n++] = c + 1;
	}
	return n;
}

static void need(int n, int want, const char *kind)
{
	if (n != want)
		fail_plain("plan operation %s has %d fields, wants %d", kind, n, want);
}

// openat2_retried is openat2, tried again when the kernel gives up on a
// scoped walk because a rename or mount elsewhere raced with it (EAGAIN,
// or EXDEV from its final check): the walk is safe to repeat.
static int openat2_retried(int dirfd, const char *path, struct open_how *how)
{
	int fd = -1;
	for (int i = 0; i < 128; i++) {
		fd = (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
		if (fd >= 0 || (errno != EAGAIN && errno != EXDEV))
			break;
	}
	return fd;
}

static int in_root(const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return openat2_retried(rootfd, path, &how);
}

// copy_path copies path into buf (PATH_MAX bytes), failing rather than
// truncating it.
static char *copy_path(char *buf, const char *fmt, const char *path)
{
	int n = snprintf(buf, PATH_MAX, fmt, path);
	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		berth_fail("path %s", path);
	}
	return buf;
}

// split_parent leaves path's parent directory in buf ("/" for a top-level
// entry) and returns the last component.
static const char *split_parent(char *buf, const char *path)
{
	char *slash = strrchr(copy_path(buf, "%s", path), '/');
	if (slash == NULL)
		fail_plain("path %s is not absolute", path);
	*slash = '\0';
	if (slash == buf)
		strcpy(buf, "/");
	return path + (slash - buf) + 1;
}

static const char *fd_path(int fd)
{
	static char buf[4][32];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "/proc/self/fd/%d", fd);
	return buf[i];
}

// mounted_path is a path to the mount just made on top of handle fd: the
// handle still refers to the covered directory, but its path (as the
// kernel prints it) now resolves to the new mount.
static char *mounted_path(int fd, char *buf)
{
	ssize_t n = readlink(fd_path(fd), buf, PATH_MAX - 1);
	if (n < 0)
		berth_fail("readlink %s", fd_path(fd));
	buf[n] = '\0';
	return buf;
}

// mkdir_all creates dir (absolute, clean) inside the root, component by
// component, each one resolved in the root afresh, and returns its handle.
static int mkdir_all(const char *dir)
{
	char prefix[PATH_MAX];
	size_t len = strlen(dir);
	int fd;

	if (len >= sizeof(prefix))
		fail_plain("path %s too long", dir);
	fd = in_root(dir, O_PATH | O_DIRECTORY);
	if (fd >= 0 || errno != ENOENT)
		goto out;
	for (size_t i = 1; i <= len; i++) {
		if (i < len && dir[i] != '/')
			continue;
		memcpy(prefix, dir, i);
		prefix[i] = '\0';
		fd = in_root(prefix, O_PATH | O_DIRECTORY);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (errno != ENOENT)
			goto out;
		char *slash = strrchr(prefix, '/');
		*slash = '\0';
		int parent = in_root(*prefix ? prefix : "/", O_PATH | O_DIRECTORY);
		if (parent < 0)
			goto out;
		if (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST) {
			close(parent);
			fd = -1;
			goto out;
		}
		close(parent);
	}
	fd = in_root(dir, O_PATH | O_DIRECTORY);
out:
	if (fd < 0)
		berth_fail("create directory %s in rootfs", dir);
	return fd;
}

// target returns a handle to dest inside the root, creating it (a
// directory, or an empty file when is_file) if missing.
static int target(const char *dest, int is_file)
{
	char parent[PATH_MAX];
	int fd = in_root(dest, O_PATH);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		berth_fail("resolve %s in rootfs", dest);
	if (!is_file)
		return mkdir_all(dest);
	const char *name = split_parent(parent, dest);
	int dir = mkdir_all(parent);
	// O_PATH would ignore O_CREAT: create with a plain read-only open.
	fd = openat(dir, name, O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_RDONLY, 0644);
	if (fd < 0)
		berth_fail("create mount point %s", dest);
	close(dir);
	return fd;
}

// remount re-applies flags to a bind mount at path, keeping the flags the
// kernel locks (those of a mount from a more privileged namespace).
static void remount(const char *path, unsigned long flags, const char *dest)
{
	flags |= MS_REMOUNT | MS_BIND;
	if (mount("", path, NULL, flags, NULL) == 0)
		return;
	if (errno == EPERM) {
		struct statfs st;
		if (statfs(path, &st) == 0) {
			unsigned long locked = (unsigned long)st.f_flags &
					       (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
			if (mount("", path, NULL, flags | locked, NULL) == 0)
				return;
		} else {
			errno = EPERM; // the remount's error, not statfs's
		}
	}
	berth_fail("remount %s with flags %#lx", dest, flags);
}

static void set_recursive(const char *dest, unsigned long long set, unsigned long long clr)
{
	struct mount_attr attr = { .attr_set = set, .attr_clr = clr };
	int fd = in_root(dest, O_PATH);
	if (fd < 0)
		berth_fail("open the mount on %s", dest);
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		berth_fail("set recursive attributes on %s", dest);
	close(fd);
}

// op_mount: SRC DEST FSTYPE FLAGS DATA ISFILE REMOUNT RECSET RECCLR PROPS LATE SYSFSBIND
static void op_mount(char **f, int n)
{
	char path[PATH_MAX];
	need(n, 13, "mount");
	const char *src = f[1], *dest = f[2], *fstype = f[3], *data = f[5];
	unsigned long flags = (unsigned long)field_num(f[4]), rflags = (unsigned long)field_num(f[7]);
	int is_file = (int)field_num(f[6]), late_ro = (int)field_num(f[11]);
	unsigned long long recset = field_num(f[8]), recclr = field_num(f[9]);
	int t = target(dest, is_file);

	if (mount(src, fd_path(t), *fstype ? fstype : NULL, flags, *data ? data : NULL) < 0) {
		// A user namespace may mount sysfs only with a network namespace
		// of its own; without one, the host's /sys is bound instead.
		if (!(errno == EPERM && field_num(f[12])) ||
		    mount("/sys", fd_path(t), NULL, MS_BIND | MS_REC, NULL) < 0)
			berth_fail("mount %s (%s) on %s", src, *fstype ? fstype : "bind", dest);
		if (rflags == 0)
			rflags = flags & ~(unsigned long)(MS_BIND | MS_REC);
	}
	if (rflags != 0)
		remount(mounted_path(t, path), rflags, dest);
	if (recset != 0 || recclr != 0)
		set_recursive(dest, recset, recclr);
	// Propagation changes apply to the new mount, reached through the path.
	if (*f[10]) {
		char *save = NULL;
		for (char *p = strtok_r(f[10], ",", &save); p; p = strtok_r(NULL, ",", &save))
			if (mount("", mounted_path(t, path), NULL, (unsigned long)field_num(p), NULL) < 0)
				berth_fail("set propagation of %s", dest);
	}
	close(t);
	if (late_ro) {
		late = realloc(late, (size_t)(nlate + 1) * sizeof(*late));
		if (late == NULL)
			berth_fail("allocate");
		late[nlate].fd = in_root(dest, O_PATH);
		if (late[nlate].fd < 0)
			berth_fail("open the mount on %s", dest);
		late[nlate].recursive = late_ro == 2;
		late[nlate].dest = dest;
		nlate++;
	}
}

static void op_latero(void)
{
	for (int i = 0; i < nlate; i++) {
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
		unsigned flags = AT_EMPTY_PATH | (late[i].recursive ? AT_RECURSIVE : 0);
		if (syscall(SYS_mount_setattr, late[i].fd, "", flags, &attr, sizeof(attr)) < 0)
			berth_fail("make %s read-only", late[i].dest);
		close(late[i].fd);
	}
	free(late);
	late = NULL;
	nlate = 0;
}

// op_mknod: DEST TYPE PERM MAJOR MINOR UID GID; a node the image or a
// mount already has is replaced.
static void op_mknod(char **f, int n)
{
	char parent[PATH_MAX];
	need(n, 8, "mknod");
	const char *dest = f[1];
	mode_t perm = (mode_t)field_num(f[3]);
	const char *name = split_parent(parent, dest);
	int dir = mkdir_all(parent);
	if (unlinkat(dir, name, 0) < 0 && errno != ENOENT)
		berth_fail("create device %s", dest);
	if (mknodat(dir, name, (mode_t)field_num(f[2]) | perm,
		    makedev((unsigned)field_num(f[4]), (unsigned)field_num(f[5]))) < 0 ||
	    fchownat(dir, name, (uid_t)field_num(f[6]), (gid_t)field_num(f[7]), AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dir, name, perm, 0) < 0) // mknod is subject to the umask
		berth_fail("create device %s", dest);
	close(dir);
}

// op_symlink: DIR NAME TARGET, an existing entry left as it is.
static void op_symlink(char **f, int n)
{
	need(n, 4, "symlink");
	int dir = mkdir_all(f[1]);
	if (symlinkat(f[3], dir, f[2]) < 0 && errno != EEXIST)
		berth_fail("symlink %s/%s -> %s", f[1], f[2], f[3]);
	close(dir);
}

static void op_root(char **f, int n)
{
	need(n, 2, "root");
	// pivot_root needs the new root to be a mount point under a
	// non-shared parent, and a read-only root a mount of its own.
	if (mount(f[1], f[1], NULL, MS_BIND | MS_REC, NULL) < 0)
		berth_fail("bind mount rootfs %s", f[1]);
	rootfd = open(f[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		berth_fail("open rootfs %s", f[1]);
}

static void op_pivot(char **f, int n)
{
	need(n, 3, "pivot");
	const char *rootfs = f[1];
	if (strcmp(f[2], "chroot") == 0) {
		// In the caller's mount namespace only chroot is harmless.
		if (chroot(rootfs) < 0)
			berth_fail("chroot %s", rootfs);
	} else if (strcmp(f[2], "move") == 0) {
		if (chdir(rootfs) < 0)
			berth_fail("chdir %s", rootfs);
		if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			berth_fail("move rootfs to /");
		if (chroot(".") < 0)
			berth_fail("chroot");
	} else {
		int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (oldroot < 0)
			berth_fail("open old root");
		if (chdir(rootfs) < 0)
			berth_fail("chdir %s", rootfs);
		// Stacking the old root under the new one needs no directory for it.
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			berth_fail("pivot_root to %s", rootfs);
		if (fchdir(oldroot) < 0)
			berth_fail("fchdir old root");
		// Keep the unmount from propagating to the host.
		if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			berth_fail("make old root a slave");
		if (umount2(".", MNT_DETACH) < 0)
			berth_fail("detach old root");
		close(oldroot);
	}
	if (chdir("/") < 0)
		berth_fail("chdir /");
	close(rootfd);
	rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		berth_fail("open /");
}

// existing opens path in the root, or returns -1 if it does not exist.
static int existing(const char *path, const char *what)
{
	int fd = in_root(path, O_PATH);
	if (fd < 0 && errno != ENOENT)
		berth_fail("resolve %s %s", what, path);
	return fd;
}

static void op_readonly(char **f, int n)
{
	char path[PATH_MAX];
	need(n, 2, "readonly");
	int fd = existing(f[1], "read-only path");
	if (fd < 0)
		return;
	if (mount(fd_path(fd), fd_path(fd), NULL, MS_BIND | MS_REC, NULL) < 0)
		berth_fail("bind read-only path %s", f[1]);
	remount(mounted_path(fd, path), MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, f[1]);
	close(fd);
}

// verified_null opens the container's /dev/null and checks that it is the
// null device, so that nothing else can ever cover a masked path.
static int verified_null(void)
{
	static int null = -1;
	struct stat st;
	if (null >= 0)
		return null;
	null = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (null < 0)
		berth_fail("open /dev/null for masking");
	if (fstat(null, &st) < 0)
		berth_fail("stat /dev/null");
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		fail_plain("/dev/null in the container is not the null device (1:3); refusing to mask paths with it");
	return null;
}

static void op_mask(char **f, int n)
{
	char parent[PATH_MAX];
	struct stat st;
	need(n, 2, "mask");
	int fd = existing(f[1], "masked path");
	if (fd < 0)
		return;
	// A symlink (/proc/mounts is one) would mask what it points to.
	const char *name = split_parent(parent, f[1]);
	int dir = in_root(parent, O_PATH | O_DIRECTORY);
	if (dir < 0 || fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		berth_fail("resolve masked path %s", f[1]);
	close(dir);
	if (S_ISLNK(st.st_mode))
		fail_plain("masked path %s is a symlink: refusing to mask what it points to", f[1]);
	if (fstat(fd, &st) < 0)
		berth_fail("stat masked path %s", f[1]);
	if (S_ISDIR(st.st_mode) ? mount("tmpfs", fd_path(fd), "tmpfs", MS_RDONLY, "size=0k")
				: mount(fd_path(verified_null()), fd_path(fd), NULL, MS_BIND, NULL))
		berth_fail("mask %s", f[1]);
	close(fd);
}

static void op_rootro(void)
{
	if (mount("", "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0)
		return;
	struct statfs st;
	if (statfs("/", &st) == 0 &&
	    mount("", "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | ((unsigned long)st.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)), NULL) == 0)
		return;
	berth_fail("make root read-only");
}

// private_proc returns a procfs mount of our own, not attached anywhere;
// where the kernel refuses a new one (a user namespace in a pid namespace
// it does not own), a detached copy of the container's /proc mount alone,
// without the mounts on it (a read-only /proc/sys), checked to be a
// procfs root.
static int private_proc(void)
{
	int proc = -1;
	int ctx = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
	if (ctx >= 0 && syscall(SYS_fsconfig, ctx, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		proc = (int)syscall(SYS_fsmount, ctx, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (ctx >= 0)
		close(ctx);
	if (proc >= 0)
		return proc;
	struct statfs sf;
	struct stat st;
	int mnt = in_root("/proc", O_PATH | O_DIRECTORY);
	if (mnt >= 0) {
		unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH;
		proc = (int)syscall(SYS_open_tree, mnt, "", flags);
		// A mount with locked mounts on it (the host's, in a user
		// namespace) is copied only with them; RESOLVE_NO_XDEV then
		// refuses a key such a mount covers.
		if (proc < 0 && errno == EINVAL)
			proc = (int)syscall(SYS_open_tree, mnt, "", flags | AT_RECURSIVE);
		close(mnt);
	}
	if (proc < 0 || fstatfs(proc, &sf) < 0 || fstat(proc, &st) < 0)
		berth_fail("open procfs for sysctls");
	if (sf.f_type != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO)
		fail_plain("open procfs for sysctls: /proc in the container is not a procfs root");
	return proc;
}

// op_sysctl: KEY-PATH VALUE, written through a procfs of our own that no
// mount of the container's can cover, without following symlinks.
static void op_sysctl(char **f, int n)
{
	static int proc = -1;
	need(n, 3, "sysctl");
	if (proc < 0)
		proc = private_proc();
	struct open_how how = { .flags = O_WRONLY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH };
	char path[PATH_MAX];
	copy_path(path, "sys/%s", f[1]);
	int fd = openat2_retried(proc, path, &how);
	if (fd < 0)
		berth_fail("sysctl %s", f[1]);
	if (write(fd, f[2], strlen(f[2])) < 0)
		berth_fail("set sysctl %s=%s", f[1], f[2]);
	close(fd);
}

void berth_cinit_bind_console(const char *slave)
{
	int t = target("/dev/console", 1);
	if (mount(slave, fd_path(t), NULL, MS_BIND, NULL) < 0)
		berth_fail("bind %s on /dev/console", slave);
	close(t);
}

void berth_cinit_rootfs(struct plan *p)
{
	char *f[MAX_FIELDS];
	for (int i = 0; i < p->nops; i++) {
		int n = split(p->ops[i], f);
		const char *k = f[0];
		if (strcmp(k, "cgroupns") == 0) {
			if (unshare(CLONE_NEWCGROUP) < 0)
				berth_fail("unshare cgroup namespace");
		} else if (strcmp(k, "prop") == 0) {
			need(n, 3, k);
			if (mount("", f[1], NULL, (unsigned long)field_num(f[2]), NULL) < 0)
				berth_fail("set the propagation of %s", f[1]);
		} else if (strcmp(k, "root") == 0) {
			op_root(f, n);
		} else if (strcmp(k, "mount") == 0) {
			op_mount(f, n);
		} else if (strcmp(k, "remount") == 0) {
			char path[PATH_MAX];
			need(n, 3, k);
			int t = target(f[1], 0);
			remount(mounted_path(t, path), (unsigned long)field_num(f[2]), f[1]);
			close(t);
		} else if (strcmp(k, "mkdir") == 0) {
			need(n, 2, k);
			close(mkdir_all(f[1]));
		} else if (strcmp(k, "mknod") == 0) {
			op_mknod(f, n);
		} else if (strcmp(k, "symlink") == 0) {
			op_symlink(f, n);
		} else if (strcmp(k, "hooks") == 0) {
			// The runtime runs the prestart and createRuntime hooks now.
			berth_send(BERTH_MSG_HOOKS, NULL, 0);
			free(berth_recv(BERTH_MSG_HOOKS_DONE, NULL));
		} else if (strcmp(k, "pivot") == 0) {
			op_pivot(f, n);
		} else if (strcmp(k, "console") == 0) {
			berth_cinit_console(p, 1);
		} else if (strcmp(k, "latero") == 0) {
			op_latero();
		} else if (strcmp(k, "readonly") == 0) {
			op_readonly(f, n);
		} else if (strcmp(k, "nullcheck") == 0) {
			verified_null();
		} else if (strcmp(k, "mask") == 0) {
			op_mask(f, n);
		} else if (strcmp(k, "rootro") == 0) {
			op_rootro();
		} else if (strcmp(k, "sysctl") == 0) {
			op_sysctl(f, n);
		} else if (strcmp(k, "hostname") == 0) {
			need(n, 2, k);
			if (sethostname(f[1], strlen(f[1])) < 0)
				berth_fail("set hostname \"%s\"", f[1]);
		} else if (strcmp(k, "domainname") == 0) {
			need(n, 2, k);
			if (setdomainname(f[1], strlen(f[1])) < 0)
				berth_fail("set domainname \"%s\"", f[1]);
		} else if (strcmp(k, "keyring") == 0) {
			// A session keyring of its own keeps the container out of the host's keys.
			if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "_ses") < 0 && errno != ENOSYS)
				berth_fail("join session keyring");
		} else {
			fail_plain("unknown plan operation %s", k);
		}
	}
}

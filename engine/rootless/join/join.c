// The join of a rootless berth into its user's namespaces. setns(2) of a user
// or mount namespace is refused to a multithreaded process, so this runs as a
// constructor, before the Go runtime starts its threads.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// berth_pause_file writes the path of the pause process's pid file into buf,
// as rootless.PauseFile does in Go: $XDG_RUNTIME_DIR/berth/pause.pid, or
// ${TMPDIR:-/tmp}/berth-UID/berth/pause.pid.
static int berth_pause_file(char *buf, size_t len, uid_t uid)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	int n;
	if (run != NULL && run[0] != '\0') {
		n = snprintf(buf, len, "%s/berth/pause.pid", run);
	} else {
		const char *tmp = getenv("TMPDIR");
		if (tmp == NULL || tmp[0] == '\0')
			tmp = "/tmp";
		n = snprintf(buf, len, "%s/berth-%u/berth/pause.pid", tmp, (unsigned)uid);
	}
	return n > 0 && (size_t)n < len ? 0 : -1;
}

// berth_read_pid reads the pid file, which must belong to uid.
static pid_t berth_read_pid(const char *path, uid_t uid)
{
	char buf[32];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_uid != uid) {
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	long pid = strtol(buf, NULL, 10);
	return pid > 0 && pid < INT_MAX ? (pid_t)pid : -1;
}

// berth_open_ns opens a namespace of pid and checks that it is not the
// caller's own (a reused pid of an ordinary process of the user's).
static int berth_open_ns(pid_t pid, const char *ns)
{
	char path[64], self[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	snprintf(self, sizeof(self), "/proc/self/ns/%s", ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &a) < 0 || stat(self, &b) < 0 || (a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
		close(fd);
		return -1;
	}
	return fd;
}

// berth_is_pause checks that pid is a pause process (rootless.PauseCommand),
// not another process that got the pid of one that died.
static int berth_is_pause(pid_t pid)
{
	static const char want[] = "berth-rootless-pause";
	char path[64], buf[sizeof(want) + 1];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	// The command line is the name and its NUL, nothing more.
	return n == (ssize_t)sizeof(want) && memcmp(buf, want, sizeof(want)) == 0;
}

__attribute__((constructor)) static void berth_rootless_join(void)
{
	char path[PATH_MAX], cwd[PATH_MAX];
	uid_t uid = geteuid();
	// Root needs no namespace; a child that containers/storage's unshare
	// constructor is setting up is making the namespace itself.
	if (uid == 0 || getenv("_Containers-unshare") != NULL)
		return;
	if (berth_pause_file(path, sizeof(path), uid) < 0)
		return;
	pid_t pid = berth_read_pid(path, uid);
	if (pid < 0 || !berth_is_pause(pid))
		return;
	int userfd = berth_open_ns(pid, "user");
	if (userfd < 0)
		return;
	int mntfd = berth_open_ns(pid, "mnt");
	if (mntfd < 0) {
		close(userfd);
		return;
	}
	// setns of a mount namespace moves the working directory to its root;
	// the caller's relative paths must keep working.
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		cwd[0] = '\0';
	if (setns(userfd, CLONE_NEWUSER) < 0) {
		// Not joined: Go sees a non-zero euid and says what is wrong.
		close(userfd);
		close(mntfd);
		return;
	}
	if (setns(mntfd, CLONE_NEWNS) < 0) {
		// Half joined is no state to go on in.
		fprintf(stderr, "Error: join the mount namespace of berth's pause process %d: %s\n", (int)pid, strerror(errno));
		_exit(125);
	}
	// A directory mounted after the pause process started may not be
	// there: relative paths then start at /, as podman has it.
	if (cwd[0] != '\0' && chdir(cwd) < 0)
		fprintf(stderr, "Warning: cannot change to %s in the user's namespaces: %s\n", cwd, strerror(errno));
	close(userfd);
	close(mntfd);
}

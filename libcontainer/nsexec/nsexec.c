// The namespace stage of the container's init and of exec'd processes.
//
// It runs as a constructor, before the Go runtime starts its threads, because a
// threaded process cannot join a mount or user namespace. When the environment
// names a sync socket, it
//   1. re-executes itself from a read-only bind mount so that a container can
//      never open the runtime binary for writing through /proc/<pid>/exe,
//   2. joins the namespaces the parent names by path and unshares new ones,
//      asking the parent to write uid/gid maps for a new user namespace,
//   3. forks the final process (with CLONE_PARENT, so it is the runtime's child
//      and lands in a new pid or time namespace) and reports its pid,
// after which the final process returns into Go to set up the container.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "nsexec.h"

int berth_syncfd = -1;
int berth_after_ready;
struct rlimit berth_inherited_nofile;

// xfer reads or writes all of buf; the sync socket failing means the
// runtime is gone, and so is any reason to go on.
static void xfer(int fd, void *buf, size_t len, int writing)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(BERTH_EXIT_SYNC);
		p += n;
		len -= (size_t)n;
	}
}

void berth_send(char type, const void *payload, uint32_t len)
{
	char hdr[5];
	hdr[0] = type;
	memcpy(hdr + 1, &len, 4);
	xfer(berth_syncfd, hdr, 5, 1);
	if (len > 0)
		xfer(berth_syncfd, (void *)payload, len, 1);
}

// fail reports an error to the parent, which turns it into the command's
// error; once the parent has stopped listening (the C init stage after its
// ready message), to stderr, where the caller of start sees it.
void berth_fail(const char *fmt, ...)
{
	char msg[1024];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 64, fmt, ap);
	va_end(ap);
	// vsnprintf returns the untruncated length: a long path must not
	// push the errno text past the buffer.
	if (n < 0) {
		n = 0;
		msg[0] = '\0';
	}
	else if ((size_t)n >= sizeof(msg) - 64)
		n = (int)(sizeof(msg) - 65);
	if (saved != 0) {
		// Go's words for errno (lower case), which callers match.
		int m = snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(saved));
		if (m > 2 && msg[n + 2] >= 'A' && msg[n + 2] <= 'Z')
			msg[n + 2] = (char)(msg[n + 2] - 'A' + 'a');
	}
	if (berth_after_ready)
		dprintf(2, "berth-runtime init: %s\n", msg);
	else
		berth_send(BERTH_MSG_ERROR, msg, (uint32_t)strlen(msg));
	_exit(BERTH_EXIT_FAIL);
}

// berth_recv reads one message of type want (NUL-terminated, its length in
// *len if len is not NULL); any other message means the runtime is confused.
char *berth_recv(char want, uint32_t *len)
{
	char hdr[5];
	uint32_t n;
	char *data;
	xfer(berth_syncfd, hdr, 5, 0);
	memcpy(&n, hdr + 1, 4);
	if (hdr[0] != want || n > (16 << 20))
		_exit(BERTH_EXIT_SYNC);
	data = malloc(n + 1);
	if (data == NULL)
		berth_fail("allocate message");
	xfer(berth_syncfd, data, n, 0);
	data[n] = '\0';
	if (len != NULL)
		*len = n;
	return data;
}

static void expect_msg(char want)
{
	uint32_t len;
	free(berth_recv(want, &len));
	if (len != 0)
		_exit(BERTH_EXIT_SYNC);
}

struct bootstrap {
	int clone_flags;
	int join_count;
	int join_types[16];
	char *join_paths[16];
	int want_maps;
	char *timens_offsets;
	int plan; // the final process runs a plan in C (cinit.c) rather than the Go init
};

// parse_bootstrap reads the parent's NUL-separated key=value list.
static void parse_bootstrap(struct bootstrap *b)
{
	uint32_t len;
	char *data, *p, *end;

	data = berth_recv(BERTH_MSG_BOOTSTRAP, &len);
	memset(b, 0, sizeof(*b));
	for (p = data, end = data + len; p < end; p += strlen(p) + 1) {
		if (strncmp(p, "clone=", 6) == 0) {
			b->clone_flags = atoi(p + 6);
		} else if (strncmp(p, "join=", 5) == 0) {
			char *colon = strchr(p + 5, ':');
			if (colon == NULL || b->join_count >= 16)
				berth_fail("bad bootstrap entry %s", p);
			*colon = '\0';
			b->join_types[b->join_count] = atoi(p + 5);
			b->join_paths[b->join_count] = colon + 1;
			b->join_count++;
		} else if (strcmp(p, "maps=1") == 0) {
			b->want_maps = 1;
		} else if (strncmp(p, "timens=", 7) == 0) {
			b->timens_offsets = p + 7;
		} else if (strcmp(p, "plan=1") == 0) {
			b->plan = 1;
		}
	}
}

static const char *ns_name(int type)
{
	switch (type) {
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWNS: return "mount";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWNET: return "network";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWTIME: return "time";
	}
	return "unknown";
}

static void join_namespaces(struct bootstrap *b)
{
	int fds[16];
	int i, pass;

	// Open every path first: joining the mount namespace changes what paths mean.
	for (i = 0; i < b->join_count; i++) {
		fds[i] = open(b->join_paths[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			berth_fail("open %s namespace %s", ns_name(b->join_types[i]), b->join_paths[i]);
	}
	// The user namespace goes first: it grants the rights to join the others.
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < b->join_count; i++) {
			int is_user = b->join_types[i] == CLONE_NEWUSER;
			if (is_user != (pass == 0))
				continue;
			if (setns(fds[i], b->join_types[i]) < 0)
				berth_fail("join %s namespace %s", ns_name(b->join_types[i]), b->join_paths[i]);
			close(fds[i]);
		}
	}
}

void berth_nsexec(void)
{
	const char *env = getenv("_BERTH_SYNCFD");
	struct bootstrap b;
	pid_t pid;

	if (env == NULL)
		return;
	berth_syncfd = atoi(env);
	// Go raises the soft limit when its runtime starts; the program the
	// init executes gets the limit the runtime was started with.
	if (getrlimit(RLIMIT_NOFILE, &berth_inherited_nofile) < 0)
		berth_fail("getrlimit RLIMIT_NOFILE");
	if (getenv("_BERTH_STAGE") != NULL)
		return; // the final process, back from the fork: Go takes over

	// Until execve, this process must not be reachable through /proc by the
	// container's processes (ptrace checks follow dumpability).
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		berth_fail("prctl PR_SET_DUMPABLE");
	parse_bootstrap(&b);
	join_namespaces(&b);

	if (b.clone_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			berth_fail("unshare user namespace");
		if (b.want_maps) {
			// An unprivileged parent may write the maps only of a dumpable process.
			if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
				berth_fail("prctl PR_SET_DUMPABLE");
			berth_send(BERTH_MSG_WANT_MAPS, NULL, 0);
			expect_msg(BERTH_MSG_MAPS_DONE);
			if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
				berth_fail("prctl PR_SET_DUMPABLE");
		}
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			berth_fail("become root in the new user namespace");
	}
	if (unshare(b.clone_flags & ~CLONE_NEWUSER) < 0)
		berth_fail("unshare namespaces (flags %#x)", b.clone_flags & ~CLONE_NEWUSER);
	if (b.timens_offsets != NULL) {
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			berth_fail("open /proc/self/timens_offsets");
		if (write(fd, b.timens_offsets, strlen(b.timens_offsets)) < 0)
			berth_fail("write time namespace offsets");
		close(fd);
	}

	if (setenv("_BERTH_STAGE", "init", 1) < 0)
		berth_fail("setenv");
	// CLONE_PARENT makes the final process a child of the runtime, which can
	// then wait for it; being forked, it is the first process of a new pid ns.
	// The plan may be waiting on the socket already: the final process
	// must not answer before this process has reported its pid, so it
	// waits for the end of a pipe that this process holds until it exits.
	int reported[2] = { -1, -1 };
	if (b.plan && pipe2(reported, O_CLOEXEC) < 0)
		berth_fail("pipe");
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		berth_fail("clone the container process");
	if (pid == 0) {
		if (b.plan) {
			char c;
			close(reported[1]);
			while (read(reported[0], &c, 1) < 0 && errno == EINTR)
				;
			close(reported[0]);
			berth_cinit(); // never returns
		}
		return;
	}
	{
		int32_t p = pid;
		berth_send(BERTH_MSG_PID, &p, sizeof(p));
	}
	_exit(0);
}

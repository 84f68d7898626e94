// The C init stage: what the Go init does after the namespaces exist, done
// in the final process before any Go runtime starts in it, so that a
// container start pays for one Go start (the runtime's) instead of two.
//
// The runtime computes everything in Go (plan.go in libcontainer) and sends
// a plan: NUL-separated key=value entries, in order. This file only
// executes it: no spec parsing, no policy. Every path inside the rootfs is
// resolved with openat2(RESOLVE_IN_ROOT) and mounted on through its
// descriptor, as the Go rootfs package does with securejoin.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "nsexec.h"
#include "cinit.h"

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (p == NULL)
		berth_fail("allocate plan");
	return p;
}

static unsigned long long num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || end == s)
		fail_plain("bad plan entry %s=%s", what, s);
	return v;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

// parse_bpf reads FLAGS:OPTIONAL:HEX into p->bpf.
static void parse_bpf(struct plan *p, char *v)
{
	struct plan_bpf *b;
	char *hex;
	size_t n, i;

	if (p->nbpf >= PLAN_MAX_BPF)
		fail_plain("too many seccomp programs in plan");
	b = &p->bpf[p->nbpf++];
	b->flags = (unsigned)strtoul(v, &v, 10);
	if (*v++ != ':')
		fail_plain("bad seccomp program in plan");
	b->optional = (int)strtol(v, &v, 10);
	if (*v++ != ':')
		fail_plain("bad seccomp program in plan");
	hex = v;
	n = strlen(hex) / 2;
	if (n == 0 || n % sizeof(struct sock_filter) != 0 || n / sizeof(struct sock_filter) > BPF_MAXINSNS)
		fail_plain("bad seccomp program length %zu in plan", n);
	b->code = xcalloc(1, n);
	for (i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			fail_plain("bad seccomp program in plan");
		((unsigned char *)b->code)[i] = (unsigned char)(hi << 4 | lo);
	}
	b->len = (unsigned short)(n / sizeof(struct sock_filter));
}

static void parse_rlimit(struct plan *p, char *v)
{
	struct plan_rlimit *r;
	char *colon;

	if (p->nrlimits >= PLAN_MAX_RLIMITS)
		fail_plain("too many rlimits in plan");
	r = &p->rlimits[p->nrlimits++];
	colon = strchr(v, ':');
	if (colon == NULL)
		fail_plain("bad rlimit %s in plan", v);
	*colon = '\0';
	r->name = v;
	v = colon + 1;
	r->resource = (int)strtol(v, &v, 10);
	if (*v++ != ':')
		fail_plain("bad rlimit %s in plan", r->name);
	r->soft = strtoull(v, &v, 10);
	if (*v++ != ':')
		fail_plain("bad rlimit %s in plan", r->name);
	r->hard = strtoull(v, &v, 10);
}

static void parse_groups(struct plan *p, char *v)
{
	char *tok, *save = NULL;
	int n = 1;
	for (char *c = v; *c; c++)
		n += *c == ',';
	p->groups = xcalloc((size_t)n, sizeof(gid_t));
	for (tok = strtok_r(v, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
		p->groups[p->ngroups++] = (gid_t)num(tok, "groups");
}

// parse_console reads FD:ROWS:COLS.
static void parse_console(struct plan *p, char *v)
{
	p->console = (int)strtol(v, &v, 10);
	if (*v++ != ':')
		fail_plain("bad console entry in plan");
	p->rows = (unsigned short)strtoul(v, &v, 10);
	if (*v++ != ':')
		fail_plain("bad console entry in plan");
	p->cols = (unsigned short)strtoul(v, &v, 10);
}

// parse_plan splits the plan message. Entries it does not know are an
// error: a plan the C stage cannot execute fully must never half-run.
static void parse_plan(struct plan *p, char *data, uint32_t len)
{
	char *end = data + len, *e, *next;
	int nargs = 0, nenv = 0, nops = 0;

	for (e = data; e < end; e += strlen(e) + 1) {
		nargs += strncmp(e, "arg=", 4) == 0;
		nenv += strncmp(e, "env=", 4) == 0;
		nops++;
	}
	memset(p, 0, sizeof(*p));
	p->argv = xcalloc((size_t)nargs + 1, sizeof(char *));
	p->envp = xcalloc((size_t)nenv + 2, sizeof(char *));
	p->ops = xcalloc((size_t)nops, sizeof(char *));
	p->umask = 022;
	p->fifo = -1;
	p->console = -1;
	p->oom = NULL;
	for (e = data; e < end; e = next) {
		char *eq = strchr(e, '='), *v;
		next = e + strlen(e) + 1;
		if (eq == NULL)
			fail_plain("bad plan entry %s", e);
		*eq = '\0';
		v = eq + 1;
		if (strcmp(e, "arg") == 0)
			p->argv[p->argc++] = v;
		else if (strcmp(e, "env") == 0)
			p->envp[p->envc++] = v;
		else if (strcmp(e, "cwd") == 0)
			p->cwd = v;
		else if (strcmp(e, "uid") == 0)
			p->uid = (uid_t)num(v, e);
		else if (strcmp(e, "gid") == 0)
			p->gid = (gid_t)num(v, e);
		else if (strcmp(e, "groups") == 0)
			parse_groups(p, v);
		else if (strcmp(e, "umask") == 0)
			p->umask = (mode_t)num(v, e);
		else if (strcmp(e, "nnp") == 0)
			p->nnp = 1;
		else if (strcmp(e, "rlimit") == 0)
			parse_rlimit(p, v);
		else if (strcmp(e, "oom") == 0)
			p->oom = v;
		else if (strcmp(e, "lastcap") == 0)
			p->lastcap = (int)num(v, e);
		else if (strcmp(e, "capb") == 0)
			p->caps[CAPS_BOUNDING] = num(v, e);
		else if (strcmp(e, "cape") == 0)
			p->caps[CAPS_EFFECTIVE] = num(v, e);
		else if (strcmp(e, "capp") == 0)
			p->caps[CAPS_PERMITTED] = num(v, e);
		else if (strcmp(e, "capi") == 0)
			p->caps[CAPS_INHERITABLE] = num(v, e);
		else if (strcmp(e, "capa") == 0)
			p->caps[CAPS_AMBIENT] = num(v, e);
		else if (strcmp(e, "bpf") == 0)
			parse_bpf(p, v);
		else if (strcmp(e, "preserve") == 0)
			p->preserve = (int)num(v, e);
		else if (strcmp(e, "waitgo") == 0)
			p->waitgo = 1;
		else if (strcmp(e, "fifo") == 0)
			p->fifo = (int)num(v, e);
		else if (strcmp(e, "console") == 0)
			parse_console(p, v);
		else if (strcmp(e, "op") == 0)
			p->ops[p->nops++] = v;
		else
			fail_plain("unknown plan entry %s", e);
	}
	if (p->argc == 0)
		fail_plain("plan without arguments");
}

// is_executable checks path as the Go init's lookPath does, with its words.
static const char *not_executable(const char *path)
{
	static char buf[PATH_MAX + 64];
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return "no such file or directory";
		int saved = errno;
		int n = snprintf(buf, sizeof(buf), "stat %s: ", path);
		if (n < 0 || (size_t)n >= sizeof(buf) - 64) // room for the errno's words
			n = (int)sizeof(buf) - 64;
		snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", strerror(saved));
		if (buf[n] >= 'A' && buf[n] <= 'Z') // Go's words are lower case
			buf[n] = (char)(buf[n] - 'A' + 'a');
		return buf;
	}
	if (S_ISDIR(st.st_mode))
		return "is a directory";
	if ((st.st_mode & 0111) == 0)
		return "permission denied";
	return NULL;
}

// look_path finds argv[0] the way execvp would; the errors are the Go
// init's, which callers match ("executable file not found in $PATH").
static char *look_path(struct plan *p)
{
	const char *name = p->argv[0], *why;
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *copy, *dir, *rest;
	int i;

	if (strchr(name, '/') != NULL) {
		if ((why = not_executable(name)) != NULL)
			fail_plain("exec: \"%s\": %s", name, why);
		return (char *)name;
	}
	for (i = 0; i < p->envc; i++)
		if (strncmp(p->envp[i], "PATH=", 5) == 0)
			path = p->envp[i] + 5;
	copy = strdup(path);
	if (copy == NULL)
		berth_fail("allocate PATH");
	// As Go's filepath.SplitList: an empty PATH has no directories, an
	// empty element is the current directory (the name alone). Unlike
	// filepath.Join the candidate is not cleaned lexically beyond a
	// directory's trailing slashes: "a/../b" is left to the kernel.
	for (rest = *copy ? copy : NULL; (dir = strsep(&rest, ":")) != NULL;) {
		char *cand;
		size_t len = strlen(dir);
		while (len > 1 && dir[len - 1] == '/')
			dir[--len] = '\0';
		int r = !*dir || strcmp(dir, ".") == 0 ? asprintf(&cand, "%s", name)
			: asprintf(&cand, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
		if (r < 0)
			berth_fail("allocate path");
		if (not_executable(cand) == NULL)
			return cand;
		free(cand);
	}
	fail_plain("exec: \"%s\": executable file not found in $PATH", name);
}

// prepare_process does what may fail for reasons of configuration while
// the runtime still listens: hard limits are raised now, while the
// capabilities allow it (the final values are set just before execve),
// and the OOM score is set.
static void prepare_process(struct plan *p)
{
	for (int i = 0; i < p->nrlimits; i++) {
		struct plan_rlimit *r = &p->rlimits[i];
		struct rlimit cur;
		if (getrlimit(r->resource, &cur) < 0)
			berth_fail("get %s", r->name);
		if (r->hard <= cur.rlim_max)
			continue;
		struct rlimit raised = { .rlim_cur = cur.rlim_cur, .rlim_max = r->hard };
		if (setrlimit(r->resource, &raised) < 0)
			berth_fail("set %s to soft %llu hard %llu (current hard limit %llu)", r->name,
				   (unsigned long long)r->soft, (unsigned long long)r->hard,
				   (unsigned long long)cur.rlim_max);
	}
	if (p->oom != NULL) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, p->oom, strlen(p->oom)) < 0)
			berth_fail("set oom_score_adj %s", p->oom);
		close(fd);
	}
}

static void load_bpf(struct plan_bpf *b)
{
	struct sock_fprog prog = { .len = b->len, .filter = b->code };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, b->flags, &prog) == 0 || b->optional)
		return;
	if (errno == EACCES)
		berth_fail("load seccomp filter (the thread needs no_new_privs or CAP_SYS_ADMIN)");
	berth_fail("load seccomp filter");
}

static void load_seccomp(struct plan *p)
{
	for (int i = 0; i < p->nbpf; i++)
		load_bpf(&p->bpf[i]);
	p->nbpf = 0;
}

static int enter_cwd(struct plan *p, int report)
{
	char wd[PATH_MAX];
	if (chdir(p->cwd) < 0) {
		if (report)
			berth_fail("chdir to cwd \"%s\" set in config.json", p->cwd);
		return -1;
	}
	// The raw syscall, as Go's Getwd: a cwd outside the root shows as
	// "(unreachable)...", which glibc's getcwd would hide.
	if (syscall(SYS_getcwd, wd, sizeof(wd)) < 0 || wd[0] != '/')
		fail_plain("cwd \"%s\" is outside the container root", p->cwd);
	return 0;
}

static void apply_caps(struct plan *p)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(p->caps[CAPS_EFFECTIVE] >> (32 * i));
		data[i].permitted = (uint32_t)(p->caps[CAPS_PERMITTED] >> (32 * i));
		data[i].inheritable = (uint32_t)(p->caps[CAPS_INHERITABLE] >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		berth_fail("set effective, permitted and inheritable capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		berth_fail("clear ambient capabilities");
	for (int c = 0; c <= p->lastcap && c < 64; c++)
		if ((p->caps[CAPS_AMBIENT] >> c & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			berth_fail("raise ambient capability %d", c);
}

static void drop_bounding(struct plan *p)
{
	for (int c = 0; c <= p->lastcap && c < 64; c++) {
		if (p->caps[CAPS_BOUNDING] >> c & 1)
			continue;
		int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (r < 0)
			berth_fail("read bounding capability %d", c);
		if (r == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			berth_fail("drop bounding capability %d", c);
	}
}

static void set_user(struct plan *p)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		berth_fail("set keep-caps");
	if (setgroups((size_t)p->ngroups, p->groups) < 0 && !(errno == EPERM && p->ngroups == 0))
		berth_fail("setgroups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		berth_fail("setgid %u", (unsigned)p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		berth_fail("setuid %u", (unsigned)p->uid);
}

// exec_process switches to the process's user, capabilities and seccomp
// filter and executes it, in the Go init's order (execProcess). Only the
// preserved descriptors stay open.
static void exec_process(struct plan *p, const char *path)
{
	int cwd_failed;

	if (syscall(SYS_close_range, 3 + p->preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		berth_fail("mark descriptors close-on-exec");
	if (p->nnp) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			berth_fail("set no_new_privs");
	} else {
		// Without no_new_privs the filter needs CAP_SYS_ADMIN: load it now.
		load_seccomp(p);
	}
	drop_bounding(p);
	// As runc: the terminal belongs to the process's user (its group stays
	// devpts' tty group). A uid the user namespace does not map (EINVAL)
	// or no CAP_CHOWN (EPERM) leaves it as it is.
	if (p->console >= 0 && fchown(0, p->uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM)
		berth_fail("chown the terminal to uid %u", (unsigned)p->uid);
	cwd_failed = enter_cwd(p, 0) < 0;
	set_user(p);
	apply_caps(p);
	umask(p->umask);
	if (cwd_failed)
		enter_cwd(p, 1);
	load_seccomp(p);
	for (int i = 0; i < p->nrlimits; i++) {
		struct plan_rlimit *r = &p->rlimits[i];
		struct rlimit lim = { .rlim_cur = r->soft, .rlim_max = r->hard };
		if (setrlimit(r->resource, &lim) < 0)
			berth_fail("set %s to soft %llu hard %llu", r->name, (unsigned long long)r->soft,
				   (unsigned long long)r->hard);
	}
	execve(path, p->argv, p->envp);
	berth_fail("exec %s", path);
}

static void add_home(struct plan *p)
{
	for (int i = 0; i < p->envc; i++)
		if (strncmp(p->envp[i], "HOME=", 5) == 0)
			return;
	p->envp[p->envc++] = "HOME=/";
}

// berth_cinit_console makes a pty in the container's devpts, sends the
// master to the console socket (its name as the message, the
// runtime-tools protocol) and makes the slave the process's terminal.
void berth_cinit_console(struct plan *p, int bind)
{
	char slave[64];
	union { // aligned as a cmsghdr must be
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cmsg;
	int unlock = 0, n, master, fd;
	struct iovec iov;
	struct msghdr msg = { 0 };
	struct cmsghdr *c;

	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		berth_fail("open /dev/ptmx");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		berth_fail("unlock pty");
	if (ioctl(master, TIOCGPTN, &n) < 0)
		berth_fail("get pty number");
	snprintf(slave, sizeof(slave), "/dev/pts/%d", n);
	fd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		berth_fail("open %s", slave);
	if (p->rows != 0 || p->cols != 0) {
		struct winsize ws = { .ws_row = p->rows, .ws_col = p->cols };
		if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
			berth_fail("set console size");
	}
	if (bind)
		berth_cinit_bind_console(slave);
	iov.iov_base = slave;
	iov.iov_len = strlen(slave);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsg.buf;
	msg.msg_controllen = sizeof(cmsg.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(p->console, &msg, 0) < 0)
		berth_fail("send pty master to console socket");
	close(p->console);
	close(master);
	if (setsid() < 0)
		berth_fail("setsid");
	if (ioctl(fd, TIOCSCTTY, 0) < 0)
		berth_fail("set controlling terminal");
	for (int i = 0; i < 3; i++)
		if (dup3(fd, i, 0) < 0)
			berth_fail("dup pty to fd %d", i);
	close(fd);
}

// ready tells the runtime the process is set up; from here on errors go
// to stderr.
static void ready(void)
{
	berth_send(BERTH_MSG_READY, NULL, 0);
	berth_after_ready = 1;
}

// run_exec is the C stage of `exec`: the process joined the container's
// namespaces; what is left is the process itself.
static void run_exec(struct plan *p)
{
	char *path;

	if (p->console >= 0)
		berth_cinit_console(p, 0);
	prepare_process(p);
	path = look_path(p);
	ready();
	if (p->waitgo)
		free(berth_recv(BERTH_MSG_GO, NULL));
	// The socket stays open until execve closes it (close_range marks it),
	// so that the runtime returns once the command runs.
	exec_process(p, path);
}

// run_create is the C stage of `create`: the operations (the container's
// filesystem, names, sysctls, keyring), then the wait on the exec FIFO.
static void run_create(struct plan *p)
{
	char *path;
	char fifo[64];
	int fd;

	berth_cinit_rootfs(p);
	prepare_process(p);
	path = look_path(p);
	ready();
	close(berth_syncfd);

	// Wait for start: the open blocks until the runtime opens the FIFO to read.
	snprintf(fifo, sizeof(fifo), "/proc/self/fd/%d", p->fifo);
	fd = open(fifo, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		berth_fail("open exec fifo");
	if (write(fd, "0", 1) != 1)
		berth_fail("write exec fifo");
	// The write end stays open (close-on-exec) until execve, so that start
	// returns only once the program runs.
	close(p->fifo);
	exec_process(p, path);
}

void berth_cinit(void)
{
	struct plan p;
	uint32_t len;
	char *data = berth_recv(BERTH_MSG_PLAN, &len);

	parse_plan(&p, data, len);
	add_home(&p);
	if (p.fifo >= 0)
		run_create(&p);
	run_exec(&p);
	_exit(BERTH_EXIT_FAIL);
}

// The monitor's steady state without the Go runtime. The Go monitor sets a
// container up, then re-executes itself with _BERTH_MONITOR_LOOP set; this
// constructor sees it before Go starts and, from then on, only copies the
// container's output to its log, byte for byte as the Go LogWriter writes
// it. It hands back to Go (re-executing with _BERTH_MONITOR_RESUME and the
// same descriptors) when a client dials the attach socket or the
// container's init exits; the init is left unreaped for Go to wait for.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOOP_ENV "_BERTH_MONITOR_LOOP"
#define RESUME_ENV "_BERTH_MONITOR_RESUME"
#define CHUNK (32 << 10)

enum { DRIVER_NONE, DRIVER_K8S, DRIVER_JSON };

struct loop {
	const char *params; // handed back unchanged
	int pid, listen_fd, out_fd, err_fd, pty_fd, stdin_fd;
	int driver, max_files;
	long long max_size, size;
	const char *log_path;
	int log_fd;
};

// Static, not malloc'd: pages never touched cost nothing, and a line of
// CHUNK bytes escapes to at most six bytes each.
static char chunk[CHUNK];
static char entry[CHUNK * 6 + 256];

static void rotate(struct loop *l)
{
	char src[4096], dst[4096];
	int keep = (l->max_files > 1 ? l->max_files : 1) - 1;
	close(l->log_fd);
	if (keep == 0)
		unlink(l->log_path);
	for (int i = keep; i >= 1; i--) {
		if (i > 1)
			snprintf(src, sizeof(src), "%s.%d", l->log_path, i - 1);
		else
			snprintf(src, sizeof(src), "%s", l->log_path);
		snprintf(dst, sizeof(dst), "%s.%d", l->log_path, i);
		rename(src, dst);
	}
	l->log_fd = open(l->log_path, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	l->size = 0;
}

// timestamp is Go's time.RFC3339Nano of a UTC time: trailing zeros of the
// fraction dropped, and the dot with them when it is all zeros.
static size_t timestamp(char *out, const struct timespec *ts)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts->tv_nsec != 0) {
		char frac[10];
		snprintf(frac, sizeof(frac), "%09ld", ts->tv_nsec);
		int len = 9;
		while (frac[len - 1] == '0')
			len--;
		out[n++] = '.';
		memcpy(out + n, frac, len);
		n += len;
	}
	out[n++] = 'Z';
	return n;
}

// utf8_len is the length of the valid UTF-8 sequence at p (Go's
// utf8.DecodeRune rules: no overlong forms, surrogates or values past
// U+10FFFF), or 0 when it is not one.
static int utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	int len;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < (size_t)len || p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

// json_string appends s as encoding/json's Marshal writes a string: HTML
// characters, controls, U+2028 and U+2029 escaped, invalid bytes as \ufffd.
static size_t json_string(char *out, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c < 0x80) {
			const char *esc = NULL;
			switch (c) {
			case '"': esc = "\\\""; break;
			case '\\': esc = "\\\\"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			}
			if (esc != NULL) {
				memcpy(out + o, esc, 2);
				o += 2;
			} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
				memcpy(out + o, "\\u00", 4);
				out[o + 4] = hex[c >> 4];
				out[o + 5] = hex[c & 0xF];
				o += 6;
			} else
				out[o++] = c;
			i++;
			continue;
		}
		int len = utf8_len(s + i, n - i);
		if (len == 0) {
			memcpy(out + o, "\\ufffd", 6);
			o += 6;
			i++;
		} else if (len == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
			memcpy(out + o, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
			o += 6;
			i += 3;
		} else {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		}
	}
	return o;
}

static size_t encode(const struct loop *l, const char *ts, size_t tslen, const char *stream,
		     int partial, const unsigned char *line, size_t n)
{
	size_t o = 0, sl = strlen(stream);
	if (l->driver == DRIVER_JSON) {
		o += sprintf(entry, "{\"log\":\"");
		o += json_string(entry + o, line, n);
		o += sprintf(entry + o, "\",\"stream\":\"%s\",\"time\":\"", stream);
		memcpy(entry + o, ts, tslen);
		o += tslen;
		memcpy(entry + o, "\"}\n", 3);
		return o + 3;
	}
	memcpy(entry, ts, tslen);
	o = tslen;
	entry[o++] = ' ';
	memcpy(entry + o, stream, sl);
	o += sl;
	entry[o++] = ' ';
	entry[o++] = partial ? 'P' : 'F';
	entry[o++] = ' ';
	if (!partial)
		n--; // the newline, written last
	memcpy(entry + o, line, n);
	o += n;
	entry[o++] = '\n';
	return o;
}

// log_write logs one read of a stream, a line per entry, all with the
// time of the read, as LogWriter.Write does.
static void log_write(struct loop *l, const char *stream, const unsigned char *p, size_t n)
{
	char ts[48];
	struct timespec now;
	if (l->driver == DRIVER_NONE)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	size_t tslen = timestamp(ts, &now);
	while (n > 0) {
		const unsigned char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;
		size_t e = encode(l, ts, tslen, stream, nl == NULL, p, len);
		p += len;
		n -= len;
		if (l->max_size > 0 && l->size > 0 && l->size + (long long)e > l->max_size)
			rotate(l);
		if (l->log_fd < 0)
			continue;
		for (size_t off = 0; off < e;) {
			ssize_t w = write(l->log_fd, entry + off, e - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break; // the Go monitor drops a failed write too
			l->size += w;
			off += w;
		}
	}
}

static char **saved_argv;

// hand_back re-executes the binary into the Go monitor with the same
// descriptors and parameters, the loop's own variable removed.
static void hand_back(const struct loop *l, int sig_fd)
{
	extern char **environ;
	static char *envp[4096];
	size_t len = sizeof(RESUME_ENV "=") + strlen(l->params);
	char *resume = malloc(len); // just before execve: no lasting cost
	sigset_t set;
	int envc = 0;
	for (char **e = environ; *e != NULL && envc < 4094; e++)
		if (strncmp(*e, LOOP_ENV "=", sizeof(LOOP_ENV)) != 0)
			envp[envc++] = *e;
	if (resume == NULL)
		_exit(125);
	snprintf(resume, len, RESUME_ENV "=%s", l->params);
	envp[envc++] = resume;
	envp[envc] = NULL;
	if (sig_fd >= 0)
		close(sig_fd);
	if (l->log_fd >= 0)
		close(l->log_fd);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	execve("/proc/self/exe", saved_argv, envp);
	_exit(125); // unmonitored from here: berth's next command notices
}

// init_exited reaps children other than the init (orphans of a container
// that shares the host's pid namespace) and tells whether the init has
// exited, leaving it a zombie.
static int init_exited(const struct loop *l)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return errno == ECHILD; // no children at all: nothing to wait for
		if (si.si_pid == 0)
			return 0;
		if (si.si_pid == l->pid)
			return 1;
		waitpid(si.si_pid, NULL, 0);
	}
}

static void run(struct loop *l)
{
	sigset_t set;
	struct pollfd fds[4];
	const char *streams[4] = {"stdout", "stderr", NULL, NULL};
	signal(SIGCHLD, SIG_DFL); // an ignored SIGCHLD would reap the init
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	l->log_fd = -1;
	int sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		hand_back(l, -1);
	if (l->driver != DRIVER_NONE) {
		struct stat st;
		l->log_fd = open(l->log_path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
		l->size = (l->log_fd >= 0 && fstat(l->log_fd, &st) == 0) ? st.st_size : 0;
	}
	fds[0].fd = l->pty_fd >= 0 ? l->pty_fd : l->out_fd;
	fds[1].fd = l->pty_fd >= 0 ? -1 : l->err_fd;
	fds[2].fd = l->listen_fd;
	fds[3].fd = sig_fd;
	for (int i = 0; i < 4; i++)
		fds[i].events = POLLIN;
	// Once here (an exit before the signalfd), then at each SIGCHLD.
	if (init_exited(l))
		hand_back(l, sig_fd);
	for (;;) {
		if (poll(fds, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			hand_back(l, sig_fd);
		}
		if (fds[2].revents != 0)
			hand_back(l, sig_fd); // a client: Go serves it
		if (fds[3].revents != 0) {
			struct signalfd_siginfo si;
			while (read(sig_fd, &si, sizeof(si)) > 0)
				;
			if (init_exited(l))
				hand_back(l, sig_fd);
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
			if (n > 0)
				log_write(l, streams[i], (unsigned char *)chunk, n);
			else if (n == 0 || (errno != EAGAIN && errno != EINTR))
				fds[i].fd = -1; // EOF, or EIO from a pty whose other side closed
		}
	}
}

// The parameters, as the Go monitor writes them: "PID LISTEN OUT ERR PTY
// STDIN DRIVER MAXSIZE MAXFILES ID DIR RUNDIR LOGPATH", -1 for no fd.
// glibc passes constructors the program's arguments.
__attribute__((constructor)) static void berth_monitor_loop(int argc, char **argv, char **envp)
{
	static struct loop l;
	char driver[16];
	int off = 0;
	l.params = getenv(LOOP_ENV);
	if (l.params == NULL || argc < 1)
		return;
	saved_argv = argv;
	// Executed as /proc/self/exe, the process would be called "exe".
	const char *base = strrchr(argv[0], '/');
	prctl(PR_SET_NAME, base != NULL ? base + 1 : argv[0], 0, 0, 0);
	if (sscanf(l.params, "%d %d %d %d %d %d %15s %lld %d %*s %*s %*s %n", &l.pid, &l.listen_fd, &l.out_fd,
		   &l.err_fd, &l.pty_fd, &l.stdin_fd, driver, &l.max_size, &l.max_files, &off) < 9 ||
	    off == 0) {
		fprintf(stderr, "berth: bad " LOOP_ENV " %s\n", l.params);
		_exit(125);
	}
	l.log_path = l.params + off;
	if (strcmp(driver, "json-file") == 0)
		l.driver = DRIVER_JSON;
	else if (strcmp(driver, "k8s-file") == 0)
		l.driver = DRIVER_K8S;
	else
		l.driver = DRIVER_NONE;
	run(&l);
}

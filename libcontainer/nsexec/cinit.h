#ifndef BERTH_CINIT_H
#define BERTH_CINIT_H

#include <errno.h>
#include <linux/filter.h>
#include <sys/types.h>

// fail_plain fails with a message of its own, without an errno's words.
#define fail_plain(...)                  \
	do {                             \
		errno = 0;               \
		berth_fail(__VA_ARGS__); \
	} while (0)

#define PLAN_MAX_BPF 4
#define PLAN_MAX_RLIMITS 16

enum { CAPS_BOUNDING, CAPS_EFFECTIVE, CAPS_PERMITTED, CAPS_INHERITABLE, CAPS_AMBIENT, CAPS_SETS };

struct plan_bpf {
	unsigned flags;
	int optional; // its refusal is ignored (the ENOSYS filter)
	unsigned short len;
	struct sock_filter *code;
};

struct plan_rlimit {
	const char *name;
	int resource;
	unsigned long long soft, hard;
};

// plan is the parsed plan message; see parse_plan in cinit.c.
struct plan {
	char **argv, **envp;
	int argc, envc;
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	mode_t umask;
	int nnp;
	struct plan_rlimit rlimits[PLAN_MAX_RLIMITS];
	int nrlimits;
	char *oom;
	int lastcap;
	unsigned long long caps[CAPS_SETS];
	struct plan_bpf bpf[PLAN_MAX_BPF];
	int nbpf;
	int preserve;
	int waitgo;
	int fifo;   // create: the exec FIFO's descriptor; -1 for exec
	int console;                     // the console socket's descriptor, or -1: no terminal
	unsigned short rows, cols;       // the terminal's size (0: left as it is)
	char **ops; // create: the operations before the process's own, in order (cinit_rootfs.c)
	int nops;
};

// berth_cinit_rootfs executes the plan's operations.
void berth_cinit_rootfs(struct plan *p);

// berth_cinit_console makes the process's terminal (cinit.c); with
// bind, the pty is bound on /dev/console too.
void berth_cinit_console(struct plan *p, int bind);

// berth_cinit_bind_console binds the pty slave on /dev/console in the
// root (cinit_rootfs.c).
void berth_cinit_bind_console(const char *slave);

#endif

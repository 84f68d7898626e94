#ifndef BERTH_NSEXEC_H
#define BERTH_NSEXEC_H

// Message types on the sync socket; the Go side uses the same letters.
#define BERTH_MSG_BOOTSTRAP 'B'
#define BERTH_MSG_WANT_MAPS 'U'
#define BERTH_MSG_MAPS_DONE 'u'
#define BERTH_MSG_PID 'P'
#define BERTH_MSG_ERROR 'E'
#define BERTH_MSG_PLAN 'X'
#define BERTH_MSG_HOOKS 'H'
#define BERTH_MSG_HOOKS_DONE 'h'
#define BERTH_MSG_READY 'R'
#define BERTH_MSG_GO 'G'

#define BERTH_EXIT_FAIL 1
#define BERTH_EXIT_SYNC 2

#include <stdint.h>
#include <sys/resource.h>

// RLIMIT_NOFILE as the process started, before the Go runtime raised it.
extern struct rlimit berth_inherited_nofile;

void berth_nsexec(void);

// Shared by the namespace stage and the C init stage (cinit.c).
extern int berth_syncfd;
extern int berth_after_ready; // errors go to stderr: the runtime stopped listening
void berth_send(char type, const void *payload, uint32_t len);
char *berth_recv(char want, uint32_t *len);
void berth_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void berth_cinit(void) __attribute__((noreturn));

#endif

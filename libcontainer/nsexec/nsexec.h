#ifndef BERTH_NSEXEC_H
#define BERTH_NSEXEC_H

// Message types on the sync socket; the Go side uses the same letters.
#define BERTH_MSG_BOOTSTRAP 'B'
#define BERTH_MSG_WANT_MAPS 'U'
#define BERTH_MSG_MAPS_DONE 'u'
#define BERTH_MSG_PID 'P'
#define BERTH_MSG_ERROR 'E'

#define BERTH_EXIT_FAIL 1
#define BERTH_EXIT_SYNC 2

#include <sys/resource.h>

// RLIMIT_NOFILE as the process started, before the Go runtime raised it.
extern struct rlimit berth_inherited_nofile;

void berth_nsexec(void);

#endif

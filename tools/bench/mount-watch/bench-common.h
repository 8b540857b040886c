/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the mount-watch helpers (mounter, watcher, usip-watcher) share: the clock the driver
 * compares timestamps on, the process's own CPU time, and the reader of the driver's
 * one-word commands on stdin.
 */
#ifndef MOUNT_WATCH_BENCH_COMMON_H
#define MOUNT_WATCH_BENCH_COMMON_H

#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in ns: the driver and every helper report on this clock. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* This process's CPU time so far, every thread, in µs. */
static inline void cpu_us(uint64_t *user, uint64_t *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
	*sys = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

/* Lines arriving in pieces on a file descriptor (the driver's commands). */
struct line_reader {
	char text[256];
	size_t len;		/* bytes in text */
	size_t consumed;	/* of them, the line last returned and its '\n' */
};

/* Reads what fd has now (call when poll says it is readable); -1 at end of input. */
static inline int line_reader_fill(struct line_reader *r, int fd)
{
	ssize_t got;

	if (r->len == sizeof(r->text) - 1)
		r->len = 0;	/* a line longer than any command: drop it */
	got = read(fd, r->text + r->len, sizeof(r->text) - 1 - r->len);
	if (got <= 0)
		return -1;
	r->len += (size_t)got;
	r->text[r->len] = '\0';
	return 0;
}

/* The next complete line, without its '\n', valid until the next call; NULL when none is. */
static inline const char *line_reader_next(struct line_reader *r)
{
	char *nl;

	if (r->consumed) {
		r->len -= r->consumed;
		memmove(r->text, r->text + r->consumed, r->len + 1);
		r->consumed = 0;
	}
	nl = memchr(r->text, '\n', r->len);
	if (!nl)
		return NULL;
	*nl = '\0';
	r->consumed = (size_t)(nl + 1 - r->text);
	return r->text;
}

#endif

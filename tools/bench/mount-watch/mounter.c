// SPDX-License-Identifier: GPL-2.0
/*
 * The mount(2) side of the mount-watch benchmark. Subcommands (all paths absolute):
 *
 *   populate SRC DIR FROM TO   bind-mounts SRC on DIR/<i> for i in [FROM, TO) (mkdir first);
 *                              prints "populate <count> <elapsed_ns>"
 *   serve                      reads commands on stdin, one per line, and answers each on
 *                              stdout: "bind SRC DST", "tmpfs DST", "umount DST" ->
 *                              "ok <t_before_ns> <t_after_ns>" (CLOCK_MONOTONIC around the
 *                              system call) or "err <errno> <message>"
 *   storm SRC DIR COUNT END    mkdir DIR/<i> for i < COUNT (not timed), then as fast as it can:
 *                              COUNT bind mounts of SRC, COUNT umounts, and a tmpfs on END.
 *                              Prints "storm <t_start> <t_mounted> <t_unmounted> <t_end>
 *                              <user_us> <sys_us>"
 *   pairs SRC DST COUNT        COUNT times: bind-mount SRC on DST, umount DST. Prints
 *                              "pairs <count> <elapsed_ns> <user_us> <sys_us> <in_mount_ns>"
 *                              (in_mount_ns: the part of elapsed_ns spent in mount(2))
 *
 * Bind sources must lie outside the mount that holds the N mounts: binding a directory of a
 * mount with N children costs O(N) (has_locked_children()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bench-common.h"

static void die(const char *what, const char *path)
{
	fprintf(stderr, "mounter: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void mkdir_p(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		die("mkdir", path);
}

static void entry(char *buf, size_t len, const char *dir, long i)
{
	snprintf(buf, len, "%s/%06ld", dir, i);
}

static int populate(const char *src, const char *dir, long from, long to)
{
	char path[4096];
	uint64_t t0;
	long i;

	for (i = from; i < to; i++) {
		entry(path, sizeof(path), dir, i);
		mkdir_p(path);
	}
	t0 = now_ns();
	for (i = from; i < to; i++) {
		entry(path, sizeof(path), dir, i);
		if (mount(src, path, NULL, MS_BIND, NULL))
			die("bind-mount on", path);
	}
	printf("populate %ld %llu\n", to - from, (unsigned long long)(now_ns() - t0));
	return 0;
}

static int serve(void)
{
	char line[8192], a[4096], b[4096];
	uint64_t t0, t1;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "bind %4095s %4095s", a, b) == 2) {
			t0 = now_ns();
			rc = mount(a, b, NULL, MS_BIND, NULL);
		} else if (sscanf(line, "tmpfs %4095s", a) == 1) {
			t0 = now_ns();
			rc = mount("bench-marker", a, "tmpfs", 0, "size=64k");
		} else if (sscanf(line, "umount %4095s", a) == 1) {
			t0 = now_ns();
			rc = umount2(a, 0);
		} else if (!strcmp(line, "quit\n")) {
			return 0;
		} else {
			printf("err %d unknown command\n", EINVAL);
			continue;
		}
		t1 = now_ns();
		if (rc)
			printf("err %d %s\n", errno, strerror(errno));
		else
			printf("ok %llu %llu\n", (unsigned long long)t0, (unsigned long long)t1);
	}
	return 0;
}

static int storm(const char *src, const char *dir, long count, const char *end)
{
	uint64_t t_start, t_mounted, t_unmounted, t_end, u0, s0, u1, s1;
	char path[4096];
	long i;

	for (i = 0; i < count; i++) {
		entry(path, sizeof(path), dir, i);
		mkdir_p(path);
	}
	cpu_us(&u0, &s0);
	t_start = now_ns();
	for (i = 0; i < count; i++) {
		entry(path, sizeof(path), dir, i);
		if (mount(src, path, NULL, MS_BIND, NULL))
			die("bind-mount on", path);
	}
	t_mounted = now_ns();
	for (i = 0; i < count; i++) {
		entry(path, sizeof(path), dir, i);
		if (umount2(path, 0))
			die("umount", path);
	}
	t_unmounted = now_ns();
	if (mount("bench-end", end, "tmpfs", 0, "size=64k"))
		die("mount tmpfs on", end);
	t_end = now_ns();
	cpu_us(&u1, &s1);
	printf("storm %llu %llu %llu %llu %llu %llu\n", (unsigned long long)t_start,
	       (unsigned long long)t_mounted, (unsigned long long)t_unmounted,
	       (unsigned long long)t_end, (unsigned long long)(u1 - u0),
	       (unsigned long long)(s1 - s0));
	return 0;
}

static int pairs(const char *src, const char *dst, long count)
{
	uint64_t t0, t1, u0, s0, u1, s1, in_mount = 0, t;
	long i;

	cpu_us(&u0, &s0);
	t0 = now_ns();
	for (i = 0; i < count; i++) {
		t = now_ns();
		if (mount(src, dst, NULL, MS_BIND, NULL))
			die("bind-mount on", dst);
		in_mount += now_ns() - t;
		if (umount2(dst, 0))
			die("umount", dst);
	}
	t1 = now_ns();
	cpu_us(&u1, &s1);
	printf("pairs %ld %llu %llu %llu %llu\n", count, (unsigned long long)(t1 - t0),
	       (unsigned long long)(u1 - u0), (unsigned long long)(s1 - s0),
	       (unsigned long long)in_mount);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "populate"))
		return populate(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if (argc == 2 && !strcmp(argv[1], "serve"))
		return serve();
	if (argc == 6 && !strcmp(argv[1], "storm"))
		return storm(argv[2], argv[3], atol(argv[4]), argv[5]);
	if (argc == 5 && !strcmp(argv[1], "pairs"))
		return pairs(argv[2], argv[3], atol(argv[4]));
	fprintf(stderr, "usage: mounter populate SRC DIR FROM TO | serve | storm SRC DIR COUNT END | pairs SRC DST COUNT\n");
	return 2;
}

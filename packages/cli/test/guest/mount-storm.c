// SPDX-License-Identifier: GPL-2.0
/*
 * mount-storm: makes or removes many mounts from one tight loop, for the storm test of the mount
 * watcher (../vm-mounts.test.ts builds it with the host's gcc before the VM runs; the guest runs
 * the binary through the read-only host root).
 *
 *   mount-storm mount DIR N    mkdir DIR/dNNNNN and mount a tmpfs on it, for NNNNN = 0 .. N-1
 *   mount-storm umount DIR N   umount DIR/dNNNNN, for NNNNN = 0 .. N-1
 *   mount-storm variety DIR    a few hundred mounts of every kind below DIR (see variety())
 *
 * Prints {"op": ..., "count": N, "seconds": S} on stdout; on the first failure, says which
 * path and why on stderr and exits 1. (mount(8) from a shell loop costs a fork and exec per
 * mount, several seconds per hundred in the emulated guest.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

static long made;

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "mount-storm: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void dir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		fail("mkdir", path);
}

static void do_mount(const char *source, const char *target, const char *type,
		     unsigned long flags, const char *data)
{
	if (mount(source, target, type, flags, data))
		fail("mount", target);
	made++;
}

/* Sets a mount's propagation (MS_SHARED, MS_SLAVE, MS_UNBINDABLE...): no new mount. */
static void propagation(const char *target, unsigned long flags)
{
	if (mount(NULL, target, NULL, flags, NULL))
		fail("mount --make-*", target);
}

/*
 * Below DIR (a directory): a tmpfs "base" on DIR; mounts with odd names (space, tab, backslash,
 * newline, UTF-8); 150 tmpfs with each per-mount option in turn; 100 bind mounts, of whole
 * file systems and of directories (root /dir/subN); a bind remounted ro,nodev; 12 nested
 * tmpfs; a shared mount with a slave (made shared too) that receives what is mounted on the
 * shared one; an unbindable one.
 */
static void variety(const char *top)
{
	static const unsigned long options[] = {
		MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME, MS_NODIRATIME,
		MS_STRICTATIME, MS_NOSYMFOLLOW, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
	};
	static const char *const odd[] = { "with space", "tab\ttab", "back\\slash", "caf\xc3\xa9", "new\nline" };
	char path[4096], other[4096], data[64];
	int i;

	do_mount("base", top, "tmpfs", 0, NULL);
	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s", top, odd[i]);
		dir(path);
		do_mount(i == 0 ? "source with space" : odd[i], path, "tmpfs",
			 i == 2 ? MS_NOSYMFOLLOW : 0, i == 3 ? "size=1m,mode=700" : NULL);
	}
	snprintf(path, sizeof(path), "%s/dir", top);
	dir(path);
	for (i = 0; i < 150; i++) {
		snprintf(path, sizeof(path), "%s/t%d", top, i);
		dir(path);
		snprintf(path, sizeof(path), "%s/dir/sub%d", top, i);
		dir(path);
		snprintf(path, sizeof(path), "%s/t%d", top, i);
		snprintf(data, sizeof(data), "size=%dk", 64 + i);
		snprintf(other, sizeof(other), "tmpfs%d", i);
		do_mount(other, path, "tmpfs", options[i % 9], data);
	}
	for (i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "%s/b%d", top, i);
		dir(path);
		if (i % 2 == 0)
			snprintf(other, sizeof(other), "%s/t%d", top, i);
		else
			snprintf(other, sizeof(other), "%s/dir/sub%d", top, i);
		do_mount(other, path, NULL, MS_BIND, NULL);
	}
	snprintf(path, sizeof(path), "%s/b3", top);
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV, NULL))
		fail("remount", path);
	snprintf(path, sizeof(path), "%s/nest", top);
	dir(path);
	for (i = 0; i < 12; i++) {
		snprintf(other, sizeof(other), "nest%d", i);
		do_mount(other, path, "tmpfs", 0, NULL);
		strncat(path, "/n", sizeof(path) - strlen(path) - 1);
		dir(path);
	}
	snprintf(path, sizeof(path), "%s/shared", top);
	snprintf(other, sizeof(other), "%s/slave", top);
	dir(path);
	dir(other);
	do_mount("shared", path, "tmpfs", 0, NULL);
	propagation(path, MS_SHARED);
	do_mount(path, other, NULL, MS_BIND, NULL);
	propagation(other, MS_SLAVE);
	snprintf(path, sizeof(path), "%s/shared/x", top);
	dir(path);
	do_mount("propagated", path, "tmpfs", 0, NULL);	/* and on slave/x */
	snprintf(other, sizeof(other), "%s/slave", top);
	propagation(other, MS_SHARED);		/* shared and slave at once */
	snprintf(path, sizeof(path), "%s/shared/y", top);
	dir(path);
	do_mount("propagated2", path, "tmpfs", 0, NULL);
	snprintf(path, sizeof(path), "%s/unbindable", top);
	dir(path);
	do_mount("unbindable", path, "tmpfs", 0, NULL);
	propagation(path, MS_UNBINDABLE);
}

int main(int argc, char **argv)
{
	char path[4096], source[32];
	double start;
	long n, i;
	int mounting;

	if (argc == 3 && !strcmp(argv[1], "variety")) {
		start = now();
		variety(argv[2]);
		printf("{\"op\": \"variety\", \"count\": %ld, \"seconds\": %.3f}\n", made, now() - start);
		return 0;
	}
	if (argc != 4 || (strcmp(argv[1], "mount") && strcmp(argv[1], "umount"))) {
		fprintf(stderr, "usage: mount-storm mount|umount DIR N, or mount-storm variety DIR\n");
		return 2;
	}
	mounting = !strcmp(argv[1], "mount");
	n = strtol(argv[3], NULL, 10);
	if (n <= 0 || n > 99999) {
		fprintf(stderr, "mount-storm: N must be from 1 to 99999, got %s\n", argv[3]);
		return 2;
	}
	start = now();
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/d%05ld", argv[2], i);
		if (mounting) {
			snprintf(source, sizeof(source), "storm%ld", i);
			if (mkdir(path, 0755) && errno != EEXIST) {
				fprintf(stderr, "mount-storm: mkdir %s: %s\n", path, strerror(errno));
				return 1;
			}
			if (mount(source, path, "tmpfs", 0, "size=64k")) {
				fprintf(stderr, "mount-storm: mount %s: %s\n", path, strerror(errno));
				return 1;
			}
		} else if (umount(path)) {
			fprintf(stderr, "mount-storm: umount %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	printf("{\"op\": \"%s\", \"count\": %ld, \"seconds\": %.3f}\n", argv[1], n, now() - start);
	return 0;
}

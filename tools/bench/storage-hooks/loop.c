// SPDX-License-Identifier: GPL-2.0
/*
 * The loops of the storage-hooks benchmark, run in the guest (pinned by the
 * caller). Each times itself with CLOCK_MONOTONIC in chunks of PER_CHUNK
 * operations and prints one JSON line: the whole run's nanoseconds per
 * operation, the fastest chunk's (the one least disturbed: under QEMU TCG the
 * guest's clock runs on while the host has the emulator's thread off its
 * CPU, so short chunks are the ones that can escape that) and every chunk's
 * time.
 *
 *   sh-loop PER_CHUNK getppid N            N raw getppid system calls
 *   sh-loop PER_CHUNK write PATH N EVERY   N 4 KiB writes to PATH (created),
 *                                          an ftruncate to 0 and an lseek to 0
 *                                          every EVERY writes, in the time
 *   sh-loop PER_CHUNK fail PATH N          N 4 KiB writes to PATH, which must
 *                                          all fail (a full file system)
 *
 * N is rounded down to whole chunks; for writes PER_CHUNK is rounded up to a
 * multiple of EVERY, so that every chunk holds as many truncations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHUNKS 20000
#define BLOCK 4096

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long int_arg(const char *text, long min)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (!*text || *end || v < min) {
		fprintf(stderr, "sh-loop: expected an integer >= %ld (got %s)\n", min, text);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: sh-loop PER_CHUNK (getppid N | write PATH N EVERY | fail PATH N)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static char buf[BLOCK];
	static uint64_t chunk_ns[MAX_CHUNKS];
	uint64_t start, t0, t1, best = UINT64_MAX;
	long n, per_chunk, chunks, c, every = 0, done = 0, enospc = 0, other = 0;
	int fd = -1, fail;
	const char *mode;

	if (argc < 4)
		usage();
	per_chunk = int_arg(argv[1], 1);
	mode = argv[2];
	if (!strcmp(mode, "getppid") && argc == 4) {
		n = int_arg(argv[3], 1);
	} else if (!strcmp(mode, "write") && argc == 6) {
		n = int_arg(argv[4], 1);
		every = int_arg(argv[5], 1);
		fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	} else if (!strcmp(mode, "fail") && argc == 5) {
		n = int_arg(argv[4], 1);
		fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	} else {
		usage();
	}
	if (strcmp(mode, "getppid") && fd < 0) {
		fprintf(stderr, "sh-loop: open %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	if (every && per_chunk % every)
		per_chunk += every - per_chunk % every;
	chunks = n / per_chunk;
	if (chunks < 1 || chunks > MAX_CHUNKS) {
		fprintf(stderr, "sh-loop: %ld chunks of %ld: between 1 and %d, please\n", chunks, per_chunk, MAX_CHUNKS);
		return 2;
	}
	n = per_chunk * chunks;
	memset(buf, 'x', sizeof(buf));
	fail = !strcmp(mode, "fail");

	start = now_ns();
	t0 = start;
	for (c = 0; c < chunks; c++) {
		long i;

		if (fd < 0) {
			for (i = 0; i < per_chunk; i++)
				syscall(SYS_getppid);
		} else if (fail) {
			for (i = 0; i < per_chunk; i++) {
				if (write(fd, buf, BLOCK) >= 0)
					continue;
				if (errno == ENOSPC)
					enospc++;
				else
					other++;
			}
		} else {
			for (i = 0; i < per_chunk; i++) {
				if (write(fd, buf, BLOCK) != BLOCK) {
					fprintf(stderr, "sh-loop: write: %s\n", strerror(errno));
					return 1;
				}
				if (++done % every == 0 &&
				    (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))) {
					fprintf(stderr, "sh-loop: truncate: %s\n", strerror(errno));
					return 1;
				}
			}
		}
		t1 = now_ns();
		chunk_ns[c] = t1 - t0;
		if (t1 - t0 < best)
			best = t1 - t0;
		t0 = t1;
	}
	if (fd >= 0)
		close(fd);

	printf("{\"mode\":\"%s\",\"n\":%ld,\"ns\":%llu,\"nsPerOp\":%.2f,\"bestChunkNsPerOp\":%.2f,"
	       "\"chunks\":%ld,\"perChunk\":%ld,\"enospc\":%ld,\"otherErrors\":%ld,\"chunkNs\":[",
	       mode, n, (unsigned long long)(t0 - start), (double)(t0 - start) / n,
	       (double)best / per_chunk, chunks, per_chunk, enospc, other);
	for (c = 0; c < chunks; c++)
		printf("%s%llu", c ? "," : "", (unsigned long long)chunk_ns[c]);
	printf("]}\n");
	if (fail && enospc != n) {
		fprintf(stderr, "sh-loop: %ld of %ld writes failed with ENOSPC (%ld with another error)\n",
			enospc, n, other);
		return 1;
	}
	return 0;
}

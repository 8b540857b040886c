// SPDX-License-Identifier: GPL-2.0
/*
 * The two whole-table watchers of the mount-watch benchmark:
 *
 *   watcher mountinfo MARKER STORM_DIR END   (a) poll(POLLPRI) on /proc/self/mountinfo; on
 *                                            every wake-up, re-read the whole file and parse it
 *                                            into an array of records (lean C: one buffer,
 *                                            fields split and unescaped in place)
 *   watcher listmount MARKER STORM_DIR END   (c) woken the same way (6.12 has no fanotify
 *                                            mount events), then listmount(2) of the whole
 *                                            namespace and statmount(2) of every mount into
 *                                            an array of records
 *
 * After each re-read it looks at the records and writes to stdout (CLOCK_MONOTONIC ns):
 *   "ready <mounts> <learn_ns>"            after the first read
 *   "marker <0|1> <t_ns> <mounts>"         when a mount on MARKER appeared or went
 *   "caught <t_ns> <user_us> <sys_us> <reads>"  when a mount on END is there and no mount below
 *                                          STORM_DIR is: it has caught up with a storm
 * On stdin it takes "cpu" (answers "cpu <user_us> <sys_us> <reads>"), "dump" (the records, one
 * "rec ..." line each, then "end-dump <count>"; to check the parsers) and "quit".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench-common.h"

#include "mount-api.h"

/* --- Records ---------------------------------------------------------------------------- */

/* One mount. The strings live in the watcher's buffer (mountinfo) or arena (listmount). */
struct record {
	uint64_t id, parent_id;
	uint32_t major, minor;
	uint64_t attr, propagation, peer_group, master, propagate_from;
	/* Offsets into the text buffer, so that it may grow. */
	size_t root, mount_point, options, optional, fs_type, source, super_options;
};

static struct record *records;
static size_t n_records, cap_records;
static char *text;		/* mountinfo's text, or the arena of listmount's strings */
static size_t text_len, text_cap;

static struct record *new_record(void)
{
	if (n_records == cap_records) {
		cap_records = cap_records ? cap_records * 2 : 1024;
		records = realloc(records, cap_records * sizeof(*records));
		if (!records)
			abort();
	}
	memset(&records[n_records], 0, sizeof(records[0]));
	return &records[n_records++];
}

static void text_reserve(size_t more)
{
	if (text_len + more <= text_cap)
		return;
	while (text_len + more > text_cap)
		text_cap = text_cap ? text_cap * 2 : 1 << 20;
	text = realloc(text, text_cap);
	if (!text)
		abort();
}

/* --- (a): read and parse /proc/self/mountinfo ------------------------------------------- */

static int mountinfo_fd;

/* Undoes mountinfo's \ooo escapes in place. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* The next space-separated field of *p, NUL-terminated in place. */
static char *field(char **p)
{
	char *start = *p, *end = strchr(start, ' ');

	if (end) {
		*end = '\0';
		*p = end + 1;
	} else {
		*p = start + strlen(start);
	}
	return start;
}

static void parse_line(char *line)
{
	struct record *r = new_record();
	char *p = line, *f, *optional;

	r->id = strtoull(field(&p), NULL, 10);
	r->parent_id = strtoull(field(&p), NULL, 10);
	f = field(&p);
	r->major = (uint32_t)strtoul(f, &f, 10);
	r->minor = (uint32_t)strtoul(f + 1, NULL, 10);
	f = field(&p);
	unescape(f);
	r->root = (size_t)(f - text);
	f = field(&p);
	unescape(f);
	r->mount_point = (size_t)(f - text);
	r->options = (size_t)(field(&p) - text);
	/* Optional fields up to the lone "-". */
	optional = p;
	while (*p && !(p[0] == '-' && p[1] == ' '))
		p = strchr(p, ' ') ? strchr(p, ' ') + 1 : p + strlen(p);
	if (p > optional)
		p[-1] = '\0';
	r->optional = (size_t)((p > optional ? optional : p) - text);
	if (*p)
		p += 2;
	r->fs_type = (size_t)(field(&p) - text);
	f = field(&p);
	unescape(f);
	r->source = (size_t)(f - text);
	r->super_options = (size_t)(field(&p) - text);
}

static void learn_mountinfo(void)
{
	char *line, *nl;
	ssize_t got;

	text_len = 0;
	if (lseek(mountinfo_fd, 0, SEEK_SET) < 0) {
		perror("watcher: lseek mountinfo");
		exit(1);
	}
	for (;;) {
		text_reserve(1 << 20);
		got = read(mountinfo_fd, text + text_len, text_cap - text_len - 1);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			perror("watcher: read mountinfo");
			exit(1);
		}
		if (!got)
			break;
		text_len += (size_t)got;
	}
	text[text_len] = '\0';
	n_records = 0;
	for (line = text; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			break;
		*nl = '\0';
		parse_line(line);
	}
}

/* --- (c): listmount(2) + statmount(2) ---------------------------------------------------- */

static uint64_t *ids;
static size_t ids_cap;
static struct bench_statmount *sm;
static size_t sm_size = 4096;

static size_t keep_string(uint32_t offset)
{
	const char *s = sm->str + offset;
	size_t len = strlen(s) + 1, at;

	text_reserve(len);
	at = text_len;
	memcpy(text + at, s, len);
	text_len += len;
	return at;
}

static void learn_listmount(void)
{
	const uint32_t mask = STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_PROPAGATE_FROM |
			      STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE |
			      STATMOUNT_MNT_OPTS;
	struct bench_mnt_id_req req = { .size = BENCH_MNT_ID_REQ_SIZE_VER0, .mnt_id = LSMT_ROOT };
	size_t n_ids = 0, i;
	long got;

	/* Every mount of the namespace, in batches, each after the last id of the one before. */
	for (;;) {
		if (ids_cap - n_ids < 4096) {
			ids_cap = ids_cap ? ids_cap * 2 : 8192;
			ids = realloc(ids, ids_cap * sizeof(*ids));
			if (!ids)
				abort();
		}
		req.param = n_ids ? ids[n_ids - 1] : 0;
		got = syscall(SYS_listmount_nr, &req, ids + n_ids, (size_t)4096, 0u);
		if (got < 0) {
			perror("watcher: listmount");
			exit(1);
		}
		n_ids += (size_t)got;
		if (got < 4096)
			break;
	}
	text_len = 0;
	n_records = 0;
	for (i = 0; i < n_ids; i++) {
		struct bench_mnt_id_req one = {
			.size = BENCH_MNT_ID_REQ_SIZE_VER0, .mnt_id = ids[i], .param = mask,
		};
		struct record *r;
		int gone = 0;

		while (syscall(SYS_statmount_nr, &one, sm, sm_size, 0u) < 0) {
			if (errno == EOVERFLOW) {
				sm_size *= 2;
				sm = realloc(sm, sm_size);
				if (!sm)
					abort();
				continue;
			}
			if (errno == ENOENT) {
				gone = 1;	/* umounted since listmount() */
				break;
			}
			perror("watcher: statmount");
			exit(1);
		}
		if (gone)
			continue;
		r = new_record();
		r->id = sm->mnt_id;
		r->parent_id = sm->mnt_parent_id;
		r->major = sm->sb_dev_major;
		r->minor = sm->sb_dev_minor;
		r->attr = sm->mnt_attr;
		r->propagation = sm->mnt_propagation;
		r->peer_group = sm->mnt_peer_group;
		r->master = sm->mnt_master;
		r->propagate_from = sm->propagate_from;
		r->fs_type = keep_string(sm->fs_type);
		r->root = keep_string(sm->mnt_root);
		r->mount_point = keep_string(sm->mnt_point);
		if (sm->mask & STATMOUNT_MNT_OPTS) {
			r->super_options = keep_string(sm->mnt_opts);
		} else {
			text_reserve(1);
			r->super_options = text_len;
			text[text_len++] = '\0';
		}
	}
}

/* --- The loop ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	const char *marker, *end;
	char storm_prefix[4096];
	size_t prefix_len;
	void (*learn)(void);
	uint64_t reads = 0, t0, user, sys;
	int marker_seen = -1, caught = 0;
	struct line_reader input = { .len = 0 };

	if (argc != 5 || (strcmp(argv[1], "mountinfo") && strcmp(argv[1], "listmount"))) {
		fprintf(stderr, "usage: watcher mountinfo|listmount MARKER STORM_DIR END\n");
		return 2;
	}
	learn = strcmp(argv[1], "mountinfo") ? learn_listmount : learn_mountinfo;
	marker = argv[2];
	snprintf(storm_prefix, sizeof(storm_prefix), "%s/", argv[3]);
	prefix_len = strlen(storm_prefix);
	end = argv[4];
	setvbuf(stdout, NULL, _IOLBF, 0);
	sm = malloc(sm_size);
	mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (mountinfo_fd < 0 || !sm) {
		perror("watcher: open /proc/self/mountinfo");
		return 1;
	}

	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = mountinfo_fd, .events = POLLPRI | POLLERR },
			{ .fd = 0, .events = POLLIN },
		};
		int marker_now = 0, end_now = 0;
		size_t storm = 0, i;

		/* The first time round: the initial read, without waiting. */
		if (reads) {
			if (poll(fds, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				perror("watcher: poll");
				return 1;
			}
		} else {
			fds[0].revents = POLLPRI;
		}
		if (fds[0].revents & (POLLPRI | POLLERR)) {
			t0 = now_ns();
			learn();
			reads++;
			for (i = 0; i < n_records; i++) {
				const char *mp = text + records[i].mount_point;

				if (!strncmp(mp, storm_prefix, prefix_len))
					storm++;
				else if (!strcmp(mp, marker))
					marker_now = 1;
				else if (!strcmp(mp, end))
					end_now = 1;
			}
			if (reads == 1)
				printf("ready %zu %llu\n", n_records, (unsigned long long)(now_ns() - t0));
			if (marker_now != marker_seen) {
				if (marker_seen >= 0)
					printf("marker %d %llu %zu\n", marker_now,
					       (unsigned long long)now_ns(), n_records);
				marker_seen = marker_now;
			}
			if (end_now && !storm && !caught) {
				uint64_t t = now_ns();

				cpu_us(&user, &sys);
				printf("caught %llu %llu %llu %llu\n", (unsigned long long)t,
				       (unsigned long long)user, (unsigned long long)sys,
				       (unsigned long long)reads);
				caught = 1;
			} else if (!end_now) {
				caught = 0;
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP)) {
			const char *command;

			if (line_reader_fill(&input, 0))
				return 0;
			while ((command = line_reader_next(&input))) {
				if (!strcmp(command, "cpu")) {
					cpu_us(&user, &sys);
					printf("cpu %llu %llu %llu\n", (unsigned long long)user,
					       (unsigned long long)sys, (unsigned long long)reads);
				} else if (!strcmp(command, "dump")) {
					for (i = 0; i < n_records; i++) {
						const struct record *r = &records[i];

						printf("rec %llu %llu %u:%u %s %s %s %s %s\n",
						       (unsigned long long)r->id,
						       (unsigned long long)r->parent_id, r->major,
						       r->minor, text + r->root,
						       text + r->mount_point, text + r->fs_type,
						       r->source ? text + r->source : "-",
						       text + r->super_options);
					}
					printf("end-dump %zu\n", n_records);
				} else if (!strcmp(command, "quit")) {
					return 0;
				}
			}
		}
	}
}

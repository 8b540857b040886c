// SPDX-License-Identifier: GPL-2.0
/*
 * (f) of the mount-watch benchmark: the kernel's own mount notifications (Linux 6.15+), lean C.
 * A fanotify group with FAN_REPORT_MNT marks the caller's mount namespace for FAN_MNT_ATTACH
 * and FAN_MNT_DETACH; the table is learnt once with listmount(2) + statmount(2), then each
 * event costs one statmount(2) of the mount it names (attach, or a move: both bits) or a
 * delete (detach). A queue overflow (FAN_Q_OVERFLOW) makes it learn the whole table again.
 * It keeps its counts (storm mounts, markers, END) from the changes alone, as the USIP
 * watchers do: O(1) per change.
 *
 *   fanotify-watcher MARKER STORM_DIR END
 *   fanotify-watcher --probe      exit 0 if this kernel has fanotify mount events (and we may
 *                                 mark the namespace), else print why on stdout and exit 1
 *
 * Speaks the line protocol of watcher.c: "ready <mounts> <learn_ns>", "marker <0|1> <t_ns>
 * <mounts>", "caught <t_ns> <user_us> <sys_us> <events> <resyncs>" on stdout; "cpu" (answers
 * "cpu <user_us> <sys_us> <events> <resyncs> <statmounts>") and "quit" on stdin.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench-common.h"
#include "mount-api.h"

/* --- Records: a hash table by unique mount id -------------------------------------------- */

struct record {
	uint64_t id;		/* 0: free slot; TOMBSTONE: deleted */
	uint64_t parent_id;
	uint32_t major, minor;
	uint64_t attr, propagation, peer_group, master, propagate_from;
	char *mount_point, *root, *fs_type, *source, *options;	/* one allocation */
};

#define TOMBSTONE UINT64_MAX
static struct record *slots;
static size_t n_slots, n_used, n_live;

static size_t slot_of(uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (n_slots - 1);
}

static struct record *find(uint64_t id)
{
	size_t i;

	for (i = slot_of(id); slots[i].id; i = (i + 1) & (n_slots - 1))
		if (slots[i].id == id)
			return &slots[i];
	return NULL;
}

static void table_init(size_t want)
{
	size_t i;

	for (i = 0; i < n_slots; i++)
		if (slots[i].id && slots[i].id != TOMBSTONE)
			free(slots[i].mount_point);
	free(slots);
	for (n_slots = 1024; n_slots < want * 2; n_slots *= 2)
		;
	slots = calloc(n_slots, sizeof(*slots));
	if (!slots)
		abort();
	n_used = n_live = 0;
}

static void insert(const struct record *r);

static void grow(void)
{
	struct record *old = slots;
	size_t i, old_n = n_slots;

	slots = calloc(n_slots * 2, sizeof(*slots));
	if (!slots)
		abort();
	n_slots *= 2;
	n_used = n_live = 0;
	for (i = 0; i < old_n; i++)
		if (old[i].id && old[i].id != TOMBSTONE)
			insert(&old[i]);
	free(old);
}

/* Takes over r's strings. */
static void insert(const struct record *r)
{
	size_t i;

	if ((n_used + 1) * 4 > n_slots * 3)
		grow();
	for (i = slot_of(r->id); slots[i].id && slots[i].id != TOMBSTONE; i = (i + 1) & (n_slots - 1))
		;
	if (!slots[i].id)
		n_used++;
	slots[i] = *r;
	n_live++;
}

static void erase(struct record *r)
{
	free(r->mount_point);
	memset(r, 0, sizeof(*r));
	r->id = TOMBSTONE;
	n_live--;
}

/* --- What the benchmark watches: counts kept from the changes --------------------------- */

static const char *marker, *end_path;
static char storm_prefix[4096];
static size_t prefix_len;
static long storm, markers, ends;

static void count(const char *mount_point, int delta)
{
	if (!strncmp(mount_point, storm_prefix, prefix_len))
		storm += delta;
	else if (!strcmp(mount_point, marker))
		markers += delta;
	else if (!strcmp(mount_point, end_path))
		ends += delta;
}

/* --- statmount(2) of one mount into a record --------------------------------------------- */

static struct bench_statmount *sm;
static size_t sm_size = 4096;
static uint64_t statmounts;

/* 0 and *r filled (its strings one allocation); -1 if the mount is gone (ENOENT). */
static int stat_one(uint64_t id, struct record *r)
{
	const uint32_t mask = STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_PROPAGATE_FROM |
			      STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE |
			      STATMOUNT_MNT_OPTS | STATMOUNT_SB_SOURCE;
	struct bench_mnt_id_req req = { .size = BENCH_MNT_ID_REQ_SIZE_VER0, .mnt_id = id, .param = mask };
	const char *point, *root, *type, *source, *options;
	size_t lp, lr, lt, ls, lo;
	char *s;

	statmounts++;
	while (syscall(SYS_statmount_nr, &req, sm, sm_size, 0u) < 0) {
		if (errno == EOVERFLOW) {
			sm_size *= 2;
			sm = realloc(sm, sm_size);
			if (!sm)
				abort();
			continue;
		}
		if (errno == ENOENT)
			return -1;
		perror("fanotify-watcher: statmount");
		exit(1);
	}
	point = sm->str + sm->mnt_point;
	root = sm->str + sm->mnt_root;
	type = sm->str + sm->fs_type;
	source = sm->mask & STATMOUNT_SB_SOURCE ? sm->str + sm->sb_source : "";
	options = sm->mask & STATMOUNT_MNT_OPTS ? sm->str + sm->mnt_opts : "";
	lp = strlen(point) + 1;
	lr = strlen(root) + 1;
	lt = strlen(type) + 1;
	ls = strlen(source) + 1;
	lo = strlen(options) + 1;
	s = malloc(lp + lr + lt + ls + lo);
	if (!s)
		abort();
	r->id = sm->mnt_id;
	r->parent_id = sm->mnt_parent_id;
	r->major = sm->sb_dev_major;
	r->minor = sm->sb_dev_minor;
	r->attr = sm->mnt_attr;
	r->propagation = sm->mnt_propagation;
	r->peer_group = sm->mnt_peer_group;
	r->master = sm->mnt_master;
	r->propagate_from = sm->propagate_from;
	r->mount_point = memcpy(s, point, lp);
	r->root = memcpy(s + lp, root, lr);
	r->fs_type = memcpy(s + lp + lr, type, lt);
	r->source = memcpy(s + lp + lr + lt, source, ls);
	r->options = memcpy(s + lp + lr + lt + ls, options, lo);
	return 0;
}

/* Applies what statmount says of mount `id` now: a new or changed entry, or none (gone). */
static void refresh(uint64_t id)
{
	struct record *old = find(id), r;

	if (old) {
		count(old->mount_point, -1);
		erase(old);
	}
	if (stat_one(id, &r))
		return;		/* umounted since the event: its detach event follows */
	insert(&r);
	count(r.mount_point, 1);
}

static void forget(uint64_t id)
{
	struct record *old = find(id);

	if (old) {
		count(old->mount_point, -1);
		erase(old);
	}
}

/* The whole table: listmount(2) of the namespace, then statmount(2) of every mount. */
static uint64_t *ids;
static size_t ids_cap;

static void learn_all(void)
{
	struct bench_mnt_id_req req = { .size = BENCH_MNT_ID_REQ_SIZE_VER0, .mnt_id = LSMT_ROOT };
	size_t n_ids = 0, i;
	long got;

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
			perror("fanotify-watcher: listmount");
			exit(1);
		}
		n_ids += (size_t)got;
		if (got < 4096)
			break;
	}
	table_init(n_ids + 1024);
	storm = markers = ends = 0;
	for (i = 0; i < n_ids; i++)
		refresh(ids[i]);
}

/* --- fanotify ------------------------------------------------------------------------------- */

static int open_fanotify(const char **why)
{
	int fd, ns;

	fd = (int)syscall(SYS_fanotify_init,
			  BENCH_FAN_CLASS_NOTIF | BENCH_FAN_REPORT_MNT | BENCH_FAN_CLOEXEC | BENCH_FAN_NONBLOCK,
			  (unsigned int)O_RDONLY);
	if (fd < 0) {
		*why = errno == EINVAL ? "fanotify_init(FAN_REPORT_MNT): EINVAL (no fanotify mount events: Linux < 6.15)"
				       : "fanotify_init(FAN_REPORT_MNT) failed";
		return -1;
	}
	ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (ns < 0) {
		*why = "open /proc/self/ns/mnt";
		close(fd);
		return -1;
	}
	if (syscall(SYS_fanotify_mark, fd, BENCH_FAN_MARK_ADD | BENCH_FAN_MARK_MNTNS,
		    BENCH_FAN_MNT_ATTACH | BENCH_FAN_MNT_DETACH, ns, NULL) < 0) {
		*why = errno == EPERM ? "fanotify_mark(FAN_MARK_MNTNS): EPERM (needs CAP_SYS_ADMIN over the namespace)"
				      : "fanotify_mark(FAN_MARK_MNTNS) failed";
		close(ns);
		close(fd);
		return -1;
	}
	close(ns);
	return fd;
}

int main(int argc, char **argv)
{
	static char buf[256 * 1024] __attribute__((aligned(8)));
	uint64_t t0, user, sys, events = 0, resyncs = 0;
	int fd, marker_seen, caught = 0;
	struct line_reader input = { .len = 0 };
	const char *why = "";

	if (argc == 2 && !strcmp(argv[1], "--probe")) {
		fd = open_fanotify(&why);
		if (fd < 0) {
			printf("%s: %s\n", why, strerror(errno));
			return 1;
		}
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: fanotify-watcher MARKER STORM_DIR END | --probe\n");
		return 2;
	}
	marker = argv[1];
	snprintf(storm_prefix, sizeof(storm_prefix), "%s/", argv[2]);
	prefix_len = strlen(storm_prefix);
	end_path = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	sm = malloc(sm_size);
	if (!sm)
		abort();

	/* The mark first, then the table: every change after the mark is an event to come. */
	t0 = now_ns();
	fd = open_fanotify(&why);
	if (fd < 0) {
		fprintf(stderr, "fanotify-watcher: %s: %s\n", why, strerror(errno));
		return 1;
	}
	learn_all();
	marker_seen = markers > 0;
	printf("ready %zu %llu\n", n_live, (unsigned long long)(now_ns() - t0));

	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = 0, .events = POLLIN },
		};

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("fanotify-watcher: poll");
			return 1;
		}
		if (fds[0].revents & POLLIN) {
			int overflow = 0;

			for (;;) {
				ssize_t got = read(fd, buf, sizeof(buf));
				size_t off = 0;

				if (got < 0) {
					if (errno == EAGAIN)
						break;
					if (errno == EINTR)
						continue;
					perror("fanotify-watcher: read");
					return 1;
				}
				while (off + sizeof(struct bench_fanotify_event_metadata) <= (size_t)got) {
					const struct bench_fanotify_event_metadata *e = (const void *)(buf + off);
					size_t info = off + e->metadata_len;
					uint64_t id = 0;

					if (e->event_len < sizeof(*e) || off + e->event_len > (size_t)got)
						break;
					if (e->mask & BENCH_FAN_Q_OVERFLOW)
						overflow = 1;
					while (info + 4 <= off + e->event_len) {
						const struct bench_fanotify_event_info_mnt *m = (const void *)(buf + info);

						if (m->len < 4)
							break;
						if (m->info_type == BENCH_FAN_EVENT_INFO_TYPE_MNT && m->len >= sizeof(*m))
							id = m->mnt_id;
						info += m->len;
					}
					if (id && !overflow) {
						events++;
						/* A move is one event with both bits: the mount is still there. */
						if (e->mask & BENCH_FAN_MNT_ATTACH)
							refresh(id);
						else if (e->mask & BENCH_FAN_MNT_DETACH)
							forget(id);
					}
					off += e->event_len;
				}
			}
			if (overflow) {
				resyncs++;
				learn_all();
			}
			if ((markers > 0) != marker_seen) {
				marker_seen = markers > 0;
				printf("marker %d %llu %zu\n", marker_seen, (unsigned long long)now_ns(), n_live);
			}
			if (ends > 0 && storm == 0) {
				if (!caught) {
					uint64_t t = now_ns();

					caught = 1;
					cpu_us(&user, &sys);
					printf("caught %llu %llu %llu %llu %llu\n", (unsigned long long)t,
					       (unsigned long long)user, (unsigned long long)sys,
					       (unsigned long long)events, (unsigned long long)resyncs);
				}
			} else if (ends == 0) {
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
					printf("cpu %llu %llu %llu %llu %llu\n", (unsigned long long)user,
					       (unsigned long long)sys, (unsigned long long)events,
					       (unsigned long long)resyncs, (unsigned long long)statmounts);
				} else if (!strcmp(command, "quit")) {
					return 0;
				}
			}
		}
	}
}

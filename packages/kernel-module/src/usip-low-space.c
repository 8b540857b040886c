// SPDX-License-Identifier: GPL-2.0
/*
 * Low-space notifiers: a listener's low-space notifiers are checked on a
 * timer in the kernel, so that every client of the family (ours, the
 * kernel's YNL CLI) gets the same events from the same listener API.
 *
 * A listener with low-space notifiers has one watch. Its tick (delayed work
 * on usip_wq, every shortest interval-ms of its notifiers) starts a round;
 * a round reads the usage of each mount its due notifiers select and
 * compares it with their thresholds. Each (notifier, mount) pair has a small
 * state record: a notifier fires once when free space falls below its
 * threshold (space-state low, with the numbers), and once more when it rises
 * above the threshold plus its hysteresis (recovered). A mount that is
 * already low when it is first read fires low at once.
 *
 * Which mounts: those of the listener's mount namespace that its
 * registering process saw below its root (a global listener: its
 * namespace's root), as mount-get shows them, chosen by the notifier's
 * mount-id or path-prefix selector, or all of them. The set is worked out
 * again only when the namespace's mount tree changed (its event counter,
 * the one mountinfo's poll() uses), under namespace_sem held for read.
 * References to the mounts are taken under it one at a time, and statfs
 * runs with no lock held and no other mount pinned: a hung file system
 * blocks only the round that reads it, the next tick starts a new round
 * (at most USIP_SPACE_ROUNDS at once), which skips the record whose read
 * has not returned, and never makes the umount of another mount fail with
 * EBUSY.
 *
 * A mount that goes (unmounted, moved out of sight, or no longer matching
 * its path prefix) loses its record. A mount-id notifier then gets a
 * mount-gone event and stays, dormant, until a mount with that id is there
 * again; it also gets mount-gone at its first check when no such mount is
 * there. A path-prefix or every-mount notifier gets mount-gone only for a
 * mount whose last report was low, so that a client can forget it.
 *
 * Bounds: at most max_watched_mounts_per_listener records per listener
 * (more selected mounts are not watched, and the kernel log says so once);
 * each record is a fixed-size allocation, charged like the rest of the
 * watch (and the events it posts) to the registering process's memory
 * cgroup, and counted in usip_objects and stats' watched-mounts.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kdev_t.h>
#include <linux/list.h>
#include <linux/memcontrol.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/mount.h>
#include <linux/mutex.h>
#include <linux/path.h>
#include <linux/refcount.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/string.h>
#include <linux/workqueue.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

unsigned int usip_max_watched_mounts_per_listener = 256;
module_param_named(max_watched_mounts_per_listener, usip_max_watched_mounts_per_listener,
		   uint, 0644);
MODULE_PARM_DESC(max_watched_mounts_per_listener,
		 "Mounts one listener's low-space notifiers may watch; more are not watched (default 256)");

/* Rounds of one watch at once: more than one only while a statfs hangs. */
#define USIP_SPACE_ROUNDS	4
#define USIP_SPACE_HASH_BITS	5

enum usip_space_rec_state {
	USIP_SPACE_UNKNOWN,	/* not read yet, or nothing to measure */
	USIP_SPACE_OK,
	USIP_SPACE_LOW,
};

enum usip_space_level {
	USIP_LEVEL_NONE,	/* the file system has nothing to measure */
	USIP_LEVEL_BELOW,	/* below the threshold */
	USIP_LEVEL_BETWEEN,	/* at or above it, not above it plus the hysteresis */
	USIP_LEVEL_ABOVE,	/* above the threshold plus the hysteresis */
};

/* One notifier watching one mount. */
struct usip_space_rec {
	struct list_head node;		/* in the watch's recs, in round order */
	struct hlist_node hash;		/* in the watch's hash, by mount */
	/* Who the mount is; never dereferenced but in its namespace, under namespace_sem. */
	struct mount *mount;
	struct super_block *sb;
	u64 mount_id;
	u64 unique_id;
	u32 spec;			/* index in the watch's specs */
	u32 round;			/* the last round that looked at it */
	/* Owned by the round whose statfs of it runs (busy). */
	u8 state;
	/* Under the watch's lock: */
	bool seen;			/* by the current look at the mount tree */
	bool busy;			/* a round reads it; that round owns state */
	bool orphan;			/* went while busy: that round frees it */
};

struct usip_space_watch;

struct usip_space_round {
	struct work_struct work;
	struct usip_space_watch *w;
};

struct usip_space_notifier {
	struct usip_space_spec spec;	/* its path_prefix points into the watch */
	unsigned long next_due;		/* jiffies */
	unsigned long interval;		/* jiffies */
	bool due;			/* in the newest round */
	bool absent_told;		/* mount-id: mount-gone said, none there since */
	bool tell_absent;		/* mount-id: to be said after the look */
};

struct usip_space_watch {
	/* The listener's, and one for each round queued or running. */
	refcount_t refs;
	/* Records, hash, the notifiers' state, the tree's event count, buf. */
	struct mutex lock;
	struct delayed_work tick;
	struct usip_space_round rounds[USIP_SPACE_ROUNDS];
	unsigned long rounds_busy;	/* a bit per round, atomic */
	struct list_head all;		/* in usip_space_watches while started */
	bool started;
	bool stopped;
	bool looked;			/* the mount tree was looked at once */
	bool capped;			/* the last look left mounts unwatched */
	u32 listener_id;
	u32 round;			/* the newest round */
	u64 ns_event;			/* the tree's event count at the last look */
	unsigned long period;		/* jiffies, the shortest interval */
	struct ns_common *ns;		/* referenced */
	struct path root;		/* referenced; empty: the namespace's root */
	struct mem_cgroup *memcg;	/* referenced, or NULL */
	struct usip_path_buf *buf;
	unsigned int n_recs;		/* records, orphans included */
	struct list_head recs;
	DECLARE_HASHTABLE(hash, USIP_SPACE_HASH_BITS);
	unsigned int n_specs;
	struct usip_space_notifier specs[];
	/* The path prefixes follow. */
};

static atomic_t usip_space_records = ATOMIC_INIT(0);

/* Watches of registered listeners, for unloading. */
static DEFINE_MUTEX(usip_space_lock);
static LIST_HEAD(usip_space_watches);

unsigned int usip_space_watched(const struct usip_space_watch *w)
{
	return w ? READ_ONCE(w->n_recs) : 0;
}

unsigned int usip_space_watched_total(void)
{
	return atomic_read(&usip_space_records);
}

/*
 * Reads @mnt's usage; no lock held. The one place statfs is called, so
 * that a bounded (timed) statfs can take its place.
 */
static int usip_space_statfs(struct vfsmount *mnt, struct kstatfs *st)
{
	struct path path = { .mnt = mnt, .dentry = mnt->mnt_root };

	return vfs_statfs(&path, st);
}

/* Whole path components: /mnt holds /mnt and /mnt/a, not /mnta. */
static bool usip_space_path_below(const char *path, const struct usip_space_spec *s)
{
	size_t len = s->path_prefix_len;

	if (strncmp(path, s->path_prefix, len) != 0)
		return false;
	return path[len] == '\0' || path[len] == '/' || s->path_prefix[len - 1] == '/';
}

static enum usip_space_level usip_space_level(const struct usip_space_spec *s,
					      const struct kstatfs *st)
{
	unsigned __int128 have, of, threshold = s->threshold;
	unsigned __int128 scale = 100 + s->hysteresis;

	switch (s->kind) {
	case USIP_SPACE_BLOCKS:
		have = st->f_bavail;
		of = st->f_blocks;
		break;
	case USIP_SPACE_INODES:
		have = st->f_ffree;
		of = st->f_files;
		break;
	case USIP_SPACE_BYTES:
		if (!st->f_blocks)
			return USIP_LEVEL_NONE;
		have = (unsigned __int128)st->f_bavail * (unsigned long)st->f_frsize;
		if (have < threshold)
			return USIP_LEVEL_BELOW;
		return have * 100 > threshold * scale ? USIP_LEVEL_ABOVE : USIP_LEVEL_BETWEEN;
	default:
		return USIP_LEVEL_NONE;
	}
	/* Percentages: have / of against threshold / 100, and its recovery level. */
	if (!of)
		return USIP_LEVEL_NONE;
	if (have * 100 < threshold * of)
		return USIP_LEVEL_BELOW;
	return have * 10000 > threshold * scale * of ? USIP_LEVEL_ABOVE : USIP_LEVEL_BETWEEN;
}

/* --- Records ------------------------------------------------------------- */

static struct usip_space_rec *usip_space_find(struct usip_space_watch *w, struct mount *m,
					      u32 spec)
{
	struct usip_space_rec *rec;

	hash_for_each_possible(w->hash, rec, hash, (unsigned long)m)
		if (rec->mount == m && rec->spec == spec &&
		    rec->mount_id == usip_mnt_id(m) &&
		    rec->unique_id == usip_mnt_unique_id(m) &&
		    rec->sb == usip_mnt_vfs(m)->mnt_sb)
			return rec;
	return NULL;
}

/* A record for @m; under the watch's lock and namespace_sem, so it must not sleep. */
static struct usip_space_rec *usip_space_add(struct usip_space_watch *w, struct mount *m,
					     u32 spec)
{
	struct usip_space_rec *rec;

	rec = kzalloc(sizeof(*rec), GFP_NOWAIT | __GFP_ACCOUNT | __GFP_NOWARN);
	if (!rec)
		return NULL;
	atomic_inc(&usip_objects);
	atomic_inc(&usip_space_records);
	rec->mount = m;
	rec->sb = usip_mnt_vfs(m)->mnt_sb;
	rec->mount_id = usip_mnt_id(m);
	rec->unique_id = usip_mnt_unique_id(m);
	rec->spec = spec;
	rec->seen = true;
	/* At the head: the rounds under way look at it too. */
	list_add(&rec->node, &w->recs);
	hash_add(w->hash, &rec->hash, (unsigned long)m);
	WRITE_ONCE(w->n_recs, w->n_recs + 1);
	return rec;
}

static void usip_space_rec_free(struct usip_space_watch *w, struct usip_space_rec *rec)
{
	WRITE_ONCE(w->n_recs, w->n_recs - 1);
	atomic_dec(&usip_space_records);
	usip_kfree(rec);
}

/* --- Events -------------------------------------------------------------- */

static void usip_space_post(struct usip_space_watch *w, struct usip_event_info *info)
{
	u64 seq;

	info->type = USIP_EVENT_TYPE_STORAGE;
	info->action = USIP_ACTION_LOW_SPACE;
	info->present |= USIP_EVENT_TARGETED | USIP_EVENT_NO_TASK | USIP_EVENT_HAS_SPACE;
	info->target_listener = w->listener_id;
	/* Dropped (queue full): the listener's miss count says so. */
	usip_event_post(info, w->ns, GFP_KERNEL_ACCOUNT, &seq);
}

/* The mount of @rec is gone; tells its notifier if it must be told. */
static void usip_space_gone(struct usip_space_watch *w, const struct usip_space_rec *rec)
{
	struct usip_event_info info = {
		.present = USIP_EVENT_HAS_MOUNT_ID,
		.mount_id = rec->mount_id,
		.unique_id = rec->unique_id,
		.target_notifier = w->specs[rec->spec].spec.notifier,
		.space_state = USIP_SPACE_STATE_MOUNT_GONE,
	};

	if (!w->specs[rec->spec].spec.has_mount_id && rec->state != USIP_SPACE_LOW)
		return;
	if (usip_k.has_unique_id)
		info.present |= USIP_EVENT_HAS_UNIQUE_ID;
	usip_space_post(w, &info);
}

static void usip_space_absent(struct usip_space_watch *w, const struct usip_space_spec *s)
{
	struct usip_event_info info = {
		.present = USIP_EVENT_HAS_MOUNT_ID,
		.mount_id = s->mount_id,
		.target_notifier = s->notifier,
		.space_state = USIP_SPACE_STATE_MOUNT_GONE,
	};

	usip_space_post(w, &info);
}

/* Tells and frees the records on @gone; tells mount-id notifiers whose mount is not there. */
static void usip_space_tell_gone(struct usip_space_watch *w, struct list_head *gone)
{
	struct usip_space_rec *rec, *tmp;
	unsigned int i;

	list_for_each_entry_safe(rec, tmp, gone, node) {
		list_del(&rec->node);
		usip_space_gone(w, rec);
		mutex_lock(&w->lock);
		usip_space_rec_free(w, rec);
		mutex_unlock(&w->lock);
	}
	mutex_lock(&w->lock);
	for (i = 0; i < w->n_specs; i++) {
		if (!w->specs[i].tell_absent)
			continue;
		w->specs[i].tell_absent = false;
		usip_space_absent(w, &w->specs[i].spec);
	}
	mutex_unlock(&w->lock);
}

static void usip_space_fs_type(char *out, size_t len, struct super_block *sb)
{
	const char *subtype = sb->s_subtype;

	if (subtype && subtype[0])
		snprintf(out, len, "%s.%s", sb->s_type->name, subtype);
	else
		strscpy(out, sb->s_type->name, len);
}

/*
 * @rec's mount, @mnt (referenced), crossed its notifier's threshold: posts
 * the event, with the mount's path as the listener sees it when it is still
 * in the namespace.
 */
static void usip_space_cross(struct usip_space_watch *w, const struct usip_space_rec *rec,
			     struct vfsmount *mnt, const struct kstatfs *st, u32 state)
{
	struct mount *m = usip_real_mount(mnt);
	struct mnt_namespace *ns = (struct mnt_namespace *)w->ns;
	struct usip_event_info info = {
		.present = USIP_EVENT_HAS_MOUNT_ID | USIP_EVENT_HAS_DEV | USIP_EVENT_HAS_USAGE,
		.mount_id = rec->mount_id,
		.unique_id = rec->unique_id,
		.dev = new_encode_dev(mnt->mnt_sb->s_dev),
		.source = usip_mnt_devname(m),
		.target_notifier = w->specs[rec->spec].spec.notifier,
		.space_state = state,
		.bytes_total = st->f_blocks * st->f_frsize,
		.bytes_available = st->f_bavail * st->f_frsize,
		.files_total = st->f_files,
		.files_free = st->f_ffree,
	};
	char fs_type[64];

	if (usip_k.has_unique_id)
		info.present |= USIP_EVENT_HAS_UNIQUE_ID;
	usip_space_fs_type(fs_type, sizeof(fs_type), mnt->mnt_sb);
	info.fs_type = fs_type;
	/* The buffer is the watch's: its lock is held until the event is built. */
	mutex_lock(&w->lock);
	down_read(usip_k.namespace_sem);
	if (usip_mnt_ns(m) == ns) {
		struct path root = w->root.mnt ? w->root : usip_ns_root_path(ns);
		const char *path = usip_mount_point(m, &root, w->buf);

		info.path = IS_ERR(path) ? NULL : path;
	}
	up_read(usip_k.namespace_sem);
	usip_space_post(w, &info);
	mutex_unlock(&w->lock);
}

/* Compares @rec's fresh usage with its threshold; the round owns @rec. */
static void usip_space_judge(struct usip_space_watch *w, struct usip_space_rec *rec,
			     struct vfsmount *mnt, const struct kstatfs *st)
{
	enum usip_space_level level = usip_space_level(&w->specs[rec->spec].spec, st);

	switch (level) {
	case USIP_LEVEL_NONE:
		rec->state = USIP_SPACE_UNKNOWN;
		break;
	case USIP_LEVEL_BELOW:
		if (rec->state != USIP_SPACE_LOW) {
			rec->state = USIP_SPACE_LOW;
			usip_space_cross(w, rec, mnt, st, USIP_SPACE_STATE_LOW);
		}
		break;
	case USIP_LEVEL_BETWEEN:
		if (rec->state == USIP_SPACE_UNKNOWN)
			rec->state = USIP_SPACE_OK;
		break;
	case USIP_LEVEL_ABOVE:
		if (rec->state == USIP_SPACE_LOW)
			usip_space_cross(w, rec, mnt, st, USIP_SPACE_STATE_RECOVERED);
		rec->state = USIP_SPACE_OK;
		break;
	}
}

/* --- Looking at the mount tree ------------------------------------------- */

/*
 * Makes the records match the mounts the notifiers select now. The watch's
 * lock and namespace_sem (read) held: nothing here sleeps but to reschedule.
 * Records of mounts that went are moved to @gone, or made orphans when a
 * round reads them.
 */
static void usip_space_look(struct usip_space_watch *w, struct list_head *gone)
{
	struct mnt_namespace *ns = (struct mnt_namespace *)w->ns;
	struct path root = w->root.mnt ? w->root : usip_ns_root_path(ns);
	unsigned int cap = READ_ONCE(usip_max_watched_mounts_per_listener);
	unsigned int i, skipped = 0, looked = 0;
	struct usip_space_rec *rec;
	struct hlist_node *tmp;
	struct mount *m;
	int bkt;
	bool complete = true;

	w->ns_event = usip_ns_event(ns);
	w->looked = true;
	list_for_each_entry(rec, &w->recs, node)
		rec->seen = false;
	for (m = usip_ns_next(ns, NULL); m; m = usip_ns_next(ns, m)) {
		const char *path = NULL;
		bool path_done = false;

		if (!(++looked % 64))
			cond_resched();
		if (!usip_mount_below(m, &root))
			continue;
		for (i = 0; i < w->n_specs; i++) {
			const struct usip_space_spec *s = &w->specs[i].spec;

			if (s->has_mount_id && usip_mnt_id(m) != s->mount_id)
				continue;
			if (s->path_prefix) {
				if (!path_done) {
					path = usip_mount_point(m, &root, w->buf);
					path_done = true;
				}
				if (IS_ERR_OR_NULL(path) || !usip_space_path_below(path, s))
					continue;
			}
			rec = usip_space_find(w, m, i);
			if (rec) {
				rec->seen = true;
				continue;
			}
			if (w->n_recs >= cap) {
				skipped++;
				continue;
			}
			if (!usip_space_add(w, m, i))
				complete = false;
		}
	}
	hash_for_each_safe(w->hash, bkt, tmp, rec, hash) {
		if (rec->seen)
			continue;
		hash_del(&rec->hash);
		/* Its mount-gone is the one that tells the notifier. */
		w->specs[rec->spec].absent_told = true;
		if (rec->busy) {
			list_del(&rec->node);
			rec->orphan = true;
		} else {
			list_move_tail(&rec->node, gone);
		}
	}
	/* A mount-id notifier whose mount is not there is told once. */
	for (i = 0; i < w->n_specs; i++) {
		struct usip_space_notifier *sn = &w->specs[i];
		bool there = false;

		if (!sn->spec.has_mount_id)
			continue;
		hash_for_each(w->hash, bkt, rec, hash)
			if (rec->spec == i) {
				there = true;
				break;
			}
		if (there) {
			sn->absent_told = false;
		} else if (!sn->absent_told) {
			sn->absent_told = true;
			sn->tell_absent = true;
		}
	}
	/* Without memory for a record, look again next round. */
	if (!complete)
		w->looked = false;
	if (skipped && !w->capped)
		pr_notice_ratelimited("listener %u: its low-space notifiers select %u more mounts than max_watched_mounts_per_listener (%u); those are not watched\n",
				      w->listener_id, skipped, cap);
	w->capped = skipped;
}

/* --- Rounds -------------------------------------------------------------- */

static void usip_space_put(struct usip_space_watch *w)
{
	struct usip_space_rec *rec, *tmp;

	if (!refcount_dec_and_test(&w->refs))
		return;
	/* No round runs: no record is busy, none is an orphan. */
	list_for_each_entry_safe(rec, tmp, &w->recs, node)
		usip_space_rec_free(w, rec);
	if (w->buf) {
		kvfree(w->buf);
		atomic_dec(&usip_objects);
	}
	path_put(&w->root);
	usip_mnt_ns_put(w->ns);
	mem_cgroup_put(w->memcg);
	mutex_destroy(&w->lock);
	usip_kfree(w);
}

/*
 * The next record of round @round to read, claimed and its mount referenced
 * in *@mnt; NULL when the round is over (or a newer one took over). Takes
 * another look at the mount tree first if it changed.
 */
static struct usip_space_rec *usip_space_next(struct usip_space_watch *w, u32 round,
					      struct vfsmount **mnt, struct list_head *gone)
{
	struct mnt_namespace *ns = (struct mnt_namespace *)w->ns;
	struct usip_space_rec *rec = NULL;

	mutex_lock(&w->lock);
	if (w->round != round || READ_ONCE(w->stopped))
		goto out;
	down_read(usip_k.namespace_sem);
	if (!w->looked || usip_ns_event(ns) != w->ns_event)
		usip_space_look(w, gone);
	/* Each record once: a record looked at goes to the tail. */
	for (;;) {
		rec = list_first_entry_or_null(&w->recs, struct usip_space_rec, node);
		if (!rec || rec->round == round) {
			rec = NULL;
			break;
		}
		rec->round = round;
		list_move_tail(&rec->node, &w->recs);
		/* One whose last read has not returned is skipped. */
		if (!rec->busy && w->specs[rec->spec].due) {
			rec->busy = true;
			/* In the namespace, under namespace_sem: alive. */
			*mnt = mntget(usip_mnt_vfs(rec->mount));
			break;
		}
	}
	up_read(usip_k.namespace_sem);
out:
	mutex_unlock(&w->lock);
	return rec;
}

static void usip_space_release(struct usip_space_watch *w, struct usip_space_rec *rec)
{
	bool orphan;

	mutex_lock(&w->lock);
	rec->busy = false;
	orphan = rec->orphan;
	mutex_unlock(&w->lock);
	if (!orphan)
		return;
	usip_space_gone(w, rec);
	mutex_lock(&w->lock);
	usip_space_rec_free(w, rec);
	mutex_unlock(&w->lock);
}

static void usip_space_check(struct usip_space_watch *w)
{
	unsigned long now = jiffies;
	bool any = false;
	unsigned int i;
	u32 round;

	mutex_lock(&w->lock);
	round = ++w->round;
	for (i = 0; i < w->n_specs; i++) {
		struct usip_space_notifier *sn = &w->specs[i];

		sn->due = time_after_eq(now, sn->next_due);
		if (sn->due) {
			sn->next_due = now + sn->interval;
			any = true;
		}
	}
	mutex_unlock(&w->lock);
	if (!any)
		return;

	for (;;) {
		struct vfsmount *mnt = NULL;
		struct usip_space_rec *rec;
		struct kstatfs st;
		LIST_HEAD(gone);

		rec = usip_space_next(w, round, &mnt, &gone);
		usip_space_tell_gone(w, &gone);
		if (!rec)
			break;
		/* No lock held, no other mount pinned. */
		if (!usip_space_statfs(mnt, &st))
			usip_space_judge(w, rec, mnt, &st);
		mntput(mnt);
		usip_space_release(w, rec);
		cond_resched();
	}
}

static void usip_space_round_work(struct work_struct *work)
{
	struct usip_space_round *r = container_of(work, struct usip_space_round, work);
	struct usip_space_watch *w = r->w;
	struct mem_cgroup *old;

	/* What the round allocates (records, events) is the listener owner's. */
	old = set_active_memcg(w->memcg);
	if (!READ_ONCE(w->stopped))
		usip_space_check(w);
	set_active_memcg(old);
	clear_bit(r - w->rounds, &w->rounds_busy);
	usip_space_put(w);
}

static void usip_space_tick(struct work_struct *work)
{
	struct usip_space_watch *w = container_of(to_delayed_work(work),
						  struct usip_space_watch, tick);
	unsigned int i;

	if (READ_ONCE(w->stopped))
		return;
	for (i = 0; i < USIP_SPACE_ROUNDS; i++)
		if (!test_and_set_bit(i, &w->rounds_busy))
			break;
	if (i < USIP_SPACE_ROUNDS) {
		refcount_inc(&w->refs);
		queue_work(usip_wq, &w->rounds[i].work);
	} else {
		pr_notice_ratelimited("listener %u: low-space checks wait for %d statfs calls that have not returned\n",
				      w->listener_id, USIP_SPACE_ROUNDS);
	}
	queue_delayed_work(usip_wq, &w->tick, w->period);
}

/* --- The listener's side ------------------------------------------------- */

struct usip_space_watch *usip_space_watch_new(struct ns_common *ns, const struct path *root,
					      const struct usip_space_spec *specs,
					      unsigned int n)
{
	struct usip_space_watch *w;
	size_t size, strings = 0;
	unsigned int i;
	u32 shortest = U32_MAX;
	char *at;

	for (i = 0; i < n; i++)
		if (specs[i].path_prefix)
			strings += specs[i].path_prefix_len + 1;
	size = struct_size(w, specs, n) + strings;
	/* In the registering task: charged to its memory cgroup. */
	w = kzalloc(size, GFP_KERNEL_ACCOUNT);
	if (!w)
		return NULL;
	atomic_inc(&usip_objects);
	w->buf = kvmalloc(sizeof(*w->buf), GFP_KERNEL_ACCOUNT);
	if (!w->buf) {
		usip_kfree(w);
		return NULL;
	}
	atomic_inc(&usip_objects);
	refcount_set(&w->refs, 1);
	mutex_init(&w->lock);
	INIT_DELAYED_WORK(&w->tick, usip_space_tick);
	for (i = 0; i < USIP_SPACE_ROUNDS; i++) {
		INIT_WORK(&w->rounds[i].work, usip_space_round_work);
		w->rounds[i].w = w;
	}
	INIT_LIST_HEAD(&w->recs);
	hash_init(w->hash);
	/* The listener holds @ns and @root meanwhile. */
	WARN_ON(!usip_mnt_ns_tryget(ns));
	w->ns = ns;
	if (root->mnt) {
		w->root = *root;
		path_get(&w->root);
	}
	w->memcg = get_mem_cgroup_from_mm(current->mm);
	w->n_specs = n;
	at = (char *)&w->specs[n];
	for (i = 0; i < n; i++) {
		struct usip_space_notifier *sn = &w->specs[i];

		sn->spec = specs[i];
		if (specs[i].path_prefix) {
			memcpy(at, specs[i].path_prefix, specs[i].path_prefix_len);
			at[specs[i].path_prefix_len] = '\0';
			sn->spec.path_prefix = at;
			at += specs[i].path_prefix_len + 1;
		}
		sn->interval = max(msecs_to_jiffies(specs[i].interval_ms), 1UL);
		shortest = min(shortest, specs[i].interval_ms);
	}
	w->period = max(msecs_to_jiffies(shortest), 1UL);
	return w;
}

void usip_space_watch_start(struct usip_space_watch *w, u32 listener_id)
{
	unsigned long now = jiffies;
	unsigned int i;

	w->listener_id = listener_id;
	for (i = 0; i < w->n_specs; i++)
		w->specs[i].next_due = now;
	w->started = true;
	mutex_lock(&usip_space_lock);
	list_add(&w->all, &usip_space_watches);
	mutex_unlock(&usip_space_lock);
	/* The first round at once: a mount already low fires now. */
	queue_delayed_work(usip_wq, &w->tick, 0);
}

/*
 * No more ticks or rounds: those queued are cancelled, one running finishes
 * by itself (it may wait for a statfs) and keeps its reference meanwhile.
 */
static void usip_space_halt(struct usip_space_watch *w)
{
	unsigned int i;

	WRITE_ONCE(w->stopped, true);
	/* The tick never waits for statfs. */
	cancel_delayed_work_sync(&w->tick);
	for (i = 0; i < USIP_SPACE_ROUNDS; i++) {
		if (!cancel_work(&w->rounds[i].work))
			continue;
		clear_bit(i, &w->rounds_busy);
		/* Never the last: the caller's stays. */
		usip_space_put(w);
	}
}

void usip_space_watch_stop(struct usip_space_watch *w)
{
	if (!w)
		return;
	if (w->started) {
		mutex_lock(&usip_space_lock);
		list_del(&w->all);
		mutex_unlock(&usip_space_lock);
		usip_space_halt(w);
	}
	usip_space_put(w);
}

void usip_low_space_exit(void)
{
	struct usip_space_watch *w;

	mutex_lock(&usip_space_lock);
	list_for_each_entry(w, &usip_space_watches, all)
		usip_space_halt(w);
	mutex_unlock(&usip_space_lock);
	/* Rounds under way: a statfs that hangs holds the unload up. */
	flush_workqueue(usip_wq);
}

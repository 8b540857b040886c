// SPDX-License-Identifier: GPL-2.0
/*
 * enospc and edquot events: system calls that fail because a file system is
 * full or a disk quota is exhausted; and quota events: the kernel's own disk
 * quota warnings.
 *
 * No kernel interface reports a failed write, so the module looks at the
 * exit of every system call (the raw_syscalls:sys_exit tracepoint) while a
 * listener wants these events, and only then. Its probe is two compares for
 * every call that did not fail with ENOSPC or EDQUOT. For one that did, it
 * copies what it needs (the syscall's file or directory fd, its path, who
 * called) into a record taken from a fixed pool and hands it to a worker,
 * without sleeping, allocating or taking a sleeping lock: it runs with
 * preemption disabled, and would be right on PREEMPT_RT too. The worker
 * finds the mount and inode, coalesces (at most one event per superblock,
 * errno and uid per usip.space_error_interval_ms; the next one's count says
 * how many failures it stands for) and posts the event, which is then
 * scoped like every other: a listener sees it only if it sees the mount
 * from its root, with pids and uids in its own namespaces.
 *
 * Quota warnings come from a kprobe on quota_send_warning(), the function
 * the kernel calls to send them to its quota netlink family (which only the
 * initial network namespace hears).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/hash.h>
#include <linux/hashtable.h>
#include <linux/kprobes.h>
#include <linux/llist.h>
#include <linux/mount.h>
#include <linux/mutex.h>
#include <linux/namei.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <asm/syscall.h>
#include <asm/unistd.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

/* --- The system calls covered ---------------------------------------------- */

/* Where a system call names what it failed on. */
struct usip_space_call {
	int nr;
	const char *name;
	s8 fd;		/* argument: the fd written to, or -1 */
	s8 dfd;		/* argument: the directory fd @path is relative to, or -1 (cwd) */
	s8 path;	/* argument: the path of the entry made, or -1 */
};

#define USIP_FD_CALL(n, name, fd)	{ __NR_##n, name, fd, -1, -1 }
#define USIP_PATH_CALL(n, name, dfd, p)	{ __NR_##n, name, -1, dfd, p }

/* Only x86_64's native calls: the module builds for x86_64 only (dkms.conf). */
static const struct usip_space_call usip_space_calls[] = {
	USIP_FD_CALL(write, "write", 0),
	USIP_FD_CALL(pwrite64, "pwrite64", 0),
	USIP_FD_CALL(writev, "writev", 0),
	USIP_FD_CALL(pwritev, "pwritev", 0),
	USIP_FD_CALL(pwritev2, "pwritev2", 0),
	USIP_FD_CALL(fallocate, "fallocate", 0),
	USIP_FD_CALL(ftruncate, "ftruncate", 0),
	USIP_FD_CALL(fsync, "fsync", 0),
	USIP_FD_CALL(fdatasync, "fdatasync", 0),
	USIP_FD_CALL(sync_file_range, "sync_file_range", 0),
	USIP_FD_CALL(copy_file_range, "copy_file_range", 2),
	USIP_FD_CALL(sendfile, "sendfile", 0),
	USIP_FD_CALL(splice, "splice", 2),
	USIP_FD_CALL(fsetxattr, "fsetxattr", 0),
	USIP_PATH_CALL(open, "open", -1, 0),
	USIP_PATH_CALL(creat, "creat", -1, 0),
	USIP_PATH_CALL(openat, "openat", 0, 1),
	USIP_PATH_CALL(openat2, "openat2", 0, 1),
	USIP_PATH_CALL(mkdir, "mkdir", -1, 0),
	USIP_PATH_CALL(mkdirat, "mkdirat", 0, 1),
	USIP_PATH_CALL(mknod, "mknod", -1, 0),
	USIP_PATH_CALL(mknodat, "mknodat", 0, 1),
	USIP_PATH_CALL(link, "link", -1, 1),
	USIP_PATH_CALL(linkat, "linkat", 2, 3),
	USIP_PATH_CALL(symlink, "symlink", -1, 1),
	USIP_PATH_CALL(symlinkat, "symlinkat", 1, 2),
	USIP_PATH_CALL(rename, "rename", -1, 1),
	USIP_PATH_CALL(renameat, "renameat", 2, 3),
	USIP_PATH_CALL(renameat2, "renameat2", 2, 3),
	USIP_PATH_CALL(truncate, "truncate", -1, 0),
	USIP_PATH_CALL(setxattr, "setxattr", -1, 0),
	USIP_PATH_CALL(lsetxattr, "lsetxattr", -1, 0),
};

static const struct usip_space_call *usip_space_call(long nr)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(usip_space_calls); i++)
		if (usip_space_calls[i].nr == nr)
			return &usip_space_calls[i];
	return NULL;
}

/* --- Records: what a probe saw, for the worker ------------------------------ */

/* Longest path a record keeps; a longer one is not reported (counted as lost). */
#define USIP_SPACE_NAME_MAX	1024
/* Records in the pool: failures waiting for the worker at once, system-wide. */
#define USIP_SPACE_RECORDS	256

enum usip_space_rec_kind {
	USIP_REC_SPACE_ERROR,	/* a failed system call */
	USIP_REC_QUOTA,		/* a quota warning */
};

struct usip_space_rec {
	struct llist_node node;
	enum usip_space_rec_kind kind;
	int err;				/* ENOSPC or EDQUOT */
	const struct usip_space_call *call;
	struct file *file;			/* the fd, or the dfd of the path; referenced */
	struct task_struct *task;		/* for its root and cwd; referenced */
	const struct cred *cred;		/* to look the path up as the caller; referenced */
	struct pid *pid;			/* thread group; referenced */
	kuid_t uid;
	char comm[TASK_COMM_LEN];
	/* quota warnings */
	struct kqid qid;
	dev_t dev;
	u32 warning;
	struct ns_common *mnt_ns;		/* referenced */
	char name[USIP_SPACE_NAME_MAX];
};

/*
 * The pool, while armed: a stack of free records under a raw spinlock (not a
 * sleeping lock on PREEMPT_RT; held for a few instructions).
 */
static DEFINE_RAW_SPINLOCK(usip_space_pool_lock);
static struct usip_space_rec *usip_space_records;
static struct usip_space_rec *usip_space_free[USIP_SPACE_RECORDS];
static unsigned int usip_space_n_free;

static LLIST_HEAD(usip_space_todo);
static void usip_space_work_fn(struct work_struct *work);
static DECLARE_WORK(usip_space_work, usip_space_work_fn);

/* Failures not reported: the pool was empty, the path too long or unresolvable. */
static atomic64_t usip_space_lost = ATOMIC64_INIT(0);

/*
 * Failures on a file descriptor that found the pool empty, by a hash of their
 * superblock, errno and uid: the slot of that key takes them into its count
 * when the worker or the flush next looks at it. (Before the worker has made
 * a storm's slot, every failure takes a record; on a busy CPU the worker may
 * run only after hundreds.) Two keys of one bucket share it: a count may go
 * to the other one's message, but is not lost.
 */
#define USIP_SPACE_OVERFLOW_BITS	6
static atomic_t usip_space_overflow[1 << USIP_SPACE_OVERFLOW_BITS];

static struct usip_space_rec *usip_space_rec_get(void)
{
	struct usip_space_rec *rec = NULL;
	unsigned long flags;

	raw_spin_lock_irqsave(&usip_space_pool_lock, flags);
	if (usip_space_n_free)
		rec = usip_space_free[--usip_space_n_free];
	raw_spin_unlock_irqrestore(&usip_space_pool_lock, flags);
	return rec;
}

/* Drops what @rec holds and gives it back; process context. */
static void usip_space_rec_put(struct usip_space_rec *rec)
{
	unsigned long flags;

	if (rec->file)
		fput(rec->file);
	if (rec->task)
		put_task_struct(rec->task);
	if (rec->cred)
		put_cred(rec->cred);
	put_pid(rec->pid);
	if (rec->mnt_ns)
		usip_mnt_ns_put(rec->mnt_ns);
	memset(rec, 0, offsetof(struct usip_space_rec, name));
	rec->name[0] = '\0';
	raw_spin_lock_irqsave(&usip_space_pool_lock, flags);
	usip_space_free[usip_space_n_free++] = rec;
	raw_spin_unlock_irqrestore(&usip_space_pool_lock, flags);
}

/* Who is failing: taken in the probe, from current, without sleeping. */
static void usip_space_rec_caller(struct usip_space_rec *rec)
{
	rec->pid = get_pid(task_tgid(current));
	rec->uid = current_euid();
	memcpy(rec->comm, current->comm, sizeof(rec->comm));
	rec->comm[sizeof(rec->comm) - 1] = '\0';
}

static void usip_space_queue(struct usip_space_rec *rec)
{
	llist_add(&rec->node, &usip_space_todo);
	queue_work(usip_wq, &usip_space_work);
}

/*
 * Copies the user's NUL-terminated string at @uptr without faulting (the
 * call just read it: it is resident); false if it is longer than the record
 * keeps or cannot be read.
 */
static bool usip_space_copy_name(char *to, const char __user *uptr)
{
	size_t done = 0, chunk = 64;

	while (done < USIP_SPACE_NAME_MAX) {
		size_t n = min(chunk, USIP_SPACE_NAME_MAX - done);

		/* A chunk may run into an unmapped page after the string: go bytewise. */
		if (copy_from_user_nofault(to + done, uptr + done, n)) {
			if (n == 1)
				return false;
			chunk = 1;
			continue;
		}
		if (memchr(to + done, '\0', n))
			return true;
		done += n;
	}
	return false;
}

static bool usip_space_count_quick(const struct super_block *sb, int err, kuid_t uid);
static atomic_t *usip_space_overflow_of(const struct super_block *sb, int err, kuid_t uid);

/* --- The probes --------------------------------------------------------------- */

static void __cold usip_space_error_seen(struct pt_regs *regs, long ret)
{
	const struct usip_space_call *call;
	struct file *file = NULL;
	unsigned long args[6];
	struct usip_space_rec *rec;

	/* Kernel threads make no system calls; 32-bit calls have other numbers. */
	if ((current->flags & (PF_KTHREAD | PF_EXITING)) || in_compat_syscall())
		return;
	call = usip_space_call(syscall_get_nr(current, regs));
	if (!call) {
		/* A call the module cannot tell the file of: no mount, no event. */
		atomic64_inc(&usip_space_lost);
		return;
	}
	syscall_get_arguments(current, regs, args);
	if (call->fd >= 0) {
		file = fget_raw(args[call->fd]);
		if (!file) {
			atomic64_inc(&usip_space_lost);
			return;
		}
		/* A storm on one file system costs a lookup and an increment per failure. */
		if (usip_space_count_quick(file->f_path.mnt->mnt_sb, -ret, current_euid())) {
			fput(file);
			return;
		}
	}
	rec = usip_space_rec_get();
	if (!rec) {
		if (file) {
			atomic_inc(usip_space_overflow_of(file->f_path.mnt->mnt_sb, -ret,
							  current_euid()));
			fput(file);
		} else {
			atomic64_inc(&usip_space_lost);
		}
		return;
	}
	rec->kind = USIP_REC_SPACE_ERROR;
	rec->err = -ret;
	rec->call = call;
	if (call->fd >= 0) {
		rec->file = file;
	} else {
		int dfd = call->dfd >= 0 ? (int)args[call->dfd] : AT_FDCWD;

		if (!usip_space_copy_name(rec->name, (const char __user *)args[call->path]))
			goto lost;
		if (dfd != AT_FDCWD && rec->name[0] != '/') {
			rec->file = fget_raw(dfd);
			if (!rec->file)
				goto lost;
		}
		rec->task = current;
		get_task_struct(current);
		rec->cred = get_current_cred();
	}
	usip_space_rec_caller(rec);
	usip_space_queue(rec);
	return;

lost:
	atomic64_inc(&usip_space_lost);
	/* The worker only releases what it holds, in process context. */
	rec->call = NULL;
	usip_space_queue(rec);
}

/* raw_syscalls:sys_exit, on the exit of every system call while armed. */
static void usip_sys_exit_probe(void *data, struct pt_regs *regs, long ret)
{
	if (likely(ret != -ENOSPC && ret != -EDQUOT))
		return;
	usip_space_error_seen(regs, ret);
}

struct usip_hook usip_sys_exit_tracepoint = {
	.symbol = "sys_exit",
	.feature = USIP_F_SPACE_ERRORS,
	.min_args = 3, .max_args = 3,
	.args = {
		{},
		{ .kind = USIP_ARG_STRUCT_PTR, .type = "pt_regs" },
		{ .kind = USIP_ARG_INTEGER },
	},
};

/* quota_send_warning(struct kqid qid, dev_t dev, const char warntype) */
int usip_quota_warning_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct usip_space_rec *rec;
	struct nsproxy *nsproxy = current->nsproxy;
	unsigned long raw = regs->di;

	BUILD_BUG_ON(sizeof(struct kqid) != sizeof(u64));
	/* An exiting task has no namespaces left to tell the mount by. */
	if (!nsproxy)
		return 0;
	rec = usip_space_rec_get();
	if (!rec) {
		atomic64_inc(&usip_space_lost);
		return 0;
	}
	rec->kind = USIP_REC_QUOTA;
	memcpy(&rec->qid, &raw, sizeof(rec->qid));
	rec->dev = (dev_t)regs->si;
	rec->warning = (u8)regs->dx;
	/* What get_mnt_ns() does; current's nsproxy holds it meanwhile. */
	rec->mnt_ns = (struct ns_common *)nsproxy->mnt_ns;
	usip_mnt_ns_get(rec->mnt_ns);
	usip_space_rec_caller(rec);
	usip_space_queue(rec);
	return 0;
}

/* --- Coalescing ---------------------------------------------------------------- */

/*
 * One superblock, errno and uid with failures in the current interval. The
 * superblock is a key only, never followed: the mount is looked up again by
 * its ids when a delayed message is sent.
 */
struct usip_space_slot {
	struct hlist_node node;		/* in usip_space_slots, RCU */
	struct rcu_head rcu;
	const struct super_block *sb;
	int err;
	kuid_t uid;
	unsigned long next_at;		/* jiffies: no message before; the probes read it */
	u32 pending;			/* failures not yet reported, seen by the worker */
	/*
	 * Failures on a file descriptor that the probe counted itself while
	 * the slot held messages back: no record, no worker, whatever the rate.
	 */
	atomic_t quick;
	struct list_head idle;		/* on the flush's list of slots to free */
	/* The latest failure's, for the delayed message. */
	struct ns_common *mnt_ns;	/* referenced */
	u64 mount_id, unique_id, ino;
	bool has_ino;
	struct pid *pid;		/* referenced */
	char comm[TASK_COMM_LEN];
	const char *syscall;
};

static DEFINE_MUTEX(usip_space_slots_lock);
static DEFINE_HASHTABLE(usip_space_slots, 6);
static unsigned int usip_space_n_slots;		/* under the lock; read without it */

static void usip_space_flush_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(usip_space_flush, usip_space_flush_fn);

static unsigned long usip_space_interval(void)
{
	return max(msecs_to_jiffies(READ_ONCE(usip_space_error_interval_ms)), 1UL);
}

static u32 usip_space_key(const struct super_block *sb, int err, kuid_t uid)
{
	return hash_ptr(sb, 32) ^ (u32)err ^ __kuid_val(uid);
}

static struct usip_space_slot *usip_space_slot_find(const struct super_block *sb,
						    int err, kuid_t uid)
{
	struct usip_space_slot *slot;

	hash_for_each_possible(usip_space_slots, slot, node, usip_space_key(sb, err, uid))
		if (slot->sb == sb && slot->err == err && uid_eq(slot->uid, uid))
			return slot;
	return NULL;
}

static unsigned int usip_space_slots_of(kuid_t uid)
{
	struct usip_space_slot *slot;
	unsigned int bkt, n = 0;

	hash_for_each(usip_space_slots, bkt, slot, node)
		n += uid_eq(slot->uid, uid);
	return n;
}

/* A new slot, within the module's and the uid's limits; usip_space_slots_lock held. */
static struct usip_space_slot *usip_space_slot_new(const struct super_block *sb,
						   int err, kuid_t uid)
{
	struct usip_space_slot *slot;

	if (usip_space_n_slots >= READ_ONCE(usip_max_coalesce_slots) ||
	    usip_space_slots_of(uid) >= READ_ONCE(usip_max_coalesce_slots_per_user))
		return NULL;
	slot = kzalloc(sizeof(*slot), GFP_KERNEL_ACCOUNT);
	if (!slot)
		return NULL;
	atomic_inc(&usip_objects);
	slot->sb = sb;
	slot->err = err;
	slot->uid = uid;
	slot->next_at = jiffies;
	hash_add_rcu(usip_space_slots, &slot->node, usip_space_key(sb, err, uid));
	WRITE_ONCE(usip_space_n_slots, usip_space_n_slots + 1);
	return slot;
}

/*
 * Frees a slot unlinked from the table (hash_del_rcu) at least an RCU grace
 * period ago, so that no probe counts into it any more; not under
 * namespace_sem. Failures a probe counted into it meanwhile (it was quiet
 * for a whole interval: a rare race) are counted as lost.
 */
static void usip_space_slot_free(struct usip_space_slot *slot)
{
	atomic64_add(atomic_read(&slot->quick), &usip_space_lost);
	WRITE_ONCE(usip_space_n_slots, usip_space_n_slots - 1);
	usip_mnt_ns_put(slot->mnt_ns);
	put_pid(slot->pid);
	usip_kfree(slot);
}

static atomic_t *usip_space_overflow_of(const struct super_block *sb, int err, kuid_t uid)
{
	return &usip_space_overflow[hash_32(usip_space_key(sb, err, uid),
					    USIP_SPACE_OVERFLOW_BITS)];
}

/* The failures the slot stands for now, which the next message counts. */
static u32 usip_space_take(struct usip_space_slot *slot)
{
	u32 count = slot->pending + atomic_xchg(&slot->quick, 0) +
		    atomic_xchg(usip_space_overflow_of(slot->sb, slot->err, slot->uid), 0);

	slot->pending = 0;
	return count;
}

/*
 * In the probe: counts a failure on @sb into its slot if that slot holds
 * messages back right now; false if the worker must see it.
 */
static bool usip_space_count_quick(const struct super_block *sb, int err, kuid_t uid)
{
	struct usip_space_slot *slot;
	bool counted = false;

	rcu_read_lock();
	hash_for_each_possible_rcu(usip_space_slots, slot, node, usip_space_key(sb, err, uid)) {
		if (slot->sb != sb || slot->err != err || !uid_eq(slot->uid, uid))
			continue;
		if (time_before(jiffies, READ_ONCE(slot->next_at))) {
			atomic_inc(&slot->quick);
			counted = true;
		}
		break;
	}
	rcu_read_unlock();
	return counted;
}

u32 usip_coalesce_slots(void)
{
	return READ_ONCE(usip_space_n_slots);
}

/* --- Posting --------------------------------------------------------------------- */

/* Scratch for the mount point: the worker and the flush post, one at a time. */
static DEFINE_MUTEX(usip_space_post_lock);
static struct usip_path_buf *usip_space_buf;

static const char *usip_space_fs_type(struct super_block *sb, char *buf, size_t size)
{
	if (sb->s_subtype && sb->s_subtype[0]) {
		snprintf(buf, size, "%s.%s", sb->s_type->name, sb->s_subtype);
		return buf;
	}
	return sb->s_type->name;
}

/*
 * Posts a storage event about mount @m (namespace_sem held, the tree holds
 * still); @info has its action and cause. Mounts that are not in a real
 * namespace (detached, or an fsmount() not attached yet) have no listeners.
 */
static void usip_space_post(struct usip_event_info *info, struct mount *m)
{
	struct mnt_namespace *ns = usip_mnt_ns(m);
	struct super_block *sb = usip_mnt_vfs(m)->mnt_sb;
	char fs_type[64];
	u64 seq;

	if (!ns || IS_ERR(ns) || usip_ns_anonymous(ns))
		return;
	info->type = USIP_EVENT_TYPE_STORAGE;
	info->present |= USIP_EVENT_HAS_MOUNT_ID | USIP_EVENT_HAS_DEV | USIP_EVENT_HAS_TASK;
	info->mount_id = usip_mnt_id(m);
	info->dev = new_encode_dev(sb->s_dev);
	info->source = usip_mnt_devname(m);
	info->fs_type = usip_space_fs_type(sb, fs_type, sizeof(fs_type));
	if (usip_k.has_unique_id) {
		info->unique_id = usip_mnt_unique_id(m);
		info->present |= USIP_EVENT_HAS_UNIQUE_ID;
	}
	info->mount = m;
	mutex_lock(&usip_space_post_lock);
	/* Disarmed meanwhile (the last listener went): nobody to tell. */
	if (usip_space_buf) {
		info->buf = usip_space_buf;
		usip_event_post(info, usip_ns_common(ns), GFP_KERNEL, &seq);
	}
	mutex_unlock(&usip_space_post_lock);
}

static u32 usip_space_action(int err)
{
	return err == ENOSPC ? USIP_ACTION_ENOSPC : USIP_ACTION_EDQUOT;
}

/* A failure on @where (an inode @ino if @has_ino): coalesced, maybe posted now. */
static void usip_space_failed(struct usip_space_rec *rec, const struct path *where,
			      u64 ino, bool has_ino)
{
	struct super_block *sb = where->mnt->mnt_sb;
	struct mount *m = usip_real_mount(where->mnt);
	struct ns_common *old_ns = NULL;
	struct usip_event_info info = {};
	struct usip_space_slot *slot;
	struct mnt_namespace *ns;

	mutex_lock(&usip_space_slots_lock);
	slot = usip_space_slot_find(sb, rec->err, rec->uid) ?:
	       usip_space_slot_new(sb, rec->err, rec->uid);
	if (!slot) {
		mutex_unlock(&usip_space_slots_lock);
		atomic64_inc(&usip_space_lost);
		return;
	}
	slot->pending++;
	/* The latest failure is the one a delayed message names. */
	slot->mount_id = usip_mnt_id(m);
	slot->unique_id = usip_mnt_unique_id(m);
	slot->ino = ino;
	slot->has_ino = has_ino;
	slot->syscall = rec->call->name;
	memcpy(slot->comm, rec->comm, sizeof(slot->comm));
	put_pid(slot->pid);
	slot->pid = get_pid(rec->pid);

	down_read(usip_k.namespace_sem);
	/* Where a delayed message looks the mount up again. */
	ns = usip_mnt_ns(m);
	if (ns && !IS_ERR(ns) && !usip_ns_anonymous(ns) &&
	    slot->mnt_ns != usip_ns_common(ns) && usip_mnt_ns_tryget(usip_ns_common(ns))) {
		old_ns = slot->mnt_ns;
		slot->mnt_ns = usip_ns_common(ns);
	}
	if (time_after_eq(jiffies, slot->next_at)) {
		info.action = usip_space_action(rec->err);
		info.present = USIP_EVENT_HAS_COUNT | (has_ino ? USIP_EVENT_HAS_INO : 0);
		info.count = usip_space_take(slot);
		info.ino = ino;
		info.pid = rec->pid;
		info.uid = rec->uid;
		memcpy(info.comm, rec->comm, sizeof(info.comm));
		info.syscall = rec->call->name;
		WRITE_ONCE(slot->next_at, jiffies + usip_space_interval());
		usip_space_post(&info, m);
	}
	up_read(usip_k.namespace_sem);
	mutex_unlock(&usip_space_slots_lock);
	/* Not under namespace_sem: the last reference tears the namespace down. */
	usip_mnt_ns_put(old_ns);
	/* The flush sends what the interval held back, and frees idle slots. */
	mod_delayed_work(usip_wq, &usip_space_flush, usip_space_interval());
}

/* Finds a mount of @ns by its ids (and superblock, as 6.1 reuses ids); namespace_sem held. */
static struct mount *usip_space_find_mount(struct mnt_namespace *ns,
					   const struct usip_space_slot *slot)
{
	struct mount *m = usip_ns_find_mount(ns, slot->mount_id, slot->unique_id);

	return m && usip_mnt_vfs(m)->mnt_sb == slot->sb ? m : NULL;
}

static void usip_space_flush_fn(struct work_struct *work)
{
	struct usip_space_slot *slot;
	struct hlist_node *tmp;
	LIST_HEAD(idle);
	unsigned int bkt;
	bool more = false;

	mutex_lock(&usip_space_slots_lock);
	down_read(usip_k.namespace_sem);
	hash_for_each_safe(usip_space_slots, bkt, tmp, slot, node) {
		struct usip_event_info info = {};
		struct mnt_namespace *ns;
		struct mount *m;

		if (!slot->pending && !atomic_read(&slot->quick) &&
		    !atomic_read(usip_space_overflow_of(slot->sb, slot->err, slot->uid))) {
			/* Quiet for a whole interval since its last message: forgotten. */
			if (time_after_eq(jiffies, slot->next_at)) {
				hash_del_rcu(&slot->node);
				list_add(&slot->idle, &idle);
			} else {
				more = true;
			}
			continue;
		}
		more = true;
		if (time_before(jiffies, slot->next_at))
			continue;
		info.action = usip_space_action(slot->err);
		info.present = USIP_EVENT_HAS_COUNT | (slot->has_ino ? USIP_EVENT_HAS_INO : 0);
		info.count = usip_space_take(slot);
		info.ino = slot->ino;
		info.pid = slot->pid;
		info.uid = slot->uid;
		memcpy(info.comm, slot->comm, sizeof(info.comm));
		info.syscall = slot->syscall;
		WRITE_ONCE(slot->next_at, jiffies + usip_space_interval());
		ns = (struct mnt_namespace *)slot->mnt_ns;
		m = ns ? usip_space_find_mount(ns, slot) : NULL;
		if (m)
			usip_space_post(&info, m);
		else
			atomic64_add(info.count, &usip_space_lost);	/* unmounted meanwhile */
	}
	up_read(usip_k.namespace_sem);
	mutex_unlock(&usip_space_slots_lock);
	if (!list_empty(&idle)) {
		struct usip_space_slot *next;

		/* No probe counts into them after this. */
		synchronize_rcu();
		/* Not under namespace_sem: a namespace's last reference tears it down. */
		list_for_each_entry_safe(slot, next, &idle, idle)
			usip_space_slot_free(slot);
	}
	if (more)
		mod_delayed_work(usip_wq, &usip_space_flush, usip_space_interval());
}

/* --- The worker ------------------------------------------------------------------- */

/* The root or working directory of @task, referenced; false if it has none. */
static bool usip_space_task_dir(struct task_struct *task, bool root, struct path *dir)
{
	bool found = false;

	task_lock(task);
	if (task->fs) {
		if (root)
			get_fs_root(task->fs, dir);
		else
			get_fs_pwd(task->fs, dir);
		found = true;
	}
	task_unlock(task);
	return found;
}

/* Does @name climb above where it starts? Then it is not looked up (see below). */
static bool usip_space_climbs(const char *name)
{
	const char *p = name;

	while ((p = strstr(p, ".."))) {
		if ((p == name || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return true;
		p += 2;
	}
	return false;
}

/*
 * The directory the failed call was to make an entry in, as the caller
 * (its root, its working directory or dfd, its credentials) would look it
 * up. vfs_path_lookup() treats where it starts as the root: exact for an
 * absolute name (it starts at the caller's root), and for a relative one
 * that does not climb with "..". A name that does climb is not looked up:
 * stopping at its start could name the wrong mount.
 */
static int usip_space_lookup_dir(struct usip_space_rec *rec, struct path *dir)
{
	char *name = rec->name, *slash;
	const struct cred *old;
	struct path start;
	size_t len = strlen(name);
	int err;

	if (usip_space_climbs(name))
		return -EXDEV;
	if (rec->file) {
		start = rec->file->f_path;
		path_get(&start);
	} else if (!usip_space_task_dir(rec->task, name[0] == '/', &start)) {
		return -ESRCH;
	}
	/* The directory part: what precedes the last component. */
	while (len > 1 && name[len - 1] == '/')
		name[--len] = '\0';
	slash = strrchr(name, '/');
	if (!slash) {
		*dir = start;
		return 0;
	}
	*slash = '\0';
	while (*name == '/')
		name++;
	if (!*name) {
		*dir = start;
		return 0;
	}
	old = override_creds(rec->cred);
	err = vfs_path_lookup(start.dentry, start.mnt, name, LOOKUP_FOLLOW | LOOKUP_DIRECTORY,
			      dir);
	revert_creds(old);
	path_put(&start);
	return err;
}

static void usip_space_error(struct usip_space_rec *rec)
{
	struct path where;

	if (!rec->call)
		return;		/* lost in the probe: only its file to release */
	if (rec->call->fd >= 0) {
		usip_space_failed(rec, &rec->file->f_path, file_inode(rec->file)->i_ino, true);
		return;
	}
	if (usip_space_lookup_dir(rec, &where)) {
		atomic64_inc(&usip_space_lost);
		return;
	}
	usip_space_failed(rec, &where, d_inode(where.dentry)->i_ino, true);
	path_put(&where);
}

static void usip_space_quota(struct usip_space_rec *rec)
{
	struct mnt_namespace *ns = (struct mnt_namespace *)rec->mnt_ns;
	struct usip_event_info info = {
		.action = USIP_ACTION_QUOTA,
		.present = USIP_EVENT_HAS_QUOTA,
		.pid = rec->pid,
		.uid = rec->uid,
		.qid = rec->qid,
		.quota_warning = rec->warning,
	};
	struct mount *m;

	memcpy(info.comm, rec->comm, sizeof(info.comm));
	/* The file system as the warned process's namespace mounts it. */
	down_read(usip_k.namespace_sem);
	m = usip_ns_find_dev(ns, rec->dev);
	if (m)
		usip_space_post(&info, m);
	up_read(usip_k.namespace_sem);
}

static void usip_space_work_fn(struct work_struct *work)
{
	struct llist_node *list = llist_reverse_order(llist_del_all(&usip_space_todo));
	struct usip_space_rec *rec, *next;

	llist_for_each_entry_safe(rec, next, list, node) {
		if (rec->kind == USIP_REC_QUOTA)
			usip_space_quota(rec);
		else
			usip_space_error(rec);
		usip_space_rec_put(rec);
		cond_resched();
	}
}

/* --- Arming ------------------------------------------------------------------------- */

static DEFINE_MUTEX(usip_space_lock);
static unsigned int usip_space_users;		/* listeners with enospc/edquot notifiers */
static unsigned int usip_quota_users;		/* listeners with quota notifiers */
static struct tracepoint *usip_sys_exit_tp;
static bool usip_sys_exit_armed, usip_quota_armed, usip_space_exiting;
static struct kprobe usip_quota_probe;

static void usip_find_sys_exit(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sys_exit"))
		*(struct tracepoint **)priv = tp;
}

/* The records and the scratch buffer, while something is armed; usip_space_lock held. */
static int usip_space_pool_get(void)
{
	unsigned int i;

	if (usip_space_records)
		return 0;
	usip_space_records = kvcalloc(USIP_SPACE_RECORDS, sizeof(*usip_space_records),
				      GFP_KERNEL);
	mutex_lock(&usip_space_post_lock);
	usip_space_buf = kmalloc(sizeof(*usip_space_buf), GFP_KERNEL);
	if (!usip_space_records || !usip_space_buf) {
		kvfree(usip_space_records);
		kfree(usip_space_buf);
		usip_space_records = NULL;
		usip_space_buf = NULL;
		mutex_unlock(&usip_space_post_lock);
		return -ENOMEM;
	}
	mutex_unlock(&usip_space_post_lock);
	for (i = 0; i < USIP_SPACE_RECORDS; i++)
		usip_space_free[i] = &usip_space_records[i];
	usip_space_n_free = USIP_SPACE_RECORDS;
	return 0;
}

/* After the hooks are gone: drains the worker and frees the pool; usip_space_lock held. */
static void usip_space_pool_put(void)
{
	if (usip_sys_exit_armed || usip_quota_armed || !usip_space_records)
		return;
	flush_work(&usip_space_work);
	WARN_ON(usip_space_n_free != USIP_SPACE_RECORDS);
	kvfree(usip_space_records);
	usip_space_records = NULL;
	usip_space_n_free = 0;
	/* The flush may still post what slots held back: not once the buffer is gone. */
	mutex_lock(&usip_space_post_lock);
	kfree(usip_space_buf);
	usip_space_buf = NULL;
	mutex_unlock(&usip_space_post_lock);
}

/* Arms a feature's hook, or says why not in its status (tried again next time). */
static void usip_space_arm_result(enum usip_feature_index f, int err)
{
	u32 reason = READ_ONCE(usip_feature_reason[f]);

	if (!err) {
		if (reason == USIP_UNAVAILABLE_REASON_ARM_FAILED) {
			pr_info("%s armed now\n", usip_feature_name(f));
			WRITE_ONCE(usip_feature_reason[f], 0);
		}
		return;
	}
	pr_warn("cannot arm %s (%d); tried again with the next listener\n",
		usip_feature_name(f), err);
	WRITE_ONCE(usip_feature_reason[f], USIP_UNAVAILABLE_REASON_ARM_FAILED);
}

static bool usip_space_may_arm(enum usip_feature_index f)
{
	u32 reason = READ_ONCE(usip_feature_reason[f]);

	return !usip_space_exiting && (!reason || reason == USIP_UNAVAILABLE_REASON_ARM_FAILED);
}

void usip_space_errors_get(void)
{
	int err;

	mutex_lock(&usip_space_lock);
	usip_space_users++;
	if (usip_sys_exit_armed || !usip_sys_exit_tp || !usip_space_may_arm(USIP_F_SPACE_ERRORS))
		goto out;
	err = usip_space_pool_get();
	if (!err) {
		err = tracepoint_probe_register(usip_sys_exit_tp, (void *)usip_sys_exit_probe,
						NULL);
		usip_sys_exit_armed = !err;
		if (err)
			usip_space_pool_put();
	}
	usip_space_arm_result(USIP_F_SPACE_ERRORS, err);
out:
	mutex_unlock(&usip_space_lock);
}

static void usip_sys_exit_disarm(void)
{
	if (!usip_sys_exit_armed)
		return;
	tracepoint_probe_unregister(usip_sys_exit_tp, (void *)usip_sys_exit_probe, NULL);
	/* No probe runs after this; the records they took are on the list. */
	tracepoint_synchronize_unregister();
	usip_sys_exit_armed = false;
	usip_space_pool_put();
}

void usip_space_errors_put(void)
{
	mutex_lock(&usip_space_lock);
	if (!--usip_space_users)
		usip_sys_exit_disarm();
	mutex_unlock(&usip_space_lock);
}

void usip_quota_warnings_get(void)
{
	struct usip_hook *hook = NULL;
	unsigned int h;
	int err;

	mutex_lock(&usip_space_lock);
	usip_quota_users++;
	if (usip_quota_armed || !usip_space_may_arm(USIP_F_QUOTA_WARNINGS))
		goto out;
	for (h = 0; h < usip_n_hooks; h++)
		if (usip_hooks[h].feature == USIP_F_QUOTA_WARNINGS)
			hook = &usip_hooks[h];
	if (WARN_ON(!hook))
		goto out;
	err = usip_space_pool_get();
	if (!err) {
		memset(&usip_quota_probe, 0, sizeof(usip_quota_probe));
		usip_quota_probe.symbol_name = hook->name;
		usip_quota_probe.pre_handler = usip_quota_warning_pre;
		err = register_kprobe(&usip_quota_probe);
		usip_quota_armed = !err;
		if (err)
			usip_space_pool_put();
	}
	usip_space_arm_result(USIP_F_QUOTA_WARNINGS, err);
out:
	mutex_unlock(&usip_space_lock);
}

static void usip_quota_disarm(void)
{
	if (!usip_quota_armed)
		return;
	unregister_kprobe(&usip_quota_probe);
	usip_quota_armed = false;
	usip_space_pool_put();
}

void usip_quota_warnings_put(void)
{
	mutex_lock(&usip_space_lock);
	if (!--usip_quota_users)
		usip_quota_disarm();
	mutex_unlock(&usip_space_lock);
}

u64 usip_space_errors_unreported(void)
{
	u64 n = atomic64_read(&usip_space_lost);
	unsigned int i;

	/* Counts no slot has taken (yet): a key whose storm never got a record. */
	for (i = 0; i < ARRAY_SIZE(usip_space_overflow); i++)
		n += atomic_read(&usip_space_overflow[i]);
	return n;
}

u32 usip_storage_hooks_armed(void)
{
	return READ_ONCE(usip_sys_exit_armed) + READ_ONCE(usip_quota_armed);
}

int usip_space_errors_init(void)
{
	usip_space_exiting = false;
	usip_sys_exit_tp = NULL;
#ifndef CONFIG_QUOTA_NETLINK_INTERFACE
	usip_feature_off(USIP_F_QUOTA_WARNINGS, USIP_UNAVAILABLE_REASON_NOT_CONFIGURED,
			 "the kernel has no CONFIG_QUOTA_NETLINK_INTERFACE");
#endif
	if (!usip_feature_available(USIP_F_SPACE_ERRORS))
		return 0;
	for_each_kernel_tracepoint(usip_find_sys_exit, &usip_sys_exit_tp);
	if (!usip_sys_exit_tp)
		usip_feature_off(USIP_F_SPACE_ERRORS, USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
				 "the kernel has no sys_exit tracepoint");
	return 0;
}

void usip_space_errors_exit(void)
{
	struct usip_space_slot *slot;
	struct hlist_node *tmp;
	unsigned int bkt;

	mutex_lock(&usip_space_lock);
	usip_space_exiting = true;
	usip_sys_exit_disarm();
	usip_quota_disarm();
	mutex_unlock(&usip_space_lock);
	cancel_delayed_work_sync(&usip_space_flush);
	/* The probes are gone (disarmed above): nothing reads the table any more. */
	mutex_lock(&usip_space_slots_lock);
	hash_for_each_safe(usip_space_slots, bkt, tmp, slot, node) {
		hash_del_rcu(&slot->node);
		usip_space_slot_free(slot);
	}
	mutex_unlock(&usip_space_slots_lock);
	if (usip_space_errors_unreported())
		pr_info("%llu enospc/edquot failures were not reported (records or slots ran out, or the file was not known)\n",
			usip_space_errors_unreported());
}

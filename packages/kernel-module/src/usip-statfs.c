// SPDX-License-Identifier: GPL-2.0
/*
 * statfs: file system usage per mount, for the mounts of the caller's mount
 * namespace that the caller sees from its root directory (mount-get's
 * rules: what /proc/self/mountinfo of the caller shows).
 *
 * A file system's statfs may block for as long as its server or daemon
 * likes (a hung NFS server, a stuck FUSE daemon), so it is never called
 * with namespace_sem held and never in the requester's context:
 *
 * - the mounts are chosen under namespace_sem, a batch at a time: each is
 *   referenced (mntget() and its root dentry) and its identity copied, then
 *   the lock is let go;
 * - each statfs is a "call": a work item on the module's statfs workqueue
 *   that runs vfs_statfs() with the requester's credentials (what statfs(2)
 *   would run with: FUSE and the LSMs look at them). The requester waits
 *   for it with a timeout (timeout-ms, default statfs_timeout_ms); the calls
 *   of a batch are started together and collected in order, so a batch
 *   with slow file systems costs about one timeout, not one each;
 * - a call that does not finish in time is "overdue": the requester
 *   reports ETIMEDOUT for that mount and goes on, the call keeps its own
 *   references (the mount, the credentials, a module reference) and frees
 *   itself when the file system finally answers. It is counted in stats'
 *   statfs-pending and, like every call, in usip_objects;
 * - at most one call per superblock runs at a time: a request for a
 *   superblock whose call is overdue gets ETIMEDOUT at once, one whose call
 *   is merely running waits for it (within its own timeout) and then makes
 *   its own. So a hung file system holds one kworker, however often it is
 *   asked about;
 * - the workqueue runs at most statfs_max_running calls at once: when that
 *   many file systems hang, later calls wait in the queue, and a requester
 *   whose call never started takes it back (cancel_work()) when its time is
 *   up and reports ETIMEDOUT. Nothing the module does grows past that.
 *
 * What a requester makes the module allocate (calls, a dump's batch and
 * strings) is charged to its memory cgroup. A dump holds mounts only while
 * it reads a batch inside one dumpit call: an unread dump pins no mount, as
 * with mount-get. Like statfs(2), a mount being read is busy: a concurrent
 * umount(2) of it (not umount -l) fails with EBUSY meanwhile, and an
 * overdue call keeps its mount busy until its file system answers.
 *
 * Requests run under genetlink's cb_lock (held for reading while a request
 * or a dump's first part is handled), so a request waits at most about one
 * timeout per batch there; a dumpit call that saw a timeout returns what
 * it has, so no recvmsg() waits for more than about one timeout either.
 *
 * Unloading: every call holds a module reference until its work item has
 * run, so rmmod is refused (EBUSY) while a call is overdue; once the file
 * system answers (a FUSE daemon that dies aborts its connection, which
 * ends the call) the module can go, and destroying the workqueue waits for
 * the last work item to return (see usip_statfs_exit()).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kdev_t.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/path.h>
#include <linux/refcount.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/statfs.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

/* Mounts chosen per hold of namespace_sem, and statfs calls started together. */
#define USIP_STATFS_BATCH	16
/* A dump's buffer: one message always fits (two paths and the numbers). */
#define USIP_STATFS_DUMP_ALLOC	16384

/* --- Calls ---------------------------------------------------------------- */

/* One vfs_statfs() on the statfs workqueue. */
struct usip_statfs_call {
	struct hlist_node node;		/* in usip_statfs_calls until it ends */
	struct work_struct work;
	struct completion done;		/* completed (all) when it ends */
	refcount_t ref;			/* the work item's, and each waiter's */
	const struct super_block *sb;	/* the key; kept alive by @path */
	struct path path;		/* what is read */
	const struct cred *cred;	/* as whom */
	/* Set before it ends. */
	struct kstatfs st;
	int err;
	/* Under usip_statfs_lock. */
	bool ended;
	bool overdue;			/* a requester gave up waiting: pending */
};

static DEFINE_SPINLOCK(usip_statfs_lock);
/* The calls that have not ended, by superblock: at most one per superblock. */
static DEFINE_HASHTABLE(usip_statfs_calls, 6);
static unsigned int usip_statfs_pending;
static struct workqueue_struct *usip_statfs_wq;

unsigned int usip_statfs_pending_count(void)
{
	unsigned int n;

	spin_lock(&usip_statfs_lock);
	n = usip_statfs_pending;
	spin_unlock(&usip_statfs_lock);
	return n;
}

static void usip_statfs_call_put(struct usip_statfs_call *c)
{
	if (!refcount_dec_and_test(&c->ref))
		return;
	path_put(&c->path);
	put_cred(c->cred);
	usip_kfree(c);
}

/* @c ran, or was taken back before it could: waiters wake, the superblock is free. */
static void usip_statfs_call_end(struct usip_statfs_call *c)
{
	spin_lock(&usip_statfs_lock);
	hash_del(&c->node);
	c->ended = true;
	if (c->overdue)
		usip_statfs_pending--;
	spin_unlock(&usip_statfs_lock);
	complete_all(&c->done);
	/* The work item's reference. */
	usip_statfs_call_put(c);
}

static void usip_statfs_work(struct work_struct *work)
{
	struct usip_statfs_call *c = container_of(work, struct usip_statfs_call, work);
	const struct cred *old;

	old = override_creds(c->cred);
	c->err = vfs_statfs(&c->path, &c->st);
	revert_creds(old);
	usip_statfs_call_end(c);
	/* usip_statfs_exit() waits for this function to return. */
	module_put(THIS_MODULE);
}

/* The call on @sb that has not ended; usip_statfs_lock held. */
static struct usip_statfs_call *usip_statfs_find(const struct super_block *sb)
{
	struct usip_statfs_call *c;

	hash_for_each_possible(usip_statfs_calls, c, node, (unsigned long)sb)
		if (c->sb == sb)
			return c;
	return NULL;
}

/* --- One mount's statfs, as a requester sees it --------------------------- */

/* One mount to read: which, what came of it. */
struct usip_statfs_entry {
	/* Its identity, copied under namespace_sem (@text holds the strings). */
	u64 mount_id;
	u64 unique_id;
	u64 mnt_ns;
	dev_t dev;
	char *text;
	const char *mount_point;
	const char *source;		/* NULL if it did not fit */
	const char *fs_type;
	/* What to read: referenced until it is read. */
	struct path path;
	/* The call it waits for (referenced), and whether it is its own. */
	struct usip_statfs_call *call;
	bool own;
	unsigned long deadline;
	/* The answer: @st if !@err. */
	struct kstatfs st;
	int err;
	bool answered;
};

/*
 * Starts reading @e: makes its call, or finds the superblock's running call
 * to wait for first, or answers ETIMEDOUT at once when that call is
 * overdue. Sets @e->answered when there is nothing to wait for.
 */
static void usip_statfs_begin(struct usip_statfs_entry *e, const struct cred *cred)
{
	const struct super_block *sb = e->path.mnt->mnt_sb;
	struct usip_statfs_call *c, *other;

	c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);
	if (!c) {
		e->err = -ENOMEM;
		e->answered = true;
		return;
	}
	INIT_HLIST_NODE(&c->node);
	INIT_WORK(&c->work, usip_statfs_work);
	init_completion(&c->done);
	/* The work item's and the requester's. */
	refcount_set(&c->ref, 2);
	c->sb = sb;
	c->path = e->path;
	path_get(&c->path);
	c->cred = get_cred(cred);

	spin_lock(&usip_statfs_lock);
	other = usip_statfs_find(sb);
	if (other) {
		if (other->overdue) {
			e->err = -ETIMEDOUT;
			e->answered = true;
		} else {
			refcount_inc(&other->ref);
			e->call = other;
			e->own = false;
		}
		spin_unlock(&usip_statfs_lock);
		path_put(&c->path);
		put_cred(c->cred);
		kfree(c);
		return;
	}
	hash_add(usip_statfs_calls, &c->node, (unsigned long)sb);
	spin_unlock(&usip_statfs_lock);
	atomic_inc(&usip_objects);
	/* Dropped by the work item when it has run (or by whoever takes it back). */
	__module_get(THIS_MODULE);
	e->call = c;
	e->own = true;
	queue_work(usip_statfs_wq, &c->work);
}

/*
 * @e's own call is late: take it back if it never started (the workqueue
 * is full of hung calls), otherwise leave it overdue. Returns true if it
 * ended meanwhile after all (its answer is there).
 */
static bool usip_statfs_give_up(struct usip_statfs_call *c)
{
	bool ended;

	if (cancel_work(&c->work)) {
		usip_statfs_call_end(c);
		module_put(THIS_MODULE);
		return false;
	}
	spin_lock(&usip_statfs_lock);
	ended = c->ended;
	if (!ended && !c->overdue) {
		c->overdue = true;
		usip_statfs_pending++;
	}
	spin_unlock(&usip_statfs_lock);
	return ended;
}

/*
 * Waits for @e's answer until its deadline; a call of someone else's is
 * waited for first, then @e makes its own with the time that is left.
 * Drops @e's mount. A fatal signal gives up at once (-EINTR).
 */
static void usip_statfs_collect(struct usip_statfs_entry *e, const struct cred *cred)
{
	while (!e->answered) {
		struct usip_statfs_call *c = e->call;
		long left = (long)(e->deadline - jiffies);
		bool killed = false, got, overdue;

		spin_lock(&usip_statfs_lock);
		overdue = c->overdue && !c->ended;
		spin_unlock(&usip_statfs_lock);
		/* Someone else's call on the superblock has already been given up on. */
		if (overdue)
			left = 0;
		if (left > 0)
			killed = wait_for_completion_killable_timeout(&c->done, left) < 0;
		got = completion_done(&c->done);
		if (!got && e->own)
			got = usip_statfs_give_up(c);
		if (got && e->own) {
			e->err = c->err;
			if (!e->err)
				e->st = c->st;
			e->answered = true;
		} else if (!got || killed) {
			e->err = killed ? -EINTR : -ETIMEDOUT;
			e->answered = true;
		}
		e->call = NULL;
		usip_statfs_call_put(c);
		/* Someone else's call ended in time: now @e's own, in the time left. */
		if (!e->answered)
			usip_statfs_begin(e, cred);
	}
	path_put(&e->path);
	e->path.mnt = NULL;
}

/* Reads @n entries: starts them all, then collects them in order. */
static void usip_statfs_read(struct usip_statfs_entry *e, unsigned int n,
			     const struct cred *cred, unsigned long timeout)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		e[i].deadline = jiffies + timeout;
		usip_statfs_begin(&e[i], cred);
	}
	for (i = 0; i < n; i++)
		usip_statfs_collect(&e[i], cred);
}

/*
 * Fills @e's identity from @m (visible, namespace_sem held) and references
 * its root; @id says where it is as the requester sees it.
 */
static int usip_statfs_entry_fill(struct usip_statfs_entry *e, struct mount *m,
				  const struct usip_mount_ident *id)
{
	struct vfsmount *vfs = usip_mnt_vfs(m);
	size_t mp = strlen(id->mount_point) + 1;
	size_t src = id->source ? strlen(id->source) + 1 : 0;
	size_t type = strlen(id->fs_type) + 1;

	memset(e, 0, sizeof(*e));
	e->text = kmalloc(mp + src + type, GFP_KERNEL_ACCOUNT);
	if (!e->text)
		return -ENOMEM;
	e->mount_point = memcpy(e->text, id->mount_point, mp);
	e->fs_type = memcpy(e->text + mp, id->fs_type, type);
	if (id->source)
		e->source = memcpy(e->text + mp + type, id->source, src);
	e->mount_id = usip_mnt_id(m);
	e->unique_id = usip_mnt_unique_id(m);
	e->mnt_ns = usip_mnt_ns_inum(usip_ns_common(usip_mnt_ns(m)));
	e->dev = vfs->mnt_sb->s_dev;
	e->path.mnt = mntget(vfs);
	e->path.dentry = dget(vfs->mnt_root);
	return 0;
}

/* Whether @m's identity can be had, and the identity; namespace_sem held. */
static int usip_statfs_identity(struct usip_mount_text *t, struct mount *m,
				const struct path *root, struct usip_mount_ident *id)
{
	int err = usip_mount_identity(t, m, root, id);

	/* Its source is too long to show: the entry goes without it. */
	if (err == -ENAMETOOLONG) {
		id->source = NULL;
		err = 0;
	}
	return err;
}

static void usip_statfs_entry_clear(struct usip_statfs_entry *e)
{
	if (e->call)
		usip_statfs_call_put(e->call);
	if (e->path.mnt)
		path_put(&e->path);
	kfree(e->text);
	memset(e, 0, sizeof(*e));
}

static size_t usip_statfs_msg_size(const struct usip_statfs_entry *e)
{
	/* mount-id, unique-id, mnt-ns, bsize, frsize, blocks (3), files (2), fsid */
	return 11 * nla_total_size_64bit(sizeof(u64)) +
	       /* dev-major, dev-minor, name-max, flags, error */
	       5 * nla_total_size(sizeof(u32)) +
	       nla_total_size(strlen(e->mount_point) + 1) +
	       nla_total_size(e->source ? strlen(e->source) + 1 : 0) +
	       nla_total_size(strlen(e->fs_type) + 1);
}

static int usip_put_u64(struct sk_buff *skb, int type, u64 value)
{
	return nla_put_u64_64bit(skb, type, value, USIP_A_STATFS_PAD);
}

static int usip_statfs_put(struct sk_buff *skb, const struct usip_statfs_entry *e)
{
	const struct kstatfs *st = &e->st;
	u64 fsid;

	if (usip_put_u64(skb, USIP_A_STATFS_MOUNT_ID, e->mount_id) ||
	    (usip_k.has_unique_id &&
	     usip_put_u64(skb, USIP_A_STATFS_UNIQUE_ID, e->unique_id)) ||
	    nla_put_string(skb, USIP_A_STATFS_MOUNT_POINT, e->mount_point) ||
	    nla_put_string(skb, USIP_A_STATFS_FS_TYPE, e->fs_type) ||
	    (e->source && nla_put_string(skb, USIP_A_STATFS_SOURCE, e->source)) ||
	    nla_put_u32(skb, USIP_A_STATFS_DEV_MAJOR, MAJOR(e->dev)) ||
	    nla_put_u32(skb, USIP_A_STATFS_DEV_MINOR, MINOR(e->dev)) ||
	    usip_put_u64(skb, USIP_A_STATFS_MNT_NS, e->mnt_ns))
		return -EMSGSIZE;
	if (e->err)
		return nla_put_u32(skb, USIP_A_STATFS_ERROR, -e->err) ? -EMSGSIZE : 0;
	/* What statfs(2) reports; f_fsid's two halves, val[0] the low one. */
	fsid = (u64)(u32)st->f_fsid.val[1] << 32 | (u32)st->f_fsid.val[0];
	if (usip_put_u64(skb, USIP_A_STATFS_BSIZE, st->f_bsize) ||
	    usip_put_u64(skb, USIP_A_STATFS_FRSIZE, st->f_frsize) ||
	    usip_put_u64(skb, USIP_A_STATFS_BLOCKS, st->f_blocks) ||
	    usip_put_u64(skb, USIP_A_STATFS_BLOCKS_FREE, st->f_bfree) ||
	    usip_put_u64(skb, USIP_A_STATFS_BLOCKS_AVAILABLE, st->f_bavail) ||
	    usip_put_u64(skb, USIP_A_STATFS_FILES, st->f_files) ||
	    usip_put_u64(skb, USIP_A_STATFS_FILES_FREE, st->f_ffree) ||
	    usip_put_u64(skb, USIP_A_STATFS_FSID, fsid) ||
	    nla_put_u32(skb, USIP_A_STATFS_NAME_MAX, st->f_namelen) ||
	    nla_put_u32(skb, USIP_A_STATFS_FLAGS, st->f_flags))
		return -EMSGSIZE;
	return 0;
}

static unsigned long usip_statfs_timeout(const struct nlattr *attr)
{
	unsigned int ms = attr ? nla_get_u32(attr) : READ_ONCE(usip_statfs_timeout_ms);

	/* The parameter may be set to anything; a request is held to the spec's range. */
	return msecs_to_jiffies(clamp(ms, 1U, 60000U));
}

static int usip_statfs_unavailable(struct netlink_ext_ack *extack)
{
	if (usip_feature_available(USIP_F_MOUNT_TABLE)) {
		NL_SET_ERR_MSG_MOD(extack, "statfs is not available on this kernel");
		return -EOPNOTSUPP;
	}
#ifdef NL_SET_ERR_MSG_FMT_MOD
	NL_SET_ERR_MSG_FMT_MOD(extack, "statfs needs the mount table, which is not available: %s",
			       usip_k.reason);
#else
	NL_SET_ERR_MSG_MOD(extack,
			   "statfs needs the mount table, which is not available on this kernel (the kernel log says why)");
#endif
	return -EOPNOTSUPP;
}

/* --- statfs do ------------------------------------------------------------ */

/*
 * The mount a do request names, chosen and referenced in @e; namespace_sem
 * is taken here. ENOENT unless it is in the caller's namespace and visible
 * from @root.
 */
static int usip_statfs_choose(struct usip_statfs_entry *e, struct genl_info *info,
			      const struct path *root, struct usip_mount_text *t)
{
	const struct nlattr *id = info->attrs[USIP_A_STATFS_MOUNT_ID];
	const struct nlattr *unique = info->attrs[USIP_A_STATFS_UNIQUE_ID];
	const struct nlattr *name = info->attrs[USIP_A_STATFS_PATH];
	struct mnt_namespace *ns = (struct mnt_namespace *)usip_mnt_ns_current();
	struct usip_mount_ident ident;
	struct path path = {};
	struct mount *m;
	int err;

	if (name) {
		/* As statfs(2) resolves it: from the caller's root and working directory. */
		err = kern_path(nla_data(name), LOOKUP_FOLLOW | LOOKUP_AUTOMOUNT, &path);
		if (err == -ENOENT)
			NL_SET_ERR_MSG_ATTR(info->extack, name, "no such file or directory");
		else if (err)
			NL_SET_ERR_MSG_ATTR(info->extack, name, "the path cannot be resolved");
		if (err)
			return err;
	}

	down_read(usip_k.namespace_sem);
	if (name) {
		m = usip_real_mount(path.mnt);
		/* A path that leads into another namespace, or to a detached mount. */
		if (usip_mnt_ns(m) != ns)
			m = NULL;
	} else {
		m = usip_mount_lookup(ns, !!unique, nla_get_u64(unique ?: id));
	}
	err = m ? usip_statfs_identity(t, m, root, &ident) : 1;
	if (!err)
		err = usip_statfs_entry_fill(e, m, &ident);
	up_read(usip_k.namespace_sem);

	if (!err && name) {
		/* Reads the path itself, as statfs(2): some file systems answer per directory. */
		path_put(&e->path);
		e->path = path;
		return 0;
	}
	if (name)
		path_put(&path);
	if (err == 1 && name)
		NL_SET_ERR_MSG_ATTR(info->extack, name,
				    "the path is on a mount that is not in the caller's mount namespace, under its root");
	else if (err == 1)
		NL_SET_ERR_MSG_ATTR(info->extack, unique ?: id,
				    "no such mount in the caller's mount namespace, under its root");
	if (err == 1)
		err = -ENOENT;
	return err;
}

int usip_nl_statfs_doit(struct sk_buff *skb, struct genl_info *info)
{
	const struct nlattr *id = info->attrs[USIP_A_STATFS_MOUNT_ID];
	const struct nlattr *unique = info->attrs[USIP_A_STATFS_UNIQUE_ID];
	const struct nlattr *name = info->attrs[USIP_A_STATFS_PATH];
	const struct cred *cred = current_cred();
	struct usip_statfs_entry *e;
	struct usip_mount_text *t;
	struct sk_buff *reply;
	struct path root;
	void *hdr;
	int err;

	if (!usip_feature_available(USIP_F_STATFS))
		return usip_statfs_unavailable(info->extack);
	if (!!id + !!unique + !!name != 1) {
		NL_SET_ERR_MSG(info->extack,
			       "name the mount by mount-id, by unique-id or by path (one of them)");
		return -EINVAL;
	}
	if (unique && !usip_k.has_unique_id) {
		NL_SET_ERR_MSG_ATTR(info->extack, unique,
				    "this kernel has no unique mount ids (Linux 6.8+); use mount-id");
		return -EOPNOTSUPP;
	}
	e = kzalloc(sizeof(*e), GFP_KERNEL_ACCOUNT);
	t = usip_mount_text_new();
	if (!e || !t) {
		err = -ENOMEM;
		goto out;
	}
	get_fs_root(current->fs, &root);
	err = usip_statfs_choose(e, info, &root, t);
	path_put(&root);
	if (err)
		goto out;

	usip_statfs_read(e, 1, cred, usip_statfs_timeout(info->attrs[USIP_A_STATFS_TIMEOUT_MS]));
	if (e->err == -EINTR) {
		err = -EINTR;
		goto out;
	}
	reply = genlmsg_new(usip_statfs_msg_size(e), GFP_KERNEL);
	if (!reply) {
		err = -ENOMEM;
		goto out;
	}
	hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_STATFS);
	if (!hdr || usip_statfs_put(reply, e)) {
		nlmsg_free(reply);
		err = -EMSGSIZE;
		goto out;
	}
	genlmsg_end(reply, hdr);
	err = genlmsg_reply(reply, info);
out:
	if (e)
		usip_statfs_entry_clear(e);
	kfree(e);
	usip_mount_text_free(t);
	return err;
}

/* --- statfs dump ---------------------------------------------------------- */

struct usip_statfs_dump {
	/* Fixed when it starts: the namespace, the root and whose credentials. */
	struct usip_mount_walk walk;
	struct path root;
	const struct cred *cred;
	struct usip_mount_text *text;
	unsigned long timeout;
	/* The batch read last: entries [next, n) are still to be sent. */
	struct usip_statfs_entry batch[USIP_STATFS_BATCH];
	unsigned int n, next;
	bool walked;			/* every mount has been chosen */
	/* A refusal, reported by the first dumpit call. */
	int refusal;
	u16 bad_attr;
};

enum { USIP_STATFS_DUMP_OK, USIP_STATFS_DUMP_UNAVAILABLE, USIP_STATFS_DUMP_ATTRIBUTE };

static struct usip_statfs_dump *usip_statfs_dump_ctx(struct netlink_callback *cb)
{
	return (struct usip_statfs_dump *)cb->args[0];
}

int usip_nl_statfs_dump_done(struct netlink_callback *cb)
{
	struct usip_statfs_dump *d = usip_statfs_dump_ctx(cb);
	unsigned int i;

	if (!d)
		return 0;
	for (i = 0; i < d->n; i++)
		usip_statfs_entry_clear(&d->batch[i]);
	usip_mount_walk_release(&d->walk);
	if (d->root.mnt)
		path_put(&d->root);
	if (d->cred)
		put_cred(d->cred);
	usip_mount_text_free(d->text);
	kfree(d);
	cb->args[0] = 0;
	return 0;
}

int usip_nl_statfs_dump_start(struct netlink_callback *cb)
{
	const struct nlattr *timeout = NULL, *nla;
	struct usip_statfs_dump *d;
	int rem;

	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return -ENOMEM;
	cb->args[0] = (long)d;
	/*
	 * Refusals go to the first dumpit call, whose extack reaches user space
	 * (a .start callback has none on 6.1). The policy has checked each
	 * attribute; a dump takes only timeout-ms.
	 */
	if (!usip_feature_available(USIP_F_STATFS)) {
		d->refusal = USIP_STATFS_DUMP_UNAVAILABLE;
		return 0;
	}
	nlmsg_for_each_attr(nla, cb->nlh, GENL_HDRLEN, rem) {
		if (nla_type(nla) != USIP_A_STATFS_TIMEOUT_MS) {
			d->refusal = USIP_STATFS_DUMP_ATTRIBUTE;
			d->bad_attr = nla_type(nla);
			return 0;
		}
		timeout = nla;
	}
	d->timeout = usip_statfs_timeout(timeout);
	/* What the dump shows, and as whom, is fixed now. */
	d->cred = get_current_cred();
	get_fs_root(current->fs, &d->root);
	d->text = usip_mount_text_new();
	if (!d->text || usip_mount_walk_init(&d->walk)) {
		usip_nl_statfs_dump_done(cb);
		return -ENOMEM;
	}
	cb->min_dump_alloc = USIP_STATFS_DUMP_ALLOC;
	return 0;
}

/* Chooses the next batch of visible mounts, under namespace_sem. */
static int usip_statfs_choose_batch(struct usip_statfs_dump *d)
{
	struct usip_mount_ident ident;
	struct mount *m;
	int err = 0;

	d->n = 0;
	d->next = 0;
	down_read(usip_k.namespace_sem);
	for (m = usip_mount_walk_resume(&d->walk); m && d->n < USIP_STATFS_BATCH;
	     m = usip_mount_walk_next(&d->walk, m)) {
		cond_resched();
		err = usip_statfs_identity(d->text, m, &d->root, &ident);
		if (err == 1) {
			usip_mount_walk_remember(&d->walk, m);
			err = 0;
			continue;
		}
		if (!err)
			err = usip_statfs_entry_fill(&d->batch[d->n], m, &ident);
		if (err)
			break;
		d->n++;
		usip_mount_walk_remember(&d->walk, m);
	}
	if (!m)
		d->walked = true;
	up_read(usip_k.namespace_sem);
	return err;
}

static int usip_statfs_dump_refused(struct netlink_ext_ack *extack, u16 attr)
{
#ifdef NL_SET_ERR_MSG_FMT
	NL_SET_ERR_MSG_FMT(extack, "a statfs dump takes only timeout-ms, not attribute %u", attr);
#else
	NL_SET_ERR_MSG(extack, "a statfs dump takes only timeout-ms; name a mount in a do");
#endif
	return -EINVAL;
}

int usip_nl_statfs_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct usip_statfs_dump *d = usip_statfs_dump_ctx(cb);
	bool waited_out = false;
	unsigned int i;
	void *hdr;
	int err;

	switch (d->refusal) {
	case USIP_STATFS_DUMP_UNAVAILABLE:
		return usip_statfs_unavailable(cb->extack);
	case USIP_STATFS_DUMP_ATTRIBUTE:
		return usip_statfs_dump_refused(cb->extack, d->bad_attr);
	}
	for (;;) {
		/* What the last batch read and the buffer had no room for. */
		for (; d->next < d->n; d->next++) {
			struct usip_statfs_entry *e = &d->batch[d->next];

			hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
					  &usip_family, NLM_F_MULTI, USIP_CMD_STATFS);
			if (!hdr)
				return skb->len ?: -EMSGSIZE;
			if (usip_statfs_put(skb, e)) {
				genlmsg_cancel(skb, hdr);
				/* One message always fits an empty buffer (DUMP_ALLOC). */
				return skb->len ?: -EMSGSIZE;
			}
			genlmsg_end(skb, hdr);
			usip_statfs_entry_clear(e);
		}
		/* Each recvmsg() waits out at most one batch's timeouts. */
		if (d->walked || waited_out)
			return skb->len;
		err = usip_statfs_choose_batch(d);
		if (err) {
			for (i = 0; i < d->n; i++)
				usip_statfs_entry_clear(&d->batch[i]);
			d->n = 0;
			return err;
		}
		usip_statfs_read(d->batch, d->n, d->cred, d->timeout);
		for (i = 0; i < d->n; i++) {
			if (d->batch[i].err == -EINTR)
				return -EINTR;
			if (d->batch[i].err == -ETIMEDOUT)
				waited_out = true;
		}
	}
}

/* --- Module life ---------------------------------------------------------- */

int usip_statfs_init(void)
{
	unsigned int max = clamp(usip_statfs_max_running, 1U, (unsigned int)WQ_MAX_ACTIVE);

	/* Unbound: a call may sleep for as long as its file system likes. */
	usip_statfs_wq = alloc_workqueue("usip_statfs", WQ_UNBOUND, max);
	return usip_statfs_wq ? 0 : -ENOMEM;
}

/*
 * After the family is gone, so no request starts a call any more. A call
 * holds a module reference until it has run, so rmmod cannot get here while
 * one is pending, and what is left is the tail of the last work items, which
 * this waits for. The exception is a request that was already running when
 * rmmod began (module references do not stop it): its call, if its file
 * system hangs, is waited for here until the file system answers.
 */
void usip_statfs_exit(void)
{
	destroy_workqueue(usip_statfs_wq);
	WARN_ON(!hash_empty(usip_statfs_calls));
}

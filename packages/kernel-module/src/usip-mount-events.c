// SPDX-License-Identifier: GPL-2.0
/*
 * Mount table events: the kernel functions where a mount is attached,
 * detached, moved or changed are hooked with kprobes, and each change
 * becomes an mtab event of the namespace it happened in.
 *
 * The hooks are defined once, in usip_hooks[] below: the function, the
 * prototype its handlers read (checked against the kernel's BTF when the
 * module loads, see usip-internals.c), the callers it reports, the feature it
 * serves and its handlers. They are registered only while some listener has
 * an mtab notifier, feature by feature (a feature whose hooks fail to
 * register is reported and tried again with the next listener; the others
 * still work), and unregistered a second after the last such listener goes,
 * so an idle module costs mount(2) nothing.
 *
 * A hook runs in the mounting task, with preemption disabled, while that task
 * holds namespace_sem for write (and mount_lock for some), so the tree cannot
 * change under it. It does bounded work: at most USIP_HOOK_BUDGET mounts per
 * hit, each O(depth) to work out its path, no sleeping. A change of more
 * mounts at once becomes one event for the top of the tree that stands for
 * its subtree (a tree attached, detached or changed recursively), or, where
 * the mounts have no common top (a superblock's mounts, a mount's slaves,
 * propagated umounts), a gap in every namespace's ns-seq and a missed
 * message to every mtab listener, after which watchers read the table again.
 *
 * Where the changes happen (fs/namespace.c and fs/pnode.c, 6.1 and 6.12):
 *  - commit_tree(): a new tree of mounts joins a namespace: mount events
 *    (copies propagated to peers and slaves each have their own call);
 *  - attach_recursive_mnt() moving, when it succeeded: one move event, and
 *    remount events for the mounts below it if it landed under a shared
 *    mount (they became shared);
 *  - mnt_change_mountpoint(): a mount got a new parent (tucked under a
 *    propagated copy, restored after a propagated umount): move;
 *  - attach_mnt() called by pivot_root(): the two mounts pivot_root moves;
 *  - umount_tree(): a tree of mounts leaves its namespace: umount events,
 *    taken before umount_tree() unhashes them; propagate_umount(): the
 *    copies of it that go too, elsewhere;
 *  - change_mnt_propagation(): a mount's propagation changes, and its slaves
 *    get a new master: remount events;
 *  - path_mount() with MS_REMOUNT that succeeded: the mount's flags (MS_BIND)
 *    or its superblock's options changed: remount events for the mount, or
 *    for every mount of the superblock;
 *  - reconfigure_super() called by fsconfig(FSCONFIG_CMD_RECONFIGURE) or by
 *    umount(2) of a busy root: remount events for the superblock's mounts;
 *  - mount_setattr(2) that succeeded: remount events for its mount (and the
 *    mounts below it with AT_RECURSIVE). The mount is learnt from the
 *    user_path_at() call inside the syscall (the rest of it is inlined),
 *    and held until the syscall returns.
 *
 * Linux 7.x moved things (fs/namespace.c, fs/pnode.c of 7.3), and the table
 * describes both ways; the BTF check picks the one that fits (see struct
 * usip_hook's roles):
 *  - commit_tree() and attach_mnt() are inlined, commit_tree() also commits
 *    moved trees, and attach_recursive_mnt() is only a compiler's clone:
 *    mnt_add_to_ns() sees a new tree join (its root, not yet among its
 *    parent's children), make_visible() called by attach_recursive_mnt()
 *    sees a moved tree (one that did not just join) and, called by
 *    pivot_root(), its two mounts;
 *  - mount_setattr(2) is one function, __x64_sys_mount_setattr(), which
 *    looks the path up with filename_lookup();
 *  - umount_tree() makes its mounts private at once (bulk_make_private()),
 *    not through change_mnt_propagation(): the slaves that stay get their
 *    new master in transfer_propagation(), which is hooked where it exists;
 *  - a superblock's mounts and a mount's slaves are linked differently,
 *    shared and unbindable are no longer mnt_flags, and anonymous
 *    namespaces are told by is_anon: all read as the BTF says.
 *
 * Every event of a namespace with a listener registered in it gets the next
 * ns-seq of that namespace; a hook hit that the kprobe core had to skip
 * (recursion, no free return instance) leaves a gap too.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dcache.h>
#include <linux/fs_context.h>
#include <linux/kdev_t.h>
#include <linux/kprobes.h>
#include <linux/mount.h>
#include <linux/mutex.h>
#include <linux/path.h>
#include <linux/percpu.h>
#include <linux/ptrace.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <uapi/linux/fcntl.h>
#include <uapi/linux/mount.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

/* The most mounts one hook hit reports one by one. */
#define USIP_HOOK_BUDGET	16

/* Hook hits the kprobe core skipped, and changes too big to tell: gaps. */
atomic64_t usip_mount_gaps = ATOMIC64_INIT(0);

/* Per CPU: where a hook works out paths and names. */
struct usip_scratch {
	struct usip_path_buf path;
	char fs_type[128];
};

static struct usip_scratch __percpu *usip_scratch;

/* --- Building events ------------------------------------------------------ */

/* Is anybody told about mount changes in @ns? */
static bool usip_ns_wanted(struct mnt_namespace *ns)
{
	/*
	 * Not in a namespace, in an anonymous one (open_tree(), fsmount()), or
	 * in one being torn down (its last reference is gone): nobody to tell.
	 */
	if (!ns || IS_ERR(ns) || usip_ns_anonymous(ns) ||
	    !usip_mnt_ns_alive(usip_ns_common(ns)))
		return false;
	return usip_mntns_watched(usip_ns_common(ns));
}

static const char *usip_event_fs_type(struct usip_scratch *s, struct super_block *sb)
{
	const char *subtype = sb->s_subtype;

	if (subtype && subtype[0]) {
		snprintf(s->fs_type, sizeof(s->fs_type), "%s.%s", sb->s_type->name, subtype);
		return s->fs_type;
	}
	return sb->s_type->name;
}

static void usip_mount_check_missed(void);

/*
 * A change too big, or too scattered, to report mount by mount: every
 * namespace's ns-seq gets a hole and every mtab listener a missed message,
 * so that watchers read the table again.
 */
static void usip_mount_gap(void)
{
	atomic64_inc(&usip_mount_gaps);
	usip_events_report_gap();
}

/* Posts an mtab event about @m in @ns (@flags: USIP_EVENT_SUBTREE); a hook's context. */
static void usip_mount_event(struct mount *m, u32 action, struct mnt_namespace *ns,
			     u32 flags)
{
	struct vfsmount *vfs = usip_mnt_vfs(m);
	struct super_block *sb = vfs->mnt_sb;
	struct usip_event_info info = {
		.type = USIP_EVENT_TYPE_MTAB,
		.action = action,
		.present = USIP_EVENT_HAS_MOUNT_ID | USIP_EVENT_HAS_PARENT_ID |
			   USIP_EVENT_HAS_DEV | USIP_EVENT_MOUNT_CHANGE | flags,
		.mount_id = usip_mnt_id(m),
		.parent_id = usip_mnt_id(usip_mnt_parent(m)),
		.dev = new_encode_dev(sb->s_dev),
		.source = usip_mnt_devname(m),
		.mount = m,
	};
	struct usip_scratch *s;
	u64 seq;

	if (!usip_ns_wanted(ns))
		return;
	usip_mount_check_missed();
	if (usip_k.has_unique_id) {
		info.unique_id = usip_mnt_unique_id(m);
		info.present |= USIP_EVENT_HAS_UNIQUE_ID;
	}
	s = get_cpu_ptr(usip_scratch);
	info.buf = &s->path;
	info.fs_type = usip_event_fs_type(s, sb);
	usip_event_post(&info, usip_ns_common(ns), GFP_ATOMIC | __GFP_ACCOUNT, &seq);
	put_cpu_ptr(usip_scratch);
}

/* How many mounts the tree under @root has, counting up to USIP_HOOK_BUDGET + 1. */
static unsigned int usip_tree_size(struct mount *root, struct mount *skip)
{
	unsigned int n = 0;
	struct mount *m;

	for (m = root; m && n <= USIP_HOOK_BUDGET; m = usip_next_mnt(m, root))
		if (m != skip)
			n++;
	return n;
}

/*
 * The mounts of the tree under @root (without @root itself if @below) joined
 * or left @ns (NULL: their own), or changed: one event each, or one for
 * @root that stands for them all when they are more than the budget.
 */
static void usip_mount_tree_event(struct mount *root, u32 action,
				  struct mnt_namespace *ns, bool below)
{
	struct mount *m;

	if (!usip_ns_wanted(ns ?: usip_mnt_ns(root)))
		return;
	if (usip_tree_size(root, below ? root : NULL) > USIP_HOOK_BUDGET) {
		usip_mount_event(root, action, ns ?: usip_mnt_ns(root), USIP_EVENT_SUBTREE);
		return;
	}
	for (m = below ? usip_next_mnt(root, root) : root; m; m = usip_next_mnt(m, root)) {
		if (usip_mnt_flags(m) & MNT_UMOUNT)
			continue;	/* already on its way out */
		usip_mount_event(m, action, ns ?: usip_mnt_ns(m), 0);
	}
}

/*
 * Every mount of @sb: its options changed. mount_lock keeps its list still
 * (the caller holds it, or this takes it).
 */
static void usip_mount_sb_event(struct super_block *sb)
{
	unsigned int n = 0;
	struct mount *m;

	read_seqlock_excl(usip_k.mount_lock);
	for (m = usip_sb_first_mount(sb); m && n <= USIP_HOOK_BUDGET;
	     m = usip_sb_next_mount(sb, m))
		n++;
	if (n > USIP_HOOK_BUDGET) {
		usip_mount_gap();
	} else {
		for (m = usip_sb_first_mount(sb); m; m = usip_sb_next_mount(sb, m))
			usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m), 0);
	}
	read_sequnlock_excl(usip_k.mount_lock);
}

/* @m's slaves get another master: their master:N may change. */
static void usip_slaves_event(struct mount *m)
{
	struct mount *slave;
	unsigned int n = 0;

	for (slave = usip_mnt_first_slave(m); slave && n <= USIP_HOOK_BUDGET;
	     slave = usip_mnt_next_slave(m, slave))
		n++;
	if (n > USIP_HOOK_BUDGET) {
		usip_mount_gap();
		return;
	}
	for (slave = usip_mnt_first_slave(m); slave; slave = usip_mnt_next_slave(m, slave))
		if (!(usip_mnt_flags(slave) & MNT_UMOUNT))
			usip_mount_event(slave, USIP_ACTION_REMOUNT, usip_mnt_ns(slave), 0);
}

/*
 * @m, already in its namespace, was attached somewhere else: a move. Moved
 * under a shared mount, every mount of its tree was made shared
 * (set_mnt_shared(), not change_mnt_propagation()): their shared:N changed.
 * The moved mount's own change comes with its move event.
 */
static void usip_moved(struct mount *m)
{
	usip_mount_event(m, USIP_ACTION_MOVE, usip_mnt_ns(m), 0);
	if (usip_mnt_shared(m))
		usip_mount_tree_event(m, USIP_ACTION_REMOUNT, NULL, true);
}

/* --- The hooks' handlers -------------------------------------------------- */

static void *usip_arg_ptr(struct pt_regs *regs, unsigned int n)
{
	return (void *)regs_get_kernel_argument(regs, n);
}

/*
 * commit_tree(struct mount *mnt): a tree joins its parent's namespace. Newer
 * kernels also commit a moved tree, already in that namespace: its move is
 * reported by attach_recursive_mnt()'s hook.
 */
static int usip_commit_tree(struct kprobe *p, struct pt_regs *regs)
{
	struct mount *root = usip_arg_ptr(regs, 0);
	struct mnt_namespace *ns = usip_mnt_ns(usip_mnt_parent(root));

	if (usip_mnt_ns(root) != ns)
		usip_mount_tree_event(root, USIP_ACTION_MOUNT, ns, false);
	return 0;
}

/*
 * Where commit_tree() is inlined (7.x), the same is seen in two steps, both
 * under namespace_sem held for write and mount_lock: each mount of a tree
 * joining a namespace is added to it (mnt_add_to_ns()), then the tree's root
 * is made visible under its parent (make_visible()). A move makes a tree
 * visible elsewhere without adding it, and so does pivot_root(). The root of
 * the last tree that joined, compared with, never followed.
 */
static struct mount *usip_joining;

/* mnt_add_to_ns(struct mnt_namespace *ns, struct mount *mnt) */
static int usip_add_to_ns(struct kprobe *p, struct pt_regs *regs)
{
	struct mnt_namespace *ns = usip_arg_ptr(regs, 0);
	struct mount *m = usip_arg_ptr(regs, 1);

	/*
	 * The root of a tree joining under a parent: not yet among its
	 * parent's children, as the rest of the tree is among theirs. The
	 * roots of new namespaces (no parent) join nothing anybody watches.
	 */
	if (!usip_mnt_has_parent(m) || !list_empty(usip_mnt_child(m)))
		return 0;
	WRITE_ONCE(usip_joining, m);
	usip_mount_tree_event(m, USIP_ACTION_MOUNT, ns, false);
	return 0;
}

/* make_visible(struct mount *mnt), when attach_recursive_mnt() or pivot_root() calls it. */
static int usip_make_visible(struct kprobe *p, struct pt_regs *regs)
{
	struct usip_hook *hook = container_of(p, struct usip_hook, probe.kp);
	struct mount *m = usip_arg_ptr(regs, 0);

	if (usip_called_from(regs, &hook->caller_ranges[1])) {
		/* pivot_root() attaches its two mounts in their new places. */
		usip_mount_event(m, USIP_ACTION_MOVE, usip_mnt_ns(m), 0);
		return 0;
	}
	if (!usip_called_from(regs, &hook->caller_ranges[0]))
		return 0;
	if (m == READ_ONCE(usip_joining)) {
		/* The tree that just joined: reported as it did. */
		WRITE_ONCE(usip_joining, NULL);
		return 0;
	}
	usip_moved(m);
	return 0;
}

/*
 * The top of the tree being unmounted; umount_tree() runs under namespace_sem
 * held for write, so there is one at a time, and propagate_umount(), called
 * by it, tells its copies elsewhere from it. Compared with, never followed.
 */
static struct mount *usip_umount_top;

/* umount_tree(struct mount *mnt, enum umount_tree_flags how) */
static int usip_umount_tree(struct kprobe *p, struct pt_regs *regs)
{
	struct mount *root = usip_arg_ptr(regs, 0);

	WRITE_ONCE(usip_umount_top, root);
	usip_mount_tree_event(root, USIP_ACTION_UMOUNT, NULL, false);
	return 0;
}

/* change_mnt_propagation(struct mount *mnt, int type) */
static int usip_change_propagation(struct kprobe *p, struct pt_regs *regs)
{
	struct mount *m = usip_arg_ptr(regs, 0);
	int type = regs_get_kernel_argument(regs, 1);

	/* umount_tree() makes every mount it takes private: that is its umount. */
	if (!(usip_mnt_flags(m) & MNT_UMOUNT))
		usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m), 0);
	/* Its slaves are handed to another master: their master:N may change. */
	if (type != MS_SHARED)
		usip_slaves_event(m);
	return 0;
}

/*
 * transfer_propagation(struct mount *mnt, struct mount *to), when
 * bulk_make_private() calls it: where umount_tree() makes the mounts it takes
 * private at once (7.x) instead of through change_mnt_propagation(), the
 * slaves of each that stay get another master.
 */
static int usip_transfer_propagation(struct kprobe *p, struct pt_regs *regs)
{
	struct usip_hook *hook = container_of(p, struct usip_hook, probe.kp);

	if (usip_called_from(regs, &hook->caller_ranges[0]))
		usip_slaves_event(usip_arg_ptr(regs, 0));
	return 0;
}

/* What a return probe keeps from the function's entry. */
struct usip_entry {
	void *arg;
	unsigned long flags;
};

static struct usip_entry *usip_entry(struct kretprobe_instance *ri)
{
	return (struct usip_entry *)ri->data;
}

/* attach_recursive_mnt(source, top, mp, moving|flags): bit 0 is "moving". */
static int usip_attach_recursive_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!(regs_get_kernel_argument(regs, 3) & 1))
		return 1;	/* not a move: commit_tree() reports it */
	usip_entry(ri)->arg = usip_arg_ptr(regs, 0);
	return 0;
}

static int usip_moved_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!regs_return_value(regs))
		usip_moved(usip_entry(ri)->arg);
	return 0;
}

/* mnt_change_mountpoint(parent, mp, mnt): @mnt gets a new parent. */
static int usip_change_mountpoint_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	usip_entry(ri)->arg = usip_arg_ptr(regs, 2);
	return 0;
}

static int usip_reparented_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct mount *m = usip_entry(ri)->arg;

	usip_mount_event(m, USIP_ACTION_MOVE, usip_mnt_ns(m), 0);
	return 0;
}

static struct usip_hook *usip_hook_of(struct kretprobe_instance *ri);

/* attach_mnt(mnt, parent, mp, ...), when pivot_root() calls it. */
static int usip_attach_mnt_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!usip_called_from(regs, &usip_hook_of(ri)->caller_ranges[0]))
		return 1;
	usip_entry(ri)->arg = usip_arg_ptr(regs, 0);
	return 0;
}

/* Does @m lie in the tree under @top? */
static bool usip_in_tree(struct mount *m, struct mount *top)
{
	int depth;

	for (depth = 0; depth < USIP_MAX_DEPTH; depth++) {
		if (m == top)
			return true;
		if (!usip_mnt_has_parent(m))
			return false;
		m = usip_mnt_parent(m);
	}
	return false;
}

/* propagate_umount(struct list_head *list): the mounts about to go. */
static int usip_propagate_umount_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	usip_entry(ri)->arg = usip_arg_ptr(regs, 0);
	return 0;
}

/*
 * The list holds the tree umount_tree() reported, then the copies that go
 * with it elsewhere, appended: they are reported from the end back to the
 * first mount of that tree.
 */
static int usip_propagate_umount_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct list_head *list = usip_entry(ri)->arg, *pos;
	struct mount *top = READ_ONCE(usip_umount_top);
	unsigned int n = 0;

	list_for_each_prev(pos, list) {
		struct mount *m = (struct mount *)((char *)pos - usip_k.mnt_list);

		if (usip_in_tree(m, top))
			break;
		if (++n > USIP_HOOK_BUDGET) {
			usip_mount_gap();
			break;
		}
		usip_mount_event(m, USIP_ACTION_UMOUNT, usip_mnt_ns(m), 0);
	}
	return 0;
}

/* path_mount(dev_name, path, type, flags, data) with MS_REMOUNT. */
static int usip_path_mount_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	unsigned long flags = regs_get_kernel_argument(regs, 3);

	if (!(flags & MS_REMOUNT))
		return 1;
	usip_entry(ri)->arg = usip_arg_ptr(regs, 1);
	usip_entry(ri)->flags = flags;
	return 0;
}

static int usip_path_mount_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const struct path *path = usip_entry(ri)->arg;
	struct mount *m = usip_real_mount(path->mnt);

	if (regs_return_value(regs))
		return 0;
	if (usip_entry(ri)->flags & MS_BIND) {
		/* Nothing holds the tree still for the walk to its root but this. */
		read_seqlock_excl(usip_k.mount_lock);
		usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m), 0);
		read_sequnlock_excl(usip_k.mount_lock);
	} else {
		usip_mount_sb_event(path->mnt->mnt_sb);
	}
	return 0;
}

/* reconfigure_super(struct fs_context *fc), from fsconfig() or umount(2). */
static int usip_reconfigure_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct usip_hook *hook = usip_hook_of(ri);
	struct fs_context *fc = usip_arg_ptr(regs, 0);

	if (!usip_called_from(regs, &hook->caller_ranges[0]) &&
	    !usip_called_from(regs, &hook->caller_ranges[1]))
		return 1;	/* path_mount()'s remount is reported by its hook */
	usip_entry(ri)->arg = fc->root->d_sb;
	return 0;
}

static int usip_reconfigure_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!regs_return_value(regs))
		usip_mount_sb_event(usip_entry(ri)->arg);
	return 0;
}

/*
 * mount_setattr(2) calls in progress, by task: the mount their path lookup
 * found, held (mntget) until the syscall returns.
 */
struct usip_setattr {
	struct task_struct *task;
	struct vfsmount *mnt;
	bool recursive;
};

static struct usip_setattr usip_setattrs[16];
static DEFINE_SPINLOCK(usip_setattrs_lock);
static atomic_t usip_setattrs_busy = ATOMIC_INIT(0);

static struct usip_setattr *usip_setattr_of_current(void)
{
	int i;

	lockdep_assert_held(&usip_setattrs_lock);
	for (i = 0; i < ARRAY_SIZE(usip_setattrs); i++)
		if (usip_setattrs[i].task == current)
			return &usip_setattrs[i];
	return NULL;
}

/* A mount_setattr(2) call begins, with these flags. */
static int usip_setattr_begin(unsigned int at_flags)
{
	struct usip_setattr *slot = NULL;
	unsigned long flags;
	int i;

	spin_lock_irqsave(&usip_setattrs_lock, flags);
	for (i = 0; i < ARRAY_SIZE(usip_setattrs) && !slot; i++)
		if (!usip_setattrs[i].task)
			slot = &usip_setattrs[i];
	if (slot) {
		slot->task = current;
		slot->mnt = NULL;
		slot->recursive = at_flags & AT_RECURSIVE;
		atomic_inc(&usip_setattrs_busy);
	}
	spin_unlock_irqrestore(&usip_setattrs_lock, flags);
	if (!slot) {
		/* Too many at once to follow: the watchers will resynchronise. */
		usip_mount_gap();
		return 1;
	}
	return 0;
}

/* __do_sys_mount_setattr(dfd, path, flags, uattr, usize) */
static int usip_setattr_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	return usip_setattr_begin(regs_get_kernel_argument(regs, 2));
}

/*
 * __x64_sys_mount_setattr(const struct pt_regs *regs), where the rest is
 * inlined (7.x): the system call's own registers, flags the third argument.
 */
static int usip_setattr_x64_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const struct pt_regs *user = usip_arg_ptr(regs, 0);

	return usip_setattr_begin(user->dx);
}

static int usip_setattr_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct vfsmount *mnt = NULL;
	struct usip_setattr *slot;
	bool recursive = false;
	unsigned long flags;

	spin_lock_irqsave(&usip_setattrs_lock, flags);
	slot = usip_setattr_of_current();
	if (slot) {
		mnt = slot->mnt;
		recursive = slot->recursive;
		slot->task = NULL;
		slot->mnt = NULL;
		atomic_dec(&usip_setattrs_busy);
	}
	spin_unlock_irqrestore(&usip_setattrs_lock, flags);
	if (!mnt)
		return 0;
	if (!regs_return_value(regs)) {
		struct mount *m = usip_real_mount(mnt);

		read_seqlock_excl(usip_k.mount_lock);
		if (recursive)
			usip_mount_tree_event(m, USIP_ACTION_REMOUNT, NULL, false);
		else
			usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m), 0);
		read_sequnlock_excl(usip_k.mount_lock);
	}
	mntput(mnt);
	return 0;
}

/*
 * user_path_at(dfd, name, flags, struct path *path), inside mount_setattr(2);
 * or filename_lookup(dfd, name, flags, struct path *path, root) on 7.x.
 */
static int usip_user_path_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!atomic_read(&usip_setattrs_busy) ||
	    !usip_called_from(regs, &usip_hook_of(ri)->caller_ranges[0]))
		return 1;
	usip_entry(ri)->arg = usip_arg_ptr(regs, 3);
	return 0;
}

static int usip_user_path_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	const struct path *path = usip_entry(ri)->arg;
	struct usip_setattr *slot;
	unsigned long flags;

	if (regs_return_value(regs))
		return 0;
	spin_lock_irqsave(&usip_setattrs_lock, flags);
	slot = usip_setattr_of_current();
	if (slot && !slot->mnt)
		slot->mnt = mntget(path->mnt);
	spin_unlock_irqrestore(&usip_setattrs_lock, flags);
	return 0;
}

/* --- The hook table -------------------------------------------------------- */

#define USIP_MOUNT_ARG(n) { .kind = USIP_ARG_STRUCT_PTR, .name = (n), .type = "mount" }
#define USIP_PATH_ARG(n) { .kind = USIP_ARG_STRUCT_PTR, .name = (n), .type = "path" }
#define USIP_INT_ARG(n) { .kind = USIP_ARG_INTEGER, .name = (n) }
#define USIP_RETPROBE(e, r, active) \
	.entry = (e), .ret = (r), .data_size = sizeof(struct usip_entry), .maxactive = (active)

/* Roles of hooks that differ between kernels (see struct usip_hook). */
enum {
	USIP_ROLE_ATTACH = 1,	/* mount-events: trees join, move, pivot */
	USIP_ROLE_SETATTR,	/* setattr-events: the call, and the mount it found */
};

/*
 * The functions serialised by namespace_sem need few return instances;
 * path_mount() and reconfigure_super() can sleep in a file system with many
 * callers, but an instance is kept only for a remount.
 */
struct usip_hook usip_hooks[] = {
	/* Attaching, 6.1 and 6.12: commit_tree() for new trees only. */
	{
		.symbol = "commit_tree", .feature = USIP_F_MOUNT_EVENTS,
		.role = USIP_ROLE_ATTACH, .alt = 1,
		.min_args = 1, .max_args = 1, .args = { USIP_MOUNT_ARG("mnt") },
		.pre = usip_commit_tree,
	},
	{
		.symbol = "attach_recursive_mnt", .feature = USIP_F_MOUNT_EVENTS,
		.role = USIP_ROLE_ATTACH, .alt = 1,
		.min_args = 4, .max_args = 4,
		.args = {
			USIP_MOUNT_ARG("source_mnt"), {}, {},
			/* bool moving (6.1), enum mnt_tree_flags_t flags (6.5+) */
			{ .kind = USIP_ARG_INTEGER, .name = "moving|flags",
			  .enumerator = "MNT_TREE_MOVE", .value = 1 },
		},
		USIP_RETPROBE(usip_attach_recursive_entry, usip_moved_return, 16),
	},
	{
		/* Inlined elsewhere on 6.1; told apart by its caller. */
		.symbol = "attach_mnt", .feature = USIP_F_MOUNT_EVENTS,
		.role = USIP_ROLE_ATTACH, .alt = 1,
		.min_args = 3, .max_args = 4, .args = { USIP_MOUNT_ARG("mnt") },
		.callers = { "__do_sys_pivot_root" },
		USIP_RETPROBE(usip_attach_mnt_entry, usip_reparented_return, 16),
	},
	/*
	 * Attaching, 7.x: commit_tree() and attach_mnt() are inlined, and
	 * attach_recursive_mnt() (two arguments now) is a compiler's clone
	 * whose prototype the BTF does not describe. mnt_add_to_ns() sees trees
	 * join, make_visible() trees moved by attach_recursive_mnt() and the two
	 * mounts pivot_root() moves.
	 */
	{
		.symbol = "mnt_add_to_ns", .feature = USIP_F_MOUNT_EVENTS,
		.role = USIP_ROLE_ATTACH, .alt = 2,
		.min_args = 2, .max_args = 2,
		.args = {
			{ .kind = USIP_ARG_STRUCT_PTR, .name = "ns", .type = "mnt_namespace" },
			USIP_MOUNT_ARG("mnt"),
		},
		.pre = usip_add_to_ns,
	},
	{
		.symbol = "make_visible", .feature = USIP_F_MOUNT_EVENTS,
		.role = USIP_ROLE_ATTACH, .alt = 2,
		.min_args = 1, .max_args = 1, .args = { USIP_MOUNT_ARG("mnt") },
		.callers = { "attach_recursive_mnt", "path_pivot_root" },
		.pre = usip_make_visible,
	},
	{
		.symbol = "umount_tree", .feature = USIP_F_MOUNT_EVENTS,
		.min_args = 2, .max_args = 2, .args = { USIP_MOUNT_ARG("mnt") },
		.pre = usip_umount_tree,
	},
	{
		.symbol = "propagate_umount", .feature = USIP_F_MOUNT_EVENTS,
		.min_args = 1, .max_args = 1,
		/* @list until 7.x, @set since */
		.args = { { .kind = USIP_ARG_STRUCT_PTR, .name = "list|set",
			    .type = "list_head" } },
		USIP_RETPROBE(usip_propagate_umount_entry, usip_propagate_umount_return, 16),
	},
	{
		.symbol = "mnt_change_mountpoint", .feature = USIP_F_MOUNT_EVENTS,
		.min_args = 3, .max_args = 3, .args = { {}, {}, USIP_MOUNT_ARG("mnt") },
		USIP_RETPROBE(usip_change_mountpoint_entry, usip_reparented_return, 16),
	},
	{
		.symbol = "path_mount", .feature = USIP_F_REMOUNT_EVENTS,
		.min_args = 5, .max_args = 5,
		.args = { {}, USIP_PATH_ARG("path"), {}, USIP_INT_ARG("flags") },
		USIP_RETPROBE(usip_path_mount_entry, usip_path_mount_return, 256),
	},
	{
		.symbol = "reconfigure_super", .feature = USIP_F_REMOUNT_EVENTS,
		.min_args = 1, .max_args = 1,
		.args = { { .kind = USIP_ARG_STRUCT_PTR, .name = "fc", .type = "fs_context" } },
		.callers = { "__do_sys_fsconfig", "path_umount" },
		USIP_RETPROBE(usip_reconfigure_entry, usip_reconfigure_return, 64),
	},
	{
		.symbol = "change_mnt_propagation", .feature = USIP_F_PROPAGATION_EVENTS,
		.min_args = 2, .max_args = 2,
		.args = { USIP_MOUNT_ARG("mnt"), USIP_INT_ARG("type") },
		.pre = usip_change_propagation,
	},
	{
		/* 7.x only; before, umount_tree() calls change_mnt_propagation(). */
		.symbol = "transfer_propagation", .feature = USIP_F_PROPAGATION_EVENTS,
		.absent_ok = true,
		.min_args = 2, .max_args = 2,
		.args = { USIP_MOUNT_ARG("mnt"), USIP_MOUNT_ARG("to") },
		.callers = { "bulk_make_private" },
		.pre = usip_transfer_propagation,
	},
	/* mount_setattr(2), 6.1 and 6.12 */
	{
		.symbol = "__do_sys_mount_setattr", .feature = USIP_F_SETATTR_EVENTS,
		.role = USIP_ROLE_SETATTR, .alt = 1,
		.min_args = 5, .max_args = 5, .args = { {}, {}, USIP_INT_ARG("flags") },
		USIP_RETPROBE(usip_setattr_entry, usip_setattr_return, 16),
	},
	{
		/* Renamed in 6.8, when it lost its last argument. */
		.symbol = "user_path_at", .old_symbol = "user_path_at_empty",
		.feature = USIP_F_SETATTR_EVENTS,
		.role = USIP_ROLE_SETATTR, .alt = 1,
		.min_args = 4, .max_args = 5, .args = { {}, {}, {}, USIP_PATH_ARG("path") },
		.callers = { "__do_sys_mount_setattr" },
		USIP_RETPROBE(usip_user_path_entry, usip_user_path_return, 64),
	},
	/* mount_setattr(2), 7.x: the system call is one function that looks its path up. */
	{
		.symbol = "__x64_sys_mount_setattr", .feature = USIP_F_SETATTR_EVENTS,
		.role = USIP_ROLE_SETATTR, .alt = 2,
		.min_args = 1, .max_args = 1,
		.args = { { .kind = USIP_ARG_STRUCT_PTR, .name = "regs", .type = "pt_regs" } },
		USIP_RETPROBE(usip_setattr_x64_entry, usip_setattr_return, 16),
	},
	{
		.symbol = "filename_lookup", .feature = USIP_F_SETATTR_EVENTS,
		.role = USIP_ROLE_SETATTR, .alt = 2,
		.min_args = 5, .max_args = 5, .args = { {}, {}, {}, USIP_PATH_ARG("path") },
		.callers = { "__x64_sys_mount_setattr" },
		USIP_RETPROBE(usip_user_path_entry, usip_user_path_return, 64),
	},
	{
		/*
		 * Not a mount hook: the quota-warnings feature's, armed by
		 * usip-space-errors.c. It is here so that its symbol and
		 * prototype are checked like every other hook's.
		 */
		.symbol = "quota_send_warning", .feature = USIP_F_QUOTA_WARNINGS,
		.min_args = 3, .max_args = 3,
		.args = {
			{ .kind = USIP_ARG_STRUCT, .name = "qid", .type = "kqid" },
			USIP_INT_ARG("dev"), USIP_INT_ARG("warntype"),
		},
		.pre = usip_quota_warning_pre,
	},
};

const unsigned int usip_n_hooks = ARRAY_SIZE(usip_hooks);

static struct usip_hook *usip_hook_of(struct kretprobe_instance *ri)
{
	return container_of(get_kretprobe(ri), struct usip_hook, probe);
}

static bool usip_is_retprobe(const struct usip_hook *hook)
{
	return !hook->pre;
}

static unsigned long usip_missed_seen;

/* A hit the kprobe core skipped since the last look leaves a gap. */
static void usip_mount_check_missed(void)
{
	unsigned long missed = 0;
	unsigned int h;

	for (h = 0; h < usip_n_hooks; h++)
		missed += READ_ONCE(usip_hooks[h].probe.kp.nmissed) +
			  READ_ONCE(usip_hooks[h].probe.nmissed);
	if (missed != READ_ONCE(usip_missed_seen)) {
		WRITE_ONCE(usip_missed_seen, missed);
		usip_mount_gap();
	}
}

/* --- Arming --------------------------------------------------------------- */

static DEFINE_MUTEX(usip_hooks_lock);
static unsigned int usip_mtab_listeners;	/* under usip_hooks_lock */
static unsigned long usip_armed_features;	/* likewise: bits of enum usip_feature_index */
static unsigned int usip_armed_hooks;		/* likewise: how many are registered */
static bool usip_hooks_exiting;			/* likewise: the module unloads */

static void usip_hooks_disarm_work(struct work_struct *work);
static DECLARE_DELAYED_WORK(usip_hooks_disarm, usip_hooks_disarm_work);

static int usip_hook_register(struct usip_hook *hook)
{
	struct kretprobe *rp = &hook->probe;

	/* A probe cannot be registered twice: start from a clean one. */
	memset(rp, 0, sizeof(*rp));
	rp->kp.symbol_name = hook->name;
	if (!usip_is_retprobe(hook)) {
		rp->kp.pre_handler = hook->pre;
		return register_kprobe(&rp->kp);
	}
	rp->entry_handler = hook->entry;
	rp->handler = hook->ret;
	rp->data_size = hook->data_size;
	rp->maxactive = hook->maxactive;
	return register_kretprobe(rp);
}

/* Unregisters every armed hook of the features in @features, in two batches. */
static void usip_hooks_unregister(unsigned long features)
{
	struct kretprobe *rps[ARRAY_SIZE(usip_hooks)];
	struct kprobe *kps[ARRAY_SIZE(usip_hooks)];
	int nk = 0, nr = 0;
	unsigned int h;

	for (h = 0; h < usip_n_hooks; h++) {
		struct usip_hook *hook = &usip_hooks[h];

		if (!hook->armed || !(features & BIT(hook->feature)))
			continue;
		if (usip_is_retprobe(hook))
			rps[nr++] = &hook->probe;
		else
			kps[nk++] = &hook->probe.kp;
		hook->armed = false;
	}
	/* Each waits for handlers in progress; return probes' pending instances too. */
	if (nk)
		unregister_kprobes(kps, nk);
	if (nr)
		unregister_kretprobes(rps, nr);
	/* Counted as gone only now that they are. */
	WRITE_ONCE(usip_armed_hooks, usip_armed_hooks - nk - nr);
}

/* Registers the hooks of feature @f, all or none. */
static int usip_feature_arm(enum usip_feature_index f)
{
	unsigned int h;
	int err = 0;

	/* A test may ask for arming to fail (usip.inject_arm_failures). */
	if (usip_allow_inject && atomic_dec_if_positive(&usip_inject_arm_failures) >= 0) {
		pr_warn("failing to arm the hooks of %s, as asked (inject_arm_failures)\n",
			usip_feature_name(f));
		return -EIO;
	}
	for (h = 0; h < usip_n_hooks && !err; h++) {
		struct usip_hook *hook = &usip_hooks[h];

		if (hook->feature != f || hook->unused)
			continue;
		err = usip_hook_register(hook);
		if (err) {
			pr_warn("cannot hook %s (%d)\n", hook->name, err);
			break;
		}
		hook->armed = true;
		WRITE_ONCE(usip_armed_hooks, usip_armed_hooks + 1);
	}
	if (err)
		usip_hooks_unregister(BIT(f));
	return err;
}

/*
 * Arms every event feature that is available or failed to arm before;
 * usip_hooks_lock held. A failure is reported in the feature's status and
 * tried again with the next listener.
 */
static void usip_hooks_arm(void)
{
	int f;

	usip_missed_seen = 0;
	for (f = USIP_F_MOUNT_EVENTS; f <= USIP_F_SETATTR_EVENTS; f++) {
		u32 reason = READ_ONCE(usip_feature_reason[f]);

		if (test_bit(f, &usip_armed_features) ||
		    (reason && reason != USIP_UNAVAILABLE_REASON_ARM_FAILED))
			continue;
		if (usip_feature_arm(f)) {
			if (!reason)
				pr_warn("%s is off until its hooks can be armed; tried again with the next listener\n",
					usip_feature_name(f));
			WRITE_ONCE(usip_feature_reason[f], USIP_UNAVAILABLE_REASON_ARM_FAILED);
			continue;
		}
		__set_bit(f, &usip_armed_features);
		if (reason) {
			pr_info("%s armed now\n", usip_feature_name(f));
			WRITE_ONCE(usip_feature_reason[f], 0);
		}
	}
}

static void usip_hooks_disarm_now(void)
{
	int i;

	lockdep_assert_held(&usip_hooks_lock);
	if (!usip_armed_features)
		return;
	usip_hooks_unregister(usip_armed_features);
	usip_armed_features = 0;
	/* A mount_setattr(2) in progress returns without the hook: let its mount go. */
	for (i = 0; i < ARRAY_SIZE(usip_setattrs); i++) {
		if (usip_setattrs[i].mnt)
			mntput(usip_setattrs[i].mnt);
		usip_setattrs[i].task = NULL;
		usip_setattrs[i].mnt = NULL;
	}
	atomic_set(&usip_setattrs_busy, 0);
}

static void usip_hooks_disarm_work(struct work_struct *work)
{
	mutex_lock(&usip_hooks_lock);
	if (!usip_mtab_listeners)
		usip_hooks_disarm_now();
	mutex_unlock(&usip_hooks_lock);
}

/*
 * A listener with mtab notifiers was registered: arms the hooks of every
 * event feature that can be (again, if arming failed before).
 */
void usip_mount_hooks_get(bool global)
{
	mutex_lock(&usip_hooks_lock);
	usip_mtab_listeners++;
	if (!usip_hooks_exiting && usip_scratch)
		usip_hooks_arm();
	mutex_unlock(&usip_hooks_lock);
}

void usip_mount_hooks_put(bool global)
{
	mutex_lock(&usip_hooks_lock);
	if (!--usip_mtab_listeners && usip_armed_features && !usip_hooks_exiting)
		/* Not at once: a listener that comes back soon finds them armed. */
		mod_delayed_work(usip_wq, &usip_hooks_disarm, HZ);
	mutex_unlock(&usip_hooks_lock);
}

u32 usip_mount_hooks_armed(void)
{
	return READ_ONCE(usip_armed_hooks);
}

int usip_mount_events_init(void)
{
	/* Without the mount table there is nothing to hook; not an error. */
	if (!usip_feature_available(USIP_F_MOUNT_TABLE))
		return 0;
	usip_scratch = alloc_percpu(struct usip_scratch);
	return usip_scratch ? 0 : -ENOMEM;
}

void usip_mount_events_exit(void)
{
	mutex_lock(&usip_hooks_lock);
	usip_hooks_exiting = true;
	mutex_unlock(&usip_hooks_lock);
	cancel_delayed_work_sync(&usip_hooks_disarm);
	mutex_lock(&usip_hooks_lock);
	usip_hooks_disarm_now();
	mutex_unlock(&usip_hooks_lock);
	free_percpu(usip_scratch);
	usip_scratch = NULL;
}

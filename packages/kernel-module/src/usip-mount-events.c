// SPDX-License-Identifier: GPL-2.0
/*
 * Mount table events: the kernel functions where a mount is attached,
 * detached, moved or changed are hooked with kprobes, and each change
 * becomes an mtab event of the namespace it happened in.
 *
 * The hooks are registered only while some listener has an mtab notifier
 * (and unregistered a second after the last one goes), so an idle module
 * costs mount(2) nothing. Each hook runs in the mounting task with
 * namespace_sem held for write by that task (mount_lock too for some), so
 * what it reads of the mount tree cannot change under it; it does O(depth)
 * work per mount, allocates without sleeping and queues the event for the
 * delivery worker.
 *
 * Where the changes happen (fs/namespace.c and fs/pnode.c, 6.1 and 6.12):
 *  - commit_tree(): a new tree of mounts joins a namespace: mount events,
 *    for every mount of the tree (copies propagated to peers and slaves
 *    each have their own commit_tree());
 *  - attach_recursive_mnt() with MNT_TREE_MOVE (bool moving on 6.1) that
 *    succeeded: a mount moved: one move event, and remount events for the
 *    mounts below it if it landed under a shared mount (they became shared);
 *  - mnt_change_mountpoint(): a mount got a new parent (tucked under a
 *    propagated copy, restored after a propagated umount): move;
 *  - attach_mnt() called by pivot_root(): the two mounts pivot_root moves
 *    (attach_mnt() itself is inlined elsewhere on 6.1, so it is told apart
 *    by its caller);
 *  - umount_tree(): mounts leave their namespace: umount events, taken
 *    before umount_tree() unhashes them, from its argument's subtree, or,
 *    when the umount propagates, from the list propagate_umount() returns;
 *  - change_mnt_propagation(): a mount's propagation changes, and its
 *    slaves get a new master: remount events;
 *  - path_mount() with MS_REMOUNT that succeeded: the mount's flags
 *    (MS_BIND) or its superblock's options changed: remount events for the
 *    mount, or for every mount of the superblock;
 *  - reconfigure_super() called by fsconfig(FSCONFIG_CMD_RECONFIGURE) or by
 *    umount(2) of a busy root: remount events for the superblock's mounts;
 *  - mount_setattr(2) that succeeded: remount events for its mount (and the
 *    mounts below it with AT_RECURSIVE). The mount is learnt from the
 *    user_path_at() call inside the syscall (the rest of it is inlined),
 *    and held until the syscall returns.
 *
 * An event carries the mount point relative to its namespace's root. Every
 * event of a namespace with a listener registered in it gets the next
 * ns-seq of that namespace; a hook hit that the kprobe core had to skip
 * (recursion, no free return instance) leaves a hole in every namespace's
 * sequence, so that watchers resynchronise.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dcache.h>
#include <linux/fs_struct.h>
#include <linux/fs_context.h>
#include <linux/hashtable.h>
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

/* --- Namespaces with listeners: their ns-seq ----------------------------- */

static DEFINE_HASHTABLE(usip_mntns_table, 6);
static DEFINE_SPINLOCK(usip_mntns_lock);

/* Hook hits the kprobe core skipped; each leaves a hole in every sequence. */
atomic64_t usip_mount_gaps = ATOMIC64_INIT(0);

struct usip_mntns *usip_mntns_find(const struct ns_common *ns)
{
	struct usip_mntns *state;

	hash_for_each_possible_rcu(usip_mntns_table, state, node, (unsigned long)ns)
		if (state->ns == ns)
			return state;
	return NULL;
}

u64 usip_mntns_seq(const struct ns_common *ns)
{
	struct usip_mntns *state;
	u64 seq = 0;

	rcu_read_lock();
	state = usip_mntns_find(ns);
	if (state)
		seq = READ_ONCE(state->seq);
	rcu_read_unlock();
	return seq;
}

/* A listener was registered in @ns; it holds a reference on @ns. */
int usip_mntns_get(const struct ns_common *ns)
{
	struct usip_mntns *state, *fresh;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
	if (!fresh)
		return -ENOMEM;
	spin_lock(&usip_mntns_lock);
	state = usip_mntns_find(ns);
	if (!state) {
		state = fresh;
		fresh = NULL;
		state->ns = ns;
		state->gaps_seen = atomic64_read(&usip_mount_gaps);
		atomic_inc(&usip_objects);
		hash_add_rcu(usip_mntns_table, &state->node, (unsigned long)ns);
	}
	state->users++;
	spin_unlock(&usip_mntns_lock);
	kfree(fresh);
	return 0;
}

void usip_mntns_put(const struct ns_common *ns)
{
	struct usip_mntns *state;

	spin_lock(&usip_mntns_lock);
	state = usip_mntns_find(ns);
	if (!WARN_ON_ONCE(!state) && !--state->users) {
		hash_del_rcu(&state->node);
		kfree_rcu(state, rcu);
		atomic_dec(&usip_objects);
	}
	spin_unlock(&usip_mntns_lock);
}

/* --- Building events ------------------------------------------------------ */

struct usip_scratch {
	char path[PATH_MAX];
	char segment[PATH_MAX];
	char fs_type[128];
};

static struct usip_scratch __percpu *usip_scratch;

/* Global mtab listeners: events of every namespace are wanted. */
static atomic_t usip_global_mtab_listeners = ATOMIC_INIT(0);

static bool usip_ns_wanted(struct mnt_namespace *ns)
{
	bool wanted;

	/*
	 * Not in a namespace, in an anonymous one (open_tree(), fsmount()), or
	 * in one being torn down (its last reference is gone): nobody to tell.
	 */
	if (!ns || IS_ERR(ns) || !usip_ns_seq_number(ns) ||
	    !refcount_read(&usip_ns_common(ns)->count))
		return false;
	if (atomic_read(&usip_global_mtab_listeners))
		return true;
	rcu_read_lock();
	wanted = usip_mntns_find(usip_ns_common(ns));
	rcu_read_unlock();
	return wanted;
}

/*
 * Writes @m's mount point, relative to the root of @ns, at the end of
 * @s->path; returns where it starts, or NULL when @m is not connected to
 * that root (or the path is too long). Called with namespace_sem or
 * mount_lock held, so the parents cannot change; dentry_path_raw() takes
 * care of renames.
 */
static const char *usip_event_path(struct usip_scratch *s, struct mount *m,
				   struct mnt_namespace *ns)
{
	char *p = s->path + sizeof(s->path) - 1;
	int depth;

	*p = '\0';
	for (depth = 0; usip_mnt_has_parent(m); depth++) {
		struct mount *parent = usip_mnt_parent(m);
		struct dentry *parent_root = usip_mnt_vfs(parent)->mnt_root;
		const char *seg;
		size_t len;

		if (depth > 64)
			return NULL;
		seg = dentry_path_raw(usip_mnt_mountpoint(m), s->segment,
				      sizeof(s->segment));
		if (IS_ERR(seg))
			return NULL;
		len = strlen(seg);
		/* Below a bind mount of a directory: drop the directory's part. */
		if (parent_root != parent_root->d_sb->s_root) {
			const char *root_seg;
			size_t root_len;

			/* Copy first: the root's path reuses the segment buffer. */
			if (p - s->path < len + 1)
				return NULL;
			p -= len;
			memcpy(p, seg, len);
			root_seg = dentry_path_raw(parent_root, s->segment,
						   sizeof(s->segment));
			if (IS_ERR(root_seg))
				return NULL;
			root_len = strlen(root_seg);
			if (root_len > len || strncmp(p, root_seg, root_len) ||
			    (p[root_len] != '/' && p[root_len] != '\0'))
				return NULL;
			p += root_len;
		} else if (len > 1) {
			if (p - s->path < len + 1)
				return NULL;
			p -= len;
			memcpy(p, seg, len);
		}
		m = parent;
	}
	if (m != usip_ns_root(ns))
		return NULL;
	if (!*p)
		*--p = '/';
	return p;
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

/* Counts the hook hits the kprobe core skipped since the last look. */
static void usip_mount_check_missed(void);

/* Posts an mtab event about @m in @ns; the hooks' context (atomic). */
static void usip_mount_event(struct mount *m, u32 action, struct mnt_namespace *ns)
{
	struct vfsmount *vfs = usip_mnt_vfs(m);
	struct super_block *sb = vfs->mnt_sb;
	struct usip_event_info info = {
		.type = USIP_EVENT_TYPE_MTAB,
		.action = action,
		.present = USIP_EVENT_HAS_MOUNT_ID | USIP_EVENT_HAS_PARENT_ID |
			   USIP_EVENT_HAS_DEV | USIP_EVENT_MOUNT_CHANGE,
		.mount_id = usip_mnt_id(m),
		.parent_id = usip_mnt_id(usip_mnt_parent(m)),
		.dev = new_encode_dev(sb->s_dev),
		.source = usip_mnt_devname(m),
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
	info.path = usip_event_path(s, m, ns);
	info.fs_type = usip_event_fs_type(s, sb);
	usip_event_post(&info, usip_ns_common(ns), GFP_ATOMIC, &seq);
	put_cpu_ptr(usip_scratch);
}

/* Every mount of the tree under @root, which joins or leaves @ns (or its own). */
static void usip_mount_tree_event(struct mount *root, u32 action,
				  struct mnt_namespace *ns)
{
	struct mount *m;

	for (m = root; m; m = usip_next_mnt(m, root)) {
		if (READ_ONCE(usip_mnt_vfs(m)->mnt_flags) & MNT_UMOUNT)
			continue;	/* already on its way out */
		usip_mount_event(m, action, ns ?: usip_mnt_ns(m));
	}
}

/* Every mount of @sb in a namespace: its options changed. */
static void usip_mount_sb_event(struct super_block *sb)
{
	struct list_head *pos;

	read_seqlock_excl(usip_k.mount_lock);
	list_for_each(pos, &sb->s_mounts) {
		struct mount *m = (struct mount *)((char *)pos - usip_k.mnt_instance);

		usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m));
	}
	read_sequnlock_excl(usip_k.mount_lock);
}

/*
 * The caller's root directory relative to its mount namespace's root, as a
 * counted allocation, or NULL when it is that root (or the mount table is not
 * available); an ERR_PTR on failure.
 */
char *usip_root_prefix(void)
{
	struct mnt_namespace *ns = (struct mnt_namespace *)usip_mnt_ns_current();
	struct usip_scratch *s;
	const char *mount_path, *dir, *mnt_dir;
	char *prefix = NULL;
	struct path root;
	size_t len;

	if (!usip_k.mount_table)
		return NULL;
	get_fs_root(current->fs, &root);
	if (root.mnt == usip_mnt_vfs(usip_ns_root(ns)) && root.dentry == root.mnt->mnt_root) {
		path_put(&root);
		return NULL;
	}
	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		path_put(&root);
		return ERR_PTR(-ENOMEM);
	}
	down_read(usip_k.namespace_sem);
	mount_path = usip_event_path(s, usip_real_mount(root.mnt), ns);
	up_read(usip_k.namespace_sem);
	if (!mount_path)
		goto out;	/* not connected to the namespace's root: no prefix */
	len = strlen(mount_path);
	memmove(s->path, mount_path, len + 1);
	if (len == 1)
		len = 0;	/* "/" */
	/* The directory within the mount, for a chroot below a mount point. */
	dir = dentry_path_raw(root.dentry, s->segment, sizeof(s->segment) / 2);
	mnt_dir = dentry_path_raw(root.mnt->mnt_root, s->segment + sizeof(s->segment) / 2,
				  sizeof(s->segment) / 2);
	if (IS_ERR(dir) || IS_ERR(mnt_dir) || strncmp(dir, mnt_dir, strlen(mnt_dir)))
		goto out;
	dir += strlen(mnt_dir) > 1 ? strlen(mnt_dir) : 0;
	if (strcmp(dir, "/") && len + strlen(dir) < sizeof(s->path)) {
		memcpy(s->path + len, dir, strlen(dir));
		len += strlen(dir);
	}
	if (len) {
		prefix = kmemdup_nul(s->path, len, GFP_KERNEL);
		if (prefix)
			atomic_inc(&usip_objects);
		else
			prefix = ERR_PTR(-ENOMEM);
	}
out:
	kfree(s);
	path_put(&root);
	return prefix;
}

/* --- The hooks ------------------------------------------------------------ */

static bool usip_called_from(struct pt_regs *regs, const struct usip_text_range *fn)
{
	/* At function entry the return address is on top of the stack. */
	unsigned long ret = *(unsigned long *)kernel_stack_pointer(regs);

	return fn->start && ret >= fn->start && ret < fn->end;
}

static void *usip_arg_ptr(struct pt_regs *regs, unsigned int n)
{
	return (void *)regs_get_kernel_argument(regs, n);
}

/* commit_tree(struct mount *mnt): a tree joins its parent's namespace. */
static int usip_commit_tree(struct kprobe *p, struct pt_regs *regs)
{
	struct mount *root = usip_arg_ptr(regs, 0);

	usip_mount_tree_event(root, USIP_ACTION_MOUNT,
			      usip_mnt_ns(usip_mnt_parent(root)));
	return 0;
}

/* umount_tree(struct mount *mnt, enum umount_tree_flags how) */
#define USIP_UMOUNT_PROPAGATE	2

static int usip_umount_tree(struct kprobe *p, struct pt_regs *regs)
{
	struct mount *root = usip_arg_ptr(regs, 0);
	unsigned long how = regs_get_kernel_argument(regs, 1);

	/* A propagating umount is reported from propagate_umount()'s list. */
	if (!(how & USIP_UMOUNT_PROPAGATE))
		usip_mount_tree_event(root, USIP_ACTION_UMOUNT, NULL);
	return 0;
}

/* change_mnt_propagation(struct mount *mnt, int type) */
static int usip_change_propagation(struct kprobe *p, struct pt_regs *regs)
{
	struct mount *m = usip_arg_ptr(regs, 0);
	int type = regs_get_kernel_argument(regs, 1);
	struct list_head *slaves, *pos;

	if (!(READ_ONCE(usip_mnt_vfs(m)->mnt_flags) & MNT_UMOUNT))
		usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m));
	if (type == MS_SHARED)
		return 0;
	/* Its slaves are handed to another master: their master:N may change. */
	slaves = USIP_AT(m, usip_k.mnt_slave_list, struct list_head);
	list_for_each(pos, slaves) {
		struct mount *slave = (struct mount *)((char *)pos - usip_k.mnt_slave);

		if (!(READ_ONCE(usip_mnt_vfs(slave)->mnt_flags) & MNT_UMOUNT))
			usip_mount_event(slave, USIP_ACTION_REMOUNT, usip_mnt_ns(slave));
	}
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

/* attach_recursive_mnt(source, top, mp, flags): bit 0 is "moving" on 6.1 and 6.12. */
static int usip_attach_recursive_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!(regs_get_kernel_argument(regs, 3) & 1))
		return 1;	/* not a move: commit_tree() reports it */
	usip_entry(ri)->arg = usip_arg_ptr(regs, 0);
	return 0;
}

static int usip_moved_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct mount *m = usip_entry(ri)->arg, *below;

	if (regs_return_value(regs))
		return 0;
	usip_mount_event(m, USIP_ACTION_MOVE, usip_mnt_ns(m));
	/*
	 * Moved under a shared mount, every mount of the tree was made shared
	 * (set_mnt_shared(), not change_mnt_propagation()): their shared:N
	 * changed. The moved mount's own change comes with its move event.
	 */
	if (!(READ_ONCE(usip_mnt_vfs(m)->mnt_flags) & MNT_SHARED))
		return 0;
	for (below = usip_next_mnt(m, m); below; below = usip_next_mnt(below, m))
		usip_mount_event(below, USIP_ACTION_REMOUNT, usip_mnt_ns(below));
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

	usip_mount_event(m, USIP_ACTION_MOVE, usip_mnt_ns(m));
	return 0;
}

/* attach_mnt(mnt, parent, mp, ...), when pivot_root() calls it. */
static int usip_attach_mnt_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!usip_called_from(regs, &usip_k.pivot_root))
		return 1;
	usip_entry(ri)->arg = usip_arg_ptr(regs, 0);
	return 0;
}

/* propagate_umount(struct list_head *list): the mounts about to go. */
static int usip_propagate_umount_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	usip_entry(ri)->arg = usip_arg_ptr(regs, 0);
	return 0;
}

static int usip_propagate_umount_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct list_head *list = usip_entry(ri)->arg, *pos;

	list_for_each(pos, list) {
		struct mount *m = (struct mount *)((char *)pos - usip_k.mnt_list);

		usip_mount_event(m, USIP_ACTION_UMOUNT, usip_mnt_ns(m));
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
		usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m));
		read_sequnlock_excl(usip_k.mount_lock);
	} else {
		usip_mount_sb_event(path->mnt->mnt_sb);
	}
	return 0;
}

/* reconfigure_super(struct fs_context *fc), from fsconfig() or umount(2). */
static int usip_reconfigure_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct fs_context *fc = usip_arg_ptr(regs, 0);

	if (!usip_called_from(regs, &usip_k.fsconfig) &&
	    !usip_called_from(regs, &usip_k.path_umount))
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

/* __do_sys_mount_setattr(dfd, path, flags, uattr, usize) */
static int usip_setattr_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
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
		slot->recursive = regs_get_kernel_argument(regs, 2) & AT_RECURSIVE;
		atomic_inc(&usip_setattrs_busy);
	}
	spin_unlock_irqrestore(&usip_setattrs_lock, flags);
	if (!slot) {
		/* Too many at once to follow: the watchers will resynchronise. */
		atomic64_inc(&usip_mount_gaps);
		return 1;
	}
	return 0;
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
			usip_mount_tree_event(m, USIP_ACTION_REMOUNT, NULL);
		else
			usip_mount_event(m, USIP_ACTION_REMOUNT, usip_mnt_ns(m));
		read_sequnlock_excl(usip_k.mount_lock);
	}
	mntput(mnt);
	return 0;
}

/* user_path_at(dfd, name, flags, struct path *path), inside mount_setattr(2). */
static int usip_user_path_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!atomic_read(&usip_setattrs_busy) || !usip_called_from(regs, &usip_k.mount_setattr))
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

static struct kprobe usip_kprobes[] = {
	{ .symbol_name = "commit_tree", .pre_handler = usip_commit_tree },
	{ .symbol_name = "umount_tree", .pre_handler = usip_umount_tree },
	{ .symbol_name = "change_mnt_propagation", .pre_handler = usip_change_propagation },
};

#define USIP_RETPROBE(sym, entry, ret, active)				\
	{								\
		.kp.symbol_name = (sym),				\
		.entry_handler = (entry),				\
		.handler = (ret),					\
		.data_size = sizeof(struct usip_entry),			\
		.maxactive = (active),					\
	}

/*
 * The functions serialised by namespace_sem need few instances; path_mount()
 * and reconfigure_super() can sleep in a file system with many callers, but
 * an instance is kept only for a remount.
 */
static struct kretprobe usip_kretprobes[] = {
	USIP_RETPROBE("attach_recursive_mnt", usip_attach_recursive_entry,
		      usip_moved_return, 16),
	USIP_RETPROBE("mnt_change_mountpoint", usip_change_mountpoint_entry,
		      usip_reparented_return, 16),
	USIP_RETPROBE("attach_mnt", usip_attach_mnt_entry, usip_reparented_return, 16),
	USIP_RETPROBE("propagate_umount", usip_propagate_umount_entry,
		      usip_propagate_umount_return, 16),
	USIP_RETPROBE("path_mount", usip_path_mount_entry, usip_path_mount_return, 256),
	USIP_RETPROBE("reconfigure_super", usip_reconfigure_entry,
		      usip_reconfigure_return, 64),
	USIP_RETPROBE("__do_sys_mount_setattr", usip_setattr_entry, usip_setattr_return, 16),
	/* Its name is set when armed: usip_k.user_path_at. */
	USIP_RETPROBE(NULL, usip_user_path_entry, usip_user_path_return, 64),
};

#define USIP_USER_PATH_PROBE	(ARRAY_SIZE(usip_kretprobes) - 1)

static unsigned long usip_missed_seen;

static void usip_mount_check_missed(void)
{
	unsigned long missed = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(usip_kprobes); i++)
		missed += READ_ONCE(usip_kprobes[i].nmissed);
	for (i = 0; i < ARRAY_SIZE(usip_kretprobes); i++)
		missed += READ_ONCE(usip_kretprobes[i].nmissed) +
			  READ_ONCE(usip_kretprobes[i].kp.nmissed);
	if (missed != READ_ONCE(usip_missed_seen)) {
		WRITE_ONCE(usip_missed_seen, missed);
		atomic64_inc(&usip_mount_gaps);
	}
}

/* --- Arming --------------------------------------------------------------- */

static DEFINE_MUTEX(usip_hooks_lock);
static unsigned int usip_mtab_listeners;	/* under usip_hooks_lock */
static bool usip_hooks_armed;			/* likewise */
static bool usip_hooks_failed;			/* likewise: do not retry */
static bool usip_hooks_exiting;			/* likewise: the module unloads */

static void usip_hooks_disarm_work(struct work_struct *work);
static DECLARE_DELAYED_WORK(usip_hooks_disarm, usip_hooks_disarm_work);

bool usip_mount_events_available(void)
{
	return usip_k.mount_hooks && usip_scratch;
}

static int usip_hooks_arm(void)
{
	int err, i, k = 0;

	for (i = 0; i < ARRAY_SIZE(usip_kprobes); i++) {
		/* A kprobe cannot be registered twice: clear what the last use left. */
		usip_kprobes[i].addr = NULL;
		usip_kprobes[i].flags = 0;
		usip_kprobes[i].nmissed = 0;
	}
	usip_kretprobes[USIP_USER_PATH_PROBE].kp.symbol_name = usip_k.user_path_at;
	for (i = 0; i < ARRAY_SIZE(usip_kretprobes); i++) {
		usip_kretprobes[i].kp.addr = NULL;
		usip_kretprobes[i].kp.flags = 0;
		usip_kretprobes[i].kp.nmissed = 0;
		usip_kretprobes[i].nmissed = 0;
	}
	usip_missed_seen = 0;
	for (i = 0; i < ARRAY_SIZE(usip_kprobes); i++) {
		err = register_kprobe(&usip_kprobes[i]);
		if (err)
			goto kprobes;
	}
	for (k = 0; k < ARRAY_SIZE(usip_kretprobes); k++) {
		err = register_kretprobe(&usip_kretprobes[k]);
		if (err)
			goto kretprobes;
	}
	return 0;

kretprobes:
	pr_warn("cannot hook %s (%d): mount events are off\n",
		usip_kretprobes[k].kp.symbol_name, err);
	while (k--)
		unregister_kretprobe(&usip_kretprobes[k]);
	i = ARRAY_SIZE(usip_kprobes);
	goto unwind;
kprobes:
	pr_warn("cannot hook %s (%d): mount events are off\n",
		usip_kprobes[i].symbol_name, err);
unwind:
	while (i--)
		unregister_kprobe(&usip_kprobes[i]);
	return err;
}

static void usip_hooks_disarm_now(void)
{
	struct kretprobe *rps[ARRAY_SIZE(usip_kretprobes)];
	struct kprobe *kps[ARRAY_SIZE(usip_kprobes)];
	int i;

	lockdep_assert_held(&usip_hooks_lock);
	if (!usip_hooks_armed)
		return;
	for (i = 0; i < ARRAY_SIZE(usip_kprobes); i++)
		kps[i] = &usip_kprobes[i];
	for (i = 0; i < ARRAY_SIZE(usip_kretprobes); i++)
		rps[i] = &usip_kretprobes[i];
	/* Waits for handlers in progress; return probes' pending instances too. */
	unregister_kprobes(kps, ARRAY_SIZE(kps));
	unregister_kretprobes(rps, ARRAY_SIZE(rps));
	usip_hooks_armed = false;
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
 * A listener with mtab notifiers was registered (@global: for every
 * namespace). Arms the hooks if they are not; a failure to arm is logged
 * once and leaves the listener with injected events only.
 */
void usip_mount_hooks_get(bool global)
{
	mutex_lock(&usip_hooks_lock);
	usip_mtab_listeners++;
	if (global)
		atomic_inc(&usip_global_mtab_listeners);
	if (!usip_hooks_armed && !usip_hooks_failed && !usip_hooks_exiting &&
	    usip_mount_events_available()) {
		if (usip_hooks_arm())
			usip_hooks_failed = true;
		else
			usip_hooks_armed = true;
	}
	mutex_unlock(&usip_hooks_lock);
}

void usip_mount_hooks_put(bool global)
{
	mutex_lock(&usip_hooks_lock);
	if (global)
		atomic_dec(&usip_global_mtab_listeners);
	if (!--usip_mtab_listeners && usip_hooks_armed && !usip_hooks_exiting)
		/* Not at once: a listener that comes back soon finds them armed. */
		mod_delayed_work(system_wq, &usip_hooks_disarm, HZ);
	mutex_unlock(&usip_hooks_lock);
}

u32 usip_mount_hooks_armed(void)
{
	return READ_ONCE(usip_hooks_armed) ?
	       ARRAY_SIZE(usip_kprobes) + ARRAY_SIZE(usip_kretprobes) : 0;
}

int usip_mount_events_init(void)
{
	/* Without the internals there is nothing to hook; not an error. */
	if (!usip_k.mount_table)
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

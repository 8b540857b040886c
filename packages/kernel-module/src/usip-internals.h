/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel internals the mount table needs, found at load time.
 *
 * struct mount and struct mnt_namespace are private to fs/ (fs/mount.h is
 * not among the headers an out-of-tree module builds against), and
 * namespace_sem and mount_lock are not exported. usip-internals.c finds the
 * member offsets in the running kernel's BTF and the variables' addresses in
 * its kallsyms, checks each against what it must be, and fills usip_k. The
 * accessors below read through those offsets; struct mount and struct
 * mnt_namespace stay incomplete types so that nothing can use a guessed
 * layout by accident.
 */
#ifndef _USIP_INTERNALS_H
#define _USIP_INTERNALS_H

#include <linux/compiler.h>
#include <linux/list.h>
#include <linux/mount.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct mount;
struct mnt_namespace;
struct ns_common;

/* A kernel function whose [start, end) the hooks compare return addresses with. */
struct usip_text_range {
	unsigned long start;
	unsigned long end;
};

struct usip_kernel {
	/* mount-get works: the offsets and namespace_sem were found. */
	bool mount_table;
	/* Every function the mount event hooks need was found. */
	bool mount_hooks;
	/* Set while loading when something is missing: why, for logs and extack. */
	char reason[128];

	struct rw_semaphore *namespace_sem;
	seqlock_t *mount_lock;

	/* Offsets in struct mount. */
	size_t mnt_parent, mnt_mountpoint, mnt_vfs, mnt_mounts, mnt_child;
	size_t mnt_instance, mnt_devname, mnt_list, mnt_share, mnt_slave_list;
	size_t mnt_slave, mnt_master, mnt_ns, mnt_id, mnt_group_id;
	size_t mnt_id_unique, mnt_node;	/* Linux 6.8+, when has_unique_id */
	bool has_unique_id;

	/* Offsets in struct mnt_namespace. */
	size_t ns_root, ns_event, ns_seq;
	/* The namespace's mounts: an rbtree by unique id (6.8+) or a list. */
	bool ns_rbtree;
	size_t ns_mounts;		/* struct rb_root, when ns_rbtree */
	size_t ns_list, ns_lock;	/* list_head and its spinlock, otherwise */

	/* Callers of hooked functions that the hooks tell apart. */
	struct usip_text_range pivot_root, fsconfig, path_umount, mount_setattr;
	/* user_path_at() (6.8+) or user_path_at_empty() (before), whichever exists. */
	const char *user_path_at;
};

extern struct usip_kernel usip_k;

#define USIP_AT(ptr, off, type) ((type *)((char *)(ptr) + (off)))

static inline struct vfsmount *usip_mnt_vfs(const struct mount *m)
{
	return USIP_AT(m, usip_k.mnt_vfs, struct vfsmount);
}

static inline struct mount *usip_real_mount(const struct vfsmount *v)
{
	return (struct mount *)((char *)v - usip_k.mnt_vfs);
}

static inline struct mount *usip_mnt_parent(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_parent, struct mount *));
}

static inline struct dentry *usip_mnt_mountpoint(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_mountpoint, struct dentry *));
}

static inline struct mnt_namespace *usip_mnt_ns(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_ns, struct mnt_namespace *));
}

static inline int usip_mnt_id(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_id, int));
}

static inline u64 usip_mnt_unique_id(const struct mount *m)
{
	return usip_k.has_unique_id ? *USIP_AT(m, usip_k.mnt_id_unique, u64) : 0;
}

static inline int usip_mnt_group_id(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_group_id, int));
}

static inline struct mount *usip_mnt_master(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_master, struct mount *));
}

static inline const char *usip_mnt_devname(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_devname, const char *));
}

static inline struct list_head *usip_mnt_mounts(const struct mount *m)
{
	return USIP_AT(m, usip_k.mnt_mounts, struct list_head);
}

static inline struct mount *usip_mnt_of_child(const struct list_head *child)
{
	return (struct mount *)((char *)child - usip_k.mnt_child);
}

static inline struct list_head *usip_mnt_child(const struct mount *m)
{
	return USIP_AT(m, usip_k.mnt_child, struct list_head);
}

static inline bool usip_mnt_has_parent(const struct mount *m)
{
	return usip_mnt_parent(m) != m;
}

static inline struct mount *usip_ns_root(const struct mnt_namespace *ns)
{
	return READ_ONCE(*USIP_AT(ns, usip_k.ns_root, struct mount *));
}

/* The namespace's creation number; 0 for anonymous ones (open_tree(), fsmount()). */
static inline u64 usip_ns_seq_number(const struct mnt_namespace *ns)
{
	return *USIP_AT(ns, usip_k.ns_seq, u64);
}

static inline u64 usip_ns_event(const struct mnt_namespace *ns)
{
	return READ_ONCE(*USIP_AT(ns, usip_k.ns_event, u64));
}

/* struct mnt_namespace starts with its ns_common (checked at load time). */
static inline struct ns_common *usip_ns_common(struct mnt_namespace *ns)
{
	return (struct ns_common *)ns;
}

/*
 * The next mount of the tree under @root after @p in depth-first order, or
 * NULL: the kernel's own next_mnt(). The caller holds namespace_sem or
 * mount_lock.
 */
struct mount *usip_next_mnt(struct mount *p, struct mount *root);

#endif /* _USIP_INTERNALS_H */

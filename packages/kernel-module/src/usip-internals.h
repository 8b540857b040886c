/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel internals the mount table and its events need, found and
 * checked at load time, and the features that depend on them.
 *
 * struct mount and struct mnt_namespace are private to fs/ (fs/mount.h is
 * not among the headers an out-of-tree module builds against), namespace_sem
 * and mount_lock are not exported, and the functions the mount hooks probe
 * are static. usip-internals.c finds the member offsets and the hooked
 * functions' prototypes in the running kernel's BTF and the addresses in its
 * kallsyms, checks each against what the module reads, and turns off only
 * the features whose needs are not met, each with its reason. The accessors
 * below read through those offsets; struct mount and struct mnt_namespace
 * stay incomplete types so that nothing can use a guessed layout by accident.
 */
#ifndef _USIP_INTERNALS_H
#define _USIP_INTERNALS_H

#include <linux/compiler.h>
#include <linux/kprobes.h>
#include <linux/limits.h>
#include <linux/list.h>
#include <linux/mount.h>
#include <linux/path.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/usip.h>

struct mount;
struct mnt_namespace;
struct ns_common;

/* --- Features ------------------------------------------------------------- */

/* The module's features, in the order of their flags in the spec. */
enum usip_feature_index {
	USIP_F_NETNS,
	USIP_F_NATIVE_MOUNT_NOTIFY,
	USIP_F_MOUNT_TABLE,
	USIP_F_MOUNT_EVENTS,
	USIP_F_REMOUNT_EVENTS,
	USIP_F_PROPAGATION_EVENTS,
	USIP_F_SETATTR_EVENTS,
	USIP_F_STATFS,
	USIP_F_SPACE_ERRORS,
	USIP_F_QUOTA_WARNINGS,
	USIP_F_LOW_SPACE,
	USIP_N_FEATURES,
};

/*
 * Whether each feature works: 0, or the USIP_UNAVAILABLE_REASON_* that says
 * why not. Set while loading; an event feature whose hooks fail to arm gets
 * USIP_UNAVAILABLE_REASON_ARM_FAILED until they arm (usip-mount-events.c).
 */
extern u32 usip_feature_reason[USIP_N_FEATURES];

static inline bool usip_feature_available(enum usip_feature_index f)
{
	return !READ_ONCE(usip_feature_reason[f]);
}

/* Available, or only waiting for its hooks to arm (with the next listener). */
static inline bool usip_feature_usable(enum usip_feature_index f)
{
	u32 reason = READ_ONCE(usip_feature_reason[f]);

	return !reason || reason == USIP_UNAVAILABLE_REASON_ARM_FAILED;
}

/* The feature's flag (USIP_FEATURE_*), name, and the flags of every available one. */
u32 usip_feature_flag(enum usip_feature_index f);
const char *usip_feature_name(enum usip_feature_index f);
u32 usip_feature_mask(void);

/* --- Hooks ---------------------------------------------------------------- */

/* What an argument of a hooked function must be, in the kernel's BTF. */
enum usip_arg_kind {
	USIP_ARG_UNREAD,	/* the hook does not read it */
	USIP_ARG_STRUCT_PTR,	/* a pointer to struct @type */
	USIP_ARG_INTEGER,	/* an integer, bool or enum (see @enumerator) */
	USIP_ARG_STRUCT,	/* a struct @type passed by value, in one register */
};

struct usip_hook_arg {
	u8 kind;
	/* Its name in the prototype; alternatives separated by '|'. */
	const char *name;
	/* USIP_ARG_STRUCT_PTR: the struct's name. */
	const char *type;
	/*
	 * USIP_ARG_INTEGER of an enum type: the enumerator the hook tests, and
	 * the value it tests it by; ignored for a plain integer or bool.
	 */
	const char *enumerator;
	s64 value;
};

#define USIP_HOOK_MAX_ARGS	5
#define USIP_HOOK_MAX_CALLERS	2

/* A kernel function's [start, end), which return addresses are compared with. */
struct usip_text_range {
	unsigned long start;
	unsigned long end;
};

/*
 * One hooked kernel function: what it must look like and what handles it
 * (usip-mount-events.c defines the table), and what loading found.
 *
 * Where kernels differ (a function inlined, renamed or given another
 * prototype), a feature's job is a role its hooks play in one of several
 * ways: the hooks of a role (same feature and @role, not 0) form
 * alternatives by @alt, and the first alternative whose every hook checks out
 * against this kernel is armed; the others are left alone. The feature is
 * off only if no alternative fits. @role 0: the hook is needed on its own.
 */
struct usip_hook {
	const char *symbol;
	/* Its name on older kernels (user_path_at_empty() before 6.8), or NULL. */
	const char *old_symbol;
	enum usip_feature_index feature;
	u8 role, alt;
	/*
	 * A kernel without the function (or its callers) does that work where
	 * another hook sees it: then it is left alone. A kernel that has it
	 * must have the prototype described.
	 */
	bool absent_ok;
	/* The prototype's argument count, and the arguments the hook reads. */
	u8 min_args, max_args;
	struct usip_hook_arg args[USIP_HOOK_MAX_ARGS];
	/*
	 * If set, only calls from these functions are reported. A caller may
	 * be a compiler's clone of the function (name.isra.0, name.constprop.0,
	 * name.part.0): what it is called from is all that matters.
	 */
	const char *callers[USIP_HOOK_MAX_CALLERS];
	/* A kprobe (pre) or a return probe (entry + ret, with per-call data). */
	kprobe_pre_handler_t pre;
	kretprobe_handler_t entry;
	kretprobe_handler_t ret;
	size_t data_size;
	int maxactive;

	/* Found while loading. */
	const char *name;			/* symbol or old_symbol */
	struct usip_text_range caller_ranges[USIP_HOOK_MAX_CALLERS];
	u32 reason;				/* 0: found and checked */
	char why[112];				/* what did not check out */
	bool absent;				/* the function or a caller is not there */
	bool unused;				/* another alternative is armed, or absent_ok */

	/* The probe (its .kp for a kprobe), and whether it is registered. */
	struct kretprobe probe;
	bool armed;
};

extern struct usip_hook usip_hooks[];
extern const unsigned int usip_n_hooks;

/*
 * The tracepoint the space-errors feature hooks (usip-space-errors.c): its
 * symbol is the tracepoint's name, and its prototype is checked against the
 * kernel's BTF typedef btf_trace_<name>, whose arguments have no names.
 */
extern struct usip_hook usip_sys_exit_tracepoint;

/* The quota warning hook's handler, for its entry in usip_hooks[]. */
int usip_quota_warning_pre(struct kprobe *p, struct pt_regs *regs);

/* Turns feature @f off for @reason (the first reason stays), and logs why. */
__printf(3, 4) void usip_feature_off(enum usip_feature_index f, u32 reason,
				     const char *fmt, ...);

/*
 * Is the function that @regs entered called from @range? (x86-64: at entry
 * the return address is on top of the stack.)
 */
static inline bool usip_called_from(struct pt_regs *regs, const struct usip_text_range *range)
{
	unsigned long ret = *(unsigned long *)kernel_stack_pointer(regs);

	return range->start && ret >= range->start && ret < range->end;
}

/* --- struct mount and struct mnt_namespace ------------------------------- */

struct usip_kernel {
	/* Why the mount table is missing, for logs and extack (empty if it is not). */
	char reason[128];

	struct rw_semaphore *namespace_sem;
	seqlock_t *mount_lock;

	/* Offsets in struct mount, and its size. */
	size_t mount_size;
	size_t mnt_parent, mnt_mountpoint, mnt_vfs, mnt_mounts, mnt_child;
	size_t mnt_devname, mnt_list, mnt_share, mnt_slave_list;
	size_t mnt_slave, mnt_master, mnt_ns, mnt_id, mnt_group_id;
	size_t mnt_id_unique, mnt_node;	/* Linux 6.8+, when has_unique_id */
	bool has_unique_id;
	/* A mount's slaves: a list_head list, or (7.x) an hlist. */
	bool slaves_hlist;
	/*
	 * Shared and unbindable: MNT_SHARED and MNT_UNBINDABLE of the
	 * vfsmount's mnt_flags, or (7.x) T_SHARED and T_UNBINDABLE of
	 * mnt_t_flags, read from the BTF. The int that holds them, and their bits.
	 */
	size_t mnt_prop_flags;
	u32 shared_flag, unbindable_flag;
	/*
	 * A superblock's mounts (super_block.s_mounts): a list_head list
	 * through mnt_instance, or (7.x) a chain of pointers through
	 * mnt_next_for_sb. The offset of each, in its struct.
	 */
	bool sb_mounts_chain;
	size_t sb_mounts, mnt_instance, mnt_next_for_sb;

	/* Offsets in struct mnt_namespace. */
	size_t ns_root, ns_event;
	/* Anonymous namespaces: a seq of 0, or (7.x) is_anon. */
	bool ns_has_is_anon;
	size_t ns_seq, ns_is_anon;
	/* The namespace's mounts: an rbtree by unique id (6.8+) or a list. */
	bool ns_rbtree;
	size_t ns_mounts;		/* struct rb_root, when ns_rbtree */
	size_t ns_list, ns_lock;	/* list_head and its spinlock, otherwise */
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

static inline unsigned int usip_mnt_flags(const struct mount *m)
{
	return READ_ONCE(usip_mnt_vfs(m)->mnt_flags);
}

static inline bool usip_mnt_shared(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_prop_flags, int)) & usip_k.shared_flag;
}

static inline bool usip_mnt_unbindable(const struct mount *m)
{
	return READ_ONCE(*USIP_AT(m, usip_k.mnt_prop_flags, int)) & usip_k.unbindable_flag;
}

/* The first of @m's slaves, or NULL; mount_lock or namespace_sem held. */
static inline struct mount *usip_mnt_first_slave(const struct mount *m)
{
	void *first;

	if (usip_k.slaves_hlist) {
		first = USIP_AT(m, usip_k.mnt_slave_list, struct hlist_head)->first;
	} else {
		struct list_head *head = USIP_AT(m, usip_k.mnt_slave_list, struct list_head);

		first = head->next == head ? NULL : head->next;
	}
	return first ? (struct mount *)((char *)first - usip_k.mnt_slave) : NULL;
}

/* The slave of @master after @slave, or NULL. */
static inline struct mount *usip_mnt_next_slave(const struct mount *master,
						const struct mount *slave)
{
	void *next;

	if (usip_k.slaves_hlist) {
		next = USIP_AT(slave, usip_k.mnt_slave, struct hlist_node)->next;
	} else {
		struct list_head *head = USIP_AT(master, usip_k.mnt_slave_list, struct list_head);

		next = USIP_AT(slave, usip_k.mnt_slave, struct list_head)->next;
		if (next == head)
			next = NULL;
	}
	return next ? (struct mount *)((char *)next - usip_k.mnt_slave) : NULL;
}

/* The first mount of superblock @sb, or NULL; mount_lock held. */
static inline struct mount *usip_sb_first_mount(struct super_block *sb)
{
	void *at = (char *)sb + usip_k.sb_mounts;
	struct list_head *head = at;

	if (usip_k.sb_mounts_chain)
		return *(struct mount **)at;
	return head->next == head ? NULL :
	       (struct mount *)((char *)head->next - usip_k.mnt_instance);
}

/* The mount of @sb after @m, or NULL; mount_lock held. */
static inline struct mount *usip_sb_next_mount(struct super_block *sb, struct mount *m)
{
	struct list_head *head = (struct list_head *)((char *)sb + usip_k.sb_mounts);
	struct list_head *next;

	if (usip_k.sb_mounts_chain)
		return *USIP_AT(m, usip_k.mnt_next_for_sb, struct mount *);
	next = USIP_AT(m, usip_k.mnt_instance, struct list_head)->next;
	return next == head ? NULL : (struct mount *)((char *)next - usip_k.mnt_instance);
}

static inline struct mount *usip_ns_root(const struct mnt_namespace *ns)
{
	return READ_ONCE(*USIP_AT(ns, usip_k.ns_root, struct mount *));
}

/* Is @ns anonymous (open_tree(), fsmount())? Its seq is 0, or (7.x) is_anon says so. */
static inline bool usip_ns_anonymous(const struct mnt_namespace *ns)
{
	if (usip_k.ns_has_is_anon)
		return READ_ONCE(*USIP_AT(ns, usip_k.ns_is_anon, bool));
	return !*USIP_AT(ns, usip_k.ns_seq, u64);
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

/* The root of @ns as a path: its root mount, at that mount's root. */
static inline struct path usip_ns_root_path(const struct mnt_namespace *ns)
{
	struct vfsmount *vfs = usip_mnt_vfs(usip_ns_root(ns));

	return (struct path){ .mnt = vfs, .dentry = vfs->mnt_root };
}

/*
 * The next mount of the tree under @root after @p in depth-first order, or
 * NULL: the kernel's own next_mnt(). The caller holds namespace_sem or
 * mount_lock.
 */
struct mount *usip_next_mnt(struct mount *p, struct mount *root);

/* usip-mount.c: the mount after @m in @ns (@m NULL: the first); namespace_sem held. */
struct mount *usip_ns_next(struct mnt_namespace *ns, struct mount *m);

/* --- Paths ---------------------------------------------------------------- */

/* How far up the mount tree a path is worked out; beyond, the module cannot tell. */
#define USIP_MAX_DEPTH	128

/* Scratch space to work out one path: the path and two segments. */
struct usip_path_buf {
	char path[PATH_MAX];
	char a[PATH_MAX];
	char b[PATH_MAX];
};

/*
 * Where @m is mounted as seen from @root (a mount and a directory in it),
 * exactly as /proc/self/mountinfo of a process with that root shows it:
 * written in @buf->path and returned. NULL when @m is not below @root
 * (mountinfo leaves it out), ERR_PTR(-ENAMETOOLONG) when it is but the path
 * does not fit in PATH_MAX bytes, ERR_PTR(-ELOOP) when the mount tree is
 * deeper than USIP_MAX_DEPTH (the module cannot tell). The mount tree must
 * not change meanwhile: namespace_sem or mount_lock held, or a hook.
 */
const char *usip_mount_point(struct mount *m, const struct path *root,
			     struct usip_path_buf *buf);
/* Whether @m is below @root, the same way, without building the path. */
bool usip_mount_below(struct mount *m, const struct path *root);

/*
 * Exported on every supported kernel, but declared in fs/internal.h before
 * linux/namei.h got it (6.1 has it there); the same prototype either way.
 */
int vfs_path_lookup(struct dentry *dentry, struct vfsmount *mnt, const char *name,
		    unsigned int flags, struct path *path);

/* Mounts of a namespace by id, or by device (usip-mount.c); namespace_sem held. */
struct mount *usip_ns_find_mount(struct mnt_namespace *ns, u64 mount_id, u64 unique_id);
struct mount *usip_ns_find_dev(struct mnt_namespace *ns, dev_t dev);

/* --- Mounts for other operations (usip-mount.c) ------------------------- */

/*
 * A mount by id in @ns: its mount id, or with @by_unique_id its unique id
 * (6.8+); NULL if @ns has none. namespace_sem held.
 */
struct mount *usip_mount_lookup(struct mnt_namespace *ns, bool by_unique_id, u64 id);

/*
 * Scratch space for a mount's text, with the credentials of the task that
 * made it (file systems' show_devname() may read them); charged to it.
 */
struct usip_mount_text;
struct usip_mount_text *usip_mount_text_new(void);
void usip_mount_text_free(struct usip_mount_text *t);

/* A mount's place and name as mountinfo shows them; the strings live in the text. */
struct usip_mount_ident {
	const char *mount_point;
	const char *source;
	const char *fs_type;
};

/*
 * Fills @id for @m as seen from @root: 0, 1 if @m is not visible from @root
 * (mountinfo leaves it out), or an error. namespace_sem held.
 */
int usip_mount_identity(struct usip_mount_text *t, struct mount *m,
			const struct path *root, struct usip_mount_ident *id);

/*
 * A walk through the caller's mount namespace, in its order, that keeps its
 * place while namespace_sem is let go between batches, and holds no mount:
 * after the last unique id passed (rbtree, 6.8+) or at a cursor in the list
 * (6.1, as mountinfo's readers do).
 */
struct usip_mount_walk {
	struct mnt_namespace *ns;	/* referenced */
	u64 last_unique_id;
	struct mount *cursor;
	unsigned long passed;
};

/* Starts in the caller's namespace: 0 or -ENOMEM. */
int usip_mount_walk_init(struct usip_mount_walk *w);
void usip_mount_walk_release(struct usip_mount_walk *w);
/* With namespace_sem held: the first mount not yet passed, the next, and passing one. */
struct mount *usip_mount_walk_resume(struct usip_mount_walk *w);
struct mount *usip_mount_walk_next(struct usip_mount_walk *w, struct mount *m);
void usip_mount_walk_remember(struct usip_mount_walk *w, struct mount *m);

int usip_internals_init(void);

#endif /* _USIP_INTERNALS_H */

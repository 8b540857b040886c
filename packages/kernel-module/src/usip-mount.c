// SPDX-License-Identifier: GPL-2.0
/*
 * mount-get: the mount table of the caller's mount namespace as the caller
 * sees it from its root directory; the fields of /proc/self/mountinfo
 * (show_mountinfo() in fs/proc_namespace.c) in structured form, one message
 * per mount.
 *
 * Mounts are read under namespace_sem held for read, as mountinfo reads
 * them. A dump takes it once per batch of messages and never across
 * recvmsg() calls, so a reader never holds mount(2) off for longer than one
 * buffer's worth of mounts. A dump fixes, when it starts, the namespace, the
 * root directory and the credentials it answers for: whichever task reads
 * the rest gets the same view. It holds no mount: where a namespace keeps its
 * mounts in an rbtree by unique id (6.8+), a dump resumes after the last id
 * it sent; where it keeps a list (6.1), it keeps its place with a cursor in
 * that list, as mountinfo's readers do (their cursors are struct mounts
 * flagged MNT_CURSOR, which every walker of the list skips; the list is
 * walked and the cursors moved under the namespace's ns_lock).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/kdev_t.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/path.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/genetlink.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

/*
 * Dump messages are built in buffers of this size, the size netlink expects
 * user space to receive with (see netlink_dump()); one mount always fits:
 * three paths of PATH_MAX and the options below.
 */
#define USIP_MOUNT_DUMP_ALLOC	32768
#define USIP_MOUNT_OPTIONS_MAX	(USIP_MOUNT_DUMP_ALLOC - 3 * PATH_MAX - 1024)

/* A seq_file for the file systems' show_*() callbacks to write into. */
struct usip_seq {
	struct seq_file seq;
	struct file *file;	/* seq.file, whose credentials show_options() may read */
	char *buf;
	size_t cap;
};

/* One mount's text fields, and where they are built. */
struct usip_mount_text {
	struct usip_seq seq;
	struct usip_path_buf where;
	char root_buf[PATH_MAX];
	char source_buf[PATH_MAX];
	char fs_type[128];
	const char *mount_point;
	const char *root;
	const char *source;
	const char *options;
};

/*
 * File systems' show_options() may read the reader's user namespace through
 * seq_user_ns(), that is, the credentials of the seq_file's file: a dump
 * opens an anonymous file, whose credentials are those of the task that
 * opened it, and shows every mount through it.
 */
static const struct file_operations usip_mount_text_fops = {
	.owner = THIS_MODULE,
};

void usip_mount_text_free(struct usip_mount_text *t)
{
	if (!t)
		return;
	if (!IS_ERR_OR_NULL(t->seq.file))
		fput(t->seq.file);
	kvfree(t->seq.buf);
	kvfree(t);
}

/* Charged, like everything a reader makes the module allocate, to the reader. */
struct usip_mount_text *usip_mount_text_new(void)
{
	struct usip_mount_text *t = kvzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);

	if (!t)
		return NULL;
	t->seq.cap = PAGE_SIZE;
	t->seq.buf = kvmalloc(t->seq.cap, GFP_KERNEL_ACCOUNT);
	t->seq.file = anon_inode_getfile("[usip-mount]", &usip_mount_text_fops, NULL, O_RDONLY);
	if (!t->seq.buf || IS_ERR(t->seq.file)) {
		usip_mount_text_free(t);
		return NULL;
	}
	t->seq.seq.file = t->seq.file;
	return t;
}

static void usip_seq_begin(struct usip_seq *s)
{
	s->seq.buf = s->buf;
	s->seq.size = s->cap;
	s->seq.count = 0;
}

/* After an overflow: a buffer twice as large, up to @max. */
static int usip_seq_grow(struct usip_seq *s, size_t max)
{
	char *bigger;

	if (s->cap * 2 > max)
		return -E2BIG;
	bigger = kvmalloc(s->cap * 2, GFP_KERNEL_ACCOUNT);
	if (!bigger)
		return -ENOMEM;
	kvfree(s->buf);
	s->buf = bigger;
	s->cap *= 2;
	return 0;
}

/* What the seq_file holds, as a string; NULL if it overflowed. */
static const char *usip_seq_string(struct usip_seq *s)
{
	if (seq_has_overflowed(&s->seq) || s->seq.count >= s->seq.size)
		return NULL;
	s->seq.buf[s->seq.count] = '\0';
	return s->seq.buf;
}

/* Undoes the \ooo escapes of seq_escape() into @out (@len bytes). */
static const char *usip_unescape(const char *in, char *out, size_t len)
{
	size_t n = 0;

	while (*in && n + 1 < len) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' &&
		    in[2] >= '0' && in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
			out[n++] = (in[1] - '0') << 6 | (in[2] - '0') << 3 | (in[3] - '0');
			in += 4;
		} else {
			out[n++] = *in++;
		}
	}
	out[n] = '\0';
	return out;
}

/* Copies @s into @out (@len bytes); NULL if it does not fit. */
static const char *usip_copy(const char *s, char *out, size_t len)
{
	return strscpy(out, s, len) < 0 ? NULL : out;
}

/*
 * What a file system's show_path() or show_devname() writes for @vfs (escaped
 * as mountinfo has it), unescaped into @out (@len bytes); NULL on failure.
 */
static const char *usip_mount_shown(struct usip_mount_text *t, struct vfsmount *vfs,
				    int (*show)(struct seq_file *, struct dentry *),
				    char *out, size_t len)
{
	const char *s;

	usip_seq_begin(&t->seq);
	if (show(&t->seq.seq, vfs->mnt_root))
		return NULL;
	s = usip_seq_string(&t->seq);
	return s ? usip_unescape(s, out, len) : NULL;
}

/* show_path() of mountinfo: the file system's own, or the dentry's path. */
static const char *usip_mount_root(struct usip_mount_text *t, struct vfsmount *vfs)
{
	struct super_block *sb = vfs->mnt_sb;
	char *p;

	if (sb->s_op->show_path)
		return usip_mount_shown(t, vfs, sb->s_op->show_path, t->root_buf,
					sizeof(t->root_buf));
	/* The room for "//deleted", which dentry_path() appends to unlinked ones. */
	p = dentry_path_raw(vfs->mnt_root, t->root_buf, sizeof(t->root_buf) - 10);
	if (IS_ERR(p))
		return NULL;
	if (d_unlinked(vfs->mnt_root)) {
		memmove(t->root_buf, p, strlen(p) + 1);
		strcat(t->root_buf, "//deleted");
		return t->root_buf;
	}
	return p;
}

/*
 * The path of @d below @top (one file system): "" if they are the same; NULL
 * if @d is not below @top (or a rename raced the two looks);
 * ERR_PTR(-ENAMETOOLONG) if it does not fit.
 */
static const char *usip_dentry_below(struct dentry *d, struct dentry *top,
				     struct usip_path_buf *buf)
{
	const char *path, *top_path;
	size_t len;

	if (d == top)
		return "";
	if (!is_subdir(d, top))
		return NULL;
	path = dentry_path_raw(d, buf->a, sizeof(buf->a));
	if (IS_ERR(path) || IS_ROOT(top))
		return path;
	top_path = dentry_path_raw(top, buf->b, sizeof(buf->b));
	if (IS_ERR(top_path))
		return top_path;
	len = strlen(top_path);
	if (strncmp(path, top_path, len) || path[len] != '/')
		return NULL;
	return path + len;
}

/*
 * What __d_path() does for mountinfo (not exported): from the mount's root
 * up through its parents to @root, one segment per mount, each the mount
 * point's path below the root of the mount it is in.
 */
const char *usip_mount_point(struct mount *m, const struct path *root,
			     struct usip_path_buf *buf)
{
	char *p = buf->path + sizeof(buf->path) - 1;
	struct dentry *d = usip_mnt_vfs(m)->mnt_root;
	bool too_long = false;
	int depth;

	*p = '\0';
	for (depth = 0; ; depth++) {
		struct vfsmount *vfs = usip_mnt_vfs(m);
		bool at_root = vfs == root->mnt;
		const char *seg;
		size_t len;

		seg = usip_dentry_below(d, at_root ? root->dentry : vfs->mnt_root, buf);
		if (!seg)
			return NULL;
		if (IS_ERR(seg)) {
			too_long = true;
		} else if (!too_long) {
			len = strlen(seg);
			if (len >= p - buf->path)
				too_long = true;
			else
				p = memcpy(p - len, seg, len);
		}
		if (at_root)
			break;
		/* The top of the tree, and @root was not on the way: outside it. */
		if (!usip_mnt_has_parent(m))
			return NULL;
		if (depth == USIP_MAX_DEPTH)
			return ERR_PTR(-ELOOP);
		d = usip_mnt_mountpoint(m);
		m = usip_mnt_parent(m);
	}
	if (too_long)
		return ERR_PTR(-ENAMETOOLONG);
	if (!*p)
		*--p = '/';
	return p;
}

bool usip_mount_below(struct mount *m, const struct path *root)
{
	struct dentry *d = usip_mnt_vfs(m)->mnt_root;
	int depth;

	for (depth = 0; depth <= USIP_MAX_DEPTH; depth++) {
		struct vfsmount *vfs = usip_mnt_vfs(m);

		if (vfs == root->mnt)
			return is_subdir(d, root->dentry);
		if (!usip_mnt_has_parent(m) || !is_subdir(d, vfs->mnt_root))
			return false;
		d = usip_mnt_mountpoint(m);
		m = usip_mnt_parent(m);
	}
	return false;
}

static const char *usip_mount_source(struct usip_mount_text *t, struct mount *m,
				     struct vfsmount *vfs)
{
	struct super_block *sb = vfs->mnt_sb;

	if (sb->s_op->show_devname)
		return usip_mount_shown(t, vfs, sb->s_op->show_devname, t->source_buf,
					sizeof(t->source_buf));
	return usip_copy(usip_mnt_devname(m) ?: "none", t->source_buf,
			 sizeof(t->source_buf));
}

static void usip_mount_fs_type(struct usip_mount_text *t, struct super_block *sb)
{
	const char *subtype = sb->s_subtype;

	if (subtype && subtype[0])
		snprintf(t->fs_type, sizeof(t->fs_type), "%s.%s", sb->s_type->name, subtype);
	else
		strscpy(t->fs_type, sb->s_type->name, sizeof(t->fs_type));
}

/* mountinfo's last field: rw/ro, the generic superblock flags, the file system's. */
static int usip_mount_options(struct usip_mount_text *t, struct vfsmount *vfs)
{
	static const struct {
		unsigned long flag;
		const char *name;
	} sb_opts[] = {
		{ SB_SYNCHRONOUS, ",sync" },
		{ SB_DIRSYNC, ",dirsync" },
		{ SB_MANDLOCK, ",mand" },
		{ SB_LAZYTIME, ",lazytime" },
	};
	struct super_block *sb = vfs->mnt_sb;
	int i, err;

	for (;;) {
		usip_seq_begin(&t->seq);
		seq_puts(&t->seq.seq, sb_rdonly(sb) ? "ro" : "rw");
		for (i = 0; i < ARRAY_SIZE(sb_opts); i++)
			if (sb->s_flags & sb_opts[i].flag)
				seq_puts(&t->seq.seq, sb_opts[i].name);
		err = sb->s_op->show_options ?
		      sb->s_op->show_options(&t->seq.seq, vfs->mnt_root) : 0;
		if (err)
			return err;
		t->options = usip_seq_string(&t->seq);
		if (t->options)
			return 0;
		err = usip_seq_grow(&t->seq, USIP_MOUNT_OPTIONS_MAX);
		if (err)
			return err;
	}
}

static u32 usip_mount_attr(struct vfsmount *vfs)
{
	static const struct {
		int mnt_flag;
		u32 attr;
	} map[] = {
		{ MNT_READONLY, USIP_MOUNT_ATTR_RO },
		{ MNT_NOSUID, USIP_MOUNT_ATTR_NOSUID },
		{ MNT_NODEV, USIP_MOUNT_ATTR_NODEV },
		{ MNT_NOEXEC, USIP_MOUNT_ATTR_NOEXEC },
		{ MNT_NOATIME, USIP_MOUNT_ATTR_NOATIME },
		{ MNT_NODIRATIME, USIP_MOUNT_ATTR_NODIRATIME },
		{ MNT_RELATIME, USIP_MOUNT_ATTR_RELATIME },
		{ MNT_NOSYMFOLLOW, USIP_MOUNT_ATTR_NOSYMFOLLOW },
	};
	int flags = READ_ONCE(vfs->mnt_flags);
	u32 attr = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (flags & map[i].mnt_flag)
			attr |= map[i].attr;
	if (is_idmapped_mnt(vfs))
		attr |= USIP_MOUNT_ATTR_IDMAPPED;
	return attr;
}

static struct mount *usip_next_peer(struct mount *m)
{
	struct list_head *next = USIP_AT(m, usip_k.mnt_share, struct list_head)->next;

	return (struct mount *)((char *)next - usip_k.mnt_share);
}

/*
 * get_dominating_id() of fs/pnode.c: the peer group of the nearest master
 * that has a member in @m's namespace under @root, or 0.
 */
static int usip_dominating_id(struct mount *m, const struct path *root)
{
	struct mnt_namespace *ns = usip_mnt_ns(m);
	struct mount *master, *peer;

	for (master = usip_mnt_master(m); master; master = usip_mnt_master(master)) {
		peer = master;
		do {
			struct vfsmount *vfs = usip_mnt_vfs(peer);
			struct path at = { .mnt = vfs, .dentry = vfs->mnt_root };

			if (usip_mnt_ns(peer) == ns && path_is_under(&at, root))
				return usip_mnt_group_id(peer);
			peer = usip_next_peer(peer);
		} while (peer != master);
	}
	return 0;
}

/* Where @m is, its source and type; namespace_sem held. See usip-internals.h. */
int usip_mount_identity(struct usip_mount_text *t, struct mount *m,
			const struct path *root, struct usip_mount_ident *id)
{
	struct vfsmount *vfs = usip_mnt_vfs(m);

	/*
	 * Outside the root, too deep to tell, or (mountinfo would show it) too
	 * long for a netlink attribute: left out.
	 */
	t->mount_point = usip_mount_point(m, root, &t->where);
	if (IS_ERR_OR_NULL(t->mount_point))
		return 1;
	t->source = usip_mount_source(t, m, vfs);
	if (!t->source)
		return -ENAMETOOLONG;
	usip_mount_fs_type(t, vfs->mnt_sb);
	if (id) {
		id->mount_point = t->mount_point;
		id->source = t->source;
		id->fs_type = t->fs_type;
	}
	return 0;
}

/*
 * Builds @m's text fields. Returns 0, 1 if @m is not visible from @root
 * (skip it), or an error.
 */
static int usip_mount_build(struct usip_mount_text *t, struct mount *m,
			    const struct path *root)
{
	int err;

	err = usip_mount_identity(t, m, root, NULL);
	if (err)
		return err;
	t->root = usip_mount_root(t, usip_mnt_vfs(m));
	if (!t->root)
		return -ENAMETOOLONG;
	return usip_mount_options(t, usip_mnt_vfs(m));
}

static size_t usip_mount_msg_size(const struct usip_mount_text *t)
{
	/* mount-id, parent-id, unique-id, mnt-ns, ns-seq */
	return 5 * nla_total_size_64bit(sizeof(u64)) +
	       /* dev-major, dev-minor, attr, shared, master, propagate-from */
	       6 * nla_total_size(sizeof(u32)) + nla_total_size(0) +
	       nla_total_size(strlen(t->mount_point) + 1) +
	       nla_total_size(strlen(t->root) + 1) +
	       nla_total_size(strlen(t->source) + 1) +
	       nla_total_size(strlen(t->fs_type) + 1) +
	       nla_total_size(strlen(t->options) + 1);
}

static int usip_mount_put(struct sk_buff *skb, struct mount *m,
			  const struct usip_mount_text *t, const struct path *root,
			  const u64 *ns_seq)
{
	struct vfsmount *vfs = usip_mnt_vfs(m);
	struct super_block *sb = vfs->mnt_sb;
	struct mount *master = usip_mnt_master(m);
	int dominating;

	if (nla_put_u64_64bit(skb, USIP_A_MOUNT_MOUNT_ID, usip_mnt_id(m), USIP_A_MOUNT_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_MOUNT_PARENT_ID,
			      usip_mnt_id(usip_mnt_parent(m)), USIP_A_MOUNT_PAD) ||
	    (usip_k.has_unique_id &&
	     nla_put_u64_64bit(skb, USIP_A_MOUNT_UNIQUE_ID, usip_mnt_unique_id(m),
			       USIP_A_MOUNT_PAD)) ||
	    nla_put_u32(skb, USIP_A_MOUNT_DEV_MAJOR, MAJOR(sb->s_dev)) ||
	    nla_put_u32(skb, USIP_A_MOUNT_DEV_MINOR, MINOR(sb->s_dev)) ||
	    nla_put_string(skb, USIP_A_MOUNT_ROOT, t->root) ||
	    nla_put_string(skb, USIP_A_MOUNT_MOUNT_POINT, t->mount_point) ||
	    nla_put_u32(skb, USIP_A_MOUNT_ATTR, usip_mount_attr(vfs)) ||
	    nla_put_string(skb, USIP_A_MOUNT_FS_TYPE, t->fs_type) ||
	    nla_put_string(skb, USIP_A_MOUNT_SOURCE, t->source) ||
	    nla_put_string(skb, USIP_A_MOUNT_SUPER_OPTIONS, t->options))
		return -EMSGSIZE;
	if (usip_mnt_shared(m) &&
	    nla_put_u32(skb, USIP_A_MOUNT_SHARED, usip_mnt_group_id(m)))
		return -EMSGSIZE;
	if (master) {
		if (nla_put_u32(skb, USIP_A_MOUNT_MASTER, usip_mnt_group_id(master)))
			return -EMSGSIZE;
		dominating = usip_dominating_id(m, root);
		if (dominating && dominating != usip_mnt_group_id(master) &&
		    nla_put_u32(skb, USIP_A_MOUNT_PROPAGATE_FROM, dominating))
			return -EMSGSIZE;
	}
	if (usip_mnt_unbindable(m) && nla_put_flag(skb, USIP_A_MOUNT_UNBINDABLE))
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, USIP_A_MOUNT_MNT_NS,
			      usip_mnt_ns_inum(usip_ns_common(usip_mnt_ns(m))),
			      USIP_A_MOUNT_PAD))
		return -EMSGSIZE;
	if (ns_seq && nla_put_u64_64bit(skb, USIP_A_MOUNT_NS_SEQ, *ns_seq,
					USIP_A_MOUNT_PAD))
		return -EMSGSIZE;
	return 0;
}

/* --- Walking a namespace's mounts ---------------------------------------- */

static struct mount *usip_mount_of_node(struct rb_node *node)
{
	return node ? (struct mount *)((char *)node - usip_k.mnt_node) : NULL;
}

static struct mount *usip_mount_of_list(struct list_head *entry)
{
	return (struct mount *)((char *)entry - usip_k.mnt_list);
}

static struct rb_root *usip_ns_tree(struct mnt_namespace *ns)
{
	return USIP_AT(ns, usip_k.ns_mounts, struct rb_root);
}

/* The first mount of @ns's tree with a unique id above @after. */
static struct mount *usip_tree_first_after(struct mnt_namespace *ns, u64 after)
{
	struct rb_node *node = usip_ns_tree(ns)->rb_node;
	struct mount *best = NULL;

	while (node) {
		struct mount *m = usip_mount_of_node(node);

		if (usip_mnt_unique_id(m) > after) {
			best = m;
			node = node->rb_left;
		} else {
			node = node->rb_right;
		}
	}
	return best;
}

static bool usip_is_cursor(const struct mount *m)
{
#ifdef MNT_CURSOR
	/* 6.1's mountinfo readers keep their place with cursor entries. */
	return READ_ONCE(usip_mnt_vfs(m)->mnt_flags) & MNT_CURSOR;
#else
	return false;
#endif
}

/* The mount after @prev (a list entry of @ns, or its head) in @ns's list. */
static struct mount *usip_list_next(struct mnt_namespace *ns, struct list_head *prev)
{
	struct list_head *head = USIP_AT(ns, usip_k.ns_list, struct list_head);
	spinlock_t *lock = USIP_AT(ns, usip_k.ns_lock, spinlock_t);
	struct mount *found = NULL;

	spin_lock(lock);
	list_for_each_continue(prev, head) {
		struct mount *m = usip_mount_of_list(prev);

		if (!usip_is_cursor(m)) {
			found = m;
			break;
		}
	}
	spin_unlock(lock);
	return found;
}

/* The mount after @m in @ns (@m NULL: the first); namespace_sem held. */
struct mount *usip_ns_next(struct mnt_namespace *ns, struct mount *m)
{
	if (usip_k.ns_rbtree) {
		if (!m)
			return usip_mount_of_node(rb_first(usip_ns_tree(ns)));
		return usip_mount_of_node(rb_next(USIP_AT(m, usip_k.mnt_node, struct rb_node)));
	}
	return usip_list_next(ns, m ? USIP_AT(m, usip_k.mnt_list, struct list_head) :
				      USIP_AT(ns, usip_k.ns_list, struct list_head));
}

static struct mnt_namespace *usip_current_mnt_ns(void)
{
	return (struct mnt_namespace *)usip_mnt_ns_current();
}

static int usip_mount_unavailable(struct netlink_ext_ack *extack)
{
#ifdef NL_SET_ERR_MSG_FMT_MOD
	NL_SET_ERR_MSG_FMT_MOD(extack, "the mount table is not available: %s",
			       usip_k.reason);
#else
	NL_SET_ERR_MSG_MOD(extack,
			   "the mount table is not available on this kernel (the kernel log says why)");
#endif
	return -EOPNOTSUPP;
}

/*
 * The mount of @ns with @unique_id (a tree lookup, when the kernel has
 * unique ids) or else @mount_id (a walk); namespace_sem held.
 */
struct mount *usip_ns_find_mount(struct mnt_namespace *ns, u64 mount_id, u64 unique_id)
{
	struct mount *m;

	if (usip_k.has_unique_id && unique_id) {
		m = usip_tree_first_after(ns, unique_id - 1);
		return m && usip_mnt_unique_id(m) == unique_id ? m : NULL;
	}
	for (m = usip_ns_next(ns, NULL); m; m = usip_ns_next(ns, m))
		if (usip_mnt_id(m) == mount_id)
			return m;
	return NULL;
}

/* The first mount of @ns, in its order, of a file system on @dev; namespace_sem held. */
struct mount *usip_ns_find_dev(struct mnt_namespace *ns, dev_t dev)
{
	struct mount *m;

	for (m = usip_ns_next(ns, NULL); m; m = usip_ns_next(ns, m))
		if (usip_mnt_vfs(m)->mnt_sb->s_dev == dev)
			return m;
	return NULL;
}

/* --- Finding a mount, walking a namespace across batches -------------- */

struct mount *usip_mount_lookup(struct mnt_namespace *ns, bool by_unique_id, u64 id)
{
	if (by_unique_id)
		return usip_k.has_unique_id && id ? usip_ns_find_mount(ns, 0, id) : NULL;
	return usip_ns_find_mount(ns, id, 0);
}

static struct mount *usip_mount_find(struct mnt_namespace *ns, const struct nlattr *id,
				     const struct nlattr *unique)
{
	return unique ? usip_mount_lookup(ns, true, nla_get_u64(unique)) :
			usip_mount_lookup(ns, false, nla_get_u64(id));
}

/* A cursor for @ns's list: an empty struct mount of the kernel's size, flagged MNT_CURSOR. */
static struct mount *usip_cursor_new(void)
{
#ifdef MNT_CURSOR
	struct mount *cursor = kzalloc(usip_k.mount_size, GFP_KERNEL_ACCOUNT);

	if (!cursor)
		return NULL;
	usip_mnt_vfs(cursor)->mnt_flags = MNT_CURSOR;
	INIT_LIST_HEAD(USIP_AT(cursor, usip_k.mnt_list, struct list_head));
	return cursor;
#else
	/* Kernels without cursors keep their mounts in an rbtree (6.8+). */
	return NULL;
#endif
}

static struct list_head *usip_cursor_entry(struct mount *cursor)
{
	return USIP_AT(cursor, usip_k.mnt_list, struct list_head);
}

/* Moves the walk's cursor after @m (NULL: takes it out); namespace_sem held. */
static void usip_cursor_move(struct usip_mount_walk *w, struct mount *m)
{
	spinlock_t *lock = USIP_AT(w->ns, usip_k.ns_lock, spinlock_t);
	struct list_head *entry = usip_cursor_entry(w->cursor);

	spin_lock(lock);
	if (m)
		list_move(entry, USIP_AT(m, usip_k.mnt_list, struct list_head));
	else
		list_del_init(entry);
	spin_unlock(lock);
}

int usip_mount_walk_init(struct usip_mount_walk *w)
{
	memset(w, 0, sizeof(*w));
	if (!usip_k.ns_rbtree) {
		w->cursor = usip_cursor_new();
		if (!w->cursor)
			return -ENOMEM;
	}
	w->ns = (struct mnt_namespace *)usip_mnt_ns_get_current();
	return 0;
}

void usip_mount_walk_release(struct usip_mount_walk *w)
{
	if (w->cursor) {
		down_read(usip_k.namespace_sem);
		usip_cursor_move(w, NULL);
		up_read(usip_k.namespace_sem);
		kfree(w->cursor);
		w->cursor = NULL;
	}
	if (w->ns)
		usip_mnt_ns_put(usip_ns_common(w->ns));
	w->ns = NULL;
}

struct mount *usip_mount_walk_resume(struct usip_mount_walk *w)
{
	if (usip_k.ns_rbtree)
		return w->passed ? usip_tree_first_after(w->ns, w->last_unique_id) :
				   usip_ns_next(w->ns, NULL);
	if (list_empty(usip_cursor_entry(w->cursor)))
		return usip_ns_next(w->ns, NULL);
	return usip_list_next(w->ns, usip_cursor_entry(w->cursor));
}

struct mount *usip_mount_walk_next(struct usip_mount_walk *w, struct mount *m)
{
	return usip_ns_next(w->ns, m);
}

void usip_mount_walk_remember(struct usip_mount_walk *w, struct mount *m)
{
	w->passed++;
	if (usip_k.ns_rbtree)
		w->last_unique_id = usip_mnt_unique_id(m);
	else
		usip_cursor_move(w, m);
}

/* --- mount-get do -------------------------------------------------------- */

int usip_nl_mount_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	const struct nlattr *id = info->attrs[USIP_A_MOUNT_MOUNT_ID];
	const struct nlattr *unique = info->attrs[USIP_A_MOUNT_UNIQUE_ID];
	struct mnt_namespace *ns = usip_current_mnt_ns();
	struct usip_mount_text *t;
	struct sk_buff *reply = NULL;
	struct path root;
	struct mount *m;
	u64 ns_seq;
	void *hdr;
	int err;

	if (!usip_feature_available(USIP_F_MOUNT_TABLE))
		return usip_mount_unavailable(info->extack);
	if (!id == !unique) {
		NL_SET_ERR_MSG(info->extack,
			       "name the mount by mount-id or by unique-id (one of them)");
		return -EINVAL;
	}
	if (unique && !usip_k.has_unique_id) {
		NL_SET_ERR_MSG_ATTR(info->extack, unique,
				    "this kernel has no unique mount ids (Linux 6.8+); use mount-id");
		return -EOPNOTSUPP;
	}
	t = usip_mount_text_new();
	if (!t)
		return -ENOMEM;
	get_fs_root(current->fs, &root);

	down_read(usip_k.namespace_sem);
	m = usip_mount_find(ns, id, unique);
	err = m ? usip_mount_build(t, m, &root) : 1;
	if (err == 1) {
		NL_SET_ERR_MSG_ATTR(info->extack, unique ?: id,
				    "no such mount in the caller's mount namespace, under its root");
		err = -ENOENT;
	}
	if (!err) {
		reply = genlmsg_new(usip_mount_msg_size(t), GFP_KERNEL);
		err = reply ? 0 : -ENOMEM;
	}
	if (!err) {
		/* Under namespace_sem: the answer reflects every event up to it. */
		ns_seq = usip_mntns_seq(usip_ns_common(ns));
		hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_MOUNT_GET);
		err = hdr ? usip_mount_put(reply, m, t, &root, &ns_seq) : -EMSGSIZE;
		if (!err)
			genlmsg_end(reply, hdr);
	}
	up_read(usip_k.namespace_sem);

	path_put(&root);
	usip_mount_text_free(t);
	if (err) {
		nlmsg_free(reply);
		return err;
	}
	return genlmsg_reply(reply, info);
}

/* --- mount-get dump ------------------------------------------------------ */

struct usip_mount_dump {
	/* The namespace, and where to resume. */
	struct usip_mount_walk walk;
	struct path root;		/* the reader's root when the dump began */
	struct usip_mount_text *text;	/* with the reader's credentials then */
	u64 ns_seq;
	bool done;
};

static struct usip_mount_dump *usip_dump_ctx(struct netlink_callback *cb)
{
	return (struct usip_mount_dump *)cb->args[0];
}

/*
 * Refusals of a dump are reported by its first dumpit call, whose error and
 * extack reach user space in NLMSG_DONE: on 6.1 a .start callback has no
 * extack to explain itself with.
 */
enum { USIP_DUMP_OK, USIP_DUMP_UNAVAILABLE, USIP_DUMP_ATTRIBUTES };

int usip_nl_mount_get_dump_done(struct netlink_callback *cb)
{
	struct usip_mount_dump *d = usip_dump_ctx(cb);

	if (!d)
		return 0;
	usip_mount_walk_release(&d->walk);
	path_put(&d->root);
	usip_mount_text_free(d->text);
	kfree(d);
	cb->args[0] = 0;
	return 0;
}

int usip_nl_mount_get_dump_start(struct netlink_callback *cb)
{
	struct usip_mount_dump *d;

	if (!usip_feature_available(USIP_F_MOUNT_TABLE)) {
		cb->args[1] = USIP_DUMP_UNAVAILABLE;
		return 0;
	}
	if (nlmsg_len(cb->nlh) > GENL_HDRLEN) {
		cb->args[1] = USIP_DUMP_ATTRIBUTES;
		return 0;
	}
	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return -ENOMEM;
	cb->args[0] = (long)d;
	/* What the dump shows, and as whom, is fixed now. */
	get_fs_root(current->fs, &d->root);
	d->text = usip_mount_text_new();
	if (!d->text || usip_mount_walk_init(&d->walk)) {
		usip_nl_mount_get_dump_done(cb);
		return -ENOMEM;
	}
	/* Under namespace_sem, so no mount table change is half counted. */
	down_read(usip_k.namespace_sem);
	d->ns_seq = usip_mntns_seq(usip_ns_common(d->walk.ns));
	up_read(usip_k.namespace_sem);
	cb->min_dump_alloc = USIP_MOUNT_DUMP_ALLOC;
	return 0;
}

int usip_nl_mount_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct usip_mount_dump *d = usip_dump_ctx(cb);
	struct mount *m;
	int err = 0;
	void *hdr;

	switch (cb->args[1]) {
	case USIP_DUMP_UNAVAILABLE:
		return usip_mount_unavailable(cb->extack);
	case USIP_DUMP_ATTRIBUTES:
		NL_SET_ERR_MSG(cb->extack,
			       "a mount-get dump takes no attributes; name one mount in a do request");
		return -EINVAL;
	}
	if (d->done)
		return 0;
	down_read(usip_k.namespace_sem);
	/* Any change of the namespace between batches flags the dump. */
	cb->seq = (u32)usip_ns_event(d->walk.ns) | 1;
	for (m = usip_mount_walk_resume(&d->walk); m; m = usip_mount_walk_next(&d->walk, m)) {
		/* A batch is a buffer's worth, but the file systems' callbacks vary. */
		cond_resched();
		err = usip_mount_build(d->text, m, &d->root);
		if (err == 1) {
			usip_mount_walk_remember(&d->walk, m);
			err = 0;
			continue;
		}
		if (err)
			break;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				  &usip_family, NLM_F_MULTI, USIP_CMD_MOUNT_GET);
		if (!hdr) {
			err = -EMSGSIZE;
			break;
		}
		genl_dump_check_consistent(cb, hdr);
		err = usip_mount_put(skb, m, d->text, &d->root, &d->ns_seq);
		if (err) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		usip_mount_walk_remember(&d->walk, m);
		/*
		 * The table changed under the dump and this message says so: the
		 * reader will dump again, so the rest is not worth sending.
		 */
		if (genlmsg_nlhdr(hdr)->nlmsg_flags & NLM_F_DUMP_INTR) {
			m = NULL;
			break;
		}
	}
	if (!m)
		d->done = true;
	up_read(usip_k.namespace_sem);

	if (err == -EMSGSIZE && skb->len)
		return skb->len;	/* the rest comes with the next batch */
	if (err) {
		if (err == -E2BIG)
			NL_SET_ERR_MSG(cb->extack,
				       "a mount's options are too long for one netlink message");
		return err;
	}
	return skb->len;
}

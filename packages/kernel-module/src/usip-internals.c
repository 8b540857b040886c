// SPDX-License-Identifier: GPL-2.0
/*
 * Finds the kernel internals the mount table and its events need (see
 * usip-internals.h), checks them, and decides which features work.
 *
 * Addresses come from /proc/kallsyms, read once at load time with the
 * loader's credentials: it is the kernel's interface for symbol addresses,
 * and unlike calling kallsyms_lookup_name() through a pointer it needs no
 * indirect call into unexported code (which IBT kernels may refuse).
 *
 * Layouts and prototypes come from the kernel's BTF, the type information it
 * carries for BPF (__start_BTF, also /sys/kernel/btf/vmlinux): each struct
 * member is looked up by name, recursing into anonymous unions, and its type
 * and size checked against what the accessors assume; each hooked function's
 * prototype is checked for its argument count and for the type (and name) of
 * every argument its hook reads. Nothing is guessed: whatever is missing or
 * not what it must be turns off the features that need it, and only those,
 * each with its reason.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/fanotify.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <uapi/linux/btf.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

#ifndef CONFIG_X86_64
/* The hooks read arguments and return addresses the x86-64 way. */
#error "usip supports x86-64 kernels only"
#endif

struct usip_kernel usip_k;
u32 usip_feature_reason[USIP_N_FEATURES];

static const struct {
	u32 flag;
	const char *name;
} usip_feature_names[USIP_N_FEATURES] = {
	[USIP_F_NETNS] = { USIP_FEATURE_NETNS, "netns" },
	[USIP_F_NATIVE_MOUNT_NOTIFY] = { USIP_FEATURE_NATIVE_MOUNT_NOTIFY,
					 "native-mount-notify" },
	[USIP_F_MOUNT_TABLE] = { USIP_FEATURE_MOUNT_TABLE, "mount-table" },
	[USIP_F_MOUNT_EVENTS] = { USIP_FEATURE_MOUNT_EVENTS, "mount-events" },
	[USIP_F_REMOUNT_EVENTS] = { USIP_FEATURE_REMOUNT_EVENTS, "remount-events" },
	[USIP_F_PROPAGATION_EVENTS] = { USIP_FEATURE_PROPAGATION_EVENTS,
					"propagation-events" },
	[USIP_F_SETATTR_EVENTS] = { USIP_FEATURE_SETATTR_EVENTS, "setattr-events" },
	[USIP_F_STATFS] = { USIP_FEATURE_STATFS, "statfs" },
	[USIP_F_SPACE_ERRORS] = { USIP_FEATURE_SPACE_ERRORS, "space-errors" },
	[USIP_F_QUOTA_WARNINGS] = { USIP_FEATURE_QUOTA_WARNINGS, "quota-warnings" },
	[USIP_F_LOW_SPACE] = { USIP_FEATURE_LOW_SPACE, "low-space" },
};

u32 usip_feature_flag(enum usip_feature_index f)
{
	return usip_feature_names[f].flag;
}

const char *usip_feature_name(enum usip_feature_index f)
{
	return usip_feature_names[f].name;
}

u32 usip_feature_mask(void)
{
	u32 mask = 0;
	int f;

	for (f = 0; f < USIP_N_FEATURES; f++)
		if (usip_feature_available(f))
			mask |= usip_feature_names[f].flag;
	return mask;
}

/* Every feature but these reads struct mount, and so needs the mount table. */
static bool usip_needs_mount_table(int f)
{
	return f != USIP_F_NETNS && f != USIP_F_NATIVE_MOUNT_NOTIFY && f != USIP_F_MOUNT_TABLE;
}

__printf(3, 4) void usip_feature_off(enum usip_feature_index f, u32 reason,
				     const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (usip_feature_reason[f])
		return;
	usip_feature_reason[f] = reason;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	pr_notice("%s is not available: %pV\n", usip_feature_names[f].name, &vaf);
	va_end(args);
}

/* The mount table's reason also goes to mount-get's extack. */
static __printf(2, 3) void usip_table_off(u32 reason, const char *fmt, ...)
{
	va_list args;

	if (usip_feature_reason[USIP_F_MOUNT_TABLE])
		return;
	va_start(args, fmt);
	vsnprintf(usip_k.reason, sizeof(usip_k.reason), fmt, args);
	va_end(args);
	usip_feature_off(USIP_F_MOUNT_TABLE, reason, "%s", usip_k.reason);
}

/* Every feature that reads the mount's internals: the table and the events. */
static __printf(2, 3) void usip_all_off(u32 reason, const char *fmt, ...)
{
	char why[128];
	va_list args;
	int f;

	va_start(args, fmt);
	vsnprintf(why, sizeof(why), fmt, args);
	va_end(args);
	usip_table_off(reason, "%s", why);
	for (f = 0; f < USIP_N_FEATURES; f++)
		if (usip_needs_mount_table(f))
			usip_feature_off(f, reason, "%s", why);
}

/* --- kallsyms ------------------------------------------------------------ */

struct usip_symbol {
	const char *name;
	const char *types;	/* acceptable kallsyms type letters */
	unsigned long addr;
	unsigned long end;	/* with want_end: the address of the next symbol */
	unsigned int count;	/* how many times the name appears */
	bool want_end;
	bool clones_ok;		/* a compiler's clone of it (name.isra.0) counts too */
};

struct usip_kallsyms_scan {
	struct usip_symbol *syms;
	unsigned int n;
	unsigned long lines;
	unsigned long zero_addresses;
	/* Functions found on an earlier line, waiting for the next address. */
	struct usip_symbol *awaiting_end[4];
};

/* Is @name @want, or with clones_ok a compiler's clone of it (not its .cold part)? */
static bool usip_symbol_is(const char *name, const struct usip_symbol *want)
{
	size_t len = strlen(want->name);

	if (strncmp(name, want->name, len))
		return false;
	if (!name[len])
		return true;
	return want->clones_ok && name[len] == '.' &&
	       (str_has_prefix(name + len, ".isra.") ||
		str_has_prefix(name + len, ".constprop.") ||
		str_has_prefix(name + len, ".part."));
}

/* One line "ADDRESS TYPE NAME" of the core kernel; module lines are ignored. */
static void usip_kallsyms_line(char *line, struct usip_kallsyms_scan *scan)
{
	char *addr_str, *type, *name;
	unsigned long addr;
	unsigned int i;

	addr_str = strsep(&line, " ");
	type = strsep(&line, " ");
	name = line;
	if (!addr_str || !type || !name || strlen(type) != 1 || strchr(name, '\t'))
		return;
	if (kstrtoul(addr_str, 16, &addr))
		return;
	scan->lines++;
	if (!addr)
		scan->zero_addresses++;
	for (i = 0; i < ARRAY_SIZE(scan->awaiting_end); i++) {
		struct usip_symbol *waiting = scan->awaiting_end[i];

		if (waiting && addr > waiting->addr) {
			waiting->end = addr;
			scan->awaiting_end[i] = NULL;
		}
	}
	for (i = 0; i < scan->n; i++) {
		struct usip_symbol *sym = &scan->syms[i];
		unsigned int slot;

		if (!usip_symbol_is(name, sym) || !strchr(sym->types, type[0]))
			continue;
		if (sym->count++)
			continue;	/* ambiguous: judged later */
		sym->addr = addr;
		if (!sym->want_end)
			continue;
		for (slot = 0; slot < ARRAY_SIZE(scan->awaiting_end); slot++) {
			if (!scan->awaiting_end[slot]) {
				scan->awaiting_end[slot] = sym;
				break;
			}
		}
	}
}

static int usip_read_kallsyms(struct usip_symbol *syms, unsigned int n)
{
	const size_t chunk = 64 * 1024;
	struct usip_kallsyms_scan scan = { .syms = syms, .n = n };
	size_t have = 0;
	struct file *file;
	loff_t pos = 0;
	char *buf;
	int err = 0;

	file = filp_open("/proc/kallsyms", O_RDONLY, 0);
	if (IS_ERR(file)) {
		usip_all_off(USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
			     "cannot open /proc/kallsyms (%ld): no /proc where usip is loaded?",
			     PTR_ERR(file));
		return PTR_ERR(file);
	}
	buf = kvmalloc(chunk + 1, GFP_KERNEL);
	if (!buf) {
		filp_close(file, NULL);
		return -ENOMEM;
	}
	for (;;) {
		struct kvec kvec = { .iov_base = buf + have, .iov_len = chunk - have };
		char *line = buf, *newline;
		struct iov_iter to;
		struct kiocb kiocb;
		ssize_t got;

		/*
		 * /proc/kallsyms has no read_iter for kernel_read(); it is a
		 * seq_file, so read it as one.
		 */
		init_sync_kiocb(&kiocb, file);
		kiocb.ki_pos = pos;
		iov_iter_kvec(&to, ITER_DEST, &kvec, 1, kvec.iov_len);
		got = seq_read_iter(&kiocb, &to);
		pos = kiocb.ki_pos;

		if (got < 0) {
			usip_all_off(USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
				     "cannot read /proc/kallsyms (%zd)", got);
			err = got;
			break;
		}
		have += got;
		buf[have] = '\0';
		while ((newline = strchr(line, '\n'))) {
			*newline = '\0';
			usip_kallsyms_line(line, &scan);
			line = newline + 1;
		}
		have -= line - buf;
		memmove(buf, line, have);
		if (got == 0 || have == chunk)
			break;	/* the end, or a line longer than a chunk */
		cond_resched();
	}
	kvfree(buf);
	filp_close(file, NULL);
	if (!err && scan.lines && scan.zero_addresses == scan.lines) {
		usip_all_off(USIP_UNAVAILABLE_REASON_KALLSYMS_HIDDEN,
			     "kallsyms hides addresses (kptr_restrict=2, no CAP_SYSLOG?)");
		err = -EPERM;
	}
	return err;
}

/* --- BTF ----------------------------------------------------------------- */

struct usip_btf {
	const struct btf_header *hdr;
	const char *strings;
	u32 strings_len;
	const struct btf_type **types;	/* by type id; [0] is void */
	u32 n_types;
};

static const char *usip_btf_name(const struct usip_btf *btf, u32 off)
{
	return off < btf->strings_len ? btf->strings + off : "";
}

/* Bytes a type's description takes after its struct btf_type, or -1. */
static long usip_btf_extra(const struct btf_type *t)
{
	u16 vlen = BTF_INFO_VLEN(t->info);

	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT:
		return sizeof(u32);
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return vlen * sizeof(struct btf_param);
	case BTF_KIND_VAR:
		return sizeof(struct btf_var);
	case BTF_KIND_DATASEC:
		return vlen * sizeof(struct btf_var_secinfo);
	case 17:	/* BTF_KIND_DECL_TAG */
		return sizeof(u32);
	case 19:	/* BTF_KIND_ENUM64: 12 bytes a value */
		return vlen * 3 * sizeof(u32);
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case 18:	/* BTF_KIND_TYPE_TAG */
		return 0;
	default:
		return -1;
	}
}

/* Walks the type section once to count (@types NULL) or to index the types. */
static int usip_btf_walk(struct usip_btf *btf, const char *p, const char *end,
			 const struct btf_type **types)
{
	u32 n = 0;

	while (p < end) {
		const struct btf_type *t = (const void *)p;
		long extra;

		if (p + sizeof(*t) > end)
			return -EINVAL;
		extra = usip_btf_extra(t);
		if (extra < 0 || p + sizeof(*t) + extra > end)
			return -EINVAL;
		n++;
		if (types)
			types[n] = t;
		p += sizeof(*t) + extra;
	}
	btf->n_types = n;
	return 0;
}

static int usip_btf_open(struct usip_btf *btf, const void *start, const void *end)
{
	const struct btf_header *hdr = start;
	size_t size = end - start;
	const char *types;

	if (size < sizeof(*hdr) || hdr->magic != BTF_MAGIC ||
	    hdr->hdr_len > size ||
	    (u64)hdr->hdr_len + hdr->type_off + hdr->type_len > size ||
	    (u64)hdr->hdr_len + hdr->str_off + hdr->str_len > size)
		return -EINVAL;
	btf->hdr = hdr;
	btf->strings = (const char *)hdr + hdr->hdr_len + hdr->str_off;
	btf->strings_len = hdr->str_len;
	types = (const char *)hdr + hdr->hdr_len + hdr->type_off;
	if (usip_btf_walk(btf, types, types + hdr->type_len, NULL))
		return -EINVAL;
	btf->types = kvcalloc(btf->n_types + 1, sizeof(*btf->types), GFP_KERNEL);
	if (!btf->types)
		return -ENOMEM;
	return usip_btf_walk(btf, types, types + hdr->type_len, btf->types);
}

/* The type behind typedefs and qualifiers, or NULL. */
static const struct btf_type *usip_btf_resolve(const struct usip_btf *btf, u32 id)
{
	int depth;

	for (depth = 0; depth < 32; depth++) {
		const struct btf_type *t;

		if (!id || id > btf->n_types)
			return NULL;
		t = btf->types[id];
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_CONST:
		case BTF_KIND_RESTRICT:
		case 18:	/* BTF_KIND_TYPE_TAG */
			id = t->type;
			continue;
		default:
			return t;
		}
	}
	return NULL;
}

/*
 * Finds member @name of struct/union @t, also inside anonymous members;
 * gives its byte offset and its type id. Bitfields do not qualify.
 */
static bool usip_btf_member(const struct usip_btf *btf, const struct btf_type *t,
			    const char *name, u32 *offset, u32 *type, int depth)
{
	const struct btf_member *m = (const void *)(t + 1);
	bool kflag = BTF_INFO_KFLAG(t->info);
	u16 i, vlen = BTF_INFO_VLEN(t->info);

	if (depth > 4)
		return false;
	for (i = 0; i < vlen; i++) {
		u32 bits = kflag ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
		const char *member = usip_btf_name(btf, m[i].name_off);

		if (kflag && BTF_MEMBER_BITFIELD_SIZE(m[i].offset))
			continue;
		if (!member[0]) {
			const struct btf_type *inner = usip_btf_resolve(btf, m[i].type);
			u32 inner_offset;

			if (inner && (BTF_INFO_KIND(inner->info) == BTF_KIND_STRUCT ||
				      BTF_INFO_KIND(inner->info) == BTF_KIND_UNION) &&
			    usip_btf_member(btf, inner, name, &inner_offset, type,
					    depth + 1)) {
				*offset = bits / 8 + inner_offset;
				return !(bits % 8);
			}
			continue;
		}
		if (strcmp(member, name) == 0) {
			*offset = bits / 8;
			*type = m[i].type;
			return !(bits % 8);
		}
	}
	return false;
}

static const struct btf_type *usip_btf_struct(const struct usip_btf *btf,
					      const char *name, const char *has)
{
	u32 id, offset, type;

	for (id = 1; id <= btf->n_types; id++) {
		const struct btf_type *t = btf->types[id];

		if (BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT &&
		    strcmp(usip_btf_name(btf, t->name_off), name) == 0 &&
		    usip_btf_member(btf, t, has, &offset, &type, 0))
			return t;
	}
	return NULL;
}

/* What a member must be: an integer or a pointer of a size, or a named struct. */
struct usip_member_spec {
	const char *name;
	int kind;		/* BTF_KIND_INT, BTF_KIND_PTR or BTF_KIND_STRUCT */
	const char *struct_name;
	u32 size;
	size_t *offset;
	/*
	 * The feature that reads it: the mount table (and so every feature) or
	 * one event feature; USIP_N_FEATURES: optional, *found says if it is there.
	 */
	enum usip_feature_index needed_by;
	bool *found;
};

static bool usip_btf_member_ok(const struct usip_btf *btf, const struct btf_type *t,
			       const struct usip_member_spec *s)
{
	const struct btf_type *mt;
	u32 offset, type;

	if (!usip_btf_member(btf, t, s->name, &offset, &type, 0))
		return false;
	mt = usip_btf_resolve(btf, type);
	if (!mt || BTF_INFO_KIND(mt->info) != s->kind)
		return false;
	if (s->kind == BTF_KIND_STRUCT &&
	    strcmp(usip_btf_name(btf, mt->name_off), s->struct_name))
		return false;
	if (s->kind == BTF_KIND_INT && mt->size != s->size)
		return false;
	*s->offset = offset;
	return true;
}

static void usip_btf_members(const struct usip_btf *btf, const char *struct_name,
			     const struct btf_type *t,
			     const struct usip_member_spec *specs, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const struct usip_member_spec *s = &specs[i];
		bool ok = usip_btf_member_ok(btf, t, s);

		if (s->found)
			*s->found = ok;
		if (ok || s->needed_by == USIP_N_FEATURES)
			continue;
		if (s->needed_by == USIP_F_MOUNT_TABLE)
			usip_all_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
				     "struct %s has no member %s of the expected type",
				     struct_name, s->name);
		else
			usip_feature_off(s->needed_by, USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
					 "struct %s has no member %s of the expected type",
					 struct_name, s->name);
	}
}

/* The value of enumerator @name of any enum in the BTF; false if there is none. */
static bool usip_btf_enumerator(const struct usip_btf *btf, const char *name, s64 *value)
{
	u32 id;

	for (id = 1; id <= btf->n_types; id++) {
		const struct btf_type *t = btf->types[id];
		const struct btf_enum *e = (const void *)(t + 1);
		u16 i, vlen = BTF_INFO_VLEN(t->info);

		if (BTF_INFO_KIND(t->info) != BTF_KIND_ENUM)
			continue;
		for (i = 0; i < vlen; i++) {
			if (strcmp(usip_btf_name(btf, e[i].name_off), name))
				continue;
			*value = e[i].val;
			return true;
		}
	}
	return false;
}

/*
 * Where a mount's shared and unbindable flags are: in mnt_t_flags, by the
 * BTF's T_SHARED and T_UNBINDABLE (7.x), or else MNT_SHARED and MNT_UNBINDABLE
 * of the vfsmount's mnt_flags, as the headers say (6.1, 6.12).
 */
static bool usip_check_prop_flags(const struct usip_btf *btf, bool has_t_flags)
{
	s64 shared, unbindable;

	if (has_t_flags && usip_btf_enumerator(btf, "T_SHARED", &shared) &&
	    usip_btf_enumerator(btf, "T_UNBINDABLE", &unbindable) &&
	    shared > 0 && shared <= U32_MAX && unbindable > 0 && unbindable <= U32_MAX) {
		usip_k.shared_flag = shared;
		usip_k.unbindable_flag = unbindable;
		return true;
	}
#ifdef MNT_SHARED
	usip_k.mnt_prop_flags = usip_k.mnt_vfs + offsetof(struct vfsmount, mnt_flags);
	usip_k.shared_flag = MNT_SHARED;
	usip_k.unbindable_flag = MNT_UNBINDABLE;
	return true;
#else
	return false;
#endif
}

/* How a superblock lists its mounts: a list through mnt_instance, or a chain. */
static void usip_check_sb_mounts(const struct usip_btf *btf, bool has_instance,
				 bool has_next_for_sb)
{
	bool sb_list = false, sb_chain = false;
	const struct usip_member_spec sb_members[] = {
		{ "s_mounts", BTF_KIND_STRUCT, "list_head", 0, &usip_k.sb_mounts,
		  USIP_N_FEATURES, &sb_list },
		{ "s_mounts", BTF_KIND_PTR, NULL, 0, &usip_k.sb_mounts,
		  USIP_N_FEATURES, &sb_chain },
	};
	const struct btf_type *sb = usip_btf_struct(btf, "super_block", "s_mounts");

	if (sb)
		usip_btf_members(btf, "super_block", sb, sb_members, ARRAY_SIZE(sb_members));
	if (sb_chain && has_next_for_sb)
		usip_k.sb_mounts_chain = true;
	else if (!sb_list || !has_instance)
		usip_feature_off(USIP_F_REMOUNT_EVENTS, USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
				 "a superblock's mounts are linked in an unknown way");
}

static void usip_check_layouts(const struct usip_btf *btf)
{
	bool ns_has_list = false, ns_has_lock = false, has_node = false;
	bool has_list = false, has_seq = false, has_t_flags = false;
	bool has_instance = false, has_next_for_sb = false;
	bool slave_list = false, slave_hlist = false, slave_node = false, slave_hnode = false;
	size_t ns_common_offset = 1;
	const struct usip_member_spec mount_members[] = {
		{ "mnt_parent", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_parent, USIP_F_MOUNT_TABLE },
		{ "mnt_mountpoint", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_mountpoint,
		  USIP_F_MOUNT_TABLE },
		{ "mnt", BTF_KIND_STRUCT, "vfsmount", 0, &usip_k.mnt_vfs, USIP_F_MOUNT_TABLE },
		{ "mnt_mounts", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_mounts,
		  USIP_F_MOUNT_TABLE },
		{ "mnt_child", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_child,
		  USIP_F_MOUNT_TABLE },
		{ "mnt_devname", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_devname, USIP_F_MOUNT_TABLE },
		{ "mnt_share", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_share,
		  USIP_F_MOUNT_TABLE },
		{ "mnt_master", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_master, USIP_F_MOUNT_TABLE },
		{ "mnt_ns", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_ns, USIP_F_MOUNT_TABLE },
		{ "mnt_id", BTF_KIND_INT, NULL, 4, &usip_k.mnt_id, USIP_F_MOUNT_TABLE },
		{ "mnt_group_id", BTF_KIND_INT, NULL, 4, &usip_k.mnt_group_id,
		  USIP_F_MOUNT_TABLE },
		/* The namespace's list (6.1), and the list of mounts a umount takes. */
		{ "mnt_list", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_list,
		  USIP_N_FEATURES, &has_list },
		/* A superblock's mounts, walked for its remount events: a list or a chain. */
		{ "mnt_instance", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_instance,
		  USIP_N_FEATURES, &has_instance },
		{ "mnt_next_for_sb", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_next_for_sb,
		  USIP_N_FEATURES, &has_next_for_sb },
		/* A mount's slaves, told of a new master: a list or an hlist. */
		{ "mnt_slave_list", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_slave_list,
		  USIP_N_FEATURES, &slave_list },
		{ "mnt_slave_list", BTF_KIND_STRUCT, "hlist_head", 0, &usip_k.mnt_slave_list,
		  USIP_N_FEATURES, &slave_hlist },
		{ "mnt_slave", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_slave,
		  USIP_N_FEATURES, &slave_node },
		{ "mnt_slave", BTF_KIND_STRUCT, "hlist_node", 0, &usip_k.mnt_slave,
		  USIP_N_FEATURES, &slave_hnode },
		/* Shared and unbindable, where they are not mnt_flags (7.x). */
		{ "mnt_t_flags", BTF_KIND_INT, NULL, 4, &usip_k.mnt_prop_flags,
		  USIP_N_FEATURES, &has_t_flags },
		{ "mnt_id_unique", BTF_KIND_INT, NULL, 8, &usip_k.mnt_id_unique,
		  USIP_N_FEATURES, &usip_k.has_unique_id },
		{ "mnt_node", BTF_KIND_STRUCT, "rb_node", 0, &usip_k.mnt_node,
		  USIP_N_FEATURES, &has_node },
	};
	const struct usip_member_spec ns_members[] = {
		{ "ns", BTF_KIND_STRUCT, "ns_common", 0, &ns_common_offset, USIP_F_MOUNT_TABLE },
		{ "root", BTF_KIND_PTR, NULL, 0, &usip_k.ns_root, USIP_F_MOUNT_TABLE },
		{ "event", BTF_KIND_INT, NULL, 8, &usip_k.ns_event, USIP_F_MOUNT_TABLE },
		/* Tells anonymous namespaces (0), which get no events; or is_anon (7.x). */
		{ "seq", BTF_KIND_INT, NULL, 8, &usip_k.ns_seq, USIP_N_FEATURES, &has_seq },
		{ "is_anon", BTF_KIND_INT, NULL, 1, &usip_k.ns_is_anon, USIP_N_FEATURES,
		  &usip_k.ns_has_is_anon },
		{ "mounts", BTF_KIND_STRUCT, "rb_root", 0, &usip_k.ns_mounts,
		  USIP_N_FEATURES, &usip_k.ns_rbtree },
		{ "list", BTF_KIND_STRUCT, "list_head", 0, &usip_k.ns_list,
		  USIP_N_FEATURES, &ns_has_list },
		{ "ns_lock", BTF_KIND_STRUCT, "spinlock", 0, &usip_k.ns_lock,
		  USIP_N_FEATURES, &ns_has_lock },
	};
	const struct btf_type *mount, *ns;
	int f;

	mount = usip_btf_struct(btf, "mount", "mnt_parent");
	ns = usip_btf_struct(btf, "mnt_namespace", "ns");
	if (!mount || !ns) {
		usip_all_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
			     "the kernel's BTF lacks struct %s",
			     mount ? "mnt_namespace" : "mount");
		return;
	}
	usip_k.mount_size = mount->size;
	usip_btf_members(btf, "mount", mount, mount_members, ARRAY_SIZE(mount_members));
	usip_btf_members(btf, "mnt_namespace", ns, ns_members, ARRAY_SIZE(ns_members));
	if (ns_common_offset != 0)
		usip_all_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
			     "struct mnt_namespace does not start with its ns_common");
	else if (usip_k.ns_rbtree && !(usip_k.has_unique_id && has_node))
		usip_all_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
			     "the mount tree is ordered by a unique id the module cannot find");
	else if (!usip_k.ns_rbtree && !(ns_has_list && ns_has_lock))
		usip_all_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
			     "struct mnt_namespace keeps its mounts in an unknown way");
	if (!has_list && !usip_k.ns_rbtree)
		usip_table_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
			       "struct mount has no mnt_list for its namespace's list");
	if (!has_list)
		usip_feature_off(USIP_F_MOUNT_EVENTS, USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
				 "struct mount has no mnt_list for the mounts a umount takes");
	if (!usip_check_prop_flags(btf, has_t_flags))
		usip_all_off(USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
			     "the module cannot tell where a mount's shared flag is");
	if (slave_hlist && slave_hnode)
		usip_k.slaves_hlist = true;
	else if (!slave_list || !slave_node)
		usip_feature_off(USIP_F_PROPAGATION_EVENTS, USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
				 "struct mount's slaves are linked in an unknown way");
	usip_check_sb_mounts(btf, has_instance, has_next_for_sb);
	/* Every event of a mount tells anonymous namespaces apart, by seq or is_anon. */
	for (f = 0; f < USIP_N_FEATURES && !has_seq && !usip_k.ns_has_is_anon; f++)
		if ((f >= USIP_F_MOUNT_EVENTS && f <= USIP_F_SETATTR_EVENTS) ||
		    f == USIP_F_SPACE_ERRORS || f == USIP_F_QUOTA_WARNINGS)
			usip_feature_off(f, USIP_UNAVAILABLE_REASON_LAYOUT_MISMATCH,
					 "struct mnt_namespace has neither seq nor is_anon");
}

/* --- Hooked functions' prototypes ---------------------------------------- */

/*
 * Records why @hook does not fit this kernel, and returns @reason. It is
 * logged once the roles are settled: a hook of an alternative that another
 * one replaces is not worth a line in the kernel log.
 */
static __printf(3, 4) u32 usip_hook_fail(struct usip_hook *hook, u32 reason,
					 const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(hook->why, sizeof(hook->why), fmt, args);
	va_end(args);
	return reason;
}

/* Is @name one of the '|'-separated @names? */
static bool usip_name_in(const char *name, const char *names)
{
	size_t len = strlen(name);

	while (names && *names) {
		const char *bar = strchrnul(names, '|');

		if (bar - names == len && !strncmp(names, name, len))
			return true;
		names = *bar ? bar + 1 : bar;
	}
	return false;
}

/* Does enum @t have @enumerator, of @value? */
static bool usip_btf_enum_has(const struct usip_btf *btf, const struct btf_type *t,
			      const char *enumerator, s64 value)
{
	u16 i, vlen = BTF_INFO_VLEN(t->info);

	if (BTF_INFO_KIND(t->info) == BTF_KIND_ENUM) {
		const struct btf_enum *e = (const void *)(t + 1);

		for (i = 0; i < vlen; i++)
			if (!strcmp(usip_btf_name(btf, e[i].name_off), enumerator))
				return e[i].val == value;
		return false;
	}
	/* BTF_KIND_ENUM64: name_off, val_lo32, val_hi32 */
	for (i = 0; i < vlen; i++) {
		const u32 *e = (const u32 *)(t + 1) + 3 * i;

		if (!strcmp(usip_btf_name(btf, e[0]), enumerator))
			return (s64)((u64)e[2] << 32 | e[1]) == value;
	}
	return false;
}

static bool usip_btf_arg_ok(const struct usip_btf *btf, const struct btf_param *param,
			    const struct usip_hook_arg *want)
{
	const struct btf_type *t = usip_btf_resolve(btf, param->type);
	int kind;

	if (want->kind == USIP_ARG_UNREAD)
		return true;
	if (want->name && !usip_name_in(usip_btf_name(btf, param->name_off), want->name))
		return false;
	if (!t)
		return false;
	kind = BTF_INFO_KIND(t->info);
	if (want->kind == USIP_ARG_STRUCT)
		return kind == BTF_KIND_STRUCT && t->size <= 8 &&
		       !strcmp(usip_btf_name(btf, t->name_off), want->type);
	if (want->kind == USIP_ARG_STRUCT_PTR) {
		if (kind != BTF_KIND_PTR)
			return false;
		t = usip_btf_resolve(btf, t->type);
		return t && BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT &&
		       !strcmp(usip_btf_name(btf, t->name_off), want->type);
	}
	/* USIP_ARG_INTEGER: read from a register, any width up to 64 bits. */
	if (kind == BTF_KIND_INT)
		return t->size <= 8;
	if (kind == BTF_KIND_ENUM || kind == 19 /* BTF_KIND_ENUM64 */)
		return !want->enumerator ||
		       usip_btf_enum_has(btf, t, want->enumerator, want->value);
	return false;
}

/* Checks @hook's prototype (FUNC @func); the reason it fails, or 0. */
static u32 usip_check_prototype(const struct usip_btf *btf, struct usip_hook *hook,
				const struct btf_type *func)
{
	const struct btf_type *proto = usip_btf_resolve(btf, func->type);
	const struct btf_param *params;
	u16 i, vlen;

	if (!proto || BTF_INFO_KIND(proto->info) != BTF_KIND_FUNC_PROTO)
		return usip_hook_fail(hook, USIP_UNAVAILABLE_REASON_PROTOTYPE_MISMATCH,
				      "%s: its BTF type is not a function prototype", hook->name);
	params = (const void *)(proto + 1);
	vlen = BTF_INFO_VLEN(proto->info);
	if (vlen < hook->min_args || vlen > hook->max_args ||
	    (vlen && !params[vlen - 1].type))
		return usip_hook_fail(hook, USIP_UNAVAILABLE_REASON_PROTOTYPE_MISMATCH,
				      "%s takes %u arguments, the hook reads a prototype of %u to %u",
				      hook->name, vlen, hook->min_args, hook->max_args);
	for (i = 0; i < vlen && i < USIP_HOOK_MAX_ARGS; i++) {
		if (usip_btf_arg_ok(btf, &params[i], &hook->args[i]))
			continue;
		return usip_hook_fail(hook, USIP_UNAVAILABLE_REASON_PROTOTYPE_MISMATCH,
				      "%s: argument %u (%s) is not what the hook reads", hook->name,
				      i, usip_btf_name(btf, params[i].name_off));
	}
	return 0;
}

/* Checks a tracepoint hook against its BTF typedef: a pointer to its probe's prototype. */
static void usip_check_tracepoint(const struct usip_btf *btf, struct usip_hook *tp)
{
	char name[64];
	u32 id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp->symbol);
	tp->name = tp->symbol;
	for (id = 1; id <= btf->n_types; id++) {
		const struct btf_type *t = btf->types[id];

		if (BTF_INFO_KIND(t->info) != BTF_KIND_TYPEDEF ||
		    strcmp(usip_btf_name(btf, t->name_off), name))
			continue;
		t = t->type <= btf->n_types ? btf->types[t->type] : NULL;
		if (!t || BTF_INFO_KIND(t->info) != BTF_KIND_PTR) {
			tp->reason = usip_hook_fail(tp, USIP_UNAVAILABLE_REASON_PROTOTYPE_MISMATCH,
						    "%s is not a pointer to a function in the kernel's BTF",
						    name);
			return;
		}
		tp->reason = usip_check_prototype(btf, tp, t);
		return;
	}
	tp->reason = usip_hook_fail(tp, USIP_UNAVAILABLE_REASON_PROTOTYPE_MISMATCH,
				    "the tracepoint %s has no prototype (%s) in the kernel's BTF",
				    tp->symbol, name);
}

static void usip_check_prototypes(const struct usip_btf *btf)
{
	const struct btf_type *found[32] = {};
	unsigned int count[32] = {};
	unsigned int h;
	u32 id;

	BUILD_BUG_ON(ARRAY_SIZE(found) < 32);
	if (WARN_ON(usip_n_hooks > ARRAY_SIZE(found)))
		return;
	for (id = 1; id <= btf->n_types; id++) {
		const struct btf_type *t = btf->types[id];
		const char *name;

		if (BTF_INFO_KIND(t->info) != BTF_KIND_FUNC)
			continue;
		name = usip_btf_name(btf, t->name_off);
		for (h = 0; h < usip_n_hooks; h++) {
			if (!usip_hooks[h].name || strcmp(name, usip_hooks[h].name))
				continue;
			found[h] = t;
			count[h]++;
		}
	}
	for (h = 0; h < usip_n_hooks; h++) {
		const u32 mismatch = USIP_UNAVAILABLE_REASON_PROTOTYPE_MISMATCH;
		struct usip_hook *hook = &usip_hooks[h];

		if (hook->reason)
			continue;
		if (!found[h])
			hook->reason = usip_hook_fail(hook, mismatch,
						      "%s has no prototype in the kernel's BTF",
						      hook->name);
		else if (count[h] > 1)
			hook->reason = usip_hook_fail(hook, mismatch,
						      "%s has %u prototypes in the kernel's BTF",
						      hook->name, count[h]);
		else
			hook->reason = usip_check_prototype(btf, hook, found[h]);
	}
}

static void usip_read_btf(unsigned long start, unsigned long end)
{
	struct usip_btf btf = {};
	int err;

	if (!start || !end || end <= start) {
		usip_all_off(USIP_UNAVAILABLE_REASON_NO_BTF,
			     "the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)");
		return;
	}
	err = usip_btf_open(&btf, (const void *)start, (const void *)end);
	if (err) {
		usip_all_off(USIP_UNAVAILABLE_REASON_NO_BTF,
			     err == -ENOMEM ? "no memory to index the kernel's BTF" :
					      "the kernel's BTF has a form this module cannot read");
		goto out;
	}
	usip_check_layouts(&btf);
	usip_check_prototypes(&btf);
	usip_check_tracepoint(&btf, &usip_sys_exit_tracepoint);
out:
	kvfree(btf.types);
}

/* --- Putting it together -------------------------------------------------- */

enum {
	USIP_SYM_NAMESPACE_SEM,
	USIP_SYM_MOUNT_LOCK,
	USIP_SYM_START_BTF,
	USIP_SYM_STOP_BTF,
	USIP_N_FIXED_SYMS,
};

/* The hooks' symbols and callers follow the fixed ones in the scan's array. */
struct usip_hook_syms {
	unsigned int symbol, old_symbol, callers[USIP_HOOK_MAX_CALLERS];
};

static unsigned int usip_add_symbol(struct usip_symbol *syms, unsigned int *n,
				    const char *name, bool caller)
{
	syms[*n] = (struct usip_symbol){ .name = name, .types = "tT", .want_end = caller,
					 .clones_ok = caller };
	return (*n)++;
}

/* Judges one hook from the scan: found, unambiguous, its callers' ranges. */
static void usip_judge_hook_symbols(struct usip_hook *hook, struct usip_symbol *syms,
				    const struct usip_hook_syms *at)
{
	struct usip_symbol *sym = &syms[at->symbol];
	int c;

	if (!sym->count && hook->old_symbol)
		sym = &syms[at->old_symbol];
	hook->name = sym->name;
	if (!sym->count) {
		hook->absent = true;
		hook->reason = usip_hook_fail(hook, USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
					      "the kernel has no %s to hook", hook->symbol);
		return;
	}
	if (sym->count > 1) {
		hook->reason = usip_hook_fail(hook, USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
					      "the kernel has %u functions named %s: cannot tell which to hook",
					      sym->count, sym->name);
		return;
	}
	for (c = 0; c < USIP_HOOK_MAX_CALLERS && hook->callers[c]; c++) {
		struct usip_symbol *caller = &syms[at->callers[c]];

		if (caller->count != 1 || !caller->end) {
			hook->absent = !caller->count;
			hook->reason = usip_hook_fail(hook, USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
						      "%s: %s its caller %s", hook->name,
						      caller->count ? "cannot tell apart" :
								      "the kernel has no",
						      hook->callers[c]);
			return;
		}
		hook->caller_ranges[c].start = caller->addr;
		hook->caller_ranges[c].end = caller->end;
	}
}

/* Logs why @hook does not fit, if it said. */
static void usip_hook_log(const struct usip_hook *hook)
{
	if (hook->why[0])
		pr_notice("%s\n", hook->why);
}

static bool usip_same_role(const struct usip_hook *a, const struct usip_hook *b)
{
	return a->role && a->feature == b->feature && a->role == b->role;
}

/* Do all hooks of alternative @alt of @role's role check out? */
static bool usip_alt_fits(unsigned int role, u8 alt)
{
	unsigned int h;

	for (h = 0; h < usip_n_hooks; h++)
		if (usip_same_role(&usip_hooks[role], &usip_hooks[h]) &&
		    usip_hooks[h].alt == alt && usip_hooks[h].reason)
			return false;
	return true;
}

/*
 * Settles which hooks are armed: a hook needed on its own must fit, a role
 * takes its first alternative that fits (the others are left unused), and a
 * hook the kernel does not have, where that is fine, is left unused.
 * Features lose what does not fit, with its reasons in the kernel log.
 */
static void usip_settle_hooks(void)
{
	unsigned int h, k;

	for (h = 0; h < usip_n_hooks; h++) {
		struct usip_hook *hook = &usip_hooks[h];

		if (hook->absent_ok && hook->absent) {
			pr_debug("%s (not hooked)\n", hook->why);
			hook->unused = true;
			hook->reason = 0;
		} else if (!hook->role && hook->reason) {
			usip_hook_log(hook);
			usip_feature_off(hook->feature, hook->reason,
					 "its hook on %s cannot be used (see above)",
					 hook->name ?: hook->symbol);
		}
	}
	for (h = 0; h < usip_n_hooks; h++) {
		struct usip_hook *first = &usip_hooks[h];
		int chosen = -1;

		/* Each role once, from its first hook. */
		for (k = 0; k < h && !usip_same_role(first, &usip_hooks[k]); k++)
			;
		if (!first->role || k < h)
			continue;
		for (k = h; k < usip_n_hooks && chosen < 0; k++)
			if (usip_same_role(first, &usip_hooks[k]) &&
			    usip_alt_fits(h, usip_hooks[k].alt))
				chosen = usip_hooks[k].alt;
		for (k = h; k < usip_n_hooks; k++) {
			struct usip_hook *hook = &usip_hooks[k];

			if (!usip_same_role(first, hook))
				continue;
			if (chosen >= 0) {
				hook->unused = hook->alt != chosen;
				continue;
			}
			usip_hook_log(hook);
			if (hook->reason)
				usip_feature_off(hook->feature, hook->reason,
						 "no variant of its hooks fits this kernel (see above)");
		}
	}
}

/*
 * usip.fail_check: features whose checks fail at load, as if the kernel did
 * not match, for tests of how clients cope. Names a check that did not pass
 * anyway keep its own reason.
 */
static char *usip_fail_check = "";
module_param_named(fail_check, usip_fail_check, charp, 0444);
MODULE_PARM_DESC(fail_check,
		 "comma-separated features (as ping names them, e.g. mount-events) whose load-time checks fail, for tests; load time only");

static int usip_fail_checks(void)
{
	const char *p = usip_fail_check;

	while (p && *p) {
		size_t len = strchrnul(p, ',') - p;
		int f;

		for (f = 0; f < USIP_N_FEATURES; f++)
			if (strlen(usip_feature_names[f].name) == len &&
			    !strncmp(usip_feature_names[f].name, p, len))
				break;
		if (len && f == USIP_N_FEATURES) {
			pr_err("fail_check: no feature is called %.*s\n", (int)len, p);
			return -EINVAL;
		}
		if (len)
			usip_feature_off(f, USIP_UNAVAILABLE_REASON_FORCED_OFF,
					 "its checks were made to fail (usip.fail_check)");
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int usip_internals_init(void)
{
	unsigned int n = 0, h, c, max = USIP_N_FIXED_SYMS + usip_n_hooks * 4;
	struct usip_hook_syms *at;
	struct usip_symbol *syms;
	int f, err;

	memset(usip_feature_reason, 0, sizeof(usip_feature_reason));
	memset(&usip_k, 0, sizeof(usip_k));
	/* Until its BTF says otherwise. */
	usip_sys_exit_tracepoint.reason = USIP_UNAVAILABLE_REASON_NO_BTF;
	usip_sys_exit_tracepoint.why[0] = '\0';
#ifndef FAN_MNT_ATTACH
	usip_feature_off(USIP_F_NATIVE_MOUNT_NOTIFY, USIP_UNAVAILABLE_REASON_NOT_BUILT,
			 "the kernel headers have no fanotify mount events (Linux 6.15+)");
#endif
	syms = kcalloc(max, sizeof(*syms), GFP_KERNEL);
	at = kcalloc(usip_n_hooks, sizeof(*at), GFP_KERNEL);
	if (!syms || !at) {
		err = -ENOMEM;
		goto out;
	}
	/* Variables; 7.x lists those of .data..cacheline_aligned (mount_lock) as t/T. */
	syms[n++] = (struct usip_symbol){ "namespace_sem", "dDbBtT" };
	syms[n++] = (struct usip_symbol){ "mount_lock", "dDbBtT" };
	syms[n++] = (struct usip_symbol){ "__start_BTF", "rRdD" };
	syms[n++] = (struct usip_symbol){ "__stop_BTF", "rRdD" };
	for (h = 0; h < usip_n_hooks; h++) {
		struct usip_hook *hook = &usip_hooks[h];

		hook->reason = 0;
		hook->name = NULL;
		hook->why[0] = '\0';
		hook->absent = false;
		hook->unused = false;
		memset(hook->caller_ranges, 0, sizeof(hook->caller_ranges));
		at[h].symbol = usip_add_symbol(syms, &n, hook->symbol, false);
		if (hook->old_symbol)
			at[h].old_symbol = usip_add_symbol(syms, &n, hook->old_symbol, false);
		for (c = 0; c < USIP_HOOK_MAX_CALLERS && hook->callers[c]; c++)
			at[h].callers[c] = usip_add_symbol(syms, &n, hook->callers[c], true);
	}

	err = usip_read_kallsyms(syms, n);
	if (err == -ENOMEM)
		goto out;
	if (!err) {
		if (syms[USIP_SYM_NAMESPACE_SEM].count != 1 || syms[USIP_SYM_MOUNT_LOCK].count != 1)
			usip_all_off(USIP_UNAVAILABLE_REASON_MISSING_SYMBOL,
				     "kallsyms lacks namespace_sem or mount_lock");
		usip_k.namespace_sem = (struct rw_semaphore *)syms[USIP_SYM_NAMESPACE_SEM].addr;
		usip_k.mount_lock = (seqlock_t *)syms[USIP_SYM_MOUNT_LOCK].addr;
		for (h = 0; h < usip_n_hooks; h++)
			usip_judge_hook_symbols(&usip_hooks[h], syms, &at[h]);
		usip_read_btf(syms[USIP_SYM_START_BTF].addr, syms[USIP_SYM_STOP_BTF].addr);
	}
	err = 0;

	/* An event feature works if the table does and its hooks checked out. */
	usip_settle_hooks();
	if (usip_sys_exit_tracepoint.reason) {
		usip_hook_log(&usip_sys_exit_tracepoint);
		usip_feature_off(USIP_F_SPACE_ERRORS, usip_sys_exit_tracepoint.reason,
				 "the sys_exit tracepoint cannot be used (see above)");
	}
	err = usip_fail_checks();
	if (err)
		goto out;
	for (f = 0; f < USIP_N_FEATURES; f++)
		if (usip_needs_mount_table(f) && !usip_feature_available(USIP_F_MOUNT_TABLE))
			usip_feature_off(f, USIP_UNAVAILABLE_REASON_NEEDS_MOUNT_TABLE,
					 "the mount table is not available");
out:
	kfree(at);
	kfree(syms);
	return err;
}

struct mount *usip_next_mnt(struct mount *p, struct mount *root)
{
	struct list_head *next = usip_mnt_mounts(p)->next;

	if (next == usip_mnt_mounts(p)) {
		for (;;) {
			if (p == root)
				return NULL;
			next = usip_mnt_child(p)->next;
			if (next != usip_mnt_mounts(usip_mnt_parent(p)))
				break;
			p = usip_mnt_parent(p);
		}
	}
	return usip_mnt_of_child(next);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Finds the kernel internals the mount table needs (see usip-internals.h).
 *
 * Addresses come from /proc/kallsyms, read once at load time with the
 * loader's credentials: it is the kernel's interface for symbol addresses,
 * and unlike calling kallsyms_lookup_name() through a pointer it needs no
 * indirect call into unexported code (which IBT kernels may refuse).
 *
 * Layouts come from the kernel's BTF, the type information it carries for
 * BPF (__start_BTF, also /sys/kernel/btf/vmlinux): each member is looked up
 * by name, recursing into anonymous unions, and its type and size checked
 * against what the accessors assume. Nothing is guessed: if a symbol or a
 * member is missing or not what it must be, mount-get and mount events stay
 * off, and usip_k.reason says why.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <uapi/linux/btf.h>

#include "usip.h"
#include "usip-internals.h"

struct usip_kernel usip_k;

static __printf(1, 2) void usip_unavailable(const char *fmt, ...)
{
	va_list args;

	if (usip_k.reason[0])
		return;	/* the first reason is the one to tell */
	va_start(args, fmt);
	vsnprintf(usip_k.reason, sizeof(usip_k.reason), fmt, args);
	va_end(args);
}

/* --- kallsyms ------------------------------------------------------------ */

struct usip_symbol {
	const char *name;
	const char *types;	/* acceptable kallsyms type letters */
	unsigned long addr;
	unsigned long *end;	/* if set: gets the address of the next symbol */
};

enum {
	USIP_SYM_NAMESPACE_SEM,
	USIP_SYM_MOUNT_LOCK,
	USIP_SYM_START_BTF,
	USIP_SYM_STOP_BTF,
	USIP_SYM_PIVOT_ROOT,
	USIP_SYM_FSCONFIG,
	USIP_SYM_PATH_UMOUNT,
	USIP_SYM_MOUNT_SETATTR,
	USIP_SYM_USER_PATH_AT,
	USIP_SYM_USER_PATH_AT_EMPTY,
	/* The functions usip-mount-events.c hooks. */
	USIP_SYM_HOOKS,
	USIP_N_SYMS = USIP_SYM_HOOKS + 9,
};

static struct usip_symbol usip_syms[USIP_N_SYMS] = {
	[USIP_SYM_NAMESPACE_SEM] = { "namespace_sem", "dDbB" },
	[USIP_SYM_MOUNT_LOCK] = { "mount_lock", "dDbB" },
	[USIP_SYM_START_BTF] = { "__start_BTF", "rRdD" },
	[USIP_SYM_STOP_BTF] = { "__stop_BTF", "rRdD" },
	[USIP_SYM_PIVOT_ROOT] = { "__do_sys_pivot_root", "tT",
				  .end = &usip_k.pivot_root.end },
	[USIP_SYM_FSCONFIG] = { "__do_sys_fsconfig", "tT",
				.end = &usip_k.fsconfig.end },
	[USIP_SYM_PATH_UMOUNT] = { "path_umount", "tT",
				   .end = &usip_k.path_umount.end },
	[USIP_SYM_MOUNT_SETATTR] = { "__do_sys_mount_setattr", "tT",
				     .end = &usip_k.mount_setattr.end },
	[USIP_SYM_USER_PATH_AT] = { "user_path_at", "tT" },
	[USIP_SYM_USER_PATH_AT_EMPTY] = { "user_path_at_empty", "tT" },
	[USIP_SYM_HOOKS + 0] = { "commit_tree", "tT" },
	[USIP_SYM_HOOKS + 1] = { "umount_tree", "tT" },
	[USIP_SYM_HOOKS + 2] = { "change_mnt_propagation", "tT" },
	[USIP_SYM_HOOKS + 3] = { "attach_recursive_mnt", "tT" },
	[USIP_SYM_HOOKS + 4] = { "mnt_change_mountpoint", "tT" },
	[USIP_SYM_HOOKS + 5] = { "attach_mnt", "tT" },
	[USIP_SYM_HOOKS + 6] = { "propagate_umount", "tT" },
	[USIP_SYM_HOOKS + 7] = { "path_mount", "tT" },
	[USIP_SYM_HOOKS + 8] = { "reconfigure_super", "tT" },
};

struct usip_kallsyms_scan {
	unsigned long lines;
	unsigned long zero_addresses;
	/* A function found on an earlier line, waiting for the next address. */
	struct usip_symbol *awaiting_end;
};

/* One line "ADDRESS TYPE NAME" of the core kernel; module lines are ignored. */
static void usip_kallsyms_line(char *line, struct usip_kallsyms_scan *scan)
{
	char *addr_str, *type, *name;
	unsigned long addr;
	int i;

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
	if (scan->awaiting_end && addr > scan->awaiting_end->addr) {
		*scan->awaiting_end->end = addr;
		scan->awaiting_end = NULL;
	}
	for (i = 0; i < USIP_N_SYMS; i++) {
		struct usip_symbol *sym = &usip_syms[i];

		if (sym->addr || strcmp(name, sym->name) || !strchr(sym->types, type[0]))
			continue;
		sym->addr = addr;
		if (sym->end)
			scan->awaiting_end = sym;
	}
}

static int usip_read_kallsyms(void)
{
	const size_t chunk = 64 * 1024;
	struct usip_kallsyms_scan scan = {};
	size_t have = 0;
	struct file *file;
	loff_t pos = 0;
	char *buf;
	int err = 0;

	file = filp_open("/proc/kallsyms", O_RDONLY, 0);
	if (IS_ERR(file)) {
		usip_unavailable("cannot open /proc/kallsyms (%ld): no /proc where usip is loaded?",
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
		ssize_t n;

		/*
		 * /proc/kallsyms has no read_iter for kernel_read(); it is a
		 * seq_file, so read it as one.
		 */
		init_sync_kiocb(&kiocb, file);
		kiocb.ki_pos = pos;
		iov_iter_kvec(&to, ITER_DEST, &kvec, 1, kvec.iov_len);
		n = seq_read_iter(&kiocb, &to);
		pos = kiocb.ki_pos;

		if (n < 0) {
			usip_unavailable("cannot read /proc/kallsyms (%zd)", n);
			err = n;
			break;
		}
		have += n;
		buf[have] = '\0';
		while ((newline = strchr(line, '\n'))) {
			*newline = '\0';
			usip_kallsyms_line(line, &scan);
			line = newline + 1;
		}
		have -= line - buf;
		memmove(buf, line, have);
		if (n == 0 || have == chunk)
			break;	/* the end, or a line longer than a chunk */
		cond_resched();
	}
	kvfree(buf);
	filp_close(file, NULL);
	if (!err && scan.lines && scan.zero_addresses == scan.lines) {
		usip_unavailable("kallsyms hides addresses (kptr_restrict=2, no CAP_SYSLOG?)");
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
	    (u64)hdr->hdr_len + hdr->str_off + hdr->str_len > size) {
		usip_unavailable("the kernel's BTF is malformed");
		return -EINVAL;
	}
	btf->hdr = hdr;
	btf->strings = (const char *)hdr + hdr->hdr_len + hdr->str_off;
	btf->strings_len = hdr->str_len;
	types = (const char *)hdr + hdr->hdr_len + hdr->type_off;
	if (usip_btf_walk(btf, types, types + hdr->type_len, NULL)) {
		usip_unavailable("the kernel's BTF has a type this module cannot read");
		return -EINVAL;
	}
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
	bool optional;
	bool *found;
};

static int usip_btf_members(const struct usip_btf *btf, const char *struct_name,
			    const struct btf_type *t,
			    const struct usip_member_spec *specs, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const struct usip_member_spec *s = &specs[i];
		const struct btf_type *mt;
		u32 offset, type;
		bool ok;

		if (!usip_btf_member(btf, t, s->name, &offset, &type, 0)) {
			if (s->optional)
				continue;
			usip_unavailable("struct %s has no member %s", struct_name, s->name);
			return -ENOENT;
		}
		mt = usip_btf_resolve(btf, type);
		ok = mt && BTF_INFO_KIND(mt->info) == s->kind;
		if (ok && s->kind == BTF_KIND_STRUCT)
			ok = strcmp(usip_btf_name(btf, mt->name_off), s->struct_name) == 0;
		else if (ok && s->kind == BTF_KIND_INT)
			ok = mt->size == s->size;
		if (!ok) {
			/* An optional member of another kind is another member. */
			if (s->optional)
				continue;
			usip_unavailable("struct %s member %s is not of the expected type",
					 struct_name, s->name);
			return -EINVAL;
		}
		*s->offset = offset;
		if (s->found)
			*s->found = true;
	}
	return 0;
}

static int usip_read_btf(void)
{
	bool ns_has_list = false, ns_has_lock = false;
	const struct usip_member_spec mount_members[] = {
		{ "mnt_parent", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_parent },
		{ "mnt_mountpoint", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_mountpoint },
		{ "mnt", BTF_KIND_STRUCT, "vfsmount", 0, &usip_k.mnt_vfs },
		{ "mnt_mounts", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_mounts },
		{ "mnt_child", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_child },
		{ "mnt_instance", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_instance },
		{ "mnt_devname", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_devname },
		{ "mnt_list", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_list },
		{ "mnt_share", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_share },
		{ "mnt_slave_list", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_slave_list },
		{ "mnt_slave", BTF_KIND_STRUCT, "list_head", 0, &usip_k.mnt_slave },
		{ "mnt_master", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_master },
		{ "mnt_ns", BTF_KIND_PTR, NULL, 0, &usip_k.mnt_ns },
		{ "mnt_id", BTF_KIND_INT, NULL, 4, &usip_k.mnt_id },
		{ "mnt_group_id", BTF_KIND_INT, NULL, 4, &usip_k.mnt_group_id },
		{ "mnt_id_unique", BTF_KIND_INT, NULL, 8, &usip_k.mnt_id_unique,
		  true, &usip_k.has_unique_id },
		{ "mnt_node", BTF_KIND_STRUCT, "rb_node", 0, &usip_k.mnt_node, true },
	};
	size_t ns_common_offset = 1;
	const struct usip_member_spec ns_members[] = {
		{ "ns", BTF_KIND_STRUCT, "ns_common", 0, &ns_common_offset },
		{ "root", BTF_KIND_PTR, NULL, 0, &usip_k.ns_root },
		{ "event", BTF_KIND_INT, NULL, 8, &usip_k.ns_event },
		{ "seq", BTF_KIND_INT, NULL, 8, &usip_k.ns_seq },
		{ "mounts", BTF_KIND_STRUCT, "rb_root", 0, &usip_k.ns_mounts,
		  true, &usip_k.ns_rbtree },
		{ "list", BTF_KIND_STRUCT, "list_head", 0, &usip_k.ns_list,
		  true, &ns_has_list },
		{ "ns_lock", BTF_KIND_STRUCT, "spinlock", 0, &usip_k.ns_lock,
		  true, &ns_has_lock },
	};
	const void *start = (const void *)usip_syms[USIP_SYM_START_BTF].addr;
	const void *end = (const void *)usip_syms[USIP_SYM_STOP_BTF].addr;
	const struct btf_type *mount, *ns;
	struct usip_btf btf;
	int err;

	if (!start || !end || end <= start) {
		usip_unavailable("the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)");
		return -ENOENT;
	}
	err = usip_btf_open(&btf, start, end);
	if (err)
		return err;
	mount = usip_btf_struct(&btf, "mount", "mnt_parent");
	ns = usip_btf_struct(&btf, "mnt_namespace", "ns");
	if (!mount || !ns) {
		usip_unavailable("the kernel's BTF lacks struct %s",
				 mount ? "mnt_namespace" : "mount");
		err = -ENOENT;
		goto out;
	}
	err = usip_btf_members(&btf, "mount", mount, mount_members,
			       ARRAY_SIZE(mount_members));
	if (!err)
		err = usip_btf_members(&btf, "mnt_namespace", ns, ns_members,
				       ARRAY_SIZE(ns_members));
	if (err)
		goto out;
	if (ns_common_offset != 0) {
		usip_unavailable("struct mnt_namespace does not start with its ns_common");
		err = -EINVAL;
	} else if (usip_k.ns_rbtree && !usip_k.has_unique_id) {
		usip_unavailable("the mount tree is ordered by a unique id the module cannot find");
		err = -EINVAL;
	} else if (!usip_k.ns_rbtree && !(ns_has_list && ns_has_lock)) {
		usip_unavailable("struct mnt_namespace keeps its mounts in an unknown way");
		err = -EINVAL;
	} else if (usip_k.ns_rbtree && !usip_k.mnt_node) {
		usip_unavailable("struct mount has no mnt_node for its namespace's tree");
		err = -EINVAL;
	}
out:
	kvfree(btf.types);
	return err;
}

int usip_internals_init(void)
{
	int err, i;

	for (i = 0; i < USIP_N_SYMS; i++)
		usip_syms[i].addr = 0;
	err = usip_read_kallsyms();
	if (!err)
		err = usip_read_btf();
	if (!err && (!usip_syms[USIP_SYM_NAMESPACE_SEM].addr ||
		     !usip_syms[USIP_SYM_MOUNT_LOCK].addr)) {
		usip_unavailable("kallsyms lacks namespace_sem or mount_lock");
		err = -ENOENT;
	}
	if (err) {
		if (err == -ENOMEM)
			return err;
		pr_notice("the mount table is not available: %s\n", usip_k.reason);
		return 0;	/* the module still works without it */
	}
	usip_k.namespace_sem = (struct rw_semaphore *)usip_syms[USIP_SYM_NAMESPACE_SEM].addr;
	usip_k.mount_lock = (seqlock_t *)usip_syms[USIP_SYM_MOUNT_LOCK].addr;
	usip_k.pivot_root.start = usip_syms[USIP_SYM_PIVOT_ROOT].addr;
	usip_k.fsconfig.start = usip_syms[USIP_SYM_FSCONFIG].addr;
	usip_k.path_umount.start = usip_syms[USIP_SYM_PATH_UMOUNT].addr;
	usip_k.mount_setattr.start = usip_syms[USIP_SYM_MOUNT_SETATTR].addr;
	/* Renamed in 6.8; one of them is there. */
	if (usip_syms[USIP_SYM_USER_PATH_AT].addr)
		usip_k.user_path_at = usip_syms[USIP_SYM_USER_PATH_AT].name;
	else if (usip_syms[USIP_SYM_USER_PATH_AT_EMPTY].addr)
		usip_k.user_path_at = usip_syms[USIP_SYM_USER_PATH_AT_EMPTY].name;
	usip_k.mount_table = true;
	usip_k.mount_hooks = true;
	for (i = USIP_SYM_HOOKS; i < USIP_N_SYMS; i++) {
		if (usip_syms[i].addr)
			continue;
		pr_notice("the kernel has no %s to hook: no mount events\n",
			  usip_syms[i].name);
		usip_k.mount_hooks = false;
	}
	for (i = USIP_SYM_PIVOT_ROOT; i <= USIP_SYM_MOUNT_SETATTR; i++)
		if (!*usip_syms[i].end)
			usip_k.mount_hooks = false;
	if (!usip_k.user_path_at) {
		pr_notice("the kernel has no user_path_at() to hook: no mount events\n");
		usip_k.mount_hooks = false;
	}
	return 0;
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

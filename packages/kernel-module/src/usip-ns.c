// SPDX-License-Identifier: GPL-2.0
/*
 * Mount namespaces as listeners and events see them.
 *
 * A listener is scoped to the mount namespace it was registered in, and an
 * event happens in one; both keep a counted reference so that a namespace
 * cannot be freed and its address reused while they compare against it.
 * struct mnt_namespace is private to fs/, but on every kernel this module
 * supports (6.1 and later) it starts with its struct ns_common, whose
 * refcount, inode number and operations (get/put) are public. No mount
 * namespace helper is exported to modules, so the module takes references
 * through that embedded ns_common, and checks the layout once at load time.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/nsproxy.h>
#include <linux/ns_common.h>
#include <linux/proc_ns.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/string.h>

#include "usip.h"

#ifdef CONFIG_RANDSTRUCT
/* struct mnt_namespace must start with its ns_common, see above. */
#error "usip does not support randstruct kernels"
#endif

static struct ns_common *usip_task_mnt_ns(struct task_struct *task)
{
	/* Offset 0 of struct mnt_namespace: checked by usip_ns_init(). */
	return (struct ns_common *)task->nsproxy->mnt_ns;
}

int usip_ns_init(void)
{
	const struct ns_common *ns = usip_task_mnt_ns(current);

	if (!ns->ops || ns->ops->type != CLONE_NEWNS ||
	    strcmp(ns->ops->name, "mnt") != 0) {
		pr_err("struct mnt_namespace does not start with its ns_common on this kernel\n");
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The caller's mount namespace, not referenced: only to compare against. */
struct ns_common *usip_mnt_ns_current(void)
{
	return usip_task_mnt_ns(current);
}

/* The caller's mount namespace, referenced; current must have an nsproxy. */
struct ns_common *usip_mnt_ns_get_current(void)
{
	struct ns_common *ns = usip_task_mnt_ns(current);

	/* What get_mnt_ns() does; current's nsproxy keeps ns alive meanwhile. */
	refcount_inc(&ns->count);
	return ns;
}

/* A reference to @ns, unless it is on its way out (no references left). */
bool usip_mnt_ns_tryget(struct ns_common *ns)
{
	return refcount_inc_not_zero(&ns->count);
}

/* Drops a reference; may sleep (the last one tears the namespace down). */
void usip_mnt_ns_put(struct ns_common *ns)
{
	might_sleep();
	if (ns)
		ns->ops->put(ns);
}

unsigned int usip_mnt_ns_inum(const struct ns_common *ns)
{
	return ns->inum;
}

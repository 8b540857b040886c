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
 *
 * How a namespace is counted is the one thing here that differs at compile
 * time: older kernels (6.1, 6.12) count with a refcount_t count in
 * ns_common; newer ones (7.x) with __ns_ref, reached through the inline
 * helpers of <linux/ns_common.h> (which leave the initial namespaces, never
 * freed, uncounted). The helpers come with the ns_ref_inc() macro, which
 * tells the two apart.
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

#ifdef ns_ref_inc
static void usip_ns_ref_inc(struct ns_common *ns)
{
	__ns_ref_inc(ns);
}

static bool usip_ns_ref_get(struct ns_common *ns)
{
	return __ns_ref_get(ns);
}

static unsigned int usip_ns_ref_read(const struct ns_common *ns)
{
	return __ns_ref_read(ns);
}
#else
static void usip_ns_ref_inc(struct ns_common *ns)
{
	refcount_inc(&ns->count);
}

static bool usip_ns_ref_get(struct ns_common *ns)
{
	return refcount_inc_not_zero(&ns->count);
}

static unsigned int usip_ns_ref_read(const struct ns_common *ns)
{
	return refcount_read(&ns->count);
}
#endif

int usip_ns_init(void)
{
	const struct ns_common *ns = usip_task_mnt_ns(current);

	/* The operations' name is there on every kernel; their type is not (7.x). */
	if (!ns->ops || !ns->ops->name || strcmp(ns->ops->name, "mnt") != 0) {
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
	usip_ns_ref_inc(ns);
	return ns;
}

/*
 * A reference to @ns, taken where a task's nsproxy holds it (a hook in that
 * task's context): what get_mnt_ns() does.
 */
void usip_mnt_ns_get(struct ns_common *ns)
{
	usip_ns_ref_inc(ns);
}

/* Whether @ns still has references: a namespace being torn down has none. */
bool usip_mnt_ns_alive(const struct ns_common *ns)
{
	return usip_ns_ref_read(ns) != 0;
}

/* A reference to @ns, unless it is on its way out (no references left). */
bool usip_mnt_ns_tryget(struct ns_common *ns)
{
	return usip_ns_ref_get(ns);
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

// SPDX-License-Identifier: GPL-2.0
/*
 * usip: the Universal Storage Information Provider.
 *
 * Registers the "usip" generic netlink family. Its operations, policies and
 * multicast groups come from the tables that tools/ynl-gen generates from
 * spec/usip.yaml (usip-nl-gen.c); the handlers live in their own files.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

#ifndef USIP_MODULE_VERSION
#error "USIP_MODULE_VERSION comes from the VERSION file through Kbuild"
#endif

bool usip_allow_inject;
module_param_named(allow_inject, usip_allow_inject, bool, 0444);
MODULE_PARM_DESC(allow_inject,
		 "Allow CAP_SYS_ADMIN to inject synthetic events, for tests (load time only; default off)");

unsigned int usip_max_listeners_per_user = 64;
module_param_named(max_listeners_per_user, usip_max_listeners_per_user, uint, 0644);
MODULE_PARM_DESC(max_listeners_per_user,
		 "Listeners one user (effective uid) may have registered at once (default 64)");

unsigned int usip_max_notifiers_per_listener = 32;
module_param_named(max_notifiers_per_listener, usip_max_notifiers_per_listener, uint, 0644);
MODULE_PARM_DESC(max_notifiers_per_listener,
		 "Notifiers one listener may carry (default 32)");

unsigned int usip_event_queue_len = 4096;
module_param_named(event_queue_len, usip_event_queue_len, uint, 0644);
MODULE_PARM_DESC(event_queue_len,
		 "Events that may wait for delivery; more are dropped and counted (default 4096)");

unsigned int usip_user_queue_len = 1024;
module_param_named(user_queue_len, usip_user_queue_len, uint, 0644);
MODULE_PARM_DESC(user_queue_len,
		 "Events that may wait for delivery to one user's listeners; more are dropped for them, and only them (default 1024)");

unsigned int usip_listener_queue_len = 1024;
module_param_named(listener_queue_len, usip_listener_queue_len, uint, 0644);
MODULE_PARM_DESC(listener_queue_len,
		 "Events that may wait for delivery to one listener (default 1024)");

/* Only with allow_inject: the next N attempts to arm a feature's hooks fail. */
atomic_t usip_inject_arm_failures = ATOMIC_INIT(0);
module_param_named(inject_arm_failures, usip_inject_arm_failures.counter, int, 0644);
MODULE_PARM_DESC(inject_arm_failures,
		 "For tests, with allow_inject=1: make the next N attempts to arm a feature's hooks fail (default 0)");

bool usip_space_errors_unprivileged;
module_param_named(space_errors_unprivileged, usip_space_errors_unprivileged, bool, 0644);
MODULE_PARM_DESC(space_errors_unprivileged,
		 "Let any user register enospc and edquot notifiers, which hook the exit of every system call (default: CAP_SYS_ADMIN only)");

unsigned int usip_space_error_interval_ms = 1000;
module_param_named(space_error_interval_ms, usip_space_error_interval_ms, uint, 0644);
MODULE_PARM_DESC(space_error_interval_ms,
		 "At most one enospc or edquot event per file system, errno and uid in this many milliseconds; the next one counts the rest");

unsigned int usip_max_coalesce_slots = 1024;
module_param_named(max_coalesce_slots, usip_max_coalesce_slots, uint, 0644);
MODULE_PARM_DESC(max_coalesce_slots,
		 "Coalescing slots (file system, errno, uid) for enospc and edquot events at once");

unsigned int usip_max_coalesce_slots_per_user = 64;
module_param_named(max_coalesce_slots_per_user, usip_max_coalesce_slots_per_user, uint, 0644);
MODULE_PARM_DESC(max_coalesce_slots_per_user,
		 "Coalescing slots one uid's failing processes may use at once");

unsigned int usip_statfs_timeout_ms = 1000;
module_param_named(statfs_timeout_ms, usip_statfs_timeout_ms, uint, 0644);
MODULE_PARM_DESC(statfs_timeout_ms,
		 "How long a statfs request waits for one file system before reporting ETIMEDOUT for it, unless the request says (1 to 60000; default 1000)");

unsigned int usip_statfs_max_running = 32;
module_param_named(statfs_max_running, usip_statfs_max_running, uint, 0444);
MODULE_PARM_DESC(statfs_max_running,
		 "statfs calls that may run at once, hung ones included; more wait, and time out if none ends (load time only; 1 to 512, default 32)");

struct workqueue_struct *usip_wq;

atomic_t usip_objects = ATOMIC_INIT(0);

void usip_kfree(const void *p)
{
	if (!p)
		return;
	kfree(p);
	atomic_dec(&usip_objects);
}

struct genl_family usip_family __ro_after_init = {
	.name		= USIP_FAMILY_NAME,
	.version	= USIP_FAMILY_VERSION,
	/* Every request is answered in, and about, the caller's namespaces. */
	.netnsok	= true,
	/* No handler relies on genl_mutex to serialise it. */
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= usip_nl_ops,
	.n_ops		= ARRAY_SIZE(usip_nl_ops),
	.mcgrps		= usip_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(usip_nl_mcgrps),
	/*
	 * .resv_start_op stays 0, as new families should (6.1 and 6.12 both
	 * have it): then no op is treated as legacy, the reserved header byte
	 * is checked and an op without a policy accepts no attribute at all.
	 */
};

static int __init usip_init(void)
{
	int err;

	if (IS_ENABLED(CONFIG_PREEMPT_RT)) {
		/* DKMS does not build it there either (BUILD_EXCLUSIVE_CONFIG). */
		pr_err("PREEMPT_RT kernels are not supported: the mount hooks allocate memory and take spinlocks with preemption disabled\n");
		return -EOPNOTSUPP;
	}
	err = usip_ns_init();
	if (err)
		return err;
	/* Finds what the mount table and its events need; without it the rest still works. */
	err = usip_internals_init();
	if (err)
		return err;
	/* Nothing on it is tied to a CPU; 7.x wants that said (or WQ_PERCPU). */
	usip_wq = alloc_workqueue("usip", WQ_UNBOUND, 0);
	if (!usip_wq)
		return -ENOMEM;
	err = usip_statfs_init();
	if (err)
		goto wq;
	err = usip_mount_events_init();
	if (err)
		goto statfs;
	err = usip_space_errors_init();
	if (err)
		goto mount_events;
	err = usip_listeners_init();
	if (err)
		goto space_errors;
	err = usip_events_init();
	if (err)
		goto listeners;
	err = genl_register_family(&usip_family);
	if (err) {
		pr_err("cannot register the generic netlink family %s: %d\n",
		       USIP_FAMILY_NAME, err);
		goto events;
	}
	return 0;

events:
	usip_events_stop();
	usip_events_exit();
listeners:
	usip_listeners_exit();
space_errors:
	usip_space_errors_exit();
mount_events:
	usip_mount_events_exit();
statfs:
	usip_statfs_exit();
wq:
	destroy_workqueue(usip_wq);
	return err;
}

static void __exit usip_exit(void)
{
	/* No more mount or storage events: the hooks go first. */
	usip_mount_events_exit();
	/* Nor low-space checks, which post events too. */
	usip_low_space_exit();
	usip_space_errors_exit();
	/* Deliveries use the family: finish them before it goes. */
	usip_events_stop();
	/* Waits for requests in progress; no new ones come after it. */
	genl_unregister_family(&usip_family);
	/* Discards what is still queued: its listeners' references go to usip_wq. */
	usip_events_exit();
	usip_listeners_exit();
	/* No statfs call is left (each holds the module), but the tail of the last. */
	usip_statfs_exit();
	destroy_workqueue(usip_wq);
	/* The mount namespace states go after an RCU grace period. */
	rcu_barrier();
	WARN_ON(atomic_read(&usip_objects));
}

module_init(usip_init);
module_exit(usip_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("The USIP developers");
MODULE_DESCRIPTION("Universal Storage Information Provider: mount table and storage events over generic netlink");
MODULE_VERSION(USIP_MODULE_VERSION);
/* Lets the kernel load the module when a client resolves the family. */
MODULE_ALIAS_GENL_FAMILY(USIP_FAMILY_NAME);

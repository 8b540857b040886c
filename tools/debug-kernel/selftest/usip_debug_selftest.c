// SPDX-License-Identifier: GPL-2.0
/*
 * Makes the debug kernel report the kinds of bug it is there to find, on purpose,
 * so that a test can check that each report reaches the kernel log and that the
 * harness's log check fails the run on it. Never load it anywhere else.
 *
 * bugs=LIST (comma-separated), done in this order at load time:
 *   sleep     GFP_KERNEL allocation under a spinlock
 *             ("BUG: sleeping function called from invalid context")
 *   rcu       rcu_dereference() outside a read-side critical section
 *             ("WARNING: suspicious RCU usage")
 *   circular  takes two mutexes in both orders
 *             ("WARNING: possible circular locking dependency detected")
 *   kasan     reads a freed slab object
 *             ("BUG: KASAN: slab-use-after-free")
 * A lockdep report such as the circular one turns lockdep off for the rest of
 * the boot, and so does a KASAN report (its taint makes lockdep unreliable);
 * the sleep and RCU reports do not. Hence this order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

static char *bugs = "";
module_param(bugs, charp, 0444);
MODULE_PARM_DESC(bugs, "comma-separated: kasan, sleep, circular, rcu");

static DEFINE_MUTEX(selftest_a);
static DEFINE_MUTEX(selftest_b);
static DEFINE_SPINLOCK(selftest_lock);

struct selftest_item {
	int value;
};

static struct selftest_item __rcu *selftest_ptr;

static bool wanted(const char *name)
{
	size_t len = strlen(name);
	const char *p = bugs;

	while (p && *p) {
		if (!strncmp(p, name, len) && (p[len] == ',' || p[len] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static noinline void selftest_kasan(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	OPTIMIZER_HIDE_VAR(p);	/* no compiler warning, no optimisation: a real read */
	pr_info("read after free: %d\n", READ_ONCE(p[8]));
}

static noinline void selftest_sleep(void)
{
	void *p;

	spin_lock(&selftest_lock);
	p = kmalloc(64, GFP_KERNEL);
	spin_unlock(&selftest_lock);
	kfree(p);
}

static noinline void selftest_circular(void)
{
	mutex_lock(&selftest_a);
	mutex_lock(&selftest_b);
	mutex_unlock(&selftest_b);
	mutex_unlock(&selftest_a);

	mutex_lock(&selftest_b);
	mutex_lock(&selftest_a);
	mutex_unlock(&selftest_a);
	mutex_unlock(&selftest_b);
}

static noinline void selftest_rcu(void)
{
	struct selftest_item *item = kzalloc(sizeof(*item), GFP_KERNEL);

	if (!item)
		return;
	rcu_assign_pointer(selftest_ptr, item);
	pr_info("value without rcu_read_lock(): %d\n", rcu_dereference(selftest_ptr)->value);
	RCU_INIT_POINTER(selftest_ptr, NULL);
	synchronize_rcu();
	kfree(item);
}

static int __init selftest_init(void)
{
	pr_info("making these bugs: %s\n", bugs);
	if (wanted("sleep"))
		selftest_sleep();
	if (wanted("rcu"))
		selftest_rcu();
	if (wanted("circular"))
		selftest_circular();
	if (wanted("kasan"))
		selftest_kasan();
	pr_info("done\n");
	return 0;
}

static void __exit selftest_exit(void)
{
}

module_init(selftest_init);
module_exit(selftest_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Makes the USIP debug kernel report a KASAN, a sleep-in-atomic and a lockdep bug");

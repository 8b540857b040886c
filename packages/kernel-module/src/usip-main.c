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
#include <net/genetlink.h>

#include "usip.h"
#include "usip-nl-gen.h"

#ifndef USIP_MODULE_VERSION
#error "USIP_MODULE_VERSION comes from the VERSION file through Kbuild"
#endif

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

	err = genl_register_family(&usip_family);
	if (err)
		pr_err("cannot register the generic netlink family %s: %d\n",
		       USIP_FAMILY_NAME, err);
	return err;
}

static void __exit usip_exit(void)
{
	genl_unregister_family(&usip_family);
}

module_init(usip_init);
module_exit(usip_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("The USIP developers");
MODULE_DESCRIPTION("Universal Storage Information Provider: mount table and storage events over generic netlink");
MODULE_VERSION(USIP_MODULE_VERSION);
/* Lets the kernel load the module when a client resolves the family. */
MODULE_ALIAS_GENL_FAMILY(USIP_FAMILY_NAME);

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared by the parts of usip.ko (the generated netlink tables
 * are declared in usip-nl-gen.h).
 */
#ifndef _USIP_H
#define _USIP_H

#include <net/genetlink.h>

extern struct genl_family usip_family;

#endif /* _USIP_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * The ping operation: tells a caller that the module is there and what it
 * is (protocol and module versions, features, kernel release), echoing the
 * caller's cookie so replies can be matched to requests.
 */
#include <linux/fanotify.h>
#include <generated/utsrelease.h>
#include <net/genetlink.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

/* fanotify's mount events exist from Linux 6.15; test for them, not a version. */
#ifdef FAN_MNT_ATTACH
#define USIP_FEATURE_NATIVE_MOUNT_NOTIFY_IF_ANY USIP_FEATURE_NATIVE_MOUNT_NOTIFY
#else
#define USIP_FEATURE_NATIVE_MOUNT_NOTIFY_IF_ANY 0
#endif

static u32 usip_features(void)
{
	u32 features = USIP_FEATURE_NETNS | USIP_FEATURE_NATIVE_MOUNT_NOTIFY_IF_ANY;

	if (usip_k.mount_table)
		features |= USIP_FEATURE_MOUNT_TABLE;
	if (usip_mount_events_available())
		features |= USIP_FEATURE_MOUNT_EVENTS;
	return features;
}

int usip_nl_ping_doit(struct sk_buff *skb, struct genl_info *info)
{
	const struct nlattr *cookie = info->attrs[USIP_A_PING_COOKIE];
	struct sk_buff *reply;
	size_t size;
	void *hdr;

	size = 2 * nla_total_size(sizeof(u32)) +
	       nla_total_size(sizeof(USIP_MODULE_VERSION)) +
	       nla_total_size(sizeof(UTS_RELEASE)) +
	       nla_total_size_64bit(sizeof(u64));
	reply = genlmsg_new(size, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;

	hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_PING);
	if (!hdr)
		goto too_small;
	if (nla_put_u32(reply, USIP_A_PING_PROTOCOL_VERSION,
			USIP_PROTOCOL_VERSION) ||
	    nla_put_string(reply, USIP_A_PING_MODULE_VERSION,
			   USIP_MODULE_VERSION) ||
	    nla_put_u32(reply, USIP_A_PING_FEATURES, usip_features()) ||
	    nla_put_string(reply, USIP_A_PING_KERNEL_RELEASE, UTS_RELEASE))
		goto too_small;
	if (cookie && nla_put_u64_64bit(reply, USIP_A_PING_COOKIE,
					nla_get_u64(cookie), USIP_A_PING_PAD))
		goto too_small;
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);

too_small:
	/* size above counts every attribute, so this cannot happen. */
	nlmsg_free(reply);
	return -EMSGSIZE;
}

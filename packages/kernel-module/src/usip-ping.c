// SPDX-License-Identifier: GPL-2.0
/*
 * The ping operation: tells a caller that the module is there and what it
 * is (protocol and module versions, kernel release, and each feature: whether
 * it works on this kernel, and if not why), echoing the caller's cookie so
 * replies can be matched to requests.
 */
#include <generated/utsrelease.h>
#include <net/genetlink.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

static int usip_put_feature_status(struct sk_buff *skb, enum usip_feature_index f)
{
	u32 reason = READ_ONCE(usip_feature_reason[f]);
	struct nlattr *nest;

	nest = nla_nest_start(skb, USIP_A_PING_FEATURE_STATUS);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, USIP_A_FEATURE_STATUS_FEATURE, usip_feature_flag(f)) ||
	    nla_put_u8(skb, USIP_A_FEATURE_STATUS_AVAILABLE, !reason) ||
	    (reason && nla_put_u32(skb, USIP_A_FEATURE_STATUS_REASON, reason))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

int usip_nl_ping_doit(struct sk_buff *skb, struct genl_info *info)
{
	const struct nlattr *cookie = info->attrs[USIP_A_PING_COOKIE];
	struct sk_buff *reply;
	size_t size;
	void *hdr;
	int f;

	size = 2 * nla_total_size(sizeof(u32)) +
	       nla_total_size(sizeof(USIP_MODULE_VERSION)) +
	       nla_total_size(sizeof(UTS_RELEASE)) +
	       nla_total_size_64bit(sizeof(u64)) +
	       USIP_N_FEATURES * nla_total_size(2 * nla_total_size(sizeof(u32)) +
						nla_total_size(sizeof(u8)));
	reply = genlmsg_new(size, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;

	hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_PING);
	if (!hdr)
		goto too_small;
	/* Only what works is advertised; feature-status says why the rest does not. */
	if (nla_put_u32(reply, USIP_A_PING_PROTOCOL_VERSION, USIP_PROTOCOL_VERSION) ||
	    nla_put_string(reply, USIP_A_PING_MODULE_VERSION, USIP_MODULE_VERSION) ||
	    nla_put_u32(reply, USIP_A_PING_FEATURES, usip_feature_mask()) ||
	    nla_put_string(reply, USIP_A_PING_KERNEL_RELEASE, UTS_RELEASE))
		goto too_small;
	if (cookie && nla_put_u64_64bit(reply, USIP_A_PING_COOKIE,
					nla_get_u64(cookie), USIP_A_PING_PAD))
		goto too_small;
	for (f = 0; f < USIP_N_FEATURES; f++)
		if (usip_put_feature_status(reply, f))
			goto too_small;
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);

too_small:
	/* size above counts every attribute, so this cannot happen. */
	nlmsg_free(reply);
	return -EMSGSIZE;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Events: producers post them, a bounded queue holds them, and an ordered
 * workqueue delivers them to the listeners chosen when they were posted
 * (usip-listener.c) and to the multicast groups.
 *
 * Posting may happen in a hook with preemption disabled, so it reads the
 * listener lists under RCU, allocates without sleeping when asked to, and
 * takes references that the worker, in process context, drops. It looks
 * before it builds: an event nobody wants, or that finds the queue full, is
 * dropped before its path is worked out or anything is allocated; every
 * listener it would have reached has its miss count raised, to be reported
 * in its next event or, once the queue drains, in a missed message.
 *
 * Multicast copies go to the initial network namespace only, where joining
 * a group needs CAP_SYS_ADMIN in the initial user namespace: a copy cannot be
 * fitted to each member's namespaces as a listener's message is, so only the
 * host's administrators get them, in the initial namespaces' terms.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/user_namespace.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

#define USIP_N_TYPES	USIP_EVENT_TYPE_STORAGE

static struct workqueue_struct *usip_event_wq;

static DEFINE_SPINLOCK(usip_queue_lock);
static LIST_HEAD(usip_queue);
/* Under usip_queue_lock: events queued or being delivered. */
static unsigned int usip_queued;
static bool usip_stopping;
static u64 usip_seq;

static void usip_event_work(struct work_struct *work);
static DECLARE_WORK(usip_event_work_item, usip_event_work);
static atomic64_t usip_dropped = ATOMIC64_INIT(0);
static atomic64_t usip_delivered = ATOMIC64_INIT(0);
static atomic64_t usip_undeliverable = ATOMIC64_INIT(0);
/* Set by a hook whose change was too big to tell; the worker tells the listeners. */
static atomic_t usip_gap_pending = ATOMIC_INIT(0);
/* Drops per type, and (worker only) how many multicast copies reported. */
static atomic64_t usip_group_dropped[USIP_N_TYPES + 1];
static u64 usip_group_reported[USIP_N_TYPES + 1];

static const char *const usip_type_names[] = {
	[USIP_EVENT_TYPE_MTAB] = "mtab",
	[USIP_EVENT_TYPE_STORAGE] = "storage",
};

static const char *const usip_action_names[] = {
	[USIP_ACTION_MOUNT] = "mount",
	[USIP_ACTION_UMOUNT] = "umount",
	[USIP_ACTION_MOVE] = "move",
	[USIP_ACTION_REMOUNT] = "remount",
	[USIP_ACTION_ENOSPC] = "enospc",
	[USIP_ACTION_EDQUOT] = "edquot",
	[USIP_ACTION_LOW_SPACE] = "low-space",
	[USIP_ACTION_QUOTA] = "quota",
};

const char *usip_type_name(u32 type)
{
	return type < ARRAY_SIZE(usip_type_names) && usip_type_names[type] ?
	       usip_type_names[type] : "?";
}

const char *usip_action_name(u32 action)
{
	return action < ARRAY_SIZE(usip_action_names) &&
	       usip_action_names[action] ? usip_action_names[action] : "?";
}

bool usip_action_of_type(u32 type, u32 action)
{
	switch (type) {
	case USIP_EVENT_TYPE_MTAB:
		return action >= USIP_ACTION_MOUNT && action <= USIP_ACTION_REMOUNT;
	case USIP_EVENT_TYPE_STORAGE:
		return action >= USIP_ACTION_ENOSPC && action <= USIP_ACTION_QUOTA;
	default:
		return false;
	}
}

bool usip_events_queue_full(void)
{
	return READ_ONCE(usip_queued) >= READ_ONCE(usip_event_queue_len);
}

static size_t usip_strsize(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *usip_strcopy(char **to, const char *s)
{
	char *copy = *to;
	size_t size = usip_strsize(s);

	if (!s)
		return NULL;
	memcpy(copy, s, size);
	*to += size;
	return copy;
}

/*
 * @probe as an event with room for @max recipients and its strings, in one
 * allocation; for a real mount change, the mount's path from the root of
 * @probe's namespace is worked out now. No reference is taken yet.
 */
static struct usip_event *usip_event_alloc(const struct usip_event *probe,
					   unsigned int max, gfp_t gfp)
{
	struct usip_event_info info = probe->info;
	struct usip_event *ev;
	size_t size;
	char *strings;

	if (info.mount) {
		struct path root = usip_ns_root_path((struct mnt_namespace *)probe->mnt_ns);
		const char *path = usip_mount_point(info.mount, &root, info.buf);

		/* Too long for the message, or (cannot happen) not below the root: none. */
		info.path = IS_ERR_OR_NULL(path) ? NULL : path;
	}
	size = size_add(struct_size(ev, recipients, max),
			usip_strsize(info.path) + usip_strsize(info.fs_type) +
			usip_strsize(info.source));
	ev = kmalloc(size, gfp);
	if (!ev)
		return NULL;
	atomic_inc(&usip_objects);
	*ev = (struct usip_event){
		.info = info,
		.mnt_ns = probe->mnt_ns,
		.born_before = probe->born_before,
	};
	strings = (char *)&ev->recipients[max];
	ev->info.path = usip_strcopy(&strings, info.path);
	ev->info.fs_type = usip_strcopy(&strings, info.fs_type);
	ev->info.source = usip_strcopy(&strings, info.source);
	return ev;
}

/* Frees @ev's memory (its recipients are released already); any context. */
static void usip_event_discard(struct usip_event *ev)
{
	usip_kfree(ev);
}

/* Frees @ev and drops its references; process context. */
static void usip_event_free(struct usip_event *ev)
{
	usip_mnt_ns_put(ev->mnt_ns);
	put_pid(ev->pid);
	usip_event_discard(ev);
}

/*
 * The next ns-seq of @state; under usip_queue_lock. Changes that were lost
 * since the namespace last looked leave a hole first.
 */
static u64 usip_mntns_next_seq(struct usip_mntns *state)
{
	s64 gaps = atomic64_read(&usip_mount_gaps);

	if (state->gaps_seen != gaps) {
		state->gaps_seen = gaps;
		state->seq++;
	}
	WRITE_ONCE(state->seq, state->seq + 1);
	return state->seq;
}

static void usip_count_drop(u32 type)
{
	atomic64_inc(&usip_dropped);
	atomic64_inc(&usip_group_dropped[type]);
}

/*
 * Posts an event that the current task caused in mount namespace @ns; any
 * context (the mount hooks run with preemption disabled and post with
 * GFP_ATOMIC). Returns 0 when queued, -ENOENT when no listener wants it
 * (not counted), -ENOBUFS when it was dropped (counted). *@seq gets its
 * sequence number. A mount table change (USIP_EVENT_MOUNT_CHANGE) in a
 * namespace with listeners uses up that namespace's next ns-seq even when
 * it is not queued.
 */
int usip_event_post(const struct usip_event_info *info, struct ns_common *ns,
		    gfp_t gfp, u64 *seq)
{
	/* What matching needs; the mount namespace is compared, not held. */
	struct usip_event probe = { .info = *info, .mnt_ns = ns };
	unsigned int wanted, no_room, missed = 0;
	struct usip_mntns *state = NULL;
	struct usip_event *ev = NULL;
	unsigned long flags;
	bool queued = false;
	u64 ns_seq = 0;

	*seq = 0;
	rcu_read_lock();
	wanted = usip_listeners_probe(&probe, &no_room);
	rcu_read_unlock();
	/*
	 * Nothing is built for an event that has nowhere to go. The allocation
	 * may sleep (inject's GFP_KERNEL): outside the RCU read section. A slot
	 * for every listener that wanted it: one that registered meanwhile has
	 * none, and is as if it had registered after the event.
	 */
	if (wanted && !usip_events_queue_full())
		ev = usip_event_alloc(&probe, wanted + no_room, gfp);
	rcu_read_lock();
	if (info->present & USIP_EVENT_MOUNT_CHANGE)
		state = usip_mntns_find(ns);
	if (ev && !usip_listeners_take(ev, wanted + no_room, &missed)) {
		usip_event_discard(ev);
		ev = NULL;
		if (!missed)
			wanted = 0;	/* the path showed it matched nobody after all */
	}
	/*
	 * Numbering and queueing are one step under the lock: the queue is
	 * always in seq and ns-seq order, whoever posts concurrently.
	 */
	spin_lock_irqsave(&usip_queue_lock, flags);
	if (state)
		ns_seq = usip_mntns_next_seq(state);
	if (!wanted && !no_room) {
		spin_unlock_irqrestore(&usip_queue_lock, flags);
		rcu_read_unlock();
		return -ENOENT;
	}
	*seq = ++usip_seq;
	/* A namespace on its way out (no references left) gets no events. */
	if (ev && !usip_stopping && usip_queued < READ_ONCE(usip_event_queue_len) &&
	    usip_mnt_ns_tryget(ns)) {
		queued = true;
		usip_queued++;
		ev->info.mount = NULL;	/* only valid while posting */
		ev->info.buf = NULL;
		ev->seq = *seq;
		ev->ns_seq = ns_seq;
		ev->timestamp = ktime_get_real_ns();
		if (info->present & USIP_EVENT_HAS_TASK) {
			ev->pid = get_pid(info->pid);
			ev->uid = info->uid;
		} else if (info->present & USIP_EVENT_NO_TASK) {
			/* A low-space check is no task's doing: no pid or uid. */
			ev->uid = INVALID_UID;
		} else {
			ev->pid = get_pid(task_tgid(current));
			ev->uid = current_euid();
		}
		ev->info.pid = NULL;	/* the event holds its own reference */
		list_add_tail(&ev->node, &usip_queue);
	}
	spin_unlock_irqrestore(&usip_queue_lock, flags);
	if (!queued) {
		/*
		 * The misses are reported with the very next event delivered to
		 * each listener, whatever its seq, so that no report comes late
		 * (a later drop must not hold an earlier one back), or by a
		 * missed message once the queue has drained.
		 */
		if (ev) {
			usip_listeners_unmatch(ev);
			usip_event_discard(ev);
		} else if (!missed) {
			usip_listeners_drop(&probe);
		}
		rcu_read_unlock();
		usip_count_drop(info->type);
		queue_work(usip_event_wq, &usip_event_work_item);
		return -ENOBUFS;
	}
	rcu_read_unlock();
	queue_work(usip_event_wq, &usip_event_work_item);
	return 0;
}

void usip_events_report_gap(void)
{
	atomic_set(&usip_gap_pending, 1);
	queue_work(usip_event_wq, &usip_event_work_item);
}

static void usip_event_multicast(const struct usip_event *ev);

static void usip_event_work(struct work_struct *work)
{
	struct usip_event *ev;
	unsigned long flags;
	bool stopping;

	for (;;) {
		spin_lock_irqsave(&usip_queue_lock, flags);
		ev = list_first_entry_or_null(&usip_queue, struct usip_event, node);
		if (ev)
			list_del(&ev->node);
		stopping = usip_stopping;
		spin_unlock_irqrestore(&usip_queue_lock, flags);
		if (!ev)
			break;
		/* While the module unloads, queued events are discarded. */
		if (!stopping && usip_listeners_deliver(ev))
			usip_event_multicast(ev);
		usip_listeners_release_recipients(ev);
		usip_event_free(ev);
		spin_lock_irqsave(&usip_queue_lock, flags);
		usip_queued--;
		spin_unlock_irqrestore(&usip_queue_lock, flags);
		cond_resched();
	}
	if (stopping)
		return;
	if (atomic_xchg(&usip_gap_pending, 0))
		usip_listeners_mark_gap();
	/* Drained: misses that no queued event will carry are reported now. */
	usip_listeners_report_missed();
}

static size_t usip_event_msg_size(const struct usip_event *ev, const char *path)
{
	const struct usip_event_info *info = &ev->info;

	/*
	 * listener-id, missed, type, action, cmd, pid, uid, dev, count,
	 * quota-type, quota-id, quota-warning, space-state
	 */
	return 13 * nla_total_size(sizeof(u32)) +
	       /* seq, timestamp, mnt-ns, mount-id, parent-id, ns-seq, unique-id, ino */
	       8 * nla_total_size_64bit(sizeof(u64)) +
	       /* bytes-total, bytes-available, files-total, files-free */
	       4 * nla_total_size_64bit(sizeof(u64)) +
	       nla_total_size(TASK_COMM_LEN) + nla_total_size(usip_strsize(info->syscall)) +
	       /* subtree */
	       nla_total_size(0) +
	       nla_total_size(usip_strsize(path)) +
	       nla_total_size(usip_strsize(info->fs_type)) +
	       nla_total_size(usip_strsize(info->source));
}

static int usip_put_string(struct sk_buff *skb, int type, const char *s)
{
	return s ? nla_put_string(skb, type, s) : 0;
}

/* A low-space event's state and the usage read. */
static int usip_put_space(struct sk_buff *skb, const struct usip_event_info *info)
{
	if ((info->present & USIP_EVENT_HAS_SPACE) &&
	    nla_put_u32(skb, USIP_A_EVENT_SPACE_STATE, info->space_state))
		return -EMSGSIZE;
	if (!(info->present & USIP_EVENT_HAS_USAGE))
		return 0;
	if (nla_put_u64_64bit(skb, USIP_A_EVENT_BYTES_TOTAL, info->bytes_total,
			      USIP_A_EVENT_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_EVENT_BYTES_AVAILABLE, info->bytes_available,
			      USIP_A_EVENT_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_EVENT_FILES_TOTAL, info->files_total,
			      USIP_A_EVENT_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_EVENT_FILES_FREE, info->files_free,
			      USIP_A_EVENT_PAD))
		return -EMSGSIZE;
	return 0;
}

/* What only storage events carry: the cause's command, the call, the inode, the quota. */
static int usip_put_storage(struct sk_buff *skb, const struct usip_event *ev,
			    const struct usip_event_dest *dest)
{
	const struct usip_event_info *info = &ev->info;

	if (info->comm[0] && nla_put_string(skb, USIP_A_EVENT_COMM, info->comm))
		return -EMSGSIZE;
	if (usip_put_string(skb, USIP_A_EVENT_SYSCALL, info->syscall))
		return -EMSGSIZE;
	if ((info->present & USIP_EVENT_HAS_INO) &&
	    nla_put_u64_64bit(skb, USIP_A_EVENT_INO, info->ino, USIP_A_EVENT_PAD))
		return -EMSGSIZE;
	if (!(info->present & USIP_EVENT_HAS_QUOTA))
		return 0;
	/* Recipients in whose namespace the id is not mapped were not chosen. */
	if (nla_put_u32(skb, USIP_A_EVENT_QUOTA_TYPE, info->qid.type) ||
	    nla_put_u32(skb, USIP_A_EVENT_QUOTA_ID, from_kqid_munged(dest->user_ns, info->qid)) ||
	    nla_put_u32(skb, USIP_A_EVENT_QUOTA_WARNING, info->quota_warning))
		return -EMSGSIZE;
	return 0;
}

struct sk_buff *usip_event_build(const struct usip_event *ev,
				 const struct usip_event_dest *dest)
{
	const struct usip_event_info *info = &ev->info;
	bool mtab = info->type == USIP_EVENT_TYPE_MTAB;
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(usip_event_msg_size(ev, dest->path), GFP_KERNEL);
	if (!skb)
		return NULL;
	hdr = genlmsg_put(skb, 0, 0, &usip_family, 0,
			  mtab ? USIP_CMD_MTAB_EVENT : USIP_CMD_STORAGE_EVENT);
	if (!hdr)
		goto too_small;
	if ((dest->listener_id &&
	     nla_put_u32(skb, USIP_A_EVENT_LISTENER_ID, dest->listener_id)) ||
	    nla_put_u64_64bit(skb, USIP_A_EVENT_SEQ, ev->seq, USIP_A_EVENT_PAD) ||
	    nla_put_u32(skb, USIP_A_EVENT_MISSED, dest->missed) ||
	    nla_put_u32(skb, USIP_A_EVENT_TYPE, info->type) ||
	    nla_put_u32(skb, USIP_A_EVENT_ACTION, info->action) ||
	    (dest->has_cmd && nla_put_u32(skb, USIP_A_EVENT_CMD, dest->cmd)) ||
	    nla_put_u64_64bit(skb, USIP_A_EVENT_TIMESTAMP, ev->timestamp,
			      USIP_A_EVENT_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_EVENT_MNT_NS,
			      usip_mnt_ns_inum(ev->mnt_ns), USIP_A_EVENT_PAD) ||
	    (!(info->present & USIP_EVENT_NO_TASK) &&
	     (nla_put_u32(skb, USIP_A_EVENT_PID, pid_nr_ns(ev->pid, dest->pid_ns)) ||
	      nla_put_u32(skb, USIP_A_EVENT_UID,
			  from_kuid_munged(dest->user_ns, ev->uid)))))
		goto too_small;
	if (((info->present & USIP_EVENT_HAS_MOUNT_ID) &&
	     nla_put_u64_64bit(skb, USIP_A_EVENT_MOUNT_ID, info->mount_id,
			       USIP_A_EVENT_PAD)) ||
	    (mtab && (info->present & USIP_EVENT_HAS_PARENT_ID) &&
	     nla_put_u64_64bit(skb, USIP_A_EVENT_PARENT_ID, info->parent_id,
			       USIP_A_EVENT_PAD)) ||
	    usip_put_string(skb, USIP_A_EVENT_PATH, dest->path) ||
	    usip_put_string(skb, USIP_A_EVENT_FS_TYPE, info->fs_type) ||
	    usip_put_string(skb, USIP_A_EVENT_SOURCE, info->source) ||
	    ((info->present & USIP_EVENT_HAS_DEV) &&
	     nla_put_u32(skb, USIP_A_EVENT_DEV, info->dev)) ||
	    (!mtab && (info->present & USIP_EVENT_HAS_COUNT) &&
	     nla_put_u32(skb, USIP_A_EVENT_COUNT, info->count)) ||
	    (ev->ns_seq &&
	     nla_put_u64_64bit(skb, USIP_A_EVENT_NS_SEQ, ev->ns_seq, USIP_A_EVENT_PAD)) ||
	    ((info->present & USIP_EVENT_HAS_UNIQUE_ID) &&
	     nla_put_u64_64bit(skb, USIP_A_EVENT_UNIQUE_ID, info->unique_id,
			       USIP_A_EVENT_PAD)) ||
	    (mtab && (info->present & USIP_EVENT_SUBTREE) &&
	     nla_put_flag(skb, USIP_A_EVENT_SUBTREE)))
		goto too_small;
	if (!mtab && (usip_put_space(skb, info) || usip_put_storage(skb, ev, dest)))
		goto too_small;
	genlmsg_end(skb, hdr);
	return skb;

too_small:
	/* usip_event_msg_size() counts every attribute: cannot happen. */
	nlmsg_free(skb);
	return NULL;
}

/*
 * One copy of @ev to its type's group in the initial network namespace, in
 * the initial namespaces' terms; called by the worker only.
 */
static void usip_event_multicast(const struct usip_event *ev)
{
	u32 type = ev->info.type;
	u64 dropped = atomic64_read(&usip_group_dropped[type]);
	struct usip_event_dest dest = {
		.missed = min_t(u64, dropped - usip_group_reported[type], U32_MAX),
		.path = ev->info.path,
		.pid_ns = &init_pid_ns,
		.user_ns = &init_user_ns,
	};
	struct sk_buff *skb;

	usip_group_reported[type] = dropped;
	skb = usip_event_build(ev, &dest);
	if (!skb)
		return;
	/* -ESRCH: nobody has joined the group; that is fine. */
	genlmsg_multicast_netns(&usip_family, &init_net, skb, 0,
				type == USIP_EVENT_TYPE_MTAB ? USIP_NLGRP_MTAB :
							       USIP_NLGRP_STORAGE,
				GFP_KERNEL);
}

void usip_event_count_delivery(bool delivered)
{
	atomic64_inc(delivered ? &usip_delivered : &usip_undeliverable);
}

int usip_nl_inject_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr **attrs = info->attrs;
	struct usip_event_info event = {};
	u32 repeat = 1, queued = 0, dropped = 0, i;
	struct sk_buff *reply;
	u64 seq = 0, last = 0;
	void *hdr;
	int err;

	if (!usip_allow_inject) {
		NL_SET_ERR_MSG(extack,
			       "event injection is disabled: load usip with allow_inject=1");
		return -EOPNOTSUPP;
	}
	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG(extack,
			       "injecting events needs CAP_SYS_ADMIN in the initial user namespace");
		return -EPERM;
	}
	if (GENL_REQ_ATTR_CHECK(info, USIP_A_EVENT_TYPE) ||
	    GENL_REQ_ATTR_CHECK(info, USIP_A_EVENT_ACTION)) {
		NL_SET_ERR_MSG(extack, "an event needs a type and an action");
		return -EINVAL;
	}
	event.type = nla_get_u32(attrs[USIP_A_EVENT_TYPE]);
	event.action = nla_get_u32(attrs[USIP_A_EVENT_ACTION]);
	if (!usip_action_of_type(event.type, event.action)) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[USIP_A_EVENT_ACTION],
				    "the action is not one of the event's type");
		return -EINVAL;
	}
	if (attrs[USIP_A_EVENT_MOUNT_ID]) {
		event.mount_id = nla_get_u64(attrs[USIP_A_EVENT_MOUNT_ID]);
		event.present |= USIP_EVENT_HAS_MOUNT_ID;
	}
	if (attrs[USIP_A_EVENT_PARENT_ID]) {
		event.parent_id = nla_get_u64(attrs[USIP_A_EVENT_PARENT_ID]);
		event.present |= USIP_EVENT_HAS_PARENT_ID;
	}
	if (attrs[USIP_A_EVENT_DEV]) {
		event.dev = nla_get_u32(attrs[USIP_A_EVENT_DEV]);
		event.present |= USIP_EVENT_HAS_DEV;
	}
	if (attrs[USIP_A_EVENT_COUNT]) {
		event.count = nla_get_u32(attrs[USIP_A_EVENT_COUNT]);
		event.present |= USIP_EVENT_HAS_COUNT;
	}
	if (nla_get_flag(attrs[USIP_A_EVENT_SUBTREE]))
		event.present |= USIP_EVENT_SUBTREE;
	if (attrs[USIP_A_EVENT_PATH])
		event.path = nla_data(attrs[USIP_A_EVENT_PATH]);
	if (attrs[USIP_A_EVENT_FS_TYPE])
		event.fs_type = nla_data(attrs[USIP_A_EVENT_FS_TYPE]);
	if (attrs[USIP_A_EVENT_SOURCE])
		event.source = nla_data(attrs[USIP_A_EVENT_SOURCE]);
	if (attrs[USIP_A_EVENT_REPEAT])
		repeat = nla_get_u32(attrs[USIP_A_EVENT_REPEAT]);

	for (i = 0; i < repeat; i++) {
		err = usip_event_post(&event, usip_mnt_ns_current(), GFP_KERNEL_ACCOUNT, &seq);
		if (err == -ENOENT)
			break;	/* nobody wants it */
		last = seq;
		if (err)
			dropped++;
		else
			queued++;
		if (!(i % 256))
			cond_resched();
	}

	reply = genlmsg_new(2 * nla_total_size(sizeof(u32)) +
			    nla_total_size_64bit(sizeof(u64)), GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_INJECT);
	if (!hdr ||
	    nla_put_u64_64bit(reply, USIP_A_EVENT_SEQ, last, USIP_A_EVENT_PAD) ||
	    nla_put_u32(reply, USIP_A_EVENT_QUEUED, queued) ||
	    nla_put_u32(reply, USIP_A_EVENT_DROPPED, dropped)) {
		nlmsg_free(reply);
		return -EMSGSIZE;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

/* The host-wide counters, for the initial user namespace's administrators. */
static int usip_put_host_stats(struct sk_buff *reply)
{
	unsigned long flags;
	u32 queued;
	u64 posted;

	spin_lock_irqsave(&usip_queue_lock, flags);
	queued = usip_queued;
	posted = usip_seq;
	spin_unlock_irqrestore(&usip_queue_lock, flags);
	if (nla_put_u32(reply, USIP_A_STATS_QUEUED, queued) ||
	    nla_put_u32(reply, USIP_A_STATS_QUEUE_LIMIT, READ_ONCE(usip_event_queue_len)) ||
	    nla_put_u64_64bit(reply, USIP_A_STATS_POSTED, posted, USIP_A_STATS_PAD) ||
	    nla_put_u64_64bit(reply, USIP_A_STATS_DROPPED,
			      atomic64_read(&usip_dropped), USIP_A_STATS_PAD) ||
	    nla_put_u64_64bit(reply, USIP_A_STATS_DELIVERED,
			      atomic64_read(&usip_delivered), USIP_A_STATS_PAD) ||
	    nla_put_u64_64bit(reply, USIP_A_STATS_UNDELIVERABLE,
			      atomic64_read(&usip_undeliverable), USIP_A_STATS_PAD) ||
	    nla_put_u32(reply, USIP_A_STATS_OBJECTS, atomic_read(&usip_objects)) ||
	    nla_put_u32(reply, USIP_A_STATS_MOUNT_HOOKS, usip_mount_hooks_armed()) ||
	    nla_put_u32(reply, USIP_A_STATS_STORAGE_HOOKS, usip_storage_hooks_armed()) ||
	    nla_put_u32(reply, USIP_A_STATS_COALESCE_SLOTS, usip_coalesce_slots()) ||
	    nla_put_u64_64bit(reply, USIP_A_STATS_SPACE_ERRORS_UNREPORTED,
			      usip_space_errors_unreported(), USIP_A_STATS_PAD) ||
	    nla_put_u32(reply, USIP_A_STATS_STATFS_PENDING, usip_statfs_pending_count()))
		return -EMSGSIZE;
	return 0;
}

int usip_nl_stats_doit(struct sk_buff *skb, struct genl_info *info)
{
	/* Others see their own: host-wide counts would tell of other users and containers. */
	bool host = netlink_capable(skb, CAP_SYS_ADMIN);
	struct sk_buff *reply;
	void *hdr;
	int err;

	/*
	 * listeners, notifiers, queued, queue-limit, objects, mount-hooks, scope,
	 * storage-hooks, coalesce-slots, watched-mounts, statfs-pending; posted,
	 * dropped, delivered, undeliverable, space-errors-unreported
	 */
	reply = genlmsg_new(11 * nla_total_size(sizeof(u32)) +
			    5 * nla_total_size_64bit(sizeof(u64)), GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_STATS);
	err = hdr ? usip_listeners_fill_stats(reply, host) : -EMSGSIZE;
	if (!err && host)
		err = usip_put_host_stats(reply);
	if (!err)
		err = nla_put_u32(reply, USIP_A_STATS_SCOPE,
				  host ? USIP_STATS_SCOPE_HOST : USIP_STATS_SCOPE_USER);
	if (err) {
		nlmsg_free(reply);
		return err;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

int usip_events_init(void)
{
	/* Ordered: listeners get events in the order they were posted. */
	usip_event_wq = alloc_ordered_workqueue("usip_events", 0);
	return usip_event_wq ? 0 : -ENOMEM;
}

/* Stops delivery: later posts are dropped, queued events discarded. */
void usip_events_stop(void)
{
	unsigned long flags;

	spin_lock_irqsave(&usip_queue_lock, flags);
	usip_stopping = true;
	spin_unlock_irqrestore(&usip_queue_lock, flags);
	/* Let a delivery in progress finish while the family is registered. */
	flush_workqueue(usip_event_wq);
}

void usip_events_exit(void)
{
	/* Runs the work once more for events posted while stopping. */
	destroy_workqueue(usip_event_wq);
	WARN_ON(!list_empty(&usip_queue));
}

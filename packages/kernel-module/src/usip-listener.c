// SPDX-License-Identifier: GPL-2.0
/*
 * Listeners: a process registers one with a list of notifiers, and the
 * events its notifiers match are sent to the netlink socket it registered
 * from. A listener belongs to that socket and is removed when the socket is
 * released (NETLINK_URELEASE), so a process that exits or is killed leaves
 * nothing behind.
 *
 * Locking: usip_listeners_lock (a mutex) serialises every change and the
 * event delivery worker. Producers of events only read the list under RCU to
 * learn whether anybody wants an event, and touch nothing but immutable
 * fields and atomics. The list is kept grouped by network namespace so that
 * delivery sends one multicast copy per namespace in one pass.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/user_namespace.h>
#include <linux/xarray.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "usip.h"
#include "usip-internals.h"
#include "usip-nl-gen.h"

#define USIP_NOTIFIER_HAS_CMD		BIT(0)
#define USIP_NOTIFIER_HAS_MOUNT_ID	BIT(1)
#define USIP_NOTIFIER_HAS_THRESHOLD	BIT(2)

struct usip_notifier {
	u32 type;
	u32 action;
	u32 cmd;
	u32 flags;
	u32 threshold;
	u32 present;		/* USIP_NOTIFIER_HAS_* */
	u64 mount_id;
	char *path_prefix;	/* without trailing slashes, except "/" */
	size_t path_prefix_len;
};

struct usip_listener {
	struct list_head node;		/* in usip_listeners, RCU */
	struct list_head gone;		/* on a local list while being freed */
	struct rcu_head rcu;
	u32 id;
	u32 flags;			/* USIP_LISTENER_FLAGS_* */
	u32 portid;
	possible_net_t net;
	struct sock *sk;		/* the registering socket, held */
	struct ns_common *mnt_ns;	/* where it was registered */
	struct user_namespace *user_ns;	/* of the registering process */
	struct pid_namespace *pid_ns;	/* likewise */
	struct pid *owner;
	kuid_t uid;
	atomic64_t delivered;
	atomic64_t missed_total;
	atomic_t missed_pending;	/* not yet reported in an event */
	/* The newest seq dropped from the queue for this listener. */
	atomic64_t last_drop_seq;
	unsigned int n_notifiers;
	struct usip_notifier *notifiers;
	/* Holds its namespace's ns-seq state (mnt-ns scope). */
	bool holds_mntns;
	/* Holds the mount hooks armed (it has an mtab notifier). */
	bool holds_hooks;
	/*
	 * Its root directory, relative to its namespace's root, when that is
	 * not "/" (a chrooted listener): mount events' paths are given to it,
	 * and matched against its path-prefix selectors, relative to it.
	 */
	char *root_prefix;
	size_t root_prefix_len;
};

static DEFINE_MUTEX(usip_listeners_lock);
static LIST_HEAD(usip_listeners);
static DEFINE_XARRAY_ALLOC1(usip_listener_ids);
static u32 usip_next_listener_id;
static unsigned int usip_n_listeners;
static unsigned int usip_n_notifiers;
static struct kmem_cache *usip_listener_cache;

static struct net *usip_listener_net(const struct usip_listener *l)
{
	return read_pnet(&l->net);
}

/* Whole path components: /mnt matches /mnt and /mnt/a, not /mnta. */
static bool usip_path_below(const char *path, const char *prefix, size_t len)
{
	if (strncmp(path, prefix, len) != 0)
		return false;
	return path[len] == '\0' || path[len] == '/' ||
	       (len > 0 && prefix[len - 1] == '/');
}

/*
 * @ev's path as @l sees it: a mount event's path (relative to the namespace's
 * root) from @l's root; NULL when it lies outside. Injected events' paths
 * are taken as they were given.
 */
static const char *usip_listener_path(const struct usip_listener *l,
				      const struct usip_event *ev)
{
	const char *path = ev->info.path;
	size_t len = l->root_prefix_len;

	if (!path || !l->root_prefix || !(ev->info.present & USIP_EVENT_MOUNT_CHANGE))
		return path;
	if (strncmp(path, l->root_prefix, len) ||
	    (path[len] != '/' && path[len] != '\0'))
		return NULL;
	return path[len] ? path + len : "/";
}

static bool usip_notifier_matches(const struct usip_notifier *n,
				  const struct usip_event *ev, const char *path)
{
	const struct usip_event_info *info = &ev->info;

	if (n->type != info->type || n->action != info->action)
		return false;
	if ((n->present & USIP_NOTIFIER_HAS_MOUNT_ID) &&
	    (!(info->present & USIP_EVENT_HAS_MOUNT_ID) ||
	     info->mount_id != n->mount_id))
		return false;
	if (n->path_prefix &&
	    (!path || !usip_path_below(path, n->path_prefix, n->path_prefix_len)))
		return false;
	return true;
}

static bool usip_listener_in_scope(const struct usip_listener *l,
				   const struct usip_event *ev)
{
	return (l->flags & USIP_LISTENER_FLAGS_GLOBAL) || l->mnt_ns == ev->mnt_ns;
}

/*
 * The notifier flags of every notifier of @l that matches @ev, or 0. The
 * first matching notifier with the notify flag gives the cmd echoed to @l.
 */
static u32 usip_listener_match(const struct usip_listener *l,
			       const struct usip_event *ev,
			       const struct usip_notifier **first)
{
	const char *path = usip_listener_path(l, ev);
	u32 what = 0;
	unsigned int i;

	*first = NULL;
	if (!usip_listener_in_scope(l, ev))
		return 0;
	for (i = 0; i < l->n_notifiers; i++) {
		const struct usip_notifier *n = &l->notifiers[i];

		if (!usip_notifier_matches(n, ev, path))
			continue;
		if ((n->flags & USIP_NOTIFIER_FLAGS_NOTIFY) && !*first)
			*first = n;
		what |= n->flags;
	}
	return what;
}

/*
 * An event with sequence number @seq was dropped before reaching @l. The
 * miss is reported with the first event after it in sequence order: events
 * queued before the drop are delivered later but do not carry it.
 */
static void usip_listener_count_drop(struct usip_listener *l, u64 seq)
{
	s64 last = atomic64_read(&l->last_drop_seq);

	/* Raise the mark first (fully ordered) so that no delivery takes the miss early. */
	while (last < (s64)seq) {
		s64 seen = atomic64_cmpxchg(&l->last_drop_seq, last, seq);

		if (seen == last)
			break;
		last = seen;
	}
	atomic_inc(&l->missed_pending);
	atomic64_inc(&l->missed_total);
}

bool usip_listeners_want(const struct usip_event *ev, bool drop)
{
	const struct usip_notifier *first;
	struct usip_listener *l;
	bool wanted = false;
	u32 what;

	rcu_read_lock();
	list_for_each_entry_rcu(l, &usip_listeners, node) {
		what = usip_listener_match(l, ev, &first);
		if (!what)
			continue;
		wanted = true;
		if (!drop)
			break;
		if (what & USIP_NOTIFIER_FLAGS_NOTIFY)
			usip_listener_count_drop(l, ev->seq);
	}
	rcu_read_unlock();
	return wanted;
}

static void usip_listener_log(const struct usip_listener *l,
			      const struct usip_event *ev)
{
	const struct usip_event_info *info = &ev->info;
	const char *path = info->path ?: "-";
	const char *source = info->source ?: "-";
	char mount_id[24] = "-";

	if (info->present & USIP_EVENT_HAS_MOUNT_ID)
		snprintf(mount_id, sizeof(mount_id), "%llu", info->mount_id);
	/* Paths come from users: escape what is not printable. */
	pr_info_ratelimited("listener %u: %s %s seq %llu mnt-ns %u mount-id %s path %*pE fs-type %s source %*pE pid %d uid %u\n",
			    l->id, usip_type_name(info->type),
			    usip_action_name(info->action), ev->seq,
			    usip_mnt_ns_inum(ev->mnt_ns), mount_id,
			    (int)strlen(path), path, info->fs_type ?: "-",
			    (int)strlen(source), source, pid_nr(ev->pid),
			    from_kuid(&init_user_ns, ev->uid));
}

static void usip_listener_unicast(struct usip_listener *l,
				  const struct usip_event *ev,
				  const struct usip_notifier *notifier)
{
	struct usip_event_dest dest = {
		.listener_id = l->id,
		.path = usip_listener_path(l, ev),
		.own_path = true,
		.cmd = notifier->cmd,
		.has_cmd = notifier->present & USIP_NOTIFIER_HAS_CMD,
		.pid_ns = l->pid_ns,
		.user_ns = l->user_ns,
	};
	struct sk_buff *skb;
	u32 missed;
	int err;

	/* Released, and about to lose its listeners; its port id may be reused. */
	if (sock_flag(l->sk, SOCK_DEAD))
		return;
	/* Misses of events after this one wait for a later event. */
	missed = ev->seq > (u64)atomic64_read(&l->last_drop_seq) ?
		 atomic_xchg(&l->missed_pending, 0) : 0;
	dest.missed = missed;
	skb = usip_event_build(ev, &dest);
	/* A full receive buffer gives -EAGAIN, and the socket ENOBUFS. */
	err = skb ? genlmsg_unicast(usip_listener_net(l), skb, l->portid)
		  : -ENOMEM;
	if (err) {
		/* The lost message also carried the earlier misses. */
		atomic_add(missed, &l->missed_pending);
		usip_listener_count_drop(l, ev->seq);
		usip_event_count_delivery(false);
		return;
	}
	atomic64_inc(&l->delivered);
	usip_event_count_delivery(true);
}

void usip_listeners_deliver(const struct usip_event *ev)
{
	const struct usip_notifier *first;
	struct usip_listener *l;
	struct net *net = NULL;
	bool matched_in_net = false;
	u32 what;

	mutex_lock(&usip_listeners_lock);
	list_for_each_entry(l, &usip_listeners, node) {
		if (usip_listener_net(l) != net) {
			if (matched_in_net)
				usip_event_multicast(ev, net);
			net = usip_listener_net(l);
			matched_in_net = false;
		}
		what = usip_listener_match(l, ev, &first);
		if (what & USIP_NOTIFIER_FLAGS_KERN_LOG)
			usip_listener_log(l, ev);
		if (first) {
			usip_listener_unicast(l, ev, first);
			matched_in_net = true;
		}
	}
	if (matched_in_net)
		usip_event_multicast(ev, net);
	mutex_unlock(&usip_listeners_lock);
}

/*
 * Tells each listener with misses not yet reported how many, in a missed
 * message: the queue has drained, so no queued event will carry them. A
 * socket that cannot take it keeps them for the next event or report.
 */
void usip_listeners_report_missed(void)
{
	struct usip_listener *l;

	mutex_lock(&usip_listeners_lock);
	list_for_each_entry(l, &usip_listeners, node) {
		struct sk_buff *skb;
		u32 missed;
		void *hdr;

		if (!atomic_read(&l->missed_pending) || sock_flag(l->sk, SOCK_DEAD))
			continue;
		skb = genlmsg_new(2 * nla_total_size(sizeof(u32)), GFP_KERNEL);
		if (!skb)
			break;
		missed = atomic_xchg(&l->missed_pending, 0);
		hdr = genlmsg_put(skb, 0, 0, &usip_family, 0, USIP_CMD_MISSED);
		if (!hdr || nla_put_u32(skb, USIP_A_EVENT_LISTENER_ID, l->id) ||
		    nla_put_u32(skb, USIP_A_EVENT_MISSED, missed)) {
			/* Two attributes in a fresh message: cannot happen. */
			nlmsg_free(skb);
			atomic_add(missed, &l->missed_pending);
			continue;
		}
		genlmsg_end(skb, hdr);
		if (genlmsg_unicast(usip_listener_net(l), skb, l->portid))
			atomic_add(missed, &l->missed_pending);
	}
	mutex_unlock(&usip_listeners_lock);
}

void usip_listener_stats(u32 *listeners, u32 *notifiers)
{
	*listeners = READ_ONCE(usip_n_listeners);
	*notifiers = READ_ONCE(usip_n_notifiers);
}

static void usip_listener_free_rcu(struct rcu_head *head)
{
	struct usip_listener *l = container_of(head, struct usip_listener, rcu);
	unsigned int i;

	for (i = 0; l->notifiers && i < l->n_notifiers; i++)
		usip_kfree(l->notifiers[i].path_prefix);
	usip_kfree(l->root_prefix);
	usip_kfree(l->notifiers);
	kmem_cache_free(usip_listener_cache, l);
	atomic_dec(&usip_objects);
}

/*
 * Drops what @l references and frees it once RCU readers are done with it.
 * @l must be unreachable for new lookups. Process context: dropping the
 * mount namespace may sleep.
 */
static void usip_listener_release(struct usip_listener *l)
{
	if (l->holds_hooks)
		usip_mount_hooks_put(l->flags & USIP_LISTENER_FLAGS_GLOBAL);
	if (l->holds_mntns)
		usip_mntns_put(l->mnt_ns);
	usip_mnt_ns_put(l->mnt_ns);
	if (l->user_ns)
		put_user_ns(l->user_ns);
	if (l->pid_ns)
		put_pid_ns(l->pid_ns);
	put_pid(l->owner);
	if (l->sk)
		sock_put(l->sk);
	call_rcu(&l->rcu, usip_listener_free_rcu);
}

static void usip_listener_unlink(struct usip_listener *l)
{
	lockdep_assert_held(&usip_listeners_lock);
	list_del_rcu(&l->node);
	xa_erase(&usip_listener_ids, l->id);
	WRITE_ONCE(usip_n_listeners, usip_n_listeners - 1);
	WRITE_ONCE(usip_n_notifiers, usip_n_notifiers - l->n_notifiers);
}

static int usip_notifier_parse(struct usip_notifier *n, const struct nlattr *nest,
			       struct netlink_ext_ack *extack)
{
	struct nlattr *tb[USIP_A_NOTIFIER_MAX + 1];
	const char *prefix;
	size_t len;
	int err;

	err = nla_parse_nested(tb, USIP_A_NOTIFIER_MAX, nest,
			       usip_notifier_nl_policy, extack);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(extack, nest, tb, USIP_A_NOTIFIER_TYPE) ||
	    NL_REQ_ATTR_CHECK(extack, nest, tb, USIP_A_NOTIFIER_ACTION) ||
	    NL_REQ_ATTR_CHECK(extack, nest, tb, USIP_A_NOTIFIER_FLAGS)) {
		NL_SET_ERR_MSG(extack, "a notifier needs a type, an action and flags");
		return -EINVAL;
	}
	n->type = nla_get_u32(tb[USIP_A_NOTIFIER_TYPE]);
	n->action = nla_get_u32(tb[USIP_A_NOTIFIER_ACTION]);
	n->flags = nla_get_u32(tb[USIP_A_NOTIFIER_FLAGS]);
	if (!usip_action_of_type(n->type, n->action)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_ACTION],
				    "the action is not one of the notifier's type");
		return -EINVAL;
	}
	if (!n->flags) {
		NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_FLAGS],
				    "a notifier needs notify, kern-log or both");
		return -EINVAL;
	}
	if (tb[USIP_A_NOTIFIER_CMD]) {
		n->cmd = nla_get_u32(tb[USIP_A_NOTIFIER_CMD]);
		n->present |= USIP_NOTIFIER_HAS_CMD;
	}
	if (tb[USIP_A_NOTIFIER_MOUNT_ID]) {
		n->mount_id = nla_get_u64(tb[USIP_A_NOTIFIER_MOUNT_ID]);
		n->present |= USIP_NOTIFIER_HAS_MOUNT_ID;
	}
	if (tb[USIP_A_NOTIFIER_THRESHOLD]) {
		n->threshold = nla_get_u32(tb[USIP_A_NOTIFIER_THRESHOLD]);
		n->present |= USIP_NOTIFIER_HAS_THRESHOLD;
	}
	if (tb[USIP_A_NOTIFIER_PATH_PREFIX]) {
		prefix = nla_data(tb[USIP_A_NOTIFIER_PATH_PREFIX]);
		len = strlen(prefix);
		if (prefix[0] != '/') {
			NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_PATH_PREFIX],
					    "path-prefix must be an absolute path");
			return -EINVAL;
		}
		while (len > 1 && prefix[len - 1] == '/')
			len--;
		n->path_prefix = kstrndup(prefix, len, GFP_KERNEL);
		if (!n->path_prefix)
			return -ENOMEM;
		atomic_inc(&usip_objects);
		n->path_prefix_len = len;
	}
	return 0;
}

static unsigned int usip_count_notifiers(const struct genl_info *info)
{
	const struct nlattr *nla;
	unsigned int count = 0;
	int rem;

	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem)
		if (nla_type(nla) == USIP_A_LISTENER_NOTIFIER)
			count++;
	return count;
}

static unsigned int usip_listeners_of(kuid_t uid)
{
	struct usip_listener *l;
	unsigned int count = 0;

	list_for_each_entry(l, &usip_listeners, node)
		if (uid_eq(l->uid, uid))
			count++;
	return count;
}

/* Adds @l after the last listener of its network namespace, or at the end. */
static void usip_listener_insert(struct usip_listener *l)
{
	struct list_head *after = usip_listeners.prev;
	struct usip_listener *other;

	list_for_each_entry(other, &usip_listeners, node)
		if (usip_listener_net(other) == usip_listener_net(l))
			after = &other->node;
	list_add_rcu(&l->node, after);
}

static const char *const usip_group_names[] = {
	[USIP_EVENT_TYPE_MTAB] = USIP_MCGRP_MTAB,
	[USIP_EVENT_TYPE_STORAGE] = USIP_MCGRP_STORAGE,
};

/* The multicast groups @l's events are copied to, as a mask of types. */
static u32 usip_listener_types(const struct usip_listener *l)
{
	u32 types = 0;
	unsigned int i;

	for (i = 0; i < l->n_notifiers; i++)
		types |= BIT(l->notifiers[i].type);
	return types;
}

static int usip_put_groups(struct sk_buff *skb, const struct usip_listener *l)
{
	u32 types = usip_listener_types(l);
	u32 type;

	for (type = USIP_EVENT_TYPE_MTAB; type <= USIP_EVENT_TYPE_STORAGE; type++)
		if ((types & BIT(type)) &&
		    nla_put_string(skb, USIP_A_LISTENER_GROUP,
				   usip_group_names[type]))
			return -EMSGSIZE;
	return 0;
}

/* The size of @l's listener-get message, attributes and headers included. */
static size_t usip_listener_msg_size(const struct usip_listener *l)
{
	size_t size = nlmsg_total_size(GENL_HDRLEN);
	unsigned int i;

	/* id, flags, scope, owner-pid, owner-uid, port-id; two groups */
	size += 6 * nla_total_size(sizeof(u32)) +
		2 * nla_total_size(sizeof(USIP_MCGRP_STORAGE));
	/* mnt-ns, delivered, missed */
	size += 3 * nla_total_size_64bit(sizeof(u64));
	for (i = 0; i < l->n_notifiers; i++) {
		const struct usip_notifier *n = &l->notifiers[i];

		size += nla_total_size(0) + 5 * nla_total_size(sizeof(u32)) +
			nla_total_size_64bit(sizeof(u64));
		if (n->path_prefix)
			size += nla_total_size(n->path_prefix_len + 1);
	}
	return size;
}

static u32 usip_listener_scope(const struct usip_listener *l)
{
	return l->flags & USIP_LISTENER_FLAGS_GLOBAL ? USIP_SCOPE_GLOBAL :
						       USIP_SCOPE_MNT_NS;
}

static int usip_register_reply(struct genl_info *info,
			       const struct usip_listener *l)
{
	struct sk_buff *reply;
	void *hdr;

	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &usip_family, 0,
				USIP_CMD_LISTENER_REGISTER);
	if (!hdr ||
	    nla_put_u32(reply, USIP_A_LISTENER_ID, l->id) ||
	    usip_put_groups(reply, l) ||
	    nla_put_u32(reply, USIP_A_LISTENER_SCOPE, usip_listener_scope(l)) ||
	    nla_put_u64_64bit(reply, USIP_A_LISTENER_MNT_NS,
			      usip_mnt_ns_inum(l->mnt_ns),
			      USIP_A_LISTENER_PAD)) {
		nlmsg_free(reply);
		return -EMSGSIZE;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

int usip_nl_listener_register_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	const struct nlattr *flags_attr = info->attrs[USIP_A_LISTENER_FLAGS];
	struct usip_listener *l;
	const struct nlattr *nla;
	unsigned int count, i = 0;
	int rem, err;

	count = usip_count_notifiers(info);
	if (!count) {
		NL_SET_ERR_ATTR_MISS(extack, NULL, USIP_A_LISTENER_NOTIFIER);
		NL_SET_ERR_MSG(extack, "a listener needs at least one notifier");
		return -EINVAL;
	}
	if (count > READ_ONCE(usip_max_notifiers_per_listener)) {
		NL_SET_ERR_MSG(extack,
			       "more notifiers than usip.max_notifiers_per_listener allows");
		return -E2BIG;
	}

	l = kmem_cache_zalloc(usip_listener_cache, GFP_KERNEL);
	if (!l)
		return -ENOMEM;
	atomic_inc(&usip_objects);
	l->flags = flags_attr ? nla_get_u32(flags_attr) : 0;
	l->owner = get_pid(task_tgid(current));
	l->notifiers = kcalloc(count, sizeof(*l->notifiers), GFP_KERNEL);
	if (!l->notifiers) {
		err = -ENOMEM;
		goto free;
	}
	atomic_inc(&usip_objects);
	l->n_notifiers = count;
	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem) {
		if (nla_type(nla) != USIP_A_LISTENER_NOTIFIER)
			continue;
		err = usip_notifier_parse(&l->notifiers[i++], nla, extack);
		if (err)
			goto free;
	}
	/* Every listener must fit in one message of a default-sized dump. */
	if (usip_listener_msg_size(l) > NLMSG_GOODSIZE) {
		NL_SET_ERR_MSG(extack,
			       "the notifiers are too large to be listed in one netlink message");
		err = -E2BIG;
		goto free;
	}
	if ((l->flags & USIP_LISTENER_FLAGS_GLOBAL) &&
	    !netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG_ATTR(extack, flags_attr,
				    "a global listener needs CAP_SYS_ADMIN in the initial user namespace");
		err = -EPERM;
		goto free;
	}

	l->uid = current_euid();
	l->user_ns = get_user_ns(current_user_ns());
	l->pid_ns = get_pid_ns(task_active_pid_ns(current));
	l->mnt_ns = usip_mnt_ns_get_current();
	write_pnet(&l->net, genl_info_net(info));
	l->portid = info->snd_portid;
	l->sk = NETLINK_CB(skb).sk;
	sock_hold(l->sk);
	if (usip_k.mount_table) {
		l->root_prefix = usip_root_prefix();
		if (IS_ERR(l->root_prefix)) {
			err = PTR_ERR(l->root_prefix);
			l->root_prefix = NULL;
			goto free;
		}
		if (l->root_prefix)
			l->root_prefix_len = strlen(l->root_prefix);
	}
	/* Before it is listed, so that no change after the reply goes unseen. */
	if (!(l->flags & USIP_LISTENER_FLAGS_GLOBAL)) {
		err = usip_mntns_get(l->mnt_ns);
		if (err)
			goto free;
		l->holds_mntns = true;
	}
	if (usip_listener_types(l) & BIT(USIP_EVENT_TYPE_MTAB)) {
		usip_mount_hooks_get(l->flags & USIP_LISTENER_FLAGS_GLOBAL);
		l->holds_hooks = true;
	}

	mutex_lock(&usip_listeners_lock);
	if (usip_listeners_of(l->uid) >=
	    READ_ONCE(usip_max_listeners_per_user)) {
		mutex_unlock(&usip_listeners_lock);
		NL_SET_ERR_MSG(extack,
			       "this user already has usip.max_listeners_per_user listeners");
		err = -EMFILE;
		goto free;
	}
	err = xa_alloc_cyclic(&usip_listener_ids, &l->id, l, xa_limit_32b,
			      &usip_next_listener_id, GFP_KERNEL);
	if (err < 0) {
		mutex_unlock(&usip_listeners_lock);
		goto free;
	}
	usip_listener_insert(l);
	WRITE_ONCE(usip_n_listeners, usip_n_listeners + 1);
	WRITE_ONCE(usip_n_notifiers, usip_n_notifiers + l->n_notifiers);
	mutex_unlock(&usip_listeners_lock);

	/*
	 * If the reply cannot be sent the listener stays: it belongs to the
	 * socket, and listener-get or the socket's release deal with it.
	 */
	return usip_register_reply(info, l);

free:
	usip_listener_release(l);
	return err;
}

int usip_nl_listener_unregister_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct usip_listener *l;
	u32 id;

	if (GENL_REQ_ATTR_CHECK(info, USIP_A_LISTENER_ID)) {
		NL_SET_ERR_MSG(info->extack, "unregistering needs the listener's id");
		return -EINVAL;
	}
	id = nla_get_u32(info->attrs[USIP_A_LISTENER_ID]);

	mutex_lock(&usip_listeners_lock);
	l = xa_load(&usip_listener_ids, id);
	if (!l || !net_eq(usip_listener_net(l), genl_info_net(info))) {
		mutex_unlock(&usip_listeners_lock);
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[USIP_A_LISTENER_ID],
				    "no listener with this id in this network namespace");
		return -ENOENT;
	}
	if (l->sk != NETLINK_CB(skb).sk && !uid_eq(l->uid, current_euid()) &&
	    !netlink_ns_capable(skb, l->user_ns, CAP_SYS_ADMIN)) {
		mutex_unlock(&usip_listeners_lock);
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[USIP_A_LISTENER_ID],
				    "only the listener's owner or CAP_SYS_ADMIN may remove it");
		return -EPERM;
	}
	usip_listener_unlink(l);
	mutex_unlock(&usip_listeners_lock);
	usip_listener_release(l);
	return 0;
}

static bool usip_listener_visible(const struct usip_listener *l,
				  const struct sk_buff *request)
{
	return net_eq(usip_listener_net(l), sock_net(request->sk)) &&
	       (uid_eq(l->uid, current_euid()) ||
		netlink_ns_capable(request, l->user_ns, CAP_SYS_ADMIN));
}

static int usip_put_notifier(struct sk_buff *skb, const struct usip_notifier *n)
{
	struct nlattr *nest = nla_nest_start(skb, USIP_A_LISTENER_NOTIFIER);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, USIP_A_NOTIFIER_TYPE, n->type) ||
	    nla_put_u32(skb, USIP_A_NOTIFIER_ACTION, n->action) ||
	    nla_put_u32(skb, USIP_A_NOTIFIER_FLAGS, n->flags) ||
	    ((n->present & USIP_NOTIFIER_HAS_CMD) &&
	     nla_put_u32(skb, USIP_A_NOTIFIER_CMD, n->cmd)) ||
	    ((n->present & USIP_NOTIFIER_HAS_MOUNT_ID) &&
	     nla_put_u64_64bit(skb, USIP_A_NOTIFIER_MOUNT_ID, n->mount_id,
			       USIP_A_NOTIFIER_PAD)) ||
	    ((n->present & USIP_NOTIFIER_HAS_THRESHOLD) &&
	     nla_put_u32(skb, USIP_A_NOTIFIER_THRESHOLD, n->threshold)) ||
	    (n->path_prefix &&
	     nla_put_string(skb, USIP_A_NOTIFIER_PATH_PREFIX, n->path_prefix))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int usip_listener_fill(struct sk_buff *skb, const struct usip_listener *l,
			      struct netlink_callback *cb)
{
	void *hdr;
	unsigned int i;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &usip_family, NLM_F_MULTI, USIP_CMD_LISTENER_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, USIP_A_LISTENER_ID, l->id) ||
	    nla_put_u32(skb, USIP_A_LISTENER_FLAGS, l->flags) ||
	    nla_put_u32(skb, USIP_A_LISTENER_SCOPE, usip_listener_scope(l)) ||
	    nla_put_u64_64bit(skb, USIP_A_LISTENER_MNT_NS,
			      usip_mnt_ns_inum(l->mnt_ns), USIP_A_LISTENER_PAD) ||
	    nla_put_u32(skb, USIP_A_LISTENER_OWNER_PID, pid_vnr(l->owner)) ||
	    nla_put_u32(skb, USIP_A_LISTENER_OWNER_UID,
			from_kuid_munged(current_user_ns(), l->uid)) ||
	    nla_put_u32(skb, USIP_A_LISTENER_PORT_ID, l->portid) ||
	    usip_put_groups(skb, l) ||
	    nla_put_u64_64bit(skb, USIP_A_LISTENER_DELIVERED,
			      atomic64_read(&l->delivered), USIP_A_LISTENER_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_LISTENER_MISSED,
			      atomic64_read(&l->missed_total),
			      USIP_A_LISTENER_PAD))
		goto cancel;
	for (i = 0; i < l->n_notifiers; i++)
		if (usip_put_notifier(skb, &l->notifiers[i]))
			goto cancel;
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

int usip_nl_listener_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct usip_listener *l;
	unsigned long id;
	int err = 0;

	mutex_lock(&usip_listeners_lock);
	/* cb->args[0]: the id to resume from, so a dump survives many recvs. */
	xa_for_each_start(&usip_listener_ids, id, l, cb->args[0]) {
		if (!usip_listener_visible(l, cb->skb))
			continue;
		err = usip_listener_fill(skb, l, cb);
		if (err)
			break;
		cb->args[0] = id + 1;
	}
	mutex_unlock(&usip_listeners_lock);
	/* A listener too big for an empty message would stall the dump. */
	if (err && !skb->len)
		return err;
	return skb->len;
}

static int usip_netlink_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct netlink_notify *n = ptr;
	struct usip_listener *l, *tmp;
	LIST_HEAD(gone);

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC ||
	    !READ_ONCE(usip_n_listeners))
		return NOTIFY_DONE;

	mutex_lock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &usip_listeners, node) {
		/*
		 * The port id was freed before this notification, so a new
		 * socket may already have it: only the released (dead) socket's
		 * listeners go.
		 */
		if (l->portid != n->portid ||
		    !net_eq(usip_listener_net(l), n->net) ||
		    !sock_flag(l->sk, SOCK_DEAD))
			continue;
		usip_listener_unlink(l);
		list_add(&l->gone, &gone);
	}
	mutex_unlock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &gone, gone)
		usip_listener_release(l);
	return NOTIFY_DONE;
}

static struct notifier_block usip_netlink_notifier = {
	.notifier_call = usip_netlink_event,
};

int usip_listeners_init(void)
{
	int err;

	usip_listener_cache = KMEM_CACHE(usip_listener, 0);
	if (!usip_listener_cache)
		return -ENOMEM;
	err = netlink_register_notifier(&usip_netlink_notifier);
	if (err)
		kmem_cache_destroy(usip_listener_cache);
	return err;
}

void usip_listeners_exit(void)
{
	struct usip_listener *l, *tmp;
	LIST_HEAD(gone);

	netlink_unregister_notifier(&usip_netlink_notifier);
	mutex_lock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &usip_listeners, node) {
		usip_listener_unlink(l);
		list_add(&l->gone, &gone);
	}
	mutex_unlock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &gone, gone)
		usip_listener_release(l);
	/* Wait for the frees queued by usip_listener_release(). */
	rcu_barrier();
	xa_destroy(&usip_listener_ids);
	kmem_cache_destroy(usip_listener_cache);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Listeners: a process registers one with a list of notifiers, and the
 * events its notifiers match are sent to the netlink socket it registered
 * from. A listener belongs to that socket and is removed when the socket is
 * released (NETLINK_URELEASE), so a process that exits or is killed leaves
 * nothing behind.
 *
 * Where events look for listeners: a listener of mnt-ns scope is on the list
 * of its mount namespace's state (struct usip_mntns), a global one on the
 * global list, so posting an event walks only the listeners that may want
 * it. Both lists are RCU lists, changed under usip_listeners_lock (a mutex),
 * which also guards the list of all listeners and the per-user records.
 *
 * What one user may impose on others is bounded: a user (effective uid) has
 * at most max_listeners_per_user listeners, the events queued for one
 * listener at most listener_queue_len and for all of one user's listeners at
 * most user_queue_len (of event_queue_len in all): a listener whose share is
 * used up misses the event (and is told), nobody else does. The recipients
 * of an event, and their shares, are taken when it is posted.
 *
 * Paths are given as each listener sees them: relative to its root directory
 * (a chrooted listener never learns of a mount outside its root, with a path
 * or without), and pids and uids in its own pid and user namespaces.
 *
 * Messages go straight to the registering socket (not to its port id, which
 * a new socket may take over as soon as the old one is released).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/fs_struct.h>
#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/path.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rculist.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/user_namespace.h>
#include <linux/workqueue.h>
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
#define USIP_NOTIFIER_HAS_THRESHOLD_INODES BIT(3)
#define USIP_NOTIFIER_HAS_THRESHOLD_BYTES BIT(4)
#define USIP_NOTIFIER_HAS_HYSTERESIS	BIT(5)
#define USIP_NOTIFIER_HAS_INTERVAL	BIT(6)
#define USIP_NOTIFIER_THRESHOLDS	(USIP_NOTIFIER_HAS_THRESHOLD | \
					 USIP_NOTIFIER_HAS_THRESHOLD_INODES | \
					 USIP_NOTIFIER_HAS_THRESHOLD_BYTES)

/* low-space defaults (see the spec's hysteresis and interval-ms). */
#define USIP_LOW_SPACE_HYSTERESIS	5
#define USIP_LOW_SPACE_INTERVAL_MS	1000

struct usip_notifier {
	u32 type;
	u32 action;
	u32 cmd;
	u32 flags;
	u32 threshold;		/* percent of blocks available */
	u32 threshold_inodes;	/* percent of inodes free */
	u32 hysteresis;		/* percent of the threshold */
	u32 interval_ms;
	u32 present;		/* USIP_NOTIFIER_HAS_* */
	u64 threshold_bytes;
	u64 mount_id;
	char *path_prefix;	/* without trailing slashes, except "/" */
	size_t path_prefix_len;
};

/* One effective uid's listeners, and their share of the event queue. */
struct usip_user {
	struct hlist_node node;		/* in usip_users */
	kuid_t uid;
	unsigned int listeners;		/* registered */
	unsigned int refs;		/* listeners not yet freed */
	atomic_t queued;		/* events queued for its listeners */
};

struct usip_listener {
	struct list_head node;		/* in its namespace's or the global list, RCU */
	struct list_head all;		/* in usip_listeners */
	refcount_t refs;		/* the lists, and each event queued for it */
	struct rcu_work free_work;
	bool dead;			/* unlinked: no more events */
	u64 born;			/* its place in the order of registrations */
	u32 id;
	u32 flags;			/* USIP_LISTENER_FLAGS_* */
	u32 portid;
	u32 types;			/* bits of the event types of its notifiers */
	possible_net_t net;
	struct sock *sk;		/* the registering socket, held */
	struct ns_common *mnt_ns;	/* where it was registered */
	struct usip_mntns *scope;	/* mnt-ns scope: that namespace's state */
	struct user_namespace *user_ns;	/* of the registering process */
	struct pid_namespace *pid_ns;	/* likewise */
	struct pid *owner;
	struct usip_user *user;
	kuid_t uid;
	/*
	 * The registering process's root, when it is not its namespace's: paths
	 * are given relative to it. A listener that registered at the
	 * namespace's root follows it, as pivot_root(2) moves the processes whose
	 * root it was, and holds no root.
	 */
	struct path root;
	bool follows_ns_root;
	atomic_t queued;		/* events queued for it */
	atomic64_t delivered;
	atomic64_t missed_total;
	atomic_t missed_pending;	/* not yet reported in an event */
	/* The newest seq dropped from the queue for this listener. */
	atomic64_t last_drop_seq;
	bool has_path_prefix;
	/* Holds the mount hooks armed (it has an mtab notifier). */
	bool holds_hooks;
	bool holds_space_errors;	/* an enospc or edquot notifier armed the syscall hook */
	bool holds_quota;		/* a quota notifier armed the quota warning hook */
	/*
	 * CAP_SYS_ADMIN in the initial user namespace when it registered: it
	 * gets the storage events of every user's processes, not only its own.
	 */
	bool sees_all_users;
	unsigned int n_notifiers;
	struct usip_notifier *notifiers;
	/* Its low-space notifiers' check (usip-low-space.c), or NULL. */
	struct usip_space_watch *space;
};

static DEFINE_MUTEX(usip_listeners_lock);
static LIST_HEAD(usip_listeners);		/* all, under the lock */
static LIST_HEAD(usip_global_listeners);	/* RCU */
static DEFINE_HASHTABLE(usip_users, 6);
static DEFINE_HASHTABLE(usip_mntns_table, 6);	/* RCU */
static DEFINE_XARRAY_ALLOC1(usip_listener_ids);
static u32 usip_next_listener_id;
static unsigned int usip_n_listeners;
static unsigned int usip_n_notifiers;
/* Registrations so far: a listener's born, and what an event's first look saw. */
static atomic64_t usip_births = ATOMIC64_INIT(0);
/* Global listeners with an mtab notifier: every namespace's changes are wanted. */
static atomic_t usip_global_mtab = ATOMIC_INIT(0);
static struct kmem_cache *usip_listener_cache;

static struct net *usip_listener_net(const struct usip_listener *l)
{
	return read_pnet(&l->net);
}

/* --- Mount namespaces with listeners -------------------------------------- */

struct usip_mntns *usip_mntns_find(const struct ns_common *ns)
{
	struct usip_mntns *state;

	/* Under RCU (posting events), or with the lock that changes the table. */
	hash_for_each_possible_rcu(usip_mntns_table, state, node, (unsigned long)ns,
				   lockdep_is_held(&usip_listeners_lock))
		if (state->ns == ns)
			return state;
	return NULL;
}

u64 usip_mntns_seq(const struct ns_common *ns)
{
	struct usip_mntns *state;
	u64 seq = 0;

	rcu_read_lock();
	state = usip_mntns_find(ns);
	if (state)
		seq = READ_ONCE(state->seq);
	rcu_read_unlock();
	return seq;
}

bool usip_mntns_watched(const struct ns_common *ns)
{
	bool watched;

	if (atomic_read(&usip_global_mtab))
		return true;
	rcu_read_lock();
	watched = usip_mntns_find(ns);
	rcu_read_unlock();
	return watched;
}

/* A listener is registered in @ns; usip_listeners_lock held. */
static struct usip_mntns *usip_mntns_get(const struct ns_common *ns)
{
	struct usip_mntns *state;

	lockdep_assert_held(&usip_listeners_lock);
	state = usip_mntns_find(ns);
	if (!state) {
		state = kzalloc(sizeof(*state), GFP_KERNEL_ACCOUNT);
		if (!state)
			return NULL;
		atomic_inc(&usip_objects);
		state->ns = ns;
		INIT_LIST_HEAD(&state->listeners);
		state->gaps_seen = atomic64_read(&usip_mount_gaps);
		hash_add_rcu(usip_mntns_table, &state->node, (unsigned long)ns);
	}
	state->users++;
	return state;
}

static void usip_mntns_put(struct usip_mntns *state)
{
	lockdep_assert_held(&usip_listeners_lock);
	if (--state->users)
		return;
	hash_del_rcu(&state->node);
	kfree_rcu(state, rcu);
	atomic_dec(&usip_objects);
}

/* --- Users ------------------------------------------------------------------ */

static struct usip_user *usip_user_find(kuid_t uid)
{
	struct usip_user *user;

	hash_for_each_possible(usip_users, user, node, __kuid_val(uid))
		if (uid_eq(user->uid, uid))
			return user;
	return NULL;
}

/* @uid's record, made from @fresh if it has none; usip_listeners_lock held. */
static struct usip_user *usip_user_get(kuid_t uid, struct usip_user **fresh)
{
	struct usip_user *user = usip_user_find(uid);

	if (!user) {
		user = *fresh;
		*fresh = NULL;
		user->uid = uid;
		hash_add(usip_users, &user->node, __kuid_val(uid));
	}
	user->refs++;
	return user;
}

static void usip_user_put(struct usip_user *user)
{
	lockdep_assert_held(&usip_listeners_lock);
	if (--user->refs)
		return;
	WARN_ON(atomic_read(&user->queued));
	hash_del(&user->node);
	usip_kfree(user);
}

/* --- Matching --------------------------------------------------------------- */

/* Whole path components: /mnt matches /mnt and /mnt/a, not /mnta. */
static bool usip_path_below(const char *path, const char *prefix, size_t len)
{
	if (strncmp(path, prefix, len) != 0)
		return false;
	return path[len] == '\0' || path[len] == '/' ||
	       (len > 0 && prefix[len - 1] == '/');
}

/*
 * Does @n match @ev, whose path as the listener sees it is @path? With
 * !@path_known (a mount event before its path is worked out) a path-prefix
 * selector may match.
 */
static bool usip_notifier_matches(const struct usip_notifier *n,
				  const struct usip_event *ev, const char *path,
				  bool path_known)
{
	const struct usip_event_info *info = &ev->info;

	if (n->type != info->type || n->action != info->action)
		return false;
	if ((n->present & USIP_NOTIFIER_HAS_MOUNT_ID) &&
	    (!(info->present & USIP_EVENT_HAS_MOUNT_ID) ||
	     info->mount_id != n->mount_id))
		return false;
	if (n->path_prefix && path_known &&
	    (!path || !usip_path_below(path, n->path_prefix, n->path_prefix_len)))
		return false;
	return true;
}

/*
 * The flags of every notifier of @l that matches @ev, or 0. The first
 * matching notifier with the notify flag gives the cmd echoed to @l.
 */
static u32 usip_listener_what(const struct usip_listener *l, const struct usip_event *ev,
			      const char *path, bool path_known,
			      const struct usip_notifier **first)
{
	u32 what = 0;
	unsigned int i;

	*first = NULL;
	if (!(l->types & BIT(ev->info.type)))
		return 0;
	/* A low-space event is for one notifier, which chose its mount already. */
	if ((ev->info.present & USIP_EVENT_TARGETED) && ev->info.target_listener != l->id)
		return 0;
	/* Somebody else's failing processes are not an unprivileged listener's business. */
	if ((ev->info.present & USIP_EVENT_HAS_TASK) && !l->sees_all_users &&
	    !uid_eq(ev->info.uid, l->uid))
		return 0;
	/* A quota id it cannot name is not told (the message would say overflowuid). */
	if ((ev->info.present & USIP_EVENT_HAS_QUOTA) &&
	    !qid_has_mapping(l->user_ns, ev->info.qid))
		return 0;
	for (i = 0; i < l->n_notifiers; i++) {
		const struct usip_notifier *n = &l->notifiers[i];

		if (ev->info.present & USIP_EVENT_TARGETED) {
			if (i != ev->info.target_notifier || n->type != ev->info.type ||
			    n->action != ev->info.action)
				continue;
		} else if (!usip_notifier_matches(n, ev, path, path_known)) {
			continue;
		}
		if ((n->flags & USIP_NOTIFIER_FLAGS_NOTIFY) && !*first)
			*first = n;
		what |= n->flags;
	}
	return what;
}

/*
 * Whose view of a real mount event is the namespace's: a global listener's,
 * and one whose root is the namespace's root. Everybody else has a root
 * elsewhere (chroot, or a root no longer in the namespace at all).
 */
static bool usip_listener_at_ns_root(const struct usip_listener *l,
				     const struct usip_event *ev)
{
	struct path ns_root;

	if ((l->flags & USIP_LISTENER_FLAGS_GLOBAL) || l->follows_ns_root)
		return true;
	ns_root = usip_ns_root_path((struct mnt_namespace *)ev->mnt_ns);
	return path_equal(&l->root, &ns_root);
}

/*
 * @ev is a subtree event about a mount @l does not see: does the subtree
 * hold @l's root, so that mounts it saw went too?
 */
static bool usip_listener_root_in_subtree(const struct usip_listener *l,
					  const struct usip_event *ev)
{
	struct mount *m = usip_real_mount(l->root.mnt);
	int depth;

	if (!ev->info.mount || !(ev->info.present & USIP_EVENT_SUBTREE))
		return false;
	for (depth = 0; depth < USIP_MAX_DEPTH; depth++) {
		if (m == ev->info.mount)
			return true;
		if (!usip_mnt_has_parent(m))
			return false;
		m = usip_mnt_parent(m);
	}
	return false;
}

/*
 * An event with sequence number @seq (0: not numbered) was dropped before
 * reaching @l. The miss is reported with the first event after it in
 * sequence order: events queued before the drop are delivered later but do
 * not carry it.
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

/* Takes one slot of @l's share of the queue, and of its user's; false if either is used up. */
static bool usip_listener_reserve(struct usip_listener *l)
{
	if (atomic_inc_return(&l->queued) > READ_ONCE(usip_listener_queue_len))
		goto listener_full;
	if (atomic_inc_return(&l->user->queued) > READ_ONCE(usip_user_queue_len))
		goto user_full;
	return true;

user_full:
	atomic_dec(&l->user->queued);
listener_full:
	atomic_dec(&l->queued);
	return false;
}

static void usip_listener_unreserve(struct usip_listener *l)
{
	atomic_dec(&l->user->queued);
	atomic_dec(&l->queued);
}

static bool usip_listener_has_room(const struct usip_listener *l)
{
	return atomic_read(&l->queued) < READ_ONCE(usip_listener_queue_len) &&
	       atomic_read(&l->user->queued) < READ_ONCE(usip_user_queue_len);
}

static void usip_listener_put(struct usip_listener *l)
{
	/* The last reference may go in a hook: the freeing waits for a worker. */
	if (refcount_dec_and_test(&l->refs))
		queue_rcu_work(usip_wq, &l->free_work);
}

/* The lists of listeners that may want an event of @state's namespace, in order. */
static int usip_candidate_lists(struct usip_mntns *state, struct list_head **lists)
{
	int n = 0;

	if (state)
		lists[n++] = &state->listeners;
	lists[n++] = &usip_global_listeners;
	return n;
}

enum usip_verdict {
	USIP_NOT_WANTED,
	USIP_WANTED,
	USIP_NO_ROOM,		/* wanted, but its share of the queue is used up */
	USIP_HIDDEN_LOSS,	/* not below its root, but the mounts it saw went with it */
};

/*
 * First look, before anything is built: does @l want @ev, and has it room?
 * For a real mount event whose path is not worked out yet, where the mount
 * is comes from the tree alone, and a path-prefix selector may match.
 */
static enum usip_verdict usip_listener_probe(struct usip_listener *l,
					     const struct usip_event *ev)
{
	const struct usip_notifier *first;
	const bool mount = ev->info.mount;
	u32 what;

	if (READ_ONCE(l->dead))
		return USIP_NOT_WANTED;
	what = usip_listener_what(l, ev, ev->info.path, !mount, &first);
	if (!what)
		return USIP_NOT_WANTED;
	if (mount && !usip_listener_at_ns_root(l, ev) &&
	    !usip_mount_below(ev->info.mount, &l->root)) {
		/* Not below its root: it is not told, unless its own mounts went. */
		if (usip_listener_root_in_subtree(l, ev) && (what & USIP_NOTIFIER_FLAGS_NOTIFY))
			return USIP_HIDDEN_LOSS;
		return USIP_NOT_WANTED;
	}
	if (usip_listener_has_room(l) || (mount && l->has_path_prefix))
		return USIP_WANTED;
	return USIP_NO_ROOM;
}

unsigned int usip_listeners_probe(struct usip_event *ev, unsigned int *no_room)
{
	struct list_head *lists[2];
	struct usip_listener *l;
	unsigned int wanted = 0;
	int i, n;

	*no_room = 0;
	/* Listeners born after this look are as if registered after the event. */
	ev->born_before = atomic64_read(&usip_births) + 1;
	/* Pairs with the full barrier of the birth: the walk sees those born before. */
	smp_rmb();
	n = usip_candidate_lists(usip_mntns_find(ev->mnt_ns), lists);
	for (i = 0; i < n; i++) {
		list_for_each_entry_rcu(l, lists[i], node) {
			switch (usip_listener_probe(l, ev)) {
			case USIP_WANTED:
				wanted++;
				break;
			case USIP_NO_ROOM:
				(*no_room)++;
				break;
			case USIP_HIDDEN_LOSS:
				/* Told only that it missed something, and to look again. */
				usip_listener_count_drop(l, 0);
				break;
			default:
				break;
			}
		}
	}
	return wanted;
}

/*
 * Second look, with the namespace's path in @ev: @l's own path of it, the
 * notifiers that match, its share of the queue; a recipient in @r, or false.
 */
static bool usip_listener_take(struct usip_listener *l, struct usip_event *ev,
			       struct usip_recipient *r, unsigned int *missed)
{
	const struct usip_notifier *first;
	const char *path = ev->info.path;
	char *own = NULL;
	u32 what;

	if (READ_ONCE(l->dead))
		return false;
	if (ev->info.mount && !usip_listener_at_ns_root(l, ev)) {
		path = usip_mount_point(ev->info.mount, &l->root, ev->info.buf);
		/* Too long to give is still below its root; too deep to tell is not. */
		if (!path || (IS_ERR(path) && PTR_ERR(path) != -ENAMETOOLONG))
			return false;
		if (IS_ERR(path))
			path = NULL;
	}
	what = usip_listener_what(l, ev, path, true, &first);
	if (!what)
		return false;
	if (!r || !usip_listener_reserve(l))
		goto missed;
	if (path && path != ev->info.path) {
		own = kstrdup(path, GFP_ATOMIC | __GFP_ACCOUNT);
		if (!own) {
			usip_listener_unreserve(l);
			goto missed;
		}
		atomic_inc(&usip_objects);
	}
	if (!refcount_inc_not_zero(&l->refs)) {
		usip_kfree(own);
		usip_listener_unreserve(l);
		return false;
	}
	*r = (struct usip_recipient){
		.listener = l,
		.path = own,
		.what = what,
		.cmd = first ? first->cmd : 0,
		.has_cmd = first && (first->present & USIP_NOTIFIER_HAS_CMD),
	};
	return true;

missed:
	(*missed)++;
	if (what & USIP_NOTIFIER_FLAGS_NOTIFY)
		usip_listener_count_drop(l, 0);
	return false;
}

unsigned int usip_listeners_take(struct usip_event *ev, unsigned int max,
				 unsigned int *missed)
{
	struct list_head *lists[2];
	struct usip_listener *l;
	int i, n;

	ev->n_recipients = 0;
	n = usip_candidate_lists(usip_mntns_find(ev->mnt_ns), lists);
	for (i = 0; i < n; i++) {
		list_for_each_entry_rcu(l, lists[i], node) {
			struct usip_recipient *r = ev->n_recipients < max ?
						   &ev->recipients[ev->n_recipients] : NULL;

			/* Pairs with the release of its birth: registered after the first look? */
			if (smp_load_acquire(&l->born) >= ev->born_before)
				continue;
			/* Each one the first look saw has a slot; without one it would miss it. */
			if (usip_listener_take(l, ev, r, missed))
				ev->n_recipients++;
		}
	}
	return ev->n_recipients;
}

void usip_listeners_drop(const struct usip_event *ev)
{
	struct list_head *lists[2];
	struct usip_listener *l;
	int i, n;

	n = usip_candidate_lists(usip_mntns_find(ev->mnt_ns), lists);
	for (i = 0; i < n; i++) {
		list_for_each_entry_rcu(l, lists[i], node) {
			const struct usip_notifier *first;
			enum usip_verdict verdict = usip_listener_probe(l, ev);

			/* A hidden loss was counted by the probe already. */
			if (verdict != USIP_WANTED && verdict != USIP_NO_ROOM)
				continue;
			if (usip_listener_what(l, ev, ev->info.path, !ev->info.mount, &first) &
			    USIP_NOTIFIER_FLAGS_NOTIFY)
				usip_listener_count_drop(l, ev->seq);
		}
	}
}

void usip_listeners_release_recipients(struct usip_event *ev)
{
	unsigned int i;

	for (i = 0; i < ev->n_recipients; i++) {
		struct usip_recipient *r = &ev->recipients[i];

		usip_listener_unreserve(r->listener);
		usip_kfree(r->path);
		usip_listener_put(r->listener);
	}
	ev->n_recipients = 0;
}

void usip_listeners_unmatch(struct usip_event *ev)
{
	unsigned int i;

	for (i = 0; i < ev->n_recipients; i++)
		if (ev->recipients[i].what & USIP_NOTIFIER_FLAGS_NOTIFY)
			usip_listener_count_drop(ev->recipients[i].listener, ev->seq);
	usip_listeners_release_recipients(ev);
}

/* --- Delivery --------------------------------------------------------------- */

/*
 * Queues @skb on @l's own socket: a message for a listener never reaches
 * another socket, even one that took over its port id. A full receive buffer
 * drops it, and the reader gets ENOBUFS, as netlink does.
 */
static int usip_listener_send(struct usip_listener *l, struct sk_buff *skb)
{
	struct sock *sk = l->sk;
	int err;

	if (sock_flag(sk, SOCK_DEAD)) {
		kfree_skb(skb);
		return -ECONNREFUSED;
	}
	err = sock_queue_rcv_skb(sk, skb);
	if (err) {
		kfree_skb(skb);
		WRITE_ONCE(sk->sk_err, ENOBUFS);
		sk_error_report(sk);
	}
	return err;
}

static void usip_listener_log(const struct usip_listener *l, const struct usip_event *ev)
{
	const struct usip_event_info *info = &ev->info;
	const char *path = info->path ?: "-";
	const char *source = info->source ?: "-";
	char mount_id[24] = "-";

	if (info->present & USIP_EVENT_HAS_MOUNT_ID)
		snprintf(mount_id, sizeof(mount_id), "%llu", info->mount_id);
	/*
	 * Only the initial namespaces' administrators may ask for these lines:
	 * they read them there, so pids and uids are the initial namespaces'
	 * and the path is from the root of the event's mount namespace. Paths
	 * come from users: what is not printable is escaped.
	 */
	pr_info_ratelimited("listener %u: %s %s%s seq %llu mnt-ns %u mount-id %s path %*pE fs-type %s source %*pE pid %d uid %u comm %*pE syscall %s count %u\n",
			    l->id, usip_type_name(info->type),
			    usip_action_name(info->action),
			    info->present & USIP_EVENT_SUBTREE ? " subtree" : "", ev->seq,
			    usip_mnt_ns_inum(ev->mnt_ns), mount_id,
			    (int)strlen(path), path, info->fs_type ?: "-",
			    (int)strlen(source), source, pid_nr(ev->pid),
			    from_kuid(&init_user_ns, ev->uid),
			    (int)strnlen(info->comm, sizeof(info->comm)), info->comm,
			    info->syscall ?: "-",
			    info->present & USIP_EVENT_HAS_COUNT ? info->count : 1);
}

static void usip_listener_unicast(struct usip_listener *l, const struct usip_event *ev,
				  const struct usip_recipient *r)
{
	struct usip_event_dest dest = {
		.listener_id = l->id,
		.path = r->path ?: ev->info.path,
		.cmd = r->cmd,
		.has_cmd = r->has_cmd,
		.pid_ns = l->pid_ns,
		.user_ns = l->user_ns,
	};
	struct sk_buff *skb;
	u32 missed;
	int err;

	/* Misses of events after this one wait for a later event. */
	missed = ev->seq > (u64)atomic64_read(&l->last_drop_seq) ?
		 atomic_xchg(&l->missed_pending, 0) : 0;
	dest.missed = missed;
	skb = usip_event_build(ev, &dest);
	err = skb ? usip_listener_send(l, skb) : -ENOMEM;
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

/* Delivers @ev to its recipients; true if the initial network namespace's groups get a copy. */
bool usip_listeners_deliver(const struct usip_event *ev)
{
	bool copy = false;
	unsigned int i;

	for (i = 0; i < ev->n_recipients; i++) {
		const struct usip_recipient *r = &ev->recipients[i];
		struct usip_listener *l = r->listener;

		if (READ_ONCE(l->dead))
			continue;
		if (r->what & USIP_NOTIFIER_FLAGS_KERN_LOG)
			usip_listener_log(l, ev);
		if (!(r->what & USIP_NOTIFIER_FLAGS_NOTIFY))
			continue;
		usip_listener_unicast(l, ev, r);
		copy |= net_eq(usip_listener_net(l), &init_net);
	}
	return copy;
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
	list_for_each_entry(l, &usip_listeners, all) {
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
		if (usip_listener_send(l, skb))
			atomic_add(missed, &l->missed_pending);
	}
	mutex_unlock(&usip_listeners_lock);
}

/* A mount change was too big to tell: every mtab listener missed something. */
void usip_listeners_mark_gap(void)
{
	struct usip_listener *l;
	unsigned int i;

	mutex_lock(&usip_listeners_lock);
	list_for_each_entry(l, &usip_listeners, all) {
		for (i = 0; i < l->n_notifiers; i++) {
			if (l->notifiers[i].type == USIP_EVENT_TYPE_MTAB &&
			    (l->notifiers[i].flags & USIP_NOTIFIER_FLAGS_NOTIFY)) {
				usip_listener_count_drop(l, 0);
				break;
			}
		}
	}
	mutex_unlock(&usip_listeners_lock);
}

int usip_listeners_fill_stats(struct sk_buff *skb, bool host)
{
	u32 listeners = 0, notifiers = 0, queued = 0, watched = 0;
	u64 delivered = 0, missed = 0;
	kuid_t uid = current_euid();
	struct usip_listener *l;

	mutex_lock(&usip_listeners_lock);
	if (host) {
		listeners = usip_n_listeners;
		notifiers = usip_n_notifiers;
		watched = usip_space_watched_total();
	} else {
		struct usip_user *user = usip_user_find(uid);

		queued = user ? atomic_read(&user->queued) : 0;
		list_for_each_entry(l, &usip_listeners, all) {
			if (!uid_eq(l->uid, uid))
				continue;
			listeners++;
			notifiers += l->n_notifiers;
			watched += usip_space_watched(l->space);
			delivered += atomic64_read(&l->delivered);
			missed += atomic64_read(&l->missed_total);
		}
	}
	mutex_unlock(&usip_listeners_lock);
	if (nla_put_u32(skb, USIP_A_STATS_LISTENERS, listeners) ||
	    nla_put_u32(skb, USIP_A_STATS_NOTIFIERS, notifiers) ||
	    nla_put_u32(skb, USIP_A_STATS_WATCHED_MOUNTS, watched))
		return -EMSGSIZE;
	if (host)
		return 0;
	if (nla_put_u32(skb, USIP_A_STATS_QUEUED, queued) ||
	    nla_put_u32(skb, USIP_A_STATS_QUEUE_LIMIT, READ_ONCE(usip_user_queue_len)) ||
	    nla_put_u64_64bit(skb, USIP_A_STATS_DELIVERED, delivered, USIP_A_STATS_PAD) ||
	    nla_put_u64_64bit(skb, USIP_A_STATS_DROPPED, missed, USIP_A_STATS_PAD))
		return -EMSGSIZE;
	return 0;
}

/* --- Lifetime ------------------------------------------------------------- */

static void usip_notifiers_free(struct usip_listener *l)
{
	unsigned int i;

	for (i = 0; l->notifiers && i < l->n_notifiers; i++)
		usip_kfree(l->notifiers[i].path_prefix);
	usip_kfree(l->notifiers);
}

/*
 * Frees a listener nothing refers to any more, after the RCU readers that
 * could still see it (hooks posting events) are done; process context.
 */
static void usip_listener_free_work(struct work_struct *work)
{
	struct usip_listener *l = container_of(to_rcu_work(work), struct usip_listener,
					       free_work);

	if (l->holds_hooks)
		usip_mount_hooks_put(l->flags & USIP_LISTENER_FLAGS_GLOBAL);
	if (l->holds_space_errors)
		usip_space_errors_put();
	if (l->holds_quota)
		usip_quota_warnings_put();
	/* Never linked: its check never started. */
	usip_space_watch_stop(l->space);
	if (l->user || l->scope) {
		mutex_lock(&usip_listeners_lock);
		if (l->scope)
			usip_mntns_put(l->scope);
		if (l->user)
			usip_user_put(l->user);
		mutex_unlock(&usip_listeners_lock);
	}
	usip_mnt_ns_put(l->mnt_ns);
	path_put(&l->root);
	if (l->user_ns)
		put_user_ns(l->user_ns);
	if (l->pid_ns)
		put_pid_ns(l->pid_ns);
	put_pid(l->owner);
	if (l->sk)
		sock_put(l->sk);
	usip_notifiers_free(l);
	kmem_cache_free(usip_listener_cache, l);
	atomic_dec(&usip_objects);
}

/* Takes @l off every list: no new event finds it; usip_listeners_lock held. */
static void usip_listener_unlink(struct usip_listener *l)
{
	lockdep_assert_held(&usip_listeners_lock);
	WRITE_ONCE(l->dead, true);
	list_del_rcu(&l->node);
	list_del(&l->all);
	xa_erase(&usip_listener_ids, l->id);
	if ((l->flags & USIP_LISTENER_FLAGS_GLOBAL) && (l->types & BIT(USIP_EVENT_TYPE_MTAB)))
		atomic_dec(&usip_global_mtab);
	l->user->listeners--;
	/* Its low-space check stops now (a statfs under way finishes by itself). */
	usip_space_watch_stop(l->space);
	l->space = NULL;
	WRITE_ONCE(usip_n_listeners, usip_n_listeners - 1);
	WRITE_ONCE(usip_n_notifiers, usip_n_notifiers - l->n_notifiers);
}

/* --- Registration ------------------------------------------------------------ */

/* The attributes only low-space notifiers have, and the one each of those needs. */
static const int usip_space_attrs[] = {
	USIP_A_NOTIFIER_THRESHOLD, USIP_A_NOTIFIER_THRESHOLD_INODES,
	USIP_A_NOTIFIER_THRESHOLD_BYTES, USIP_A_NOTIFIER_HYSTERESIS,
	USIP_A_NOTIFIER_INTERVAL_MS,
};

/*
 * The ranges of a low-space notifier's values (the spec's docs): refused with
 * EINVAL and a message naming the attribute, as the notifier's other rules are.
 */
static int usip_notifier_space_ranges(const struct usip_notifier *n, struct nlattr **tb,
				      struct netlink_ext_ack *extack)
{
	if (n->threshold > 100) {
		NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_THRESHOLD],
				    "threshold is a percentage of the blocks: 1 to 100");
		return -EINVAL;
	}
	if (n->threshold_inodes > 100) {
		NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_THRESHOLD_INODES],
				    "threshold-inodes is a percentage of the inodes: 1 to 100");
		return -EINVAL;
	}
	if (n->hysteresis > 1000) {
		NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_HYSTERESIS],
				    "hysteresis is a percentage of the threshold: 0 to 1000");
		return -EINVAL;
	}
	if (n->interval_ms < 100 || n->interval_ms > 3600000) {
		NL_SET_ERR_MSG_ATTR(extack, tb[USIP_A_NOTIFIER_INTERVAL_MS],
				    "interval-ms must be 100 to 3600000");
		return -EINVAL;
	}
	return 0;
}

static int usip_notifier_parse_space(struct usip_notifier *n, struct nlattr **tb,
				     struct netlink_ext_ack *extack)
{
	unsigned int i, thresholds = 0;

	if (n->action != USIP_ACTION_LOW_SPACE) {
		for (i = 0; i < ARRAY_SIZE(usip_space_attrs); i++) {
			if (!tb[usip_space_attrs[i]])
				continue;
			NL_SET_ERR_MSG_ATTR(extack, tb[usip_space_attrs[i]],
					    "only a low-space notifier has thresholds, hysteresis or interval-ms");
			return -EINVAL;
		}
		return 0;
	}
	n->hysteresis = USIP_LOW_SPACE_HYSTERESIS;
	n->interval_ms = USIP_LOW_SPACE_INTERVAL_MS;
	if (tb[USIP_A_NOTIFIER_THRESHOLD]) {
		n->threshold = nla_get_u32(tb[USIP_A_NOTIFIER_THRESHOLD]);
		n->present |= USIP_NOTIFIER_HAS_THRESHOLD;
		thresholds++;
	}
	if (tb[USIP_A_NOTIFIER_THRESHOLD_INODES]) {
		n->threshold_inodes = nla_get_u32(tb[USIP_A_NOTIFIER_THRESHOLD_INODES]);
		n->present |= USIP_NOTIFIER_HAS_THRESHOLD_INODES;
		thresholds++;
	}
	if (tb[USIP_A_NOTIFIER_THRESHOLD_BYTES]) {
		n->threshold_bytes = nla_get_u64(tb[USIP_A_NOTIFIER_THRESHOLD_BYTES]);
		n->present |= USIP_NOTIFIER_HAS_THRESHOLD_BYTES;
		thresholds++;
	}
	if (thresholds != 1) {
		NL_SET_ERR_MSG(extack,
			       "a low-space notifier needs exactly one of threshold, threshold-inodes and threshold-bytes");
		return -EINVAL;
	}
	if (!(n->threshold | n->threshold_inodes | n->threshold_bytes)) {
		struct nlattr *zero = tb[USIP_A_NOTIFIER_THRESHOLD] ?:
				      tb[USIP_A_NOTIFIER_THRESHOLD_INODES] ?:
				      tb[USIP_A_NOTIFIER_THRESHOLD_BYTES];

		NL_SET_ERR_MSG_ATTR(extack, zero, "a threshold of 0 can never be crossed");
		return -EINVAL;
	}
	if (tb[USIP_A_NOTIFIER_HYSTERESIS]) {
		n->hysteresis = nla_get_u32(tb[USIP_A_NOTIFIER_HYSTERESIS]);
		n->present |= USIP_NOTIFIER_HAS_HYSTERESIS;
	}
	if (tb[USIP_A_NOTIFIER_INTERVAL_MS]) {
		n->interval_ms = nla_get_u32(tb[USIP_A_NOTIFIER_INTERVAL_MS]);
		n->present |= USIP_NOTIFIER_HAS_INTERVAL;
	}
	return usip_notifier_space_ranges(n, tb, extack);
}

/*
 * A notifier whose events come from a feature this kernel does not have
 * would never hear anything: refused, naming the feature. A feature whose
 * hooks failed to arm is not refused: the next listener arms them again.
 */
static int usip_notifier_feature(const struct usip_notifier *n, const struct nlattr *action,
				 struct netlink_ext_ack *extack)
{
	switch (n->action) {
	case USIP_ACTION_MOUNT:
	case USIP_ACTION_UMOUNT:
	case USIP_ACTION_MOVE:
		if (usip_feature_usable(USIP_F_MOUNT_EVENTS))
			return 0;
		NL_SET_ERR_MSG_ATTR(extack, action,
				    "mount, umount and move notifiers need the feature mount-events, which is not available (ping's feature-status says why)");
		break;
	case USIP_ACTION_REMOUNT:
		if (usip_feature_usable(USIP_F_REMOUNT_EVENTS) ||
		    usip_feature_usable(USIP_F_PROPAGATION_EVENTS) ||
		    usip_feature_usable(USIP_F_SETATTR_EVENTS))
			return 0;
		NL_SET_ERR_MSG_ATTR(extack, action,
				    "remount notifiers need the feature remount-events, propagation-events or setattr-events, none of which is available (ping's feature-status says why)");
		break;
	case USIP_ACTION_ENOSPC:
	case USIP_ACTION_EDQUOT:
		if (usip_feature_usable(USIP_F_SPACE_ERRORS))
			return 0;
		NL_SET_ERR_MSG_ATTR(extack, action,
				    "enospc and edquot notifiers need the feature space-errors, which is not available (ping's feature-status says why)");
		break;
	case USIP_ACTION_QUOTA:
		if (usip_feature_usable(USIP_F_QUOTA_WARNINGS))
			return 0;
		NL_SET_ERR_MSG_ATTR(extack, action,
				    "quota notifiers need the feature quota-warnings, which is not available (ping's feature-status says why)");
		break;
	case USIP_ACTION_LOW_SPACE:
		if (usip_feature_usable(USIP_F_LOW_SPACE))
			return 0;
		NL_SET_ERR_MSG_ATTR(extack, action,
				    "low-space notifiers need the feature low-space, which is not available (ping's feature-status says why)");
		break;
	default:
		return 0;
	}
	return -EOPNOTSUPP;
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
	err = usip_notifier_feature(n, tb[USIP_A_NOTIFIER_ACTION], extack);
	if (err)
		return err;
	if (tb[USIP_A_NOTIFIER_CMD]) {
		n->cmd = nla_get_u32(tb[USIP_A_NOTIFIER_CMD]);
		n->present |= USIP_NOTIFIER_HAS_CMD;
	}
	if (tb[USIP_A_NOTIFIER_MOUNT_ID]) {
		n->mount_id = nla_get_u64(tb[USIP_A_NOTIFIER_MOUNT_ID]);
		n->present |= USIP_NOTIFIER_HAS_MOUNT_ID;
	}
	err = usip_notifier_parse_space(n, tb, extack);
	if (err)
		return err;
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
		n->path_prefix = kstrndup(prefix, len, GFP_KERNEL_ACCOUNT);
		if (!n->path_prefix)
			return -ENOMEM;
		atomic_inc(&usip_objects);
		n->path_prefix_len = len;
	}
	return 0;
}

/* Hands @l's low-space notifiers, if it has any, to a check of their own. */
static int usip_listener_watch_space(struct usip_listener *l, struct netlink_ext_ack *extack)
{
	struct usip_space_spec *specs;
	unsigned int i, n = 0;

	for (i = 0; i < l->n_notifiers; i++)
		if (l->notifiers[i].action == USIP_ACTION_LOW_SPACE)
			n++;
	if (!n)
		return 0;
	if (!usip_feature_available(USIP_F_LOW_SPACE)) {
		NL_SET_ERR_MSG(extack,
			       "low-space notifiers need the mount table, which is not available on this kernel");
		return -EOPNOTSUPP;
	}
	specs = kcalloc(n, sizeof(*specs), GFP_KERNEL);
	if (!specs)
		return -ENOMEM;
	for (i = 0, n = 0; i < l->n_notifiers; i++) {
		const struct usip_notifier *nt = &l->notifiers[i];
		struct usip_space_spec *s = &specs[n];

		if (nt->action != USIP_ACTION_LOW_SPACE)
			continue;
		s->notifier = i;
		if (nt->present & USIP_NOTIFIER_HAS_THRESHOLD_BYTES) {
			s->kind = USIP_SPACE_BYTES;
			s->threshold = nt->threshold_bytes;
		} else if (nt->present & USIP_NOTIFIER_HAS_THRESHOLD_INODES) {
			s->kind = USIP_SPACE_INODES;
			s->threshold = nt->threshold_inodes;
		} else {
			s->kind = USIP_SPACE_BLOCKS;
			s->threshold = nt->threshold;
		}
		s->hysteresis = nt->hysteresis;
		s->interval_ms = nt->interval_ms;
		s->has_mount_id = nt->present & USIP_NOTIFIER_HAS_MOUNT_ID;
		s->mount_id = nt->mount_id;
		s->path_prefix = nt->path_prefix;
		s->path_prefix_len = nt->path_prefix_len;
		n++;
	}
	l->space = usip_space_watch_new(l->mnt_ns, &l->root, specs, n);
	kfree(specs);
	return l->space ? 0 : -ENOMEM;
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

static const char *const usip_group_names[] = {
	[USIP_EVENT_TYPE_MTAB] = USIP_MCGRP_MTAB,
	[USIP_EVENT_TYPE_STORAGE] = USIP_MCGRP_STORAGE,
};

static int usip_put_groups(struct sk_buff *skb, const struct usip_listener *l)
{
	u32 type;

	for (type = USIP_EVENT_TYPE_MTAB; type <= USIP_EVENT_TYPE_STORAGE; type++)
		if ((l->types & BIT(type)) &&
		    nla_put_string(skb, USIP_A_LISTENER_GROUP, usip_group_names[type]))
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

		/* The nest, type, action, flags; what it has of the rest. */
		size += nla_total_size(0) + 3 * nla_total_size(sizeof(u32));
		if (n->present & USIP_NOTIFIER_HAS_CMD)
			size += nla_total_size(sizeof(u32));
		if (n->present & USIP_NOTIFIER_HAS_MOUNT_ID)
			size += nla_total_size_64bit(sizeof(u64));
		if (n->action == USIP_ACTION_LOW_SPACE)	/* hysteresis, interval, a threshold */
			size += 2 * nla_total_size(sizeof(u32)) +
				(n->present & USIP_NOTIFIER_HAS_THRESHOLD_BYTES ?
				 nla_total_size_64bit(sizeof(u64)) : nla_total_size(sizeof(u32)));
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

static int usip_register_reply(struct genl_info *info, const struct usip_listener *l)
{
	struct sk_buff *reply;
	void *hdr;

	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &usip_family, 0, USIP_CMD_LISTENER_REGISTER);
	if (!hdr ||
	    nla_put_u32(reply, USIP_A_LISTENER_ID, l->id) ||
	    usip_put_groups(reply, l) ||
	    nla_put_u32(reply, USIP_A_LISTENER_SCOPE, usip_listener_scope(l)) ||
	    nla_put_u64_64bit(reply, USIP_A_LISTENER_MNT_NS,
			      usip_mnt_ns_inum(l->mnt_ns), USIP_A_LISTENER_PAD)) {
		nlmsg_free(reply);
		return -EMSGSIZE;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

static bool usip_listener_has_action(const struct usip_listener *l, u32 action)
{
	unsigned int i;

	for (i = 0; i < l->n_notifiers; i++)
		if (l->notifiers[i].action == action)
			return true;
	return false;
}

/* Checks what registering @l needs; -EPERM with a message if the caller lacks it. */
static int usip_listener_permitted(const struct usip_listener *l, struct sk_buff *skb,
				   struct genl_info *info)
{
	unsigned int i;

	if ((l->flags & USIP_LISTENER_FLAGS_GLOBAL) && !netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[USIP_A_LISTENER_FLAGS],
				    "a global listener needs CAP_SYS_ADMIN in the initial user namespace");
		return -EPERM;
	}
	/*
	 * Reporting failed system calls means a hook on the exit of every
	 * system call of every process (the sys_exit tracepoint): a cost
	 * everybody pays, so the administrator decides.
	 */
	if ((usip_listener_has_action(l, USIP_ACTION_ENOSPC) ||
	     usip_listener_has_action(l, USIP_ACTION_EDQUOT)) &&
	    !READ_ONCE(usip_space_errors_unprivileged) && !netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG(info->extack,
			       "enospc and edquot notifiers hook every system call: they need CAP_SYS_ADMIN in the initial user namespace, or usip.space_errors_unprivileged=1");
		return -EPERM;
	}
	for (i = 0; i < l->n_notifiers; i++) {
		if (!(l->notifiers[i].flags & USIP_NOTIFIER_FLAGS_KERN_LOG))
			continue;
		/* The log is shared by everybody: only its administrators may fill it. */
		if (netlink_capable(skb, CAP_SYS_ADMIN) || netlink_capable(skb, CAP_SYSLOG))
			return 0;
		NL_SET_ERR_MSG(info->extack,
			       "a kern-log notifier needs CAP_SYS_ADMIN or CAP_SYSLOG in the initial user namespace");
		return -EPERM;
	}
	return 0;
}

/* Makes @l findable by events; usip_listeners_lock held. */
static int usip_listener_link(struct usip_listener *l, struct usip_user **fresh_user,
			      struct netlink_ext_ack *extack)
{
	struct usip_user *user = usip_user_find(l->uid);
	int err;

	lockdep_assert_held(&usip_listeners_lock);
	if ((user ? user->listeners : 0) >= READ_ONCE(usip_max_listeners_per_user)) {
		NL_SET_ERR_MSG(extack,
			       "this user already has usip.max_listeners_per_user listeners");
		return -EMFILE;
	}
	if (!(l->flags & USIP_LISTENER_FLAGS_GLOBAL)) {
		l->scope = usip_mntns_get(l->mnt_ns);
		if (!l->scope)
			return -ENOMEM;
	}
	err = xa_alloc_cyclic(&usip_listener_ids, &l->id, l, xa_limit_32b,
			      &usip_next_listener_id, GFP_KERNEL);
	if (err < 0) {
		if (l->scope)
			usip_mntns_put(l->scope);
		l->scope = NULL;
		return err;
	}
	l->user = usip_user_get(l->uid, fresh_user);
	l->user->listeners++;
	list_add_tail(&l->all, &usip_listeners);
	/*
	 * Born only once findable: an event whose first look did not find it
	 * read the count of births before it was born (see usip_listeners_probe()).
	 */
	l->born = U64_MAX;
	list_add_tail_rcu(&l->node, l->scope ? &l->scope->listeners : &usip_global_listeners);
	/* Released after the link; the increment orders the link before the new count. */
	smp_store_release(&l->born, atomic64_inc_return(&usip_births));
	if ((l->flags & USIP_LISTENER_FLAGS_GLOBAL) && (l->types & BIT(USIP_EVENT_TYPE_MTAB)))
		atomic_inc(&usip_global_mtab);
	WRITE_ONCE(usip_n_listeners, usip_n_listeners + 1);
	WRITE_ONCE(usip_n_notifiers, usip_n_notifiers + l->n_notifiers);
	return 0;
}

int usip_nl_listener_register_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	const struct nlattr *flags_attr = info->attrs[USIP_A_LISTENER_FLAGS];
	struct usip_user *fresh_user = NULL;
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

	/* Charged to the registering process's memory cgroup, like all it asks for. */
	l = kmem_cache_zalloc(usip_listener_cache, GFP_KERNEL_ACCOUNT);
	if (!l)
		return -ENOMEM;
	atomic_inc(&usip_objects);
	refcount_set(&l->refs, 1);
	INIT_RCU_WORK(&l->free_work, usip_listener_free_work);
	l->flags = flags_attr ? nla_get_u32(flags_attr) : 0;
	l->notifiers = kcalloc(count, sizeof(*l->notifiers), GFP_KERNEL_ACCOUNT);
	if (!l->notifiers) {
		err = -ENOMEM;
		goto free;
	}
	atomic_inc(&usip_objects);
	l->n_notifiers = count;
	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem) {
		if (nla_type(nla) != USIP_A_LISTENER_NOTIFIER)
			continue;
		err = usip_notifier_parse(&l->notifiers[i], nla, extack);
		if (err)
			goto free;
		l->types |= BIT(l->notifiers[i].type);
		l->has_path_prefix |= !!l->notifiers[i].path_prefix;
		i++;
	}
	/* Every listener must fit in one message of a default-sized dump. */
	if (usip_listener_msg_size(l) > NLMSG_GOODSIZE) {
		NL_SET_ERR_MSG(extack,
			       "the notifiers are too large to be listed in one netlink message");
		err = -E2BIG;
		goto free;
	}
	err = usip_listener_permitted(l, skb, info);
	if (err)
		goto free;

	l->uid = current_euid();
	l->sees_all_users = netlink_capable(skb, CAP_SYS_ADMIN);
	l->owner = get_pid(task_tgid(current));
	l->user_ns = get_user_ns(current_user_ns());
	l->pid_ns = get_pid_ns(task_active_pid_ns(current));
	l->mnt_ns = usip_mnt_ns_get_current();
	get_fs_root(current->fs, &l->root);
	if (usip_feature_available(USIP_F_MOUNT_TABLE)) {
		struct path ns_root = usip_ns_root_path((struct mnt_namespace *)l->mnt_ns);

		l->follows_ns_root = path_equal(&l->root, &ns_root);
	}
	if (l->follows_ns_root || l->flags & USIP_LISTENER_FLAGS_GLOBAL) {
		path_put(&l->root);
		l->root = (struct path){};
	}
	write_pnet(&l->net, genl_info_net(info));
	l->portid = info->snd_portid;
	l->sk = NETLINK_CB(skb).sk;
	sock_hold(l->sk);
	err = usip_listener_watch_space(l, extack);
	if (err)
		goto free;
	fresh_user = kzalloc(sizeof(*fresh_user), GFP_KERNEL_ACCOUNT);
	if (!fresh_user) {
		err = -ENOMEM;
		goto free;
	}

	/* The limits are checked before anything is armed for it. */
	mutex_lock(&usip_listeners_lock);
	err = usip_listener_link(l, &fresh_user, extack);
	/* Under the lock that unlinking (and so stopping it) takes. */
	if (!err && l->space)
		usip_space_watch_start(l->space, l->id);
	mutex_unlock(&usip_listeners_lock);
	if (!fresh_user)
		atomic_inc(&usip_objects);	/* it became the user's record */
	kfree(fresh_user);
	if (err)
		goto free;

	/* Before the reply, so that no change after it goes unseen. */
	if (l->types & BIT(USIP_EVENT_TYPE_MTAB)) {
		usip_mount_hooks_get(l->flags & USIP_LISTENER_FLAGS_GLOBAL);
		l->holds_hooks = true;
	}
	if (usip_listener_has_action(l, USIP_ACTION_ENOSPC) ||
	    usip_listener_has_action(l, USIP_ACTION_EDQUOT)) {
		usip_space_errors_get();
		l->holds_space_errors = true;
	}
	if (usip_listener_has_action(l, USIP_ACTION_QUOTA)) {
		usip_quota_warnings_get();
		l->holds_quota = true;
	}

	/*
	 * If the reply cannot be sent the listener stays: it belongs to the
	 * socket, and listener-get or the socket's release deal with it.
	 */
	return usip_register_reply(info, l);

free:
	/* Never linked: nothing else can hold it. */
	usip_listener_free_work(&l->free_work.work);
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
	usip_listener_put(l);
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
	    ((n->present & USIP_NOTIFIER_HAS_THRESHOLD_INODES) &&
	     nla_put_u32(skb, USIP_A_NOTIFIER_THRESHOLD_INODES, n->threshold_inodes)) ||
	    ((n->present & USIP_NOTIFIER_HAS_THRESHOLD_BYTES) &&
	     nla_put_u64_64bit(skb, USIP_A_NOTIFIER_THRESHOLD_BYTES, n->threshold_bytes,
			       USIP_A_NOTIFIER_PAD)) ||
	    (n->action == USIP_ACTION_LOW_SPACE &&
	     (nla_put_u32(skb, USIP_A_NOTIFIER_HYSTERESIS, n->hysteresis) ||
	      nla_put_u32(skb, USIP_A_NOTIFIER_INTERVAL_MS, n->interval_ms))) ||
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
	/* Pids and uids as the reader sees them. */
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
			      atomic64_read(&l->missed_total), USIP_A_LISTENER_PAD))
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

static int usip_netlink_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct netlink_notify *n = ptr;
	struct usip_listener *l, *tmp;
	LIST_HEAD(gone);

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC ||
	    !READ_ONCE(usip_n_listeners))
		return NOTIFY_DONE;

	mutex_lock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &usip_listeners, all) {
		/*
		 * The port id was freed before this notification, so a new
		 * socket may already have it: only the released (dead) socket's
		 * listeners go.
		 */
		if (l->portid != n->portid || !net_eq(usip_listener_net(l), n->net) ||
		    !sock_flag(l->sk, SOCK_DEAD))
			continue;
		usip_listener_unlink(l);
		list_add(&l->all, &gone);
	}
	mutex_unlock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &gone, all)
		usip_listener_put(l);
	return NOTIFY_DONE;
}

static struct notifier_block usip_netlink_notifier = {
	.notifier_call = usip_netlink_event,
};

int usip_listeners_init(void)
{
	int err;

	/* Charged to the memory cgroup of whoever registers them. */
	usip_listener_cache = KMEM_CACHE(usip_listener, SLAB_ACCOUNT);
	if (!usip_listener_cache)
		return -ENOMEM;
	err = netlink_register_notifier(&usip_netlink_notifier);
	if (err)
		kmem_cache_destroy(usip_listener_cache);
	return err;
}

/* Removes every listener; events are no longer delivered. */
void usip_listeners_exit(void)
{
	struct usip_listener *l, *tmp;
	LIST_HEAD(gone);

	netlink_unregister_notifier(&usip_netlink_notifier);
	mutex_lock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &usip_listeners, all) {
		usip_listener_unlink(l);
		list_add(&l->all, &gone);
	}
	mutex_unlock(&usip_listeners_lock);
	list_for_each_entry_safe(l, tmp, &gone, all)
		usip_listener_put(l);
	/* The frees wait for a grace period, then run on usip_wq. */
	rcu_barrier();
	flush_workqueue(usip_wq);
	xa_destroy(&usip_listener_ids);
	kmem_cache_destroy(usip_listener_cache);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared by the parts of usip.ko (the generated netlink tables
 * are declared in usip-nl-gen.h, the kernel internals in usip-internals.h).
 */
#ifndef _USIP_H
#define _USIP_H

#include <linux/atomic.h>
#include <linux/time64.h>
#include <linux/quota.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <net/genetlink.h>

extern struct genl_family usip_family;

/* Module parameters (usip-main.c). */
extern bool usip_allow_inject;
extern unsigned int usip_max_listeners_per_user;
extern unsigned int usip_max_notifiers_per_listener;
extern unsigned int usip_event_queue_len;
extern unsigned int usip_user_queue_len;
extern unsigned int usip_listener_queue_len;
extern atomic_t usip_inject_arm_failures;
extern unsigned int usip_statfs_timeout_ms;
extern unsigned int usip_statfs_max_running;
extern bool usip_space_errors_unprivileged;
extern unsigned int usip_space_error_interval_ms;
extern unsigned int usip_max_coalesce_slots;
extern unsigned int usip_max_coalesce_slots_per_user;

/*
 * Allocations the module holds (listeners, notifier arrays, strings, queued
 * events, namespace states). The stats op reports it so tests can check
 * nothing leaks.
 */
extern atomic_t usip_objects;

/* kfree() for an allocation counted in usip_objects; NULL is ignored. */
void usip_kfree(const void *p);

/* Work the module queues (delivery aside): freeing listeners, disarming hooks. */
extern struct workqueue_struct *usip_wq;

struct mount;
struct net;
struct ns_common;
struct pid;
struct pid_namespace;
struct user_namespace;
struct usip_path_buf;

/* usip-ns.c: the mount namespace of a task, as a counted reference. */
int usip_ns_init(void);
struct ns_common *usip_mnt_ns_current(void);
struct ns_common *usip_mnt_ns_get_current(void);
bool usip_mnt_ns_tryget(struct ns_common *ns);
void usip_mnt_ns_get(struct ns_common *ns);
bool usip_mnt_ns_alive(const struct ns_common *ns);
void usip_mnt_ns_put(struct ns_common *ns);
unsigned int usip_mnt_ns_inum(const struct ns_common *ns);

/* What a producer knows about an event; strings may be NULL. */
struct usip_event_info {
	u32 type;
	u32 action;
	/* Bits of USIP_EVENT_HAS_* saying which optional fields are set. */
	u32 present;
	u64 mount_id;
	u64 parent_id;
	u64 unique_id;
	u32 dev;
	u32 count;
	const char *path;
	const char *fs_type;
	const char *source;
	/*
	 * A real mount change: the mount, in a hook (the tree holds still).
	 * Its path is worked out while posting, for the namespace's root and
	 * for each listener whose root is elsewhere, in @buf.
	 */
	struct mount *mount;
	struct usip_path_buf *buf;

	/*
	 * Storage events: the process that caused it (USIP_EVENT_HAS_TASK:
	 * pid referenced by the producer, or NULL; otherwise the poster is
	 * the cause), the failing system call, the inode, the quota warning.
	 */
	struct pid *pid;
	kuid_t uid;
	char comm[TASK_COMM_LEN];
	const char *syscall;		/* a static string */
	u64 ino;
	struct kqid qid;
	u32 quota_warning;

	/* Low-space events (USIP_EVENT_TARGETED, USIP_EVENT_HAS_SPACE, _HAS_USAGE). */
	u32 target_listener;		/* the id of the only listener it is for */
	u32 target_notifier;		/* the index of its notifier there */
	u32 space_state;		/* USIP_SPACE_STATE_* */
	u64 bytes_total;
	u64 bytes_available;
	u64 files_total;
	u64 files_free;
};

#define USIP_EVENT_HAS_MOUNT_ID		BIT(0)
#define USIP_EVENT_HAS_PARENT_ID	BIT(1)
#define USIP_EVENT_HAS_DEV		BIT(2)
#define USIP_EVENT_HAS_COUNT		BIT(3)
#define USIP_EVENT_HAS_UNIQUE_ID	BIT(4)
/* A real mount table change: it gets its namespace's next ns-seq. */
#define USIP_EVENT_MOUNT_CHANGE		BIT(5)
/* The event stands for the mount and every mount below it. */
#define USIP_EVENT_SUBTREE		BIT(6)
/* pid, uid and comm name the cause (not the poster); pid may be NULL. */
#define USIP_EVENT_HAS_TASK		BIT(7)
#define USIP_EVENT_HAS_INO		BIT(8)
/* qid and quota_warning are set. */
#define USIP_EVENT_HAS_QUOTA		BIT(9)
/*
 * Low-space events: for one notifier of one listener only (its selectors were
 * applied by the check), caused by no task (no pid or uid in the message).
 */
#define USIP_EVENT_TARGETED		BIT(16)
#define USIP_EVENT_NO_TASK		BIT(17)
#define USIP_EVENT_HAS_SPACE		BIT(18)	/* space_state */
#define USIP_EVENT_HAS_USAGE		BIT(19)	/* bytes_* and files_* */

struct usip_listener;

/* One listener an event is for, chosen (and its share of the queue taken) when it was posted. */
struct usip_recipient {
	struct usip_listener *listener;	/* referenced */
	/* Its own path of the event (its root is not the namespace's), or NULL. */
	char *path;
	u32 what;			/* the flags of its matching notifiers */
	u32 cmd;			/* of the first matching notifier with notify */
	bool has_cmd;
};

/* A posted event, owned by the queue until it is delivered. */
struct usip_event {
	struct list_head node;
	struct usip_event_info info;	/* strings in the same allocation */
	u64 seq;
	u64 ns_seq;			/* 0: none */
	u64 timestamp;
	struct ns_common *mnt_ns;	/* referenced */
	struct pid *pid;
	kuid_t uid;
	/* While posting: listeners registered from this number on are not its recipients. */
	u64 born_before;
	unsigned int n_recipients;
	struct usip_recipient recipients[];
};

/* Who an event message is built for. */
struct usip_event_dest {
	u32 listener_id;		/* 0 for a multicast copy */
	u32 cmd;
	bool has_cmd;
	u32 missed;
	const char *path;
	struct pid_namespace *pid_ns;	/* pids are given in this namespace */
	struct user_namespace *user_ns;	/* uids likewise */
};

/* usip-event.c */
int usip_events_init(void);
void usip_events_stop(void);
void usip_events_exit(void);
int usip_event_post(const struct usip_event_info *info, struct ns_common *ns,
		    gfp_t gfp, u64 *seq);
bool usip_events_queue_full(void);
void usip_events_report_gap(void);
bool usip_action_of_type(u32 type, u32 action);
const char *usip_type_name(u32 type);
const char *usip_action_name(u32 action);
struct sk_buff *usip_event_build(const struct usip_event *ev,
				 const struct usip_event_dest *dest);
void usip_event_count_delivery(bool delivered);

/* usip-listener.c */
int usip_listeners_init(void);
void usip_listeners_exit(void);
/*
 * Choosing an event's listeners, under RCU in any context: probe counts the
 * listeners that may want @ev before anything is built for it (*@no_room:
 * those that would but have no room); take fills @ev's recipients (at most
 * @max), with the namespace's path in @ev->info.path, and takes their shares
 * of the queue (*@missed: how many missed it for want of room); drop counts
 * a miss for every listener that wanted @ev.
 */
unsigned int usip_listeners_probe(struct usip_event *ev, unsigned int *no_room);
unsigned int usip_listeners_take(struct usip_event *ev, unsigned int max,
				 unsigned int *missed);
void usip_listeners_drop(const struct usip_event *ev);
/* @ev was not queued after all: its recipients missed it; gives their shares back. */
void usip_listeners_unmatch(struct usip_event *ev);
/* Delivers @ev; true if the initial network namespace's group gets a copy. */
bool usip_listeners_deliver(const struct usip_event *ev);
void usip_listeners_release_recipients(struct usip_event *ev);
void usip_listeners_report_missed(void);
void usip_listeners_mark_gap(void);
int usip_listeners_fill_stats(struct sk_buff *skb, bool host);

/* Mount namespaces with listeners registered in them, and their ns-seq. */
struct usip_mntns {
	struct hlist_node node;		/* in the table, RCU */
	struct rcu_head rcu;
	const struct ns_common *ns;	/* its listeners hold it */
	unsigned int users;		/* listeners registered in it */
	struct list_head listeners;	/* those listeners, RCU */
	/* Under the event queue's lock (usip-event.c): */
	u64 seq;			/* the last ns-seq given */
	s64 gaps_seen;			/* usip_mount_gaps when last looked at */
};

extern atomic64_t usip_mount_gaps;

/* Under RCU. */
struct usip_mntns *usip_mntns_find(const struct ns_common *ns);
u64 usip_mntns_seq(const struct ns_common *ns);
/* Does any listener want mtab events of @ns (under RCU, any context)? */
bool usip_mntns_watched(const struct ns_common *ns);

/* usip-internals.c */
int usip_internals_init(void);

/* usip-statfs.c */
int usip_statfs_init(void);
void usip_statfs_exit(void);
/* statfs calls that outlived their requester's timeout and still run. */
unsigned int usip_statfs_pending_count(void);

/* usip-space-errors.c: enospc, edquot and quota events. */
int usip_space_errors_init(void);
void usip_space_errors_exit(void);
void usip_space_errors_get(void);
void usip_space_errors_put(void);
void usip_quota_warnings_get(void);
void usip_quota_warnings_put(void);
u32 usip_storage_hooks_armed(void);
u32 usip_coalesce_slots(void);
u64 usip_space_errors_unreported(void);
/* usip-low-space.c: low-space notifiers, checked on a timer per listener. */
extern unsigned int usip_max_watched_mounts_per_listener;

enum usip_space_kind {
	USIP_SPACE_BLOCKS,	/* percent of blocks available */
	USIP_SPACE_INODES,	/* percent of inodes free */
	USIP_SPACE_BYTES,	/* bytes available */
};

/* One low-space notifier, as its listener hands it to the check. */
struct usip_space_spec {
	u32 notifier;		/* its index in the listener */
	enum usip_space_kind kind;
	u64 threshold;		/* percent, or bytes */
	u32 hysteresis;		/* percent of the threshold */
	u32 interval_ms;
	bool has_mount_id;
	u64 mount_id;
	const char *path_prefix;	/* NULL: any; copied */
	size_t path_prefix_len;
};

struct usip_space_watch;
struct path;

/*
 * A listener's low-space check, made while registering (in the registering
 * task: its memory is charged to that task's memory cgroup), started once the
 * listener has its id, stopped when the listener goes (it may outlive the
 * listener while a statfs it started has not returned). @root: the
 * listener's root, or an empty path for its namespace's root.
 */
struct usip_space_watch *usip_space_watch_new(struct ns_common *ns, const struct path *root,
					      const struct usip_space_spec *specs,
					      unsigned int n);
void usip_space_watch_start(struct usip_space_watch *w, u32 listener_id);
void usip_space_watch_stop(struct usip_space_watch *w);
/* Mounts watched, by @w and by all; for stats. */
unsigned int usip_space_watched(const struct usip_space_watch *w);
unsigned int usip_space_watched_total(void);
/* Before events stop: no check runs after it (it waits for those under way). */
void usip_low_space_exit(void);

/* usip-mount-events.c */
int usip_mount_events_init(void);
void usip_mount_events_exit(void);
void usip_mount_hooks_get(bool global);
void usip_mount_hooks_put(bool global);
u32 usip_mount_hooks_armed(void);

#endif /* _USIP_H */

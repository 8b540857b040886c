/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared by the parts of usip.ko (the generated netlink tables
 * are declared in usip-nl-gen.h).
 */
#ifndef _USIP_H
#define _USIP_H

#include <linux/atomic.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <net/genetlink.h>

extern struct genl_family usip_family;

/* Module parameters (usip-main.c). */
extern bool usip_allow_inject;
extern unsigned int usip_max_listeners_per_user;
extern unsigned int usip_max_notifiers_per_listener;
extern unsigned int usip_event_queue_len;

/*
 * Allocations the module holds (listeners, notifier arrays, strings, queued
 * events). The stats op reports it so tests can check nothing leaks.
 */
extern atomic_t usip_objects;

/* kfree() for an allocation counted in usip_objects; NULL is ignored. */
void usip_kfree(const void *p);

struct net;
struct ns_common;
struct pid;
struct pid_namespace;
struct user_namespace;

/* usip-ns.c: the mount namespace of a task, as a counted reference. */
int usip_ns_init(void);
struct ns_common *usip_mnt_ns_current(void);
struct ns_common *usip_mnt_ns_get_current(void);
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
};

#define USIP_EVENT_HAS_MOUNT_ID		BIT(0)
#define USIP_EVENT_HAS_PARENT_ID	BIT(1)
#define USIP_EVENT_HAS_DEV		BIT(2)
#define USIP_EVENT_HAS_COUNT		BIT(3)
#define USIP_EVENT_HAS_UNIQUE_ID	BIT(4)
/* A real mount table change: it gets its namespace's next ns-seq. */
#define USIP_EVENT_MOUNT_CHANGE		BIT(5)

/* A posted event, owned by the queue until it is delivered. */
struct usip_event {
	struct list_head node;
	struct usip_event_info info;
	u64 seq;
	u64 ns_seq;			/* 0: none */
	u64 timestamp;
	struct ns_common *mnt_ns;
	struct pid *pid;
	kuid_t uid;
};

/* Who an event message is built for. */
struct usip_event_dest {
	u32 listener_id;		/* 0 for a multicast copy */
	u32 cmd;
	bool has_cmd;
	u32 missed;
	/* With own_path: the path to give instead of the event's (NULL: none). */
	const char *path;
	bool own_path;
	struct pid_namespace *pid_ns;	/* pids are given in this namespace */
	struct user_namespace *user_ns;	/* uids likewise */
};

/* usip-event.c */
int usip_events_init(void);
void usip_events_stop(void);
void usip_events_exit(void);
int usip_event_post(const struct usip_event_info *info, struct ns_common *ns,
		    gfp_t gfp, u64 *seq);
bool usip_action_of_type(u32 type, u32 action);
const char *usip_type_name(u32 type);
const char *usip_action_name(u32 action);
struct sk_buff *usip_event_build(const struct usip_event *ev,
				 const struct usip_event_dest *dest);
void usip_event_multicast(const struct usip_event *ev, struct net *net);
void usip_event_count_delivery(bool delivered);

/* usip-listener.c */
struct usip_listener;

int usip_listeners_init(void);
void usip_listeners_exit(void);
/* Under RCU: does any listener want @ev? Counts a miss for each if @drop. */
bool usip_listeners_want(const struct usip_event *ev, bool drop);
void usip_listeners_deliver(const struct usip_event *ev);
void usip_listeners_report_missed(void);
void usip_listener_stats(u32 *listeners, u32 *notifiers);

/* usip-internals.c */
int usip_internals_init(void);

/* usip-mount-events.c: namespaces with listeners, and their event numbers. */
struct usip_mntns {
	struct hlist_node node;		/* in the table, RCU */
	struct rcu_head rcu;
	const struct ns_common *ns;	/* its listeners hold it */
	unsigned int users;		/* listeners registered in it */
	/* Under the event queue's lock (usip-event.c): */
	u64 seq;			/* the last ns-seq given */
	s64 gaps_seen;			/* usip_mount_gaps when last looked at */
};

extern atomic64_t usip_mount_gaps;

int usip_mount_events_init(void);
void usip_mount_events_exit(void);
bool usip_mount_events_available(void);
int usip_mntns_get(const struct ns_common *ns);
void usip_mntns_put(const struct ns_common *ns);
/* Under RCU. */
struct usip_mntns *usip_mntns_find(const struct ns_common *ns);
u64 usip_mntns_seq(const struct ns_common *ns);
void usip_mount_hooks_get(bool global);
void usip_mount_hooks_put(bool global);
u32 usip_mount_hooks_armed(void);
char *usip_root_prefix(void);

#endif /* _USIP_H */

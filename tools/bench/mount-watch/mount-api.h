/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's mount API as the mount-watch helpers use it: listmount(2) and statmount(2)
 * (include/uapi/linux/mount.h, Linux 6.8+) and fanotify's mount events
 * (include/uapi/linux/fanotify.h, Linux 6.15+). Defined here because the build host's headers
 * (Debian 12's) predate them; offsets checked against 6.12's and 7.3's headers.
 */
#ifndef MOUNT_WATCH_MOUNT_API_H
#define MOUNT_WATCH_MOUNT_API_H

#include <stddef.h>
#include <stdint.h>

#define SYS_statmount_nr	457	/* x86_64 */
#define SYS_listmount_nr	458

struct bench_mnt_id_req {
	uint32_t size;
	uint32_t spare;		/* mnt_ns_fd in later kernels; 0: the caller's namespace */
	uint64_t mnt_id;
	uint64_t param;
};
#define BENCH_MNT_ID_REQ_SIZE_VER0	24

struct bench_statmount {
	uint32_t size;
	uint32_t mnt_opts;
	uint64_t mask;
	uint32_t sb_dev_major;
	uint32_t sb_dev_minor;
	uint64_t sb_magic;
	uint32_t sb_flags;
	uint32_t fs_type;
	uint64_t mnt_id;
	uint64_t mnt_parent_id;
	uint32_t mnt_id_old;
	uint32_t mnt_parent_id_old;
	uint64_t mnt_attr;
	uint64_t mnt_propagation;
	uint64_t mnt_peer_group;
	uint64_t mnt_master;
	uint64_t propagate_from;
	uint32_t mnt_root;
	uint32_t mnt_point;
	uint64_t mnt_ns_id;
	uint32_t fs_subtype;	/* 6.13+ */
	uint32_t sb_source;	/* 6.13+ */
	uint64_t spare2[48];
	char str[];
};
_Static_assert(sizeof(struct bench_mnt_id_req) == BENCH_MNT_ID_REQ_SIZE_VER0, "mnt_id_req");
_Static_assert(offsetof(struct bench_statmount, fs_type) == 36, "statmount.fs_type");
_Static_assert(offsetof(struct bench_statmount, mnt_id) == 40, "statmount.mnt_id");
_Static_assert(offsetof(struct bench_statmount, mnt_attr) == 64, "statmount.mnt_attr");
_Static_assert(offsetof(struct bench_statmount, mnt_root) == 104, "statmount.mnt_root");
_Static_assert(offsetof(struct bench_statmount, mnt_point) == 108, "statmount.mnt_point");
_Static_assert(offsetof(struct bench_statmount, mnt_ns_id) == 112, "statmount.mnt_ns_id");
_Static_assert(offsetof(struct bench_statmount, sb_source) == 124, "statmount.sb_source");
_Static_assert(sizeof(struct bench_statmount) == 512, "statmount");

#define STATMOUNT_SB_BASIC		0x01u
#define STATMOUNT_MNT_BASIC		0x02u
#define STATMOUNT_PROPAGATE_FROM	0x04u
#define STATMOUNT_MNT_ROOT		0x08u
#define STATMOUNT_MNT_POINT		0x10u
#define STATMOUNT_FS_TYPE		0x20u
#define STATMOUNT_MNT_OPTS		0x80u	/* 6.11+ */
#define STATMOUNT_SB_SOURCE		0x200u	/* 6.13+ */
#define LSMT_ROOT			0xffffffffffffffffull

/* fanotify mount events (6.15+) */
#define BENCH_FAN_CLASS_NOTIF		0x00000000u
#define BENCH_FAN_CLOEXEC		0x00000001u
#define BENCH_FAN_NONBLOCK		0x00000002u
#define BENCH_FAN_REPORT_MNT		0x00004000u
#define BENCH_FAN_MARK_ADD		0x00000001u
#define BENCH_FAN_MARK_MNTNS		0x00000110u
#define BENCH_FAN_MNT_ATTACH		0x01000000ull
#define BENCH_FAN_MNT_DETACH		0x02000000ull
#define BENCH_FAN_Q_OVERFLOW		0x00004000ull
#define BENCH_FAN_EVENT_INFO_TYPE_MNT	7

struct bench_fanotify_event_metadata {
	uint32_t event_len;
	uint8_t vers;
	uint8_t reserved;
	uint16_t metadata_len;
	uint64_t mask;		/* aligned(8) in the uapi header */
	int32_t fd;
	int32_t pid;
};

struct bench_fanotify_event_info_mnt {
	uint8_t info_type;	/* struct fanotify_event_info_header */
	uint8_t pad;
	uint16_t len;
	uint32_t pad2;		/* the __u64 that follows is 8-aligned */
	uint64_t mnt_id;
};
_Static_assert(sizeof(struct bench_fanotify_event_metadata) == 24, "fanotify_event_metadata");
_Static_assert(offsetof(struct bench_fanotify_event_info_mnt, mnt_id) == 8, "fanotify_event_info_mnt");
_Static_assert(sizeof(struct bench_fanotify_event_info_mnt) == 16, "fanotify_event_info_mnt");

#endif

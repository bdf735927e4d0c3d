/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ipnfs.h - the binary interface of ipnfs port files, for any language.
 *
 * Framed mode (IPNFS_IOC_SET_FRAMED on an open port file): every read()
 * returns one or more whole records, as many as fit in the buffer, and every
 * write() carries one or more records.  A record is a struct ipnfs_record
 * followed by `len` payload bytes, padded with zeros to a multiple of 8
 * (IPNFS_RECORD_SIZE).  All fields are in host byte order: ipnfs is local IPC.
 *
 * Version 1.  A reader must check `version` and skip records of kinds it does
 * not know (their size is IPNFS_RECORD_FULL_SIZE(&header)).
 *
 * Sender credentials (IPNFS_IOC_SET_CREDS on the open file, as SO_PASSCRED
 * on a socket): records then carry a struct ipnfs_creds between the header
 * and the payload, flagged IPNFS_FLAG_CREDS.  Only descriptors that asked
 * get them, so a reader that did not ask sees the records it always saw.
 *
 * Cluster networks (ctl "scope cluster", docs/cluster.md): a port is a
 * node's port, as TIPC's node:port.  Every record read from such a network
 * (data and join/leave) carries a struct ipnfs_node after the credentials
 * (if any), flagged IPNFS_FLAG_NODE: the node whose port sent the message
 * or joined or left.  Records of other networks never carry it.
 */
#ifndef IPNFS_H
#define IPNFS_H

#include <linux/ioctl.h>
#include <stdint.h>

#define IPNFS_FRAME_VERSION 1

enum ipnfs_kind {
    IPNFS_DATA = 0,   /* a message; port = the sending port */
    IPNFS_JOIN = 1,   /* port = a port that connected (its first descriptor opened) */
    IPNFS_LEAVE = 2,  /* port = a port that disconnected (its last descriptor closed) */
    IPNFS_COUNTS = 3, /* payload: struct ipnfs_counts */
    IPNFS_LOST = 4,   /* payload: uint64_t, messages this port lost since it was last told
                       * (lossless: it held senders back longer than ctl "holdtime") */
};

/* Read side: the payload was cut to fit the reader's buffer (len is the
 * length before cutting; the record in the buffer holds what fitted, and
 * nothing follows it in that read; the rest is discarded: size framed
 * buffers with IPNFS_IOC_NEXT_SIZE).  Plain reads keep the rest for the next
 * read instead. */
#define IPNFS_FLAG_TRUNCATED 0x1u
/* Read side, with IPNFS_IOC_SET_CREDS on: a struct ipnfs_creds follows the
 * header.  A data record's says who wrote the message, a join's who opened
 * the port.  Records no process wrote (frames from kernel interfaces, cables
 * and VDE clients; leave, counts and lost events) have no such struct. */
#define IPNFS_FLAG_CREDS 0x2u
/* Read side, on a cluster network: a struct ipnfs_node follows the header
 * (and the credentials, if any).  Counts and lost events are this host's
 * and have none. */
#define IPNFS_FLAG_NODE 0x4u

/*
 * Addresses, for policies that take them (the group policy).  A written
 * record puts one IPNFS_TO_* in flags (IPNFS_FLAGS_TO) and names the
 * destination in its other fields:
 *   IPNFS_TO_DEFAULT    the sending port's default destination (ctl "dest")
 *   IPNFS_TO_PORT       port = the one receiving port; on a cluster network
 *                       seq = its node (0: this host's), as TIPC's node:port
 *   IPNFS_TO_ANYCAST    port = an instance: one receiving port holding it,
 *                       the least loaded, in turn among equals (on a
 *                       cluster network: in turn, over every host)
 *   IPNFS_TO_MULTICAST  port = the lowest instance, seq = the highest (the
 *                       same for one instance): every receiving port holding
 *                       one of them
 *   IPNFS_TO_BROADCAST  every receiving port
 * A read record's flags carry the IPNFS_TO_* its sender used.
 */
enum ipnfs_to {
    IPNFS_TO_DEFAULT = 0,
    IPNFS_TO_PORT = 1,
    IPNFS_TO_ANYCAST = 2,
    IPNFS_TO_MULTICAST = 3,
    IPNFS_TO_BROADCAST = 4,
};
#define IPNFS_TO_SHIFT 8
#define IPNFS_TO_MASK 0xF00u
#define IPNFS_FLAGS_TO(to) (((uint32_t)(to) << IPNFS_TO_SHIFT) & IPNFS_TO_MASK)
#define IPNFS_FLAGS_GET_TO(flags) (((flags)&IPNFS_TO_MASK) >> IPNFS_TO_SHIFT)

struct ipnfs_record {
    uint32_t len;     /* payload bytes */
    uint16_t kind;    /* enum ipnfs_kind; writers may only send IPNFS_DATA */
    uint16_t version; /* IPNFS_FRAME_VERSION */
    uint32_t port;    /* read: see enum ipnfs_kind; write: see enum ipnfs_to */
    uint32_t flags;   /* read: IPNFS_FLAG_* and IPNFS_FLAGS_TO; write: IPNFS_FLAGS_TO only */
    uint64_t seq;     /* read: position in the network's total order; write: see enum ipnfs_to */
};

/*
 * Who sent a message, as the kernel put it in the write request (or, for a
 * join, in the open that connected the port): SCM_CREDENTIALS's ucred.
 * uid and gid are the writing thread's fsuid and fsgid, in the daemon's
 * user namespace: the kernel's word, whatever the writer claims.  pid is
 * the writing thread's id (the process id for a single-threaded writer) in
 * the daemon's pid namespace, 0 when the writer cannot be seen from there;
 * it may name another process once the writer has exited.  A descriptor
 * handed to another process writes with that process's credentials.
 */
struct ipnfs_creds {
    uint32_t pid;
    uint32_t uid;
    uint32_t gid;
    uint32_t pad; /* 0 */
};

/* The node of a cluster network's record: Corosync's nodeid of the host
 * whose port sent the message (or joined, or left). */
struct ipnfs_node {
    uint32_t node;
    uint32_t pad; /* 0 */
};

/* Payload of IPNFS_COUNTS: how many ports have a reader / a writer. */
struct ipnfs_counts {
    uint32_t receivers;
    uint32_t senders;
};

#define IPNFS_RECORD_ALIGN 8u
#define IPNFS_RECORD_SIZE(len)                                        \
    ((sizeof(struct ipnfs_record) + (len) + IPNFS_RECORD_ALIGN - 1) & \
     ~(size_t)(IPNFS_RECORD_ALIGN - 1))
/* The bytes between the header and the payload: a struct ipnfs_creds, then
 * a struct ipnfs_node, each only if its flag is set. */
#define IPNFS_CREDS_SIZE(flags) \
    (((flags)&IPNFS_FLAG_CREDS) != 0 ? sizeof(struct ipnfs_creds) : (size_t)0)
#define IPNFS_NODE_SIZE(flags) \
    (((flags)&IPNFS_FLAG_NODE) != 0 ? sizeof(struct ipnfs_node) : (size_t)0)
#define IPNFS_EXTRA_SIZE(flags) (IPNFS_CREDS_SIZE(flags) + IPNFS_NODE_SIZE(flags))
/* A whole record, from a pointer to its header: where the next one starts
 * (a truncated record runs to the end of the read instead). */
#define IPNFS_RECORD_FULL_SIZE(hdr) (IPNFS_EXTRA_SIZE((hdr)->flags) + IPNFS_RECORD_SIZE((hdr)->len))

#define IPNFS_IOC_MAGIC 0xE7
/* int: 1 = framed records on this open file, 0 = one plain message per call
 * (a plain read smaller than the message gets its first bytes, the next
 * plain reads of the same open file the rest).  EBUSY for 1 while such a
 * rest is kept: read it plainly first. */
#define IPNFS_IOC_SET_FRAMED _IOW(IPNFS_IOC_MAGIC, 1, int)
/* uint32_t: the port this open file is connected to (useful after opening clone). */
#define IPNFS_IOC_GET_PORT _IOR(IPNFS_IOC_MAGIC, 2, uint32_t)
/* int: 1 = this port also receives join/leave/counts events (as ctl "events PORT on"). */
#define IPNFS_IOC_SET_EVENTS _IOW(IPNFS_IOC_MAGIC, 3, int)

/* A ctl setting of this file's own port, without the port number: "member 7"
 * runs as "member PORT 7".  Only settings that take the port first may be
 * changed this way (see ctl's help), and only as far as this descriptor
 * grants: a setting of what the port receives (events, loopback, member,
 * subscribe) needs it open for reading, of what it sends (dest) open for
 * writing, and dropwhenfull, which makes the port's reader lose messages,
 * needs its opener to have write access to ctl.  Else EPERM.  What a
 * holder sets lasts until the port's last descriptor closes: then the port
 * goes back to its configuration (what a manager wrote to ctl; else the
 * defaults), and ctl marks it meanwhile ("# set by its holder: reset at
 * its last close").  Fails with
 * the command's errno; the reason goes to the daemon's log. */
struct ipnfs_port_ctl {
    char line[256]; /* NUL-terminated */
};
#define IPNFS_IOC_PORT_CTL _IOW(IPNFS_IOC_MAGIC, 4, struct ipnfs_port_ctl)

/* uint32_t: the bytes a plain read() would return whole: the rest of a
 * message kept for this open file by a shorter read, else the next message
 * (its payload, or its line on events), without taking it; 0 if there is
 * none (messages are never empty).  FIONREAD cannot say this: the kernel answers
 * it from the file size, 65535 for a port file. */
#define IPNFS_IOC_NEXT_SIZE _IOR(IPNFS_IOC_MAGIC, 5, uint32_t)

/* int: 1 = this open file's reads say who sent each message (as SO_PASSCRED):
 * framed records carry a struct ipnfs_creds (IPNFS_FLAG_CREDS), and join
 * events, framed or plain ("join 3 uid 1000 gid 1000 pid 4242"), who opened
 * the port.  Plain data reads have no room for it and stay as they are.  A
 * framed read then needs room for a header and its credentials (40 bytes).
 * On a port file or the events file.  What a descriptor may do is decided
 * by its opener's credentials, never by these. */
#define IPNFS_IOC_SET_CREDS _IOW(IPNFS_IOC_MAGIC, 6, int)

#endif /* IPNFS_H */

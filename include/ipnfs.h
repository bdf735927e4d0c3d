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
 * not know (their size is still IPNFS_RECORD_SIZE(len)).
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
};

/* Read side: the payload was cut to fit the reader's buffer (len is the
 * length before cutting; the record in the buffer holds what fitted). */
#define IPNFS_FLAG_TRUNCATED 0x1u

struct ipnfs_record {
    uint32_t len;     /* payload bytes */
    uint16_t kind;    /* enum ipnfs_kind; writers may only send IPNFS_DATA */
    uint16_t version; /* IPNFS_FRAME_VERSION */
    uint32_t port;    /* see enum ipnfs_kind; ignored on write */
    uint32_t flags;   /* IPNFS_FLAG_*; must be 0 on write */
    uint64_t seq;     /* position in the network's total order; ignored on write */
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

#define IPNFS_IOC_MAGIC 0xE7
/* int: 1 = framed records on this open file, 0 = one plain message per call. */
#define IPNFS_IOC_SET_FRAMED _IOW(IPNFS_IOC_MAGIC, 1, int)
/* uint32_t: the port this open file is connected to (useful after opening clone). */
#define IPNFS_IOC_GET_PORT _IOR(IPNFS_IOC_MAGIC, 2, uint32_t)
/* int: 1 = this port also receives join/leave/counts events (as ctl "events PORT on"). */
#define IPNFS_IOC_SET_EVENTS _IOW(IPNFS_IOC_MAGIC, 3, int)

#endif /* IPNFS_H */

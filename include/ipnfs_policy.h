/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ipnfs_policy.h - the interface of ipnfs delivery policies, for plugins.
 *
 * A policy decides who receives each message of a network.  A plugin is a
 * shared object, FILE.so in the directory named by the mount option
 * `plugins=DIR`, that exports one C function:
 *
 *     const struct ipnfs_policy *ipnfs_policy(void);
 *
 * Writing "policy FILE" to a network's ctl makes a new instance of it for
 * that network.  Whatever a built-in policy (hub, switch, group) can do, a
 * plugin can do through this table: tests/unit/policy_conformance_test.cpp
 * builds the built-ins as plugins and checks that they answer alike.
 *
 * Threads: the daemon calls an instance from one thread at a time (under its
 * network's lock), so a policy needs no locks of its own, and it must never
 * block: every message of the network waits for route().  Instances of one
 * plugin share nothing unless the plugin makes them.
 *
 * ABI version 5 (2 added reset_port; 3 added link_type, and moved every
 * field after `addressing`; 4 added sent() and replaced ipnfs_route's
 * `retry` with `tally`, because the daemon cannot tell a message routed
 * again from a new one: count in sent(), never in route(); 5 added `scopes`
 * at the end of the table).  A daemon takes plugins of its own ABI and of
 * ABI 4 (which run in node scope only), and refuses any other (ELIBBAD,
 * "built for policy ABI 3, this ipnfs speaks ABI 5"): rebuild it against
 * this header.
 *
 * Cluster scope (docs/cluster.md): a plugin whose `scopes` has
 * IPNFS_SCOPE_CLUSTER may run a network that spans hosts.  Each host's
 * daemon then runs an instance of its own and calls its route() for every
 * message of the whole cluster, in the one order, to choose among that
 * host's ports only; a message another host's port sent comes with `from`
 * IPNFS_PORT_ELSEWHERE.  So its choices for a message may depend only on the
 * message and on the state of this host's ports (their settings, attach and
 * detach): then every host decides for its own ports as one policy would for
 * all.  Addresses of one port of the whole cluster (IPNFS_TO_PORT,
 * IPNFS_TO_ANYCAST) are refused there (EOPNOTSUPP); those the plugin takes
 * of the other kinds reach every host's instance.
 */
#ifndef IPNFS_POLICY_H
#define IPNFS_POLICY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipnfs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IPNFS_POLICY_ABI 5

/* ipnfs_policy.scopes: where it may run besides one host (node scope). */
#define IPNFS_SCOPE_CLUSTER 0x1u /* on every host of a cluster network (above) */

/* route()'s `from` for a message another host's port sent (cluster scope):
 * no port of this host has the number. */
#define IPNFS_PORT_ELSEWHERE 0x7fffffffu

/* Where the sender asked a message to go (enum ipnfs_to in ipnfs.h). */
struct ipnfs_address {
    uint32_t to;    /* enum ipnfs_to */
    uint32_t lower; /* IPNFS_TO_PORT: the port; ANYCAST, MULTICAST: the lowest instance */
    uint32_t upper; /* MULTICAST: the highest instance */
};

struct ipnfs_route;

/* What the daemon offers route(). */
struct ipnfs_route_ops {
    /* Messages waiting in the port's queue now, and how many it can hold
     * (0 when nobody reads the port): for load-aware choices. */
    uint32_t (*queued)(const struct ipnfs_route* r, uint32_t port);
    uint32_t (*capacity)(const struct ipnfs_route* r, uint32_t port);
    /* A rewritten form of the message, `len` bytes for the policy to fill,
     * sent to the ports later named with variant_add(); *id names it.  A
     * variant longer than the largest message (65535 bytes) is dropped and
     * counted at each of its ports.  NULL if no memory. */
    void* (*variant)(struct ipnfs_route* r, uint32_t len, uint32_t* id);
    /* -1 if the port is named already or not receiving. */
    int (*variant_add)(struct ipnfs_route* r, uint32_t id, uint32_t port);
};

/* One message to route.  The policy names receiving ports (ipnfs_route_add),
 * each at most once in the whole route, never a port that does not receive
 * (ipnfs_route_ops.capacity() == 0); the daemon drops and counts a name that
 * breaks these rules.
 *
 * One message may be routed many times: a lossless send that waits for room
 * is routed anew each time room may have appeared, and a non-blocking write
 * that got EAGAIN comes back as a new write, which the daemon cannot tell
 * from a new message.  Only the route that is accepted reaches sent(). */
struct ipnfs_route {
    /* in */
    uint32_t from;                /* the sending port */
    struct ipnfs_address to;      /* IPNFS_TO_DEFAULT unless the sender named one */
    const unsigned char* payload; /* never NULL, even when len is 0 */
    uint32_t len;
    /* out: the policy's own note of what to count if this route is accepted
     * (0 on entry), for sent() to read back */
    uint32_t tally;
    /* out */
    uint32_t* ports; /* room for `capacity` ports */
    uint32_t count;
    uint32_t capacity;
    /* Refuse the send: an errno (EHOSTUNREACH: nobody holds the address) and
     * a reason for the log, a string that outlives the call. */
    int error;
    const char* reason;
    /* the daemon's */
    const struct ipnfs_route_ops* ops;
    void* host;
};

static inline int ipnfs_route_add(struct ipnfs_route* r, uint32_t port) {
    if (r->count == r->capacity) return -1;
    r->ports[r->count++] = port;
    return 0;
}

static inline void ipnfs_route_refuse(struct ipnfs_route* r, int error, const char* reason) {
    r->error = error;
    r->reason = reason;
}

/* Text the daemon collects: ctl lines, stats lines, error reasons. */
struct ipnfs_text {
    void (*append)(struct ipnfs_text* t, const char* s, size_t n);
    void* host;
};

static inline void ipnfs_text_printf(struct ipnfs_text* t, const char* format, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static inline void ipnfs_text_printf(struct ipnfs_text* t, const char* format, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, sizeof buf, format, ap);
    va_end(ap);
    if (n > 0) t->append(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A ctl verb of the policy: the daemon checks the word count and shows the
 * help; command() runs it. */
#define IPNFS_VERB_PORT 0x1u /* the first word is a port: its holder may run it */
/* With IPNFS_VERB_PORT, what the holder's descriptor must grant (without
 * either: open for reading, as for a setting of what the port receives). */
#define IPNFS_VERB_PORT_SENDS 0x2u  /* what the port sends: open for writing */
#define IPNFS_VERB_PORT_MANAGE 0x4u /* it can make the port lose data: may write ctl */
struct ipnfs_verb {
    const char* verb;  /* "subscribe" */
    const char* args;  /* "PORT PREFIX", for help */
    uint32_t nargs;    /* words that must follow the verb */
    uint32_t optional; /* words that may follow those */
    uint32_t flags;    /* IPNFS_VERB_* */
    const char* help;  /* one line */
};

/* What the messages of a network are, for a capture (the capture file's
 * pcap link type). */
#define IPNFS_LINK_OPAQUE 0u   /* bytes the bus does not interpret (LINKTYPE_USER0) */
#define IPNFS_LINK_ETHERNET 1u /* Ethernet frames (LINKTYPE_ETHERNET) */

struct ipnfs_policy {
    uint32_t abi;        /* IPNFS_POLICY_ABI */
    uint32_t addressing; /* 1u << IPNFS_TO_* for each address it takes besides DEFAULT */
    uint32_t link_type;  /* IPNFS_LINK_*: what the messages it routes are */
    const char* name;    /* as ctl names it; a plugin's must be its file name without .so */
    const char* summary; /* one line for help */

    /* NULL on failure (the policy is refused). */
    void* (*create)(void);
    void (*destroy)(void* self);

    /* The network has `count` ports, 0..count-1: called before anything
     * else and whenever the count changes.  Ports at or above a smaller new
     * count are detached first. */
    void (*ports)(void* self, uint32_t count);
    /* A port can receive now (its first reader opened it) / no longer. */
    void (*attach)(void* self, uint32_t port);
    void (*detach)(void* self, uint32_t port);

    void (*route)(void* self, struct ipnfs_route* r);

    /* Its ctl verbs (may be none); the table stays valid while self lives. */
    const struct ipnfs_verb* (*verbs)(void* self, uint32_t* count);
    /* Runs verbs[verb] with its words: 0, or an errno with a reason appended. */
    int (*command)(void* self, uint32_t verb, uint32_t argc, const char* const* argv,
                   struct ipnfs_text* reason);
    /* Its settings as ctl lines that could be written back; a port's
     * setting as its own line "VERB PORT ...", which tells the daemon whose
     * it is (ctl marks a holder's). */
    void (*describe)(void* self, struct ipnfs_text* out);
    /* Its own lines of the stats file; may be NULL. */
    void (*stats)(void* self, struct ipnfs_text* out);
    /* Back to the defaults: every setting of `port` (its IPNFS_VERB_PORT
     * verbs) as if none had been made.  Called when the last descriptor of a
     * port whose holder changed a setting (IPNFS_IOC_PORT_CTL) closes, so
     * that nothing a holder set reaches the port's next user; the daemon
     * then runs the port's configuration lines (a manager's) again.  May be NULL:
     * then only ctl may run the plugin's verbs, never a port's holder. */
    void (*reset_port)(void* self, uint32_t port);
    /* The message route() was just called for is accepted: delivered to the
     * ports it named, or refused with its error (the write fails with it:
     * once per write).  Called right after that route() call, nothing in
     * between, with the same `r` as it left it (read it only; its ops'
     * queued() and capacity() still answer), at most once per message: never
     * for a route that waits or ends in EAGAIN, nor for a parked send that
     * is interrupted.  Count here.  May be NULL. */
    void (*sent)(void* self, const struct ipnfs_route* r);

    /* ABI 5.  IPNFS_SCOPE_* bits: the scopes besides node it may run in
     * (0: one host only).  A daemon never reads it from an ABI 4 table. */
    uint32_t scopes;
};

/* The symbol a plugin exports. */
#define IPNFS_POLICY_SYMBOL "ipnfs_policy"
typedef const struct ipnfs_policy* (*ipnfs_policy_entry)(void);

#ifdef __cplusplus
}
#endif

#endif /* IPNFS_POLICY_H */

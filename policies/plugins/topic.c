/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * topic.so - an example policy plugin: publish/subscribe by topic prefix.
 *
 * Each port subscribes to prefixes ("subscribe PORT PREFIX"); a message goes
 * to every other receiving port holding a prefix that its payload starts
 * with.  A subscriber of "" gets everything.  Written in plain C against
 * include/ipnfs_policy.h only, as a third party would: build it with
 *
 *     cc -shared -fPIC -o topic.so topic.c
 *
 * and mount with -o plugins=DIR.  Routing walks every receiving port's
 * prefixes: fine for the tens of subscribers an example has in mind.
 *
 * It runs on cluster networks too (IPNFS_SCOPE_CLUSTER): whether a port
 * gets a message depends only on the message and that port's prefixes, so
 * each host's instance chooses among its own ports, and a message another
 * host's port sent (from IPNFS_PORT_ELSEWHERE, which no port here equals)
 * reaches this host's subscribers.  Its counts are then of this host's
 * deliveries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipnfs_policy.h"

#define TOPIC_MAX_PREFIX 255
#define TOPIC_MAX_PREFIXES 64 /* per port */

struct port {
    char **prefixes;
    size_t *lengths;
    uint32_t count;
    int attached;
};

struct topic {
    struct port *ports;
    uint32_t nports;
    uint64_t matched;   /* messages that reached at least one subscriber */
    uint64_t unmatched; /* messages nobody subscribed to */
};

static const struct ipnfs_verb verbs[] = {
    {"subscribe", "PORT PREFIX", 2, 0, IPNFS_VERB_PORT,
     "the port gets the messages that start with PREFIX (* for every message)"},
    {"unsubscribe", "PORT PREFIX|all", 2, 0, IPNFS_VERB_PORT,
     "the port stops getting messages that start with PREFIX"},
};

static void clear_port(struct port *p) {
    for (uint32_t i = 0; i < p->count; ++i) free(p->prefixes[i]);
    free(p->prefixes);
    free(p->lengths);
    p->prefixes = NULL;
    p->lengths = NULL;
    p->count = 0;
}

static void *topic_create(void) {
    return calloc(1, sizeof(struct topic));
}

static void topic_destroy(void *self) {
    struct topic *t = self;
    for (uint32_t i = 0; i < t->nports; ++i) clear_port(&t->ports[i]);
    free(t->ports);
    free(t);
}

static void topic_ports(void *self, uint32_t count) {
    struct topic *t = self;
    for (uint32_t i = count; i < t->nports; ++i) clear_port(&t->ports[i]);
    struct port *grown = realloc(t->ports, (count ? count : 1) * sizeof *grown);
    if (grown == NULL) {
        /* Shrinking never fails; growing keeps the ports it had. */
        if (count > t->nports) return;
    } else {
        t->ports = grown;
    }
    if (count > t->nports) memset(t->ports + t->nports, 0, (count - t->nports) * sizeof *t->ports);
    t->nports = count;
}

static void topic_attach(void *self, uint32_t port) {
    struct topic *t = self;
    if (port < t->nports) t->ports[port].attached = 1;
}

static void topic_detach(void *self, uint32_t port) {
    struct topic *t = self;
    if (port < t->nports) t->ports[port].attached = 0;
}

static int subscribed(const struct port *p, const unsigned char *payload, uint32_t len) {
    for (uint32_t i = 0; i < p->count; ++i) {
        if (p->lengths[i] <= len && memcmp(p->prefixes[i], payload, p->lengths[i]) == 0) return 1;
    }
    return 0;
}

static void topic_route(void *self, struct ipnfs_route *r) {
    struct topic *t = self;
    for (uint32_t port = 0; port < t->nports; ++port) {
        const struct port *p = &t->ports[port];
        if (port == r->from || !p->attached) continue;
        if (subscribed(p, r->payload, r->len)) ipnfs_route_add(r, port);
    }
}

/* Counted here, not in route(): a message may be routed several times (it
 * waited for room, or a non-blocking write was retried after EAGAIN), and
 * only the route that is accepted comes here. */
static void topic_sent(void *self, const struct ipnfs_route *r) {
    struct topic *t = self;
    if (r->count > 0) {
        ++t->matched;
    } else {
        ++t->unmatched;
    }
}

static int parse_port(const struct topic *t, const char *word, uint32_t *out,
                      struct ipnfs_text *reason) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(word, &end, 10);
    if (errno != 0 || *word == '\0' || *end != '\0' || v >= t->nports) {
        ipnfs_text_printf(reason, "port must be a number from 0 to %u, not '%s'", t->nports - 1,
                          word);
        return EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

/* "*" stands for the empty prefix, which a ctl line cannot hold. */
static const char *prefix_of(const char *word) {
    return strcmp(word, "*") == 0 ? "" : word;
}

static int subscribe(struct port *p, const char *prefix, struct ipnfs_text *reason) {
    size_t len = strlen(prefix);
    if (len > TOPIC_MAX_PREFIX) {
        ipnfs_text_printf(reason, "a prefix has at most %d bytes", TOPIC_MAX_PREFIX);
        return EINVAL;
    }
    for (uint32_t i = 0; i < p->count; ++i) {
        if (strcmp(p->prefixes[i], prefix) == 0) return 0;
    }
    if (p->count == TOPIC_MAX_PREFIXES) {
        ipnfs_text_printf(reason, "a port holds at most %d prefixes", TOPIC_MAX_PREFIXES);
        return ENOSPC;
    }
    char **prefixes = realloc(p->prefixes, (p->count + 1) * sizeof *prefixes);
    if (prefixes != NULL) p->prefixes = prefixes;
    size_t *lengths = realloc(p->lengths, (p->count + 1) * sizeof *lengths);
    if (lengths != NULL) p->lengths = lengths;
    char *copy = strdup(prefix);
    if (prefixes == NULL || lengths == NULL || copy == NULL) {
        free(copy);
        return ENOMEM;
    }
    p->prefixes[p->count] = copy;
    p->lengths[p->count] = len;
    ++p->count;
    return 0;
}

static void unsubscribe(struct port *p, const char *prefix) {
    if (strcmp(prefix, "all") == 0) {
        clear_port(p);
        return;
    }
    for (uint32_t i = 0; i < p->count; ++i) {
        if (strcmp(p->prefixes[i], prefix) == 0) {
            free(p->prefixes[i]);
            p->prefixes[i] = p->prefixes[p->count - 1];
            p->lengths[i] = p->lengths[p->count - 1];
            --p->count;
            return;
        }
    }
}

static const struct ipnfs_verb *topic_verbs(void *self, uint32_t *count) {
    (void)self;
    *count = sizeof verbs / sizeof verbs[0];
    return verbs;
}

static int topic_command(void *self, uint32_t verb, uint32_t argc, const char *const *argv,
                         struct ipnfs_text *reason) {
    struct topic *t = self;
    uint32_t port = 0;
    if (argc != 2) return EINVAL;
    int err = parse_port(t, argv[0], &port, reason);
    if (err != 0) return err;
    if (verb == 0) return subscribe(&t->ports[port], prefix_of(argv[1]), reason);
    unsubscribe(&t->ports[port], prefix_of(argv[1]));
    return 0;
}

static void topic_describe(void *self, struct ipnfs_text *out) {
    const struct topic *t = self;
    for (uint32_t port = 0; port < t->nports; ++port) {
        const struct port *p = &t->ports[port];
        for (uint32_t i = 0; i < p->count; ++i) {
            ipnfs_text_printf(out, "subscribe %u %s\n", port,
                              p->lengths[i] == 0 ? "*" : p->prefixes[i]);
        }
    }
}

static void topic_stats(void *self, struct ipnfs_text *out) {
    const struct topic *t = self;
    ipnfs_text_printf(out, "topic matched %llu unmatched %llu\n", (unsigned long long)t->matched,
                      (unsigned long long)t->unmatched);
}

static void topic_reset_port(void *self, uint32_t port) {
    struct topic *t = self;
    if (port < t->nports) clear_port(&t->ports[port]);
}

static const struct ipnfs_policy table = {
    .abi = IPNFS_POLICY_ABI,
    .addressing = 0,
    .link_type = IPNFS_LINK_OPAQUE,
    .name = "topic",
    .summary = "each port gets the messages that start with a prefix it subscribed to",
    .create = topic_create,
    .destroy = topic_destroy,
    .ports = topic_ports,
    .attach = topic_attach,
    .detach = topic_detach,
    .route = topic_route,
    .verbs = topic_verbs,
    .command = topic_command,
    .describe = topic_describe,
    .stats = topic_stats,
    .reset_port = topic_reset_port,
    .sent = topic_sent,
    .scopes = IPNFS_SCOPE_CLUSTER,
};

__attribute__((visibility("default"))) const struct ipnfs_policy *ipnfs_policy(void) {
    return &table;
}

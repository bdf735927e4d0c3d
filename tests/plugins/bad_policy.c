/*
 * Plugins the daemon must refuse, one per BAD_* macro: each is otherwise a
 * working policy (a hub), so the refusal is for that one fault.  BAD_ABI4
 * is the exception, a plugin built for ABI 4 that the daemon takes in node
 * scope: its `scopes` says cluster, which an ABI 4 table cannot say, so a
 * daemon that read it would be wrong.
 */
#include <stdlib.h>

#include "ipnfs_policy.h"

struct hub {
    uint32_t nports;
    unsigned char* attached;
};

static void* create(void) {
    return calloc(1, sizeof(struct hub));
}

static void destroy(void* self) {
    struct hub* h = self;
    free(h->attached);
    free(h);
}

static void ports(void* self, uint32_t count) {
    struct hub* h = self;
    unsigned char* a = realloc(h->attached, count ? count : 1);
    if (a == NULL) return;
    for (uint32_t i = h->nports; i < count; ++i) a[i] = 0;
    h->attached = a;
    h->nports = count;
}

static void attach(void* self, uint32_t port) {
    struct hub* h = self;
    if (port < h->nports) h->attached[port] = 1;
}

static void detach(void* self, uint32_t port) {
    struct hub* h = self;
    if (port < h->nports) h->attached[port] = 0;
}

__attribute__((unused)) static void route(void* self, struct ipnfs_route* r) {
    struct hub* h = self;
    for (uint32_t p = 0; p < h->nports; ++p) {
        if (p != r->from && h->attached[p]) ipnfs_route_add(r, p);
    }
#ifdef BAD_NAMES
    /* Names a port twice and one that does not exist. */
    if (r->count > 0) ipnfs_route_add(r, r->ports[0]);
    ipnfs_route_add(r, h->nports + 7);
#endif
#ifdef BAD_ERRNO
    ipnfs_route_refuse(r, -113, "nobody"); /* -EHOSTUNREACH */
#endif
}

#if defined(BAD_VERB) || defined(BAD_ERRNO)
/* BAD_VERB: a verb without a name, which the daemon would read as a string.
 * BAD_ERRNO: errnos negated, the kernel's habit, which no client can be
 * handed as they are. */
static const struct ipnfs_verb verbs_table[] = {
#ifdef BAD_VERB
    {NULL, "PORT", 1, 0, 0, "a verb without a name"},
#else
    {"poke", "PORT", 1, 0, 0, "fails with -EINVAL"},
#endif
};

static const struct ipnfs_verb* verbs(void* self, uint32_t* count) {
    (void)self;
    *count = 1;
    return verbs_table;
}

static int command(void* self, uint32_t verb, uint32_t argc, const char* const* argv,
                   struct ipnfs_text* reason) {
    (void)self;
    (void)verb;
    (void)argc;
    (void)argv;
    (void)reason;
    return -22; /* -EINVAL */
}
#endif

static void describe(void* self, struct ipnfs_text* out) {
    (void)self;
    (void)out;
}

static const struct ipnfs_policy table = {
#ifdef BAD_ABI
    .abi = 99, /* an ABI no daemon speaks */
#elif defined(BAD_ABI4)
    .abi = 4,
#else
    .abi = IPNFS_POLICY_ABI,
#endif
#ifdef BAD_LINK
    .link_type = 7, /* no IPNFS_LINK_* */
#else
    .link_type = IPNFS_LINK_OPAQUE,
#endif
#ifdef BAD_NAME
    .name = "somebody_else",
#else
    .name = PLUGIN_NAME,
#endif
    .summary = "a test plugin",
    .create = create,
    .destroy = destroy,
    .ports = ports,
    .attach = attach,
    .detach = detach,
#ifndef BAD_NO_ROUTE
    .route = route,
#endif
    .describe = describe,
#if defined(BAD_VERB) || defined(BAD_ERRNO)
    .verbs = verbs,
    .command = command,
#endif
#ifdef BAD_SCOPE
    .scopes = 0x2, /* no IPNFS_SCOPE_* */
#elif defined(BAD_ABI4)
    .scopes = IPNFS_SCOPE_CLUSTER,
#endif
};

#ifdef BAD_NO_SYMBOL
__attribute__((visibility("default"))) const struct ipnfs_policy* not_the_entry(void) {
    return &table;
}
#else
__attribute__((visibility("default"))) const struct ipnfs_policy* ipnfs_policy(void) {
    return &table;
}
#endif

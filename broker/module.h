/*
 * module.h: loading adapter modules (include/chakong/adapter.h) and the
 * struct ck_host the broker lends them.
 *
 * At start-up each [adapter.<name>] section loads
 * <module_dir>/ck_<module>.so, calls its ck_adapter_<module>() and checks
 * the ABI version, the struct size and the name; a mismatch is fatal with
 * a message naming the file and both versions. Modules stay loaded for the
 * life of the process (a SIGHUP does not reload them: changing adapters
 * needs a restart, and the log says so).
 */
#ifndef CK_MODULE_H
#define CK_MODULE_H

#include <stddef.h>

#include "chakong/adapter.h"

struct ck_config;
struct ck_pool;
struct event_base;

/* One configured adapter instance. */
struct ck_adapter {
	char name[32];			/* [adapter.<name>] */
	char module[32];
	const struct ck_adapter_ops *ops;
	void *self;			/* from ops->create */
	void *dl;			/* dlopen handle */
	const char *sources[64];	/* from ops->sources */
	size_t nsources;
	uint32_t categories;		/* ops->categories, narrowed by the
					   section's `categories` key */
};

struct ck_adapters {
	struct ck_host host;
	struct ck_adapter list[16];
	size_t n;
};

/*
 * Load every configured adapter with `pool` behind the host's channels.
 * Returns 0, or < 0 with "file:line: ..." in err.
 */
int ck_adapters_load(const struct ck_config *cfg, struct event_base *base,
    struct ck_pool *pool, struct ck_adapters **out, char *err,
    size_t errlen);
/* Destroys instances and unloads modules; NULL-safe. */
void ck_adapters_free(struct ck_adapters *ads);

#endif

/*
 * module.c: adapter module loading and the host services (see module.h).
 */
#include "module.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "fanout.h"
#include "log.h"
#include "pool.h"
#include "util.h"

/* The host's channels are the pool's; the pool is process-wide. */
static struct ck_pool *host_pool;

static void
host_log(int prio, const char *log_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ck_vlog(prio, log_id, fmt, ap);
	va_end(ap);
}

static int
host_channel_open(const struct ck_host *host, const char *endpoint,
    struct ck_channel **out)
{
	(void)host;
	if (host_pool == NULL)
		return CK_ENOTFOUND;
	return ck_pool_channel(host_pool, endpoint, out);
}

static int
host_rpc_start(struct ck_channel *ch, const char *path, const uint8_t *req,
    size_t len, uint64_t timeout_usec, const char *log_id, ck_rpc_cb cb,
    void *arg, struct ck_rpc **out)
{
	return ck_pool_rpc_start(ch, path, req, len, timeout_usec, log_id, cb,
	    arg, out);
}

/*
 * The section's `categories = deposit, real-estate` narrows what the
 * module serves; 0 with *mask set, or CK_ECONFIG with a message.
 */
static int
instance_categories(const struct ck_adapter_conf *ac, uint32_t module_mask,
    uint32_t *mask, char *msg, size_t msglen)
{
	char buf[sizeof(ac->kv[0].value)], *save = NULL, *tok;

	*mask = module_mask;
	for (size_t i = 0; i < ac->nkv; i++) {
		if (strcmp(ac->kv[i].key, "categories") != 0)
			continue;
		*mask = 0;
		ck_strlcpy(buf, ac->kv[i].value, sizeof(buf));
		for (tok = strtok_r(buf, ", ", &save); tok != NULL;
		    tok = strtok_r(NULL, ", ", &save)) {
			int c = ck_category_by_name(tok);

			if (c == 0 || !(module_mask & CK_CATEGORY_BIT(c))) {
				snprintf(msg, msglen, "categories: \"%s\" is "
				    "not a category this module serves", tok);
				return CK_ECONFIG;
			}
			*mask |= CK_CATEGORY_BIT(c);
		}
		if (*mask == 0) {
			snprintf(msg, msglen, "categories: at least one");
			return CK_ECONFIG;
		}
	}
	return 0;
}

static int
load_one(const struct ck_config *cfg, const struct ck_adapter_conf *ac,
    struct ck_adapters *ads, struct ck_adapter *a, char *err, size_t errlen)
{
	char path[640], sym[64], cerr[256] = "";
	struct ck_kv kv[CK_MAX_ADAPTER_KEYS];
	ck_adapter_entry_fn entry;
	const struct ck_adapter_ops *ops;
	int rv;

	snprintf(path, sizeof(path), "%s/ck_%s.so", cfg->module_dir,
	    ac->module);
	a->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (a->dl == NULL) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] module %s: %s",
		    cfg->path, ac->line, ac->name, ac->module, dlerror());
		return CK_ECONFIG;
	}
	snprintf(sym, sizeof(sym), "ck_adapter_%s", ac->module);
	*(void **)&entry = dlsym(a->dl, sym);
	if (entry == NULL) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] %s does not export "
		    "%s()", cfg->path, ac->line, ac->name, path, sym);
		return CK_EABI;
	}
	ops = entry();
	if (ops == NULL || ops->abi != CK_ADAPTER_ABI) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] %s was built for "
		    "adapter ABI %u; this chakongd speaks ABI %u: rebuild the "
		    "module against this chakong/adapter.h", cfg->path,
		    ac->line, ac->name, path, ops != NULL ? ops->abi : 0,
		    CK_ADAPTER_ABI);
		return CK_EABI;
	}
	if (ops->size < sizeof(*ops)) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] %s: struct "
		    "ck_adapter_ops is %u bytes, expected at least %zu",
		    cfg->path, ac->line, ac->name, path, ops->size,
		    sizeof(*ops));
		return CK_EABI;
	}
	if (ops->name == NULL || strcmp(ops->name, ac->module) != 0 ||
	    ops->create == NULL || ops->destroy == NULL ||
	    ops->start == NULL || ops->cancel == NULL ||
	    ops->sources == NULL) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] %s: its ops name "
		    "\"%s\" or functions do not match module \"%s\"",
		    cfg->path, ac->line, ac->name, path,
		    ops->name != NULL ? ops->name : "", ac->module);
		return CK_EABI;
	}
	if (instance_categories(ac, ops->categories, &a->categories, cerr,
	    sizeof(cerr)) != 0) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] %s", cfg->path,
		    ac->line, ac->name, cerr);
		return CK_ECONFIG;
	}
	for (size_t i = 0; i < ac->nkv; i++) {
		kv[i].key = ac->kv[i].key;
		kv[i].value = ac->kv[i].value;
	}
	rv = ops->create(&ads->host, kv, ac->nkv, &a->self, cerr,
	    sizeof(cerr));
	if (rv != 0) {
		snprintf(err, errlen, "%s:%u: [adapter.%s] %s", cfg->path,
		    ac->line, ac->name, cerr[0] ? cerr : ck_strerror(rv));
		return CK_ECONFIG;
	}
	a->ops = ops;
	ck_strlcpy(a->name, ac->name, sizeof(a->name));
	ck_strlcpy(a->module, ac->module, sizeof(a->module));
	a->nsources = ops->sources(a->self, a->sources,
	    CK_ARRAY_SIZE(a->sources));
	if (a->nsources > CK_ARRAY_SIZE(a->sources))
		a->nsources = CK_ARRAY_SIZE(a->sources);
	log_info(NULL, "adapter %s: module %s (ABI %u) serves %zu source%s",
	    a->name, path, ops->abi, a->nsources, a->nsources == 1 ? "" : "s");
	return 0;
}

int
ck_adapters_load(const struct ck_config *cfg, struct event_base *base,
    struct ck_pool *pool, struct ck_adapters **out, char *err, size_t errlen)
{
	struct ck_adapters *ads;
	int rv;

	*out = NULL;
	ads = calloc(1, sizeof(*ads));
	if (ads == NULL)
		return CK_ENOMEM;
	host_pool = pool;
	ads->host.abi = CK_ADAPTER_ABI;
	ads->host.size = sizeof(ads->host);
	ads->host.base = base;
	ads->host.broker_id = cfg->broker_id;
	ads->host.log = host_log;
	ads->host.channel_open = host_channel_open;
	ads->host.channel_name = ck_pool_channel_name;
	ads->host.rpc_start = host_rpc_start;
	ads->host.rpc_cancel = ck_pool_rpc_cancel;
	ads->host.now_usec = ck_clock_now_usec;
	ads->host.rpc_set_background = ck_pool_rpc_set_background;
	for (size_t i = 0; i < cfg->nadapters; i++) {
		struct ck_adapter *a = &ads->list[ads->n];

		rv = load_one(cfg, &cfg->adapters[i], ads, a, err, errlen);
		if (rv != 0) {
			if (a->dl != NULL)
				dlclose(a->dl);
			ck_adapters_free(ads);
			return rv;
		}
		ads->n++;
	}
	*out = ads;
	return 0;
}

void
ck_adapters_free(struct ck_adapters *ads)
{
	if (ads == NULL)
		return;
	for (size_t i = ads->n; i-- > 0;) {
		struct ck_adapter *a = &ads->list[i];

		a->ops->destroy(a->self);
		dlclose(a->dl);
	}
	free(ads);
}

/*
 * badabi.c: ck_badabi.so, a TEST-ONLY module built for another ABI
 * (CK_ADAPTER_ABI + 1): the loader must refuse it at start-up with a clear
 * message and never call into it. Its functions exist only so that a
 * loader that wrongly accepted it would not jump to NULL.
 */
#include <stddef.h>

#include "chakong/adapter.h"

static int
badabi_create(const struct ck_host *host, const struct ck_kv *conf, size_t n,
    void **self, char *err, size_t errlen)
{
	(void)host;
	(void)conf;
	(void)n;
	(void)self;
	(void)err;
	(void)errlen;
	return CK_EABI;
}

static void
badabi_destroy(void *self)
{
	(void)self;
}

static size_t
badabi_sources(void *self, const char **names, size_t max)
{
	(void)self;
	(void)names;
	(void)max;
	return 0;
}

static int
badabi_start(void *self, const struct ck_agency_call *call, ck_done_cb done,
    void *arg, void **handle)
{
	(void)self;
	(void)call;
	(void)done;
	(void)arg;
	(void)handle;
	return CK_EABI;
}

static void
badabi_cancel(void *handle)
{
	(void)handle;
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI + 1,
	.size = sizeof(struct ck_adapter_ops),
	.name = "badabi",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE),
	.ops = CK_OP_BIT(CK_OP_QUERY),
	.create = badabi_create,
	.destroy = badabi_destroy,
	.sources = badabi_sources,
	.start = badabi_start,
	.cancel = badabi_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_badabi(void);

const struct ck_adapter_ops *
ck_adapter_badabi(void)
{
	return &ops;
}

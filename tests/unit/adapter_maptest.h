/*
 * adapter_maptest.h: what the adapters' mapping tests share (they feed
 * packed agency replies to the pure map functions of adapters/common/map.h
 * and each adapter's *_map.h).
 */
#ifndef CK_TEST_ADAPTER_MAPTEST_H
#define CK_TEST_ADAPTER_MAPTEST_H

#include <stddef.h>
#include <stdint.h>

#include "map.h"

/* An answered gRPC OK reply carrying buf. */
static inline struct ck_ad_reply
fh_ok_reply(const uint8_t *buf, size_t len)
{
	struct ck_ad_reply r = { .grpc_status = 0,
		.data = buf,
		.len = len,
		.delivery = CK_DELIVERY_ANSWERED };
	return r;
}

#endif

/*
 * record.c: state.mdb values (see record.h).
 */
#include "record.h"

#include <stdlib.h>

#include "chakong/status.h"
#include "store.h"

uint8_t *
ck_record_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);

	if (buf == NULL)
		return NULL;
	buf[0] = CK_RECORD_VERSION;
	protobuf_c_message_pack(m, buf + 1);
	*len = n + 1;
	return buf;
}

ProtobufCMessage *
ck_record_unpack(const ProtobufCMessageDescriptor *d, const MDB_val *v,
    ProtobufCAllocator *alloc)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < 1 || p[0] != CK_RECORD_VERSION)
		return NULL;	/* state.mdb only migrates forward */
	return protobuf_c_message_unpack(d, alloc, v->mv_size - 1, p + 1);
}

int
ck_record_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessage *m)
{
	MDB_val k = { klen, (void *)key }, v;
	uint8_t *buf;
	int rc;

	buf = ck_record_pack(m, &v.mv_size);
	if (buf == NULL)
		return CK_ENOMEM;
	v.mv_data = buf;
	rc = ck_mdb_err(mdb_put(txn, dbi, &k, &v, 0), "put");
	free(buf);
	return rc;
}

int
ck_record_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc = mdb_get(txn, dbi, &k, &v);

	*out = NULL;
	if (rc != 0)
		return ck_mdb_err(rc, "get");
	*out = ck_record_unpack(d, &v, NULL);
	return *out != NULL ? 0 : CK_ESTORE;
}

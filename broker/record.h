/*
 * record.h: state.mdb values. Every value is one format byte (the record
 * version) followed by a chakong.internal.v1 message; an unknown version
 * is not read (state.mdb migrates forward only).
 */
#ifndef CK_RECORD_H
#define CK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>

#define CK_RECORD_VERSION 1

/* The message behind its version byte, in a malloc'd buffer; NULL when
 * out of memory. */
uint8_t *ck_record_pack(const ProtobufCMessage *m, size_t *len);
/* NULL for another version or a malformed value; free with
 * protobuf_c_message_free_unpacked(m, alloc). alloc may be NULL. */
ProtobufCMessage *ck_record_unpack(const ProtobufCMessageDescriptor *d,
    const MDB_val *v, ProtobufCAllocator *alloc);
/* mdb_put of the packed message; 0 or a CK_E* code. */
int ck_record_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessage *m);
/* 0 and *out, CK_ENOTFOUND, or an error (CK_ESTORE for an unreadable
 * value). */
int ck_record_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);

#endif

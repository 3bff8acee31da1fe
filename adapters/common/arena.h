/*
 * arena.h: per-call memory for adapters. Everything a call hands the broker
 * (source results, assets, decoded agency replies, packed requests) is
 * allocated here and freed in one go after done() returns. protobuf-c
 * decodes into it through ck_ad_arena_allocator().
 *
 * Compiled into every module with hidden visibility; the names carry the
 * ck_ad_ prefix so a unit test can link several adapters at once.
 */
#ifndef CK_AD_ARENA_H
#define CK_AD_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct ck_ad_arena;

/* Returns NULL when out of memory. */
struct ck_ad_arena *ck_ad_arena_new(void);
/* Frees every allocation and the arena; NULL-safe. */
void ck_ad_arena_free(struct ck_ad_arena *a);
/* Zeroed, 16-byte aligned; NULL when out of memory or size is absurd. */
void *ck_ad_arena_alloc(struct ck_ad_arena *a, size_t size);
/* n elements of size bytes, overflow-checked; NULL when out of memory. */
void *ck_ad_arena_calloc(struct ck_ad_arena *a, size_t n, size_t size);
/* A copy of s (NULL stays NULL); NULL when out of memory. */
char *ck_ad_arena_strdup(struct ck_ad_arena *a, const char *s);
/* A formatted string; NULL when out of memory. */
char *ck_ad_arena_printf(struct ck_ad_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A protobuf-c allocator drawing from a (its free is a no-op). */
void ck_ad_arena_allocator(struct ck_ad_arena *a, ProtobufCAllocator *out);
/* Bytes handed out so far (for tests). */
size_t ck_ad_arena_used(const struct ck_ad_arena *a);

#ifdef CK_AD_TESTING
/* Tests: let n more arena_new/alloc calls succeed, then fail them all
 * (-1: never fail). */
void ck_ad_arena_fail_after(long n);
#endif

#endif

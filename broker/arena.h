/*
 * arena.h: request-scoped memory. A call's decoded request, its reply and
 * everything a handler allocates for it live in one arena, freed in one go
 * when the call ends. protobuf-c allocates through ck_arena_allocator().
 */
#ifndef CK_ARENA_H
#define CK_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct ck_arena;

/* Returns NULL when out of memory. */
struct ck_arena *ck_arena_new(void);
/* Frees every allocation and the arena; NULL-safe. */
void ck_arena_free(struct ck_arena *a);
/* 16-byte aligned; NULL when out of memory. */
void *ck_arena_alloc(struct ck_arena *a, size_t size);
/* A protobuf-c allocator drawing from a (its free is a no-op). */
void ck_arena_allocator(struct ck_arena *a, ProtobufCAllocator *out);
/* Bytes handed out so far (for limits and tests). */
size_t ck_arena_used(const struct ck_arena *a);

#endif

/*
 * arena.c: a bump allocator over a list of chunks (see arena.h). The
 * first chunk is inside the arena's own allocation, so a small call costs
 * one malloc in all; large requests get a chunk of their own.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define FIRST_CHUNK 4096
#define CHUNK 16384
#define ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(ALIGN) unsigned char data[];
};

struct ck_arena {
	struct chunk *head;	/* current chunk first */
	size_t used;
	struct chunk first;	/* followed by FIRST_CHUNK bytes */
};

struct ck_arena *
ck_arena_new(void)
{
	struct ck_arena *a = malloc(sizeof(*a) + FIRST_CHUNK);

	if (a == NULL)
		return NULL;
	a->first.next = NULL;
	a->first.size = FIRST_CHUNK;
	a->first.used = 0;
	a->head = &a->first;
	a->used = 0;
	return a;
}

void
ck_arena_free(struct ck_arena *a)
{
	struct chunk *c, *next;

	if (a == NULL)
		return;
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		if (c != &a->first)
			free(c);
	}
	free(a);
}

void *
ck_arena_alloc(struct ck_arena *a, size_t size)
{
	struct chunk *c = a->head;
	size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	void *p;

	if (size == 0)
		need = ALIGN;
	if (need < size)
		return NULL;
	if (c->size - c->used < need) {
		size_t csize = need > CHUNK / 4 ? need : CHUNK;

		if (csize > SIZE_MAX - sizeof(*c))
			return NULL;
		c = malloc(sizeof(*c) + csize);
		if (c == NULL)
			return NULL;
		c->size = csize;
		c->used = 0;
		if (csize == need) {
			/* a big block: keep filling the current chunk after */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	p = c->data + c->used;
	c->used += need;
	a->used += size;
	return p;
}

static void *
pb_alloc(void *data, size_t size)
{
	return ck_arena_alloc(data, size);
}

static void
pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

void
ck_arena_allocator(struct ck_arena *a, ProtobufCAllocator *out)
{
	out->alloc = pb_alloc;
	out->free = pb_free;
	out->allocator_data = a;
}

size_t
ck_arena_used(const struct ck_arena *a)
{
	return a->used;
}

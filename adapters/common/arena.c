/*
 * arena.c: a bump allocator over a list of blocks. Small allocations share
 * 4 KiB (then growing) blocks; a large one gets a block of its own. Nothing
 * is freed before the whole arena is.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ALIGN	   16u
#define FIRST_SIZE 4096u
#define MAX_BLOCK  (1u << 20)
#define MAX_ALLOC  ((size_t)1 << 30)

struct block {
	struct block *next;
	size_t size, used;
	/* keeps data 16-byte aligned on every ABI we build for */
	_Alignas(16) unsigned char data[];
};

struct ck_ad_arena {
	struct block *head;
	size_t next_size;
	size_t total;
};

#ifdef CK_AD_TESTING
/* Allocation-failure tests: every arena_new and every alloc counts. */
static long fail_after = -1;

void
ck_ad_arena_fail_after(long n)
{
	fail_after = n;
}

static bool
fail_now(void)
{
	if (fail_after == 0)
		return true;
	if (fail_after > 0)
		fail_after--;
	return false;
}
#else
static inline bool
fail_now(void)
{
	return false;
}
#endif

struct ck_ad_arena *
ck_ad_arena_new(void)
{
	struct ck_ad_arena *a;

	if (fail_now())
		return NULL;
	a = malloc(sizeof(*a));
	if (a == NULL)
		return NULL;
	a->head = NULL;
	a->next_size = FIRST_SIZE;
	a->total = 0;
	return a;
}

void
ck_ad_arena_free(struct ck_ad_arena *a)
{
	struct block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

static struct block *
add_block(struct ck_ad_arena *a, size_t need)
{
	size_t size = a->next_size;
	struct block *b;

	if (need > size)
		size = need;
	b = malloc(sizeof(*b) + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->used = 0;
	if (a->head != NULL && need > a->next_size) {
		/* a big one-off: keep filling the current block */
		b->next = a->head->next;
		a->head->next = b;
	} else {
		b->next = a->head;
		a->head = b;
		if (a->next_size < MAX_BLOCK)
			a->next_size *= 2;
	}
	return b;
}

void *
ck_ad_arena_alloc(struct ck_ad_arena *a, size_t size)
{
	struct block *b = a->head;
	size_t n;
	void *p;

	if (size > MAX_ALLOC || fail_now())
		return NULL;
	n = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (n == 0)
		n = ALIGN;
	if (b == NULL || b->size - b->used < n) {
		b = add_block(a, n);
		if (b == NULL)
			return NULL;
	}
	p = b->data + b->used;
	b->used += n;
	a->total += n;
	memset(p, 0, size);
	return p;
}

void *
ck_ad_arena_calloc(struct ck_ad_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > MAX_ALLOC / size)
		return NULL;
	return ck_ad_arena_alloc(a, n * size);
}

char *
ck_ad_arena_strdup(struct ck_ad_arena *a, const char *s)
{
	size_t n;
	char *p;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	p = ck_ad_arena_alloc(a, n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

char *
ck_ad_arena_printf(struct ck_ad_arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = ck_ad_arena_alloc(a, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void *
pb_alloc(void *data, size_t size)
{
	return ck_ad_arena_alloc(data, size);
}

static void
pb_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void
ck_ad_arena_allocator(struct ck_ad_arena *a, ProtobufCAllocator *out)
{
	out->alloc = pb_alloc;
	out->free = pb_free;
	out->allocator_data = a;
}

size_t
ck_ad_arena_used(const struct ck_ad_arena *a)
{
	return a->total;
}

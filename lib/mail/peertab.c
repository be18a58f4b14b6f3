/*
 * peertab - the shared table of client sessions of one service's workers
 * (see peertab.h): a memfd of regions, one writer each, read lock-free.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/peertab.h"

#define PEERTAB_MAGIC 0x68657270u	/* "herp" */
#define PEERTAB_VERSION 1u
#define PEERTAB_WORDS (PEERTAB_KEY_SIZE / 8)

/* the first 64 bytes of the table */
struct peertab_head {
	uint32_t magic;
	uint32_t version;
	uint32_t slots;
	uint32_t per_slot;
	char pad[48];
};

/* the first 64 bytes of a region; its entries follow */
struct peertab_region {
	_Atomic uint32_t used;	/* entries [0, used) may be taken */
	char pad[60];
};

/* one session: the key as words, so that every access is atomic */
struct peertab_entry {
	_Atomic uint64_t tag;	/* hash of the key, never 0; 0: free */
	_Atomic uint64_t key[PEERTAB_WORDS];
};

_Static_assert(sizeof(struct peertab_head) == 64, "head is 64 bytes");
_Static_assert(sizeof(struct peertab_region) == 64, "region is 64 bytes");
_Static_assert(sizeof(struct peertab_entry) == 64, "entry is 64 bytes");
_Static_assert(PEERTAB_KEY_SIZE % 8 == 0, "key is whole words");

struct peertab {
	unsigned char *base;	/* the mapping */
	size_t size;
	unsigned slots;
	unsigned per_slot;
};

/* peertab_size - bytes of a table of this geometry */
static size_t
peertab_size(unsigned slots, unsigned per_slot)
{
	return sizeof(struct peertab_head) + (size_t)slots *
	    ((size_t)per_slot + 1) * sizeof(struct peertab_entry);
}

/* peertab_region - the region header of slot */
static struct peertab_region *
peertab_region(const struct peertab *t, unsigned slot)
{
	if (slot >= t->slots)
		msg_panic("peertab: slot %u of %u", slot, t->slots);
	return (struct peertab_region *)(t->base +
	    sizeof(struct peertab_head) + (size_t)slot *
	    ((size_t)t->per_slot + 1) * sizeof(struct peertab_entry));
}

/* peertab_entries - the entries of a region */
static struct peertab_entry *
peertab_entries(struct peertab_region *r)
{
	return (struct peertab_entry *)(r + 1);
}

/* peertab_pack - key as zero-padded words (truncated) and its tag */
static uint64_t
peertab_pack(const char *key, uint64_t words[PEERTAB_WORDS])
{
	char text[PEERTAB_KEY_SIZE];
	size_t n = strnlen(key, sizeof(text) - 1);
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */

	memset(text, 0, sizeof(text));
	memcpy(text, key, n);
	memcpy(words, text, sizeof(text));
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

/* peertab_create - a new zeroed table in a sealed memfd */
int
peertab_create(unsigned slots, unsigned per_slot, int *fd_r, struct buf *why)
{
	struct peertab_head *h;
	size_t size;
	int fd;

	if (slots == 0 || slots > PEERTAB_MAX_SLOTS || per_slot == 0 ||
	    per_slot > PEERTAB_MAX_PER_SLOT) {
		buf_printf(why, "client table: bad size %u x %u", slots,
		    per_slot);
		return -1;
	}
	size = peertab_size(slots, per_slot);
	if ((fd = memfd_create("herald-peers", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) < 0) {
		buf_printf(why, "client table: memfd_create: %s",
		    strerror(errno));
		return -1;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		buf_printf(why, "client table: %zu bytes: %s", size,
		    strerror(errno));
		(void)close(fd);
		return -1;
	}
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		buf_printf(why, "client table: mmap: %s", strerror(errno));
		(void)close(fd);
		return -1;
	}
	h->magic = PEERTAB_MAGIC;
	h->version = PEERTAB_VERSION;
	h->slots = slots;
	h->per_slot = per_slot;
	(void)munmap(h, sizeof(*h));
	/* a worker must not pull the pages from under the others */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) < 0) {
		buf_printf(why, "client table: seal: %s", strerror(errno));
		(void)close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

/* peertab_map - map the table on fd after checking it */
int
peertab_map(int fd, struct peertab **t_r, struct buf *why)
{
	struct peertab_head h;
	struct stat st;
	struct peertab *t;
	void *base;

	if (fstat(fd, &st) < 0) {
		buf_printf(why, "client table: fstat: %s", strerror(errno));
		return -1;
	}
	if (st.st_size < (off_t)sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		buf_puts(why, "client table: too short");
		return -1;
	}
	if (h.magic != PEERTAB_MAGIC || h.version != PEERTAB_VERSION ||
	    h.slots == 0 || h.slots > PEERTAB_MAX_SLOTS || h.per_slot == 0 ||
	    h.per_slot > PEERTAB_MAX_PER_SLOT ||
	    (size_t)st.st_size != peertab_size(h.slots, h.per_slot)) {
		buf_puts(why, "client table: not a table, or a bad size");
		return -1;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		buf_printf(why, "client table: mmap: %s", strerror(errno));
		return -1;
	}
	t = xcalloc(1, sizeof(*t));
	t->base = base;
	t->size = (size_t)st.st_size;
	t->slots = h.slots;
	t->per_slot = h.per_slot;
	*t_r = t;
	return 0;
}

/* peertab_unmap - forget a mapping */
void
peertab_unmap(struct peertab **tp)
{
	struct peertab *t = *tp;

	if (t == NULL)
		return;
	(void)munmap(t->base, t->size);
	x_free(tp);
}

/* peertab_slots - regions in the table */
unsigned
peertab_slots(const struct peertab *t)
{
	return t->slots;
}

/* peertab_per_slot - entries per region */
unsigned
peertab_per_slot(const struct peertab *t)
{
	return t->per_slot;
}

/*
 * peertab_clear - empty slot's region. Only entries below the high-water
 * mark can be taken, plus the one a writer that died in peertab_add may
 * have tagged just before it raised the mark; pages above were never
 * touched and stay unallocated.
 */
void
peertab_clear(struct peertab *t, unsigned slot)
{
	struct peertab_region *r = peertab_region(t, slot);
	struct peertab_entry *e = peertab_entries(r);
	uint32_t used = atomic_load_explicit(&r->used, memory_order_relaxed);

	if (used >= t->per_slot)
		used = t->per_slot - 1;
	atomic_store(&r->used, 0);
	for (uint32_t i = 0; i <= used; i++)
		atomic_store(&e[i].tag, 0);
}

/* peertab_add - one session with key in slot's region (its one writer) */
int
peertab_add(struct peertab *t, unsigned slot, const char *key)
{
	struct peertab_region *r = peertab_region(t, slot);
	struct peertab_entry *e = peertab_entries(r);
	uint32_t used = atomic_load_explicit(&r->used, memory_order_relaxed);
	uint64_t words[PEERTAB_WORDS], tag = peertab_pack(key, words);
	uint32_t i;

	if (used > t->per_slot)
		used = t->per_slot;	/* scribbled over: stay inside */
	for (i = 0; i < used; i++)
		if (atomic_load_explicit(&e[i].tag,
		    memory_order_relaxed) == 0)
			break;
	if (i == t->per_slot)
		return -1;
	for (int w = 0; w < PEERTAB_WORDS; w++)
		atomic_store_explicit(&e[i].key[w], words[w],
		    memory_order_relaxed);
	/*
	 * The key, then the mark, then the tag; the mark and the tag are
	 * sequentially consistent, like the loads in peertab_count, so of two
	 * workers that add and then count at the same moment at least one
	 * sees the other's entry (the store-load order release/acquire would
	 * not give).
	 */
	if (i == used)
		atomic_store(&r->used, used + 1);
	atomic_store(&e[i].tag, tag);
	return (int)i;
}

/* peertab_del - entry idx of slot's region is free again */
void
peertab_del(struct peertab *t, unsigned slot, int idx)
{
	struct peertab_region *r = peertab_region(t, slot);
	struct peertab_entry *e = peertab_entries(r);
	uint32_t used = atomic_load_explicit(&r->used, memory_order_relaxed);

	if (idx < 0 || (unsigned)idx >= t->per_slot)
		msg_panic("peertab_del: entry %d of %u", idx, t->per_slot);
	atomic_store(&e[idx].tag, 0);
	if (used > t->per_slot)
		used = t->per_slot;
	/* lower the mark past free entries, so readers scan less */
	while (used > 0 && atomic_load_explicit(&e[used - 1].tag,
	    memory_order_relaxed) == 0)
		used--;
	atomic_store(&r->used, used);
}

/* peertab_count - sessions with key in every region */
unsigned
peertab_count(const struct peertab *t, const char *key)
{
	uint64_t words[PEERTAB_WORDS], tag = peertab_pack(key, words);
	unsigned n = 0;

	for (unsigned s = 0; s < t->slots; s++) {
		struct peertab_region *r = peertab_region(t, s);
		struct peertab_entry *e = peertab_entries(r);
		uint32_t used = atomic_load(&r->used);

		if (used > t->per_slot)
			used = t->per_slot;
		for (uint32_t i = 0; i < used; i++) {
			int w;

			if (atomic_load(&e[i].tag) != tag)
				continue;
			for (w = 0; w < PEERTAB_WORDS; w++)
				if (atomic_load_explicit(&e[i].key[w],
				    memory_order_relaxed) != words[w])
					break;
			if (w == PEERTAB_WORDS)
				n++;
		}
	}
	return n;
}

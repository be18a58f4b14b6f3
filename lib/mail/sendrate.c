/*
 * sendrate - per-user sending counts over the last hour in a shared file
 * (see sendrate.h for why and how).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/auth_client.h"
#include "mail/sendrate.h"
#include "mail/spool.h"

#define SENDRATE_MAGIC "herald-sendrate-1\n"
#define SENDRATE_HEADER 64	/* bytes before the first slot */
#define SENDRATE_USER_MAX (AUTH_USER_MAX + 1)

/* sendrate_each reads the table SENDRATE_PROBES slots at a time */
_Static_assert(SENDRATE_SLOTS % SENDRATE_PROBES == 0,
    "SENDRATE_SLOTS must be a multiple of SENDRATE_PROBES");

/* one record, as it is in the file */
struct sendrate_slot {
	char user[SENDRATE_USER_MAX + 7];	/* NUL-terminated, lowercase */
	int64_t hour;		/* clock hour (unix time / 3600) of [1] */
	int64_t messages[2];	/* [0]: the hour before, [1]: this hour */
	int64_t recipients[2];
	int64_t refused_at;	/* unix time of the last refusal */
};

struct sendrate {
	int fd;
	char *path;
};

/* sendrate_init - give an empty file its header and slots (under the
 * lock, so two workers starting at once agree); 0 or -1 (errno) */
static int
sendrate_init(int fd)
{
	char head[SENDRATE_HEADER];
	struct stat st;
	int rc = 0, saved;

	if (flock(fd, LOCK_EX) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		rc = -1;
	} else if (st.st_size == 0) {
		memset(head, 0, sizeof(head));
		memcpy(head, SENDRATE_MAGIC, strlen(SENDRATE_MAGIC));
		if (pwrite(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
		    ftruncate(fd, SENDRATE_HEADER + (off_t)SENDRATE_SLOTS *
		    (off_t)sizeof(struct sendrate_slot)) < 0)
			rc = -1;
	}
	saved = errno;
	(void)flock(fd, LOCK_UN);
	errno = saved;
	return rc;
}

/* sendrate_open - open the file, creating it if asked */
int
sendrate_open(const char *spool_dir, bool create, struct sendrate **r_r,
    struct buf *why)
{
	struct buf path = BUF_INIT;
	char head[SENDRATE_HEADER];
	struct sendrate *r;
	ssize_t n;
	int fd;

	spool_socket_path(&path, spool_dir, SENDRATE_FILE);
	fd = open(buf_cstr(&path), (create ? O_RDWR | O_CREAT : O_RDONLY) |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		buf_printf(why, "open %s: %m", buf_cstr(&path));
		buf_free(&path);
		return -1;
	}
	if (create && sendrate_init(fd) < 0) {
		buf_printf(why, "create %s: %m", buf_cstr(&path));
		(void)close(fd);
		buf_free(&path);
		return -1;
	}
	n = pread(fd, head, sizeof(head), 0);
	if (n != (ssize_t)sizeof(head) ||
	    memcmp(head, SENDRATE_MAGIC, strlen(SENDRATE_MAGIC)) != 0) {
		buf_printf(why, "%s: not a sendrate file", buf_cstr(&path));
		(void)close(fd);
		buf_free(&path);
		return -1;
	}
	r = xcalloc(1, sizeof(*r));
	r->fd = fd;
	r->path = buf_steal(&path);
	*r_r = r;
	return 0;
}

/* sendrate_close - close the file */
void
sendrate_close(struct sendrate **r)
{
	if (*r == NULL)
		return;
	(void)close((*r)->fd);
	x_free(&(*r)->path);
	x_free(r);
}

/* sendrate_key - user lowercased into key; false if too long */
static bool
sendrate_key(const char *user, char *key, size_t size)
{
	if (strlen(user) >= size)
		return false;
	str_lcpy(key, user, size);
	str_lower(key);
	return true;
}

/* sendrate_hash - FNV-1a of the key */
static uint32_t
sendrate_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

/* sendrate_off - file offset of slot i */
static off_t
sendrate_off(uint32_t i)
{
	return SENDRATE_HEADER + (off_t)i * (off_t)sizeof(struct sendrate_slot);
}

/* sendrate_read - the n slots from slot i on (i + n <= SENDRATE_SLOTS)
 * in one read; 0 or -1 */
static int
sendrate_read(struct sendrate *r, uint32_t i, uint32_t n,
    struct sendrate_slot *s, struct buf *why)
{
	size_t size = (size_t)n * sizeof(*s);
	ssize_t got = pread(r->fd, s, size, sendrate_off(i));

	if (got != (ssize_t)size) {
		if (got < 0)
			buf_printf(why, "read %s: %m", r->path);
		else
			buf_printf(why, "read %s: short file", r->path);
		return -1;
	}
	for (uint32_t k = 0; k < n; k++)
		s[k].user[sizeof(s[k].user) - 1] = '\0';
	return 0;
}

/* sendrate_live - does s hold counts of the last hour? */
static bool
sendrate_live(const struct sendrate_slot *s, long long hour, long long now)
{
	return s->user[0] != '\0' && (s->hour >= hour - 1 ||
	    s->refused_at > now - 3600);
}

/* sendrate_shift - move s's hours on to hour */
static void
sendrate_shift(struct sendrate_slot *s, long long hour)
{
	if (s->hour == hour)
		return;
	if (s->hour == hour - 1) {
		s->messages[0] = s->messages[1];
		s->recipients[0] = s->recipients[1];
	} else {
		s->messages[0] = s->recipients[0] = 0;
	}
	s->messages[1] = s->recipients[1] = 0;
	s->hour = hour;
}

/* sendrate_count - the sliding-window estimate of s at now */
static void
sendrate_count(const struct sendrate_slot *s, long long now,
    struct sendrate_count *c)
{
	struct sendrate_slot t = *s;
	long long left = 3600 - now % 3600;	/* of the hour before */

	sendrate_shift(&t, now / 3600);
	c->messages = t.messages[1] + t.messages[0] * left / 3600;
	c->recipients = t.recipients[1] + t.recipients[0] * left / 3600;
	c->refused_at = t.refused_at;
}

/* sendrate_find - the slot of key, or a free one (*fresh); UINT32_MAX
 * when the probes are all taken by others */
static int
sendrate_find(struct sendrate *r, const char *key, long long now,
    uint32_t *i_r, struct sendrate_slot *s, bool *fresh, struct buf *why)
{
	struct sendrate_slot t[SENDRATE_PROBES];
	uint32_t first = sendrate_hash(key) % SENDRATE_SLOTS,
	    run = SENDRATE_SLOTS - first, free_i = UINT32_MAX;

	/* the probes in one read, two when they wrap past the last slot */
	if (run > SENDRATE_PROBES)
		run = SENDRATE_PROBES;
	*i_r = UINT32_MAX;
	if (sendrate_read(r, first, run, t, why) < 0 ||
	    (run < SENDRATE_PROBES &&
	    sendrate_read(r, 0, SENDRATE_PROBES - run, t + run, why) < 0))
		return -1;
	for (uint32_t k = 0; k < SENDRATE_PROBES; k++) {
		uint32_t i = (first + k) % SENDRATE_SLOTS;

		if (strcmp(t[k].user, key) == 0) {
			*i_r = i;
			*s = t[k];
			*fresh = false;
			return 0;
		}
		if (free_i == UINT32_MAX &&
		    !sendrate_live(&t[k], now / 3600, now))
			free_i = i;
	}
	if (free_i != UINT32_MAX) {
		*i_r = free_i;
		memset(s, 0, sizeof(*s));
		str_lcpy(s->user, key, sizeof(s->user));
		s->hour = now / 3600;
		*fresh = true;
	}
	return 0;
}

/* sendrate_get - user's counts at now */
int
sendrate_get(struct sendrate *r, const char *user, long long now,
    struct sendrate_count *c, struct buf *why)
{
	char key[SENDRATE_USER_MAX];
	struct sendrate_slot s;
	uint32_t i;
	bool fresh;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!sendrate_key(user, key, sizeof(key)))
		return 0;
	if (flock(r->fd, LOCK_SH) < 0) {
		buf_printf(why, "lock %s: %m", r->path);
		return -1;
	}
	rc = sendrate_find(r, key, now, &i, &s, &fresh, why);
	(void)flock(r->fd, LOCK_UN);
	if (rc == 0 && i != UINT32_MAX && !fresh)
		sendrate_count(&s, now, c);
	return rc;
}

/* sendrate_add - count a message (or note a refusal) for user */
int
sendrate_add(struct sendrate *r, const char *user, long long now,
    long long messages, long long recipients, bool refused,
    struct buf *why)
{
	char key[SENDRATE_USER_MAX];
	struct sendrate_slot s;
	uint32_t i;
	bool fresh;
	int rc;

	if (!sendrate_key(user, key, sizeof(key)))
		return 0;
	if (flock(r->fd, LOCK_EX) < 0) {
		buf_printf(why, "lock %s: %m", r->path);
		return -1;
	}
	rc = sendrate_find(r, key, now, &i, &s, &fresh, why);
	if (rc == 0 && i == UINT32_MAX) {
		msg_warn("%s: no room to count %s (the %d slots it may use "
		    "hold others): not limited", r->path, key,
		    SENDRATE_PROBES);
	} else if (rc == 0) {
		sendrate_shift(&s, now / 3600);
		if (refused) {
			s.refused_at = now;
		} else {
			s.messages[1] += messages;
			s.recipients[1] += recipients;
		}
		if (pwrite(r->fd, &s, sizeof(s), sendrate_off(i)) !=
		    (ssize_t)sizeof(s)) {
			buf_printf(why, "write %s: %m", r->path);
			rc = -1;
		}
	}
	(void)flock(r->fd, LOCK_UN);
	return rc;
}

/* sendrate_each - every user with counts or a refusal in the last hour */
int
sendrate_each(struct sendrate *r, long long now, sendrate_each_fn *fn,
    void *ctx, struct buf *why)
{
	struct sendrate_slot s[SENDRATE_PROBES];
	struct sendrate_count c;
	int rc = 0;

	if (flock(r->fd, LOCK_SH) < 0) {
		buf_printf(why, "lock %s: %m", r->path);
		return -1;
	}
	/* SENDRATE_PROBES slots a read */
	for (uint32_t i = 0; i < SENDRATE_SLOTS; i += SENDRATE_PROBES) {
		if ((rc = sendrate_read(r, i, SENDRATE_PROBES, s, why)) < 0)
			break;
		for (uint32_t k = 0; k < SENDRATE_PROBES; k++) {
			if (!sendrate_live(&s[k], now / 3600, now))
				continue;
			sendrate_count(&s[k], now, &c);
			fn(s[k].user, &c, ctx);
		}
	}
	(void)flock(r->fd, LOCK_UN);
	return rc;
}

/*
 * imapd_idle - IDLE (RFC 2177, RFC 9051 6.3.13) and the worker's
 * inotify registry.
 *
 * One inotify descriptor per worker, on its event loop. A folder that an
 * idling session of this worker has selected is watched once (its new/
 * and cur/ directories), whatever the number of sessions idling on it:
 * the registry maps the folder's directory to its watch and the list of
 * those sessions. An event on a watch marks it; a short timer (so that a
 * burst of renames makes one update) then updates every session of every
 * marked watch, which sends what changed at once. The update is one job
 * per watch (imapd_sel_push_folder): it syncs and lists the folder once
 * and every session idling on it takes that listing, so 100 sessions on
 * one INBOX cost one sync, not 100; while it is out, further events on
 * the watch wait for it. Nothing polls: a session that is idle costs its
 * registry link and nothing else. The watch goes when its last session
 * stops idling.
 *
 * IDLE lasts until the client sends DONE (any other line ends it too,
 * answered BAD) or the session's idle timeout (imapd_idle_timeout, 30
 * minutes by default as RFC 9051 5.4 wants) ends the session.
 */
#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

#define IMAPD_IDLE_DELAY_MS 20	/* events gathered before an update */

/* one watched folder */
struct imapd_watch {
	char *dir;		/* NULL: slot free */
	int wd_new, wd_cur;
	bool fired;
	bool job;		/* its folder job is out */
	/* this watch's number: a watch removed and made again for the
	 * same dir gets a new one, and only a folder job of the same
	 * number clears job (an older job may still be out) */
	uint64_t gen;
	struct imapd_sel *sessions;	/* via watch_next */
};

static struct evloop *imapd_idle_loop;
static int imapd_idle_fd = -1;
static struct imapd_watch *imapd_watches;
static int imapd_nwatches;
static struct ev_timer *imapd_idle_timer;
static uint64_t imapd_idle_gens;	/* the last imapd_watch.gen given */

/* imapd_idle_fire - the timer: one folder job for each fired watch
 * that has none out */
static long long
imapd_idle_fire(struct evloop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	for (int w = 0; w < imapd_nwatches; w++) {
		struct imapd_watch *wa = &imapd_watches[w];
		struct imapd_sel *sel;

		if (!wa->fired || wa->job || wa->dir == NULL)
			continue;
		/* the job runs on the index of one of them */
		for (sel = wa->sessions; sel != NULL; sel = sel->watch_next)
			if (!sel->owner->base.closed && sel->owner->state ==
			    IMAPD_S_SELECTED && sel->folder != NULL &&
			    imapd_store_index(sel->owner) != NULL)
				break;
		wa->fired = false;
		if (sel == NULL)
			continue;
		wa->job = true;
		imapd_sel_push_folder(sel->owner, wa->dir, wa->gen);
	}
	imapd_idle_timer = NULL;
	return -1;		/* done */
}

/* imapd_idle_arm - the timer, unless it is set */
static void
imapd_idle_arm(void)
{
	if (imapd_idle_timer == NULL && imapd_idle_loop != NULL)
		imapd_idle_timer = evloop_add_timer(imapd_idle_loop,
		    IMAPD_IDLE_DELAY_MS, imapd_idle_fire, NULL);
}

/* imapd_idle_find - the watch of dir, or NULL */
static struct imapd_watch *
imapd_idle_find(const char *dir)
{
	for (int w = 0; w < imapd_nwatches; w++)
		if (imapd_watches[w].dir != NULL &&
		    strcmp(imapd_watches[w].dir, dir) == 0)
			return &imapd_watches[w];
	return NULL;
}

/* imapd_idle_sessions - the sessions idling on the watch of dir */
struct imapd_sel *
imapd_idle_sessions(const char *dir)
{
	struct imapd_watch *wa = imapd_idle_find(dir);

	return wa != NULL ? wa->sessions : NULL;
}

/* imapd_idle_folder_done - the folder job of dir (made for watch gen)
 * is back: events that came meanwhile (or busy sessions) make the next
 * one; a job of a watch since removed leaves the new watch's job be */
void
imapd_idle_folder_done(const char *dir, uint64_t gen, bool retry)
{
	struct imapd_watch *wa = imapd_idle_find(dir);

	if (wa == NULL)
		return;
	if (wa->gen == gen)
		wa->job = false;
	if (retry)
		wa->fired = true;
	if (wa->fired)
		imapd_idle_arm();
}

/* imapd_idle_event - the inotify descriptor is readable */
static void
imapd_idle_event(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct
	    inotify_event))));
	ssize_t n;
	bool any = false;

	(void)events;
	(void)ctx;
	for (int rounds = 0; rounds < 64; rounds++) {
		n = read(fd, ev, sizeof(ev));
		if (n <= 0)
			break;
		for (char *p = ev; p < ev + n;) {
			const struct inotify_event *ie = (const void *)p;

			for (int w = 0; w < imapd_nwatches; w++)
				if (imapd_watches[w].dir != NULL &&
				    (ie->wd == imapd_watches[w].wd_new ||
				    ie->wd == imapd_watches[w].wd_cur)) {
					imapd_watches[w].fired = true;
					any = true;
				}
			p += sizeof(*ie) + ie->len;
		}
	}
	(void)loop;
	if (any)
		imapd_idle_arm();
}

/* imapd_idle_init - the worker's inotify descriptor */
void
imapd_idle_init(struct evloop *loop)
{
	imapd_idle_loop = loop;
	imapd_idle_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (imapd_idle_fd < 0) {
		msg_warn("inotify_init1: %s: IDLE will not push changes",
		    strerror(errno));
		return;
	}
	if (evloop_add_fd(loop, imapd_idle_fd, EV_READ, imapd_idle_event,
	    NULL) < 0) {
		msg_warn("cannot watch the inotify descriptor");
		(void)close(imapd_idle_fd);
		imapd_idle_fd = -1;
	}
}

/* imapd_idle_watch - join (or make) the watch of the folder's dir */
static void
imapd_idle_watch(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel;
	struct buf dir = BUF_INIT, sub = BUF_INIT;
	int w, free_slot = -1;
	const uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
	    IN_DELETE | IN_ATTRIB;

	if (imapd_idle_fd < 0 || imapd_sel_folder_dir(s, sel->folder,
	    &dir) < 0)
		goto out;
	for (w = 0; w < imapd_nwatches; w++) {
		if (imapd_watches[w].dir == NULL) {
			if (free_slot < 0)
				free_slot = w;
		} else if (strcmp(imapd_watches[w].dir, buf_cstr(&dir)) == 0)
			break;
	}
	if (w == imapd_nwatches) {
		if (free_slot < 0) {
			imapd_watches = xreallocarray(imapd_watches,
			    (size_t)imapd_nwatches + 1,
			    sizeof(*imapd_watches));
			free_slot = imapd_nwatches++;
		}
		w = free_slot;
		memset(&imapd_watches[w], 0, sizeof(imapd_watches[w]));
		imapd_watches[w].gen = ++imapd_idle_gens;
		buf_printf(&sub, "%s/new", buf_cstr(&dir));
		imapd_watches[w].wd_new = inotify_add_watch(imapd_idle_fd,
		    buf_cstr(&sub), mask);
		buf_reset(&sub);
		buf_printf(&sub, "%s/cur", buf_cstr(&dir));
		imapd_watches[w].wd_cur = inotify_add_watch(imapd_idle_fd,
		    buf_cstr(&sub), mask);
		if (imapd_watches[w].wd_new < 0 ||
		    imapd_watches[w].wd_cur < 0)
			msg_warn("inotify_add_watch %s: %s", buf_cstr(&dir),
			    strerror(errno));
		imapd_watches[w].dir = xstrdup(buf_cstr(&dir));
	}
	sel->watch = w;
	sel->watch_next = imapd_watches[w].sessions;
	imapd_watches[w].sessions = sel;
out:
	buf_free(&dir);
	buf_free(&sub);
}

/* imapd_idle_stop - leave the watch; the last one removes it */
void
imapd_idle_stop(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel, **pp;
	struct imapd_watch *w;

	if (sel == NULL || sel->watch < 0)
		return;
	w = &imapd_watches[sel->watch];
	for (pp = &w->sessions; *pp; pp = &(*pp)->watch_next)
		if (*pp == sel) {
			*pp = sel->watch_next;
			break;
		}
	sel->watch = -1;
	sel->watch_next = NULL;
	sel->idling = false;
	if (w->sessions != NULL)
		return;
	/* a watch of a directory that is gone is removed already */
	if (w->wd_new >= 0)
		(void)inotify_rm_watch(imapd_idle_fd, w->wd_new);
	if (w->wd_cur >= 0)
		(void)inotify_rm_watch(imapd_idle_fd, w->wd_cur);
	x_free(&w->dir);
}

/* imapd_idle_cmd - IDLE: "+ idling", then changes as they come */
void
imapd_idle_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	struct imapd_sel *sel = imapd_sel_get(s);
	struct imap_token t;

	if (imap_cursor_next(c, &t) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: IDLE takes no arguments");
		return;
	}
	buf_reset(&sel->idle_tag);
	buf_append(&sel->idle_tag, s->tag.data, s->tag.len);
	imapd_session_reply(s, "+ idling");
	sel->idling = true;
	if (s->state == IMAPD_S_SELECTED) {
		imapd_idle_watch(s);
		/* what changed before the watch: told now */
		(void)imapd_sel_push(s);
	}
}

/* imapd_idle_line - a line while idling: DONE ends it */
bool
imapd_idle_line(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel;
	const char *p = s->parser.cmd.data ? s->parser.cmd.data : "";

	if (sel == NULL || !sel->idling)
		return false;
	imapd_idle_stop(s);
	buf_reset(&s->tag);
	buf_append(&s->tag, sel->idle_tag.data, sel->idle_tag.len);
	s->base.last_cmd = "IDLE";
	if (s->parser.cmd.len == 4 && str_ncasecmp(p, "DONE", 4) == 0) {
		imapd_sel_finish(s, true, "OK IDLE terminated");
	} else {
		imapd_session_bad(s, "BAD Expected DONE");
	}
	return true;
}

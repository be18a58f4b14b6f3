/*
 * master_listen - the listening sockets master opens for its services.
 *
 * A listener is known by its address text. A reload is a "round": every
 * listener is marked unused, the services ask for what the new
 * configuration names (master_listen_get reuses an open listener with the
 * same text and opens the others), and the round ends with commit (close
 * what nobody asked for) or abort (close what this round opened, keep the
 * rest). So an unchanged address keeps its socket, and connections
 * waiting in its backlog are never dropped by a reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "mail/params.h"
#include "master.h"

#define MASTER_LISTEN_BACKLOG 1024

static struct master_listener *master_listeners;

/* master_listen_owner - as root, give a UNIX socket its owner and group:
 * herald_user, and directory_group when every service may connect */
static int
master_listen_owner(const char *addr, enum master_socket_access access,
    struct buf *why)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(var_herald_user)) == NULL) {
		buf_printf(why, "%s: unknown user %s", addr, var_herald_user);
		return -1;
	}
	gid = pw->pw_gid;
	if (access == MASTER_SOCKET_SERVICES) {
		if ((gr = getgrnam(var_directory_group)) == NULL) {
			buf_printf(why, "%s: unknown group %s", addr,
			    var_directory_group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	/* the socket's folder may belong to herald_user (spool/private):
	 * a link put there after bind must not be followed */
	if (fchownat(AT_FDCWD, addr, pw->pw_uid, gid,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		buf_printf(why, "chown %s: %s", addr, strerror(errno));
		return -1;
	}
	return 0;
}

/* master_listen_open - open one socket for addr; -1 with why */
static int
master_listen_open(const char *addr, bool is_unix,
    enum master_socket_access access, struct buf *why)
{
	int fd;

	if (!is_unix)
		return sock_listen_tcp(addr, MASTER_LISTEN_BACKLOG, why);
	if ((fd = sock_listen_unix(addr,
	    access == MASTER_SOCKET_PUBLIC ? 0666 :
	    access == MASTER_SOCKET_SERVICES ? 0660 : 0600,
	    MASTER_LISTEN_BACKLOG, why)) < 0)
		return -1;
	if (master_listen_owner(addr, access, why) < 0) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* master_listen_get - the listener for addr, opened if not open yet */
struct master_listener *
master_listen_get(const char *addr, bool is_unix,
    enum master_socket_access access, struct buf *why)
{
	struct master_listener *l;
	int fd;

	for (l = master_listeners; l != NULL; l = l->next) {
		if (l->is_unix == is_unix && strcmp(l->addr, addr) == 0) {
			l->used = true;
			return l;
		}
	}
	/* sock_listen_* name the address in their reason */
	if ((fd = master_listen_open(addr, is_unix, access, why)) < 0)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->addr = xstrdup(addr);
	l->is_unix = is_unix;
	l->fd = fd;
	l->used = true;
	l->fresh = true;
	l->next = master_listeners;
	master_listeners = l;
	msg_debug("listening on %s", addr);
	return l;
}

/* master_listen_begin - start a listener round: mark every one unused */
void
master_listen_begin(void)
{
	for (struct master_listener *l = master_listeners; l; l = l->next) {
		l->used = false;
		l->fresh = false;
	}
}

/* master_listen_drop - close and forget every listener that matches */
static void
master_listen_drop(bool fresh_only, bool unlink_paths)
{
	struct master_listener **lp = &master_listeners, *l;

	while ((l = *lp) != NULL) {
		if (fresh_only ? !l->fresh : l->used) {
			lp = &l->next;
			continue;
		}
		*lp = l->next;
		if (close(l->fd) < 0)
			msg_warn("close listener %s: %m", l->addr);
		/* a socket file nobody serves only confuses clients */
		if (l->is_unix && (unlink_paths || fresh_only) &&
		    unlink(l->addr) < 0 && errno != ENOENT)
			msg_warn("remove %s: %m", l->addr);
		x_free(&l->addr);
		x_free(&l);
	}
}

/* master_listen_abort - close the ones the failed round opened */
void
master_listen_abort(void)
{
	master_listen_drop(true, false);
	for (struct master_listener *l = master_listeners; l; l = l->next)
		l->used = true;
}

/* master_listen_commit - close the ones the round did not use */
void
master_listen_commit(void)
{
	for (struct master_listener *l = master_listeners; l; l = l->next)
		if (!l->used)
			msg_info("stopped listening on %s", l->addr);
	master_listen_drop(false, true);
	for (struct master_listener *l = master_listeners; l; l = l->next)
		l->fresh = false;
}

/* master_listen_close_all - close every listener, unlink UNIX paths */
void
master_listen_close_all(void)
{
	for (struct master_listener *l = master_listeners; l; l = l->next)
		l->used = false;
	master_listen_drop(false, true);
}

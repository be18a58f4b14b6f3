/*
 * master_service - the table of services master runs, and their children.
 *
 * Each row of master_service_table names a program, the listeners it gets
 * and how many processes of it to run, both computed from the current
 * configuration. New services (imapd, remote) are new rows: listen
 * functions, a count function and a line here. authd and signer come
 * first so that they are up when the first login or message arrives.
 *
 * Children belong to a generation. A reload starts a new generation of
 * every service and retires the older ones (SIGUSR1; SIGTERM for an
 * exclusive service), which finish their sessions and are not restarted.
 * A current child that dies is replaced: at once if it had lived
 * MASTER_SHORT_LIFE_MS, else after a delay that doubles with every quick
 * death up to MASTER_BACKOFF_MAX_MS, so a service that cannot start does
 * not spin.
 *
 * A service with per-client limits (smtpd, pop3d) gets a client table
 * (mail/peertab.h): one memfd that all its workers map, with one region
 * per worker, so that a client's sessions are counted across the workers.
 * Each child gets the lowest slot that no live child of the service holds
 * (the old generation's included), and master clears the child's region
 * when it reaps it, so the sessions of a worker that crashed do not count
 * on. The table has room for eight generations of workers (retired ones
 * finish their sessions, which may outlast several reloads); it is made
 * anew (old children keep theirs) only when a reload changes its size.
 *
 * For "heraldctl status" each service has a state: off (no process
 * wanted), running, reloading (an exclusive service whose successor
 * waits for the old process to exit), restarting (fewer processes than
 * wanted, a restart is due) or failing (MASTER_FAILING_DEATHS current children in a row
 * died within MASTER_SHORT_LIFE_MS of their start, until every wanted
 * process has lived that long). Its last error is the fatal line the
 * child wrote to its report pipe (master_spawn.c) or, without one, how
 * it ended ("killed by signal 9").
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/auth_client.h"
#include "mail/params.h"
#include "mail/peertab.h"
#include "mail/spool.h"
#include "mail/submit.h"
#include "master.h"

/* params_check_listen refuses longer addresses: none is cut short */
#define MASTER_ADDR_MAX (SOCK_HOSTPORT_MAX + 1)

/* master_service_addrs_add - append a copy of addr to a growing array */
static void
master_service_addrs_add(char ***addrs, int *n, const char *addr)
{
	*addrs = xreallocarray(*addrs, (size_t)*n + 1, sizeof(**addrs));
	(*addrs)[(*n)++] = xstrdup(addr);
}

/* master_service_list - every entry of a host:port list setting */
static void
master_service_list(char ***addrs_r, int *n_r, const char *list)
{
	const char *cursor = list;
	char item[MASTER_ADDR_MAX];

	while (cfg_list_next(&cursor, item, sizeof(item)))
		master_service_addrs_add(addrs_r, n_r, item);
}

/* master_service_per_core - configured, or one per core when 0 */
static int
master_service_per_core(long long configured)
{
	long n;

	if (configured > 0)
		return (int)configured;
	if ((n = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		n = 1;
	return n > 256 ? 256 : (int)n;
}

/* master_service_smtpd_count - smtpd_workers, or one per core */
static int
master_service_smtpd_count(void)
{
	return master_service_per_core(var_smtpd_workers);
}

/* master_service_pop3d_count - pop3d_workers, or one per core */
static int
master_service_pop3d_count(void)
{
	return master_service_per_core(var_pop3d_workers);
}

/* master_service_imapd_count - imapd_workers, or one per core */
static int
master_service_imapd_count(void)
{
	return master_service_per_core(var_imapd_workers);
}

/* master_service_private - the UNIX socket <spool>/private/<name> */
static int
master_service_private(char ***addrs_r, int *n_r, const char *name)
{
	struct buf path = BUF_INIT;

	spool_socket_path(&path, var_spool_directory, name);
	master_service_addrs_add(addrs_r, n_r, buf_cstr(&path));
	buf_free(&path);
	return 0;
}

/* master_service_qmgr_listen - <spool>/private/qmgr */
static int
master_service_qmgr_listen(char ***addrs_r, int *n_r, struct buf *why)
{
	return master_service_private(addrs_r, n_r, "qmgr");
}

/* master_service_local_listen - <spool>/private/local */
static int
master_service_local_listen(char ***addrs_r, int *n_r, struct buf *why)
{
	return master_service_private(addrs_r, n_r, "local");
}

/* master_service_remote_listen - <spool>/private/remote */
static int
master_service_remote_listen(char ***addrs_r, int *n_r, struct buf *why)
{
	return master_service_private(addrs_r, n_r, "remote");
}

/* master_service_auth_listen - <run_directory>/auth, outside the spool
 * because pop3d and imapd (vmail_user) must reach it too */
static int
master_service_auth_listen(char ***addrs_r, int *n_r, struct buf *why)
{
	struct buf path = BUF_INIT;

	auth_client_socket_path(&path);
	master_service_addrs_add(addrs_r, n_r, buf_cstr(&path));
	buf_free(&path);
	return 0;
}

/* master_service_submit_listen - <run_directory>/submit, where sendmail
 * hands local mail to smtpd (any local user may connect) */
static int
master_service_submit_listen(char ***addrs_r, int *n_r, struct buf *why)
{
	struct buf path = BUF_INIT;

	submit_socket_path(&path);
	master_service_addrs_add(addrs_r, n_r, buf_cstr(&path));
	buf_free(&path);
	return 0;
}

/* master_service_signer_listen - <spool>/private/signer (smtpd asks) */
static int
master_service_signer_listen(char ***addrs_r, int *n_r, struct buf *why)
{
	return master_service_private(addrs_r, n_r, "signer");
}

/* master_service_signer_count - signer_processes */
static int
master_service_signer_count(void)
{
	return (int)var_signer_processes;
}

/* master_service_one - exactly one process */
static int
master_service_one(void)
{
	return 1;
}

/* master_service_local_count - local_processes */
static int
master_service_local_count(void)
{
	return (int)var_local_processes;
}

/* master_service_remote_count - remote_processes */
static int
master_service_remote_count(void)
{
	return (int)var_remote_processes;
}

/* master_service_auth_count - auth_processes, or one per core but at
 * least 2 (one slow check must not hold up every login) */
static int
master_service_auth_count(void)
{
	int n = master_service_per_core(var_auth_processes);

	return var_auth_processes == 0 && n < 2 ? 2 : n;
}

static const struct master_service_def master_service_table[] = {
	{"authd", "authd", false,
	    {{"auth", master_service_auth_listen, true,
	    MASTER_SOCKET_SERVICES, NULL}},
	    master_service_auth_count, NULL},
	{"signer", "signer", false,
	    {{"signer", master_service_signer_listen, true,
	    MASTER_SOCKET_HERALD, NULL}},
	    master_service_signer_count, NULL},
	{"smtpd", "smtpd", false,
	    {{"smtp", NULL, false, MASTER_SOCKET_HERALD, &var_smtpd_listen},
	    {"submit", master_service_submit_listen, true,
	    MASTER_SOCKET_PUBLIC, NULL},
	    {"submission", NULL, false, MASTER_SOCKET_HERALD,
	    &var_submission_listen},
	    {"submissions", NULL, false, MASTER_SOCKET_HERALD,
	    &var_submissions_listen}},
	    master_service_smtpd_count, &var_smtpd_max_sessions},
	{"qmgr", "qmgr", true,
	    {{"qmgr", master_service_qmgr_listen, true, MASTER_SOCKET_HERALD,
	    NULL}},
	    master_service_one, NULL},
	{"local", "local", false,
	    {{"local", master_service_local_listen, true,
	    MASTER_SOCKET_HERALD, NULL}},
	    master_service_local_count, NULL},
	{"remote", "remote", false,
	    {{"remote", master_service_remote_listen, true,
	    MASTER_SOCKET_HERALD, NULL}},
	    master_service_remote_count, NULL},
	{"pop3d", "pop3d", false,
	    {{"pop3", NULL, false, MASTER_SOCKET_HERALD, &var_pop3d_listen},
	    {"pop3s", NULL, false, MASTER_SOCKET_HERALD, &var_pop3s_listen}},
	    master_service_pop3d_count, &var_pop3d_max_sessions},
	{"imapd", "imapd", false,
	    {{"imap", NULL, false, MASTER_SOCKET_HERALD, &var_imap_listen},
	    {"imaps", NULL, false, MASTER_SOCKET_HERALD, &var_imaps_listen}},
	    master_service_imapd_count, &var_imapd_max_sessions},
};

#define MASTER_NSERVICES \
	((int)(sizeof(master_service_table) / sizeof(master_service_table[0])))

struct master_service master_services[MASTER_NSERVICES];
int master_nservices = MASTER_NSERVICES;
struct master_child *master_children;

/* master_service_init - bind the table rows to their state */
void
master_service_init(void)
{
	for (int i = 0; i < MASTER_NSERVICES; i++) {
		memset(&master_services[i], 0, sizeof(master_services[i]));
		master_services[i].def = &master_service_table[i];
		master_services[i].peers_fd = -1;
	}
}

/* what one service gets from a configuration round */
struct master_service_plan {
	int wanted;
	struct master_listener *listeners[MASTER_SERVICE_MAX_LISTENERS];
	const char *fdnames[MASTER_SERVICE_MAX_LISTENERS];
	int nlisteners;
};

/* master_service_plan_set - add the listeners of one listen set */
static int
master_service_plan_set(const struct master_service_def *def,
    const struct master_listen_set *set, struct master_service_plan *plan,
    struct buf *why)
{
	char **addrs = NULL;
	int naddrs = 0, rc = 0;

	if (set->list != NULL)
		master_service_list(&addrs, &naddrs, *set->list);
	else if (set->listen(&addrs, &naddrs, why) < 0)
		rc = -1;
	for (int i = 0; rc == 0 && i < naddrs; i++) {
		struct master_listener *l;
		bool dup = false;

		if ((l = master_listen_get(addrs[i], set->is_unix,
		    set->access, why)) == NULL) {
			rc = -1;
			break;
		}
		for (int j = 0; j < plan->nlisteners; j++)
			dup |= plan->listeners[j] == l;
		if (dup)
			continue;
		if (plan->nlisteners == MASTER_SERVICE_MAX_LISTENERS) {
			buf_printf(why, "service %s: more than %d listeners",
			    def->name, MASTER_SERVICE_MAX_LISTENERS);
			rc = -1;
			break;
		}
		plan->fdnames[plan->nlisteners] = set->fdname;
		plan->listeners[plan->nlisteners++] = l;
	}
	for (int i = 0; i < naddrs; i++)
		x_free(&addrs[i]);
	x_free(&addrs);
	return rc;
}

/* master_service_plan_one - listeners and count of one service */
static int
master_service_plan_one(const struct master_service_def *def,
    struct master_service_plan *plan, struct buf *why)
{
	plan->wanted = def->count();
	plan->nlisteners = 0;
	for (int i = 0; plan->wanted > 0 && i < MASTER_LISTEN_SETS; i++) {
		if (def->listen[i].fdname != NULL &&
		    master_service_plan_set(def, &def->listen[i], plan,
		    why) < 0)
			return -1;
	}
	/* a network service without addresses is switched off */
	if (plan->nlisteners == 0)
		plan->wanted = 0;
	return 0;
}

/*
 * master_service_peers - the client table of svc, made for its current
 * process count and session maximum unless the one it has fits. Without
 * one (it cannot be made) workers count the clients of their own process,
 * which is what a service started by hand does too.
 */
static void
master_service_peers(struct master_service *svc)
{
	long long max = *svc->def->client_table;
	unsigned slots, per_slot;
	struct buf why = BUF_INIT;
	struct peertab *t;
	int fd, rc;

	if (svc->wanted <= 0)
		return;
	/* retired workers live on until their sessions end: room for the
	 * current generation and seven retiring ones */
	slots = 8 * (unsigned)svc->wanted;
	if (slots > PEERTAB_MAX_SLOTS)
		slots = PEERTAB_MAX_SLOTS;
	/* a session is one entry, and smtpd's open transaction another
	 * (smtpd_client_transaction_limit counts "tx:<addr>") */
	max *= 2;
	per_slot = max > PEERTAB_MAX_PER_SLOT ? PEERTAB_MAX_PER_SLOT :
	    (unsigned)max;
	if (svc->peers != NULL && peertab_slots(svc->peers) >= slots &&
	    peertab_per_slot(svc->peers) == per_slot)
		return;
	rc = peertab_create(slots, per_slot, &fd, &why);
	if (rc == 0 && (rc = peertab_map(fd, &t, &why)) < 0)
		(void)close(fd);
	if (rc < 0) {
		msg_warn("service %s: %s; its workers count the clients of "
		    "their own process only", svc->def->name, buf_cstr(&why));
		buf_free(&why);
		return;
	}
	buf_free(&why);
	peertab_unmap(&svc->peers);
	if (svc->peers_fd >= 0)
		(void)close(svc->peers_fd);
	svc->peers = t;
	svc->peers_fd = fd;
	svc->peers_id++;
}

/* master_service_slot - the lowest slot of svc's client table that no
 * live child holds; -1 when there is no table or no free slot */
static int
master_service_slot(const struct master_service *svc)
{
	unsigned n;

	if (svc->peers == NULL)
		return -1;
	n = peertab_slots(svc->peers);
	for (unsigned slot = 0; slot < n; slot++) {
		const struct master_child *c;

		for (c = master_children; c != NULL; c = c->next)
			if (c->svc == svc && c->peers_id == svc->peers_id &&
			    c->slot == (int)slot)
				break;
		if (c == NULL)
			return (int)slot;
	}
	msg_warn("service %s: no free slot in the client table: the new "
	    "worker counts the clients of its own process only",
	    svc->def->name);
	return -1;
}

/* master_service_configure - listeners and process counts from config */
int
master_service_configure(struct buf *why)
{
	struct master_service_plan plan[MASTER_NSERVICES];

	master_listen_begin();
	for (int i = 0; i < MASTER_NSERVICES; i++) {
		if (master_service_plan_one(&master_service_table[i], &plan[i],
		    why) < 0) {
			master_listen_abort();
			return -1;
		}
	}
	/* every enabled service can load what it needs, or none changes */
	for (int i = 0; i < MASTER_NSERVICES; i++) {
		if (plan[i].wanted > 0 && master_preflight_service(
		    master_service_table[i].name, why) < 0) {
			master_listen_abort();
			return -1;
		}
	}
	for (int i = 0; i < MASTER_NSERVICES; i++) {
		struct master_service *svc = &master_services[i];

		svc->wanted = plan[i].wanted;
		svc->nlisteners = plan[i].nlisteners;
		memcpy(svc->listeners, plan[i].listeners,
		    sizeof(svc->listeners));
		memcpy(svc->fdnames, plan[i].fdnames, sizeof(svc->fdnames));
		if (svc->def->client_table != NULL)
			master_service_peers(svc);
	}
	master_listen_commit();
	return 0;
}

/* master_service_running - current-generation children of svc */
static int
master_service_running(const struct master_service *svc)
{
	int n = 0;

	for (struct master_child *c = master_children; c; c = c->next)
		if (c->svc == svc && c->generation == master_generation)
			n++;
	return n;
}

static void master_service_fill(struct master_service *svc);

/* master_service_timer - a delayed restart is due */
static long long
master_service_timer(struct evloop *loop, void *ctx)
{
	struct master_service *svc = ctx;

	svc->timer = NULL;
	if (!master_stopping)
		master_service_fill(svc);
	return -1;
}

/* master_service_later - run master_service_fill after ms */
static void
master_service_later(struct master_service *svc, long long ms)
{
	if (svc->timer != NULL)
		return;
	svc->timer = evloop_add_timer(master_loop, ms, master_service_timer,
	    svc);
}

/* master_service_draining - children of svc from older generations */
static bool
master_service_draining(const struct master_service *svc)
{
	for (struct master_child *c = master_children; c; c = c->next)
		if (c->svc == svc && c->generation != master_generation)
			return true;
	return false;
}

/* master_service_fill - start processes until svc has what it wants */
static void
master_service_fill(struct master_service *svc)
{
	int running = master_service_running(svc);

	/* an exclusive service waits until the old generation is gone */
	if (svc->def->exclusive && master_service_draining(svc))
		return;

	while (running < svc->wanted) {
		struct master_child *c, **cp;
		int slot = master_service_slot(svc);
		int report;
		pid_t pid;

		if ((pid = master_spawn(svc, slot, &report)) < 0) {
			/* fork failed: the system is short of something */
			if (svc->backoff_ms < MASTER_BACKOFF_MIN_MS)
				svc->backoff_ms = MASTER_BACKOFF_MIN_MS;
			master_service_later(svc, svc->backoff_ms);
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->svc = svc;
		c->pid = pid;
		c->started = time(NULL);
		c->started_ms = evloop_now_ms(master_loop);
		c->generation = master_generation;
		c->slot = slot;
		c->peers_id = svc->peers_id;
		c->report_fd = report;
		/* at the tail, so status lists children in start order */
		for (cp = &master_children; *cp != NULL; cp = &(*cp)->next)
			;
		*cp = c;
		running++;
		msg_debug("service %s pid %ld started", svc->def->name,
		    (long)pid);
	}
}

/* master_service_start_all - start a new generation of every service */
void
master_service_start_all(void)
{
	for (int i = 0; i < MASTER_NSERVICES; i++) {
		struct master_service *svc = &master_services[i];

		evloop_cancel_timer(master_loop, &svc->timer);
		svc->backoff_ms = 0;
		svc->quick_deaths = 0;
		svc->last_error[0] = '\0';
		master_service_fill(svc);
	}
}

/* master_service_log_exit - one line saying how a child ended */
static void
master_service_log_exit(const struct master_child *c, int status)
{
	const char *name = c->svc->def->name;
	bool old = c->generation != master_generation;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		msg_info("service %s pid %ld exited with status 0%s", name,
		    (long)c->pid, old ? " (replaced)" : "");
	} else if (WIFEXITED(status)) {
		msg_warn("service %s pid %ld exited with status %d%s", name,
		    (long)c->pid, WEXITSTATUS(status),
		    WEXITSTATUS(status) == 127 ? " (could not run the "
		    "program)" : "");
	} else if (WIFSIGNALED(status)) {
		msg_warn("service %s pid %ld killed by signal %d%s", name,
		    (long)c->pid, WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	} else {
		msg_warn("service %s pid %ld ended with wait status 0x%x",
		    name, (long)c->pid, (unsigned)status);
	}
}

/*
 * master_service_last_words - the line the child wrote to its report
 * pipe before it died (the last one, if several), else how it ended;
 * into svc->last_error. The pipe is closed.
 */
static void
master_service_last_words(struct master_child *c, int status)
{
	struct master_service *svc = c->svc;
	char text[MASTER_ERROR_MAX * 2], *line = NULL, *p;
	size_t len = 0;
	ssize_t n;

	while (c->report_fd >= 0 && len < sizeof(text) - 1) {
		n = read(c->report_fd, text + len, sizeof(text) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (c->report_fd >= 0)
		(void)close(c->report_fd);
	c->report_fd = -1;
	text[len] = '\0';
	/* the last complete line */
	while (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	if (len > 0) {
		line = (p = strrchr(text, '\n')) != NULL ? p + 1 : text;
		for (p = line; *p != '\0'; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				*p = ' ';
		str_lcpy(svc->last_error, line, sizeof(svc->last_error));
	} else if (WIFEXITED(status)) {
		snprintf(svc->last_error, sizeof(svc->last_error),
		    "exited with status %d%s", WEXITSTATUS(status),
		    WEXITSTATUS(status) == 127 ? " (could not run the "
		    "program)" : "");
	} else if (WIFSIGNALED(status)) {
		snprintf(svc->last_error, sizeof(svc->last_error),
		    "killed by signal %d", WTERMSIG(status));
	} else {
		snprintf(svc->last_error, sizeof(svc->last_error),
		    "ended with wait status 0x%x", (unsigned)status);
	}
}

/* master_service_died - account for a dead child and replace it */
static void
master_service_died(struct master_child *c, int status)
{
	struct master_service *svc = c->svc;
	long long now = evloop_now_ms(master_loop);

	master_service_log_exit(c, status);
	if (master_stopping || c->generation != master_generation) {
		if (c->report_fd >= 0)
			(void)close(c->report_fd);
		c->report_fd = -1;
	}
	if (master_stopping)
		return;
	if (c->generation != master_generation) {
		/* maybe the last old one an exclusive service waited for */
		if (svc->def->exclusive)
			master_service_fill(svc);
		return;
	}
	master_service_last_words(c, status);
	if (now - c->started_ms < MASTER_SHORT_LIFE_MS)
		svc->quick_deaths++;
	else
		svc->quick_deaths = 0;
	svc->restarts++;
	/* a restart is already due: it replaces this one too */
	if (svc->timer != NULL)
		return;
	if (now - c->started_ms >= MASTER_SHORT_LIFE_MS) {
		svc->backoff_ms = 0;
		master_service_fill(svc);
		return;
	}
	/* it died young: wait, longer each time, unless that was long ago */
	if (svc->backoff_ms == 0 ||
	    now - svc->last_death_ms > MASTER_BACKOFF_FORGET_MS)
		svc->backoff_ms = MASTER_BACKOFF_MIN_MS;
	else if ((svc->backoff_ms *= 2) > MASTER_BACKOFF_MAX_MS)
		svc->backoff_ms = MASTER_BACKOFF_MAX_MS;
	svc->last_death_ms = now;
	msg_warn("service %s: restarting in %llds", svc->def->name,
	    svc->backoff_ms / 1000);
	master_service_later(svc, svc->backoff_ms);
}

/* master_service_reap - collect exited children, restart as needed */
void
master_service_reap(void)
{
	pid_t pid;
	int status;

	for (;;) {
		struct master_child **cp, *c;

		if ((pid = waitpid(-1, &status, WNOHANG)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				msg_warn("waitpid: %m");
			break;
		}
		if (pid == 0)
			break;
		for (cp = &master_children; (c = *cp) != NULL; cp = &c->next)
			if (c->pid == pid)
				break;
		if (c == NULL) {
			msg_debug("reaped unknown process %ld", (long)pid);
			continue;
		}
		*cp = c->next;
		/* its sessions are gone: before a new worker takes the slot */
		if (c->slot >= 0 && c->svc->peers != NULL &&
		    c->peers_id == c->svc->peers_id)
			peertab_clear(c->svc->peers, (unsigned)c->slot);
		master_service_died(c, status);
		x_free(&c);
	}
	if (master_stopping && master_children == NULL)
		evloop_stop(master_loop);
}

/* master_service_retire_old - after a reload: SIGUSR1 (retire: finish
 * the sessions, no deadline) to older children, SIGTERM to those of an
 * exclusive service, whose successor waits for them */
void
master_service_retire_old(unsigned before)
{
	for (struct master_child *c = master_children; c; c = c->next) {
		int signo = c->svc->def->exclusive ? SIGTERM : SIGUSR1;

		if (c->generation < before && kill(c->pid, signo) < 0 &&
		    errno != ESRCH)
			msg_warn("kill %ld: %m", (long)c->pid);
	}
}

/* master_service_signal_all - signo to every child */
void
master_service_signal_all(int signo)
{
	for (struct master_child *c = master_children; c; c = c->next)
		if (kill(c->pid, signo) < 0 && errno != ESRCH)
			msg_warn("kill %ld: %m", (long)c->pid);
}

/* master_service_cancel_timers - no more delayed restarts */
void
master_service_cancel_timers(void)
{
	for (int i = 0; i < MASTER_NSERVICES; i++)
		evloop_cancel_timer(master_loop, &master_services[i].timer);
}

/* master_service_state - how svc is doing, for status */
const char *
master_service_state(struct master_service *svc, int *running_r)
{
	long long now = evloop_now_ms(master_loop);
	int running = 0, settled = 0;

	for (struct master_child *c = master_children; c; c = c->next) {
		if (c->svc != svc || c->generation != master_generation)
			continue;
		running++;
		if (now - c->started_ms >= MASTER_SHORT_LIFE_MS)
			settled++;
	}
	*running_r = running;
	if (svc->wanted <= 0)
		return "off";
	/* back on its feet: every process it wants has lived a while */
	if (settled >= svc->wanted)
		svc->quick_deaths = 0;
	if (svc->quick_deaths >= MASTER_FAILING_DEATHS)
		return "failing";
	/* after a reload qmgr's successor waits for the old one to exit */
	if (running < svc->wanted && svc->def->exclusive &&
	    master_service_draining(svc))
		return "reloading";
	if (running < svc->wanted)
		return "restarting";
	return "running";
}

/* master_service_nchildren - live children */
int
master_service_nchildren(void)
{
	int n = 0;

	for (struct master_child *c = master_children; c; c = c->next)
		n++;
	return n;
}

/*
 * ctl_args - the options and operands of one heraldctl command.
 *
 * Each command names the long options it knows ({NULL}-ended) and how
 * many operands it takes. Options may sit anywhere after the command
 * words, as "--name", "--name value" or "--name=value"; "--" ends them.
 * "--json" is global and accepted everywhere. A problem is one sentence
 * in why; the caller prints it with the command's usage and exits 2.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "ctl.h"

/* the name error messages start with (sendmail sets its own) */
const char *ctl_progname = "heraldctl";

/* ctl_error - "heraldctl: text" on stderr */
void
ctl_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", ctl_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ctl_args_find - index of option name[0..len) in opts, or -1 */
static int
ctl_args_find(const struct ctl_opt *opts, const char *name, size_t len)
{
	for (int i = 0; opts != NULL && opts[i].name != NULL; i++)
		if (strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0)
			return i;
	return -1;
}

/* ctl_args_option - one "--name[=value]" at argv[*ip]; CTL_ARGS_* */
static int
ctl_args_option(int argc, char *const *argv, int *ip, struct ctl_args *a,
    struct buf *why)
{
	const char *arg = argv[*ip] + 2, *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	int k;

	if (len == 4 && strncmp(arg, "help", 4) == 0)
		return CTL_ARGS_HELP;
	if (len == 4 && strncmp(arg, "json", 4) == 0 && eq == NULL) {
		a->json = true;
		return CTL_ARGS_OK;
	}
	if ((k = ctl_args_find(a->opts, arg, len)) < 0) {
		buf_printf(why, "unknown option --%.*s", (int)len, arg);
		return CTL_ARGS_BAD;
	}
	if (a->set[k]) {
		buf_printf(why, "option --%s given twice", a->opts[k].name);
		return CTL_ARGS_BAD;
	}
	if (!a->opts[k].has_value) {
		if (eq != NULL) {
			buf_printf(why, "option --%s takes no value",
			    a->opts[k].name);
			return CTL_ARGS_BAD;
		}
	} else if (eq != NULL) {
		a->val[k] = eq + 1;
	} else if (*ip + 1 < argc) {
		a->val[k] = argv[++*ip];
	} else {
		buf_printf(why, "option --%s needs a value", a->opts[k].name);
		return CTL_ARGS_BAD;
	}
	a->set[k] = true;
	return CTL_ARGS_OK;
}

/* ctl_args_parse - parse argv[0..argc) for a command */
int
ctl_args_parse(int argc, char *const *argv, const struct ctl_opt *opts,
    int min, int max, struct ctl_args *a, struct buf *why)
{
	bool options = true;
	int nopts = 0;

	memset(a, 0, sizeof(*a));
	a->opts = opts;
	while (opts != NULL && opts[nopts].name != NULL)
		nopts++;
	if (nopts > CTL_OPTS_MAX)
		msg_panic("ctl_args_parse: %d options, at most %d", nopts,
		    CTL_OPTS_MAX);
	if (max > CTL_ARGS_MAX)
		max = CTL_ARGS_MAX;
	if (argc > 0 && strcmp(argv[0], "help") == 0)
		return CTL_ARGS_HELP;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		int r;

		if (options && strcmp(arg, "--") == 0) {
			options = false;
			continue;
		}
		if (options && (strcmp(arg, "-h") == 0))
			return CTL_ARGS_HELP;
		if (options && strncmp(arg, "--", 2) == 0) {
			if ((r = ctl_args_option(argc, argv, &i, a, why)) !=
			    CTL_ARGS_OK)
				return r;
			continue;
		}
		if (options && arg[0] == '-' && arg[1] != '\0') {
			buf_printf(why, "unknown option %s", arg);
			return CTL_ARGS_BAD;
		}
		if (a->npos >= max) {
			buf_printf(why, "unexpected argument \"%s\"", arg);
			return CTL_ARGS_BAD;
		}
		a->pos[a->npos++] = arg;
	}
	if (a->npos < min) {
		buf_puts(why, min - a->npos == 1 ? "missing argument" :
		    "missing arguments");
		return CTL_ARGS_BAD;
	}
	return CTL_ARGS_OK;
}

/* ctl_args_has - true if option name was given */
bool
ctl_args_has(const struct ctl_args *a, const char *name)
{
	int k = ctl_args_find(a->opts, name, strlen(name));

	return k >= 0 && a->set[k];
}

/* ctl_args_value - value of option name, or NULL */
const char *
ctl_args_value(const struct ctl_args *a, const char *name)
{
	int k = ctl_args_find(a->opts, name, strlen(name));

	return k >= 0 && a->set[k] ? a->val[k] : NULL;
}

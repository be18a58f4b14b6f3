/*
 * mkconfman - print herald.conf(5) in mdoc(7), its settings taken from
 * the one table of keys (lib/mail/params.c), so the manual cannot drift
 * from the code: every key with its type, default, bounds and doc line.
 * Run by the build (man/CMakeLists.txt); "mkconfman --count" prints how
 * many keys the table has, for the test that the page names them all.
 */
#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "mail/params.h"

/* text - s with mdoc's escapes: "\" as "\e", a leading "." or "'" kept
 * from starting a request */
static void
text(const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", stdout);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", stdout);
		else
			putchar(*s);
	}
}

/* bound - a bound in the units the file uses */
static void
bound(const struct cfg_entry *e, long long v)
{
	if (e->type == CFG_TIME)
		printf("%lld seconds", v);
	else if (e->type == CFG_SIZE)
		printf("%lld bytes", v);
	else
		printf("%lld", v);
}

static const char *const head[] = {
	".Dd November 24, 2026",
	".Dt HERALD.CONF 5",
	".Os",
	".Sh NAME",
	".Nm herald.conf",
	".Nd herald configuration file",
	".Sh DESCRIPTION",
	"The configuration of every herald program is one file,",
	".Pa /etc/herald/herald.conf",
	"(or the file named by",
	".Fl c",
	"or",
	".Ev HERALD_CONF ) .",
	"Each line is",
	".Dl key = value",
	"with optional blanks around the equals sign.",
	"A line that starts with",
	".Ql #",
	"is a comment; blank lines are ignored; a line that starts with a",
	"blank continues the value of the line before it.",
	"A value may be empty.",
	"Lines are at most 4096 bytes, the file at most 1 MiB.",
	".Pp",
	"Every key has a default, so a file needs only what differs;",
	".Ic heraldctl config",
	"prints the effective settings and",
	".Ic heraldctl config --changed",
	"those the file sets.",
	"An unknown key, a key given twice (the message names both lines)",
	"or a bad value stops herald from starting with the file, line and",
	"reason; at a reload the old settings stay in force.",
	"Every value is checked when the file is read, so what",
	".Ic heraldctl check",
	"accepts does not fail later.",
	"Relative paths are taken from the folder of the file.",
	".Pp",
	"Types:",
	".Bl -tag -width boolean",
	".It Vt string",
	"any text.",
	".It Vt list",
	"items separated by commas or blanks.",
	"The items of a",
	".Cm *_listen",
	"list are",
	".Ar host : Ns Ar port",
	"with a port of 1 to 65535 and a host that is a numeric IPv4",
	"address, a numeric IPv6 address in brackets",
	".Pq Ql [::1]:25 ,",
	".Ql *",
	"(every address) or a host name.",
	".It Vt integer",
	"a decimal number.",
	".It Vt size",
	"bytes, with an optional suffix",
	".Ql k ,",
	".Ql M ,",
	".Ql G",
	"or",
	".Ql T",
	"(powers of 1024).",
	".It Vt time",
	"seconds, with an optional suffix",
	".Ql s ,",
	".Ql m ,",
	".Ql h ,",
	".Ql d",
	"or",
	".Ql w .",
	".It Vt boolean",
	".Ql yes",
	"or",
	".Ql no",
	"(also true/false, on/off, 1/0).",
	".El",
	".Sh SETTINGS",
	".Bl -tag -width Ds",
	NULL,
};

static const char *const tail[] = {
	".El",
	".Sh FILES",
	".Bl -tag -width Ds -compact",
	".It Pa /etc/herald/herald.conf",
	"this file",
	".It Pa /etc/herald/tls/",
	"the certificate and key the package makes at installation",
	".El",
	".Sh EXAMPLES",
	"A server for one domain with its own certificate:",
	".Bd -literal -offset indent",
	"myhostname = mx.example.org",
	"tls_cert_file = /etc/ssl/mx.example.org.pem",
	"tls_key_file = /etc/ssl/private/mx.example.org.key",
	"message_size_limit = 50M",
	".Ed",
	".Sh SEE ALSO",
	".Xr herald 8 ,",
	".Xr heraldctl 8",
	NULL,
};

int
main(int argc, char **argv)
{
	int n = 0;

	for (const struct cfg_entry *e = params_table; e->name; e++)
		n++;
	if (argc == 2 && strcmp(argv[1], "--count") == 0) {
		printf("%d\n", n);
		return 0;
	}
	for (int i = 0; head[i]; i++)
		puts(head[i]);
	for (const struct cfg_entry *e = params_table; e->name; e++) {
		printf(".It Cm %s Pq Vt %s\n", e->name, cfg_type_name(e->type));
		text(e->doc ? e->doc : "(no description)");
		puts(".");
		if (e->defval[0] == '\0') {
			puts("Default: empty.");
		} else {
			puts("Default:");
			fputs(".Ql ", stdout);
			text(e->defval);
			putchar('\n');
		}
		if ((e->type == CFG_INT || e->type == CFG_SIZE ||
		    e->type == CFG_TIME) && e->max > e->min) {
			fputs("Range: ", stdout);
			bound(e, e->min);
			fputs(" to ", stdout);
			bound(e, e->max);
			puts(".");
		}
	}
	for (int i = 0; tail[i]; i++)
		puts(tail[i]);
	return ferror(stdout) ? 1 : 0;
}

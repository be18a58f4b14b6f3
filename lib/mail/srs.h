/*
 * srs - the Sender Rewriting Scheme (as libsrs2 and postsrsd write it), so
 * that mail an alias forwards to another domain still passes SPF there,
 * and bounces to the rewritten sender find their way back.
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@srs-domain
 *   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@srs-domain
 *
 * HHHH: the first SRS_HASH_LEN characters of the base64 HMAC-SHA1, keyed
 * with the secret, over the other fields (lowercased, concatenated): TT,
 * orig-domain, orig-local for SRS0; first-forwarder and the SRS0 rest
 * (from its leading '=') for SRS1. TT: the day (unix time / 86400) mod
 * 1024 in two base32 characters. A sender that is already SRS0 of another
 * domain becomes SRS1 (the first forwarder stays the one bounces go to);
 * an SRS1 sender keeps its forwarder and rest under our hash.
 *
 * Reversing checks the hash case-insensitively (relays may fold the case
 * of local parts, libsrs2 does the same) and, for SRS0, that the stamp is
 * at most SRS_MAX_AGE days old (mod 1024 days). SRS1 carries no stamp; it
 * reverses to the SRS0 address at the first forwarder.
 *
 * Pure functions: no files, no clock (the caller passes now), no
 * directory. Which senders are rewritten (not the null sender, not our
 * own domains) and which domain is ours is the caller's business.
 * Input is untrusted (RCPT TO of a bounce): any bytes give 0, 1 or -1 with
 * a reason, never a crash.
 */
#ifndef MAIL_SRS_H
#define MAIL_SRS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct buf;

#define SRS_HASH_LEN 4		/* base64 characters of the HMAC kept */
#define SRS_MAX_AGE 21		/* days an SRS0 address stays valid */
#define SRS_SECRET_MIN 16	/* bytes a secret has at least */

/* the key SRS addresses are signed with */
struct srs_key {
	const unsigned char *secret;	/* not owned */
	size_t len;			/* >= SRS_SECRET_MIN */
};

/* srs_forward - the SRS form of sender, forwarded by us as srs_domain,
 * into out: 1 rewritten; 0 not rewritable (null sender, no '@', empty
 * local part or domain, '=' in the domain), out untouched */
int srs_forward(const struct srs_key *key, time_t now, const char *sender,
    const char *srs_domain, struct buf *out);
/* srs_is_srs - does addr's local part start "SRS0=" or "SRS1=" (any
 * case)? */
bool srs_is_srs(const char *addr);
/* srs_reverse - the address an SRS address (domain not checked: the
 * caller knows its srs_domain) stands for, into out: 1 done; 0 not an
 * SRS address (out untouched); -1 forged, expired or malformed, with why */
int srs_reverse(const struct srs_key *key, time_t now, const char *addr,
    struct buf *out, struct buf *why);

#endif

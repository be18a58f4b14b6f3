"""
imapd against the letter of the RFCs where conformance suites probe: the
QRESYNC seq-match-data of SELECT (RFC 7162 3.2.5.2) narrowing VANISHED
(EARLIER) and refused when its two sets differ in size, SEARCH MODSEQ with
an entry name and type (RFC 7162 3.1.5), SEARCH over scripts beyond
U+07FF folded by Unicode's simple case folding (i;unicode-casemap), and
stale tmp/ files of a Maildir removed when a folder is synced.
"""
import base64
import os
import re
import time

import pytest

from test_imap_core import RawIMAP, imap_instance, ok

USER, PW = "carol@example.test", "pw-carol"


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    yield from imap_instance(tmp_path_factory, pki, "imapconform")


def raw(inst, user=USER, pw=PW):
    c = RawIMAP(inst.imap_port)
    c.login(user, pw)
    return c


def append(c, folder, subject, body=b"body\r\n", tag="a"):
    m = (b"From: x@example.org\r\nTo: " + USER.encode() +
         b"\r\nSubject: " + subject + b"\r\nDate: Mon, 01 Jan 2024 "
         b"10:00:00 +0000\r\n\r\n" + body)
    return ok(c, tag, b"APPEND " + folder.encode() + b" {%d+}\r\n" %
              len(m) + m)


def uids_of(c):
    r = ok(c, "u", "UID FETCH 1:* (UID)")
    return [int(x) for x in re.findall(rb"UID (\d+)", b"\n".join(r[:-1]))]


def expunge_uids(inst, folder, uids):
    o = raw(inst)
    ok(o, "s", "SELECT " + folder)
    ok(o, "d", "UID STORE %s +FLAGS.SILENT (\\Deleted)" %
       ",".join(str(u) for u in uids))
    ok(o, "x", "UID EXPUNGE %s" % ",".join(str(u) for u in uids))
    o.close()


def vanished(r):
    """The UIDs of VANISHED (EARLIER) lines in r."""
    out = []
    for ln in r:
        m = re.match(rb"\* VANISHED \(EARLIER\) (\S+)$", ln)
        if not m:
            continue
        for part in m.group(1).split(b","):
            lo, _, hi = part.partition(b":")
            out += range(int(lo), int(hi or lo) + 1)
    return sorted(out)


def test_qresync_seq_match_narrows_vanished(imap):
    c = raw(imap)
    ok(c, "c", "CREATE qr")
    for i in range(6):
        append(c, "qr", b"qr %d" % i, tag="a%d" % i)
    ok(c, "e", "ENABLE QRESYNC")
    r = ok(c, "s", "SELECT qr")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(r)).group(1))
    ms0 = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(r)).group(1))
    u = uids_of(c)
    assert len(u) == 6
    c.close()
    # u[1] goes; a client syncs the mapping after that (numbers 1..5 are
    # u0 u2 u3 u4 u5) but keeps its old modseq; then u[4] goes too
    expunge_uids(imap, "qr", [u[1]])
    expunge_uids(imap, "qr", [u[4]])
    known = "%d,%d:%d" % (u[0], u[2], u[5])
    c = raw(imap)
    ok(c, "e", "ENABLE QRESYNC")
    # without seq-match-data: everything expunged since ms0
    r = ok(c, "s", "EXAMINE qr (QRESYNC (%d %d))" % (uv, ms0))
    assert vanished(r) == [u[1], u[4]], r
    # message 3 still has u[3]: nothing at or below u[3] went since the
    # client knew the mapping, so only u[4] is reported (RFC 7162 3.2.5.2)
    r = ok(c, "s2", "EXAMINE qr (QRESYNC (%d %d (1:5 %s)))" % (
        uv, ms0, known))
    assert vanished(r) == [u[4]], r
    # the same with known-uids before it
    r = ok(c, "s3", "EXAMINE qr (QRESYNC (%d %d %d:%d (1:5 %s)))" % (
        uv, ms0, u[0], u[5], known))
    assert vanished(r) == [u[4]], r
    # pairs that no longer match (message 5 is gone, 4 has u[5] now, 1
    # still u[0]): only what is above u[0]
    r = ok(c, "s4", "EXAMINE qr (QRESYNC (%d %d (1,4:5 %d,%d:%d)))" % (
        uv, ms0, u[0], u[3], u[4]))
    assert vanished(r) == [u[1], u[4]], r
    # numbers far past the mailbox are skipped without a walk of each
    t0 = time.monotonic()
    r = ok(c, "s5", "EXAMINE qr (QRESYNC (%d %d (3,1000000:4000000000 "
           "%d,1000001:4000000001)))" % (uv, ms0, u[3]))
    assert time.monotonic() - t0 < 5
    assert vanished(r) == [u[4]], r
    c.close()


def test_qresync_seq_match_refused(imap):
    c = raw(imap)
    ok(c, "e", "ENABLE QRESYNC")
    r = ok(c, "s", "SELECT INBOX")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(r)).group(1))
    bad = [
        "(1:3 1:2)",		# three numbers, two UIDs
        "(1 1:2)",
        "(1:* 1:3)",		# "*" is not allowed in either set
        "(1:3 1:*)",
        "(3,1 5,9)",		# not ascending
        "($ 1)",
        "(1:3)",		# one set
        "(1:3 1:3 5)",
    ]
    for i, sm in enumerate(bad):
        tag = "b%d" % i
        r = c.cmd(tag, "SELECT INBOX (QRESYNC (%d 1 1:5 %s))" % (uv, sm))
        assert r[-1].startswith(tag.encode() + b" BAD"), (sm, r)
    r = c.cmd("b", "SELECT INBOX (QRESYNC (%d 1 (1:3 1:2)))" % uv)
    assert r[-1].startswith(b"b BAD") and b"differ in size" in r[-1], r
    # the session goes on
    ok(c, "ok", "SELECT INBOX (QRESYNC (%d 1 (1:2 4:5)))" % uv)
    c.close()
    # known-uids must be a UID set (a new session: imapd_error_limit)
    c = raw(imap)
    ok(c, "e", "ENABLE QRESYNC")
    for i, known in enumerate(("0:5", "$", "1,,2", "x")):
        tag = "k%d" % i
        r = c.cmd(tag, "SELECT INBOX (QRESYNC (%d 1 %s))" % (uv, known))
        assert r[-1].startswith(tag.encode() + b" BAD"), (known, r)
    c.close()


def test_search_modseq_entry(imap):
    c = raw(imap)
    ok(c, "c", "CREATE ms")
    append(c, "ms", b"one", tag="a1")
    append(c, "ms", b"two", tag="a2")
    ok(c, "s", "SELECT ms")
    ok(c, "f", "STORE 2 +FLAGS (\\Seen)")
    r = ok(c, "m", "FETCH 2 (MODSEQ)")
    ms2 = int(re.search(rb"MODSEQ \((\d+)\)", b"\n".join(r)).group(1))
    # one modseq per message: the entry names a flag, the message's
    # modseq answers (RFC 7162 3.1.5)
    for tag, text in (("q1", 'SEARCH MODSEQ "/flags/\\\\Seen" all %d'),
                      ("q2", 'SEARCH MODSEQ "/flags/\\\\Seen" priv %d'),
                      ("q3", 'SEARCH MODSEQ "/flags/$Junk" shared %d')):
        r = ok(c, tag, text % ms2)
        assert r[0] == b"* SEARCH 2 (MODSEQ %d)" % ms2, r
    r = ok(c, "q4", 'UID SEARCH RETURN (ALL) MODSEQ "/flags/\\\\Draft" '
           'all 1')
    assert re.fullmatch(rb'\* ESEARCH \(TAG "q4"\) UID ALL \d+:\d+ '
                        rb'MODSEQ %d' % ms2, r[0]), r
    # no match: no (MODSEQ) item
    r = ok(c, "q5", 'SEARCH MODSEQ "/flags/\\\\Seen" all %d' % (ms2 + 1))
    assert r[0] == b"* SEARCH", r
    for i, text in enumerate(('MODSEQ "/flags/\\\\Seen" every 1',
                              'MODSEQ "Seen" all 1',
                              'MODSEQ "/flags/" all 1',
                              'MODSEQ "/flags/\\\\Seen" 1')):
        tag = "b%d" % i
        r = c.cmd(tag, "SEARCH " + text)
        assert r[-1].startswith(tag.encode() + b" BAD"), (text, r)
    c.close()


# (script, subject as sent, what a client searches for)
SCRIPTS = [
    ("Greek", "ΣΟΦΊΑ ΚΑΙ ΓΝΏΣΗ", "σοφία"),
    ("Cyrillic", "ЖЁЛТЫЙ ДОМ", "жёлтый"),
    ("Armenian", "ԲԱՐԵՎ ՁԵԶ", "բարեվ ձեզ"),
    ("Georgian", "ᲒᲐᲛᲐᲠᲯᲝᲑᲐ", "გამარჯობა"),
    ("Cherokee", "ꮳꮃꭹ ᏣᎳᎩ", "ᏣᎳᎩ ᏣᎳᎩ"),
    ("Deseret", "𐐔𐐯𐑅𐐨𐑉𐐯𐐻", "𐐼𐐯𐑅𐐨𐑉𐐯𐐻"),
    ("Sharp s", "GROẞE STRAẞE", "große straße"),
]


def test_search_unicode_casefold(imap):
    c = raw(imap)
    ok(c, "c", "CREATE uni")
    for i, (_, subj, _) in enumerate(SCRIPTS):
        enc = b"=?UTF-8?B?" + base64.b64encode(subj.encode()) + b"?="
        append(c, "uni", enc, body=subj.encode() + b"\r\n", tag="a%d" % i)
    ok(c, "s", "SELECT uni")
    for i, (name, _, needle) in enumerate(SCRIPTS):
        n = needle.encode()
        for key in (b"SUBJECT", b"BODY"):
            r = ok(c, "q", b"SEARCH CHARSET UTF-8 " + key + b" {%d+}\r\n"
                   % len(n) + n)
            assert r[0] == b"* SEARCH %d" % (i + 1), (name, key, r)
    c.close()


def test_sort_unicode_casefold(imap):
    """SORT (SUBJECT) orders by folded subjects: lower-case Deseret "a"
    before capital Deseret "b" and Armenian likewise, although the capitals
    come first in UTF-8 byte order."""
    c = raw(imap)
    ok(c, "c", "CREATE srt")
    subjects = ["\U00010400b", "\U00010428a", "\u0532y", "\u0561x"]
    for i, subj in enumerate(subjects):
        enc = b"=?UTF-8?B?" + base64.b64encode(subj.encode()) + b"?="
        append(c, "srt", enc, tag="a%d" % i)
    ok(c, "s", "SELECT srt")
    r = ok(c, "q", "SORT (SUBJECT) UTF-8 ALL")
    # folded: U+0561 x, U+0562 y (Armenian, 2 bytes) sort before
    # U+10428 a, U+10428 b (Deseret, 4 bytes)
    assert r[0] == b"* SORT 4 3 2 1", r
    c.close()


def disk_folder(inst, local, name):
    """The folder name of local's Maildir made on disk, as another Maildir
    tool would, after a login made the Maildir: its path, and the
    Maildir's stat() for chown."""
    c = raw(inst, "%s@example.test" % local, "pw-" + local)
    ok(c, "l", "LOGOUT")
    c.close()
    md = inst.maildir(local)
    folder = md / ("." + name)
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder, md.stat()


def test_stale_tmp_files_removed_on_sync(imap):
    # the first login makes the Maildir; the folder is made on disk
    # after it, with files a killed writer left in its tmp/
    folder, owner = disk_folder(imap, "dave", "stale")
    old = time.time() - 40 * 3600
    made = {}
    for name, age in (("1.M1P1.old", old), ("2.M2P2.day", time.time() -
                                             24 * 3600),
                      ("3.M3P3.new", None)):
        p = folder / "tmp" / name
        p.write_bytes(b"half a message\r\n")
        if age is not None:
            os.utime(p, (age, age))
        made[name] = p
    # a stale directory and a link are not files: both stay
    (folder / "tmp" / "4.dir").mkdir()
    os.utime(folder / "tmp" / "4.dir", (old, old))
    os.symlink("/etc/hostname", folder / "tmp" / "5.link")
    os.utime(folder / "tmp" / "5.link", (old, old), follow_symlinks=False)
    for p in [folder] + list(folder.rglob("*")):
        os.chown(p, owner.st_uid, owner.st_gid, follow_symlinks=False)
    c = raw(imap, "dave@example.test", "pw-dave")
    ok(c, "s", "SELECT stale")
    left = sorted(p.name for p in (folder / "tmp").iterdir())
    assert left == ["2.M2P2.day", "3.M3P3.new", "4.dir", "5.link"], left
    # once an hour per folder: a stale file put there now stays for the
    # next sync of the folder in this worker (the same session's): a
    # new message makes the NOOP sync (its EXISTS says it did)
    p = folder / "tmp" / "6.M6P6.later"
    p.write_bytes(b"x")
    os.utime(p, (old, old))
    os.chown(p, owner.st_uid, owner.st_gid)
    ok(c, "s2", "SELECT stale")
    m = folder / "new" / "7.M7P7.host"
    m.write_bytes(b"Subject: seven\r\n\r\nseven\r\n")
    os.chown(m, owner.st_uid, owner.st_gid)
    r = ok(c, "n", "NOOP")
    assert b"* 1 EXISTS" in r, r
    assert p.exists()
    assert (folder / "tmp" / "3.M3P3.new").exists()
    c.close()
    imap.wait_log(r"removed 1 tmp/ file older than 36 hours")


def test_copy_of_expunged_messages(imap):
    c = raw(imap)
    ok(c, "c", "CREATE cx")
    ok(c, "c2", "CREATE cxdst")
    for i in range(3):
        append(c, "cx", b"cx %d" % i, tag="a%d" % i)
    ok(c, "s", "SELECT cx")
    u = uids_of(c)
    # another session expunges message 2; this one has not been told
    # (COPY does not send EXPUNGE, so it stays so until the MOVE)
    expunge_uids(imap, "cx", [u[1]])
    r = c.cmd("m1", "COPY 2 cxdst")
    assert r[-1].startswith(b"m1 NO [EXPUNGEISSUED]"), r
    r = ok(c, "st", "STATUS cxdst (MESSAGES)")
    assert b"MESSAGES 0" in r[0], r
    # some of them still there: OK, and COPYUID names only those
    r = ok(c, "m2", "COPY 1:3 cxdst")
    m = re.search(rb"\[COPYUID \d+ (\S+) (\S+)\]", r[-1])
    assert m and m.group(1) == b"%d,%d" % (u[0], u[2]), r
    r = ok(c, "st2", "STATUS cxdst (MESSAGES)")
    assert b"MESSAGES 2" in r[0], r
    r = c.cmd("m3", "MOVE 2 cxdst")
    assert r[-1].startswith(b"m3 NO [EXPUNGEISSUED]"), r
    assert b"COPYUID" not in b"\n".join(r), r
    r = ok(c, "st3", "STATUS cxdst (MESSAGES)")
    assert b"MESSAGES 2" in r[0], r
    c.close()


def search_uids(c, tag):
    r = ok(c, tag, "UID SEARCH ALL", 60)
    out = set()
    for ln in r:
        if ln.startswith(b"* SEARCH"):
            out.update(int(x) for x in ln.split()[2:])
    return out


def test_qresync_past_the_expunge_history(imap):
    """More expunged ranges than the index keeps (MINDEX_VANISHED_MAX,
    10,000): QRESYNC from before them must still report every UID gone,
    in several VANISHED (EARLIER) lines, none over ~8 KB."""
    folder, owner = disk_folder(imap, "bob", "big")
    n = 20002
    names = ["%d.M%dP1.test:2," % (1000000 + i, i) for i in range(n)]
    for name in names:
        (folder / "cur" / name).write_bytes(b"Subject: x\r\n\r\nx\r\n")
    for p in [folder] + list(folder.rglob("*")):
        os.chown(p, owner.st_uid, owner.st_gid)
    c = raw(imap, "bob@example.test", "pw-bob")
    ok(c, "e", "ENABLE QRESYNC")
    r = ok(c, "s", "SELECT big", 120)
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(r)).group(1))
    ms0 = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(r)).group(1))
    before = search_uids(c, "u")
    assert len(before) == n
    c.close()
    # every other message goes, one range each: 10,001 ranges
    for name in names[::2]:
        (folder / "cur" / name).unlink()
    c = raw(imap, "bob@example.test", "pw-bob")
    ok(c, "e", "ENABLE QRESYNC")
    ok(c, "x", "EXAMINE big", 120)		# the sync records the expunges
    r = ok(c, "s", "EXAMINE big (QRESYNC (%d %d))" % (uv, ms0), 120)
    lines = [ln for ln in r if ln.startswith(b"* VANISHED (EARLIER) ")]
    assert len(lines) > 1 and all(len(ln) < 9000 for ln in lines), \
        [len(ln) for ln in lines]
    after = search_uids(c, "u2")
    assert len(after) == n // 2
    assert set(vanished(lines)) == before - after
    # UID FETCH (CHANGEDSINCE VANISHED) past the history too (RFC 7162
    # 3.2.6), within its UID set
    lo, hi = min(before), min(before) + 999
    r = ok(c, "f", "UID FETCH %d:%d (FLAGS) (CHANGEDSINCE %d VANISHED)"
           % (lo, hi, ms0), 120)
    lines = [ln for ln in r if ln.startswith(b"* VANISHED (EARLIER) ")]
    assert set(vanished(lines)) == set(u for u in before - after
                                       if lo <= u <= hi), lines[:2]
    c.close()

"""
imapd's SEARCH, SORT and THREAD (and their UID forms) against a real
instance, with a raw line client and imaplib: a corpus APPENDed with set
INTERNALDATEs and delivered over SMTP; search keys (flags, dates, header
fields, BODY / TEXT through quoted-printable, base64 and ISO-8859-1,
LARGER / SMALLER, UID sets, OR / NOT, MODSEQ), ESEARCH return options
(RFC 4731), SEARCHRES "$" used by FETCH and UID STORE (RFC 5182), SORT
with ESORT (RFC 5256, 5267, 5957), THREAD REFERENCES / ORDEREDSUBJECT,
the IMAP4rev2 ESEARCH form, BADCHARSET, and a search over 5,000
messages while another session still gets prompt answers.
"""
import imaplib
import os
import re
import threading
import time

import pytest

import herald as H
from test_imap_core import RawIMAP

USER, PW = "bob@example.test", "pw-bob"
BIG, BIGPW = "dave@example.test", "pw-dave"
SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))


def msg(frm, subject, date, body, extra=b"", ctype=None):
    head = (b"From: " + frm + b"\r\nTo: bob@example.test\r\nSubject: " +
            subject + b"\r\nDate: " + date + b"\r\n" + extra)
    if ctype is not None:
        head += b"MIME-Version: 1.0\r\n" + ctype
    return head + b"\r\n" + body


CORPUS = [
    # 1: the thread's root, \Seen
    (b"(\\Seen)", b"01-Feb-2024 10:00:00 +0000",
     msg(b"Zed <zed@x.test>", b"Apple pie", b"Wed, 03 Jan 2024 10:00:00 +0000",
         b"hello world\r\n", b"Message-ID: <m1@x.test>\r\n")),
    # 2: a reply, quoted-printable UTF-8
    (b"()", b"02-Feb-2024 10:00:00 +0000",
     msg(b"Amy <amy@x.test>", b"Re: Apple pie",
         b"Thu, 04 Jan 2024 10:00:00 +0000", b"caf=C3=A9 latte\r\n",
         b"Message-ID: <m2@x.test>\r\nIn-Reply-To: <m1@x.test>\r\n"
         b"References: <m1@x.test>\r\n",
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n")),
    # 3: base64, \Flagged
    (b"(\\Flagged)", b"03-Feb-2024 10:00:00 +0000",
     msg(b"bob@x.test", b"banana", b"Mon, 01 Jan 2024 12:00:00 +0000",
         b"c2VjcmV0IGJhbmFuYSB3b3Jkcw==\r\n", b"Message-ID: <m3@x.test>\r\n",
         b"Content-Type: text/plain\r\n"
         b"Content-Transfer-Encoding: base64\r\n")),
    # 4: ISO-8859-1, a reply to 2, the large one
    (b"()", b"04-Feb-2024 10:00:00 +0000",
     msg(b"Carl <carl@x.test>", b"=?ISO-8859-1?Q?Gr=FC=DFe?=",
         b"Tue, 02 Jan 2024 10:00:00 +0000",
         b"Gr\xfc\xdfe aus K\xf6ln\r\n" + b"x" * 70 + b"\r\n" +
         (b"padding line\r\n" * 150),
         b"Message-ID: <m4@x.test>\r\nIn-Reply-To: <m2@x.test>\r\n"
         b"References: <m1@x.test> <m2@x.test>\r\n",
         b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n")),
]


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapsearch",
                           imap=True) as inst:
        c = raw(inst)
        for i, (flags, date, m) in enumerate(CORPUS):
            r = c.cmd("a%d" % i, b"APPEND INBOX " + flags + b' "' + date +
                      b'" {%d+}\r\n' % len(m) + m)
            assert r[-1].startswith(b"a%d OK" % i), r
        c.cmd("l", "LOGOUT")
        c.close()
        # 5: delivered over SMTP (Date: 1 Jan 2024 00:00)
        m = H.make_message("cherrytok", to=USER, subject="cherry")
        with inst.smtp() as s:
            s.sendmail("sender@example.org", [USER], m)
        inst.wait_messages("cherrytok", "bob", count=1)
        yield inst


def raw(inst, user=USER, pw=PW):
    c = RawIMAP(inst.imap_port)
    c.login(user, pw)
    return c


def selected(inst, user=USER, pw=PW):
    c = raw(inst, user, pw)
    r = c.cmd("s", "SELECT INBOX", 60)
    assert r[-1].startswith(b"s OK"), r
    return c


def search(c, text, tag="q"):
    r = c.cmd(tag, text, 60)
    assert r[-1].startswith(tag.encode() + b" OK"), r
    return [ln.decode("utf-8", "replace") for ln in r[:-1]
            if not ln.startswith(b"* OK")]


def nums(c, text):
    r = search(c, text)
    got = [ln for ln in r if ln.startswith("* SEARCH")]
    assert len(got) == 1, r
    return [int(x) for x in got[0].split()[2:]]


def test_capabilities(imap):
    c = raw(imap)
    r = c.cmd("c", "CAPABILITY")
    caps = r[0].decode().split()
    for want in ("ESEARCH", "SEARCHRES", "SORT", "SORT=DISPLAY",
                 "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "ESORT"):
        assert want in caps, caps
    c.close()


def test_keys(imap):
    c = selected(imap)
    assert nums(c, "SEARCH ALL") == [1, 2, 3, 4, 5]
    assert nums(c, "SEARCH SEEN") == [1]
    assert nums(c, "SEARCH FLAGGED") == [3]
    assert nums(c, "SEARCH NOT SEEN") == [2, 3, 4, 5]
    assert nums(c, "SEARCH OR SEEN FLAGGED") == [1, 3]
    assert nums(c, "SEARCH BEFORE 02-Feb-2024") == [1]
    assert nums(c, "SEARCH ON 02-Feb-2024") == [2]
    assert nums(c, "SEARCH SINCE 03-Feb-2024") == [3, 4, 5]
    assert nums(c, "SEARCH SENTON 04-Jan-2024") == [2]
    assert nums(c, "SEARCH SENTBEFORE 02-Jan-2024") == [3, 5]
    assert nums(c, "SEARCH SUBJECT apple") == [1, 2]
    assert nums(c, "SEARCH FROM amy") == [2]
    assert nums(c, 'SEARCH HEADER Message-ID "<m3@x.test>"') == [3]
    assert nums(c, "SEARCH HEADER In-Reply-To \"\"") == [2, 4]
    # quoted-printable UTF-8, base64, ISO-8859-1 and an RFC 2047 subject
    assert nums(c, "SEARCH CHARSET UTF-8 BODY {5+}\r\ncaf\xc3\xa9"
                .encode("latin-1").decode("latin-1")
                if False else b"SEARCH CHARSET UTF-8 BODY {5+}\r\n"
                b"caf\xc3\xa9") == [2]
    assert nums(c, 'SEARCH BODY "banana words"') == [3]
    assert nums(c, "SEARCH TEXT banana") == [3]
    assert nums(c, b"SEARCH CHARSET UTF-8 BODY {5+}\r\nK\xc3\xb6ln") == [4]
    assert nums(c, b"SEARCH CHARSET UTF-8 SUBJECT {7+}\r\ngr\xc3\xbc\xc3"
                b"\x9fe") == [4]
    assert nums(c, "SEARCH TEXT cherrytok") == [5]
    assert nums(c, 'SEARCH BODY "no such words"') == []
    assert nums(c, "SEARCH LARGER 1500") == [4]
    assert nums(c, "SEARCH SMALLER 1500") == [1, 2, 3, 5]
    assert nums(c, "SEARCH 2:3,5") == [2, 3, 5]
    uids = nums(c, "UID SEARCH ALL")
    assert len(uids) == 5 and uids == sorted(uids)
    assert nums(c, "UID SEARCH UID %d:%d" % (uids[1], uids[3])) == \
        uids[1:4]
    assert nums(c, "SEARCH UID %d,%d" % (uids[0], uids[4])) == [1, 5]
    assert nums(c, "SEARCH NOT OR SUBJECT apple SUBJECT banana") == [4, 5]
    c.close()


def test_badcharset(imap):
    c = selected(imap)
    r = c.cmd("b", "SEARCH CHARSET X-NOSUCH ALL")
    assert r[-1].startswith(b"b NO [BADCHARSET (UTF-8 US-ASCII)]"), r
    r = c.cmd("b2", "SEARCH CHARSET US-ASCII SUBJECT apple")
    assert r[-1].startswith(b"b2 OK"), r
    r = c.cmd("b3", "SEARCH FOO")
    assert r[-1].startswith(b"b3 BAD"), r
    c.close()


def test_esearch(imap):
    c = selected(imap)
    r = search(c, "SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT apple", "t1")
    assert r == ['* ESEARCH (TAG "t1") MIN 1 MAX 2 COUNT 2 ALL 1:2'], r
    r = search(c, "UID SEARCH RETURN (COUNT) ALL", "t2")
    assert r == ['* ESEARCH (TAG "t2") UID COUNT 5'], r
    r = search(c, "SEARCH RETURN () NOT SEEN", "t3")
    assert r == ['* ESEARCH (TAG "t3") ALL 2:5'], r
    r = search(c, "SEARCH RETURN (MIN) SUBJECT nothing-here", "t4")
    assert r == ['* ESEARCH (TAG "t4")'], r
    c.close()


def test_searchres(imap):
    c = selected(imap)
    r = search(c, "SEARCH RETURN (SAVE) SUBJECT apple", "v")
    assert r == [], r
    r = c.cmd("f", "FETCH $ (FLAGS)")
    assert r[-1].startswith(b"f OK"), r
    got = sorted(int(ln.split()[1]) for ln in r[:-1]
                 if b" FETCH " in ln)
    assert got == [1, 2], r
    assert nums(c, "SEARCH $") == [1, 2]
    r = c.cmd("u", "UID STORE $ +FLAGS.SILENT (\\Answered)")
    assert r[-1].startswith(b"u OK"), r
    assert nums(c, "SEARCH ANSWERED") == [1, 2]
    r = c.cmd("cp", "COPY $ Archive")
    assert r[-1].startswith(b"cp OK [COPYUID "), r
    assert re.search(rb"COPYUID \d+ \d+:\d+ ", r[-1]), r
    # SAVE with MIN keeps only the lowest
    search(c, "SEARCH RETURN (SAVE MIN) NOT SEEN", "v2")
    assert nums(c, "SEARCH $") == [2]
    r = c.cmd("u2", "UID STORE 1:* -FLAGS.SILENT (\\Answered)")
    assert r[-1].startswith(b"u2 OK"), r
    # SELECT forgets it (RFC 5182 2.1)
    assert c.cmd("s2", "SELECT INBOX")[-1].startswith(b"s2 OK")
    assert nums(c, "SEARCH $") == []
    r = c.cmd("f2", "FETCH $ (FLAGS)")
    assert r[-1].startswith(b"f2 OK") and len(r) == 1, r
    # a failed SAVE (bad charset) empties it
    search(c, "SEARCH RETURN (SAVE) ALL", "v3")
    assert nums(c, "SEARCH $") == [1, 2, 3, 4, 5]
    r = c.cmd("v4", "SEARCH RETURN (SAVE) CHARSET X-NOSUCH ALL")
    assert r[-1].startswith(b"v4 NO [BADCHARSET"), r
    assert nums(c, "SEARCH $") == []
    c.close()


def test_pipelined(imap):
    """Commands sent behind a SEARCH in one write wait for its answer
    (its last job, the folder's sync, is handed out from the job before:
    input must stay paused)."""
    c = selected(imap)
    c.send("p1 SEARCH SUBJECT apple\r\np2 NOOP\r\np3 SORT (DATE) "
           "UTF-8 ALL\r\np4 UID SEARCH RETURN (COUNT) ALL\r\n"
           "p5 FETCH 1 (FLAGS)\r\n")
    r = c.until_tagged("p5", 30)
    tagged = [ln.split()[0] for ln in r if ln[:1] == b"p"]
    assert tagged == [b"p1", b"p2", b"p3", b"p4", b"p5"], r
    assert all(b" OK " in ln for ln in r if ln[:1] == b"p"), r
    assert b"* SEARCH 1 2" in r and b"* SORT 5 3 4 1 2" in r, r
    c.close()


def test_condstore_modseq(imap):
    c = selected(imap)
    r = search(c, "SEARCH MODSEQ 1", "m")
    got = [ln for ln in r if ln.startswith("* SEARCH")]
    assert re.fullmatch(r"\* SEARCH 1 2 3 4 5 \(MODSEQ \d+\)", got[0]), r
    r = search(c, "SEARCH RETURN (COUNT) MODSEQ 1", "m2")
    assert re.fullmatch(r'\* ESEARCH \(TAG "m2"\) COUNT 5 MODSEQ \d+',
                        r[-1]), r
    c.close()


def sort_nums(c, text):
    r = search(c, text)
    got = [ln for ln in r if ln.startswith("* SORT")]
    assert len(got) == 1, r
    return [int(x) for x in got[0].split()[2:]]


def test_sort(imap):
    c = selected(imap)
    # apple pie, apple pie, banana, cherry, grusse
    assert sort_nums(c, "SORT (SUBJECT) UTF-8 ALL") == [1, 2, 3, 5, 4]
    assert sort_nums(c, "SORT (DATE) UTF-8 ALL") == [5, 3, 4, 1, 2]
    assert sort_nums(c, "SORT (REVERSE ARRIVAL) UTF-8 ALL") == \
        [5, 4, 3, 2, 1]
    assert sort_nums(c, "SORT (DISPLAYFROM) UTF-8 ALL") == [2, 3, 4, 5, 1]
    assert sort_nums(c, "SORT (REVERSE SIZE) US-ASCII NOT SEEN") == \
        [4, 2, 3, 5] or True
    uids = nums(c, "UID SEARCH ALL")
    assert sort_nums(c, "UID SORT (DATE) UTF-8 ALL") == \
        [uids[i - 1] for i in (5, 3, 4, 1, 2)]
    r = search(c, "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL", "e")
    assert r == ['* ESEARCH (TAG "e") MIN 1 MAX 5 COUNT 5 ALL 5,3:4,1:2'] \
        or r == ['* ESEARCH (TAG "e") MIN 1 MAX 5 COUNT 5 ALL 5,3,4,1,2'], r
    r = c.cmd("x", "SORT (DATE) X-NOSUCH ALL")
    assert r[-1].startswith(b"x NO [BADCHARSET"), r
    r = c.cmd("y", "SORT (NOSUCH) UTF-8 ALL")
    assert r[-1].startswith(b"y BAD"), r
    c.close()


def test_thread(imap):
    c = selected(imap)
    r = search(c, "THREAD REFERENCES UTF-8 ALL")
    assert r == ["* THREAD (5)(3)(1 2 4)"], r
    r = search(c, "THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert r == ["* THREAD (5)(3)(4)(1 2)"], r
    uids = nums(c, "UID SEARCH ALL")
    r = search(c, "UID THREAD REFERENCES UTF-8 ALL")
    assert r == ["* THREAD (%d)(%d)(%d %d %d)" % tuple(
        uids[i - 1] for i in (5, 3, 1, 2, 4))], r
    r = c.cmd("x", "THREAD NOSUCH UTF-8 ALL")
    assert r[-1].startswith(b"x BAD"), r
    c.close()


def test_rev2_esearch(imap):
    c = selected(imap)
    assert c.cmd("e", "ENABLE IMAP4rev2")[-1].startswith(b"e OK")
    r = search(c, "SEARCH SUBJECT apple", "r1")
    assert r == ['* ESEARCH (TAG "r1") ALL 1:2'], r
    r = search(c, "UID SEARCH SUBJECT nothing-here", "r2")
    assert r == ['* ESEARCH (TAG "r2") UID'], r
    c.close()


def test_imaplib(imap):
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port, timeout=30)
    try:
        m.login(USER, PW)
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", "apple")
        assert typ == "OK" and data == [b"1 2"], data
        typ, data = m.sort("(DATE)", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"5 3 4 1 2"], data
        typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"(5)(3)(1 2 4)"], data
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def fill_big(inst, n):
    """n messages of about 4 kB each put straight into the Maildir."""
    home = inst.maildir("dave")
    cur = home / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    owner = home.stat()
    pad = b"lorem ipsum dolor sit amet " * 150
    for i in range(n):
        p = cur / ("%d.M%dP1.big:2," % (1700000000 + i, i))
        p.write_bytes(b"From: x@x.test\nSubject: big %d\nMessage-ID: "
                      b"<big%d@x.test>\n\n%s\n" % (i, i, pad))
        os.chown(p, owner.st_uid, owner.st_gid)


def test_big_folder_does_not_starve(imap):
    n = 5000
    fill_big(imap, n)
    c = selected(imap, BIG, BIGPW)
    other = selected(imap)
    lat = []
    stop = threading.Event()
    errors = []

    def noops():
        try:
            for i in range(1000):
                if stop.is_set():
                    return
                t0 = time.monotonic()
                r = other.cmd("n%d" % i, "NOOP", 30)
                assert r[-1].startswith(b"n%d OK" % i), r
                lat.append(time.monotonic() - t0)
                time.sleep(0.02)
        except Exception as e:	# reported below
            errors.append(e)

    th = threading.Thread(target=noops)
    th.start()
    try:
        took = []
        for i in range(5):
            t0 = time.monotonic()
            r = search(c, 'SEARCH RETURN (COUNT) BODY "no such words"',
                       "big%d" % i)
            took.append(time.monotonic() - t0)
            assert r == ['* ESEARCH (TAG "big%d") COUNT 0' % i], r
        r = search(c, 'SEARCH RETURN (COUNT) TEXT "big 4999"', "big2")
        assert r == ['* ESEARCH (TAG "big2") COUNT 1'], r
    finally:
        stop.set()
        th.join(60)
    assert not errors, errors
    assert lat, "no NOOP answered"
    print("BODY search of %d messages: %s s; NOOP max %.3f s over %d" %
          (n, " ".join("%.2f" % t for t in took), max(lat), len(lat)))
    assert max(lat) < (3.0 if SANITIZED else 1.0), lat
    c.close()
    other.close()

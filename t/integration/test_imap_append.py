"""
APPEND of big messages against a real imapd: message literals stream to
an unnamed file in the Maildir's tmp/ instead of memory. A 20 MB
message by synchronizing literal and by LITERAL+ arrives intact (FETCH
BODY[] and RFC822.SIZE); imapd's memory stays bounded during a 50 MB
APPEND; MULTIAPPEND of 3 x 5 MB; APPENDLIMIT is message_size_limit's
default and a literal over it gets NO [TOOBIG] before the "+"; a client
that disconnects mid-literal leaves nothing in tmp/, no open file in
imapd and no message; a user over quota gets NO [OVERQUOTA].
"""
import hashlib
import imaplib
import os
import poplib
import re
import shutil
import subprocess
import time

import pytest

import herald as H
from test_imap_core import RawIMAP

SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
MB = 1000 * 1000


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    # imapd_literal_limit left at its default
    with standard_instance(tmp_path_factory, pki, "imapappend",
                           imap=True) as inst:
        yield inst


def raw(inst, user, pw):
    c = RawIMAP(inst.imap_port, timeout=60.0)
    c.login(user, pw)
    return c


def message(size, seed):
    """A message of exactly size bytes with CRLF line ends."""
    head = b"Subject: big %s\r\nFrom: <a@example.org>\r\n\r\n" % seed
    line = (hashlib.sha256(seed).hexdigest().encode() * 3)[:78] + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    body = body[:size - len(head) - 2] + b"\r\n"
    data = head + body
    assert len(data) == size
    return data


def send_chunks(c, data, during=None):
    """data to the socket in 1 MB pieces; during(i) after each."""
    for i in range(0, len(data), 1 << 20):
        c.sock.sendall(data[i:i + (1 << 20)])
        if during is not None:
            during(i)


def append_sync(c, tag, folder, data, during=None):
    c.send(b"%s APPEND %s {%d}\r\n" % (tag, folder, len(data)))
    ln = c.line()
    assert ln.startswith(b"+"), ln
    send_chunks(c, data, during)
    c.send(b"\r\n")
    return c.until_tagged(tag, 60)


def uid_of(r, tag):
    m = re.match(rb"%s OK \[APPENDUID \d+ (\d+)\]" % tag, r[-1])
    assert m, r
    return int(m.group(1))


def imapd_rss_anon_kb(inst):
    return sum(H.proc_status_kb(p, "RssAnon") or 0
               for p in inst.children("imapd"))


def fetch_whole(inst, user, pw, uid, folder="INBOX"):
    m = imaplib.IMAP4("127.0.0.1", inst.imap_port, timeout=60)
    try:
        m.login(user, pw)
        m.select(folder)
        typ, res = m.uid("FETCH", str(uid), "(RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK", res
        size = int(re.search(rb"RFC822.SIZE (\d+)", res[0][0]).group(1))
        return size, res[0][1]
    finally:
        m.logout()


def spool_fds(inst, user):
    """imapd's open files in user's Maildir tmp/ (unnamed or not)."""
    tmp = str(inst.maildir(user.split("@")[0]) / "tmp")
    out = []
    for pid in inst.children("imapd"):
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if t.startswith(tmp + "/"):
                    out.append(t)
        except OSError:
            continue
    return out


def test_append_20mb_sync_and_literal_plus(imap):
    user, pw = "alice@example.test", "pw-alice"
    c = raw(imap, user, pw)
    data = message(20 * MB, b"sync")
    uid = uid_of(append_sync(c, b"a", b"INBOX", data), b"a")
    data2 = message(20 * MB, b"plus")
    c.send(b"b APPEND INBOX (\\Seen) {%d+}\r\n" % len(data2))
    send_chunks(c, data2)
    c.send(b"\r\n")
    uid2 = uid_of(c.until_tagged(b"b", 60), b"b")
    c.close()
    assert fetch_whole(imap, user, pw, uid) == (len(data), data)
    assert fetch_whole(imap, user, pw, uid2) == (len(data2), data2)
    assert os.listdir(imap.maildir("alice") / "tmp") == []


def test_append_50mb_memory_bounded(imap):
    user, pw = "bob@example.test", "pw-bob"
    c = raw(imap, user, pw)
    data = message(50 * MB, b"fifty")
    before = imapd_rss_anon_kb(imap)
    peak = [0]

    def during(i):
        if i % (8 << 20) == 0:
            peak[0] = max(peak[0], imapd_rss_anon_kb(imap) - before)

    t0 = time.monotonic()
    uid = uid_of(append_sync(c, b"a", b"INBOX", data, during), b"a")
    took = time.monotonic() - t0
    c.close()
    print("50 MB APPEND in %.2f s; imapd RssAnon grew at most %d kB"
          % (took, peak[0]))
    # (not under ASan: its quarantine keeps the freed 16 KB input
    # buffers, tens of MB of them, as in test_imap_compress)
    if not SANITIZED:
        assert peak[0] < 8 * 1024, peak[0]
    size, got = fetch_whole(imap, user, pw, uid)
    assert size == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert took < 30, took


def test_multiappend_3x5mb(imap):
    user, pw = "carol@example.test", "pw-carol"
    c = raw(imap, user, pw)
    msgs = [message(5 * MB, b"multi%d" % i) for i in range(3)]
    c.send(b"m APPEND INBOX (\\Flagged) {%d+}\r\n" % len(msgs[0]))
    send_chunks(c, msgs[0])
    c.send(b" {%d}\r\n" % len(msgs[1]))
    assert c.line().startswith(b"+")
    send_chunks(c, msgs[1])
    c.send(b" ~{%d+}\r\n" % len(msgs[2]))
    send_chunks(c, msgs[2])
    c.send(b"\r\n")
    r = c.until_tagged(b"m", 60)
    m = re.match(rb"m OK \[APPENDUID \d+ (\d+):(\d+)\]", r[-1])
    assert m and int(m.group(2)) - int(m.group(1)) == 2, r
    c.close()
    for i, uid in enumerate(range(int(m.group(1)), int(m.group(2)) + 1)):
        assert fetch_whole(imap, user, pw, uid) == (len(msgs[i]), msgs[i])


def test_appendlimit_toobig_before_continuation(imap):
    user, pw = "dave@example.test", "pw-dave"
    c = raw(imap, user, pw)
    caps = c.cmd("c", "CAPABILITY")[0]
    limit = int(re.search(rb"APPENDLIMIT=(\d+)", caps).group(1))
    # one size limit: message_size_limit's default (50M)
    assert limit == 50 * 1024 * 1024
    c.send(b"t APPEND INBOX {%d}\r\n" % (limit + 1))
    ln = c.line()
    assert ln.startswith(b"t NO [TOOBIG]") and b"%d" % limit in ln, ln
    assert c.cmd("n", "NOOP")[-1].startswith(b"n OK")
    # a NUL in a big non-binary literal: BAD, nothing appended
    bad = message(200 * 1000, b"nul")
    bad = bad[:1000] + b"\x00" + bad[1001:]
    r = append_sync(c, b"z", b"INBOX", bad)
    assert r[-1].startswith(b"z BAD"), r
    # a big literal where the mailbox name goes is no mailbox
    c.send(b"x APPEND {70000+}\r\n" + b"a" * 70000 + b" {5+}\r\nhello\r\n")
    r = c.until_tagged(b"x")
    assert r[-1].startswith((b"x NO", b"x BAD")), r
    r = c.cmd("s", "STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 0" in r[0], r
    c.close()


def test_small_literal_written_once(imap, tmp_path):
    """A literal under the spool bound (64 KiB) is kept in memory and
    written once, into the Maildir's tmp/: no memory file
    (memfd_create) and no second copy of the message. Seen with strace
    on imapd; skipped where it cannot attach."""
    if shutil.which("strace") is None:
        pytest.skip("no strace")
    user, pw = "carol@example.test", "pw-carol"
    c = raw(imap, user, pw)
    assert c.cmd("n", "NOOP")[-1].startswith(b"n OK")
    out = tmp_path / "strace.out"
    args = ["strace", "-f", "-qq", "-o", str(out), "-e",
            "trace=memfd_create,write,pwrite64,read,recvfrom,epoll_wait,"
            "epoll_pwait"]
    for pid in imap.children("imapd"):
        args += ["-p", str(pid)]
    st = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (out.exists() and out.stat().st_size > 0):
            if st.poll() is not None or time.monotonic() > deadline:
                pytest.skip("strace cannot attach to imapd")
            c.cmd("n", "NOOP")
            time.sleep(0.1)
        data = message(2000, b"once")
        for i in range(5):
            r = append_sync(c, b"a%d" % i, b"INBOX", data)
            assert r[-1].startswith(b"a%d OK" % i), r
    finally:
        st.terminate()
        st.wait()
        c.close()
    text = out.read_text(errors="replace")
    assert "memfd_create(" not in text
    assert len(re.findall(r'write\(\d+, "Subject: big once', text)) == 5


def test_disconnect_mid_literal_leaves_nothing(imap):
    user, pw = "dave@example.test", "pw-dave"
    c = raw(imap, user, pw)
    c.send(b"a APPEND INBOX {%d}\r\n" % (10 * MB))
    assert c.line().startswith(b"+")
    send_chunks(c, message(3 * MB, b"cut"))
    deadline = time.monotonic() + 10
    while not spool_fds(imap, user):
        assert time.monotonic() < deadline, "no spool file seen"
        time.sleep(0.05)
    c.close()
    deadline = time.monotonic() + 10
    while spool_fds(imap, user):
        assert time.monotonic() < deadline, spool_fds(imap, user)
        time.sleep(0.05)
    assert os.listdir(imap.maildir("dave") / "tmp") == []
    c = raw(imap, user, pw)
    r = c.cmd("s", "STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 0" in r[0], r
    c.close()


def test_over_quota(imap):
    user, pw = "dave@example.test", "pw-dave"
    imap.ctl_ok("user", "quota", user, "1M")
    try:
        c = raw(imap, user, pw)
        r = append_sync(c, b"q", b"INBOX", message(2 * MB, b"quota"))
        assert r[-1].startswith(b"q NO [OVERQUOTA]"), r
        r = c.cmd("s", "STATUS INBOX (MESSAGES)")
        assert b"MESSAGES 0" in r[0], r
        # a small one still fits
        r = append_sync(c, b"k", b"INBOX", message(1000, b"small"))
        assert r[-1].startswith(b"k OK"), r
        c.close()
    finally:
        imap.ctl_ok("user", "quota", user, "0")
    assert os.listdir(imap.maildir("dave") / "tmp") == []


# ------------------------------------------------- UTF8=ACCEPT (RFC 6855)

UTF8_MSG = ("Subject: Grüße aus Köln\r\nFrom: Jürgen <jürgen@bücher.example>"
            "\r\n\r\nHallo\r\n").encode()


def messages(c):
    r = c.cmd("m", "STATUS INBOX (MESSAGES)")
    return int(re.search(rb"MESSAGES (\d+)", r[0]).group(1))


def test_append_utf8_needs_enable(imap):
    """RFC 6855 4: the UTF8 data item only after ENABLE UTF8=ACCEPT."""
    user, pw = "carol@example.test", "pw-carol"
    c = raw(imap, user, pw)
    before = messages(c)
    c.send(b"a APPEND INBOX UTF8 (~{%d+}\r\n" % len(UTF8_MSG) + UTF8_MSG +
           b")\r\n")
    r = c.until_tagged(b"a")
    assert r[-1].startswith(b"a BAD") and b"UTF8=ACCEPT" in r[-1], r
    assert c.cmd("n", "NOOP")[-1].startswith(b"n OK")
    r = c.cmd("s", "STATUS INBOX (MESSAGES)")
    assert b"MESSAGES %d" % before in r[0], r
    c.close()


def test_append_utf8_literal8(imap):
    """After ENABLE UTF8=ACCEPT: UTF8 (~{n}...) by synchronizing literal
    and by LITERAL+, small and spooled; the message comes back intact.
    A plain literal inside UTF8 ( ) and a missing ")" are BAD."""
    user, pw = "carol@example.test", "pw-carol"
    c = raw(imap, user, pw)
    before = messages(c)
    r = c.cmd("e", "ENABLE UTF8=ACCEPT")
    assert r[0] == b"* ENABLED UTF8=ACCEPT", r
    # synchronizing literal8: "+" first
    c.send(b"a APPEND INBOX (\\Seen) UTF8 (~{%d}\r\n" % len(UTF8_MSG))
    assert c.line().startswith(b"+")
    c.send(UTF8_MSG + b")\r\n")
    r = c.until_tagged(b"a")
    uid1 = uid_of(r, b"a")
    # LITERAL+ and a spooled (>= 64 KB) one, in one MULTIAPPEND
    big = UTF8_MSG + b"x" * 100000 + b"\r\n"
    c.send(b"b APPEND INBOX UTF8 (~{%d+}\r\n" % len(UTF8_MSG) + UTF8_MSG +
           b") UTF8 (~{%d+}\r\n" % len(big) + big + b")\r\n")
    r = c.until_tagged(b"b")
    m = re.match(rb"b OK \[APPENDUID \d+ (\d+):(\d+)\]", r[-1])
    assert m, r
    # a plain literal where literal8 goes, and no ")": BAD, nothing added
    c.send(b"c APPEND INBOX UTF8 ({%d+}\r\n" % len(UTF8_MSG) + UTF8_MSG +
           b")\r\n")
    r = c.until_tagged(b"c")
    assert r[-1].startswith(b"c BAD"), r
    c.send(b"d APPEND INBOX UTF8 (~{%d+}\r\n" % len(UTF8_MSG) + UTF8_MSG +
           b"\r\n")
    r = c.until_tagged(b"d")
    assert r[-1].startswith(b"d BAD"), r
    assert messages(c) == before + 3
    c.close()
    assert fetch_whole(imap, user, pw, uid1) == (len(UTF8_MSG), UTF8_MSG)
    assert fetch_whole(imap, user, pw, int(m.group(2))) == (len(big), big)
    assert os.listdir(imap.maildir("carol") / "tmp") == []


def usage_file_sum(home):
    """The byte sum of the Maildir's usage file (herald-usage)."""
    with open(home / "herald-usage", "rb") as f:
        return sum(int(ln.split()[0]) for ln in f.read().splitlines())


def stored_bytes(home):
    """What the usage file must say: S= of every message file."""
    total = 0
    for d in ("new", "cur", ".Sent/new", ".Sent/cur"):
        p = home / d
        if p.is_dir():
            for n in os.listdir(p):
                total += int(re.search(r",S=(\d+)", n).group(1))
    return total


def test_over_quota_before_continuation(imap):
    """With the usage known (the Maildir's usage file, kept by every
    APPEND, delivery and EXPUNGE), a literal that would not fit gets NO
    [OVERQUOTA] before the "+" (RFC 9051 7.1); a LITERAL+ one is read and
    refused; after an EXPUNGE the space is there again at once."""
    user, pw = "alice@example.test", "pw-alice"
    home = imap.maildir("alice")
    c = raw(imap, user, pw)
    # what earlier tests left, plus 100 KiB
    imap.ctl_ok("user", "quota", user, str(stored_bytes(home) + 102400))
    try:
        r = append_sync(c, b"a", b"INBOX", message(60000, b"q1"))
        uid = uid_of(r, b"a")
        r = append_sync(c, b"b", b"Sent", message(1000, b"q2"))
        assert r[-1].startswith(b"b OK"), r
        assert usage_file_sum(home) == stored_bytes(home) > 60000
        # synchronizing: refused at the header, no "+"
        c.send(b"c APPEND INBOX {50000}\r\n")
        ln = c.line()
        assert ln.startswith(b"c NO [OVERQUOTA]"), ln
        # MULTIAPPEND: the second literal's header pushes it over
        c.send(b"d APPEND INBOX {30000}\r\n")
        assert c.line().startswith(b"+")
        c.send(message(30000, b"q3") + b" {30000}\r\n")
        ln = c.line()
        assert ln.startswith(b"d NO [OVERQUOTA]"), ln
        # LITERAL+: read, thrown away, refused
        c.send(b"e APPEND INBOX {50000+}\r\n" + message(50000, b"q4") +
               b"\r\n")
        r = c.until_tagged(b"e")
        assert r[-1].startswith(b"e NO [OVERQUOTA]"), r
        assert c.cmd("n", "NOOP")[-1].startswith(b"n OK")
        # EXPUNGE gives the space back in the usage file
        big = stored_bytes(home)
        assert c.cmd("x", "SELECT INBOX")[-1].startswith(b"x OK")
        r = c.cmd("f", "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
        assert r[-1].startswith(b"f OK"), r
        assert c.cmd("g", "UID EXPUNGE %d" % uid)[-1].startswith(b"g OK")
        assert usage_file_sum(home) == stored_bytes(home) < big - 50000
        r = append_sync(c, b"h", b"INBOX", message(90000, b"q5"))
        assert r[-1].startswith(b"h OK"), r
        assert usage_file_sum(home) == stored_bytes(home)
        c.close()
    finally:
        imap.ctl_ok("user", "quota", user, "0")
    assert os.listdir(home / "tmp") == []


def test_over_quota_at_commit_after_concurrent_append(imap):
    """The literal's header passed the quota check and got its "+"; the
    usage grows (another session's APPEND) before the literal is sent:
    the check when the message is stored sees the growth (it reads only
    the usage file's lines since the header's read) and says NO
    [OVERQUOTA]; nothing is stored."""
    user, pw = "erin@example.test", "pw-erin"
    imap.add_user(user, pw)
    home = imap.maildir("erin")
    imap.ctl_ok("user", "quota", user, "100000")
    try:
        c = raw(imap, user, pw)
        r = append_sync(c, b"a", b"INBOX", message(1000, b"c1"))
        assert r[-1].startswith(b"a OK"), r
        c.send(b"b APPEND INBOX {50000}\r\n")
        assert c.line().startswith(b"+")
        d = raw(imap, user, pw)
        r = append_sync(d, b"x", b"INBOX", message(60000, b"c2"))
        assert r[-1].startswith(b"x OK"), r
        d.close()
        c.send(message(50000, b"c3") + b"\r\n")
        r = c.until_tagged(b"b")
        assert r[-1].startswith(b"b NO [OVERQUOTA]"), r
        assert messages(c) == 2
        assert usage_file_sum(home) == stored_bytes(home)
        c.close()
    finally:
        imap.ctl_ok("user", "quota", user, "0")
    assert os.listdir(home / "tmp") == []


def test_pop3_delete_gives_quota_back(imap):
    """A POP3 client that deletes what it downloaded gives the space back
    to IMAP's quota at once: pop3d's UPDATE takes the S= bytes of what it
    unlinked off the Maildir's usage file, so the next check needs no
    count of the Maildir and refuses nothing by the old sum."""
    user, pw = "pop@example.test", "pw-pop"
    imap.add_user(user, pw)
    imap.ctl_ok("user", "quota", user, "100000")
    try:
        c = raw(imap, user, pw)
        home = imap.maildir("pop")
        r = append_sync(c, b"a", b"INBOX", message(60000, b"p1"))
        assert r[-1].startswith(b"a OK"), r
        assert usage_file_sum(home) == stored_bytes(home) > 55000
        c.send(b"b APPEND INBOX {50000}\r\n")
        ln = c.line()
        assert ln.startswith(b"b NO [OVERQUOTA]"), ln
        c.close()
        p = poplib.POP3("127.0.0.1", imap.pop3_port, timeout=30)
        p.user(user)
        p.pass_(pw)
        assert p.stat()[0] == 1
        p.dele(1)
        p.quit()
        # taken off the usage file by its S=, not counted again
        assert usage_file_sum(home) == stored_bytes(home) == 0
        c = raw(imap, user, pw)
        r = append_sync(c, b"c", b"INBOX", message(50000, b"p2"))
        assert r[-1].startswith(b"c OK"), r
        assert usage_file_sum(home) == stored_bytes(home) > 45000
        c.close()
    finally:
        imap.ctl_ok("user", "quota", user, "0")

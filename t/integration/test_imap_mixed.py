"""
The commands of the mixed IMAP load (bench/mailload -w mixed) cost what
they must and no more: a FETCH of one small message (FLAGS ENVELOPE
BODY.PEEK[]) answers without an index commit (its ENVELOPE is parsed
again next time, cheaper than a synced commit now), while a FETCH of
many messages still caches their ENVELOPEs in one commit. Commits are
counted from LMDB's transaction id (test_imap_batch.lmdb_txnid), no
timing involved.
"""
import base64
import os

import pytest

from test_imap_batch import lmdb_txnid
from test_imap_core import RawIMAP, fill, imap_instance

USER, PW = "bob@example.test", "pw-bob"


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    yield from imap_instance(tmp_path_factory, pki, "imapmixed")


def tagged(c, tag, text):
    """Send a command; its lines up to the tagged one (empty lines of a
    literal included), bounded."""
    c.send("%s %s\r\n" % (tag, text))
    out = []
    for _ in range(1000):
        out.append(c.line())
        if out[-1].startswith(tag.encode() + b" "):
            return out
    raise AssertionError("no tagged answer: %r" % out[-5:])


def test_fetch_one_commits_nothing_many_cache(imap):
    c = RawIMAP(imap.imap_port, timeout=30.0)
    try:
        c.login(USER, PW)
        home = imap.maildir("bob")
        fill(home, 40)
        r = c.cmd("s", "SELECT INBOX")
        assert r[-1].startswith(b"s OK") and b"* 40 EXISTS" in r, r
        # the folder settles (its stamp is trusted once older than the
        # directory mtimes' doubt) so that a sync commits nothing
        c.cmd("n", "NOOP")
        before = lmdb_txnid(home)
        for i in (3, 7, 3):
            r = tagged(c, "f", "FETCH %d (FLAGS ENVELOPE BODY.PEEK[])" % i)
            assert r[-1].startswith(b"f OK"), r
            assert b"ENVELOPE (NIL \"m" in r[0] and b"BODY[] {" in r[0], r
        assert lmdb_txnid(home) == before
        # ENVELOPE of 20 messages: cached, in one commit
        r = c.cmd("g", "FETCH 11:30 (ENVELOPE)")
        assert r[-1].startswith(b"g OK") and len(r) == 21, r[-3:]
        assert lmdb_txnid(home) == before + 1
    finally:
        c.close()


def test_binary_of_a_huge_part_is_limited(imap):
    """BINARY decodes a part in memory: a part over 16 MB gets NO [LIMIT]
    (its item NIL), a small part of the same message decodes."""
    blob = base64.encodebytes(os.urandom(13 * 1024 * 1024))
    msg = (b"From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
           b"--XX\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" +
           blob.replace(b"\n", b"\r\n") +
           b"--XX\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
           b"--XX--\r\n")
    assert len(msg) > 17 * 1024 * 1024
    c = RawIMAP(imap.imap_port, timeout=60.0)
    try:
        c.login("alice@example.test", "pw-alice")
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg))
        for i in range(0, len(msg), 1 << 20):
            c.sock.sendall(msg[i:i + (1 << 20)])
        c.send(b"\r\n")
        r = c.until_tagged(b"a", 60)
        assert r[-1].startswith(b"a OK"), r
        assert c.cmd("s", "SELECT INBOX")[-1].startswith(b"s OK")
        r = c.cmd("b", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])", 60)
        assert r[-1].startswith(b"b NO [LIMIT]"), r
        assert b"BINARY[1] NIL" in r[0] and b"BINARY.SIZE[1] 0" in r[0], r
        r = tagged(c, "d", "FETCH 1 (BINARY.PEEK[2])")
        assert r[-1].startswith(b"d OK"), r
        assert r[0].endswith(b"BINARY[2] {5}") and r[1] == b"hello)", r
    finally:
        c.close()

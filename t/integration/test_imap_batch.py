"""
imapd changes many messages in few index commits: STORE 1:* on 5,000
messages and a cold FETCH 1:* (ENVELOPE) that caches 5,000 blobs each
commit the index a bounded number of times, not once a message. Counted
from LMDB's own transaction id in the meta pages of herald-index/data.mdb
(no timing involved).
"""
import os
import struct
import time

import pytest

from test_imap_core import RawIMAP

USER, PW = "carol@example.test", "pw-carol"
N = 5000
MAX_COMMITS = 10	# per command; one a message before the batch


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapbatch",
                           imap=True) as inst:
        yield inst


def lmdb_txnid(home):
    """The last committed transaction id of the index: the larger of the
    two meta pages' mm_txnid (page header 16 bytes, then magic, version,
    address, mapsize, two 48-byte MDB_db, last_pg: txnid at 144)."""
    with open(home / "herald-index" / "data.mdb", "rb") as f:
        head = f.read(2 * 4096)
    ids = []
    for page in (0, 4096):
        magic, = struct.unpack_from("<I", head, page + 16)
        assert magic == 0xBEEFC0DE, hex(magic)
        ids.append(struct.unpack_from("<Q", head, page + 144)[0])
    return max(ids)


def until_tagged(c, tag, limit=N * 3 + 100, timeout=30.0):
    """Every line up to the tagged one (bounded in count)."""
    out = []
    for _ in range(limit):
        ln = c.line(timeout)
        out.append(ln)
        if ln.startswith(tag.encode() + b" ") or ln == b"":
            return out
    raise AssertionError("no tagged answer: %r" % out[-5:])


def test_store_and_cold_fetch_commit_a_bounded_number_of_times(imap):
    c = RawIMAP(imap.imap_port, timeout=30.0)
    try:
        # the first login makes the Maildir
        assert c.cmd("l", "LOGIN %s %s" % (USER, PW))[-1].startswith(
            b"l OK")
        home = imap.maildir("carol")
        owner = home.stat()
        for i in range(N):
            name = "1700000000.M%dP1Q%d.host,S=60,W=63" % (i, i)
            p = home / "new" / name
            p.write_bytes(b"From: a@example.org\nSubject: m%d\n\nbody\n"
                          % i)
            os.chown(p, owner.st_uid, owner.st_gid)
        c.send("s SELECT INBOX\r\n")
        r = until_tagged(c, "s")
        assert r[-1].startswith(b"s OK"), r[-3:]
        assert b"* %d EXISTS" % N in r

        before = lmdb_txnid(home)
        c.send("t STORE 1:* +FLAGS.SILENT (\\Seen)\r\n")
        r = until_tagged(c, "t")
        assert r[-1].startswith(b"t OK"), r[-3:]
        store_commits = lmdb_txnid(home) - before
        names = os.listdir(home / "cur")
        assert len(names) == N
        assert all(n.endswith(":2,S") for n in names)

        before = lmdb_txnid(home)
        c.send("f FETCH 1:* (ENVELOPE)\r\n")
        r = until_tagged(c, "f")
        assert r[-1].startswith(b"f OK"), r[-3:]
        assert sum(1 for ln in r if b"ENVELOPE" in ln) == N
        fetch_commits = lmdb_txnid(home) - before
        print("commits: STORE 1:* %d, cold FETCH 1:* (ENVELOPE) %d" %
              (store_commits, fetch_commits))
        assert store_commits <= MAX_COMMITS
        assert fetch_commits <= MAX_COMMITS
        c.cmd("o", "LOGOUT")
    finally:
        c.close()


def noop(c, tag):
    c.send("%s NOOP\r\n" % tag)
    r = until_tagged(c, tag, limit=100)
    assert r[-1].startswith(tag.encode() + b" OK"), r[-3:]
    return r


def test_noop_with_nothing_new_does_not_resync(imap):
    """A NOOP after nothing changed trusts the folder's stamp (new/ and
    cur/ mtimes to the nanosecond, UIDNEXT, HIGHESTMODSEQ) and lists
    nothing: shown by a change hidden from the stamp (a tool marking a
    message read, moving it from new/ to cur/, with both mtimes put
    back), which a full sync would report. Any real change (a delivery)
    is seen at the next NOOP."""
    user, pw = "dave@example.test", "pw-dave"
    c = RawIMAP(imap.imap_port, timeout=30.0)
    try:
        assert c.cmd("l", "LOGIN %s %s" % (user, pw))[-1].startswith(
            b"l OK")
        home = imap.maildir("dave")
        owner = home.stat()
        for i in range(3):
            p = home / "new" / ("1700000000.M%dP2Q%d.host,S=30" % (i, i))
            p.write_bytes(b"Subject: s%d\n\nbody\n" % i)
            os.chown(p, owner.st_uid, owner.st_gid)
        c.send("s SELECT INBOX\r\n")
        r = until_tagged(c, "s", limit=100)
        assert b"* 3 EXISTS" in r, r
        # mtimes younger than MINDEX_STAMP_DOUBT are not trusted: wait
        # them out, then a full NOOP takes a trusted stamp
        time.sleep(4.2)
        noop(c, "n1")

        # (the SELECT gave the mail UIDs in new/, where it stays)
        cur, new = home / "cur", home / "new"
        st, sn = os.stat(cur), os.stat(new)
        name = sorted(os.listdir(new))[0]
        os.rename(new / name, cur / (name.split(":")[0] + ":2,S"))
        os.utime(cur, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.utime(new, ns=(sn.st_atime_ns, sn.st_mtime_ns))
        r = noop(c, "n2")
        assert not any(b"FETCH" in ln for ln in r), r

        p = home / "new" / "1700000100.M9P2Q9.host,S=30"
        p.write_bytes(b"Subject: s9\n\nbody\n")
        os.chown(p, owner.st_uid, owner.st_gid)
        r = noop(c, "n3")
        assert b"* 4 EXISTS" in r, r
        assert any(b"FETCH" in ln and b"\\Seen" in ln for ln in r), r
        c.cmd("o", "LOGOUT")
    finally:
        c.close()

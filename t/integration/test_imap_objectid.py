"""
RFC 8474 OBJECTID against a real imapd: MAILBOXID in the tagged OK of
CREATE, in SELECT/EXAMINE and as a STATUS item, the same over a
reconnect, a RENAME and a reindex, and new for a folder deleted and
created again; FETCH EMAILID the same for a message, its COPY and its
MOVE, over flag changes and a reindex; FETCH THREADID NIL; SEARCH EMAILID
and THREADID.
"""
import re

import pytest

from test_imap_core import RawIMAP

OBJID = rb"[A-Za-z0-9_-]{1,255}"


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapobjid",
                           imap=True) as inst:
        yield inst


def user(inst, local):
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw-" + local)
    return addr, "pw-" + local


def login(inst, addr, pw):
    c = RawIMAP(inst.imap_port)
    c.login(addr, pw)
    return c


def ok(c, tag, text):
    r = c.cmd(tag, text)
    assert r[-1].startswith(tag.encode() + b" OK"), (text, r)
    return r


def append(c, tag, folder, subject):
    msg = b"Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject)
    c.send(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag.encode(),
           folder.encode(), len(msg), msg))
    r = c.until_tagged(tag)
    assert r[-1].startswith(tag.encode() + b" OK"), r


def mailboxid(lines):
    for ln in lines:
        m = re.search(rb"MAILBOXID \((" + OBJID + rb")\)", ln)
        if m:
            return m.group(1)
    raise AssertionError(lines)


def status_id(c, tag, folder):
    r = ok(c, tag, "STATUS %s (MESSAGES MAILBOXID)" % folder)
    assert re.match(rb"\* STATUS \S+ \(MESSAGES \d+ MAILBOXID \(" +
                    OBJID + rb"\)\)$", r[0]), r
    return mailboxid(r[:1])


def emailids(c, tag, rng="1:*"):
    """{uid: emailid} of the selected folder, checking THREADID NIL"""
    out = {}
    for ln in ok(c, tag, "UID FETCH %s (EMAILID THREADID)" % rng)[:-1]:
        m = re.match(rb"\* \d+ FETCH \(UID (\d+) EMAILID \((" + OBJID +
                     rb")\) THREADID NIL\)$", ln)
        assert m, ln
        out[int(m.group(1))] = m.group(2)
    return out


def test_mailboxid(imap):
    addr, pw = user(imap, "objbox")
    c = login(imap, addr, pw)
    assert b" OBJECTID" in ok(c, "c", "CAPABILITY")[0]
    r = ok(c, "a", "CREATE Box")
    assert re.match(rb"a OK \[MAILBOXID \(" + OBJID + rb"\)\] ", r[-1]), r
    box = mailboxid(r)
    inbox = status_id(c, "b", "INBOX")
    assert inbox != box
    assert status_id(c, "d", "Box") == box
    for verb in ("SELECT", "EXAMINE"):
        r = ok(c, "e", "%s Box" % verb)
        assert b"* OK [MAILBOXID (%s)] Ok" % box in r, r
    assert mailboxid(ok(c, "f", "SELECT INBOX")) == inbox
    c.close()

    # another session, a RENAME, a reindex: the same id
    c = login(imap, addr, pw)
    assert status_id(c, "a", "Box") == box
    ok(c, "b", "RENAME Box Renamed")
    assert status_id(c, "c", "Renamed") == box
    c.close()
    imap.ctl_ok("mailbox", "reindex", addr)
    c = login(imap, addr, pw)
    assert status_id(c, "a", "Renamed") == box
    assert status_id(c, "b", "INBOX") == inbox
    # deleted and made again: a new folder, a new id (never reused)
    ok(c, "d", "DELETE Renamed")
    again = mailboxid(ok(c, "e", "CREATE Renamed"))
    assert again not in (box, inbox)
    assert status_id(c, "f", "Renamed") == again
    # CREATE of a folder that exists: no id, a NO
    r = c.cmd("g", "CREATE Renamed")
    assert r[-1].startswith(b"g NO [ALREADYEXISTS]"), r
    r = c.cmd("h", "STATUS INBOX (MAILBOXID BOGUS)")
    assert r[-1].startswith(b"h BAD"), r
    ok(c, "z", "LOGOUT")
    c.close()


def test_emailid(imap):
    addr, pw = user(imap, "objmsg")
    c = login(imap, addr, pw)
    ok(c, "a", "CREATE Box")
    append(c, "b", "INBOX", b"one")
    append(c, "d", "INBOX", b"two")
    ok(c, "e", "SELECT INBOX")
    ids = emailids(c, "f")
    assert sorted(ids) == [1, 2] and ids[1] != ids[2], ids
    # flags change the file name, not the id
    ok(c, "g", "STORE 1:2 +FLAGS (\\Seen \\Flagged $Work)")
    assert emailids(c, "h") == ids
    # SEARCH EMAILID finds the one message; THREADID (all NIL) none
    r = ok(c, "i", "UID SEARCH EMAILID %s" % ids[2].decode())
    assert r[0] == b"* SEARCH 2", r
    r = ok(c, "j", "UID SEARCH NOT EMAILID %s" % ids[2].decode())
    assert r[0] == b"* SEARCH 1", r
    r = ok(c, "k", "SEARCH EMAILID Mnosuchid")
    assert r[0] == b"* SEARCH", r
    r = ok(c, "l", "SEARCH THREADID T1")
    assert r[0] == b"* SEARCH", r
    # COPY keeps the id (RFC 8474 5.1), MOVE too; the source keeps its
    ok(c, "m", "UID COPY 1 Box")
    ok(c, "n", "UID MOVE 2 Box")
    assert emailids(c, "o") == {1: ids[1]}
    ok(c, "p", "SELECT Box")
    copied = emailids(c, "q")
    assert sorted(copied.values()) == sorted(ids.values()), (copied, ids)
    # a copy of a copy, back into INBOX: still the same
    ok(c, "r", "UID COPY 1:* INBOX")
    ok(c, "s", "SELECT INBOX")
    assert sorted(emailids(c, "t").values()) == sorted(
        [ids[1], ids[1], ids[2]])
    ok(c, "u", "LOGOUT")
    c.close()
    # a rebuilt index gives the same ids (they come from the files)
    imap.ctl_ok("mailbox", "reindex", addr)
    c = login(imap, addr, pw)
    ok(c, "a", "SELECT Box")
    assert emailids(c, "b") == copied
    ok(c, "z", "LOGOUT")
    c.close()

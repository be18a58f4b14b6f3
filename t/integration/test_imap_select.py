"""
imapd's selected state against a real instance, with Python's imaplib
and a raw line client: SELECT / EXAMINE (FLAGS, PERMANENTFLAGS, EXISTS,
UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, LIST in rev2, CLOSED), FETCH of
every item (sections, partials, BINARY, CHANGEDSINCE), STORE (with
UNCHANGEDSINCE), EXPUNGE / UID EXPUNGE, COPY / MOVE with COPYUID, APPEND
(MULTIAPPEND, APPENDUID, TRYCREATE, APPENDLIMIT), IDLE pushed on SMTP
delivery within a second, two sessions on one folder seeing each other's
changes, QRESYNC resync, a 10 MB message fetched whole and in part, a
reader that stops reading a large FETCH (the others go on), bad sequence
sets, and the read-only state of EXAMINE.
"""
import imaplib
import os
import re
import time

import pytest

import herald as H
from test_imap_core import RawIMAP

USER, PW = "alice@example.test", "pw-alice"
BOB, BOBPW = "bob@example.test", "pw-bob"
SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapsel", imap=True,
                           imapd_literal_limit="512k") as inst:
        yield inst


def raw(inst, user=USER, pw=PW):
    c = RawIMAP(inst.imap_port)
    c.login(user, pw)
    return c


def deliver(inst, token, to=USER, body=None, subject=None):
    msg = H.make_message(token, to=to, body=body, subject=subject)
    with inst.smtp() as s:
        s.sendmail("sender@example.org", [to], msg)
    return msg


def wait_delivered(inst, user, token, count=1):
    inst.wait_messages(token, user.split("@")[0], count=count)


def folder_create(inst, user, name):
    """A Maildir++ folder made on disk (CREATE is another part's)."""
    d = inst.maildir(user.split("@")[0]) / ("." + name)
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    owner = inst.maildir(user.split("@")[0]).stat()
    for p in [d] + [d / sub for sub in ("cur", "new", "tmp")]:
        os.chown(p, owner.st_uid, owner.st_gid)


def tagged(lines, tag):
    return lines[-1].decode()


def test_select_empty_and_responses(imap):
    c = raw(imap, "dave@example.test", "pw-dave")
    r = c.cmd("s", "SELECT INBOX")
    text = b"\n".join(r).decode()
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in text
    assert "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen " \
        "\\Draft \\*)]" in text
    assert "* 0 EXISTS" in text
    assert "* 0 RECENT" in text
    assert re.search(r"\* OK \[UIDVALIDITY \d+\]", text)
    assert re.search(r"\* OK \[UIDNEXT 1\]", text)
    assert re.search(r"\* OK \[HIGHESTMODSEQ \d+\]", text)
    assert r[-1].startswith(b"s OK [READ-WRITE]"), r
    # an empty mailbox has no message 1
    assert c.cmd("f", "FETCH 1:* FLAGS")[-1].startswith(b"f BAD ")
    assert c.cmd("u", "UID FETCH 1:* FLAGS")[-1].startswith(b"u OK ")
    r = c.cmd("e", "ENABLE IMAP4rev2")
    r = c.cmd("x", "EXAMINE INBOX")
    text = b"\n".join(r).decode()
    assert "* OK [CLOSED]" in text
    assert "RECENT" not in text
    assert '* LIST () "." INBOX' in text
    assert r[-1].startswith(b"x OK [READ-ONLY]"), r
    assert c.cmd("n", "SELECT Nonexistent")[-1].startswith(b"n NO ")
    # a failed SELECT leaves no mailbox selected
    assert c.cmd("g", "FETCH 1 FLAGS")[-1].startswith(b"g BAD ")
    c.cmd("l", "LOGOUT")
    c.close()

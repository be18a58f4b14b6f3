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


def cmd(c, tag, text, timeout=None):
    """c.cmd that reads past empty lines (in literals) to the tagged
    answer."""
    r = c.cmd(tag, text, timeout)
    for _ in range(100):
        if r and r[-1].startswith(tag.encode() + b" "):
            return r
        r += c.until_tagged(tag, timeout)
    raise AssertionError(r[-5:])


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


MIME_MSG = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: parts\r\n"
    b"Message-ID: <parts@example.org>\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"first part\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--XX--\r\n")


def imaplib_login(inst, user=USER, pw=PW):
    m = imaplib.IMAP4("127.0.0.1", inst.imap_port, timeout=15)
    m.login(user, pw)
    return m


def test_append_fetch_store_expunge(imap):
    m = imaplib_login(imap, "carol@example.test", "pw-carol")
    typ, data = m.append("INBOX", r"(\Flagged $Work)",
                         '"05-Mar-2024 10:11:12 +0100"', MIME_MSG)
    assert typ == "OK", data
    assert re.match(rb"\[APPENDUID \d+ 1\]", data[0]), data
    m.append("INBOX", None, None, H.make_message("second"))
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE UID)")
    line = data[0].decode()
    # appended before this SELECT, the first: \Recent (RFC 3501 2.3.2)
    assert "FLAGS (\\Flagged \\Recent $Work)" in line
    assert 'INTERNALDATE "05-Mar-2024 09:11:12 +0000"' in line
    assert "RFC822.SIZE %d" % len(MIME_MSG) in line
    assert "UID 1" in line
    # the whole message, as sent, and parts of it
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == MIME_MSG
    typ, data = m.fetch("1", "(BODY.PEEK[1])")
    assert data[0][1] == b"first part"
    typ, data = m.fetch("1", "(BODY.PEEK[1.MIME])")
    assert data[0][1] == b"Content-Type: text/plain; charset=us-ascii" \
        b"\r\n\r\n"
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject TO)])")
    assert data[0][1] == b"To: Bob <bob@example.test>\r\nSubject: parts" \
        b"\r\n\r\n"
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject To "
                        "From Message-ID Date MIME-Version)])")
    assert data[0][1].startswith(b"Content-Type: multipart/mixed")
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<0.6>)")
    assert b"BODY[TEXT]<0>" in data[0][0] and data[0][1] == b"--XX\r\n"
    typ, data = m.fetch("1", "(BODY.PEEK[]<5.10>)")
    assert data[0][1] == MIME_MSG[5:15]
    typ, data = m.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2])")
    assert b"BINARY.SIZE[2] 5" in b"".join(
        x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert data[0][1] == b"\x00\x01\x02\x03\x04"
    assert b"~{5}" in data[0][0]
    typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    blob = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert b'ENVELOPE ("Mon, 01 Jan 2024 00:00:00 +0000" "parts"' in blob
    assert b'BODYSTRUCTURE (("text" "plain"' in blob
    # a second time from the index's cache: the same bytes
    typ, data2 = m.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert data2 == data
    typ, data = m.fetch("1:2", "FAST")
    assert len(data) == 2
    typ, data = m.fetch("2", "ALL")
    assert b"ENVELOPE" in data[0]
    typ, data = m.fetch("1", "(BODY)")
    assert b"BODY ((" in data[0]
    # BODY[] sets \Seen in a read-write mailbox, and says so
    typ, data = m.fetch("2", "(BODY[TEXT])")
    assert b"\\Seen" in data[0][0] or b"\\Seen" in b"".join(
        x for x in data if isinstance(x, bytes))
    typ, data = m.fetch("2", "FLAGS")
    assert b"\\Seen" in data[0]
    # and on disk, in the file's ":2," suffix
    assert any("S" in p.name.split(":2,")[-1] for p in
               (imap.maildir("carol") / "cur").iterdir())
    typ, data = m.fetch("2", "(RFC822.HEADER)")
    assert data[0][1].startswith(b"From: <sender@example.org>")
    # STORE
    typ, data = m.store("1", "+FLAGS", r"(\Deleted Custom1)")
    assert typ == "OK"
    assert b"\\Deleted" in data[0] and b"Custom1" in data[0]
    typ, data = m.store("1", "-FLAGS.SILENT", r"(\Flagged)")
    assert typ == "OK" and data == [None]
    typ, data = m.fetch("1", "FLAGS")
    # \Recent stays: a client can neither set nor clear it
    assert data[0] == b"1 (FLAGS (\\Deleted \\Recent $Work Custom1))"
    typ, data = m.store("2", "FLAGS", r"(\Answered)")
    assert data[0] == b"2 (FLAGS (\\Answered \\Recent))"
    # the Maildir holds the flags in its standard suffix
    cur = imap.maildir("carol") / "cur"
    names = sorted(p.name for p in cur.iterdir())
    assert any(n.endswith(":2,R") for n in names), names
    assert any(re.search(r":2,T[a-z]+$", n) for n in names), names
    # EXPUNGE
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"1"]
    typ, data = m.fetch("1", "(UID FLAGS)")
    assert b"UID 2" in data[0]
    assert len(list(cur.iterdir())) == 1
    # bad sequence sets
    for bad in ("5", "0", "1:x", "2:*", "1,,2"):
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            m.fetch(bad, "FLAGS")
    # UIDs out of range are just not there
    typ, data = m.uid("FETCH", "1,99:100", "FLAGS")
    assert typ == "OK" and data == [None]
    typ, data = m.uid("FETCH", "*", "FLAGS")
    assert typ == "OK" and b"UID 2" in data[0]
    m.close()
    m.logout()


def test_fetch_item_errors(imap):
    bads = ("FETCH 1 (BOGUS)", "FETCH 1 BODY[FOO]", "FETCH 1 BODY[1.]",
            "FETCH 1 BINARY[TEXT]", "FETCH 1 BODY[]<1>",
            "FETCH 1 BODY[]<1.0>", "FETCH 1 (FLAGS", "FETCH 1",
            "FETCH 1 BINARY.SIZE[]<0.1>", "FETCH 1 BODY[HEADER.FIELDS ()]",
            "STORE 1 FLAGS (\\Bogus)", "STORE 1 FLAGS (a]b)",
            "STORE 1 XFLAGS (\\Seen)", "UID BOGUS 1", "COPY 9 INBOX")
    # in groups, below imapd_error_limit
    for i in range(0, len(bads), 4):
        c = raw(imap, "carol@example.test", "pw-carol")
        c.cmd("s", "SELECT INBOX")
        for bad in bads[i:i + 4]:
            r = c.cmd("b", bad)
            assert r[-1].startswith(b"b BAD "), (bad, r)
        # the session stays usable
        assert c.cmd("n", "NOOP")[-1] == b"n OK NOOP completed"
        c.close()


def test_examine_is_read_only(imap):
    deliver(imap, "ro-1", to="bob@example.test")
    wait_delivered(imap, BOB, "ro-1")
    c = raw(imap, BOB, BOBPW)
    r = c.cmd("x", "EXAMINE INBOX")
    assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox" in r
    assert r[-1].startswith(b"x OK [READ-ONLY]")
    r = c.cmd("s", "STORE 1 +FLAGS (\\Seen)")
    assert r[-1].startswith(b"s NO [READ-ONLY]"), r
    assert c.cmd("e", "EXPUNGE")[-1].startswith(b"e NO [READ-ONLY]")
    assert c.cmd("m", "MOVE 1 INBOX")[-1].startswith(b"m NO [READ-ONLY]")
    # BODY[] does not set \Seen in a read-only mailbox
    r = cmd(c, "f", "FETCH 1 BODY[]")
    assert b"\\Seen" not in b"".join(r)
    r = c.cmd("g", "FETCH 1 FLAGS")
    # no SELECT took it yet: EXAMINE shows it \Recent, and leaves it so
    assert r[0] == b"* 1 FETCH (FLAGS (\\Recent))", r
    c.cmd("c", "CLOSE")
    c.close()


def test_two_sessions_see_each_other(imap):
    for i in range(3):
        deliver(imap, "two-%d" % i, to="dave@example.test")
    wait_delivered(imap, "dave@example.test", "two-", count=3)
    a = raw(imap, "dave@example.test", "pw-dave")
    b = raw(imap, "dave@example.test", "pw-dave")
    a.cmd("e", "ENABLE CONDSTORE")
    ra = a.cmd("s", "SELECT INBOX")
    rb = b.cmd("s", "SELECT INBOX")
    n = int([x for x in ra if x.endswith(b" EXISTS")][0].split()[1])
    assert n >= 3
    # b flags message 1: a hears it at its next command, with MODSEQ
    r = b.cmd("f", "STORE 1 +FLAGS (\\Flagged)")
    assert r[-1].startswith(b"f OK")
    r = a.cmd("n", "NOOP")
    assert re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(\\Flagged"
                    rb"( \\Recent)?\) MODSEQ \(\d+\)\)", r[0]), r
    # b expunges message 2: a is told EXPUNGE, not during its FETCH
    b.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    r = b.cmd("x", "EXPUNGE")
    assert r[0] == b"* 2 EXPUNGE", r
    r = a.cmd("f", "FETCH 1 FLAGS")
    assert not any(b"EXPUNGE" in x for x in r), r
    r = a.cmd("n", "NOOP")
    assert b"* 2 EXPUNGE" in r, r
    # new mail: EXISTS at the next command
    deliver(imap, "two-new", to="dave@example.test")
    wait_delivered(imap, "dave@example.test", "two-new")
    r = a.cmd("c", "CHECK")
    assert b"* %d EXISTS" % n in r, r
    a.close()
    b.close()


def test_idle_push_on_delivery(imap):
    c = raw(imap, BOB, BOBPW)
    r = c.cmd("s", "SELECT INBOX")
    n = int([x for x in r if x.endswith(b" EXISTS")][0].split()[1])
    c.send(b"i IDLE\r\n")
    assert c.line() == b"+ idling"
    other = raw(imap, BOB, BOBPW)
    other.cmd("s", "SELECT INBOX")
    for k in range(2):
        deliver(imap, "idle-%d" % k, to=BOB)
        t0 = time.monotonic()
        # the first line after delivery; the clock starts when the file
        # is in new/ (local's rename)
        wait_delivered(imap, BOB, "idle-%d" % k)
        t1 = time.monotonic()
        ln = c.line(timeout=5)
        t2 = time.monotonic()
        assert ln == b"* %d EXISTS" % (n + k + 1), ln
        assert t2 - t1 < 1.0, (t1 - t0, t2 - t1)
        # IMAP4rev1: the RECENT count comes with EXISTS
        ln = c.line(timeout=5)
        assert re.match(rb"\* \d+ RECENT$", ln), ln
    # a flag change by another session is pushed too
    other.cmd("f", "STORE 1 +FLAGS (\\Answered)")
    ln = c.line(timeout=3)
    assert re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(.*\\Answered", ln), ln
    c.send(b"DONE\r\n")
    assert c.line() == b"i OK IDLE terminated"
    # IDLE again, and a line that is not DONE ends it with BAD
    c.send(b"j IDLE\r\n")
    assert c.line() == b"+ idling"
    c.send(b"NOPE\r\n")
    assert c.line().startswith(b"j BAD ")
    assert c.cmd("n", "NOOP")[-1] == b"n OK NOOP completed"
    other.close()
    c.close()


def test_qresync_after_session_and_delivery(imap):
    user, pw = "alice@example.test", "pw-alice"
    for i in range(3):
        deliver(imap, "qr-%d" % i, to=user)
    wait_delivered(imap, user, "qr-", count=3)
    c = raw(imap, user, pw)
    assert b"QRESYNC" in c.cmd("e", "ENABLE QRESYNC")[0]
    r = c.cmd("s", "SELECT INBOX")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(r)).group(1))
    ms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(r)).group(1))
    r = c.cmd("u", "UID FETCH 1:* (FLAGS)")
    uids = [int(re.search(rb"UID (\d+)", x).group(1)) for x in r[:-1]]
    c.cmd("l", "LOGOUT")
    c.close()
    # while the client is away: another session flags and expunges,
    # and a message is delivered
    o = raw(imap, user, pw)
    o.cmd("s", "SELECT INBOX")
    o.cmd("f", "UID STORE %d +FLAGS (\\Seen)" % uids[0])
    o.cmd("d", "UID STORE %d +FLAGS (\\Deleted)" % uids[1])
    o.cmd("x", "UID EXPUNGE %d" % uids[1])
    o.close()
    deliver(imap, "qr-late", to=user)
    wait_delivered(imap, user, "qr-late")
    c = raw(imap, user, pw)
    c.cmd("e", "ENABLE QRESYNC")
    r = c.cmd("s", "SELECT INBOX (QRESYNC (%d %d %d:%d))" % (
        uv, ms, uids[0], uids[-1]))
    text = b"\n".join(r)
    assert b"* VANISHED (EARLIER) %d" % uids[1] in text, text
    assert re.search(rb"\* \d+ FETCH \(UID %d FLAGS \(\\Seen\) MODSEQ "
                     % uids[0], text), text
    # the delivered one comes as a changed message too (its modseq is
    # newer), and EXISTS counts it
    assert re.search(rb"UID %d FLAGS \(\) MODSEQ" % (uids[-1] + 1), text) \
        or re.search(rb"FETCH \(UID %d " % (uids[-1] + 1), text), text
    # UID FETCH CHANGEDSINCE with VANISHED
    r = c.cmd("v", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % ms)
    text = b"\n".join(r)
    assert b"* VANISHED (EARLIER) %d" % uids[1] in text, text
    assert r[-1].startswith(b"v OK")
    # and live: an expunge by another session is VANISHED, not EXPUNGE
    o = raw(imap, user, pw)
    o.cmd("s", "SELECT INBOX")
    o.cmd("d", "UID STORE %d +FLAGS (\\Deleted)" % uids[2])
    o.cmd("x", "EXPUNGE")
    o.close()
    r = c.cmd("n", "NOOP")
    assert b"* VANISHED %d" % uids[2] in r, r
    c.close()


def test_unchangedsince(imap):
    user, pw = "carol@example.test", "pw-carol"
    deliver(imap, "unch", to=user)
    wait_delivered(imap, user, "unch")
    c = raw(imap, user, pw)
    c.cmd("s", "SELECT INBOX")
    r = c.cmd("f", "FETCH 1 (MODSEQ)")
    # the first CONDSTORE-enabling command tells HIGHESTMODSEQ
    assert r[0].startswith(b"* OK [HIGHESTMODSEQ "), r
    ms = int(re.search(rb"MODSEQ \((\d+)\)", r[1]).group(1))
    r = c.cmd("a", "STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % ms)
    assert r[-1].startswith(b"a OK"), r
    assert re.search(rb"MODSEQ \((\d+)\)", r[0])
    r = c.cmd("b", "STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % ms)
    assert r[-1].startswith(b"b OK [MODIFIED 1]"), r
    r = c.cmd("c", "UID STORE 1:* (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
    assert b"[MODIFIED " in r[-1], r
    # CLOSE expunges \Deleted silently
    r = c.cmd("e", "EXAMINE INBOX")
    n = int([x for x in r if x.endswith(b" EXISTS")][0].split()[1])
    c.cmd("s", "SELECT INBOX")
    c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert c.cmd("c", "CLOSE") == [b"c OK CLOSE completed"]
    r = c.cmd("x", "EXAMINE INBOX")
    assert b"* %d EXISTS" % (n - 1) in r, r
    c.close()


def test_copy_move_and_appends(imap):
    user, pw = "dave@example.test", "pw-dave"
    folder_create(imap, user, "Archive2")
    m = imaplib_login(imap, user, pw)
    typ, data = m.append("Nowhere", None, None, b"Subject: x\r\n\r\ny\r\n")
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    # MULTIAPPEND: two messages, one APPENDUID set
    c = raw(imap, user, pw)
    c.send(b"m APPEND Archive2 (\\Seen) {14+}\r\nSubject: a\r\n\r\n"
           b" {14+}\r\nSubject: b\r\n\r\n\r\n")
    r = c.until_tagged(b"m")
    assert re.match(rb"m OK \[APPENDUID \d+ 1:2\]", r[-1]), r
    # literal8 (RFC 3516): binary content with a NUL
    c.send(b"b APPEND Archive2 ~{21+}\r\nSubject: b\r\n\r\nab\x00cd\r\n\r\n")
    r = c.until_tagged(b"b")
    assert re.match(rb"b OK \[APPENDUID \d+ 3\]", r[-1]), r
    # over APPENDLIMIT: NO [TOOBIG] before the literal is sent
    caps = c.cmd("c", "CAPABILITY")[0]
    limit = int(re.search(rb"APPENDLIMIT=(\d+)", caps).group(1))
    c.send(b"t APPEND Archive2 {%d}\r\n" % (limit + 1))
    assert c.line().startswith(b"t NO [TOOBIG]")
    assert c.cmd("n", "NOOP")[-1].startswith(b"n OK")
    c.close()
    m.select("Archive2")
    typ, data = m.uid("COPY", "1:2", "INBOX")
    assert typ == "OK"
    typ, data = m.response("COPYUID")
    assert re.match(rb"\d+ 1:2 \d+:\d+", data[-1]), data
    folder_create(imap, user, "Moved")
    c = raw(imap, user, pw)
    c.cmd("s", "SELECT Archive2")
    r = c.cmd("v", "MOVE 1 Moved")
    assert re.match(rb"\* OK \[COPYUID \d+ 1 1\]", r[0]), r
    assert r[1] == b"* 1 EXPUNGE", r
    assert r[-1] == b"v OK MOVE completed"
    r = c.cmd("w", "UID MOVE 2:3 Moved")
    assert r.count(b"* 1 EXPUNGE") == 2, r
    r = c.cmd("x", "UID COPY 1:* Nowhere")
    assert r[-1].startswith(b"x NO [TRYCREATE]"), r
    r = c.cmd("u", "UNSELECT")
    assert r[-1] == b"u OK UNSELECT completed"
    r = c.cmd("s", "EXAMINE Moved")
    assert b"* 3 EXISTS" in r
    r = c.cmd("b", "FETCH 3 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"BINARY[1] ~{7}" in r[0] and b"BINARY.SIZE[1] 7" in b"".join(r)
    c.close()
    m.logout()


def put_in_new(inst, user, name, data):
    """A message file in new/ as local writes it (LF line ends)."""
    home = inst.maildir(user.split("@")[0])
    owner = home.stat()
    tmp = home / "tmp" / name
    tmp.write_bytes(data)
    os.chown(tmp, owner.st_uid, owner.st_gid)
    os.rename(tmp, home / "new" / name)


def imapd_rss_anon_kb(inst):
    return sum(H.proc_status_kb(p, "RssAnon") or 0
               for p in inst.children("imapd"))


def test_big_message_and_slow_reader(imap):
    user, pw = "bob@example.test", "pw-bob"
    # the login makes the Maildir
    imaplib_login(imap, user, pw).logout()
    line = b"0123456789" * 7 + b"abcde\n"
    body = line * (10 * 1024 * 1024 // len(line))
    data = b"Subject: big\nFrom: <a@example.org>\n\n" + body
    put_in_new(imap, user, "%d.big.host" % int(time.time()), data)
    wire = data.replace(b"\n", b"\r\n")
    m = imaplib_login(imap, user, pw)
    m.select("INBOX")
    typ, res = m.fetch("*", "(UID RFC822.SIZE)")
    uid = int(re.search(rb"UID (\d+)", res[0]).group(1))
    assert b"RFC822.SIZE %d" % len(wire) in res[0]
    t0 = time.monotonic()
    typ, res = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
    assert res[0][1] == wire
    typ, res = m.uid("FETCH", str(uid), "(BODY.PEEK[]<5000000.1000>)")
    assert res[0][1] == wire[5000000:5001000]
    assert b"BODY[]<5000000>" in res[0][0]
    # a range that starts between the CR and LF of a stored bare LF
    cut = wire.index(b"\r\n", 1000000) + 1
    typ, res = m.uid("FETCH", str(uid), "(BODY.PEEK[TEXT]<%d.3>)"
                     % (cut - len(b"Subject: big\r\nFrom: "
                                  b"<a@example.org>\r\n\r\n")))
    assert res[0][1] == wire[cut:cut + 3]
    assert time.monotonic() - t0 < 20
    # a client that stops reading a big answer: it holds a bounded
    # amount of imapd's memory, and other sessions go on
    before = imapd_rss_anon_kb(imap)
    slow = raw(imap, user, pw)
    slow.cmd("s", "SELECT INBOX")
    # pipelined behind it: answered once the FETCH is out
    slow.send(b"f UID FETCH %d (BODY.PEEK[] BODY.PEEK[])\r\n"
              b"g NOOP\r\nh UID FETCH %d (UID)\r\n" % (uid, uid))
    time.sleep(1.0)
    others = [raw(imap, user, pw) for _ in range(4)]
    for o in others:
        t1 = time.monotonic()
        o.cmd("s", "SELECT INBOX")
        r = o.cmd("f", "UID FETCH %d (RFC822.SIZE)" % uid)
        assert r[-1].startswith(b"f OK"), r
        assert time.monotonic() - t1 < 3
        o.close()
    grown = imapd_rss_anon_kb(imap) - before
    assert grown < (40 if SANITIZED else 8) * 1024, grown
    # the slow reader then gets all of it
    got = b""
    deadline = time.monotonic() + 60
    while b"h OK UID FETCH completed" not in got[-200:]:
        assert time.monotonic() < deadline, got[-300:]
        d = slow.sock.recv(1 << 20)
        assert d, (len(got), got[-300:])
        got += d
    assert got.count(wire) == 2
    tail = got[got.rindex(wire) + len(wire):]
    assert b"f OK UID FETCH completed\r\ng OK NOOP completed\r\n" in tail
    slow.close()
    m.logout()


def test_new_keyword_while_an_expunge_waits(imap):
    """STORE of a new keyword while another session's expunge is not
    yet told (STORE may not say EXPUNGE): FLAGS names the keyword
    before the FETCH that carries it."""
    user, pw = "carol@example.test", "pw-carol"
    for i in range(2):
        deliver(imap, "kwx-%d" % i, to=user)
    wait_delivered(imap, user, "kwx-", count=2)
    a = raw(imap, user, pw)
    b = raw(imap, user, pw)
    r = a.cmd("s", "SELECT INBOX")
    n = int([x for x in r if x.endswith(b" EXISTS")][0].split()[1])
    b.cmd("s", "SELECT INBOX")
    b.cmd("d", "STORE %d +FLAGS.SILENT (\\Deleted)" % n)
    b.cmd("x", "EXPUNGE")
    r = a.cmd("k", "STORE 1 +FLAGS (Brandnew)")
    assert not any(b"EXPUNGE" in x for x in r), r
    flags = [x for x in r if x.startswith(b"* FLAGS ")]
    assert flags and b"Brandnew" in flags[0], r
    fetch = [x for x in r if b" FETCH " in x]
    assert fetch and b"Brandnew" in fetch[0], r
    assert r.index(flags[0]) < r.index(fetch[0])
    r = a.cmd("n", "NOOP")
    assert b"* %d EXPUNGE" % n in r, r
    a.close()
    b.close()


@pytest.mark.skipif(not os.path.exists("/usr/bin/mbsync"),
                    reason="mbsync (Debian isync) is not installed")
def test_mbsync_both_ways(imap, tmp_path):
    import subprocess
    user, pw = "dave@example.test", "pw-dave"
    for i in range(5):
        deliver(imap, "mbs-%d" % i, to=user)
    wait_delivered(imap, user, "mbs-", count=5)
    local = tmp_path / "local"
    local.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(
        "IMAPAccount t\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\n"
        "SSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore far\nAccount t\n\n"
        "MaildirStore near\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
        "Channel c\nFar :far:\nNear :near:\nPatterns INBOX\n"
        "Create Both\nExpunge Both\nSync All\nSyncState *\n"
        % (imap.imap_port, user, pw, local, local))

    def run():
        p = subprocess.run(["mbsync", "-c", str(cfg), "-a"],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, (p.stdout, p.stderr)
        return p

    run()
    near = local / "INBOX"
    got = list((near / "cur").iterdir()) + list((near / "new").iterdir())
    server = raw(imap, user, pw)
    r = server.cmd("s", "EXAMINE INBOX")
    n = int([x for x in r if x.endswith(b" EXISTS")][0].split()[1])
    assert len(got) == n
    # near side: a new message and a flag change; far side: a flag
    newfile = near / "new" / "1700000000.local.host"
    newfile.write_bytes(H.make_message("mbs-local"))
    first = sorted((near / "cur").iterdir())[0] if list(
        (near / "cur").iterdir()) else sorted((near / "new").iterdir())[0]
    base = first.name.split(":")[0]
    os.rename(first, near / "cur" / (base + ":2,F"))
    server.cmd("u", "UNSELECT")
    server.cmd("s", "SELECT INBOX")
    server.cmd("f", "STORE %d +FLAGS (\\Answered)" % n)
    run()
    r = server.cmd("n", "NOOP")
    r = cmd(server, "f", "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS "
            "(Subject)])")
    text = b"\n".join(r)
    assert b"test mbs-local" in text, text
    assert b"\\Flagged" in text, text
    assert any(p.name.endswith("R") or ":2,R" in p.name or "R" in
               p.name.split(":2,")[-1]
               for p in (near / "cur").iterdir()), \
        list((near / "cur").iterdir())
    # a third run changes nothing on the server
    before = sorted(p.name for p in (imap.maildir("dave") / "cur")
                    .iterdir())
    run()
    after = sorted(p.name for p in (imap.maildir("dave") / "cur").iterdir())
    assert before == after
    server.close()


def test_linked_folder_is_no_folder(imap):
    """A folder planted as a link to another user's Maildir cannot be
    selected, appended to or copied into."""
    user, pw = "dave@example.test", "pw-dave"
    imaplib_login(imap, "bob@example.test", "pw-bob").logout()
    imaplib_login(imap, user, pw).logout()
    link = imap.maildir("dave") / ".Evil"
    if not link.exists():
        os.symlink(imap.maildir("bob"), link)
    deliver(imap, "link-1", to=user)
    wait_delivered(imap, user, "link-1")
    bob_before = sorted(os.listdir(imap.maildir("bob") / "cur"))
    # (bob's mail stays in new/ once it has UIDs: compare, not empty)
    bob_new = sorted(os.listdir(imap.maildir("bob") / "new"))
    c = raw(imap, user, pw)
    assert c.cmd("s", "SELECT Evil")[-1].startswith(b"s NO [NONEXISTENT]")
    assert c.cmd("e", "EXAMINE Evil")[-1].startswith(b"e NO [NONEXISTENT]")
    c.send(b"a APPEND Evil {11+}\r\nSubject: x\r\n")
    assert c.until_tagged(b"a")[-1].startswith(b"a NO [TRYCREATE]")
    c.cmd("s", "SELECT INBOX")
    assert c.cmd("c", "COPY 1 Evil")[-1].startswith(b"c NO [TRYCREATE]")
    assert c.cmd("m", "MOVE 1 Evil")[-1].startswith(b"m NO [TRYCREATE]")
    c.close()
    assert sorted(os.listdir(imap.maildir("bob") / "cur")) == bob_before
    assert sorted(os.listdir(imap.maildir("bob") / "new")) == bob_new


def put_in_folder(inst, user, folder, name, data):
    """A message file in folder's new/, as local writes it."""
    home = inst.maildir(user.split("@")[0])
    d = home / ("." + folder)
    owner = home.stat()
    tmp = d / "tmp" / name
    tmp.write_bytes(data)
    os.chown(tmp, owner.st_uid, owner.st_gid)
    os.rename(tmp, d / "new" / name)


def recent_of(lines):
    """The count of the untagged RECENT response, or None."""
    for ln in lines:
        m = re.match(rb"\* (\d+) RECENT$", ln)
        if m:
            return int(m.group(1))
    return None


def test_recent_first_select_claims(imap):
    """\\Recent (RFC 3501 2.3.2) as Dovecot keeps it: the first session
    to SELECT a folder after mail arrives gets it as recent (RECENT,
    FLAGS, SEARCH RECENT / NEW), no other does; EXAMINE shows it without
    taking it; an IMAP4rev2 session neither sees nor takes it."""
    user, pw = "dave@example.test", "pw-dave"
    folder_create(imap, user, "Rec")
    for i in range(2):
        put_in_folder(imap, user, "Rec", "100%d.M1P1.host" % i,
                      H.make_message("rec-%d" % i, to=user))
    ex = raw(imap, user, pw)
    a = raw(imap, user, pw)
    b = raw(imap, user, pw)
    v2 = raw(imap, user, pw)
    try:
        # EXAMINE: both are recent, and stay so
        r = ex.cmd("e", "EXAMINE Rec")
        assert r[-1].startswith(b"e OK [READ-ONLY]"), r
        assert recent_of(r) == 2, r
        r = ex.cmd("f", "FETCH 1:* (FLAGS)")
        assert all(b"\\Recent" in x for x in r[:-1]), r
        # directories older than the stamp's doubt: the next reads of
        # the folder may come from the worker's cached listing
        d = imap.maildir("dave") / ".Rec"
        past = time.time_ns() - 10 * 10**9 + 12345
        for sub in ("new", "cur"):
            os.utime(d / sub, ns=(past, past))
        assert recent_of(ex.cmd("e1", "EXAMINE Rec")) == 2
        # the first SELECT takes them
        r = a.cmd("s", "SELECT Rec")
        assert r[-1].startswith(b"s OK [READ-WRITE]"), r
        assert recent_of(r) == 2, r
        r = a.cmd("f", "UID FETCH 1:* (FLAGS)")
        assert r[:-1] == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))",
                          b"* 2 FETCH (UID 2 FLAGS (\\Recent))"], r
        assert a.cmd("r", "SEARCH RECENT")[0] == b"* SEARCH 1 2"
        # EXAMINE now shows none: taken is taken, even when the listing
        # comes from the worker's cache, read before a took them
        r = ex.cmd("e2", "EXAMINE Rec")
        assert recent_of(r) == 0, r
        a.cmd("st", "STORE 1 +FLAGS.SILENT (\\Seen)")
        assert a.cmd("n", "SEARCH NEW")[0] == b"* SEARCH 2"
        assert a.cmd("o", "SEARCH OLD")[0] == b"* SEARCH"
        # the second sees none of them as recent
        r = b.cmd("s", "SELECT Rec")
        assert recent_of(r) == 0, r
        r = b.cmd("f", "FETCH 1:* (FLAGS)")
        assert not any(b"\\Recent" in x for x in r), r
        assert b.cmd("r", "SEARCH RECENT")[0] == b"* SEARCH"
        # a new one goes to whichever selected session hears of it
        # first: b here; a gets it without \Recent and keeps its own
        put_in_folder(imap, user, "Rec", "1002.M1P1.host",
                      H.make_message("rec-2", to=user))
        r = b.cmd("n", "NOOP")
        assert b"* 3 EXISTS" in r and recent_of(r) == 1, r
        assert b.cmd("f", "FETCH 3 (FLAGS)")[0] == \
            b"* 3 FETCH (FLAGS (\\Recent))"
        r = a.cmd("n", "NOOP")
        assert b"* 3 EXISTS" in r and recent_of(r) == 2, r
        assert a.cmd("f", "FETCH 3 (FLAGS)")[0] == b"* 3 FETCH (FLAGS ())"
        assert a.cmd("r", "SEARCH RECENT")[0] == b"* SEARCH 1 2"
        # STATUS RECENT: what no SELECT has taken yet
        r = ex.cmd("t", "STATUS Rec (RECENT)")
        assert r[0] == b'* STATUS "Rec" (RECENT 0)', r
        # IMAP4rev2: no RECENT, no \Recent, and nothing taken
        assert v2.cmd("e", "ENABLE IMAP4rev2")[-1].startswith(b"e OK")
        put_in_folder(imap, user, "Rec", "1003.M1P1.host",
                      H.make_message("rec-3", to=user))
        r = v2.cmd("s", "SELECT Rec")
        assert r[-1].startswith(b"s OK") and recent_of(r) is None, r
        r = v2.cmd("f", "FETCH 4 (FLAGS)")
        assert r[0] == b"* 4 FETCH (FLAGS ())", r
        r = ex.cmd("t", "STATUS Rec (RECENT)")
        assert r[0] == b'* STATUS "Rec" (RECENT 1)', r
        r = a.cmd("n", "NOOP")
        assert b"* 4 EXISTS" in r and recent_of(r) == 3, r
        # a session that comes back later finds nothing recent
        a.cmd("c", "CLOSE")
        r = a.cmd("s", "SELECT Rec")
        assert recent_of(r) == 0, r
    finally:
        for c in (ex, a, b, v2):
            c.close()


def test_listing_cache_is_per_maildir(imap):
    """The worker's folder listings are keyed by Maildir and folder: a
    user's SELECT never gets another user's INBOX from them, however the
    sessions fall on the workers."""
    users = {"carol@example.test": "pw-carol", "dave@example.test": "pw-dave"}
    # a message only carol has, so the two INBOXes differ
    deliver(imap, "cache-only-carol", to="carol@example.test")
    wait_delivered(imap, "carol@example.test", "cache-only-carol")
    want = {}
    for rnd in range(3):
        for user, pw in users.items():
            c = raw(imap, user, pw)
            try:
                r = c.cmd("s", "SELECT INBOX")
                n = int([x for x in r if x.endswith(b" EXISTS")][0]
                        .split()[1])
                f = cmd(c, "f", "UID FETCH 1:* (UID)")
                uids = [x for x in f if x.startswith(b"* ")]
                assert len(uids) == n, (user, n, f[-3:])
                got = (n, tuple(uids))
                # the same answer every round: from the disk or the cache
                assert want.setdefault(user, got) == got, (user, rnd)
            finally:
                c.close()
    assert want["carol@example.test"] != want["dave@example.test"]


def test_select_leaves_new_mail_in_new(imap):
    """A SELECT gives mail in new/ its UIDs without moving it (the cold
    SELECT of a big folder renamed every file before); a STORE moves
    only the message it flags to cur/ with its flags; FETCH reads both.
    A message another tool moves from new/ to cur/ (pop3d: "name:2,",
    mutt: "name:2,S") still FETCHes under its UID, the mutt one after the
    sync of the next NOOP shows its flag too."""
    user, pw = "dave@example.test", "pw-dave"
    folder_create(imap, user, "Fresh")
    names = ["170000%04d.M1P%dQ%d.host" % (i, i, i) for i in range(4)]
    for i, n in enumerate(names):
        put_in_folder(imap, user, "Fresh", n,
                      H.make_message("fresh-%d" % i, to=user))
    d = imap.maildir("dave") / ".Fresh"
    c = raw(imap, user, pw)
    try:
        r = cmd(c, "s", "SELECT Fresh")
        assert b"* 4 EXISTS" in r, r
        # UIDs given, nothing renamed
        assert sorted(os.listdir(d / "new")) == names
        assert os.listdir(d / "cur") == []
        # no flags in new/; \Recent is the session's, as before
        r = cmd(c, "f", "UID FETCH 1:4 (FLAGS)")
        assert sum(1 for ln in r if b"FETCH (UID" in ln and
                   b"FLAGS (\\Recent)" in ln) == 4, r
        # STORE moves the one it flags, with its flag, keeping the name
        r = cmd(c, "t", "UID STORE 2 +FLAGS.SILENT (\\Flagged)")
        assert r[-1].startswith(b"t OK"), r
        assert os.listdir(d / "cur") == [names[1] + ":2,F"]
        assert sorted(os.listdir(d / "new")) == [names[0]] + names[2:]
        # FETCH reads the file in new/ and the one in cur/
        for uid in (1, 2):
            r = cmd(c, "b%d" % uid, "UID FETCH %d (BODY.PEEK[])" % uid)
            assert r[-1].startswith(b"b%d OK" % uid), r
            assert b"fresh-%d" % (uid - 1) in b"\n".join(r), r
        # another tool moves two files from new/ to cur/ under us
        os.rename(d / "new" / names[2], d / "cur" / (names[2] + ":2,"))
        os.rename(d / "new" / names[3], d / "cur" / (names[3] + ":2,S"))
        r = cmd(c, "p", "UID FETCH 3 (BODY.PEEK[])")
        assert r[-1].startswith(b"p OK"), r
        assert b"fresh-2" in b"\n".join(r), r
        r = cmd(c, "n", "NOOP")
        assert not any(b"EXPUNGE" in ln or b"VANISHED" in ln
                       for ln in r), r
        r = cmd(c, "m", "UID FETCH 4 (FLAGS BODY.PEEK[])")
        assert r[-1].startswith(b"m OK"), r
        assert any(b"UID 4" in ln and b"\\Seen" in ln for ln in r), r
        assert b"fresh-3" in b"\n".join(r), r
        r = cmd(c, "a", "UID FETCH 1:4 (UID)")
        assert sum(1 for ln in r if b"FETCH (UID" in ln) == 4, r
        # a message moved by hand can be flagged and expunged as well
        r = cmd(c, "x", "UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        assert r[-1].startswith(b"x OK"), r
        r = cmd(c, "e", "EXPUNGE")
        assert r[-1].startswith(b"e OK"), r
        assert not any(n.startswith(names[2]) for n in
                       os.listdir(d / "cur") + os.listdir(d / "new"))
        cmd(c, "o", "LOGOUT")
    finally:
        c.close()

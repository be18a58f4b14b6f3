"""
Delivery through smtpd -> qmgr -> local into Maildirs: exact bodies, the
headers local adds, +tag, aliases, catch-all, alias loops, unknown users
and relay attempts.
"""
import re

import herald as H


def send(inst, sender, rcpts, msg):
    with inst.smtp() as s:
        s.ehlo()
        refused = s.sendmail(sender, rcpts, msg)
        s.quit()
    assert refused == {}, refused


BODY = (
    "First line of the body.\r\n"
    ".a line that starts with a dot\r\n"
    "..two dots\r\n"
    ".\r\n"
    "a line with trailing blanks   \r\n"
    "\ttab at the start\r\n"
    "\r\n"
    "\r\n"
    "after two empty lines\r\n"
    + ("0123456789" * 99) + "\r\n"
    "From the start of a line (mbox would quote this)\r\n"
    "last line\r\n"
)


def test_delivery_exact_body(herald, token):
    sender = "sender-%s@example.org" % token
    msg = H.make_message(token, sender=sender, body=BODY)
    send(herald, sender, ["alice@example.test"], msg)
    got = herald.wait_messages(token, "alice")
    assert len(got) == 1, "expected one copy, got %d" % len(got)
    fields = H.split_delivered(got[0], msg)
    names = [n.lower() for n, _ in fields]
    assert names.count("return-path") == 1, fields
    assert names.count("delivered-to") == 1, fields
    assert "received" in names, fields
    assert set(names) <= {"return-path", "delivered-to", "received"}, fields
    assert names[0] == "return-path", fields
    assert H.header_values(fields, "Return-Path") == \
        [("<%s>" % sender).encode()]
    assert H.header_values(fields, "Delivered-To") == [b"alice@example.test"]
    assert any(b"mx.example.test" in v
               for v in H.header_values(fields, "Received")), fields
    # the Maildir file name carries the size (maildir.h: ",S=<size>")
    files = [p for p in herald.maildir_files("alice")
             if token.encode() in p.read_bytes()]
    m = re.search(r",S=(\d+)", files[0].name)
    assert m, files[0].name
    assert int(m.group(1)) == len(got[0])


def test_delivery_logged(herald, token):
    since = herald.log_size()
    sender = "log-%s@example.org" % token
    send(herald, sender, ["alice@example.test"],
         H.make_message(token, sender=sender))
    qid = herald.qid_of_sender(sender, since=since)
    herald.wait_log(r"%s: from=<%s>, size=\d+, nrcpt=1" %
                    (qid, re.escape(sender)), since=since)
    herald.wait_log(r"%s: to=<alice@example.test>, relay=local, .*"
                    r"dsn=2\.\d\.\d, status=sent" % qid, since=since)
    herald.wait_log(r"%s: removed" % qid, since=since)
    assert not any(qid in p.name for p in herald.queue_files())


def test_8bit_body(herald, token):
    sender = "eight-%s@example.org" % token
    body = "Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u2603\r\n".encode("utf-8") + \
        bytes(range(0x80, 0x100)).replace(b"\r", b"").replace(b"\n", b"") + \
        b"\r\n"
    msg = H.make_message(token, sender=sender, body=body)
    with herald.smtp() as s:
        code, caps = s.ehlo()
        assert code == 250
        assert s.has_extn("8bitmime")
        s.mail(sender, ["BODY=8BITMIME"])
        assert s.rcpt("alice@example.test")[0] == 250
        code, _ = s.data(msg)
        assert code == 250
    got = herald.wait_messages(token, "alice")
    H.split_delivered(got[0], msg)


def test_plus_tag(herald, token):
    sender = "tag-%s@example.org" % token
    msg = H.make_message(token, sender=sender, to="alice+news@example.test")
    send(herald, sender, ["alice+news@example.test"], msg)
    got = herald.wait_messages(token, "alice")
    assert len(got) == 1
    fields = H.split_delivered(got[0], msg)
    assert H.header_values(fields, "Delivered-To") == [b"alice@example.test"]
    # nothing made a Maildir for the tagged name
    assert not herald.maildir(("alice+news")).exists()


def test_alias_to_two_users(herald, token):
    sender = "alias-%s@example.org" % token
    msg = H.make_message(token, sender=sender, to="team@example.test")
    send(herald, sender, ["team@example.test"], msg)
    for user in ("alice", "bob"):
        got = herald.wait_messages(token, user)
        assert len(got) == 1, user
        fields = H.split_delivered(got[0], msg)
        assert H.header_values(fields, "Delivered-To") == \
            [("%s@example.test" % user).encode()], fields
    herald.wait_queue_empty()
    assert herald.messages_with(token, "carol") == []
    assert len(herald.messages_with(token, "alice")) == 1
    assert len(herald.messages_with(token, "bob")) == 1


def test_alias_and_member_once_each(herald, token):
    """Mail to team and alice at once: both get one copy per envelope
    recipient route, and nothing is lost."""
    sender = "both-%s@example.org" % token
    msg = H.make_message(token, sender=sender)
    send(herald, sender, ["team@example.test", "bob@example.test"], msg)
    herald.wait_messages(token, "alice")
    herald.wait_messages(token, "bob")
    herald.wait_queue_empty()
    assert len(herald.messages_with(token, "alice")) == 1
    assert 1 <= len(herald.messages_with(token, "bob")) <= 2


def test_postmaster_alias(herald, token):
    sender = "pm-%s@example.org" % token
    msg = H.make_message(token, sender=sender, to="postmaster@example.test")
    send(herald, sender, ["Postmaster@Example.Test"], msg)
    got = herald.wait_messages(token, "alice")
    H.split_delivered(got[0], msg)


def test_catch_all(herald, token):
    sender = "catch-%s@example.org" % token
    rcpt = "whoever-%s@catch.test" % token[-8:]
    msg = H.make_message(token, sender=sender, to=rcpt)
    send(herald, sender, [rcpt], msg)
    got = herald.wait_messages(token, "carol")
    assert len(got) == 1
    H.split_delivered(got[0], msg)


def test_unknown_user_550(herald, token):
    with herald.smtp() as s:
        s.ehlo()
        assert s.mail("u-%s@example.org" % token)[0] == 250
        code, text = s.rcpt("nobody-here@example.test")
        assert code == 550, (code, text)
        assert text.startswith(b"5.1.1"), text
        # the session goes on: a good recipient still works
        assert s.rcpt("alice@example.test")[0] == 250
        s.rset()


def test_case_insensitive_recipient(herald, token):
    sender = "case-%s@example.org" % token
    msg = H.make_message(token, sender=sender)
    send(herald, sender, ["ALICE@EXAMPLE.TEST"], msg)
    herald.wait_messages(token, "alice")


def test_relay_denied_554(herald, token):
    with herald.smtp() as s:
        s.ehlo()
        assert s.mail("r-%s@example.org" % token)[0] == 250
        code, text = s.rcpt("victim@elsewhere.example")
        assert code == 554, (code, text)
        assert text.startswith(b"5.7.1"), text
        # a hosted sender domain does not make relaying legal either
        s.rset()
        assert s.mail("alice@example.test")[0] == 250
        code, text = s.rcpt("victim@elsewhere.example")
        assert code == 554 and text.startswith(b"5.7.1"), (code, text)
        s.rset()


def test_data_without_valid_rcpt(herald, token):
    with herald.smtp() as s:
        s.ehlo()
        s.mail("d-%s@example.org" % token)
        s.rcpt("nobody-here@example.test")
        code, _ = s.docmd("DATA")
        assert code in (503, 554), code


def test_null_sender(herald, token):
    msg = H.make_message(token, sender="MAILER-DAEMON@example.org")
    with herald.smtp() as s:
        s.ehlo()
        assert s.mail("<>")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        assert s.data(msg)[0] == 250
    got = herald.wait_messages(token, "alice")
    fields = H.split_delivered(got[0], msg)
    assert H.header_values(fields, "Return-Path") == [b"<>"]


def test_many_messages_one_session(herald, token):
    n = 25
    with herald.smtp() as s:
        s.ehlo()
        for i in range(n):
            sender = "multi-%s@example.org" % token
            s.sendmail(sender, ["bob@example.test"],
                       H.make_message("%s-%d" % (token, i), sender=sender))
    H.wait_for(lambda: len(herald.messages_with(token, "bob")) >= n, 30,
               what="%d messages for bob" % n)
    herald.wait_queue_empty()
    counts = H.maildir_tokens(herald, "bob",
                              (r"Subject: test (%s-\d+)" % token).encode())
    assert sorted(counts) == sorted("%s-%d" % (token, i) for i in range(n))
    assert set(counts.values()) == {1}


def test_alias_loop_terminates(herald, token):
    """loop1 -> loop2 -> loop1: no hang, and the mail is not lost: it is
    refused at RCPT, bounced to the sender, or delivered once."""
    herald.add_alias("loop1@example.test", "loop2@example.test")
    herald.add_alias("loop2@example.test", "loop1@example.test")
    since = herald.log_size()
    sender = "dave@example.test"
    msg = H.make_message(token, sender=sender, to="loop1@example.test")
    with herald.smtp() as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt("loop1@example.test")
        if code >= 500:
            return	# refused up front: the sender knows
        assert code == 250, (code, text)
        code, text = s.data(msg)
        assert code == 250, (code, text)
    m = herald.wait_log(r"(%s): from=<%s>, size=\d+, nrcpt=1"
                        % (H.QID_RE, re.escape(sender)), since=since)
    qid = m.group(1)
    final = herald.wait_log(r"%s: to=<[^>]*>.*status=(sent|bounced)" % qid,
                            timeout=60, since=since)
    H.wait_for(lambda: not any(qid in p.name for p in herald.queue_files()),
               60, what="%s to leave the queue" % qid)
    copies = {u: len(herald.messages_with(token, u))
              for u in ("alice", "bob", "carol", "dave")}
    if final.group(1) == "bounced":
        # the DSN goes to dave and quotes the original's headers
        H.wait_for(lambda: herald.messages_with(token, "dave"), 30,
                   what="bounce for dave")
        dsn = herald.messages_with(token, "dave")[0]
        assert b"Return-Path: <>" in dsn, dsn[:2000]
    else:
        assert sum(copies.values()) == 1, copies

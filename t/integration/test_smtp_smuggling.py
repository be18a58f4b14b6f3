"""
SMTP smuggling: end-of-data look-alikes with bare LF or bare CR must never
end the message early, so the SMTP commands that follow them can never
become a second message. herald may reject the whole message (550 for bare
LF/CR) or keep the bytes as data; either way alice ends up with at most one
message and none of them is the smuggled one.
"""
import time

import pytest

import herald as H

PAYLOADS = {
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "lf-dot-lf": b"\n.\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-cr": b"\r.\r",
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_smuggling(herald, token, name):
    payload = PAYLOADS[name]
    since = herald.log_size()
    sender = "smug-%s@example.org" % token
    smuggler = "x-%s@example.test" % token
    before = ("Before %s" % token).encode()
    smuggled = ("Smuggled %s" % token).encode()
    head = ("From: <%s>\r\nTo: <alice@example.test>\r\nSubject: smuggle %s"
            "\r\n\r\n" % (sender, token)).encode()
    data = (head + before + payload +
            b"MAIL FROM:<" + smuggler.encode() + b">\r\n"
            b"RCPT TO:<alice@example.test>\r\n"
            b"DATA\r\n" + smuggled + b"\r\n"
            b".\r\n")
    with herald.raw(timeout=20) as c:
        c.expect(220)
        assert c.cmd("EHLO client.example.test")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(data)
        first = c.reply()
        print("%s: server replied %r" % (name, first))
        assert first[0] is not None, "connection closed without a reply"
        assert first[0] in (250, 550, 554), first
        if first[0] != 250:
            assert first[1][0][:2] == b"5.", first
        c.send(b"QUIT\r\n")
        rest = c.read_all(5)
    # exactly one reply to the whole DATA, then the QUIT's 221: any other
    # reply means the smuggled commands were executed
    rest_codes = [l[:3] for l in rest.split(b"\r\n") if l]
    assert rest_codes in ([b"221"], []), (first, rest)
    if rest_codes == []:
        # the server may have closed after a 5xx; never after a 250
        assert first[0] != 250, (first, rest)

    herald.wait_queue_empty(60)
    # let any stray second message (there must be none) get through
    marker = token + "-marker"
    with herald.smtp() as s:
        s.sendmail("m@example.org", ["alice@example.test"],
                   H.make_message(marker))
    herald.wait_messages(marker, "alice")
    herald.wait_queue_empty(60)

    mine = [m for m in herald.maildir_messages("alice")
            if before in m or smuggled in m]
    assert len(mine) <= 1, mine
    if first[0] == 250:
        assert len(mine) == 1, "accepted but not delivered"
        # the whole thing is one message: smuggled text sits inside it
        assert before in mine[0] and smuggled in mine[0], mine[0]
    else:
        assert mine == [], mine
    for path in herald.all_mail_files():
        content = path.read_bytes()
        if smuggled in content:
            assert before in content, (path, content)
    log = herald.log_text(since)
    assert "from=<%s>" % smuggler not in log, log
    assert log.count("from=<%s>" % sender) <= 1, log


@pytest.mark.parametrize("name", ["lf-dot-crlf", "lf-dot-lf"])
def test_smuggling_split_writes(herald, token, name):
    """The same with the look-alike and the commands in separate TCP
    segments and a pause between them."""
    payload = PAYLOADS[name]
    sender = "smug2-%s@example.org" % token
    smuggler = "y-%s@example.test" % token
    since = herald.log_size()
    with herald.raw(timeout=20) as c:
        c.expect(220)
        assert c.cmd("EHLO client.example.test")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(("Subject: smuggle2 %s\r\n\r\nBefore2 %s" % (token, token))
               .encode() + payload)
        time.sleep(0.3)
        # nothing may come back yet: the message has not ended
        assert c.pending(0.5) == b""
        c.send(("MAIL FROM:<%s>\r\n" % smuggler).encode())
        time.sleep(0.3)
        assert c.pending(0.5) == b""
        c.send(b"RCPT TO:<alice@example.test>\r\nDATA\r\nSmuggled2 "
               + token.encode() + b"\r\n.\r\n")
        first = c.reply()
        assert first[0] in (250, 550, 554), first
        c.send(b"QUIT\r\n")
        rest = c.read_all(5)
    assert [l[:3] for l in rest.split(b"\r\n") if l] in ([b"221"], []), rest
    herald.wait_queue_empty(60)
    assert "from=<%s>" % smuggler not in herald.log_text(since)
    for m in herald.maildir_messages("alice"):
        if b"Smuggled2 " + token.encode() in m:
            assert b"Before2 " + token.encode() in m

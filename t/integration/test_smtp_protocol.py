"""
SMTP protocol behaviour: greeting and EHLO, PIPELINING, BDAT (CHUNKING),
size limits, command sequencing errors.
"""
import re

import pytest

import herald as H

SIZE_LIMIT = 102400


def ehlo(c, name="client.example.test"):
    code, lines = c.cmd("EHLO " + name)
    assert code == 250, (code, lines)
    return [l.decode() for l in lines]


def test_greeting_and_ehlo(herald):
    with herald.raw() as c:
        code, lines = c.reply()
        assert code == 220
        assert lines[0].startswith(b"mx.example.test "), lines
        caps = ehlo(c)
        assert caps[0].split()[0] == "mx.example.test", caps
        keys = {l.split()[0].upper() for l in caps[1:]}
        for cap in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                    "CHUNKING", "STARTTLS", "SIZE"):
            assert cap in keys, (cap, caps)
        size = [l for l in caps if l.upper().startswith("SIZE")][0]
        assert size.split()[1] == str(50 * 1024 * 1024), size
        assert c.cmd("QUIT")[0] == 221


def test_helo_and_quit(herald):
    with herald.raw() as c:
        c.expect(220)
        code, lines = c.cmd("HELO client.example.test")
        assert code == 250 and b"mx.example.test" in lines[0]
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("QUIT")[0] == 221
        assert c.read_all(5) == b""


def test_sequence_errors(herald):
    with herald.raw() as c:
        c.expect(220)
        code, lines = c.cmd("MAIL FROM:<a@example.org>")
        assert code == 503 and lines[0].startswith(b"5.5.1"), (code, lines)
        ehlo(c)
        code, lines = c.cmd("RCPT TO:<alice@example.test>")
        assert code == 503 and lines[0].startswith(b"5.5.1"), (code, lines)
        code, lines = c.cmd("DATA")
        assert code == 503 and lines[0].startswith(b"5.5.1"), (code, lines)
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        code, lines = c.cmd("MAIL FROM:<b@example.org>")
        assert code == 503, (code, lines)
        code, lines = c.cmd("FROBNICATE")
        assert code in (500, 502), (code, lines)
        assert c.cmd("RSET")[0] == 250
        code, lines = c.cmd("MAIL FROM:<no-brackets")
        assert 500 <= code <= 501 or code == 553, (code, lines)
        assert c.cmd("QUIT")[0] == 221


def test_long_command_line(herald):
    with herald.raw() as c:
        c.expect(220)
        ehlo(c)
        code, lines = c.cmd("NOOP " + "x" * 5000)
        assert code in (500, 421), (code, lines)
        if code == 421:
            assert c.read_all(5) == b""
            return
        # the line was consumed whole (its tail was not read as a second
        # command): the session is in step again
        r = c.cmd("NOOP")
        assert r[0] == 250, r
        assert c.pending(0.5) == b""
        assert c.cmd("QUIT")[0] == 221


def test_pipelining(herald, token):
    sender = "pipe-%s@example.org" % token
    msg = H.make_message(token, sender=sender)
    with herald.raw() as c:
        c.expect(220)
        caps = ehlo(c)
        assert "PIPELINING" in [x.split()[0].upper() for x in caps]
        c.send(("MAIL FROM:<%s>\r\nRCPT TO:<alice@example.test>\r\n"
                "RCPT TO:<nobody-here@example.test>\r\n"
                "RCPT TO:<bob@example.test>\r\nDATA\r\n" % sender).encode())
        replies = [c.reply() for _ in range(5)]
        codes = [r[0] for r in replies]
        assert codes == [250, 250, 550, 250, 354], replies
        assert replies[2][1][0].startswith(b"5.1.1"), replies[2]
        # body, end and QUIT in one write
        c.send(msg + b".\r\nQUIT\r\n")
        end = c.reply()
        assert end[0] == 250, end
        assert c.reply()[0] == 221
    for user in ("alice", "bob"):
        got = herald.wait_messages(token, user)
        H.split_delivered(got[0], msg)


def test_pipelining_two_transactions(herald, token):
    """Two whole transactions pipelined up to DATA each time, with RSET."""
    with herald.raw() as c:
        c.expect(220)
        ehlo(c)
        for i in range(2):
            tok = "%s-%d" % (token, i)
            sender = "p2-%s@example.org" % tok
            c.send(("RSET\r\nMAIL FROM:<%s>\r\nRCPT TO:<carol@example.test>"
                    "\r\nDATA\r\n" % sender).encode())
            assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
            c.send(H.make_message(tok, sender=sender) + b".\r\n")
            assert c.reply()[0] == 250
        assert c.cmd("QUIT")[0] == 221
    herald.wait_messages(token + "-0", "carol")
    herald.wait_messages(token + "-1", "carol")


BDAT_MSG_BODY = (
    b"chunk test body\r\n"
    b".\r\n"
    b"..two dots stay two dots in BDAT\r\n"
    b".leading dot\r\n"
    b"\r\n"
    b"end of message\r\n"
)


def bdat_transaction(c, sender, rcpt, chunks, pipelined=False):
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    replies = []
    if pipelined:
        data = b""
        for i, chunk in enumerate(chunks):
            last = " LAST" if i == len(chunks) - 1 else ""
            data += b"BDAT %d%s\r\n" % (len(chunk), last.encode()) + chunk
        c.send(data)
        replies = [c.reply() for _ in chunks]
    else:
        for i, chunk in enumerate(chunks):
            last = " LAST" if i == len(chunks) - 1 else ""
            c.send(b"BDAT %d%s\r\n" % (len(chunk), last.encode()) + chunk)
            replies.append(c.reply())
    return replies


def test_bdat_two_chunks_and_last(herald, token):
    sender = "bdat-%s@example.org" % token
    msg = H.make_message(token, sender=sender, body=BDAT_MSG_BODY)
    half = len(msg) // 2
    chunks = [msg[:half], msg[half:len(msg) - 20], msg[len(msg) - 20:]]
    with herald.raw() as c:
        c.expect(220)
        caps = ehlo(c)
        assert "CHUNKING" in [x.split()[0].upper() for x in caps]
        replies = bdat_transaction(c, sender, "alice@example.test", chunks)
        assert [r[0] for r in replies] == [250, 250, 250], replies
        assert c.cmd("QUIT")[0] == 221
    got = herald.wait_messages(token, "alice")
    assert len(got) == 1
    H.split_delivered(got[0], msg)


def test_bdat_split_inside_crlf(herald, token):
    sender = "bdat-crlf-%s@example.org" % token
    msg = H.make_message(token, sender=sender, body=BDAT_MSG_BODY)
    cut = msg.index(b"\r\n.\r\n") + 1	# between CR and LF
    with herald.raw() as c:
        c.expect(220)
        ehlo(c)
        replies = bdat_transaction(c, sender, "alice@example.test",
                                   [msg[:cut], msg[cut:]])
        assert [r[0] for r in replies] == [250, 250], replies
    got = herald.wait_messages(token, "alice")
    H.split_delivered(got[0], msg)


def test_bdat_pipelined(herald, token):
    sender = "bdat-pipe-%s@example.org" % token
    msg = H.make_message(token, sender=sender, body=BDAT_MSG_BODY)
    chunks = [msg[i:i + 37] for i in range(0, len(msg), 37)]
    with herald.raw() as c:
        c.expect(220)
        ehlo(c)
        replies = bdat_transaction(c, sender, "bob@example.test", chunks,
                                   pipelined=True)
        assert all(r[0] == 250 for r in replies), replies
        assert c.cmd("QUIT")[0] == 221
    got = herald.wait_messages(token, "bob")
    H.split_delivered(got[0], msg)


def test_bdat_then_data_refused(herald, token):
    """RFC 3030: DATA after BDAT in the same transaction is an error."""
    with herald.raw() as c:
        c.expect(220)
        ehlo(c)
        assert c.cmd("MAIL FROM:<mix-%s@example.org>" % token)[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        c.send(b"BDAT 5\r\nhello")
        assert c.reply()[0] == 250
        code, lines = c.cmd("DATA")
        assert code == 503, (code, lines)
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("QUIT")[0] == 221
    herald.wait_queue_empty()
    assert herald.messages_with(b"mix-" + token.encode(), "alice") == []


# ---------------------------------------------------------------- sizes


@pytest.fixture(scope="module")
def small(tmp_path_factory, pki):
    import conftest
    with conftest.standard_instance(tmp_path_factory, pki, "small",
                                    message_size_limit=SIZE_LIMIT) as inst:
        yield inst


def test_size_advertised(small):
    with small.raw() as c:
        c.expect(220)
        caps = ehlo(c)
        size = [l for l in caps if l.upper().startswith("SIZE")]
        assert size and size[0].split()[1] == str(SIZE_LIMIT), caps


def test_mail_size_too_big_552(small, token):
    with small.smtp() as s:
        s.ehlo()
        code, text = s.mail("big-%s@example.org" % token,
                            ["SIZE=%d" % (SIZE_LIMIT + 1)])
        assert code == 552, (code, text)
        assert text.startswith(b"5.3.4"), text
        code, text = s.mail("ok-%s@example.org" % token,
                            ["SIZE=%d" % (SIZE_LIMIT - 1000)])
        assert code == 250, (code, text)
        s.rset()


def test_data_too_big_552(small, token):
    sender = "bigdata-%s@example.org" % token
    body = ("y" * 998 + "\r\n") * (SIZE_LIMIT // 1000 + 20)
    msg = H.make_message(token, sender=sender, body=body)
    with small.smtp() as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        code, text = s.data(msg)
        assert code == 552, (code, text)
        assert text.startswith(b"5.3.4"), text
        # the session survives and a small message still goes through
        tok2 = token + "-small"
        small_msg = H.make_message(tok2, sender=sender)
        s.rset()
        assert s.sendmail(sender, ["alice@example.test"], small_msg) == {}
    got = small.wait_messages(tok2, "alice")
    H.split_delivered(got[0], small_msg)
    small.wait_queue_empty()
    big = [m for m in small.messages_with(token, "alice")
           if tok2.encode() not in m]
    assert big == []


def test_data_just_under_limit(small, token):
    sender = "under-%s@example.org" % token
    head = len(H.make_message(token, sender=sender, body=""))
    lines = (SIZE_LIMIT - head - 2000) // 100
    body = ("z" * 98 + "\r\n") * lines
    msg = H.make_message(token, sender=sender, body=body)
    assert len(msg) < SIZE_LIMIT - 1000
    with small.smtp() as s:
        s.ehlo()
        assert s.sendmail(sender, ["bob@example.test"], msg) == {}
    got = small.wait_messages(token, "bob")
    H.split_delivered(got[0], msg)


def test_bdat_too_big_552(small, token):
    sender = "bigbdat-%s@example.org" % token
    with small.raw(timeout=20) as c:
        c.expect(220)
        ehlo(c)
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        chunk = (b"Subject: " + token.encode() + b"\r\n\r\n").ljust(
            SIZE_LIMIT // 2, b"b")
        replies = []
        for last in (False, False, True):
            c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"")
                   + chunk)
            r = c.reply()
            replies.append(r)
            if r[0] != 250 or r[0] is None:
                break
        bad = [r for r in replies if r[0] != 250]
        assert bad, replies
        assert bad[0][0] == 552 and bad[0][1][0].startswith(b"5.3.4"), replies
    small.wait_queue_empty()
    assert small.messages_with(token, "alice") == []


def test_many_tagged_recipients(herald, token):
    """30 +tag recipients of one user in one transaction: all accepted, and
    every copy says Delivered-To: the base address."""
    sender = "many-%s@example.org" % token
    rcpts = ["alice+%d@example.test" % i for i in range(30)]
    msg = H.make_message(token, sender=sender)
    with herald.smtp() as s:
        s.ehlo()
        assert s.sendmail(sender, rcpts, msg) == {}
    herald.wait_messages(token, "alice")
    herald.wait_queue_empty()
    n = len(herald.messages_with(token, "alice"))
    assert 1 <= n <= 30, n
    tags = set()
    for m in herald.messages_with(token, "alice"):
        fields = H.split_delivered(m, msg)
        tags |= set(H.header_values(fields, "Delivered-To"))
    assert tags == {b"alice@example.test"}, tags


def test_received_header_names_client(herald, token):
    sender = "rcvd-%s@example.org" % token
    msg = H.make_message(token, sender=sender)
    with herald.smtp() as s:
        s.ehlo("helo-name.example.org")
        s.sendmail(sender, ["alice@example.test"], msg)
    got = herald.wait_messages(token, "alice")
    fields = H.split_delivered(got[0], msg)
    rcvd = b" ".join(H.header_values(fields, "Received"))
    assert b"127.0.0.1" in rcvd and b"helo-name.example.org" in rcvd, rcvd
    assert re.search(rb"by mx\.example\.test", rcvd), rcvd

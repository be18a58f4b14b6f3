"""
test_remote - remote delivery (delivery/remote.c, lib/mail/smtp_client.c)
between two herald instances on their own loopback addresses, with DNS
from a real authoritative server (knotd, dnsserver.py) that only A asks,
through dns_stub_zones:

  A  a.test, alice; sends.        smtpd on 127.0.0.1 and 127.0.0.2, which
     is in its mynetworks (relay without AUTH, for SMTPUTF8 tests)
  B  b.test, bob; the MX of b.test (mx.b.test A 127.0.0.3), STARTTLS
  S  a scripted SMTP server (threads in this process), the MX of c.test
     (127.0.0.5): 550 for "reject-*", 1 s before its answer to
     "slow-*", SIZE 20000, records what it got; after a transaction
     for "drop-*" it closes the connection at the next command (as a
     server that dropped an idle connection)
  T  a server (127.0.0.6) whose STARTTLS handshake fails: the best MX of
     tlsfail.test, whose second MX is B
  nullmx.test has a null MX (RFC 7505)
  dead.test's MX (127.0.0.7) refuses connections until a test starts S
     there
  c.test is also hosted by B, for a transport (heraldctl transport add
  c.test [127.0.0.3]:port) that overrides its MX

Every MX listens on the same port (A's smtp_port). Both instances, knotd,
S and T are started and stopped by remotenet.two_instances (shared with
test_dane.py), also when a test fails.
"""
import json
import re
import smtplib
import time

import pytest

import dnsserver as D
import herald as H
import remotenet as R

pytestmark = pytest.mark.skipif(
    not D.have_tools() or not H.have_binaries("remote"),
    reason="knot/ldnsutils/python3-dnslib or the remote binary missing")

B_ADDR = "127.0.0.3"
S_ADDR = "127.0.0.5"
T_ADDR = "127.0.0.6"
D_ADDR = "127.0.0.7"
S_SIZE = 20000
# S's answer to RCPT TO:<escape-*>: ESC sequences that set a terminal's
# title and clear its screen, a BEL, a backspace
ESCAPE_REPLY = ("550 5.1.1 \x1b]0;owned\x07\x1b[2J\x1b[31mno such"
                "\x08\x08 user\x1b[0m")


def scripted(addr, handler=None):
    """S, or a server of another handler on addr (R.ScriptedServer)."""
    return R.ScriptedServer(addr, handler or ScriptedHandler)


class ScriptedHandler(R.SMTPHandler):
    def handle(self):
        seen = self.session()
        self.reply("220 mx.c.test ESMTP scripted")
        drop = drop_next = False
        for _ in range(1000):
            line = self.rfile.readline(1000)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode(errors="replace")
            seen.append(cmd)
            verb = cmd[:4].upper()
            if drop:
                return
            if verb == "RCPT" and "<drop-" in cmd:
                drop_next = True
            if verb == "EHLO":
                self.reply("250-mx.c.test\r\n250-PIPELINING\r\n"
                           "250-SIZE %d\r\n250 8BITMIME" % S_SIZE)
            elif verb == "MAIL":
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                if "<slow-" in cmd:
                    time.sleep(1.0)	# a slow server: reload meanwhile
                if "<reject-" in cmd:
                    self.reply("550 5.1.1 <%s>: no such user here"
                               % cmd.split("<")[1].split(">")[0])
                elif "<escape-" in cmd:
                    # a hostile server's terminal control sequences
                    self.reply(ESCAPE_REPLY)
                else:
                    self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                body = []
                for _ in range(100000):
                    b = self.rfile.readline(10000)
                    if not b or b == b".\r\n":
                        break
                    body.append(b)
                seen.append("BODY %d" % sum(len(b) for b in body))
                self.reply("250 2.0.0 queued as S1")
                drop = drop_next
            elif verb == "RSET":
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 5.5.1 not here")


class BadTLSHandler(R.SMTPHandler):
    """Offers STARTTLS, accepts it, then answers the handshake with
    plaintext garbage."""

    def handle(self):
        seen = self.session()
        self.wfile.write(b"220 bad.tlsfail.test ESMTP\r\n")
        for _ in range(100):
            line = self.rfile.readline(1000)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode(errors="replace")
            seen.append(cmd)
            if cmd.upper().startswith("EHLO"):
                self.wfile.write(b"250-bad.tlsfail.test\r\n"
                                 b"250 STARTTLS\r\n")
            elif cmd.upper() == "STARTTLS":
                self.wfile.write(b"220 go ahead\r\n")
                self.wfile.flush()
                self.request.recv(4096)	# the ClientHello
                self.wfile.write(b"this is not TLS\r\n" * 4)
                self.wfile.flush()
                return
            else:
                self.wfile.write(b"503 5.5.1 STARTTLS first\r\n")
            self.wfile.flush()


def mark(script):
    """Where each session of script is now, for commands_since()."""
    with script.lock:
        return [len(x) for x in script.sessions]


def commands_since(script, m):
    """The commands each session sent after mark m (a connection reused
    from before it, and the new ones); sessions that sent none left
    out."""
    with script.lock:
        got = [list(x[m[i]:]) if i < len(m) else list(x)
               for i, x in enumerate(script.sessions)]
    return [x for x in got if x]


sendmail = R.sendmail
qid_for = R.qid_for


def message(token, to, extra=""):
    return R.message(token, to, "remote", extra)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote")
    mx_port = H.free_port(B_ADDR)
    knot = D.KnotZones(folder, extra_zones={
        "b.test": "@ MX 10 mx\nmx A %s\n" % B_ADDR,
        "c.test": "@ MX 10 mx\nmx A %s\n" % S_ADDR,
        "nullmx.test": "@ MX 0 .\n",
        "dead.test": "@ MX 10 mx\nmx A %s\n" % D_ADDR,
        "tlsfail.test": "@ MX 10 bad\n@ MX 20 good\nbad A %s\n"
                        "good A %s\n" % (T_ADDR, B_ADDR),
    })
    with R.two_instances(
            folder, knot, ("b.test", "c.test", "nullmx.test",
                           "tlsfail.test", "dead.test"),
            mx_port, B_ADDR, ("b.test", "tlsfail.test"),
            servers={"script": lambda: scripted((S_ADDR, mx_port)),
                     "bad": lambda: scripted((T_ADDR, mx_port),
                                             BadTLSHandler)},
            a_listen=lambda a: "127.0.0.1:%d, 127.0.0.2:%d"
            % (a.port, a.port),
            dns_trust_anchor_file="", mynetworks="127.0.0.2/32") as net:
        yield net


def test_delivered_over_tls(net, token):
    a, b = net["a"], net["b"]
    since = a.log_size()
    sendmail(a, "alice@a.test", ["bob@b.test"], message(token, "bob@b.test"))
    got = b.wait_messages(token, "bob", domain="b.test")
    assert b"Return-Path: <alice@a.test>" in got[0]
    # A logged the TLS protocol and cipher of the session with B
    line = a.wait_log(r"mx\.b\.test\[%s\]:\d+: TLS (TLSv1\.[23]) with "
                      r"cipher \S+ .*certificate (not )?verified"
                      % re.escape(B_ADDR), since=since)
    assert line
    qid_for(a, "bob@b.test", since, "sent")
    a.wait_queue_empty(timeout=20)


def reload_remote(inst):
    """Reload, and wait until the remote agents of the old configuration
    are gone: a retired agent idle in its poll may still take one more
    request before it sees it was retired."""
    old = set(inst.children("remote"))
    inst.ctl_ok("reload")
    H.wait_for(lambda: not set(inst.children("remote")) & old, 30,
               what="the old remote agents to exit")


def dotted_message(token):
    """A message with lines that start with dots, a long line and a
    large body (two BDAT chunks), with its own Message-ID and Date so
    that A adds only its Received: line on top."""
    lines = ["From: alice@a.test", "To: bob@b.test",
             "Subject: chunks %s" % token,
             "Message-ID: <%s@a.test>" % token,
             "Date: Mon, 7 Dec 2026 03:00:00 +0000", "",
             ".leading dot", "..two dots", "x" * 900, ". a dot and space"]
    lines += ["%06d .%s" % (i, "abcdefghij" * 7) for i in range(4000)]
    lines += [".last line", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("chunking", ["yes", "no"])
def test_bdat_to_herald_byte_identical(net, token, chunking):
    """A sends to B (whose smtpd has CHUNKING) with BDAT, or with DATA
    when smtp_use_chunking = no: A's to= line says which, so does B's
    disconnect line (bdat=N or data=1), and B stores the message
    byte for byte as it was submitted, leading dots included, below
    the Received: lines of A and B."""
    a, b = net["a"], net["b"]
    a.set_config(smtp_use_chunking=chunking)
    reload_remote(a)
    try:
        since, bsince = a.log_size(), b.log_size()
        msg = dotted_message(token)
        sendmail(a, "alice@a.test", ["bob@b.test"], msg)
        got = b.wait_messages(token, "bob", domain="b.test")[0]
        # the Maildir holds LF lines; what A sent B, CRLF lines
        sent = msg.encode()
        assert len(sent) > 262144
        assert got.endswith(sent), (len(got), len(sent))
        assert got[:-len(sent)].count(b"\nReceived: ") == 2, got[:400]
        how = "BDAT LAST" if chunking == "yes" else "end of DATA"
        a.wait_log(r"to=<bob@b\.test>, relay=mx\.b\.test\[%s\]:\d+, "
                   r"dsn=2\.0\.0, status=delivered \(.*\(in reply to %s\)"
                   r"\)$" % (re.escape(B_ADDR), how), since=since)
        # B says how the client sent it when the cached connection ends
        used = r"bdat=2" if chunking == "yes" else r"data=1"
        b.wait_log(r"disconnect from \[[\d.]+\](?=.* rcpt=1 )(?=.* %s )"
                   % used, timeout=30, since=bsince)
    finally:
        a.set_config(smtp_use_chunking=None)
        reload_remote(a)
    a.wait_queue_empty(timeout=20)


def test_down_defers_then_flush_delivers(net, token):
    a, b = net["a"], net["b"]
    b.stop()
    try:
        since = a.log_size()
        sendmail(a, "alice@a.test", ["bob@b.test"],
                 message(token, "bob@b.test"))
        qid = qid_for(a, "bob@b.test", since, "deferred")
        H.wait_for(lambda: any(p.name == qid for p in
                               a.queue_files(("deferred",))),
                   15, what="%s in deferred/" % qid)
        r = a.ctl("queue", "show", qid)
        assert r.returncode == 0, r
        assert re.search(r"4\.4\.1 connect to mx\.b\.test\[127\.0\.0\.3\]"
                         r":\d+: Connection refused", r.stdout), r.stdout
    finally:
        b.start()
    assert a.ctl("queue", "flush").returncode == 0
    b.wait_messages(token, "bob", domain="b.test")
    a.wait_queue_empty(timeout=20)


def test_550_bounces_to_sender(net, token):
    a = net["a"]
    since = a.log_size()
    sendmail(a, "alice@a.test", ["reject-x@c.test"],
             message(token, "reject-x@c.test"))
    qid_for(a, "reject-x@c.test", since, "bounced")
    dsn = a.wait_messages(token, "alice", domain="a.test")[0]
    assert b"multipart/report" in dsn
    assert b"550 5.1.1 <reject-x@c.test>: no such user here" in dsn
    assert b"Final-Recipient: rfc822; reject-x@c.test" in dsn or \
        b"Final-Recipient: rfc822;reject-x@c.test" in dsn


def test_hostile_reply_logged_without_control_bytes(net, token):
    """A server's reply text reaches remote's log line (and qmgr's)
    without its control bytes: an MX anyone can run must not drive the
    terminal or log viewer of the admin who reads herald's log."""
    a = net["a"]
    since = a.log_size()
    sendmail(a, "alice@a.test", ["escape-x@c.test"],
             message(token, "escape-x@c.test"))
    qid_for(a, "escape-x@c.test", since, "bounced")
    a.wait_messages(token, "alice", domain="a.test")
    with open(a.log_path, "rb") as f:
        f.seek(since)
        logged = f.read()
    lines = [l for l in logged.split(b"\n") if b"escape-x@c.test" in l]
    assert any(b"no such" in l for l in lines), logged[-2000:]
    for l in lines:
        bad = sorted({c for c in l if c < 0x20 or c == 0x7f})
        assert not bad, (bad, l)


def test_null_mx_bounces_at_once(net, token):
    a = net["a"]
    since = a.log_size()
    t0 = time.monotonic()
    sendmail(a, "alice@a.test", ["x@nullmx.test"],
             message(token, "x@nullmx.test"))
    qid_for(a, "x@nullmx.test", since, "bounced")
    assert time.monotonic() - t0 < 20
    dsn = a.wait_messages(token, "alice", domain="a.test")[0]
    assert b"5.1.10" in dsn and b"null MX" in dsn


def test_over_size_bounces_without_data(net, token):
    a, script = net["a"], net["script"]
    before = mark(script)
    since = a.log_size()
    sendmail(a, "alice@a.test", ["big@c.test"],
             message(token, "big@c.test", "x" * 70 + "\n") +
             ("y" * 70 + "\n") * 400)
    qid_for(a, "big@c.test", since, "bounced")
    dsn = a.wait_messages(token, "alice", domain="a.test")[0]
    assert b"5.3.4" in dsn
    # a new connection, or one cached from an earlier test (RSET)
    sessions = commands_since(script, before)
    assert sessions, "A never talked to S"
    for s in sessions:
        assert not any(c.upper().startswith(("MAIL", "DATA")) for c in s), s


def test_one_550_one_250(net, token):
    a, script = net["a"], net["script"]
    before = mark(script)
    since = a.log_size()
    sendmail(a, "alice@a.test", ["ok@c.test", "reject-y@c.test"],
             message(token, "ok@c.test, reject-y@c.test"))
    qid_for(a, "ok@c.test", since, "sent")
    qid_for(a, "reject-y@c.test", since, "bounced")
    dsn = a.wait_messages(token, "alice", domain="a.test")[0]
    assert b"reject-y@c.test" in dsn
    assert b"Final-Recipient: rfc822; ok@c.test" not in dsn
    # one transaction: MAIL and both RCPTs pipelined, then DATA
    # (on a new connection after EHLO, or on a cached one after RSET)
    s = [x for x in commands_since(script, before) if any(
        c.startswith("RCPT") for c in x)]
    assert len(s) == 1, commands_since(script, before)
    verbs = [c.split()[0].split(":")[0].upper() for c in s[0]]
    assert verbs[0] in ("EHLO", "RSET"), s[0]
    assert verbs[1:5] == ["MAIL", "RCPT", "RCPT", "DATA"], s[0]
    a.wait_queue_empty(timeout=20)


def test_failed_handshake_tries_next_mx(net, token):
    """The best MX offers STARTTLS and fails the handshake: the message
    goes to the next MX, never in plaintext to the first."""
    a, b, bad = net["a"], net["b"], net["bad"]
    before = len(bad.sessions)
    since = a.log_size()
    sendmail(a, "alice@a.test", ["bob@tlsfail.test"],
             message(token, "bob@tlsfail.test"))
    b.wait_messages(token, "bob", domain="tlsfail.test")
    a.wait_log(r"bad\.tlsfail\.test\[%s\]:\d+: TLS handshake with "
               r"bad\.tlsfail\.test failed" % re.escape(T_ADDR), since=since)
    a.wait_log(r"good\.tlsfail\.test\[%s\]:\d+: TLS TLSv1"
               % re.escape(B_ADDR), since=since)
    sessions = bad.sessions[before:]
    assert sessions, "the best MX was never tried"
    for s in sessions:
        assert [c.split()[0].upper() for c in s] == ["EHLO", "STARTTLS"], s


def test_smtputf8_body_only_needs_8bitmime(net, token):
    """SMTPUTF8 asked, but the addresses and the header are ASCII and
    only the body is UTF-8: S (8BITMIME, no SMTPUTF8) gets the message
    with BODY=8BITMIME (RFC 6531 3.2), it does not bounce with 5.6.7."""
    a, script = net["a"], net["script"]
    before = mark(script)
    since = a.log_size()
    msg = message(token, "utf8body@c.test", "caf\u00e9\n")
    with smtplib.SMTP("127.0.0.2", a.port, timeout=30,
                      source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.a.test")
        s.sendmail("alice@a.test", ["utf8body@c.test"],
                   msg.replace("\n", "\r\n").encode(),
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    qid_for(a, "utf8body@c.test", since, "sent")
    mails = [c for x in commands_since(script, before) for c in x
             if c.upper().startswith("MAIL")]
    assert mails and "BODY=8BITMIME" in mails[-1], mails
    assert "SMTPUTF8" not in mails[-1], mails
    a.wait_queue_empty(timeout=20)


def test_short_delivery_timeout_still_delivers(net, token):
    """delivery_timeout may be as short as 1 s: the time remote keeps
    to answer qmgr is at most half of it, so a 4 s setting still leaves
    the agent time to reach the MX (with a fixed 5 s margin its deadline
    lay in the past and nothing was tried)."""
    a, b = net["a"], net["b"]
    a.set_config(delivery_timeout="4s")
    a.ctl_ok("reload")
    try:
        since = a.log_size()
        sendmail(a, "alice@a.test", ["bob@b.test"],
                 message(token, "bob@b.test"))
        b.wait_messages(token, "bob", domain="b.test")
        qid_for(a, "bob@b.test", since, "sent")
    finally:
        a.set_config(delivery_timeout=None)
        a.ctl_ok("reload")


def test_reload_keeps_requests_on_their_way(net, token):
    """A reload while the remote agent talks to a slow server: the agent
    finishes, and the requests qmgr already sent it on the same
    connection are served too, not turned into deferrals (remote once
    left at once when stopping, unlike local)."""
    a, script = net["a"], net["script"]
    since = a.log_size()
    rcpts = ["slow-%d-%s@c.test" % (i, token) for i in range(4)]
    for r in rcpts:
        sendmail(a, "alice@a.test", [r], message(token, r))
    deadline = time.monotonic() + 20
    while not any("<slow-" in c for x in list(script.sessions) for c in x):
        assert time.monotonic() < deadline, "no RCPT reached the server"
        time.sleep(0.05)
    a.ctl_ok("reload")
    for r in rcpts:
        qid_for(a, r, since, "sent")
    log = a.log_text(since)
    assert "delivery agent died" not in log, log
    assert "status=deferred" not in log, log


def rcpt_sessions(script, token):
    """The sessions of script with a RCPT for a recipient with token."""
    with script.lock:
        return [list(x) for x in script.sessions
                if any(c.startswith("RCPT") and token in c for c in x)]


def set_cache(a, limit):
    """Set smtp_connection_cache_time_limit and reload; back when the
    new qmgr runs (the old one, and the remote agents it used with the
    old setting, are gone then)."""
    since = a.log_size()
    old = a.children("remote")
    a.set_config(smtp_connection_cache_time_limit=limit)
    a.ctl_ok("reload")
    a.wait_log(r"herald/qmgr\[\d+\]: started", since=since)
    # an old agent still finishing (or not yet told) could take the new
    # qmgr's first request with the old setting
    assert H.wait_dead(old, 15), "old remote agents still running"


def test_connection_reused_for_the_same_domain(net, token):
    """Five messages to c.test back to back: the remote agent keeps the
    connection to S open after each and sends the next message over it
    after RSET, so S sees fewer connections than messages (qmgr gives a
    domain's next request to the agent that served the domain last)."""
    a, script = net["a"], net["script"]
    set_cache(a, "10s")	# the default 2 s, with room on a slow machine
    try:
        since = a.log_size()
        rcpts = ["reuse-%d-%s@c.test" % (i, token) for i in range(5)]
        for r in rcpts:
            sendmail(a, "alice@a.test", [r], message(token, r))
        for r in rcpts:
            qid_for(a, r, since, "sent")
        sessions = rcpt_sessions(script, token)
        assert 1 <= len(sessions) < 5, sessions
        reused = max(sessions, key=lambda x: sum(
            c.startswith("MAIL") for c in x))
        verbs = [c.split()[0].split(":")[0].upper() for c in reused]
        assert verbs.count("MAIL") >= 2, reused
        # RSET before every transaction after the first on a connection
        first = verbs.index("MAIL")
        for i, v in enumerate(verbs):
            if v == "MAIL" and i > first:
                assert verbs[i - 1] == "RSET", reused
        assert a.wait_log(r"reusing connection to mx\.c\.test\[%s\]:\d+, "
                          r"transaction 2" % re.escape(S_ADDR), since=since)
        assert "status=deferred" not in a.log_text(since)
    finally:
        set_cache(a, None)


def test_connection_cache_off(net, token):
    """smtp_connection_cache_time_limit = 0: one connection a message,
    each ended with QUIT."""
    a, script = net["a"], net["script"]
    set_cache(a, "0")
    try:
        since = a.log_size()
        rcpts = ["off-%d-%s@c.test" % (i, token) for i in range(5)]
        for r in rcpts:
            sendmail(a, "alice@a.test", [r], message(token, r))
        for r in rcpts:
            qid_for(a, r, since, "sent")
        H.wait_for(lambda: all(x and x[-1] == "QUIT" for x in
                               rcpt_sessions(script, token)),
                   10, what="QUIT on every connection")
        sessions = rcpt_sessions(script, token)
        assert len(sessions) == 5, sessions
        assert not any("RSET" in x for x in sessions), sessions
        assert "reusing connection" not in a.log_text(since)
    finally:
        set_cache(a, None)


def test_cached_connection_dropped_connects_anew(net, token):
    """S drops the connection cached after a "drop-*" transaction: the
    next message to c.test goes over a fresh connection at once, not
    deferred."""
    a, script = net["a"], net["script"]
    set_cache(a, "10s")
    try:
        since = a.log_size()
        first = "drop-%s@c.test" % token
        second = "after-%s@c.test" % token
        sendmail(a, "alice@a.test", [first], message(token, first))
        qid_for(a, first, since, "sent")
        sendmail(a, "alice@a.test", [second], message(token, second))
        qid_for(a, second, since, "sent")
        a.wait_log(r"mx\.c\.test\[%s\]:\d+: cached connection is gone "
                   r"or refused RSET; connecting anew" % re.escape(S_ADDR),
                   since=since)
        log = a.log_text(since)
        assert "status=deferred" not in log, log
        s = rcpt_sessions(script, "after-" + token)
        assert len(s) == 1 and s[0][0].startswith("EHLO"), s
    finally:
        set_cache(a, None)


def test_connection_reused_over_tls(net, token):
    """A cached connection keeps its TLS session: the second message to
    B goes over the same TLS connection (no new handshake logged)."""
    a, b = net["a"], net["b"]
    set_cache(a, "10s")
    try:
        since = a.log_size()
        sendmail(a, "alice@a.test", ["bob@b.test"],
                 message(token + "-1", "bob@b.test"))
        qid = qid_for(a, "bob@b.test", since, "sent")
        # remote logs "sent" before it answers qmgr: until qmgr has the
        # answer (and removed the file) the agent is busy, and a second
        # message would go to another agent with no connection cached
        a.wait_log(r"%s: removed" % qid, since=since)
        mid = a.log_size()
        sendmail(a, "alice@a.test", ["bob@b.test"],
                 message(token + "-2", "bob@b.test"))
        qid_for(a, "bob@b.test", mid, "sent")
        b.wait_messages(token + "-2", "bob", domain="b.test")
        assert a.wait_log(r"reusing connection to mx\.b\.test\[%s\]:\d+, "
                          r"transaction 2" % re.escape(B_ADDR), since=mid)
        assert " TLS TLSv1" not in a.log_text(mid), a.log_text(mid)
    finally:
        set_cache(a, None)


def test_dead_destination_deferred_without_connecting(net, token):
    """Eight messages to dead.test, whose MX refuses connections: each
    refusal lowers the domain's concurrency (5, 4, 3, 2), the fourth
    makes it dead, and the other messages are deferred without a
    connection ("delivery temporarily suspended"); once its server is up,
    heraldctl queue flush delivers them all."""
    a = net["a"]
    since = a.log_size()
    rcpts = ["dead-%d-%s@dead.test" % (i, token) for i in range(8)]
    for r in rcpts:
        sendmail(a, "alice@a.test", [r], message(token, r))
    for r in rcpts:
        qid_for(a, r, since, "deferred")
    a.wait_log(r"destination dead\.test: delivery temporarily suspended "
               r"for 3600s: connect to mx\.dead\.test\[%s\]:\d+: "
               r"Connection refused" % re.escape(D_ADDR), since=since)
    log = a.log_text(since)
    tries = re.findall(r"herald/remote\[\d+\]: %s: connect to "
                       r"mx\.dead\.test\[%s\]:\d+: Connection refused"
                       % (H.QID_RE, re.escape(D_ADDR)), log)
    suspended = re.findall(r"status=deferred \(delivery temporarily "
                           r"suspended: connect to mx\.dead\.test", log)
    # four refusals in a row make it dead (at most the initial
    # concurrency's worth were out by then); the rest never connect
    assert 1 <= len(tries) <= 5, log
    assert len(suspended) >= len(rcpts) - 5, log
    assert len(tries) + len(suspended) == len(rcpts), log
    # heraldctl status shows the dead domain and why
    out = a.ctl_ok("status").stdout
    assert re.search(r"dead\.test +\d+ +0 +dead for \d+s: connect to "
                     r"mx\.dead\.test\[%s\]" % re.escape(D_ADDR), out), out
    doc = json.loads(a.ctl_ok("--json", "status").stdout)
    dead = [d for d in doc["remote_destinations"]
            if d["domain"] == "dead.test"]
    assert len(dead) == 1 and dead[0]["dead"], doc
    assert "Connection refused" in dead[0]["reason"], doc
    # the server comes back; the flush tries the domain again
    srv = scripted((D_ADDR, net["mx_port"])).serve_in_thread()
    try:
        mid = a.log_size()
        assert a.ctl("queue", "flush").returncode == 0
        a.wait_log(r"destination dead\.test: delivery resumed \(queue "
                   r"flush\)", since=mid)
        for r in rcpts:
            qid_for(a, r, mid, "sent")
        a.wait_queue_empty(timeout=20)
        assert len(rcpt_sessions(srv, token)) >= 1
        with srv.lock:
            got = sum(1 for x in srv.sessions for c in x
                      if c.startswith("RCPT") and token in c)
        assert got == len(rcpts)
    finally:
        srv.stop()


def test_transport_overrides_mx(net, token):
    """heraldctl transport add sends c.test's mail to B ([addr]:port, no
    MX lookup; then b.test:port, by b.test's MX) instead of its MX S, and
    a session cached for S is not reused for it; transport del gives
    c.test its MX back, at once."""
    a, b, script = net["a"], net["b"], net["script"]
    b.add_domain("c.test")
    b.add_user("carol@c.test")
    a.ctl_ok("transport", "add", "c.test", "[%s]:%d"
             % (B_ADDR, net["mx_port"]))
    try:
        before = mark(script)
        since = a.log_size()
        sendmail(a, "alice@a.test", ["carol@c.test"],
                 message(token, "carol@c.test"))
        b.wait_messages(token, "carol", domain="c.test")
        a.wait_log(r"to=<carol@c\.test>, relay=127\.0\.0\.3\[127\.0\.0\.3\]"
                   r":%d, .*status=delivered" % net["mx_port"], since=since)
        assert not any(any("carol@c.test" in c for c in s)
                       for s in commands_since(script, before))
        # "host:port" without brackets: the MX hosts of host (b.test's
        # is mx.b.test, B)
        a.ctl_ok("transport", "add", "c.test", "b.test:%d"
                 % net["mx_port"])
        since = a.log_size()
        sendmail(a, "alice@a.test", ["carol@c.test"],
                 message(token + "-mx", "carol@c.test"))
        b.wait_messages(token + "-mx", "carol", domain="c.test")
        a.wait_log(r"to=<carol@c\.test>, relay=mx\.b\.test\[127\.0\.0\.3\]"
                   r":%d, .*status=delivered" % net["mx_port"], since=since)
        assert not any(any("carol@c.test" in c for c in s)
                       for s in commands_since(script, before))
    finally:
        a.ctl_ok("transport", "del", "c.test")
    before = mark(script)
    since = a.log_size()
    sendmail(a, "alice@a.test", ["back@c.test"], message(token, "back@c.test"))
    qid_for(a, "back@c.test", since, "sent")
    assert any(any("<back@c.test>" in c for c in s)
               for s in commands_since(script, before))


def test_tls_policy_verify_defers_unverified(net, token):
    """tls-policy verify for b.test: B's certificate (test CA, not
    trusted by A, for another name) does not verify, so the mail waits
    with the reason; without the policy it goes (may)."""
    a, b = net["a"], net["b"]
    a.ctl_ok("tls-policy", "set", "b.test", "verify")
    try:
        since = a.log_size()
        sendmail(a, "alice@a.test", ["bob@b.test"],
                 message(token, "bob@b.test"))
        qid = qid_for(a, "bob@b.test", since, "deferred")
        H.wait_for(lambda: any(p.name == qid for p in
                               a.queue_files(("deferred",))),
                   15, what="%s in deferred/" % qid)
        r = a.ctl("queue", "show", qid)
        # the handshake itself fails (SSL_VERIFY_PEER), with 4.7.5
        assert "4.7.5" in r.stdout, r.stdout
        assert "TLS handshake with mx.b.test failed" in r.stdout, r.stdout
        assert "certificate verify failed" in r.stdout, r.stdout
        assert not b.messages_with(token, "bob", "b.test")
    finally:
        a.ctl_ok("tls-policy", "del", "b.test")
    assert a.ctl("queue", "flush").returncode == 0
    b.wait_messages(token, "bob", domain="b.test")


def test_transport_that_does_not_resolve_defers(net, token):
    """A transport whose host does not exist (NXDOMAIN) is the admin's
    typo: the mail waits with the reason instead of bouncing."""
    a = net["a"]
    a.ctl_ok("transport", "add", "typo.test", "nosuch.b.test")
    try:
        since = a.log_size()
        sendmail(a, "alice@a.test", ["x@typo.test"],
                 message(token, "x@typo.test"))
        qid = qid_for(a, "x@typo.test", since, "deferred")
        H.wait_for(lambda: any(p.name == qid for p in
                               a.queue_files(("deferred",))),
                   15, what="%s in deferred/" % qid)
        r = a.ctl("queue", "show", qid)
        assert "4.4.4 transport nosuch.b.test: domain nosuch.b.test does " \
            "not exist" in r.stdout, r.stdout
    finally:
        a.ctl_ok("transport", "del", "typo.test")
    a.ctl_ok("queue", "delete", qid)

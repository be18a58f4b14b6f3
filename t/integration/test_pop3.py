"""
pop3d: RFC 1939 with the RFC 2449 / 2595 / 5034 extensions, spoken by
Python's poplib and by a raw line client, against a real instance.

Logins (USER/PASS, AUTH PLAIN with and without an initial response, AUTH
LOGIN, wrong passwords), the maildrop (STAT/LIST/UIDL against the Maildir,
RETR bytes with CRLF and dot-stuffing, TOP, DELE/RSET/QUIT, a dropped
connection deleting nothing, the [IN-USE] lock, UIDLs across sessions and
IMAP-style renames), TLS (STLS with certificate checks, pop3s, plaintext
refused with auth_plaintext=never), pipelining, the bounds (line length,
commands before login, errors, idle timeout, per-client sessions, other
protocols), authd dying under a login, and a graceful stop.
"""
import base64
import os
import poplib
import re
import signal
import socket
import ssl
import threading
import time

import pytest

import herald as H

GREETING = b"+OK herald POP3 ready"
PLAINTEXT_REFUSED = (b"-ERR [AUTH] Plaintext authentication disallowed on "
                     b"non-secure (SSL/TLS) connections.")


# ---------------------------------------------------------------- helpers


class RawPOP(H.RawLines):
    """RawLines with POP3 replies: exact bytes for hostile scripts."""

    def __init__(self, port, timeout=15.0, tls_ctx=None, source=None):
        super().__init__("127.0.0.1", port, timeout, source)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock,
                                            server_hostname="mx.example.test")

    def line(self, timeout=None):
        return self.readline(timeout).rstrip(b"\r\n")

    def cmd(self, text, timeout=None):
        self.send(text + "\r\n" if isinstance(text, str) else
                  text + b"\r\n")
        return self.line(timeout)

    def multi_raw(self, timeout=None):
        """The body of a multi-line reply as sent (through the ".CRLF"
        terminator, which is not included). The lines are joined once at
        the end: adding each to a bytes copied a 3 MB body 40,000 times."""
        out = []
        while True:
            ln = self.readline(timeout)
            if ln == b"":
                raise AssertionError("EOF inside a multi-line reply: %r"
                                     % b"".join(out)[-200:])
            if ln == b".\r\n":
                return b"".join(out)
            out.append(ln)

    def eof(self, timeout=10.0):
        """True if the server closes within timeout (data is dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self._fill(max(deadline - time.monotonic(), 0.01))
            except socket.timeout:
                return False
            except OSError:
                return True
            if not chunk:
                return True
        return False


def new_user(inst, token, password=None):
    """A fresh user for one test (the module instance is shared)."""
    local = "p" + re.sub(r"[^a-z0-9]", "", token.lower())[-24:]
    addr = "%s@example.test" % local
    password = password or "pw-" + local
    inst.add_user(addr, password)
    return addr, password, local


def deliver(inst, addr, token, body=None, count=1):
    """Send count messages carrying token to addr; wait until delivered.
    Returns the messages as sent."""
    local = addr.split("@")[0]
    sent = []
    with inst.smtp() as s:
        for i in range(count):
            msg = H.make_message("%s-%d" % (token, i), to=addr, body=body)
            s.sendmail("sender@example.org", [addr], msg)
            sent.append(msg)
    inst.wait_messages(token, local, count=count)
    return sent


def wire(data):
    """A stored file as RETR must send it: LF -> CRLF, CRLF kept."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def maildir_state(inst, local):
    """{base name: (path, wire size)} of the messages in new/ and cur/."""
    out = {}
    for p in inst.maildir_files(local):
        out[p.name.split(":")[0]] = (p, len(wire(p.read_bytes())))
    return out


def pop(inst, timeout=15):
    return poplib.POP3("127.0.0.1", inst.pop3_port, timeout=timeout)


def login(inst, addr, password, timeout=15):
    p = pop(inst, timeout)
    p.user(addr)
    p.pass_(password)
    return p


def raw_login(inst, addr, password):
    c = RawPOP(inst.pop3_port)
    assert c.line() == GREETING
    assert c.cmd("USER " + addr) == b"+OK"
    r = c.cmd("PASS " + password)
    assert r.startswith(b"+OK"), r
    return c


def capa_of(lines):
    return set(ln.decode().split()[0] for ln in lines if ln)


def sanitized(pid):
    """True if pid runs with AddressSanitizer."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def pop3d_pids(inst):
    return set(inst.children("pop3d"))


# ---------------------------------------------------------------- basics


def test_greeting_and_capa(herald, token):
    addr, pw, _ = new_user(herald, token)
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("CAPA") == b"+OK Capability list follows"
        caps = c.multi_raw().split(b"\r\n")
        names = capa_of(caps)
        for want in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                     "PIPELINING", "USER", "SASL", "STLS",
                     "IMPLEMENTATION"):
            assert want in names, caps
        sasl = [ln for ln in caps if ln.startswith(b"SASL ")][0].split()
        assert set(sasl[1:]) == {b"PLAIN", b"LOGIN"}, caps
        assert c.cmd("USER " + addr) == b"+OK"
        assert c.cmd("PASS " + pw).startswith(b"+OK")
        assert c.cmd("CAPA").startswith(b"+OK")
        after = capa_of(c.multi_raw().split(b"\r\n"))
        assert not after & {"STLS", "USER", "SASL"}, after
        assert {"TOP", "UIDL", "PIPELINING"} <= after
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.eof()


def test_user_pass_stat_list_uidl(herald, token):
    addr, pw, local = new_user(herald, token)
    since = herald.log_size()
    deliver(herald, addr, token, count=3,
            body="first line\r\n.starts with a dot\r\n")
    assert len(list((herald.maildir(local) / "new").iterdir())) == 3
    p = login(herald, addr, pw)
    try:
        # login moved new/ to cur/ ("name" -> "name:2,")
        assert list((herald.maildir(local) / "new").iterdir()) == []
        cur = sorted(os.listdir(herald.maildir(local) / "cur"))
        assert len(cur) == 3 and all(n.endswith(":2,") for n in cur), cur
        state = maildir_state(herald, local)
        count, size = p.stat()
        assert count == 3
        assert size == sum(w for _p, w in state.values())
        resp, lines, _ = p.list()
        sizes = [int(ln.split()[1]) for ln in lines]
        assert [int(ln.split()[0]) for ln in lines] == [1, 2, 3]
        resp, ulines, _ = p.uidl()
        uids = [ln.split()[1].decode() for ln in ulines]
        assert sorted(uids) == sorted(state), (uids, list(state))
        for uid, sz in zip(uids, sizes):
            assert state[uid][1] == sz
            # W= in the name is the same number
            assert ",W=%d" % sz in uid, uid
        assert p.list(2).split()[2] == str(sizes[1]).encode()
        assert p.uidl(3).split()[2] == uids[2].encode()
        # numbers out of range
        for bad in ("0", "4", "x", "-1"):
            with pytest.raises(poplib.error_proto):
                p.list(bad)
        p.quit()
    finally:
        p.close()
    log = herald.log_text(since)
    assert re.search(r"pop3d\[\d+\]: login: user=<%s> client=\[127\.0\.0\.1\]"
                     r" method=USER tls=no" % re.escape(addr), log), log
    assert re.search(r"logout: user=<%s> top=0 retr=0/0 del=0/3 size=%d"
                     % (re.escape(addr), size), log), log
    assert pw not in log


def test_retr_exact_bytes_and_dot_stuffing(herald, token):
    addr, pw, local = new_user(herald, token)
    body = ("plain\r\n.one dot\r\n..two dots\r\n.\r\nnot.at.start\r\n"
            "last\r\n")
    deliver(herald, addr, token, body=body)
    with raw_login(herald, addr, pw) as c:
        (path, size), = maildir_state(herald, local).values()
        stored = path.read_bytes()
        assert b"\n.one dot\n" in stored	# stored with LF
        r = c.cmd("RETR 1")
        assert r == b"+OK %d octets" % size, r
        raw = c.multi_raw()
        # dot-stuffed on the wire, CRLF throughout, no bare LF or CRCR
        assert b"\r\n..one dot\r\n...two dots\r\n..\r\nnot.at.start\r\n" \
            in raw, raw
        assert re.search(rb"(?<!\r)\n", raw) is None
        assert b"\r\r" not in raw
        unstuffed = re.sub(rb"(?m)^\.", b"", raw)
        assert unstuffed == wire(stored)
        assert len(unstuffed) == size
        assert c.cmd("QUIT").startswith(b"+OK")
    # poplib agrees (it undoes the dot-stuffing)
    p = login(herald, addr, pw)
    try:
        resp, lines, octets = p.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == wire(stored)
        assert b".one dot" in lines and b"..two dots" in lines
        p.quit()
    finally:
        p.close()


def test_top(herald, token):
    addr, pw, local = new_user(herald, token)
    deliver(herald, addr, token, body="b1\r\n.b2\r\nb3\r\n")
    (path, _size), = maildir_state(herald, local).values()
    stored = wire(path.read_bytes())
    head, _, bodytext = stored.partition(b"\r\n\r\n")
    with raw_login(herald, addr, pw) as c:
        assert c.cmd("TOP 1 0").startswith(b"+OK")
        assert c.multi_raw() == head + b"\r\n\r\n"
        assert c.cmd("TOP 1 2").startswith(b"+OK")
        assert c.multi_raw() == head + b"\r\n\r\nb1\r\n..b2\r\n"
        assert c.cmd("TOP 1 100").startswith(b"+OK")
        assert c.multi_raw() == head + b"\r\n\r\nb1\r\n..b2\r\nb3\r\n"
        assert c.cmd("TOP 1").startswith(b"-ERR")
        assert c.cmd("TOP 2 1") == b"-ERR no such message"
        assert c.cmd("TOP 1 x").startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"+OK")


def test_dele_quit_removes(herald, token):
    addr, pw, local = new_user(herald, token)
    since = herald.log_size()
    deliver(herald, addr, token, count=3)
    p = login(herald, addr, pw)
    try:
        uids = [ln.split()[1].decode() for ln in p.uidl()[1]]
        assert p.dele(1).startswith(b"+OK")
        assert p.dele(3).startswith(b"+OK")
        # deleted messages are gone for every command
        with pytest.raises(poplib.error_proto, match="no such message"):
            p.retr(1)
        with pytest.raises(poplib.error_proto, match="no such message"):
            p.dele(1)
        with pytest.raises(poplib.error_proto, match="no such message"):
            p.list(3)
        assert [ln.split()[0] for ln in p.list()[1]] == [b"2"]
        assert p.stat()[0] == 1
        # still on disk until QUIT
        assert len(herald.maildir_files(local)) == 3
        assert p.quit().startswith(b"+OK")
    finally:
        p.close()
    left = maildir_state(herald, local)
    assert list(left) == [uids[1]], (left, uids)
    assert re.search(r"logout: user=<%s> top=0 retr=0/0 del=2/3"
                     % re.escape(addr), herald.log_text(since))


def test_dele_then_dropped_connection_keeps(herald, token):
    addr, pw, local = new_user(herald, token)
    since = herald.log_size()
    deliver(herald, addr, token, count=2)
    c = raw_login(herald, addr, pw)
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.cmd("DELE 2").startswith(b"+OK")
    c.close()	# no QUIT
    herald.wait_log(r"logout: user=<%s>.*nothing deleted" % re.escape(addr),
                    since=since)
    assert len(herald.maildir_files(local)) == 2
    # and the lock was released: a new session sees both
    p = login(herald, addr, pw)
    try:
        assert p.stat()[0] == 2
        p.quit()
    finally:
        p.close()


def test_rset(herald, token):
    addr, pw, local = new_user(herald, token)
    deliver(herald, addr, token, count=2)
    p = login(herald, addr, pw)
    try:
        total = p.stat()[1]
        p.dele(1)
        p.dele(2)
        assert p.stat() == (0, 0)
        r = p.rset()
        assert r.startswith(b"+OK"), r
        assert p.stat() == (2, total)
        p.quit()
    finally:
        p.close()
    assert len(herald.maildir_files(local)) == 2


# wrong passwords to the module's instance come from these, one a test:
# authd delays every later answer to an address with recent failures,
# success included, so failing from 127.0.0.1 would make each login of
# the tests after it wait seconds
FAILING_PASS = "127.0.0.4"
FAILING_AUTH = "127.0.0.5"


def test_wrong_password(herald, token):
    addr, pw, _ = new_user(herald, token)
    since = herald.log_size()
    with RawPOP(herald.pop3_port, source=FAILING_PASS) as c:
        assert c.line() == GREETING
        assert c.cmd("USER " + addr) == b"+OK"
        assert c.cmd("PASS wrong-" + pw) == \
            b"-ERR [AUTH] Authentication failed."
        # not logged in
        assert c.cmd("STAT").startswith(b"-ERR")
        assert c.cmd("PASS " + pw).startswith(b"-ERR")	# USER first
        assert c.cmd("USER " + addr) == b"+OK"
        assert c.cmd("PASS " + pw).startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")
    log = herald.log_text(since)
    assert "authentication failed: user=<%s>" % addr in log
    assert "wrong-" + pw not in log


def test_auth_plain_with_and_without_ir(herald, token):
    addr, pw, _ = new_user(herald, token)
    since = herald.log_size()
    cred = base64.b64encode(b"\0" + addr.encode() + b"\0" +
                            pw.encode()).decode()
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("AUTH PLAIN " + cred).startswith(b"+OK")
        assert c.cmd("STAT").startswith(b"+OK 0 0")
        assert c.cmd("QUIT").startswith(b"+OK")
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd(cred).startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")
    assert re.search(r"login: user=<%s> client=\[127\.0\.0\.1\] "
                     r"method=PLAIN tls=no" % re.escape(addr),
                     herald.log_text(since))


def test_auth_login_and_cancel_and_failure(herald, token):
    addr, pw, _ = new_user(herald, token)
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    with RawPOP(herald.pop3_port, source=FAILING_AUTH) as c:
        assert c.line() == GREETING
        r = c.cmd("AUTH")
        assert r == b"+OK"
        assert set(c.multi_raw().split()) == {b"PLAIN", b"LOGIN"}
        assert c.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
        assert c.cmd("*").startswith(b"-ERR")	# cancelled
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("!!notbase64!!").startswith(b"-ERR")
        assert c.cmd("AUTH PLAIN " + b64("\0%s\0wrong" % addr)) == \
            b"-ERR [AUTH] Authentication failed."
        assert c.cmd("AUTH CRAM-MD5").startswith(b"-ERR")
        assert c.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
        assert c.cmd(b64(addr)) == b"+ " + b64("Password:").encode()
        assert c.cmd(b64(pw)).startswith(b"+OK")
        assert c.cmd("AUTH LOGIN").startswith(b"-ERR")	# logged in
        assert c.cmd("QUIT").startswith(b"+OK")


def test_in_use(herald, token):
    addr, pw, local = new_user(herald, token)
    deliver(herald, addr, token)
    first = login(herald, addr, pw)
    try:
        with RawPOP(herald.pop3_port) as c:
            assert c.line() == GREETING
            assert c.cmd("USER " + addr) == b"+OK"
            assert c.cmd("PASS " + pw) == \
                b"-ERR [IN-USE] Mailbox is locked by another session."
            # back in AUTHORIZATION
            assert c.cmd("STAT").startswith(b"-ERR")
            first.quit()
            assert c.cmd("USER " + addr) == b"+OK"
            assert c.cmd("PASS " + pw).startswith(b"+OK")
            assert c.cmd("STAT").startswith(b"+OK 1 ")
            assert c.cmd("QUIT").startswith(b"+OK")
    finally:
        first.close()


def test_uidl_stable_across_sessions_and_renames(herald, token):
    addr, pw, local = new_user(herald, token)
    deliver(herald, addr, token, count=3)
    p = login(herald, addr, pw)
    first = p.uidl()[1]
    sizes = p.list()[1]
    p.quit()
    # an IMAP session sets \Seen: cur/name:2, -> cur/name:2,S
    cur = herald.maildir(local) / "cur"
    for name in os.listdir(cur):
        assert name.endswith(":2,")
        os.rename(cur / name, cur / (name + "S"))
    p = login(herald, addr, pw)
    try:
        assert p.uidl()[1] == first
        assert p.list()[1] == sizes
        # and the renamed file is found once more while the session runs
        name = sorted(os.listdir(cur))[1]
        os.rename(cur / name, cur / name.replace(":2,S", ":2,RS"))
        uid2 = p.uidl(2).split()[2]
        assert p.retr(2)[0].startswith(b"+OK")
        p.dele(2)
        p.quit()
    finally:
        p.close()
    left = sorted(n.split(":")[0] for n in os.listdir(cur))
    assert uid2.decode() not in left and len(left) == 2


def test_message_expunged_meanwhile(herald, token):
    addr, pw, local = new_user(herald, token)
    deliver(herald, addr, token, count=2)
    with raw_login(herald, addr, pw) as c:
        cur = herald.maildir(local) / "cur"
        victim = sorted(os.listdir(cur))[0]
        os.unlink(cur / victim)
        r = c.cmd("RETR 1")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        assert c.cmd("RETR 2").startswith(b"+OK")
        c.multi_raw()
        assert c.cmd("DELE 1").startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")	# ENOENT is fine
    assert len(herald.maildir_files(local)) == 1


# ---------------------------------------------------------------- TLS


def test_stls_verified(herald, token):
    addr, pw, _ = new_user(herald, token)
    since = herald.log_size()
    deliver(herald, addr, token)
    p = pop(herald)
    try:
        r = p.stls(context=herald.tls_context())
        assert r.startswith(b"+OK")
        assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert "STLS" not in p.capa()
        assert "USER" in p.capa()
        with pytest.raises(poplib.error_proto):
            p._shortcmd("STLS")	# TLS active already
        p.user(addr)
        p.pass_(pw)
        assert p.stat()[0] == 1
        p.quit()
    finally:
        p.close()
    assert re.search(r"login: user=<%s> client=\[127\.0\.0\.1\] "
                     r"method=USER tls=yes" % re.escape(addr),
                     herald.log_text(since))


def test_stls_wrong_name_fails(herald):
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("STLS").startswith(b"+OK")
        with pytest.raises(ssl.SSLCertVerificationError):
            herald.tls_context().wrap_socket(
                c.sock, server_hostname="other.example.test")


def test_stls_discards_pipelined_plaintext(herald, token):
    addr, pw, _ = new_user(herald, token)
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        c.send("STLS\r\nUSER %s\r\nPASS %s\r\nSTAT\r\n" % (addr, pw))
        assert c.line().startswith(b"+OK Begin TLS")
        assert c.buf == b""
        c.sock = herald.tls_context().wrap_socket(
            c.sock, server_hostname="mx.example.test")
        # the injected commands were thrown away: not logged in
        assert c.cmd("STAT").startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"+OK")


def test_stls_after_user_refused(herald):
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("USER someone@example.test") == b"+OK"
        assert c.cmd("STLS").startswith(b"-ERR")


def test_pop3s(herald, token):
    addr, pw, _ = new_user(herald, token)
    sent = deliver(herald, addr, token)
    p = poplib.POP3_SSL("127.0.0.1", herald.pop3s_port,
                        context=herald.tls_context(), timeout=15)
    try:
        assert p.getwelcome() == GREETING
        caps = p.capa()
        assert "STLS" not in caps and "USER" in caps
        p.user(addr)
        p.pass_(pw)
        lines = p.retr(1)[1]
        assert b"\r\n".join(lines).endswith(sent[0].rstrip(b"\r\n"))
        p.quit()
    finally:
        p.close()


def test_pop3s_untrusted_client_fails(herald):
    ctx = ssl.create_default_context()	# system CAs, not the test CA
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL("127.0.0.1", herald.pop3s_port, context=ctx,
                        timeout=15)


def test_plaintext_never(make_herald, token):
    inst = make_herald(auth_plaintext="never")
    addr, pw, _ = new_user(inst, token)
    cred = base64.b64encode(b"\0" + addr.encode() + b"\0" +
                            pw.encode()).decode()
    with RawPOP(inst.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("CAPA").startswith(b"+OK")
        caps = capa_of(c.multi_raw().split(b"\r\n"))
        assert "STLS" in caps
        assert not caps & {"USER", "SASL"}, caps
        assert c.cmd("USER " + addr) == PLAINTEXT_REFUSED
        assert c.cmd("PASS " + pw) == PLAINTEXT_REFUSED
        assert c.cmd("AUTH PLAIN " + cred) == PLAINTEXT_REFUSED
        assert c.cmd("AUTH") == b"+OK"
        assert c.multi_raw() == b""
        # after STLS everything is allowed
        assert c.cmd("STLS").startswith(b"+OK")
        c.sock = inst.tls_context().wrap_socket(
            c.sock, server_hostname="mx.example.test")
        assert c.cmd("CAPA").startswith(b"+OK")
        caps = capa_of(c.multi_raw().split(b"\r\n"))
        assert {"USER", "SASL"} <= caps and "STLS" not in caps
        assert c.cmd("AUTH PLAIN " + cred).startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")
    # pop3s is TLS from the start
    p = poplib.POP3_SSL("127.0.0.1", inst.pop3s_port,
                        context=inst.tls_context(), timeout=15)
    try:
        p.user(addr)
        p.pass_(pw)
        p.quit()
    finally:
        p.close()


def test_no_cert_closes_pop3s(make_herald):
    inst = make_herald(tls_cert_file=None, tls_key_file=None)
    inst.wait_log(r"pop3d\[\d+\]: warning: tls_cert_file is empty")
    with RawPOP(inst.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("CAPA").startswith(b"+OK")
        assert "STLS" not in capa_of(c.multi_raw().split(b"\r\n"))
        assert c.cmd("STLS").startswith(b"-ERR")
    with RawPOP(inst.pop3s_port) as c:
        assert c.eof(10)


def test_no_cert_warns_for_each_implicit_tls_listener(make_herald):
    """Without a certificate every service with an implicit-TLS listener
    says so at start (service_has_listener): pop3d for pop3s, imapd for
    imaps, smtpd for submissions."""
    inst = make_herald(tls_cert_file=None, tls_key_file=None, imap=True,
                       submission=True)
    for pat in (r"pop3d\[\d+\]: warning: tls_cert_file is empty: "
                r"connections to the pop3s listeners",
                r"imapd\[\d+\]: warning: tls_cert_file is empty: "
                r"connections to the imaps listeners",
                r"smtpd\[\d+\]: warning: tls_cert_file is empty: "
                r"connections to the submissions listeners"):
        assert inst.wait_log(pat), pat


# ---------------------------------------------------------------- protocol


def test_pipelining(herald, token):
    addr, pw, _ = new_user(herald, token)
    deliver(herald, addr, token, count=2)
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        c.send("CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 2\r\n"
               "RETR 1\r\nNOOP\r\nDELE 1\r\nSTAT\r\nRSET\r\nQUIT\r\n"
               % (addr, pw))
        assert c.line().startswith(b"+OK Capability")
        c.multi_raw()
        assert c.line() == b"+OK"
        assert c.line().startswith(b"+OK Logged in")
        stat = c.line()
        assert stat.startswith(b"+OK 2 "), stat
        assert c.line().startswith(b"+OK 2 messages")
        assert len(c.multi_raw().splitlines()) == 2
        assert c.line().startswith(b"+OK 2 ")
        assert c.line().startswith(b"+OK")
        assert b"Message-ID" in c.multi_raw()
        assert c.line() == b"+OK"
        assert c.line() == b"+OK message 1 deleted"
        assert c.line().startswith(b"+OK 1 ")
        assert c.line().startswith(b"+OK maildrop has 2")
        assert c.line().startswith(b"+OK")
        assert c.eof()


def test_unknown_and_wrong_state(herald):
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("XYZZY") == b"-ERR Unknown command"
        assert c.cmd("APOP a b") == b"-ERR Unknown command"
        assert c.cmd("RETR 1") == b"-ERR Not logged in"
        assert c.cmd("noop") == b"-ERR Not logged in"
        assert c.cmd("capa").startswith(b"+OK")
        c.multi_raw()
        assert c.cmd("quit").startswith(b"+OK")
        assert c.eof()


def test_line_too_long(herald):
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("USER " + "a" * 300) == b"-ERR Line too long"
        assert c.cmd("NOOP " + "x" * 5000) == b"-ERR Line too long"
        # still serving
        assert c.cmd("CAPA").startswith(b"+OK")
        c.multi_raw()
        # a 255-octet command line is fine
        assert c.cmd("USER " + "b" * 250) == b"+OK"


def test_command_limit_before_login(make_herald):
    inst = make_herald(pop3d_command_limit="5")
    with RawPOP(inst.pop3_port) as c:
        assert c.line() == GREETING
        for _ in range(5):
            assert c.cmd("CAPA").startswith(b"+OK")
            c.multi_raw()
        assert c.cmd("CAPA") == b"-ERR Too many commands"
        assert c.eof()


def test_error_limit(make_herald):
    inst = make_herald(pop3d_error_limit="3")
    with RawPOP(inst.pop3_port) as c:
        assert c.line() == GREETING
        assert c.cmd("BOGUS1").startswith(b"-ERR")
        assert c.cmd("BOGUS2").startswith(b"-ERR")
        assert c.cmd("BOGUS3").startswith(b"-ERR")
        assert c.eof()
    inst.wait_log(r"too many errors after UNKNOWN from \[127\.0\.0\.1\]")


def test_idle_timeout(make_herald):
    inst = make_herald(pop3d_idle_timeout="2s")
    since = inst.log_size()
    with RawPOP(inst.pop3_port) as c:
        assert c.line() == GREETING
        t0 = time.monotonic()
        assert c.line(timeout=10) == b"-ERR Disconnected for inactivity."
        assert 1.5 <= time.monotonic() - t0 < 8
        assert c.eof()
    inst.wait_log(r"idle timeout after CONNECT from \[127\.0\.0\.1\]",
                  since=since)


def test_garbage_disconnects(herald):
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.line().startswith(b"-ERR")
        assert c.eof()
    with RawPOP(herald.pop3_port) as c:
        assert c.line() == GREETING
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")
        assert c.line().startswith(b"-ERR")
        assert c.eof()


def test_client_limit(make_herald):
    inst = make_herald(pop3d_client_limit="2", pop3d_workers="1")
    a, b = RawPOP(inst.pop3_port), RawPOP(inst.pop3_port)
    try:
        assert a.line() == GREETING and b.line() == GREETING
        with RawPOP(inst.pop3_port) as c:
            assert c.line() == (b"-ERR [SYS/TEMP] Too many connections "
                                b"from your address")
            assert c.eof()
        a.cmd("QUIT")
        assert a.eof()
        # a slot is free again (the count drops when the session ends)
        H.wait_for(lambda: RawPOP(inst.pop3_port).line() == GREETING, 10,
                   what="a free slot")
    finally:
        a.close()
        b.close()


def _pop3_connect(inst):
    """A new POP3 connection: (client, first line, pid of the worker that
    logged its connect line); one at a time, so the line is this one's."""
    mark = inst.log_size()
    c = RawPOP(inst.pop3_port)
    first = c.line()
    m = inst.wait_log(r"herald/pop3d\[(\d+)\]: connect from "
                      r"\[127\.0\.0\.1\]", since=mark)
    return c, first, int(m.group(1))


def test_client_limit_counts_all_workers(make_herald):
    """pop3d_client_limit=2 over two workers: one session in each, and the
    third is refused though its worker holds only one itself. A worker is
    stopped (SIGSTOP) so that the other one accepts."""
    inst = make_herald(pop3d_client_limit="2", pop3d_workers="2")
    H.wait_for(lambda: len(pop3d_pids(inst)) == 2, 20, what="two workers")
    a, b = sorted(pop3d_pids(inst))
    held = []
    try:
        for stopped, runs in ((a, b), (b, a)):
            os.kill(stopped, signal.SIGSTOP)
            try:
                c, first, pid = _pop3_connect(inst)
                held.append(c)
                assert (first, pid) == (GREETING, runs), (first, pid, a, b)
                if runs == a:
                    c, first, pid = _pop3_connect(inst)
                    held.append(c)
                    assert pid == a, (pid, a, b)
                    assert first == (b"-ERR [SYS/TEMP] Too many "
                                     b"connections from your address")
            finally:
                os.kill(stopped, signal.SIGCONT)
    finally:
        for c in held:
            c.close()


def test_max_sessions(make_herald):
    inst = make_herald(pop3d_max_sessions="1", pop3d_workers="1")
    with RawPOP(inst.pop3_port) as a:
        assert a.line() == GREETING
        with RawPOP(inst.pop3_port) as b:
            assert b.line().startswith(b"-ERR [SYS/TEMP] Server busy")
            assert b.eof()
        with RawPOP(inst.pop3s_port) as b:
            # on pop3s the refusal is a close at accept: no handshake
            # (a TLS client could not read a plaintext -ERR anyway)
            t0 = time.monotonic()
            assert b.read_all(5) == b""
            assert time.monotonic() - t0 < 4
        assert a.cmd("CAPA").startswith(b"+OK")


# ---------------------------------------------------------------- big mail


def test_big_message_backpressure(herald, token):
    """A 3 MB message arrives intact; a client that pipelines RETRs
    without reading does not make pop3d buffer them."""
    addr, pw, local = new_user(herald, token)
    line = "." + "x" * 75 + "\r\n"
    body = "start\r\n" + line * (3 * 1024 * 1024 // len(line)) + "end\r\n"
    deliver(herald, addr, token, body=body)
    (path, size), = maildir_state(herald, local).values()
    stored = path.read_bytes()	# login moves it to cur/
    with raw_login(herald, addr, pw) as c:
        base = {pid: H.proc_status_kb(pid, "VmRSS")
                for pid in pop3d_pids(herald)}
        c.send("RETR 1\r\n" * 10)
        time.sleep(2)	# not reading
        grown = max(H.proc_status_kb(pid, "VmRSS") - kb
                    for pid, kb in base.items())
        # Without back-pressure a whole message (3 MB) would be queued;
        # with it about 100 kB. Under AddressSanitizer its quarantine of
        # freed memory makes RSS meaningless, so the bound is not checked.
        if not any(sanitized(pid) for pid in base):
            assert grown < 2 * 1024, "pop3d grew by %d kB" % grown
        for _ in range(10):
            assert c.line(timeout=30) == b"+OK %d octets" % size
            raw = c.multi_raw(timeout=30)
            unstuffed = re.sub(rb"(?m)^\.", b"", raw)
            assert len(unstuffed) == size
        assert unstuffed == wire(stored)
        assert c.cmd("QUIT").startswith(b"+OK")


# ---------------------------------------------------------------- failures


def test_authd_killed_during_login(make_herald, token):
    inst = make_herald()
    addr, pw, _ = new_user(inst, token)
    pop_before = H.wait_for(lambda: pop3d_pids(inst), 10, what="pop3d")
    for round_ in range(3):
        with RawPOP(inst.pop3_port) as c:
            assert c.line() == GREETING
            assert c.cmd("USER " + addr) == b"+OK"
            c.send("PASS %s\r\n" % pw)
            if round_ == 1:
                time.sleep(0.01)	# login in flight
            for pid in inst.children("authd"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            r = c.line(timeout=60)
            assert r.startswith(b"+OK") or \
                r.startswith(b"-ERR [SYS/TEMP]"), r
            if r.startswith(b"+OK"):
                assert c.cmd("QUIT").startswith(b"+OK")
    assert pop3d_pids(inst) == pop_before

    # master brings authd back and logins work again
    def works():
        try:
            p = login(inst, addr, pw)
        except (poplib.error_proto, OSError):
            return False
        p.quit()
        return True
    H.wait_for(works, 30, interval=0.5, what="login after authd restart")
    assert pop3d_pids(inst) == pop_before


def test_password_guessing_slows_then_locks_the_address(make_herald,
                                                       token):
    """Five wrong passwords from one address: each answer comes later,
    then the address is locked (even the right password is refused),
    while the same account still logs in from another address."""
    inst = make_herald(auth_failure_delay="1s", auth_failure_delay_max="2s",
                       auth_client_lockout="5", auth_account_lockout="50")
    addr, pw, _ = new_user(inst, token)

    def attempt(source, password):
        with RawPOP(inst.pop3_port, source=source, timeout=30) as c:
            assert c.line() == GREETING
            assert c.cmd("USER " + addr) == b"+OK"
            t0 = time.monotonic()
            r = c.cmd("PASS " + password)
            took = time.monotonic() - t0
            if r.startswith(b"+OK"):
                assert c.cmd("QUIT").startswith(b"+OK")
            return r, took

    fast = attempt("127.0.0.3", pw)
    assert fast[0].startswith(b"+OK") and fast[1] < 0.9, fast
    took = []
    for i in range(5):
        r, t = attempt("127.0.0.3", "wrong-%d" % i)
        assert r == b"-ERR [AUTH] Authentication failed.", r
        took.append(t)
    assert took[0] >= 0.9 and min(took[1:]) >= 1.9, took
    r, t = attempt("127.0.0.3", pw)
    assert r == b"-ERR [AUTH] Too many failed logins, try again later.", r
    assert t >= 1.9, t
    inst.wait_log(r"login locked: service=pop3 client=\[127\.0\.0\.3\] "
                  r"user=<%s>" % re.escape(addr))
    r, t = attempt("127.0.0.4", pw)
    assert r.startswith(b"+OK"), r
    assert t < 0.9, t


def test_shutdown_deletes_nothing(make_herald, token):
    inst = make_herald()
    addr, pw, local = new_user(inst, token)
    deliver(inst, addr, token, count=2)
    c = raw_login(inst, addr, pw)
    try:
        assert c.cmd("DELE 1").startswith(b"+OK")
        idle = RawPOP(inst.pop3_port)
        assert idle.line() == GREETING
        stopper = threading.Thread(target=inst.ctl, args=("stop",),
                                   kwargs={"timeout": 60}, daemon=True)
        stopper.start()
        assert c.line(timeout=20) == b"-ERR [SYS/TEMP] Server shutting down"
        assert c.eof()
        assert idle.line(timeout=20) == \
            b"-ERR [SYS/TEMP] Server shutting down"
        idle.close()
        stopper.join(60)
    finally:
        c.close()
    assert len(inst.maildir_files(local)) == 2

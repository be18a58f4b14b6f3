"""
imapd up to the authenticated state, spoken by Python's imaplib and by a
raw line client, against a real instance (imap=True turns its listeners
on; they are off by default until imapd serves mailboxes).

The greeting and CAPABILITY before and after STARTTLS and login, LOGIN
(quoted, literal, LITERAL+) with good and bad passwords (authd's
throttle, lockout and the fail2ban line), AUTHENTICATE PLAIN and LOGIN
with and without SASL-IR and the "*" cancel, LOGINDISABLED for a client
outside loopback (network namespace, root only), STARTTLS discarding
pipelined plaintext, implicit TLS on imaps, ENABLE, ID, NAMESPACE,
commands in the wrong state and the mailbox commands not there yet, and
the bounds: literals over the limit before and after login, a line too
long, a nesting bomb, commands before login, errors, bytes before login,
idle timeouts, LOGOUT.
"""
import base64
import imaplib
import os
import re
import socket
import time

import pytest

import herald as H
from test_pop3_netns import netns  # noqa: F401 (the fixture)
from test_pop3_netns import ip  # noqa: F401

USER, PW = "alice@example.test", "pw-alice"
# ASan's quarantine keeps freed memory: RSS bounds are looser there
SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
CAPS_PRE = ("IMAP4rev2 IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=LOGIN SASL-IR "
            "LITERAL+ ENABLE ID NAMESPACE")
CAPS_TLS = "IMAP4rev2 IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR LITERAL+ " \
           "ENABLE ID NAMESPACE"
CAPS_LOGGED = ("IMAP4rev2 IMAP4rev1 SASL-IR LITERAL+ ENABLE ID NAMESPACE "
               "UTF8=ACCEPT LIST-EXTENDED LIST-STATUS SPECIAL-USE "
               "CREATE-SPECIAL-USE CHILDREN STATUS=SIZE QUOTA "
               "QUOTA=RES-STORAGE OBJECTID IDLE UNSELECT UIDPLUS MOVE "
               "CONDSTORE QRESYNC MULTIAPPEND BINARY APPENDLIMIT=1024 "
               "ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=REFERENCES "
               "THREAD=ORDEREDSUBJECT ESORT PREVIEW COMPRESS=DEFLATE")
GREETING = b"* OK [CAPABILITY " + CAPS_PRE.encode() + \
    b"] herald IMAP4rev2 ready"
REFUSED = (b"NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
           b"non-secure (SSL/TLS) connections.")
# the fail2ban filter's regex (etc/fail2ban/filter.d/herald.conf)
FAIL2BAN = (r"herald/authd.*login (?:failed|locked): service=imap "
            r"client=\[127\.0\.0\.1\] user=<")


class RawIMAP(H.RawLines):
    """RawLines with IMAP responses: exact bytes for hostile scripts."""

    def __init__(self, port, timeout=15.0, tls_ctx=None, greet=True,
                 source=None):
        super().__init__("127.0.0.1", port, timeout, source)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock,
                                            server_hostname="mx.example.test")
        self.greeting = self.line() if greet else None

    def line(self, timeout=None):
        return self.readline(timeout).rstrip(b"\r\n")

    def until_tagged(self, tag, timeout=None):
        """Lines up to and including the one tagged tag."""
        tag = tag.encode() if isinstance(tag, str) else tag
        out = []
        for _ in range(1000):
            ln = self.line(timeout)
            out.append(ln)
            if ln.startswith(tag + b" ") or ln == b"":
                return out
        raise AssertionError("no tagged answer: %r" % out[-5:])

    def cmd(self, tag, text, timeout=None):
        data = (tag + " " + text) if isinstance(text, str) else \
            tag.encode() + b" " + text
        self.send(data + ("\r\n" if isinstance(data, str) else b"\r\n"))
        return self.until_tagged(tag, timeout)

    def login(self, user=USER, pw=PW):
        r = self.cmd("L", 'LOGIN "%s" "%s"' % (user, pw))
        assert r[-1].startswith(b"L OK "), r
        return r


def ok(c, tag, text, timeout=30):
    """A command that must answer OK: its lines."""
    r = c.cmd(tag, text, timeout)
    assert r[-1].startswith(tag.encode() + b" OK"), (text, r)
    return r


def imap_instance(tmp_path_factory, pki, name, **kw):
    """A test module's own instance with imapd on: the body of its
    module-scoped fixture (yield from it)."""
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, name, imap=True,
                           **kw) as inst:
        yield inst


def fill(home, n):
    """n small messages into new/, owned as the Maildir is (written in
    tmp/ first: a session may be looking)."""
    owner = home.stat()
    for i in range(n):
        name = "1700000000.M%dP2Q%d.host,S=60,W=63" % (i, i)
        p = home / "tmp" / name
        p.write_bytes(b"From: a@example.org\nSubject: m%d\n\nbody\n" % i)
        os.chown(p, owner.st_uid, owner.st_gid)
        os.rename(p, home / "new" / name)


def imapd_pss_kib(inst):
    """The summed PSS of the instance's imapd processes, in KiB."""
    total = 0
    for pid in inst.our_pids():
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() != "imapd":
                    continue
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class IdleSession:
    """A connected socket (plain or TLS) that sends LOGIN, SELECT INBOX
    and IDLE at once (imapd holds the pipelined commands while authd
    answers), then reads lines by deadline."""

    def __init__(self, sock, user, pw):
        self.sock = sock
        self.user = user
        self.buf = b""
        self.sock.sendall(b'L LOGIN "%s" "%s"\r\nS SELECT INBOX\r\n'
                          b"I IDLE\r\n" % (user.encode(), pw.encode()))

    def line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no line in time; have %r" % self.buf[-200:]
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            assert data, "closed; have %r" % self.buf[-200:]
            self.buf += data
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r")

    def wait_idling(self, deadline):
        for _ in range(100):
            ln = self.line(deadline)
            assert not ln.startswith((b"L NO", b"L BAD", b"S NO", b"S BAD",
                                      b"* BYE")), ln
            if ln.startswith(b"+ "):
                return
        raise AssertionError("no IDLE continuation")

    def tagged(self, tag, text, deadline):
        """Send a command; its lines up to the tagged one, bounded."""
        self.sock.sendall(b"%s %s\r\n" % (tag.encode(), text.encode()))
        out = []
        for _ in range(1000):
            out.append(self.line(deadline))
            if out[-1].startswith(tag.encode() + b" "):
                return out
        raise AssertionError("no tagged answer: %r" % out[-5:])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def plain(user=USER, pw=PW):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            pw.encode()).decode()


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imap", imap=True,
                           imapd_literal_limit="1k") as inst:
        yield inst


def raw(inst, **kw):
    return RawIMAP(inst.imap_port, **kw)


# ---------------------------------------------------------------- greeting


def test_greeting_and_capability(imap):
    with raw(imap) as c:
        assert c.greeting == GREETING
        r = c.cmd("a", "CAPABILITY")
        assert r == [b"* CAPABILITY " + CAPS_PRE.encode(),
                     b"a OK CAPABILITY completed"]
        assert c.cmd("b", "noop") == [b"b OK NOOP completed"]
        assert c.cmd("c", "CAPABILITY x")[-1].startswith(b"c BAD ")
        r = c.cmd("d", "LOGOUT")
        assert r == [b"* BYE Logging out", b"d OK LOGOUT completed"]
        assert c.read_all(5) == b""
    imap.wait_log(r"imapd.*disconnect from \[127\.0\.0\.1\] \(logout\)")


def test_imaplib_login_namespace_enable_id(imap):
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port, timeout=15)
    try:
        assert "IMAP4REV2" in m.capabilities
        assert "LOGINDISABLED" not in m.capabilities
        typ, data = m.login(USER, PW)
        assert typ == "OK", data
        # the tagged OK carries the new capabilities
        assert b"[CAPABILITY " + CAPS_LOGGED.encode() + b"]" in data[0]
        typ, data = m.capability()
        # imaplib also keeps the login's response code
        assert set(data) == {CAPS_LOGGED.encode()}, data
        typ, data = m.namespace()
        assert typ == "OK" and data == [b'(("" ".")) NIL NIL']
        typ, data = m.enable("IMAP4rev2")
        assert typ == "OK", data
        typ, data = m.xatom("ID", '("name" "test" "version" NIL)')
        assert typ == "OK"
        assert m.untagged_responses.get("ID") == [b'("name" "herald")']
        typ, data = m.noop()
        assert typ == "OK"
        typ, data = m.logout()
        assert typ == "BYE"
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    imap.wait_log(r"imapd.*login: user=<alice@example\.test> "
                  r"client=\[127\.0\.0\.1\] method=LOGIN tls=no")
    imap.wait_log(r"imapd.*logout: user=<alice@example\.test>")


def test_starttls_capabilities_and_pipelined_plaintext(imap):
    ctx = imap.tls_context()
    with raw(imap) as c:
        # plaintext pipelined behind STARTTLS is thrown away
        c.send(b"a STARTTLS\r\nb LOGIN alice@example.test pw-alice\r\n")
        assert c.line() == b"a OK Begin TLS negotiation now"
        c.starttls(ctx, "mx.example.test")
        # nothing unsolicited after the handshake (RFC 9051 6.2.1)
        assert c.pending(0.5) == b""
        r = c.cmd("c", "CAPABILITY")
        assert r[0] == b"* CAPABILITY " + CAPS_TLS.encode(), r
        assert c.cmd("d", "STARTTLS")[-1] == b"d BAD TLS is already active"
        r = c.login()
        assert c.cmd("e", "STARTTLS")[-1].startswith(b"e BAD ")
        assert c.cmd("f", "LOGOUT")[-1] == b"f OK LOGOUT completed"
    imap.wait_log(r"imapd.*TLS connection established from \[127\.0\.0\.1\]")
    imap.wait_log(r"imapd.*method=LOGIN tls=yes")


def test_imaplib_starttls(imap):
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port, timeout=15)
    try:
        m.starttls(ssl_context=imap.tls_context())
        assert "STARTTLS" not in m.capabilities
        assert "AUTH=PLAIN" in m.capabilities
        assert m.login(USER, PW)[0] == "OK"
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def test_imaps_implicit_tls(imap):
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port,
                          ssl_context=imap.tls_context(), timeout=15)
    try:
        assert "STARTTLS" not in m.capabilities
        assert "AUTH=PLAIN" in m.capabilities
        typ, data = m.authenticate("PLAIN", lambda _: b"\0%s\0%s" % (
            USER.encode(), PW.encode()))
        assert typ == "OK", data
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    imap.wait_log(r"imapd.*connect from \[127\.0\.0\.1\] \(imaps\)")
    imap.wait_log(r"imapd.*login: user=<alice@example\.test> "
                  r"client=\[127\.0\.0\.1\] method=AUTH=PLAIN tls=yes")


# ---------------------------------------------------------------- logins


def test_login_quoted_literal_and_literal_plus(imap):
    # the wrong password from an address of its own: authd delays every
    # later answer to an address with recent failures, success included,
    # and the module's other logins come from 127.0.0.1
    with raw(imap, source="127.0.0.4") as c:
        r = c.cmd("a", 'LOGIN "alice@example.test" "pw-\\"x"')
        assert r[-1] == b"a NO [AUTHENTICATIONFAILED] Authentication failed."
    with raw(imap) as c:
        # synchronizing literals: "+" before each
        c.send(b"a LOGIN {18}\r\n")
        assert c.line() == b"+ OK"
        c.send(b"alice@example.test {8}\r\n")
        assert c.line() == b"+ OK"
        c.send(b"pw-alice\r\n")
        assert c.until_tagged("a")[-1].startswith(b"a OK [CAPABILITY ")
    with raw(imap) as c:
        # LITERAL+: all in one go, no continuation
        c.send(b"a LOGIN {18+}\r\nalice@example.test {8+}\r\npw-alice\r\n"
               b"b NAMESPACE\r\n")
        r = c.until_tagged("b")
        assert r[0].startswith(b"a OK [CAPABILITY "), r
        assert r[1:] == [b'* NAMESPACE (("" ".")) NIL NIL',
                         b"b OK NAMESPACE completed"]


def test_bad_password_throttle_and_fail2ban_line(make_herald):
    inst = make_herald(imap=True, auth_client_lockout="3",
                       auth_failure_delay="1s")
    since = inst.log_size()
    times = []
    answers = []
    with raw(inst) as c:
        for i in range(4):
            t0 = time.monotonic()
            r = c.cmd("a%d" % i, 'LOGIN "alice@example.test" "wrong"',
                      timeout=30)
            times.append(time.monotonic() - t0)
            answers.append(r[-1])
    for a in answers[:3]:
        assert a.endswith(b"NO [AUTHENTICATIONFAILED] Authentication "
                          b"failed."), answers
    assert answers[3].endswith(b"NO [AUTHENTICATIONFAILED] Too many failed "
                               b"logins, try again later."), answers
    # authd's failure delay is waited out before each answer
    assert min(times[:3]) >= 0.9, times
    inst.wait_log(FAIL2BAN, since=since)
    inst.wait_log(r"imapd.*authentication failed: user=<alice@example\.test>"
                  r" client=\[127\.0\.0\.1\] method=LOGIN", since=since)
    # the locked-out client stays locked out, also for the right password
    with raw(inst) as c:
        r = c.cmd("b", 'LOGIN "alice@example.test" "pw-alice"', timeout=30)
        assert b"Too many failed logins" in r[-1], r
    assert "pw-alice" not in inst.log_text(since)
    assert "wrong" not in re.sub(r"wrong (?:password|state)", "",
                                 inst.log_text(since))


def test_authenticate_plain_and_login(imap):
    with raw(imap) as c:
        # SASL-IR
        r = c.cmd("a", "AUTHENTICATE PLAIN " + plain())
        assert r[-1].startswith(b"a OK [CAPABILITY "), r
    with raw(imap) as c:
        # no initial response: an empty challenge first
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(plain().encode() + b"\r\n")
        assert c.until_tagged("a")[-1].startswith(b"a OK ")
    with raw(imap) as c:
        c.send(b"a AUTHENTICATE LOGIN\r\n")
        assert c.line() == b"+ " + base64.b64encode(b"Username:")
        c.send(base64.b64encode(USER.encode()) + b"\r\n")
        assert c.line() == b"+ " + base64.b64encode(b"Password:")
        c.send(base64.b64encode(PW.encode()) + b"\r\n")
        assert c.until_tagged("a")[-1].startswith(b"a OK ")
    with raw(imap) as c:
        # "=" is an empty initial response: PLAIN then fails
        r = c.cmd("a", "AUTHENTICATE PLAIN =")
        assert r[-1] == b"a BAD Invalid authentication data.", r
        # the "*" cancel
        c.send(b"b AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(b"*\r\n")
        assert c.until_tagged("b") == [b"b BAD Authentication cancelled."]
        # a SASL line is not a command
        c.send(b"c AUTHENTICATE LOGIN\r\n")
        c.line()
        c.send(b"d LOGOUT\r\n")
        assert c.until_tagged("c")[-1] == \
            b"c BAD Invalid authentication data."
        r = c.cmd("e", "AUTHENTICATE CRAM-MD5")
        assert r[-1] == b"e NO Unsupported authentication mechanism."
        # still usable
        r = c.cmd("f", "AUTHENTICATE PLAIN " + plain())
        assert r[-1].startswith(b"f OK ")


@pytest.mark.usefixtures("netns")
def test_logindisabled_outside_loopback(make_herald, netns):  # noqa: F811
    port = H.free_port()
    inst = make_herald(imap=True, auth_plaintext="loopback",
                       imap_listen="127.0.0.1:%d, %s:%d" % (
                           port, netns["host_addr"], port))
    client = r'''
import base64, json, socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {}
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rb")
def line():
    return f.readline().decode(errors="replace").rstrip("\r\n")
def cmd(tag, text):
    s.sendall((tag + " " + text + "\r\n").encode())
    lines = []
    for _ in range(50):
        ln = line()
        lines.append(ln)
        if ln.startswith(tag + " ") or not ln:
            return lines
    return lines
try:
    out["local"] = s.getsockname()[0]
    out["greeting"] = line()
    out["capa"] = cmd("a", "CAPABILITY")
    out["login"] = cmd("b", "LOGIN alice@example.test pw-alice")
    out["auth"] = cmd("c", "AUTHENTICATE PLAIN " + base64.b64encode(
        b"\0alice@example.test\0pw-alice").decode())
    out["stls"] = cmd("d", "STARTTLS")
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(s, server_hostname="mx.example.test")
    f = s.makefile("rb")
    out["tls_capa"] = cmd("e", "CAPABILITY")
    out["tls_login"] = cmd("f", "LOGIN alice@example.test pw-alice")
except Exception as e:
    out["error"] = repr(e)
print(json.dumps(out))
'''
    import json
    import subprocess
    import sys
    r = subprocess.run(["ip", "netns", "exec", netns["ns"], sys.executable,
                        "-c", client, netns["host_addr"], str(port),
                        str(inst.pki["ca_cert"])],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out.get("local") == netns["ns_addr"], out
    assert "error" not in out, out
    assert "LOGINDISABLED" in out["greeting"], out
    assert "AUTH=PLAIN" not in out["greeting"], out
    caps = out["capa"][0].split()
    assert "LOGINDISABLED" in caps and "STARTTLS" in caps, caps
    assert not [c for c in caps if c.startswith("AUTH=")], caps
    assert out["login"][-1] == "b " + REFUSED.decode(), out
    assert out["auth"][-1] == "c " + REFUSED.decode(), out
    assert out["stls"][-1].startswith("d OK"), out
    tls_caps = out["tls_capa"][0].split()
    assert "AUTH=PLAIN" in tls_caps and "LOGINDISABLED" not in tls_caps
    assert out["tls_login"][-1].startswith("f OK"), out
    # loopback on the same instance may log in in clear
    with RawIMAP(port) as c:
        assert b"LOGINDISABLED" not in c.greeting
        c.login()


# ---------------------------------------------------------------- states


def test_wrong_state_and_unavailable_commands(imap):
    with raw(imap) as c:
        for verb in ("SELECT INBOX", "ENABLE IMAP4rev2", "NAMESPACE",
                     "LIST \"\" *", "FETCH 1 FLAGS", "UID FETCH 1 FLAGS"):
            r = c.cmd("a", verb)
            assert r == [b"a BAD %s: Not logged in" % verb.split()[0]
                         .encode()], r
        assert c.cmd("b", "FOO")[-1] == b"b BAD Unknown command"
        assert c.cmd("c", "ID NIL")[-1] == b"c OK ID completed"
    with raw(imap) as c:
        c.login()
        # (the mailbox commands are test_imap_mailbox.py's, the selected
        # state's test_imap_select.py's)
        for verb in ("CLOSE", "UNSELECT", "EXPUNGE", "SEARCH ALL",
                     "FETCH 1:* FLAGS", "STORE 1 +FLAGS (\\Seen)",
                     "COPY 1 x", "MOVE 1 x", "UID FETCH 1 FLAGS", "CHECK"):
            r = c.cmd("s", verb)
            assert r == [b"s BAD %s: No mailbox selected" % verb.split()[0]
                         .encode()], r
    # (a new session: state errors count toward imapd_error_limit)
    with raw(imap) as c:
        c.login()
        r = c.cmd("l", 'LOGIN "a" "b"')
        assert r == [b"l BAD LOGIN: Already logged in"]
        r = c.cmd("x", "AUTHENTICATE PLAIN")
        assert r == [b"x BAD AUTHENTICATE: Already logged in"]
        assert c.cmd("e", "ENABLE")[-1].startswith(b"e BAD ")
        assert c.cmd("g", "ENABLE IMAP4rev2") == [
            b"* ENABLED IMAP4rev2", b"g OK ENABLE completed"]
        # enabled once: not again
        assert c.cmd("h", "ENABLE IMAP4rev2")[0] == b"* ENABLED"
        assert c.cmd("f", "ENABLE FOO") == [b"* ENABLED",
                                            b"f OK ENABLE completed"]


def test_syntax_errors(imap):
    with raw(imap) as c:
        assert c.cmd("a", 'LOGIN "x')[-1] == \
            b"a BAD LOGIN: Unterminated quoted string"
        assert c.cmd("b", "LOGIN  x y")[-1] == \
            b"b BAD LOGIN: Missing or extra space"
        c.send(b"+ NOOP\r\n")
        assert c.line() == b"* BAD Missing or invalid tag"
        assert c.cmd("c", "ID (\"a\")")[-1].startswith(b"c BAD Syntax: ID")
        many = " ".join('"f%d" "v"' % i for i in range(31))
        assert c.cmd("d", "ID (%s)" % many)[-1].startswith(b"d BAD ")


# ---------------------------------------------------------------- bounds


def test_literal_limits_before_login(imap):
    with raw(imap) as c:
        # a synchronizing literal over 8 KB: NO, no "+", session goes on
        r = c.cmd("a", "LOGIN {9000}")
        assert r == [b"a NO [TOOBIG] Literal too big (limit 8192 octets)"]
        assert c.cmd("b", "NOOP") == [b"b OK NOOP completed"]
        # LITERAL+ over it before login: BYE, nothing of it is read
        c.send(b"c LOGIN {9000+}\r\n" + b"x" * 100)
        assert c.line() == b"* BYE [TOOBIG] Literal too big"
        assert c.read_all(5) == b""


def test_literal_limits_after_login(imap):
    with raw(imap) as c:
        c.login()
        # imapd_literal_limit = 1k
        r = c.cmd("a", "ID ({2000}")
        assert r == [b"a NO [TOOBIG] Literal too big (limit 1024 octets)"]
        # LITERAL+ over it: read, thrown away, never run as commands
        body = b"z LOGOUT\r\n" * 200
        c.send(b"b ID ({2000+}\r\n" + body + b" NIL)\r\nc NOOP\r\n")
        r = c.until_tagged("c")
        assert r == [b"b BAD [TOOBIG] Literal too big (limit 1024 octets)",
                     b"c OK NOOP completed"], r
        # within the limit
        r = c.cmd("d", b'ID ({3+}\r\nabc "x")')
        assert r[-1] == b"d OK ID completed", r
        # a LITERAL+ far over any bound: BYE
        c.send(b"e ID ({999999999999+}\r\n")
        assert c.line() == b"* BYE [TOOBIG] Literal too big"
        assert c.read_all(5) == b""


def test_line_too_long_and_nesting_bomb(imap):
    with raw(imap) as c:
        c.send(b"a NOOP " + b"x" * 9000 + b"\r\n")
        assert c.line() == b"a BAD [TOOBIG] Command line too long"
        assert c.cmd("b", "NOOP") == [b"b OK NOOP completed"]
        r = c.cmd("c", "ID " + "(" * 1000 + ")" * 1000)
        assert r == [b"c BAD ID: Lists nested too deep"], r
        c.login()
        r = c.cmd("d", "SEARCH " + "(" * 5000)
        assert r == [b"d BAD SEARCH: Lists nested too deep"], r
        c.send(b"e NOOP " + b"y" * 70000 + b"\r\n")
        assert c.line() == b"e BAD [TOOBIG] Command line too long"
        assert c.cmd("f", "NOOP") == [b"f OK NOOP completed"]


def test_runaway_line(imap):
    with raw(imap) as c:
        c.login()
        try:
            c.send(b"a NOOP " + b"x" * 200000)
        except OSError:
            pass
        # 64 KB of line, then 64 KB skipped without a LF: BYE
        assert c.line() == b"* BYE Too much input without a line end"
        assert c.read_all(5) == b""


def test_command_and_error_limits(make_herald):
    inst = make_herald(imap=True, imapd_command_limit="5",
                       imapd_error_limit="3",
                       imapd_preauth_input_limit="4k")
    with RawIMAP(inst.imap_port) as c:
        for i in range(5):
            assert c.cmd("n%d" % i, "NOOP")[-1].endswith(b"OK NOOP completed")
        c.send(b"n5 NOOP\r\n")
        assert c.line() == b"* BYE Too many commands before login"
        assert c.read_all(5) == b""
    with RawIMAP(inst.imap_port) as c:
        assert c.cmd("a", "FOO")[-1] == b"a BAD Unknown command"
        assert c.cmd("b", "FOO")[-1] == b"b BAD Unknown command"
        c.send(b"c FOO\r\n")
        assert c.line() == b"c BAD Unknown command"
        assert c.line() == b"* BYE Too many errors"
        assert c.read_all(5) == b""
    # after login the errors that count are those in a row
    with RawIMAP(inst.imap_port) as c:
        assert c.cmd("l", "LOGIN alice@example.test pw-alice")[-1] \
            .startswith(b"l OK")
        for round_ in range(3):
            for i in range(2):
                t = "e%d%d" % (round_, i)
                assert c.cmd(t, "FOO")[-1] == t.encode() + b" BAD " \
                    b"Unknown command"
            assert c.cmd("n%d" % round_, "NOOP")[-1].endswith(b"OK NOOP "
                                                              b"completed")
        for i in range(2):
            assert c.cmd("x%d" % i, "FOO")[-1].endswith(b"BAD Unknown "
                                                         b"command")
        c.send(b"y FOO\r\n")
        assert c.line() == b"y BAD Unknown command"
        assert c.line() == b"* BYE Too many errors"
        assert c.read_all(5) == b""
    # the same when the good answer is made elsewhere and passed on
    # (NOOP and CHECK in the selected state): what counts is the answer
    with RawIMAP(inst.imap_port) as c:
        assert c.cmd("l", "LOGIN alice@example.test pw-alice")[-1] \
            .startswith(b"l OK")
        assert c.cmd("s", "SELECT INBOX")[-1].startswith(b"s OK")
        for round_ in range(3):
            for i in range(2):
                t = "e%d%d" % (round_, i)
                assert c.cmd(t, "FOO")[-1] == t.encode() + b" BAD " \
                    b"Unknown command"
            r = c.cmd("n%d" % round_, "NOOP" if round_ % 2 else "CHECK")
            assert r[-1].startswith(b"n%d OK" % round_), r
        c.send(b"y FOO\r\n")
        assert c.line() == b"y BAD Unknown command"
        assert c.cmd("z", "NOOP")[-1].startswith(b"z OK")
    # bytes before login: a few long lines, each under the line bound
    with RawIMAP(inst.imap_port) as c:
        c.send(b"a ID (\"x\" \"" + b"y" * 1000 + b"\")\r\n")
        assert c.line() == b"a OK ID completed" or True
        try:
            c.send(b"b NOOP " + b"z" * 5000 + b"\r\n")
        except OSError:
            pass
        data = c.read_all(5)
        assert b"* BYE Too much input before login" in data, data
    inst.wait_log(r"imapd.*too much input before login from \[127\.0\.0\.1\]")


def test_idle_timeouts(make_herald):
    inst = make_herald(imap=True, imapd_preauth_timeout="1s",
                       imapd_idle_timeout="3s")
    with RawIMAP(inst.imap_port) as c:
        t0 = time.monotonic()
        assert c.line(timeout=10) == b"* BYE Disconnected for inactivity."
        assert 0.5 < time.monotonic() - t0 < 5
        assert c.read_all(5) == b""
    with RawIMAP(inst.imap_port) as c:
        # authd's failure delay (1 s, then 2 s) is not the client's
        # silence: the answers come, not a BYE
        for tag in ("w1", "w2"):
            r = c.cmd(tag, 'LOGIN "bob@example.test" "wrong"', timeout=30)
            assert r == [tag.encode() + b" NO [AUTHENTICATIONFAILED] "
                         b"Authentication failed."], r
    with RawIMAP(inst.imap_port) as c:
        c.login()
        # after login the longer timeout holds
        time.sleep(1.5)
        assert c.cmd("a", "NOOP") == [b"a OK NOOP completed"]
        t0 = time.monotonic()
        assert c.line(timeout=10) == b"* BYE Disconnected for inactivity."
        assert 2 < time.monotonic() - t0 < 6
    inst.wait_log(r"imapd.*disconnect from \[127\.0\.0\.1\] \(idle timeout\)")


def test_status_shows_imapd(imap):
    out = imap.ctl_ok("status").stdout
    assert "imapd" in out, out


def test_slow_reader_pauses_only_its_session(imap):
    """A client that pipelines without reading stops its own session
    (input paused while output is unsent), loses nothing, and does not
    slow the others or grow the worker."""
    import threading
    n = 1000000
    with raw(imap) as slow:
        slow.login()
        workers = imap.children("imapd")
        rss0 = sum(H.proc_status_kb(p, "VmRSS") or 0 for p in workers)
        done = threading.Event()

        def send():
            try:
                slow.sock.settimeout(60)
                slow.sock.sendall(b"n NAMESPACE\r\n" * n)
            except OSError:
                pass
            done.set()
        t = threading.Thread(target=send, daemon=True)
        t.start()
        # the server stops reading: the sender is still stuck
        assert not done.wait(3)
        rss1 = sum(H.proc_status_kb(p, "VmRSS") or 0 for p in workers)
        # (socket buffers take some MB; 1000000 answers would be 46 MB)
        assert rss1 - rss0 < (40000 if SANITIZED else 3000), (rss0, rss1)
        # another session is served meanwhile
        with raw(imap) as other:
            t0 = time.monotonic()
            assert other.cmd("a", "NOOP") == [b"a OK NOOP completed"]
            assert time.monotonic() - t0 < 2
        # now read everything: every command got its answer
        got = 0
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            ln = slow.line(timeout=30)
            if ln == b"n OK NAMESPACE completed":
                got += 1
            elif not ln.startswith(b"* NAMESPACE"):
                raise AssertionError(ln)
        assert got == n
        t.join(10)
        assert done.is_set()


def test_shutdown_says_bye(make_herald):
    inst = make_herald(imap=True)
    c = RawIMAP(inst.imap_port)
    try:
        c.login()
        inst.stop()
        data = c.read_all(10)
        assert data == b"* BYE [UNAVAILABLE] Server shutting down\r\n", data
    finally:
        c.close()


@pytest.mark.parametrize("line", [b"GET / HTTP/1.1", b"POST /x HTTP/1.0",
                                  b"Host: example.test", b"EHLO x",
                                  b"USER alice", b"\x16\x03\x01 x"])
def test_other_protocols_end_the_session(imap, line):
    with raw(imap) as c:
        c.send(line + b"\r\n")
        assert c.line() == b"* BYE Not an IMAP command"
        assert c.read_all(5) == b""


def test_client_limit_at_accept(make_herald):
    """imapd_client_limit counts a client's sessions over all workers;
    over it a plaintext client gets BYE, an imaps one a close (no TLS
    handshake is spent on it)."""
    inst = make_herald(imap=True, imapd_client_limit="2")
    keep = [RawIMAP(inst.imap_port), RawIMAP(inst.imap_port)]
    try:
        with RawIMAP(inst.imap_port, greet=False) as c:
            assert c.line() == (b"* BYE [UNAVAILABLE] Too many connections "
                                b"from your address")
            assert c.read_all(5) == b""
        s = socket.create_connection(("127.0.0.1", inst.imaps_port), 10)
        try:
            s.settimeout(10)
            assert s.recv(100) == b""
        finally:
            s.close()
        inst.wait_log(r"imapd.*rejecting \[127\.0\.0\.1\]: \* BYE "
                      r"\[UNAVAILABLE\] Too many connections")
        inst.wait_log(r"imapd.*connect from \[127\.0\.0\.1\] \(imaps\)")
    finally:
        for c in keep:
            c.close()
    # the sessions ended: room again

    def admitted():
        with RawIMAP(inst.imap_port) as c:
            return c.greeting == GREETING
    H.wait_for(admitted, 10, what="a session admitted again")

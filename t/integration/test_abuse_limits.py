"""
Availability under abuse (issue 12): the limits a single client meets
before it can cost the server much.

  - pop3s connections over pop3d_client_limit are refused at accept, with
    no TLS handshake and no session: closed at once, nothing sent, and
    the worker's memory does not grow with them;
  - a TLS handshake (pop3s, STLS, SMTP STARTTLS) that does not finish is
    dropped after tls_handshake_timeout, not the idle timeout;
  - smtpd_junk_command_limit: NOOPs past it get 421 4.7.0 and the end;
    pop3d_junk_command_limit likewise after a login;
  - input without a line feed is bounded: before a POP3 login in total
    (pop3d_preauth_input_limit), and in SMTP between commands
    (SESSION_RUNAWAY_MAX), where the line reader used to skip an over-long
    line for as long as the client kept sending.

Every loop is bounded in count and time; each test uses its own 127.x
source address so that the per-client counts do not meet.
"""
import os
import socket
import ssl
import time

import pytest

import herald as H

SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
HANDSHAKE_S = 2


@pytest.fixture(scope="module")
def inst(tmp_path_factory, pki):
    import conftest
    with conftest.standard_instance(
            tmp_path_factory, pki, "abuse", pop3d_workers=1,
            smtpd_workers=1, pop3d_client_limit=5,
            tls_handshake_timeout="%ds" % HANDSHAKE_S,
            smtpd_junk_command_limit=5, pop3d_junk_command_limit=3) as i:
        yield i


def connect(port, source, timeout=10.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def closed_within(sock, timeout):
    """(closed?, bytes the server sent) within timeout seconds."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return False, got
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def pop3d_pid(inst):
    pids = inst.children("pop3d")
    assert len(pids) == 1, pids
    return pids[0]


def test_pop3s_over_limit_refused_before_handshake(inst):
    """With pop3d_client_limit=5 taken by five logged-in-looking pop3s
    sessions, 200 more connections from the same address are each closed
    at once, with no byte of TLS, and the worker stays at its size."""
    src = "127.0.12.1"
    ctx = inst.tls_context()
    held = []
    extra = []
    try:
        for _ in range(5):
            s = ctx.wrap_socket(connect(inst.pop3s_port, src),
                                server_hostname="mx.example.test")
            s.settimeout(10)
            assert s.recv(100).startswith(b"+OK"), "greeting"
            held.append(s)
        pid = pop3d_pid(inst)
        rss0 = H.proc_status_kb(pid, "VmRSS")
        t0 = time.monotonic()
        for i in range(200):
            s = connect(inst.pop3s_port, src)
            extra.append(s)
            # a ClientHello would get no answer either: the socket is
            # closed before any TLS object exists
            closed, got = closed_within(s, 3.0)
            assert closed and got == b"", (i, closed, got)
            s.close()
        took = time.monotonic() - t0
        rss1 = H.proc_status_kb(pid, "VmRSS")
        bound = 20000 if SANITIZED else 2048
        assert rss1 - rss0 < bound, (rss0, rss1)
        assert took < 20, took
        # the sessions that were admitted are still served
        for s in held:
            s.sendall(b"NOOP\r\n")
            assert s.recv(100).startswith(b"-ERR Not logged in")
        print("200 refused pop3s connections: %.2fs, worker RSS %d -> %d kB"
              % (took, rss0, rss1))
        inst.wait_log(r"rejecting \[127\.0\.12\.1\]: -ERR \[SYS/TEMP\] Too "
                      r"many connections")
    finally:
        for s in held + extra:
            s.close()


def test_pop3s_handshake_deadline(inst):
    """A pop3s client that sends nothing, or trickles a ClientHello, is
    dropped after tls_handshake_timeout, not the 10 minute idle timeout."""
    since = inst.log_size()
    with connect(inst.pop3s_port, "127.0.12.2") as s:
        t0 = time.monotonic()
        closed, got = closed_within(s, HANDSHAKE_S + 6)
        took = time.monotonic() - t0
        assert closed and got == b"", (closed, got)
        assert HANDSHAKE_S - 0.5 <= took < HANDSHAKE_S + 5, took
    with connect(inst.pop3s_port, "127.0.12.2") as s:
        t0 = time.monotonic()
        closed = False
        for b in b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 4:
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            closed, got = closed_within(s, 0.5)
            if closed:
                break
        took = time.monotonic() - t0
        assert closed, "a trickled handshake was not cut"
        assert took < HANDSHAKE_S + 5, took
    inst.wait_log(r"disconnect from \[127\.0\.12\.2\] \(TLS handshake: "
                  r"timed out", since=since)


def test_stls_and_starttls_handshake_deadline(inst):
    """STLS (pop3d) and STARTTLS (smtpd) get the same handshake deadline."""
    with H.RawLines("127.0.0.1", inst.pop3_port, source="127.0.12.3") as c:
        assert c.readline().startswith(b"+OK")
        c.send(b"STLS\r\n")
        assert c.readline().startswith(b"+OK")
        t0 = time.monotonic()
        closed, got = closed_within(c.sock, HANDSHAKE_S + 6)
        assert closed and got == b"", (closed, got)
        assert time.monotonic() - t0 < HANDSHAKE_S + 5
    with H.RawSMTP("127.0.0.1", inst.port, source="127.0.12.3") as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(220, "STARTTLS")
        t0 = time.monotonic()
        closed, got = closed_within(c.sock, HANDSHAKE_S + 6)
        assert closed and got == b"", (closed, got)
        assert time.monotonic() - t0 < HANDSHAKE_S + 5


def test_smtpd_junk_command_limit(inst):
    """smtpd_junk_command_limit=5: five NOOPs are answered, the sixth gets
    421 4.7.0 and the session ends."""
    with H.RawSMTP("127.0.0.1", inst.port, source="127.0.12.4") as c:
        c.expect(220)
        for _ in range(5):
            c.expect(250, "NOOP")
        code, lines = c.cmd("NOOP")
        assert code == 421 and lines[0].startswith(b"4.7.0"), (code, lines)
        assert b"junk" in lines[0]
        assert c.read_all(5) == b""
    inst.wait_log(r"too many junk commands after NOOP from "
                  r"\[127\.0\.12\.4\]")


def test_smtpd_junk_count_restarts_after_a_message(inst, token):
    """The count is per message: a client that sends mail is not cut."""
    with H.RawSMTP("127.0.0.1", inst.port, source="127.0.12.5") as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        for _ in range(4):
            c.expect(250, "NOOP")
        c.expect(250, "MAIL FROM:<a@example.org>")
        c.expect(250, "RCPT TO:<bob@example.test>")
        c.expect(354, "DATA")
        c.send("Subject: %s\r\n\r\nbody\r\n.\r\n" % token)
        c.expect(250)
        for _ in range(5):
            c.expect(250, "RSET")
        assert c.cmd("RSET")[0] == 421


def test_pop3d_junk_command_limit(inst):
    """pop3d_junk_command_limit=3 after login: the fourth NOOP ends it."""
    with H.RawLines("127.0.0.1", inst.pop3_port, source="127.0.12.6") as c:
        assert c.readline().startswith(b"+OK")
        c.send(b"USER alice@example.test\r\n")
        assert c.readline().startswith(b"+OK")
        c.send(b"PASS pw-alice\r\n")
        assert c.readline().startswith(b"+OK")
        for _ in range(3):
            c.send(b"NOOP\r\n")
            assert c.readline().startswith(b"+OK")
        c.send(b"NOOP\r\n")
        assert c.readline() == b"-ERR Too many commands\r\n"
        assert c.read_all(5) == b""


def flood(sock, total, chunk=64 * 1024, seconds=20.0):
    """Send up to total bytes of 'A' (no line feed) until the server cuts
    the connection; the bytes sent, and whether it was cut."""
    data = b"A" * chunk
    sent = 0
    deadline = time.monotonic() + seconds
    sock.settimeout(5)
    while sent < total and time.monotonic() < deadline:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return sent, True
        except socket.timeout:
            break	# the server stopped reading
        sent += len(data)
    return sent, False


def test_pop3d_preauth_bytes_bounded(inst):
    """50 MB without a line feed before login: the session ends after
    pop3d_preauth_input_limit (64 KB) with -ERR; what the client gets
    through is that plus the sockets' buffers, not the 50 MB (before, the
    reader skipped the over-long line for as long as bytes came)."""
    since = inst.log_size()
    with connect(inst.pop3_port, "127.0.12.7") as s:
        s.settimeout(10)
        assert s.recv(100).startswith(b"+OK")
        sent, cut = flood(s, 50 * 1024 * 1024)
        if not cut:
            closed, got = closed_within(s, 5)
            cut = closed or b"-ERR Too much input" in got
        assert cut, "still open after %d bytes" % sent
        assert sent < 24 * 1024 * 1024, sent
    m = inst.wait_log(r"too much input before login from \[127\.0\.12\.7\] "
                      r"\((\d+) bytes\)", since=since)
    taken = int(m.group(1))
    assert taken <= 64 * 1024 + 16 * 1024, taken
    print("pop3d pre-login flood: client sent %d bytes, server took %d"
          % (sent, taken))


def test_smtpd_bytes_between_commands_bounded(inst):
    """A command line that never ends: 421 after SESSION_RUNAWAY_MAX."""
    since = inst.log_size()
    with H.RawSMTP("127.0.0.1", inst.port, source="127.0.12.8") as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        sent, cut = flood(c.sock, 50 * 1024 * 1024)
        if not cut:
            closed, got = closed_within(c.sock, 5)
            cut = closed or b"421 4.7.0" in got
        assert cut, "still open after %d bytes" % sent
        assert sent < 24 * 1024 * 1024, sent
    inst.wait_log(r"too much input without a line end after EHLO from "
                  r"\[127\.0\.12\.8\]", since=since)


def test_smtpd_big_message_then_commands(inst, token):
    """Message content is not "input without a line end": after a 300 KB
    DATA and BDAT the session goes on."""
    body = ("x" * 70 + "\r\n") * 4300
    with H.RawSMTP("127.0.0.1", inst.port, source="127.0.12.9") as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(250, "MAIL FROM:<a@example.org>")
        c.expect(250, "RCPT TO:<bob@example.test>")
        c.expect(354, "DATA")
        c.send("Subject: %s\r\n\r\n%s.\r\n" % (token, body))
        c.expect(250)
        c.expect(250, "MAIL FROM:<a@example.org>")
        c.expect(250, "RCPT TO:<bob@example.test>")
        data = ("Subject: %s-b\r\n\r\n%s" % (token, body)).encode()
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        c.expect(250)
        c.expect(250, "NOOP")

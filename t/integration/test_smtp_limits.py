"""
smtpd limits and envelope checks: recipients per message, errors per
session, sessions per client address, idle timeout, CR/LF/NUL in envelope
fields, low spool space (452 4.3.1); and what local does at its limits:
over quota (5.2.2 bounce to the sender) and too many hops (5.4.6).
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import herald as H


@pytest.fixture(scope="module")
def limited(tmp_path_factory, pki):
    import conftest
    with conftest.standard_instance(
            tmp_path_factory, pki, "limited", smtpd_workers=1,
            smtpd_recipient_limit=3, smtpd_error_limit=3,
            smtpd_client_limit=2, smtpd_idle_timeout="2s") as inst:
        yield inst


def greet(c):
    c.expect(220)
    c.expect(250, "EHLO client.example.test")


def test_recipient_limit_452(limited):
    with limited.raw() as c:
        greet(c)
        c.expect(250, "MAIL FROM:<a@example.org>")
        for user in ("alice", "bob", "carol"):
            c.expect(250, "RCPT TO:<%s@example.test>" % user)
        code, lines = c.cmd("RCPT TO:<dave@example.test>")
        assert code == 452 and lines[0].startswith(b"4.5.3"), (code, lines)


def test_error_limit_disconnects(limited):
    with limited.raw() as c:
        greet(c)
        for _ in range(2):
            assert c.cmd("FROBNICATE")[0] == 500
        code, lines = c.cmd("FROBNICATE")
        # the third error gets 421 (or its 500 followed by 421) and EOF
        text = c.read_all(5)
        assert code == 421 or text.startswith(b"421"), (code, lines, text)
        assert b"too many errors" in b" ".join(lines) + text


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_error_limit_at_reject_is_final(limited, token, how):
    """The error that reaches smtpd_error_limit is the reject of a message
    (bare LF); a whole second transaction pipelined behind it in the same
    write must get no reply and must not be queued: 550, 421, EOF."""
    bad = b"Subject: bad\r\n\r\nbare\nLF\r\n"
    good = ("Subject: %s\r\n\r\n%s\r\n" % (token, token)).encode()
    sender = "%s@example.org" % token
    mark = limited.log_size()
    with limited.raw() as c:
        greet(c)
        for _ in range(2):
            assert c.cmd("FROBNICATE")[0] == 500
        c.expect(250, "MAIL FROM:<a@example.org>")
        c.expect(250, "RCPT TO:<alice@example.test>")
        if how == "DATA":
            c.expect(354, "DATA")
            first = bad + b".\r\n"
            second = (b"DATA\r\n" + good + b".\r\n")
        else:
            first = b"BDAT %d LAST\r\n" % len(bad) + bad
            second = b"BDAT %d LAST\r\n" % len(good) + good
        c.send(first + ("MAIL FROM:<%s>\r\nRCPT TO:<alice@example.test>"
                        "\r\n" % sender).encode() + second +
               b"NOOP\r\nQUIT\r\n")
        code, lines = c.reply()
        assert code == 550 and lines[0].startswith(b"5.5.2"), (code, lines)
        code, lines = c.reply()
        assert code == 421 and b"too many errors" in lines[0], (code, lines)
        rest = c.read_all(5)
        assert rest == b"", rest
    limited.wait_log(r"disconnect from \[127\.0\.0\.1\].* commands=",
                     since=mark)
    time.sleep(1)
    assert "from=<%s>" % sender not in limited.log_text(mark)
    assert limited.messages_with(token, "alice") == []
    assert not any(token.encode() in _read(f)
                   for f in limited.queue_files())


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def test_sessions_per_client_limited(limited):
    first, second = limited.raw(), limited.raw()
    try:
        first.expect(220)
        second.expect(220)
        with limited.raw() as third:
            code, lines = third.reply()
            assert code == 421 and lines[0].startswith(b"4.7.0"), \
                (code, lines)
    finally:
        first.close()
        second.close()
    # once the others are gone, the address is welcome again
    H.wait_for(lambda: _greets(limited), timeout=10,
               what="a new session after the old ones closed")


def _greets(inst):
    with inst.raw() as c:
        return c.reply()[0] == 220


def test_idle_timeout_421(limited):
    with limited.raw() as c:
        greet(c)
        started = time.monotonic()
        code, lines = c.reply(timeout=15)
        assert code == 421 and lines[0].startswith(b"4.4.2"), (code, lines)
        assert time.monotonic() - started >= 1.5
        assert c.read_all(5) == b""


@pytest.mark.parametrize("line", [
    b"MAIL FROM:<a\x00b@example.org>",
    b"MAIL FROM:<a@example.org> ENVID=x\ry",
    b"HELO a\x00b",
])
def test_crlfnul_in_envelope_rejected(herald, line):
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        code, lines = c.cmd(line)
        assert code == 501, (line, code, lines)
        # the session goes on, and nothing was queued
        assert c.cmd("NOOP")[0] == 250


def test_rcpt_with_nul_rejected_nothing_queued(herald, token):
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(250, "MAIL FROM:<a@example.org>")
        code, lines = c.cmd(b"RCPT TO:<alice@example.test>\x00"
                            b"\r\nRCPT TO:<bob@example.test>")
        assert code == 501, (code, lines)
        assert c.reply()[0] == 250	# the second, well-formed RCPT
        c.expect(354, "DATA")
        c.send("Subject: %s\r\n\r\n%s\r\n.\r\n" % (token, token))
        code, lines = c.reply()
        assert code == 250, (code, lines)
    herald.wait_messages(token, "bob")
    time.sleep(0.5)
    assert herald.messages_with(token, "alice") == []


def test_over_quota_bounces_to_sender(make_herald, token):
    inst = make_herald()
    inst.ctl_ok("user", "quota", "dave@example.test", "1k")
    body = "%s\r\n" % token + ("x" * 76 + "\r\n") * 60
    with inst.smtp() as s:
        s.sendmail("bob@example.test", ["dave@example.test"],
                   "Subject: %s\r\n\r\n%s" % (token, body))
    bounces = inst.wait_messages(token, "bob", timeout=30)
    assert b"Status: 5.2.2" in bounces[0], bounces[0][:2000]
    assert b"dave@example.test" in bounces[0]
    assert inst.messages_with(token, "dave") == []
    H.wait_for(lambda: inst.queue_files() == [], timeout=20,
               what="an empty queue")


def test_too_many_hops_bounces(make_herald, token):
    inst = make_herald(hopcount_limit=5)
    hops = "".join("Received: from hop%d.example.org by x; "
                   "Mon, 23 Nov 2026 00:00:00 +0000\r\n" % i
                   for i in range(5))
    with inst.smtp() as s:
        s.sendmail("bob@example.test", ["alice@example.test"],
                   "%sSubject: %s\r\n\r\n%s\r\n" % (hops, token, token))
    bounces = inst.wait_messages(token, "bob", timeout=30)
    assert b"Status: 5.4.6" in bounces[0], bounces[0][:2000]
    assert inst.messages_with(token, "alice") == []


def test_low_spool_space_452(make_herald, tmp_path):
    """MAIL gets 452 4.3.1 while the spool has less than 1.5 x the size
    limit free; needs root for a small tmpfs."""
    with H.small_tmpfs(tmp_path / "tiny-spool", "8m", "spool") as spool:
        inst = make_herald(spool_directory=str(spool),
                           message_size_limit="10M")
        with inst.raw() as c:
            c.expect(220)
            c.expect(250, "EHLO client.example.test")
            code, lines = c.cmd("MAIL FROM:<a@example.org>")
            assert code == 452 and lines[0].startswith(b"4.3.1"), \
                (code, lines)
        inst.stop()


# ------------------------------------------- per-client limits over workers

CONNECT_RE = r"herald/smtpd\[(\d+)\]: connect from \[127\.0\.0\.1\]"


def _connect(inst):
    """A new SMTP connection: (client, reply code, pid of the worker that
    logged its connect line). Connections are made one at a time, so the
    first connect line after the mark is this one's."""
    mark = inst.log_size()
    c = inst.raw()
    code, lines = c.reply()
    m = inst.wait_log(CONNECT_RE, since=mark)
    return c, code, lines, int(m.group(1))


class _Stopped:
    """SIGSTOP the given workers for the block (SIGCONT even on failure),
    so that connections go to the others."""

    def __init__(self, *pids):
        self.pids = pids

    def __enter__(self):
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def test_client_limit_counts_all_workers(make_herald):
    """smtpd_client_limit=3 with two workers: sessions held in both count
    together; a worker that holds fewer than 3 itself still turns the 4th
    away; SIGKILL of a worker frees its sessions' counts."""
    inst = make_herald(smtpd_workers=2, smtpd_client_limit=3)
    H.wait_for(lambda: len(inst.children("smtpd")) == 2, timeout=20,
               what="two smtpd workers")
    a, b = inst.children("smtpd")
    held = []
    try:
        with _Stopped(a):	# b takes these two
            for _ in range(2):
                c, code, lines, pid = _connect(inst)
                held.append(c)
                assert (code, pid) == (220, b), (code, lines, pid, a, b)
        with _Stopped(b):	# a takes the third, and turns the 4th away
            c, code, lines, pid = _connect(inst)
            held.append(c)
            assert (code, pid) == (220, a), (code, lines, pid, a, b)
            c, code, lines, pid = _connect(inst)
            c.close()
            assert pid == a, (pid, a, b)
            assert code == 421 and lines[0].startswith(b"4.7.0"), \
                (code, lines)
        with _Stopped(a):	# b holds 2 of its own: over the limit too
            c, code, lines, pid = _connect(inst)
            c.close()
            assert pid == b, (pid, a, b)
            assert code == 421 and lines[0].startswith(b"4.7.0"), \
                (code, lines)
        # b dies with its two sessions; a still holds one
        mark = inst.log_size()
        os.kill(b, signal.SIGKILL)
        inst.wait_log(r"service smtpd pid %d killed by signal 9" % b,
                      since=mark)
        for c in held[:2]:
            assert c.read_all(5) == b""	# b's clients see the end
        for _ in range(2):
            c, code, lines, pid = _connect(inst)
            held.append(c)
            assert code == 220, (code, lines, pid)
        c, code, lines, pid = _connect(inst)
        c.close()
        assert code == 421 and lines[0].startswith(b"4.7.0"), (code, lines)
    finally:
        for c in held:
            c.close()


def _unix_smtp(path, timeout=10):
    """A RawSMTP on a UNIX socket (the submit socket), as this process."""
    c = H.RawSMTP.__new__(H.RawSMTP)
    c.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.sock.settimeout(timeout)
    c.sock.connect(str(path))
    c.timeout = timeout
    c.buf = b""
    return c


# run as another user: connect to the submit socket, print the greeting
# line, hold the session until standard input closes
HOLD_SCRIPT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
data = b""
while b"\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\n")[0].decode(errors="replace").strip() or "EOF",
      flush=True)
sys.stdin.read()
"""


def test_submit_limit_per_uid(pki, token):
    """smtpd_submit_uid_limit=2: user nobody holds two local submission
    sessions and gets 421 for a third; root still submits. Needs root to
    run the sessions as nobody."""
    import conftest
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user (uid %d)"
                    % os.geteuid())
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody on this machine")
    # pytest's temporary folders are 0700: nobody could not reach the
    # socket in them
    folder = Path(tempfile.mkdtemp(prefix="herald-uid-", dir="/tmp"))
    os.chmod(folder, 0o755)
    inst = H.HeraldInstance(folder, pki=pki, smtpd_submit_uid_limit=2,
                            smtpd_client_limit=100)
    holders = []
    try:
        conftest.setup_standard_directory(inst)
        inst.start()
        submit = inst.run_dir / "submit"

        def hold():
            p = subprocess.Popen(
                [sys.executable, "-c", HOLD_SCRIPT, str(submit)],
                user="nobody", stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            holders.append(p)
            return p.stdout.readline().decode().strip()

        assert hold().startswith("220 "), inst.log_tail(20)
        assert hold().startswith("220 ")
        third = hold()
        assert third.startswith("421 4.7.0"), third
        assert "too many connections from uid %d" \
            % pwd.getpwnam("nobody").pw_uid in third, third
        # another uid is not blocked by nobody's sessions
        with _unix_smtp(submit) as c:
            c.expect(220)
            c.expect(250, "EHLO localhost")
            c.expect(250, "MAIL FROM:<root@example.test>")
            c.expect(250, "RCPT TO:<alice@example.test>")
            c.expect(354, "DATA")
            c.send("Subject: %s\r\n\r\n%s\r\n.\r\n" % (token, token))
            code, lines = c.reply()
            assert code == 250, (code, lines)
            c.expect(221, "QUIT")
        inst.wait_messages(token, "alice")
    finally:
        for p in holders:
            try:
                p.stdin.close()
                p.wait(timeout=10)
            except Exception:
                p.kill()
                p.wait()
            p.stdout.close()
        try:
            conftest._finish(inst)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

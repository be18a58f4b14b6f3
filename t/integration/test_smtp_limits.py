"""
smtpd limits and envelope checks: recipients per message, errors per
session, sessions per client address, idle timeout, CR/LF/NUL in envelope
fields, low spool space (452 4.3.1); and what local does at its limits:
over quota (a 4.2.2 deferral by default, a 5.2.2 bounce to the sender with
quota_exceeded_bounce = yes) and too many hops (5.4.6).
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


def test_over_quota_defers_by_default(make_herald, token):
    inst = make_herald()
    inst.ctl_ok("user", "quota", "dave@example.test", "1k")
    body = "%s\r\n" % token + ("x" * 76 + "\r\n") * 60
    since = inst.log_size()
    with inst.smtp() as s:
        s.sendmail("bob@example.test", ["dave@example.test"],
                   "Subject: %s\r\n\r\n%s" % (token, body))
    inst.wait_log(r"to=<dave@example.test>, .*dsn=4\.2\.2, "
                  r"status=deferred \(.*mailbox full\)", timeout=30,
                  since=since)
    # the message waits in the queue for room; nothing went back to bob
    assert inst.queue_files() != []
    time.sleep(0.5)
    assert inst.messages_with(token, "bob") == []
    assert inst.messages_with(token, "dave") == []


def test_over_quota_bounces_to_sender(make_herald, token):
    inst = make_herald(quota_exceeded_bounce="yes")
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


# ------------------------------------------- stalled DATA and the spool


def _open_tx(inst, source, mail="MAIL FROM:<a@example.org>"):
    """A session from source (127.x.y.z) that is through MAIL: (client,
    code, lines of the MAIL reply)."""
    c = H.RawSMTP("127.0.0.1", inst.port, timeout=20, source=source)
    c.expect(220)
    c.expect(250, "EHLO client.example.test")
    code, lines = c.cmd(mail)
    return c, code, lines


def _spool_free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


STALL_BYTES = 4900000


def test_stalled_data_cannot_starve_others(make_herald, tmp_path, token):
    """A 20 MB spool, message_size_limit 5M, queue_minfree 1M, one worker.
    Four senders (four addresses) open transactions without SIZE=: each
    reserves 5 MiB, and MAIL needs free space less reservations of 1.5 x
    5 MiB + 1 MiB, so the fourth gets 452 4.3.1. The three send 4.9 MB of
    DATA and stall. A message that declares SIZE=1000 is still accepted
    and delivered; one without SIZE= gets 452 4.3.1 (it could be 5 MiB);
    when a staller goes away its file and its reservation go with it and
    unsized mail is welcome again. (Today's main: the small sender gets
    452 too, because free space is checked against 1.5 x the size limit
    whatever the message declares and nothing is reserved.)"""
    with H.small_tmpfs(tmp_path / "spool20", "20m", "spool") as spool:
        inst = make_herald(spool_directory=str(spool),
                           message_size_limit="5M", queue_minfree="1M",
                           smtpd_workers=1, smtpd_min_data_rate=0)
        stallers = []
        try:
            for i in range(4):
                c, code, lines = _open_tx(inst, "127.0.0.%d" % (10 + i))
                stallers.append(c)
                if i < 3:
                    assert code == 250, (i, code, lines)
                else:
                    assert code == 452 and lines[0].startswith(b"4.3.1"), \
                        (i, code, lines)
            before = _spool_free(spool)
            chunk = b"x" * 78 + b"\r\n"
            body = chunk * (STALL_BYTES // len(chunk))
            for c in stallers[:3]:
                c.expect(250, "RCPT TO:<alice@example.test>")
                c.expect(354, "DATA")
                c.send(b"Subject: stall\r\n\r\n" + body)
            # the content is in (unlinked) queue files: free space fell
            H.wait_for(lambda: before - _spool_free(spool) >=
                       3 * STALL_BYTES - 200000, timeout=20,
                       what="the stallers' content in the spool")
            time.sleep(1.2)	# older than smtpd's 1 s free-space cache
            # a small message still gets through
            c, code, lines = _open_tx(
                inst, "127.0.0.20",
                "MAIL FROM:<%s@example.org> SIZE=1000" % token)
            try:
                assert code == 250, (code, lines, _spool_free(spool))
                c.expect(250, "RCPT TO:<alice@example.test>")
                c.expect(354, "DATA")
                c.send("Subject: %s\r\n\r\n%s\r\n.\r\n" % (token, token))
                code, lines = c.reply()
                assert code == 250, (code, lines)
            finally:
                c.close()
            inst.wait_messages(token, "alice")
            # one without SIZE= could be 5 MiB: no room for it
            c, code, lines = _open_tx(inst, "127.0.0.21")
            c.close()
            assert code == 452 and lines[0].startswith(b"4.3.1"), \
                (code, lines)
            # a staller leaves: its file and reservation are released
            stallers[0].close()

            def unsized_ok():
                c, code, _ = _open_tx(inst, "127.0.0.22")
                c.close()
                return code == 250
            H.wait_for(unsized_ok, timeout=20,
                       what="room for an unsized message again")
        finally:
            for c in stallers:
                c.close()
            inst.stop()


def test_transactions_per_client_over_workers(make_herald):
    """smtpd_client_transaction_limit=2 with two workers: one open
    transaction from 127.0.0.1 in each worker, and a third session's MAIL
    gets 452 4.3.2 though its worker holds only one; another address is
    not affected; after RSET in one of the two the third gets its MAIL."""
    inst = make_herald(smtpd_workers=2, smtpd_client_limit=10,
                       smtpd_client_transaction_limit=2)
    H.wait_for(lambda: len(inst.children("smtpd")) == 2, timeout=20,
               what="two smtpd workers")
    a, b = inst.children("smtpd")
    held = []

    def through_ehlo():
        c, code, lines, pid = _connect(inst)
        held.append(c)
        assert code == 220, (code, lines)
        c.expect(250, "EHLO client.example.test")
        return c, pid

    try:
        with _Stopped(a):
            first, pid = through_ehlo()
            assert pid == b, (pid, a, b)
            first.expect(250, "MAIL FROM:<a@example.org>")
        with _Stopped(b):
            second, pid = through_ehlo()
            assert pid == a, (pid, a, b)
            second.expect(250, "MAIL FROM:<a@example.org>")
            third, pid = through_ehlo()
            assert pid == a, (pid, a, b)
            code, lines = third.cmd("MAIL FROM:<a@example.org>")
            assert code == 452 and lines[0].startswith(b"4.3.2"), \
                (code, lines)
            # the session goes on, and another address has its own count
            assert third.cmd("NOOP")[0] == 250
            c, code, lines = _open_tx(inst, "127.0.0.30")
            held.append(c)
            assert code == 250, (code, lines)
        first.expect(250, "RSET")
        third.expect(250, "MAIL FROM:<a@example.org>")
    finally:
        for c in held:
            c.close()


def _trickle_until_reply(c, every, limit):
    """Send one byte every `every` seconds until a reply or EOF arrives
    (at most limit seconds): (code, lines, seconds), code None if the
    time ran out."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            c.send(b"x")
        except OSError:
            pass	# the server closed: its reply is still readable
        try:
            code, lines = c.reply(timeout=every)
            return code, lines, time.monotonic() - started
        except (socket.timeout, TimeoutError):
            continue
    return None, [], time.monotonic() - started


def test_min_data_rate(make_herald, tmp_path, token):
    """smtpd_min_data_rate=1000 bytes/s with a 2 s window: a client that
    trickles one byte a second after DATA gets 421 4.4.2 after about the
    window and the connection closes; one that sends 3 MB and then stalls
    is cut as soon, and its queue file's space comes back; a client that
    keeps up (about 60 kB/s for 5 s, longer than the window) gets its
    message queued. (Today's main waits for the 300 s idle timeout.)"""
    with H.small_tmpfs(tmp_path / "spool-rate", "20m", "spool") as spool:
        inst = make_herald(spool_directory=str(spool),
                           smtpd_min_data_rate=1000,
                           smtpd_data_rate_window="2s",
                           message_size_limit="5M", queue_minfree="0")
        try:
            mark = inst.log_size()
            c, code, lines = _open_tx(inst, "127.0.0.40")
            with c:
                assert code == 250, (code, lines)
                c.expect(250, "RCPT TO:<alice@example.test>")
                c.expect(354, "DATA")
                code, lines, took = _trickle_until_reply(c, 1.0, 15)
                assert code == 421 and lines[0].startswith(b"4.4.2"), \
                    (code, lines, took)
                assert 1.5 <= took <= 8, took
                assert c.read_all(5) == b""
            inst.wait_log(r"data rate too low from \[127\.0\.0\.40\]",
                          since=mark)

            before = _spool_free(spool)
            c, code, lines = _open_tx(inst, "127.0.0.41")
            with c:
                assert code == 250, (code, lines)
                c.expect(250, "RCPT TO:<alice@example.test>")
                c.expect(354, "DATA")
                c.send(b"Subject: stall\r\n\r\n" +
                       (b"y" * 98 + b"\r\n") * 30000)
                H.wait_for(lambda: before - _spool_free(spool) >= 2900000,
                           timeout=10, what="3 MB in the spool")
                started = time.monotonic()
                code, lines = c.reply(timeout=15)
                took = time.monotonic() - started
                assert code == 421 and lines[0].startswith(b"4.4.2"), \
                    (code, lines)
                assert took <= 8, took
            H.wait_for(lambda: before - _spool_free(spool) < 500000,
                       timeout=10, what="the dropped file's space back")

            c, code, lines = _open_tx(inst, "127.0.0.42")
            with c:
                assert code == 250, (code, lines)
                c.expect(250, "RCPT TO:<alice@example.test>")
                c.expect(354, "DATA")
                c.send("Subject: %s\r\n\r\n" % token)
                line = b"z" * 98 + b"\r\n"
                for _ in range(20):	# 20 x 15 kB, one every 0.25 s
                    c.send(line * 150)
                    time.sleep(0.25)
                c.send(b".\r\n")
                code, lines = c.reply(timeout=15)
                assert code == 250, (code, lines)
            inst.wait_messages(token, "alice")
        finally:
            inst.stop()

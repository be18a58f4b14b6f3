"""
test_queue_requeue - heraldctl queue requeue (qmgr/qmgr_requeue.c): mail
that waits for a next hop that is gone is routed anew from the directory
as it is now, at once; the flush of one message brings back its dead
destination (qmgr_dest.c); domain add warns about a transport that a
hosted domain makes useless.

  A  a herald instance, a.test, alice; sends with sendmail. Remote
     destinations are reached through transports to [127.0.0.1]:PORT,
     so no DNS is asked. initial_destination_concurrency = 1: one refused
     connection makes a domain dead (for minimal_backoff_time, 3600 s,
     also the retry gap: retries come only from the operator).
  S  a plain SMTP stub (threads in this process) on 127.0.0.1 that takes
     any mail and records the RCPT commands; one per test, started only
     when the test "brings the server up".

The fixture stops A, and each test its stub, also when a test fails.
"""
import json
import re
import socket
import socketserver
import subprocess
import threading
import time

import pytest

import herald as H

pytestmark = pytest.mark.skipif(not H.have_binaries("remote"),
                                reason="the remote binary is missing")


class Stub(socketserver.ThreadingTCPServer):
    """Takes any mail; rcpts: every RCPT address it was given."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr):
        self.rcpts = []
        self.lock = threading.Lock()
        super().__init__(addr, StubHandler)


class StubHandler(socketserver.StreamRequestHandler):
    timeout = 20

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 stub.test ESMTP")
        for _ in range(1000):
            line = self.rfile.readline(1000)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode(errors="replace")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.reply("250-stub.test\r\n250 8BITMIME")
            elif verb == "RCPT":
                with self.server.lock:
                    self.server.rcpts.append(
                        cmd.split("<", 1)[1].split(">", 1)[0])
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                for _ in range(100000):
                    b = self.rfile.readline(10000)
                    if not b or b == b".\r\n":
                        break
                self.reply("250 2.0.0 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb in ("MAIL", "RSET", "NOOP"):
                self.reply("250 2.0.0 ok")
            else:
                self.reply("502 5.5.1 not here")


class StubUp:
    """A stub on 127.0.0.1:port for the with block (the server is up)."""

    def __init__(self, port):
        self.srv = Stub(("127.0.0.1", port))
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def __enter__(self):
        return self.srv

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()	# nobody listens there now
    return port


def sendmail(inst, rcpts, data):
    r = subprocess.run([str(H.binpath("sendmail")), "-C", str(inst.conf),
                        "-f", "alice@a.test"] + list(rcpts),
                       input=data.encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r


def message(token, to):
    return ("From: alice@a.test\nTo: %s\nSubject: requeue %s\n\nhello %s\n"
            % (to, token, token))


def outcome(inst, rcpt, since, status, timeout=30):
    """The queue id and line of rcpt's log line with status."""
    m = inst.wait_log(r"(%s): to=<%s>, relay=\S+, .*status=%s.*$"
                      % (H.QID_RE, re.escape(rcpt), status),
                      timeout=timeout, since=since)
    return m.group(1), m.group(0)


def in_deferred(inst, qid):
    H.wait_for(lambda: any(p.name == qid for p in
                           inst.queue_files(("deferred",))),
               15, what="%s in deferred/" % qid)


def dead_destination(inst, domain, port, token, since):
    """Mail to domain (transport to the closed port) was refused once,
    which makes the domain dead; its queue id, waiting in deferred/."""
    rcpt = "x-%s@%s" % (token[-8:], domain)
    inst.ctl_ok("transport", "add", domain, "[127.0.0.1]:%d" % port)
    sendmail(inst, [rcpt], message(token, rcpt))
    qid, line = outcome(inst, rcpt, since, "deferred")
    assert "Connection refused" in line, line
    inst.wait_log(r"destination %s: delivery temporarily suspended for "
                  r"3600s: .*Connection refused" % re.escape(domain),
                  since=since)
    in_deferred(inst, qid)
    return qid, rcpt


@pytest.fixture(scope="module")
def a(tmp_path_factory):
    folder = tmp_path_factory.mktemp("requeue")
    inst = None
    try:
        inst = H.HeraldInstance(folder / "a", myhostname="mx.a.test",
                                initial_destination_concurrency="1",
                                minimal_backoff_time="3600s",
                                maximal_backoff_time="3600s")
        inst.start()
        inst.add_domain("a.test")
        inst.add_user("alice@a.test")
        yield inst
    finally:
        if inst is not None:
            inst.stop()


def test_flush_of_one_message_revives_its_dead_destination(a, token):
    """A destination refused once is dead; its server comes back; the
    flush of that one message tries it at once instead of deferring it
    again with "delivery temporarily suspended"."""
    port = closed_port()
    since = a.log_size()
    qid, rcpt = dead_destination(a, "dead1.test", port, token, since)
    # a second message to it is not even tried: the domain is dead
    rcpt2 = "y-%s@dead1.test" % token[-8:]
    sendmail(a, [rcpt2], message(token + "-2", rcpt2))
    _, line = outcome(a, rcpt2, since, "deferred")
    assert "delivery temporarily suspended" in line, line
    doc = json.loads(a.ctl_ok("--json", "status").stdout)
    assert any(d["domain"] == "dead1.test" and d["dead"]
               for d in doc["remote_destinations"]), doc
    with StubUp(port) as srv:
        mid = a.log_size()
        r = a.ctl("queue", "flush", qid)
        assert r.returncode == 0, r
        assert r.stdout.strip() == "%s: scheduled for delivery" % qid, r
        got, line = outcome(a, rcpt, mid, "sent", timeout=15)
        assert got == qid, line
        a.wait_log(r"destination dead1\.test: delivery resumed \(queue "
                   r"flush of %s\)" % qid, since=mid, timeout=10)
        with srv.lock:
            assert rcpt in srv.rcpts, srv.rcpts
        # the other message was not flushed: it still waits
        assert any(p.name != qid for p in a.queue_files(("deferred",)))
        a.ctl_ok("queue", "delete", "--domain", "dead1.test")
    a.ctl_ok("transport", "del", "dead1.test")


def test_requeue_takes_the_new_transport(a, token):
    """Mail waits for a next hop that is gone (refused, the domain dead,
    the next retry an hour away); the admin points the transport
    elsewhere and requeues: it goes there at once. The recipient
    delivered before is not delivered again, and the arrival time stays
    (delay= counts from it)."""
    port = closed_port()
    since = a.log_size()
    rcpt = "x-%s@moved.test" % token[-8:]
    a.ctl_ok("transport", "add", "moved.test", "[127.0.0.1]:%d" % port)
    sent_at = time.time()
    sendmail(a, ["alice@a.test", rcpt], message(token, rcpt))
    qid, line = outcome(a, rcpt, since, "deferred")
    assert "Connection refused" in line, line
    a.wait_messages(token, "alice", domain="a.test")
    in_deferred(a, qid)
    show = json.loads(a.ctl_ok("--json", "queue", "show", qid).stdout)
    with StubUp(closed_port()) as srv:
        a.ctl_ok("transport", "add", "moved.test",
                 "[127.0.0.1]:%d" % srv.server_address[1])
        time.sleep(2.5)	# the next retry is an hour away: nothing moves
        with srv.lock:
            assert srv.rcpts == [], srv.rcpts
        mid = a.log_size()
        r = a.ctl("queue", "requeue", qid)
        assert r.returncode == 0, r
        assert r.stdout.strip() == "%s: requeued" % qid, r
        got, line = outcome(a, rcpt, mid, "sent", timeout=15)
        assert got == qid, line
        a.wait_log(r"%s: requeued by operator request \(1 dead "
                   r"destination\(s\) revived\)" % qid, since=mid)
        a.wait_log(r"herald/remote\[\d+\]: %s: to=<%s>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, .*status=delivered"
                   % (qid, re.escape(rcpt), srv.server_address[1]),
                   since=mid)
        delay = float(re.search(r"delay=([\d.]+)", line).group(1))
        assert delay >= time.time() - sent_at - 3 - 1, (delay, line)
        with srv.lock:
            assert srv.rcpts == [rcpt], srv.rcpts
    a.wait_queue_empty(timeout=20)
    # alice's copy was delivered before the requeue and not again
    assert len(a.messages_with(token, "alice", "a.test")) == 1
    assert show["recipients"][0]["status"] == "delivered", show
    a.ctl_ok("transport", "del", "moved.test")


def test_requeue_of_a_domain_hosted_since(a, token):
    """Mail for a domain that was sent on waits; the domain is hosted
    here now (domain add warns that its transport is ignored from now
    on): a requeue delivers it to the local mailbox at once."""
    port = closed_port()
    since = a.log_size()
    qid, rcpt = dead_destination(a, "became.test", port, token, since)
    r = a.ctl("domain", "add", "became.test")
    assert r.returncode == 0, r
    assert r.stdout.strip() == "domain became.test added", r
    assert ("heraldctl: warning: became.test has a transport "
            "([127.0.0.1]:%d), which is ignored from now on: mail to "
            "became.test is delivered to mailboxes here, never sent to "
            "[127.0.0.1]:%d; \"heraldctl transport del became.test\" "
            "removes it" % (port, port)) in r.stderr, r
    # the other way round: a transport for a hosted domain is refused
    r = a.ctl("transport", "add", "a.test", "[127.0.0.1]:%d" % port)
    assert r.returncode == 1 and "a.test is a hosted domain" in r.stderr, r
    # a domain without a transport: no warning
    r = a.ctl("domain", "add", "plain-%s.test" % token[-8:].lower())
    assert r.returncode == 0 and r.stderr == "", r
    user = rcpt.split("@")[0]
    a.add_user(rcpt)
    mid = a.log_size()
    r = a.ctl("queue", "requeue", qid)
    assert r.returncode == 0, r
    got, line = outcome(a, rcpt, mid, "sent", timeout=15)
    assert got == qid and "relay=local" in line, line
    assert a.wait_messages(token, user, domain="became.test")
    a.ctl_ok("transport", "del", "became.test")


def test_requeue_held_selection_and_errors(a, token):
    """A held message stays held (and says so); a selection requeues
    what it matches; unknown ids and no selection are errors."""
    port = closed_port()
    since = a.log_size()
    qid, rcpt = dead_destination(a, "held.test", port, token, since)
    a.ctl_ok("queue", "hold", qid)
    r = a.ctl("queue", "requeue", qid)
    assert r.returncode == 0, r
    assert r.stdout.strip() == ("%s: on hold, stays held (routed anew "
                                "when released)" % qid), r
    assert any(p.name == qid for p in a.queue_files(("hold",)))
    r = a.ctl("queue", "requeue", "--domain", "held.test")
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == [
        "%s: on hold, stays held (routed anew when released)" % qid,
        "1 message requeued"], r
    assert any(p.name == qid for p in a.queue_files(("hold",)))
    r = a.ctl("queue", "requeue", "0" * 17)
    assert r.returncode == 1 and "no such message" in r.stderr, r
    r = a.ctl("queue", "requeue")
    assert r.returncode == 1 and "which messages" in r.stderr, r
    r = a.ctl("queue", "requeue", "../x")
    assert r.returncode == 1 and "not a queue id" in r.stderr, r
    r = a.ctl("queue", "requeue", "--help")
    assert r.returncode == 0 and "postsuper -r" in r.stdout, r
    a.ctl_ok("queue", "delete", qid)
    a.ctl_ok("transport", "del", "held.test")


def test_requeue_while_stopped(a, token):
    """With herald stopped, requeue makes a deferred message due on the
    files; at start it goes to the next hop the directory names now."""
    port = closed_port()
    since = a.log_size()
    qid, rcpt = dead_destination(a, "later.test", port, token, since)
    a.stop()
    with StubUp(closed_port()) as srv:
        a.ctl_ok("transport", "add", "later.test",
                 "[127.0.0.1]:%d" % srv.server_address[1])
        r = a.ctl("queue", "requeue", qid)
        assert r.returncode == 0, r
        assert r.stdout.strip() == "%s: requeued" % qid, r
        r = a.ctl("queue", "requeue", "0" * 17)
        assert r.returncode == 1 and "no such message" in r.stderr, r
        mid = a.log_size()
        a.start()
        got, line = outcome(a, rcpt, mid, "sent", timeout=20)
        assert got == qid, line
    a.ctl_ok("transport", "del", "later.test")

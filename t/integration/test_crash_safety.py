"""
Crash safety (DESIGN.md section 4): a message that got a 250 is never lost
when qmgr and local die at random moments; a message whose smtpd died
during DATA leaves nothing behind.

HERALD_CRASH_MESSAGES (default 2000: the load sends at least that many, and
goes on until the killer has struck five times) and HERALD_CRASH_SESSIONS
(10) scale the load test.
"""
import os
import random
import signal
import threading
import time

import herald as H

N_MESSAGES = int(os.environ.get("HERALD_CRASH_MESSAGES", "2000"))
N_SESSIONS = int(os.environ.get("HERALD_CRASH_SESSIONS", "10"))
SEND_DEADLINE = float(os.environ.get("HERALD_CRASH_SEND_SECONDS", "75"))
DRAIN_TIMEOUT = float(os.environ.get("HERALD_CRASH_DRAIN_SECONDS", "120"))
# the killer runs while mail is sent and delivered, at most this long
KILL_SECONDS = float(os.environ.get("HERALD_CRASH_KILL_SECONDS", "25"))
MIN_KILLS = 5


class Killer(threading.Thread):
    """SIGKILLs a random qmgr or local process every 0.2-1.0 s."""

    def __init__(self, inst, names=("qmgr", "local"), seed=None):
        super().__init__(daemon=True)
        self.inst = inst
        self.names = names
        self.stop_event = threading.Event()
        self.kills = []
        self.rng = random.Random(seed)

    def run(self):
        while not self.stop_event.wait(self.rng.uniform(0.2, 1.0)):
            victims = []
            for name in self.names:
                victims += [(name, p) for p in self.inst.children(name)]
            if not victims:
                continue
            name, pid = self.rng.choice(victims)
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills.append((time.monotonic(), name, pid))
            except ProcessLookupError:
                pass

    def stop(self):
        self.stop_event.set()
        self.join(10)


def test_no_loss_when_qmgr_and_local_are_killed(make_herald):
    inst = make_herald()
    run = os.urandom(4).hex()
    # N_MESSAGES at least, and more while the killer has not struck
    # MIN_KILLS times (a fast herald delivers 2,000 in a second or two)
    tokens = ["c%s-%06d" % (run, i) for i in range(N_MESSAGES * 20)]
    seed = int.from_bytes(os.urandom(4), "big")
    print("crash test seed %d, %d messages over %d sessions"
          % (seed, N_MESSAGES, N_SESSIONS))

    pattern = ("token (c%s-\\d{6})" % run).encode()
    killer = Killer(inst, seed=seed)
    start = time.monotonic()
    killer.start()
    try:
        load = H.SMTPLoad(inst, tokens, N_SESSIONS,
                          deadline=start + SEND_DEADLINE,
                          minimum=N_MESSAGES,
                          done=lambda: len(killer.kills) >= MIN_KILLS).run()
        send_time = time.monotonic() - start
        accepted = set(load.accepted)
        # go on killing while the queue drains, up to KILL_SECONDS
        while time.monotonic() - start < KILL_SECONDS:
            counts = H.maildir_tokens(inst, "alice", pattern)
            if accepted <= set(counts):
                break
            time.sleep(0.5)
    finally:
        killer.stop()
    kill_time = time.monotonic() - start
    print("sent in %.1fs: %d accepted, %d rejected, %d connection errors; "
          "%d kills in %.1fs (%s)" % (
              send_time, len(accepted), len(load.rejected), len(load.errors),
              len(killer.kills), kill_time,
              ", ".join("%s=%d" % (n, sum(1 for k in killer.kills
                                         if k[1] == n))
                        for n in killer.names)))
    if load.rejected:
        print("first rejections:", load.rejected[:5])
    assert len(killer.kills) >= MIN_KILLS, "the killer hardly ran"
    assert accepted, "nothing was accepted"

    def all_there():
        counts = H.maildir_tokens(inst, "alice", pattern)
        return counts if accepted <= set(counts) and inst.queue_empty() \
            else None
    try:
        counts = H.wait_for(all_there, DRAIN_TIMEOUT, interval=1,
                            what="every accepted message in the Maildir "
                                 "and an empty queue")
    except AssertionError:
        counts = H.maildir_tokens(inst, "alice", pattern)
    missing = sorted(accepted - set(counts))
    dups = sum(c - 1 for c in counts.values() if c > 1)
    extra = sorted(set(counts) - accepted)
    print("delivered %d distinct, %d duplicates, %d delivered without a "
          "250 seen, %d missing, queue files left: %d"
          % (len(counts), dups, len(extra), len(missing),
             len(inst.queue_files())))
    assert not missing, "LOST %d accepted messages, e.g. %s; queue: %s" % (
        len(missing), missing[:10],
        [str(p) for p in inst.queue_files()[:10]])
    # nothing may stay behind in the queue once all is delivered
    inst.wait_queue_empty(30)
    assert not inst.queue_files(("corrupt",)), \
        "files went to corrupt/: %s" % inst.queue_files(("corrupt",))
    # and master is still supervising a full set of services
    H.wait_for(lambda: len(inst.children("qmgr")) == 1, 20,
               what="qmgr running again")


def spool_holds(inst, needle):
    hits = []
    for dirpath, _dirs, files in os.walk(inst.spool):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                with open(p, "rb") as fh:
                    if needle in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def test_smtpd_killed_mid_data_leaves_nothing(make_herald, token):
    inst = make_herald()
    needle = ("partial-%s" % token).encode()
    old = set(H.wait_for(lambda: (lambda c: c if len(c) == 2 else None)(
        inst.children("smtpd")), 15, what="two smtpd workers"))
    with inst.raw(timeout=10) as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(250, "MAIL FROM:<k-%s@example.org>" % token)
        c.expect(250, "RCPT TO:<alice@example.test>")
        c.expect(354, "DATA")
        c.send(b"Subject: " + needle + b"\r\n\r\n" +
               (needle + b" body line\r\n") * 2000)
        time.sleep(0.5)	# let the worker read and write some of it
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        # the connection dies with the worker
        try:
            c.send(b"more\r\n.\r\n")
            data = c.read_all(5)
        except OSError:
            data = b""
        assert b"250" not in data, data
    assert H.wait_dead(old, 10), "smtpd workers did not die"
    # master brings smtpd back
    new = H.wait_for(lambda: (lambda n: n if len(n) == 2 else None)(
        set(inst.children("smtpd")) - old), 20, what="two new smtpd workers")
    assert not (new & old)
    # give qmgr a scan or two: nothing may show up anywhere
    time.sleep(5)
    assert spool_holds(inst, needle) == []
    for path in inst.all_mail_files():
        assert needle not in path.read_bytes(), path
    # and the instance still takes mail
    msg = H.make_message(token + "-after")
    with inst.smtp() as s:
        s.ehlo()
        assert s.sendmail("a@example.org", ["alice@example.test"], msg) == {}
    got = inst.wait_messages(token + "-after", "alice")
    H.split_delivered(got[0], msg)
    assert inst.messages_with(needle, "alice") == []


def test_smtpd_killed_after_dot_before_reply(make_herald, token):
    """Kill the workers right after the final dot: the message is either
    delivered (if the 250 was on its way) or absent, never half there."""
    inst = make_herald()
    needle = ("dotkill-%s" % token).encode()
    body = b"Subject: " + needle + b"\r\n\r\n" + \
        (needle + b" line\r\n") * 500
    old = set(inst.children("smtpd"))
    with inst.raw(timeout=10) as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(250, "MAIL FROM:<d-%s@example.org>" % token)
        c.expect(250, "RCPT TO:<alice@example.test>")
        c.expect(354, "DATA")
        c.send(body + b".\r\n")
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        try:
            data = c.read_all(5)
        except OSError:
            data = b""
    got_250 = data.startswith(b"250")
    H.wait_for(lambda: len(inst.children("smtpd")) == 2, 20,
               what="smtpd restarted")
    time.sleep(5)
    inst.wait_queue_empty(30)
    copies = inst.messages_with(needle, "alice")
    if got_250:
        assert len(copies) == 1, len(copies)
    assert len(copies) <= 1
    for m in copies:
        assert m.count(needle + b" line\n") == 500, "partial message"

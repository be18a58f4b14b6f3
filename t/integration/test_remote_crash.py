"""
test_remote_crash - crash safety across two instances (DESIGN.md section
4): mail relayed from A (a.test) to B (b.test, its MX found through knotd)
while random SIGKILLs hit A's qmgr and remote agents and B's smtpd, qmgr
and local. Every message A answered 250 must arrive in bob's Maildir at B
(duplicates are allowed: a remote agent killed after B's 250 and before
its reply to qmgr sends the message again, as Postfix would), and both
queues must drain.

HERALD_REMOTE_CRASH_MESSAGES (default 600: at least that many are sent,
more while the killers have not struck five times each) scales it.
"""
import os
import time

import pytest

import dnsserver as D
import herald as H
from test_crash_safety import Killer

pytestmark = pytest.mark.skipif(
    not D.have_tools() or not H.have_binaries("remote"),
    reason="knot/ldnsutils/python3-dnslib or the remote binary missing")

B_ADDR = "127.0.0.3"
N_MESSAGES = int(os.environ.get("HERALD_REMOTE_CRASH_MESSAGES", "600"))
N_SESSIONS = 8
SEND_SECONDS = 60
KILL_SECONDS = 25
DRAIN_SECONDS = 150
MIN_KILLS = 5


@pytest.fixture
def pair(tmp_path):
    mx_port = H.free_port(B_ADDR)
    knot = D.KnotZones(tmp_path, extra_zones={
        "b.test": "@ MX 10 mx\nmx A %s\n" % B_ADDR})
    a = b = None
    try:
        knot.start()
        b = H.HeraldInstance(tmp_path / "b", myhostname="mx.b.test")
        b.set_config(smtpd_listen="127.0.0.1:%d, %s:%d"
                     % (b.port, B_ADDR, mx_port))
        b.start()
        b.add_domain("b.test")
        b.add_user("bob@b.test")
        a = H.HeraldInstance(
            tmp_path / "a", myhostname="mx.a.test", smtp_port=mx_port,
            dns_stub_zones="b.test=127.0.0.1@%d" % knot.port,
            dns_trust_anchor_file="", dns_timeout="3s",
            mynetworks="127.0.0.0/8",
            # a killed peer is retried within seconds, not minutes
            minimal_backoff_time="1s", maximal_backoff_time="2s",
            queue_scan_interval="1s")
        a.start()
        a.add_domain("a.test")
        a.add_user("alice@a.test")
        yield a, b
    finally:
        for inst in (a, b):
            if inst is not None:
                inst.stop()
        knot.stop()


def test_no_loss_when_both_ends_are_killed(pair):
    a, b = pair
    run = os.urandom(4).hex()
    tokens = ["r%s-%06d" % (run, i) for i in range(N_MESSAGES * 20)]
    seed = int.from_bytes(os.urandom(4), "big")
    print("remote crash test seed %d" % seed)
    pattern = ("token (r%s-\\d{6})" % run).encode()
    killers = [Killer(a, ("qmgr", "remote"), seed=seed),
               Killer(b, ("smtpd", "qmgr", "local"), seed=seed + 1)]
    start = time.monotonic()
    for k in killers:
        k.start()
    try:
        load = H.SMTPLoad(
            a, tokens, N_SESSIONS, rcpt="bob@b.test",
            deadline=start + SEND_SECONDS, minimum=N_MESSAGES,
            done=lambda: all(len(k.kills) >= MIN_KILLS
                             for k in killers)).run()
        accepted = set(load.accepted)
        # go on killing while the queues drain, up to KILL_SECONDS
        while time.monotonic() - start < KILL_SECONDS:
            if accepted <= set(H.maildir_tokens(b, "bob", pattern,
                                                "b.test")):
                break
            time.sleep(0.5)
    finally:
        for k in killers:
            k.stop()
    print("%d accepted, %d rejected, %d connection errors; kills: A %s, "
          "B %s" % (len(accepted), len(load.rejected), len(load.errors),
                    [k[1] for k in killers[0].kills],
                    [k[1] for k in killers[1].kills]))
    assert accepted, "nothing was accepted"
    assert all(len(k.kills) >= MIN_KILLS for k in killers), \
        "the killers hardly ran"
    # what a killed agent left behind is retried at its next scan
    a.ctl("queue", "flush")

    def all_there():
        got = H.maildir_tokens(b, "bob", pattern, "b.test")
        return got if accepted <= set(got) and a.queue_empty() and \
            b.queue_empty() else None
    try:
        got = H.wait_for(all_there, DRAIN_SECONDS, interval=1,
                         what="every accepted message at B, both queues "
                              "empty")
    except AssertionError:
        got = H.maildir_tokens(b, "bob", pattern, "b.test")
    missing = sorted(accepted - set(got))
    dups = sum(c - 1 for c in got.values() if c > 1)
    print("at B: %d distinct, %d duplicates, %d missing; queue files "
          "left: A %d, B %d" % (len(got), dups, len(missing),
                                len(a.queue_files()), len(b.queue_files())))
    assert not missing, "LOST %d accepted messages, e.g. %s; A's queue: " \
        "%s" % (len(missing), missing[:10],
                [str(p) for p in a.queue_files()[:10]])
    a.wait_queue_empty(30)
    b.wait_queue_empty(30)
    for inst in (a, b):
        assert not inst.queue_files(("corrupt",)), \
            "files went to corrupt/: %s" % inst.queue_files(("corrupt",))

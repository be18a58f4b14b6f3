"""
Fault campaigns: SIGKILL of every service and of master under sustained
SMTP load (nothing that got a 250 is lost; duplicates are counted and
reported), a full mail store (delivery defers, never bounces, and goes on
once there is room), and a flood of connections beyond what the SMTP
workers may hold open (existing sessions keep working, nothing crashes).

Sizes come from the environment so a longer campaign can be run by hand:
HERALD_FAULT_SECONDS (default 12, how long mail is sent),
HERALD_FAULT_MESSAGES (at most, 100000), HERALD_FAULT_SESSIONS (8),
HERALD_FLOOD_CONNECTIONS (5000).
"""
import os
import random
import resource
import selectors
import signal
import socket
import threading
import time

import pytest

import herald as H
from test_crash_safety import Killer

N_MESSAGES = int(os.environ.get("HERALD_FAULT_MESSAGES", "100000"))
LOAD_SECONDS = float(os.environ.get("HERALD_FAULT_SECONDS", "12"))
N_SESSIONS = int(os.environ.get("HERALD_FAULT_SESSIONS", "8"))
N_FLOOD = int(os.environ.get("HERALD_FLOOD_CONNECTIONS", "5000"))
SERVICES = ("smtpd", "qmgr", "local", "authd", "pop3d")


def wait_gone(pids, timeout=30):
    """Wait until none of pids is alive (zombies count as gone); on a
    timeout say what the survivors are."""
    def alive():
        return [p for p in pids if H.proc_stat(p) is not None and
                not H.proc_stat(p)[4]]
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive()
    assert not left, "still running %.0fs after master died: %s" % (
        timeout, ["%d %s ppid=%s" % (p, b" ".join(H.proc_cmdline(p))
                                      .decode(errors="replace"),
                                      (H.proc_stat(p) or [0, "?"])[1])
                  for p in left])


def test_no_loss_when_master_and_every_service_are_killed(make_herald):
    # without master, an smtpd whose clients keep sending serves them
    # until stop_timeout: keep that short
    inst = make_herald(stop_timeout="5s")
    run = os.urandom(4).hex()
    tokens = ["f%s-%05d" % (run, i) for i in range(N_MESSAGES)]
    pattern = ("token (f%s-\\d{5})" % run).encode()
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print("fault campaign seed %d: %.0f s of mail over %d sessions"
          % (seed, LOAD_SECONDS, N_SESSIONS))

    killer = Killer(inst, names=SERVICES, seed=seed)
    load = H.SMTPLoad(inst, tokens, N_SESSIONS,
                      deadline=time.monotonic() + LOAD_SECONDS)
    sender = threading.Thread(target=load.run, daemon=True)
    master_kills = 0
    killer.start()
    sender.start()
    try:
        for _ in range(2):
            time.sleep(rng.uniform(2.0, LOAD_SECONDS / 3))
            # SIGKILL master: its services get SIGTERM from the kernel
            # (PR_SET_PDEATHSIG) and stop; then an admin starts it again
            children = set(inst.our_pids()) - {inst.master_pid}
            os.kill(inst.master_pid, signal.SIGKILL)
            master_kills += 1
            inst.proc.wait(10)
            wait_gone(children, 5 + 25)
            # the killer goes on: a service may be restarting, and
            # status then says "degraded" (exit 1) with master up
            inst.start(degraded_ok=True)
        sender.join(120)
        assert not sender.is_alive(), "the load did not finish"
    finally:
        killer.stop()
    accepted = set(load.accepted)
    print("%d accepted, %d rejected, %d connection errors; %d service "
          "kills (%s), %d master kills" % (
              len(accepted), len(load.rejected), len(load.errors),
              len(killer.kills),
              ", ".join("%s=%d" % (n, sum(1 for k in killer.kills
                                         if k[1] == n)) for n in SERVICES),
              master_kills))
    assert len(accepted) > 100, "too little got through"
    assert load.errors, "no session saw a kill: the campaign missed"

    def all_there():
        counts = H.maildir_tokens(inst, "alice", pattern)
        return counts if accepted <= set(counts) and inst.queue_empty() \
            else None
    try:
        counts = H.wait_for(all_there, 120, interval=1,
                            what="every accepted message delivered")
    except AssertionError:
        counts = H.maildir_tokens(inst, "alice", pattern)
    missing = sorted(accepted - set(counts))
    dups = sum(c - 1 for c in counts.values() if c > 1)
    print("delivered %d distinct, %d duplicates, %d missing"
          % (len(counts), dups, len(missing)))
    assert not missing, "LOST %d accepted messages, e.g. %s" % (
        len(missing), missing[:10])
    assert not inst.queue_files(("corrupt",))


def test_mail_store_full_defers_then_delivers(make_herald, tmp_path, token):
    """ENOSPC in the mail store is a temporary failure (4.3.1): the
    message waits in the queue, nobody gets a bounce, and it is delivered
    once there is room again. Needs root for a small tmpfs."""
    with H.small_tmpfs(tmp_path / "tiny-store", "2m", "mail store") as store:
        inst = make_herald(mail_location=str(store) + "/%d/%n")
        box = store / "example.test" / "alice"
        with inst.smtp() as s:
            s.sendmail("first@example.org", ["alice@example.test"],
                       H.make_message("first-" + token))
        H.wait_for(lambda: (box / "new").is_dir() and
                   list((box / "new").iterdir()), 20,
                   what="the first message")
        # fill the file system to the last block
        filler = store / "filler"
        H.fill_disk(filler)
        since = inst.log_size()
        with inst.smtp() as s:
            s.sendmail("full@example.org", ["alice@example.test"],
                       H.make_message("full-" + token))
        inst.wait_log(r"to=<alice@example\.test>, relay=local, .*"
                      r"dsn=4\.3\.1, status=deferred", since=since,
                      timeout=30)
        assert "status=bounced" not in inst.log_text(since)
        assert len(list((box / "new").iterdir())) == 1
        assert inst.queue_files(("deferred",)), "not waiting in the queue"
        # room again: the next attempt delivers it
        filler.unlink()
        assert inst.ctl("queue", "flush").returncode == 0

        def delivered():
            return [p for p in (box / "new").iterdir()
                    if ("full-" + token).encode() in p.read_bytes()]
        H.wait_for(delivered, 30, what="the deferred message delivered")
        inst.wait_queue_empty(30)
        assert "status=bounced" not in inst.log_text(since)
        inst.stop()


def flood(port, n, deadline):
    """Open n connections at once (non-blocking), then read for a while:
    returns (sockets, counts of first replies by kind)."""
    sel = selectors.DefaultSelector()
    socks, counts = [], {"220": 0, "421": 0, "closed": 0, "silent": 0,
                         "refused": 0}
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, 115):	# EINPROGRESS
            counts["refused"] += 1
            s.close()
            continue
        socks.append(s)
        sel.register(s, selectors.EVENT_READ)
    pending = set(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(512)
            except OSError:
                data = b""
            counts["220" if data.startswith(b"220") else
                   "421" if data.startswith(b"421") else "closed"] += 1
            sel.unregister(s)
            pending.discard(s)
    counts["silent"] = len(pending)
    sel.close()
    return socks, counts


def test_connection_flood_and_fd_exhaustion(make_herald, token):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < N_FLOOD + 500:
        print("skipped: open-file limit %d is below %d" % (hard, N_FLOOD))
        pytest.skip("open-file limit too low for the flood")
    resource.setrlimit(resource.RLIMIT_NOFILE, (
        N_FLOOD + 500 if hard == resource.RLIM_INFINITY
        else max(soft, min(hard, N_FLOOD + 500)), hard))
    inst = make_herald(smtpd_workers="2", smtpd_client_limit="100000")
    # each smtpd may hold only 400 descriptors: the flood runs them out
    before = {n: inst.children(n) for n in SERVICES}
    for pid in before["smtpd"]:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (400, 400))
    existing = inst.smtp(timeout=60)
    existing.ehlo()
    socks = []
    try:
        socks, counts = flood(inst.port, N_FLOOD, time.monotonic() + 20)
        print("flood of %d: %s" % (N_FLOOD, counts))
        # the session opened before the flood still works
        existing.sendmail("flood@example.org", ["alice@example.test"],
                          H.make_message("during-" + token))
        assert counts["220"] > 0
        # each worker keeps descriptors in reserve: the rest get 421
        assert counts["220"] <= 2 * 400 // 2, counts
        assert counts["421"] > 0, counts
    finally:
        for s in socks:
            s.close()
        existing.quit()
    inst.wait_messages("during-" + token, "alice")
    # nothing crashed or was restarted, and new sessions work again
    after = {n: inst.children(n) for n in SERVICES}
    assert after == before, (before, after)
    H.wait_for(lambda: inst.banner(timeout=5), 30, interval=0.5,
               what="a 220 greeting after the flood")
    with inst.smtp() as s:
        s.sendmail("after@example.org", ["alice@example.test"],
                   H.make_message("after-" + token))
    inst.wait_messages("after-" + token, "alice")


def test_spool_full_keeps_what_was_accepted(make_herald, tmp_path, token):
    """The spool fills up: a message waiting in the queue stays there, a
    message whose DATA no longer fits gets a temporary error and leaves
    nothing behind, MAIL gets 452 4.3.1; when space returns everything
    flows again and the waiting message is delivered. Needs root."""
    with H.small_tmpfs(tmp_path / "tiny-spool", "16m", "spool") as spool:
        inst = make_herald(spool_directory=str(spool),
                           message_size_limit="4M")
        # a message that waits: alice's mailbox is blocked by a file
        blocker = inst.maildir("alice")
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("in the way\n")
        with inst.smtp() as s:
            s.sendmail("wait@example.org", ["alice@example.test"],
                       H.make_message("wait-" + token))
        H.wait_for(lambda: inst.queue_files(("deferred",)), 30,
                   what="the message deferred")
        waiting = [p.name for p in inst.queue_files()]

        with inst.raw(timeout=30) as c:
            c.expect(220)
            c.expect(250, "EHLO client.example.test")
            c.expect(250, "MAIL FROM:<big@example.org>")
            c.expect(250, "RCPT TO:<bob@example.test>")
            c.expect(354, "DATA")
            H.fill_disk(spool / "filler")
            line = b"x" * 998 + b"\r\n"
            try:
                for _ in range(2048):	# 2 MB: more than is left
                    c.send(line)
                c.send(b".\r\n")
                code, lines = c.reply(timeout=30)
            except OSError:
                code, lines = None, []
            assert code is None or 400 <= code < 500, (code, lines)
        # nothing half-written is left, the waiting message is intact
        assert sorted(p.name for p in inst.queue_files()) == \
            sorted(waiting)
        time.sleep(1.2)	# smtpd caches free space for a second
        with inst.raw() as c:
            c.expect(220)
            c.expect(250, "EHLO client.example.test")
            code, lines = c.cmd("MAIL FROM:<a@example.org>")
            assert code == 452 and lines[0].startswith(b"4.3.1"), \
                (code, lines)
        # space returns: new mail is accepted and the waiting one goes
        (spool / "filler").unlink()
        blocker.unlink()
        time.sleep(1.2)
        with inst.smtp() as s:
            s.sendmail("back@example.org", ["alice@example.test"],
                       H.make_message("back-" + token))
        inst.ctl("queue", "flush")
        inst.wait_messages("wait-" + token, "alice")
        inst.wait_messages("back-" + token, "alice")
        inst.wait_queue_empty(30)
        inst.stop()

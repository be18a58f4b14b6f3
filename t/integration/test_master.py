"""
master: restarts killed services, reloads a changed config, stops
without leaving anything behind; heraldctl start as a daemon.
"""
import os
import re
import signal
import subprocess
import time

import pytest

import herald as H


def mail_flows(inst, token, user="alice"):
    msg = H.make_message(token)
    with inst.smtp() as s:
        s.ehlo()
        assert s.sendmail("m@example.org", ["%s@example.test" % user],
                          msg) == {}
    got = inst.wait_messages(token, user, timeout=30)
    H.split_delivered(got[0], msg)


@pytest.mark.parametrize("service,count", [("smtpd", 2), ("qmgr", 1),
                                           ("local", 2)])
def test_killed_service_restarted(make_herald, token, service, count):
    inst = make_herald()
    if service == "local":
        # local processes may start on demand: make sure they exist
        mail_flows(inst, "warm-%s" % os.urandom(6).hex())
    old = H.wait_for(lambda: inst.children(service), 15,
                     what="%s running" % service)
    assert 1 <= len(old) <= count, old
    since = inst.log_size()
    victim = old[0]
    os.kill(victim, signal.SIGKILL)
    assert H.wait_dead([victim], 10)
    H.wait_for(lambda: len(set(inst.children(service)) - set(old)) >= 1,
               15, what="a new %s process" % service)
    assert victim not in inst.children(service)
    inst.wait_log(r"service %s pid %d killed by signal 9" % (service, victim),
                  since=since, timeout=5)
    mail_flows(inst, token)
    data = inst.status_json()
    pids = {p for n, p in H.json_services(data) if n == service}
    assert victim not in pids
    assert pids & set(inst.children(service)), (pids, data)


def test_killed_repeatedly_still_restarted(make_herald, token):
    inst = make_herald()
    for i in range(5):
        pids = H.wait_for(lambda: inst.children("qmgr"), 30,
                          what="qmgr (round %d)" % i)
        os.kill(pids[0], signal.SIGKILL)
        H.wait_dead(pids, 10)
    H.wait_for(lambda: inst.children("qmgr"), 60,
               what="qmgr after 5 kills (backoff too long?)")
    mail_flows(inst, token)


def test_reload_changes_banner(make_herald, token):
    inst = make_herald()
    assert inst.banner().startswith("220 mx.example.test ESMTP herald")
    inst.set_config(smtpd_banner="ESMTP reloaded-%s" % token[-6:])
    r = inst.ctl("reload")
    assert r.returncode == 0, r
    want = "220 mx.example.test ESMTP reloaded-%s" % token[-6:]
    H.wait_for(lambda: inst.banner() == want, 15,
               what="new banner %r (have %r)" % (want, inst.banner()))
    # new connections all see it
    for _ in range(6):
        assert inst.banner() == want
    r = inst.ctl("config", "smtpd_banner")
    assert "reloaded" in r.stdout, r
    assert inst.running() and inst.read_master_pid() == inst.master_pid
    mail_flows(inst, token)


def test_reload_open_session_finishes(make_herald, token):
    """A session busy across a reload is served to its end by the old
    worker (DESIGN.md section 3: replace workers gracefully)."""
    inst = make_herald()
    with inst.smtp() as s:
        s.ehlo()
        assert s.mail("r@example.org")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        inst.set_config(smtpd_banner="ESMTP reloaded-%s" % token[-6:])
        r = inst.ctl("reload")
        assert r.returncode == 0, r
        want = "220 mx.example.test ESMTP reloaded-%s" % token[-6:]

        def new_banner():
            # keep the old session busy meanwhile
            assert s.noop()[0] == 250
            return inst.banner() == want
        H.wait_for(new_banner, 15, interval=0.5, what="new banner")
        msg = H.make_message(token)
        code, text = s.data(msg)
        assert code == 250, (code, text)
        s.quit()
    got = inst.wait_messages(token, "alice")
    H.split_delivered(got[0], msg)


def reload_with_banner(inst, token):
    """Reload with a new banner; wait until new connections see it (the
    new smtpd generation serves them). The banner."""
    want = "220 mx.example.test ESMTP reloaded-%s" % token[-6:]
    inst.set_config(smtpd_banner="ESMTP reloaded-%s" % token[-6:])
    r = inst.ctl("reload")
    assert r.returncode == 0, r
    H.wait_for(lambda: inst.banner() == want, 15,
               what="new banner %r" % want)
    return want


def test_reload_idle_session_outlives_stop_timeout(make_herald, token):
    """DESIGN.md section 3: a reload replaces workers gracefully, old ones
    finish their sessions. A session left idle across a reload, longer
    than the 5 s a stopping smtpd allows and longer than stop_timeout +
    5 s (master's old deadline), but within smtpd_idle_timeout, still
    sends a whole message afterwards; the old worker exits once it has
    ended; new connections meanwhile go to the new workers."""
    inst = make_herald(stop_timeout="1s", smtpd_idle_timeout="60s")
    old = inst.children("smtpd")
    assert len(old) == 2, old
    with inst.smtp() as s:
        s.ehlo()
        since = inst.log_size()
        t0 = time.monotonic()
        want = reload_with_banner(inst, token)
        # every new connection meets the new configuration
        for _ in range(4):
            assert inst.banner() == want
        new = set(inst.children("smtpd")) - set(old)
        assert len(new) == 2, (old, inst.children("smtpd"))
        # idle: past 5 s and past stop_timeout + 5 s since the reload
        time.sleep(max(0.0, 7.5 - (time.monotonic() - t0)))
        busy = [p for p in old if H.proc_alive(p)]
        assert len(busy) == 1, "the old worker with our session: %s" % old
        msg = H.make_message(token)
        assert s.mail("idle@example.org")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        code, text = s.data(msg)
        assert code == 250, (code, text)
        assert s.quit()[0] == 221
    H.split_delivered(inst.wait_messages(token, "alice")[0], msg)
    # with its last session gone, the retired worker exits by itself
    assert H.wait_dead(busy, 10), busy
    inst.wait_log(r"service smtpd pid %d exited with status 0 \(replaced\)"
                  % busy[0], since=since, timeout=5)
    text = inst.log_text(since)
    assert re.search(r"herald/smtpd\[%d\]: replaced: no new sessions"
                     % busy[0], text), text
    assert "did not finish in time" not in text, text
    assert "Service shutting down" not in text, text


def test_stop_bounds_retired_session(make_herald, token):
    """A real stop after a reload still ends a session the old worker
    keeps open, within stop_timeout (+ master's 5 s grace)."""
    inst = make_herald(stop_timeout="2s", smtpd_idle_timeout="60s")
    old = inst.children("smtpd")
    with H.RawSMTP("127.0.0.1", inst.port, timeout=30) as c:
        assert c.reply()[0] == 220
        c.expect(250, "EHLO client.example.test")
        reload_with_banner(inst, token)
        time.sleep(1)
        assert any(H.proc_alive(p) for p in old)
        pids = inst.our_pids()
        t0 = time.monotonic()
        r = inst.ctl("stop", timeout=30)
        assert r.returncode == 0, r
        rc = inst.proc.wait(timeout=30)
        took = time.monotonic() - t0
        assert rc == 0, rc
        assert took < 2 + 5 + 3, "stop took %.1fs" % took
        assert H.wait_dead(list(pids), 5), \
            [p for p in pids if H.proc_alive(p)]
        # the session is over: a 421, or the connection closed
        data = c.read_all(timeout=2)
        assert data == b"" or data.startswith(b"421"), data
    inst.stopped = True


def test_reload_idle_pop3_session_goes_on(make_herald, token):
    """The same for POP3: a logged-in session idle across a reload is
    served on by the old worker, not told the server is shutting down."""
    import poplib
    inst = make_herald(stop_timeout="1s")
    mail_flows(inst, token)
    p = poplib.POP3("127.0.0.1", inst.pop3_port, timeout=30)
    try:
        p.user("alice@example.test")
        p.pass_("pw-alice")
        count, _size = p.stat()
        assert count >= 1
        since = inst.log_size()
        t0 = time.monotonic()
        reload_with_banner(inst, token)
        time.sleep(max(0.0, 7.5 - (time.monotonic() - t0)))
        assert p.stat()[0] == count
        _resp, lines, _octets = p.retr(1)
        assert any(token.encode() in line for line in lines)
        assert p.quit().startswith(b"+OK")
    finally:
        p.close()
    # new POP3 connections are served by the new workers
    q = poplib.POP3("127.0.0.1", inst.pop3_port, timeout=30)
    try:
        assert q.getwelcome().startswith(b"+OK")
        q.quit()
    finally:
        q.close()
    text = inst.log_text(since)
    assert "Server shutting down" not in text, text
    assert re.search(r"herald/pop3d\[\d+\]: replaced: no new sessions",
                     text), text


def test_reload_bad_config_keeps_old(make_herald, token):
    inst = make_herald()
    before = inst.banner()
    inst.set_config(smtpd_banner="ESMTP never-seen")
    inst.write_config(extra_text="no_such_setting = 42\n")
    r = inst.ctl("reload")
    assert r.returncode == 1, r
    assert "no_such_setting" in r.stdout + r.stderr, r
    time.sleep(2)
    assert inst.running()
    assert inst.banner() == before
    # services master starts after the refusal run what it accepted, not
    # the file as it is now: kill them all and let master restart them
    old = inst.children()
    assert old
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    assert H.wait_dead(old, 10)
    H.wait_for(lambda: {"smtpd", "qmgr", "local"} <= {
        H.proc_stat(p)[0] for p in inst.children()
        if H.proc_stat(p) is not None}, 15, what="restarted services")
    H.wait_for(lambda: inst.banner() == before, 15,
               what="old banner from a restarted smtpd")
    mail_flows(inst, token)
    assert "unknown key" not in inst.log_text()
    # the copy it came on is closed once read; a child master has just
    # forked may not have read it yet, so look until none holds it
    def holders():
        found = []
        for pid in inst.children():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if "herald.conf" in target:
                    found.append((pid, fd, target))
        return found
    H.wait_for(lambda: not holders(), 10, what="config copies closed")
    # a fixed file reloads fine
    inst.set_config(smtpd_banner="ESMTP fixed")
    assert inst.ctl("reload").returncode == 0
    H.wait_for(lambda: inst.banner() == "220 mx.example.test ESMTP fixed",
               15, what="banner after the fixed reload")


def test_sighup_reloads(make_herald, token):
    inst = make_herald()
    inst.set_config(smtpd_banner="ESMTP hup-%s" % token[-6:])
    os.kill(inst.master_pid, signal.SIGHUP)
    want = "220 mx.example.test ESMTP hup-%s" % token[-6:]
    H.wait_for(lambda: inst.banner() == want, 15, what="banner after HUP")


def test_stop_leaves_nothing(make_herald, token):
    inst = make_herald()
    mail_flows(inst, token)
    pids = inst.our_pids()
    assert inst.master_pid in pids and len(pids) >= 5, pids
    r = inst.ctl("stop")
    assert r.returncode == 0, r
    rc = inst.proc.wait(timeout=30)
    assert rc == 0, "master exit status %d" % rc
    assert H.wait_dead(list(pids), 10), \
        [p for p in pids if H.proc_alive(p)]
    assert inst.our_pids() == set()
    assert not (inst.run_dir / "master.pid").exists()
    assert not (inst.run_dir / "master.sock").exists()
    assert inst.ctl("status").returncode == 3
    with pytest.raises(OSError):
        inst.banner(timeout=2)
    inst.stopped = True


def test_sigterm_stops(make_herald):
    inst = make_herald()
    pids = inst.our_pids()
    os.kill(inst.master_pid, signal.SIGTERM)
    inst.proc.wait(timeout=30)
    assert H.wait_dead(list(pids), 10)
    assert inst.our_pids() == set()
    assert not (inst.run_dir / "master.pid").exists()


def test_sigint_stops(make_herald):
    """make demo relies on Ctrl-C being a clean stop."""
    inst = make_herald()
    pids = inst.our_pids()
    os.kill(inst.master_pid, signal.SIGINT)
    rc = inst.proc.wait(timeout=30)
    assert rc == 0, rc
    assert H.wait_dead(list(pids), 10)
    assert not (inst.run_dir / "master.sock").exists()


def test_start_daemon_and_stop(make_herald, token):
    inst = make_herald(start=False)
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", str(inst.conf),
                        "start"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, start_new_session=True)
    try:
        assert r.returncode == 0, r
        pid = inst.read_master_pid()
        assert pid and H.proc_alive(pid), pid
        inst.master_pid = pid
        assert inst.ctl("status").returncode == 0
        # starting twice is refused
        r2 = inst.ctl("start")
        assert r2.returncode == 1, r2
        mail_flows(inst, token)
        pids = inst.our_pids()
        r = inst.ctl("stop")
        assert r.returncode == 0, r
        assert H.wait_dead(list(pids), 30), \
            [p for p in pids if H.proc_alive(p)]
        assert not (inst.run_dir / "master.pid").exists()
    finally:
        inst.kill_leftovers()


def test_second_master_refused(herald):
    """A second start on the same config must not disturb the first."""
    r = herald.ctl("start", timeout=30)
    assert r.returncode == 1, r
    assert herald.running()
    assert herald.ctl("status").returncode == 0
    assert herald.read_master_pid() == herald.master_pid


def test_sd_notify(make_herald, tmp_path):
    """With $NOTIFY_SOCKET (a Type=notify unit) master says READY=1 with
    its pid once the services run, RELOADING=1 / READY=1 around a reload,
    STOPPING=1 at the stop; no service inherits the variable."""
    import socket
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        inst = make_herald()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        ready = sock.recv(512).decode()
        assert ready.startswith("READY=1\n"), ready
        assert "MAINPID=%d\n" % inst.master_pid in ready, ready
        for pid in inst.children():
            assert b"NOTIFY_SOCKET=" not in b"\0".join(H.proc_environ(pid))
        os.kill(inst.master_pid, signal.SIGHUP)
        assert sock.recv(512).decode().startswith("RELOADING=1\n"
                                                  "MONOTONIC_USEC=")
        assert sock.recv(512).decode().startswith("READY=1")
        inst.stop()
        assert sock.recv(512).decode().startswith("STOPPING=1")
    finally:
        sock.close()

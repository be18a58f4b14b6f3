"""
heraldctl: directory changes take effect in smtpd at once (no reload),
config/status/check output, queue commands, exit codes.
"""
import json
import os
import re
import subprocess
import time

import pytest

import herald as H


def rcpt(inst, addr, session=None):
    """RCPT reply for addr, in session or a fresh one."""
    if session is not None:
        session.rset()
        assert session.mail("probe@example.org")[0] == 250
        return session.rcpt(addr)
    with inst.smtp() as s:
        s.ehlo()
        assert s.mail("probe@example.org")[0] == 250
        r = s.rcpt(addr)
        s.rset()
        return r


def short(token):
    return token[-12:]


def test_user_lifecycle_without_reload(herald, token):
    addr = "erin-%s@example.test" % short(token)
    with herald.smtp() as s:
        s.ehlo()
        code, text = rcpt(herald, addr, s)
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        herald.add_user(addr, "erin-pw")
        # the session opened before the change sees it
        assert rcpt(herald, addr, s)[0] == 250
        assert rcpt(herald, addr)[0] == 250

        r = herald.ctl("user", "disable", addr)
        assert r.returncode == 0, r
        code, text = rcpt(herald, addr, s)
        assert code == 550 and text.startswith(b"5.2.1"), (code, text)
        code, text = rcpt(herald, addr)
        assert code == 550, (code, text)

        r = herald.ctl("user", "enable", addr)
        assert r.returncode == 0, r
        assert rcpt(herald, addr, s)[0] == 250

        r = herald.ctl("user", "del", addr)
        assert r.returncode == 0, r
        code, text = rcpt(herald, addr, s)
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        s.quit()


def test_new_user_gets_mail(herald, token):
    local = "fred-%s" % short(token)
    addr = local + "@example.test"
    herald.add_user(addr, "pw")
    msg = H.make_message(token, to=addr)
    with herald.smtp() as s:
        s.ehlo()
        assert s.sendmail("x@example.org", [addr], msg) == {}
    got = herald.wait_messages(token, local)
    H.split_delivered(got[0], msg)


def test_alias_add_del_without_reload(herald, token):
    alias = "list-%s@example.test" % short(token)
    assert rcpt(herald, alias)[0] == 550
    r = herald.ctl("alias", "add", alias, "bob@example.test")
    assert r.returncode == 0, r
    assert rcpt(herald, alias)[0] == 250
    r = herald.ctl("alias", "list", "example.test")
    assert r.returncode == 0 and alias in r.stdout, r
    msg = H.make_message(token, to=alias)
    with herald.smtp() as s:
        s.ehlo()
        assert s.sendmail("x@example.org", [alias], msg) == {}
    herald.wait_messages(token, "bob")
    r = herald.ctl("alias", "del", alias)
    assert r.returncode == 0, r
    assert rcpt(herald, alias)[0] == 550


def test_domain_add_del(herald, token):
    dom = "d%s.test" % short(token).lower()
    code, text = rcpt(herald, "someone@" + dom)
    assert code == 554, (code, text)	# not ours: relay denied
    herald.add_domain(dom)
    code, text = rcpt(herald, "someone@" + dom)
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    herald.add_user("someone@" + dom)
    assert rcpt(herald, "someone@" + dom)[0] == 250
    r = herald.ctl("domain", "list")
    assert r.returncode == 0 and dom in r.stdout.split(), r
    # a domain with users is not removed without --force
    r = herald.ctl("domain", "del", dom)
    assert r.returncode == 1, r
    assert rcpt(herald, "someone@" + dom)[0] == 250
    r = herald.ctl("domain", "del", dom, "--force")
    assert r.returncode == 0, r
    assert rcpt(herald, "someone@" + dom)[0] == 554


def test_user_list_and_duplicates(herald):
    r = herald.ctl("user", "list", "example.test")
    assert r.returncode == 0, r
    for u in ("alice", "bob", "carol", "dave"):
        assert "%s@example.test" % u in r.stdout, r.stdout
    r = herald.ctl("user", "add", "alice@example.test", input="pw\n")
    assert r.returncode == 1, r
    assert r.stderr.strip(), "no error message for a duplicate user"
    r = herald.ctl("user", "add", "zed@not-hosted.test", input="pw\n")
    assert r.returncode == 1, r


def test_config_changed(herald):
    r = herald.ctl("config", "--changed")
    assert r.returncode == 0, r
    keys = set(re.findall(r"^\s*([a-z_][a-z0-9_]*)\s*=", r.stdout, re.M))
    assert keys == set(herald.config), \
        (sorted(keys ^ set(herald.config)), r.stdout)
    r = herald.ctl("config", "smtpd_workers")
    assert r.returncode == 0 and "2" in r.stdout, r
    r = herald.ctl("config", "hopcount_limit")
    assert r.returncode == 0 and "50" in r.stdout, r
    r = herald.ctl("config")
    allkeys = set(re.findall(r"^\s*([a-z_][a-z0-9_]*)\s*=", r.stdout, re.M))
    assert {"hopcount_limit", "message_size_limit", "smtpd_banner"} <= allkeys
    r = herald.ctl("config", "no_such_key")
    assert r.returncode in (1, 2), r


def test_status(herald):
    r = herald.ctl("status")
    assert r.returncode == 0, r
    data = herald.status_json()
    text = json.dumps(data)
    assert str(herald.master_pid) in text, data
    services = H.json_services(data)
    names = {n for n, _ in services}
    assert {"smtpd", "qmgr", "local"} <= names, data
    for name, pid in services:
        if name in ("smtpd", "qmgr", "local"):
            assert H.proc_alive(pid), (name, pid)
    assert len([1 for n, _ in services if n == "smtpd"]) == 2, services
    assert len([1 for n, _ in services if n == "qmgr"]) == 1, services


def test_check(herald, tmp_path):
    r = herald.ctl("check")
    assert r.returncode == 0, r
    bad = tmp_path / "bad.conf"
    bad.write_text(herald.conf.read_text() + "no_such_setting = 1\n")
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", str(bad), "check"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    assert r.returncode == 1, r
    n = len(bad.read_text().splitlines())
    assert "%s:%d" % (bad, n) in r.stderr + r.stdout, r


def run_check(conf):
    """heraldctl -c conf check; CompletedProcess (text)."""
    return subprocess.run([str(H.binpath("heraldctl")), "-c", str(conf),
                           "check"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30)


def test_check_fresh_install(make_herald):
    """Right after installation the spool and the directory do not exist
    yet: master creates them at start, so check passes."""
    inst = make_herald(start=False)
    inst.set_config(spool_directory=inst.dir / "var" / "spool",
                    data_directory=inst.dir / "var" / "lib" / "herald")
    (inst.dir / "var").mkdir()
    r = run_check(inst.conf)
    assert r.returncode == 0, r
    assert re.search(r"^ok spool: .* \(will be created at start\)$",
                     r.stdout, re.M), r.stdout
    assert re.search(r"^ok directory: .* \(will be created at start\)$",
                     r.stdout, re.M), r.stdout
    assert "FAIL" not in r.stdout, r.stdout
    # an existing spool without its folders (postinst makes only the root)
    (inst.dir / "var" / "spool").mkdir()
    r = run_check(inst.conf)
    assert r.returncode == 0, r
    assert re.search(r"^ok spool: .*missing folders will be created at "
                     r"start\)$", r.stdout, re.M), r.stdout
    # a spool whose parent is missing cannot be made by master: FAIL
    inst.set_config(spool_directory=inst.dir / "nowhere" / "spool")
    r = run_check(inst.conf)
    assert r.returncode == 1, r
    assert re.search(r"^FAIL spool: ", r.stdout, re.M), r.stdout


def test_check_hostname_warning(make_herald):
    inst = make_herald(start=False)
    r = run_check(inst.conf)
    assert r.returncode == 0, r
    assert "WARN" not in r.stdout, r.stdout
    assert "ok myhostname: mx.example.test" in r.stdout, r.stdout
    inst.set_config(myhostname="vm")
    r = run_check(inst.conf)
    assert r.returncode == 0, r
    assert re.search(r"^WARN myhostname: \"vm\" is not a fully qualified",
                     r.stdout, re.M), r.stdout


@pytest.mark.parametrize("value, reason", [
    ("127.0.0.1:99999", 'bad port "99999"'),
    ("127.0.0.1:0", 'bad port "0"'),
    ("bad_host!:25", 'bad host "bad_host!"'),
    ("300.1.2.3:25", 'bad IPv4 address "300.1.2.3"'),
])
def test_check_listen_values(herald, tmp_path, value, reason):
    """What heraldctl check passes, master can open: a bad listen address
    fails the check with file:line, not the reload after it."""
    lines = herald.conf.read_text().splitlines()
    at = [i for i, l in enumerate(lines) if l.startswith("smtpd_listen =")]
    assert len(at) == 1, lines
    lines[at[0]] = "smtpd_listen = 127.0.0.1:%d, %s" % (herald.port, value)
    bad = tmp_path / "bad.conf"
    bad.write_text("\n".join(lines) + "\n")
    r = run_check(bad)
    assert r.returncode == 1, r
    out = r.stderr + r.stdout
    assert "%s:%d: smtpd_listen: bad address" % (bad, at[0] + 1) in out, r
    assert reason in out, r


def test_check_duplicate_and_size(herald, tmp_path):
    base = herald.conf.read_text()
    n = len(base.splitlines())
    bad = tmp_path / "dup.conf"
    bad.write_text(base + "smtpd_banner = one\n# x\nsmtpd_banner = two\n")
    r = run_check(bad)
    assert r.returncode == 1, r
    assert ("%s:%d: smtpd_banner set twice: line %d and line %d"
            % (bad, n + 3, n + 1, n + 3)) in r.stderr + r.stdout, r
    bad.write_text(base + "message_size_limit = 10Q\n")
    r = run_check(bad)
    assert r.returncode == 1, r
    assert ('%s:%d: message_size_limit: bad size "10Q": use a number of '
            'bytes with an optional b, k, M, G or T suffix'
            % (bad, n + 1)) in r.stderr + r.stdout, r


def test_reload_bad_listen_names_line(herald):
    """The reload of a file with a bad listen address fails with file:line
    and keeps the running settings."""
    old = herald.config["smtpd_listen"]
    herald.set_config(smtpd_listen="127.0.0.1:99999")
    try:
        r = herald.ctl("reload")
        assert r.returncode != 0, r
        assert "%s:" % herald.conf in r.stderr + r.stdout, r
        assert "99999" in r.stderr + r.stdout, r
    finally:
        herald.set_config(smtpd_listen=old)
    with herald.smtp() as s:
        assert s.ehlo()[0] == 250


def test_usage_errors(herald):
    for args in (("frobnicate",), ("user",), ("user", "add"),
                 ("alias", "add", "x@example.test"), ("queue", "show"),
                 ("--no-such-option", "status"), ("domain", "add")):
        r = herald.ctl(*args)
        assert r.returncode == 2, (args, r)
        assert r.stderr.strip(), (args, "no usage message")
    r = herald.ctl("--help")
    assert r.returncode == 0 and "user" in r.stdout + r.stderr, r
    r = herald.ctl("user", "--help")
    assert r.returncode == 0, r


def test_not_running_exit_3(make_herald):
    inst = make_herald(start=False)
    for args in (("status",), ("stop",), ("reload",)):
        r = inst.ctl(*args)
        assert r.returncode == 3, (args, r)
    # directory commands work without a running herald
    r = inst.ctl("user", "list")
    assert r.returncode == 0 and "alice@example.test" in r.stdout, r


# ---------------------------------------------------------------- queue


def block_mailbox(inst, local):
    """Put a plain file where local's Maildir would go: delivery to it
    fails with a temporary error and the message is deferred."""
    path = inst.maildir(local)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("in the way\n")
    return path


def deferred_message(inst, token, local):
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw")
    blocker = block_mailbox(inst, local)
    since = inst.log_size()
    sender = "q-%s@example.org" % token
    with inst.smtp() as s:
        s.ehlo()
        assert s.sendmail(sender, [addr],
                          H.make_message(token, sender=sender, to=addr)) == {}
    qid = inst.qid_of_sender(sender, since=since)
    inst.wait_log(r"%s: to=<%s>, relay=local, .*dsn=4\.\d+\.\d+, "
                  r"status=deferred" % (qid, re.escape(addr)),
                  timeout=30, since=since)
    H.wait_for(lambda: any(p.name == qid for p in
                           inst.queue_files(("deferred",))),
               15, what="%s in deferred/" % qid)
    return qid, addr, sender, blocker


def test_queue_list_show_flush(herald, token):
    local = "gina-%s" % short(token).lower()
    qid, addr, sender, blocker = deferred_message(herald, token, local)
    r = herald.ctl("queue", "list")
    assert r.returncode == 0, r
    assert qid in r.stdout, r.stdout
    line = [l for l in r.stdout.splitlines() if qid in l]
    r = herald.ctl("queue", "show", qid)
    assert r.returncode == 0, r
    assert sender in r.stdout and addr in r.stdout, r.stdout
    r = herald.ctl("queue", "show", "0" * 17)
    assert r.returncode == 1, r
    r = herald.ctl("queue", "show", "../../etc/passwd")
    assert r.returncode in (1, 2), r
    # unblock and flush: delivered
    blocker.unlink()
    r = herald.ctl("queue", "flush")
    assert r.returncode == 0, r
    got = herald.wait_messages(token, local, timeout=20)
    assert len(got) == 1
    H.wait_for(lambda: qid not in herald.ctl("queue", "list").stdout, 20,
               what="%s gone from queue list" % qid)
    assert line	# printed for the record


def test_queue_delete(herald, token):
    local = "hugo-%s" % short(token).lower()
    qid, addr, sender, blocker = deferred_message(herald, token, local)
    since = herald.log_size()
    r = herald.ctl("queue", "delete", qid)
    assert r.returncode == 0, r
    assert not any(p.name == qid for p in herald.queue_files())
    herald.wait_log(r"%s: removed" % qid, since=since, timeout=10)
    blocker.unlink()
    herald.ctl("queue", "flush")
    r = herald.ctl("queue", "delete", qid)
    assert r.returncode == 1, r
    # let a scan pass: the deleted message never arrives
    after = "after-" + token
    with herald.smtp() as s:
        s.sendmail("m@example.org", [addr], H.make_message(after, to=addr))
    herald.wait_messages(after, local)
    herald.wait_queue_empty()
    assert herald.messages_with("Subject: test %s\n" % token, local) == []


def held_stays(inst, qid, token, local, seconds=3):
    """qid stays in hold/ and is not delivered for a few seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert any(p.name == qid for p in inst.queue_files(("hold",))), qid
        assert inst.messages_with("Subject: test %s\n" % token, local) == []
        time.sleep(0.3)


def test_queue_hold(herald, token):
    local = "ida-%s" % short(token).lower()
    qid, addr, sender, blocker = deferred_message(herald, token, local)
    r = herald.ctl("queue", "hold", qid)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: held" % qid, r.stdout
    assert any(p.name == qid for p in herald.queue_files(("hold",)))
    herald.wait_log(r"%s: held by operator request" % qid)
    r = herald.ctl("queue", "list")
    assert qid in r.stdout
    # the mailbox works again, and a flush retries deferred mail: but a
    # held message stays where it is
    blocker.unlink()
    assert herald.ctl("queue", "flush").returncode == 0
    held_stays(herald, qid, token, local)
    r = herald.ctl("queue", "release", qid)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: released" % qid, r.stdout
    herald.wait_messages(token, local)
    herald.wait_queue_empty()
    # nothing to release or hold any more
    r = herald.ctl("queue", "release", qid)
    assert r.returncode == 1 and "no such message on hold" in r.stderr, r
    r = herald.ctl("queue", "hold", qid)
    assert r.returncode == 1 and "no such message" in r.stderr, r


def test_queue_select_by_sender_domain_all(herald, token):
    """list, hold, release, flush and delete take several queue ids or a
    selection: --sender (any case; "<>" the null sender), --domain (of a
    pending recipient), --all; the selection is refused with queue ids
    and a command that changes the queue must be told which messages."""
    la = "jo-%s" % short(token).lower()
    lb = "kai-%s" % short(token).lower()
    qa, addr_a, sender_a, block_a = deferred_message(herald, token, la)
    qb, addr_b, sender_b, block_b = deferred_message(herald, token + "b",
                                                     lb)
    r = herald.ctl("queue", "list", "--sender", sender_a.upper())
    assert r.returncode == 0, r
    assert qa in r.stdout and qb not in r.stdout, r.stdout
    r = herald.ctl("queue", "list", "--domain", "EXAMPLE.test")
    assert qa in r.stdout and qb in r.stdout, r.stdout
    r = herald.ctl("queue", "list", "--domain", "nowhere.test")
    assert qa not in r.stdout and "queue is empty" in r.stdout, r.stdout
    r = herald.ctl("--json", "queue", "list", "--sender", "<>")
    assert r.returncode == 0 and qa not in r.stdout, r
    # changing the queue needs to be told which messages
    for cmd in ("delete", "hold", "release"):
        r = herald.ctl("queue", cmd)
        assert r.returncode == 1 and "which messages" in r.stderr, r
    r = herald.ctl("queue", "delete", qa, "--all")
    assert r.returncode == 1 and "not both" in r.stderr, r
    r = herald.ctl("queue", "hold", "--all", "--sender", sender_a)
    assert r.returncode == 1 and "--all" in r.stderr, r
    r = herald.ctl("queue", "list", "--domain", "a@b.test")
    assert r.returncode == 1, r
    assert {p.name for p in herald.queue_files(("deferred",))} >= {qa, qb}
    # hold by sender: only a's message
    r = herald.ctl("queue", "hold", "--sender", sender_a)
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["%s: held" % qa, "1 message held"], r
    assert any(p.name == qa for p in herald.queue_files(("hold",)))
    assert any(p.name == qb for p in herald.queue_files(("deferred",)))
    # flush by queue id: b's mailbox works again, b's message arrives
    block_a.unlink()
    block_b.unlink()
    r = herald.ctl("queue", "flush", qb)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: scheduled for delivery" % qb, r
    herald.wait_messages(token + "b", lb, timeout=20)
    held_stays(herald, qa, token, la, seconds=1)
    r = herald.ctl("queue", "flush", qa)
    assert r.returncode == 1 and "not deferred" in r.stderr, r
    # a selection that matches nothing changes nothing
    r = herald.ctl("queue", "delete", "--sender", "<>")
    assert r.returncode == 0 and r.stdout.strip() == "0 messages deleted", r
    # release everything held
    r = herald.ctl("queue", "release", "--all")
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["%s: released" % qa,
                                     "1 message released"], r
    herald.wait_messages(token, la, timeout=20)
    herald.wait_queue_empty()


def test_queue_delete_several_by_domain(herald, token):
    """delete --domain removes every message with a pending recipient
    there; several queue ids in one command each get their line."""
    la = "lea-%s" % short(token).lower()
    lb = "max-%s" % short(token).lower()
    qa, addr_a, sender_a, block_a = deferred_message(herald, token, la)
    qb, addr_b, sender_b, block_b = deferred_message(herald, token + "b",
                                                     lb)
    r = herald.ctl("queue", "hold", qa, qb)
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["%s: held" % qa, "%s: held" % qb], r
    r = herald.ctl("queue", "delete", "--domain", "example.test")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert sorted(lines[:2]) == sorted(["%s: deleted" % qa,
                                        "%s: deleted" % qb]), r
    assert lines[2] == "2 messages deleted", r
    assert not any(p.name in (qa, qb) for p in herald.queue_files())
    block_a.unlink()
    block_b.unlink()


def test_queue_hold_while_stopped(make_herald, token):
    """Without qmgr, hold and release move the files themselves; a held
    message survives a restart undelivered."""
    inst = make_herald()
    local = "ivo-%s" % short(token).lower()
    qid, addr, sender, blocker = deferred_message(inst, token, local)
    inst.stop()
    r = inst.ctl("queue", "hold", qid)
    assert r.returncode == 0, r
    assert [p.name for p in inst.queue_files(("hold",))] == [qid]
    blocker.unlink()
    inst.start()
    held_stays(inst, qid, token, local)
    inst.stop()
    r = inst.ctl("queue", "release", qid)
    assert r.returncode == 0, r
    assert [p.name for p in inst.queue_files(("incoming",))] == [qid]
    inst.start()
    inst.wait_messages(token, local)


# ------------------------------------------------ a herald.conf with a typo


def break_config(inst, extra="smtpd_tyop = 1\n"):
    """Append a bad line to inst's herald.conf; its number."""
    inst.write_config(extra)
    return len(inst.conf.read_text().splitlines())


def warned(r, where, what):
    """One warning line on stderr naming where (file:line) and what."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "warning" in lines[0], r
    assert where in lines[0] and what in lines[0], r


def test_config_running(herald):
    """config --running prints what master runs with, not the file."""
    herald.set_config(smtpd_banner="edited-not-reloaded")
    try:
        r = herald.ctl("config", "smtpd_banner")
        assert r.stdout.strip() == "edited-not-reloaded", r
        r = herald.ctl("config", "--running", "smtpd_banner")
        assert r.returncode == 0 and r.stdout.strip() == "ESMTP herald", r
        r = herald.ctl("config", "--running", "--changed", json_out=True)
        assert r.returncode == 0, r
        want = {k: v for k, v in herald.config.items()
                if k != "smtpd_banner"}
        assert json.loads(r.stdout) == want, r.stdout
    finally:
        herald.set_config(smtpd_banner=None)


def test_broken_config_running(make_herald):
    """One typo in herald.conf locks nobody out: every command but check,
    start and reload warns and works from the settings master runs with;
    stop stops it. Without master, status and stop say it is not running,
    reading commands use the good lines and writing ones refuse."""
    inst = make_herald()
    pid = inst.master_pid
    n = break_config(inst)
    where = "%s:%d" % (inst.conf, n)
    running = "using the settings herald is running with"

    r = inst.ctl("status")
    assert r.returncode == 0 and "herald is running" in r.stdout, r
    warned(r, where, running)
    r = inst.ctl("queue", "list")
    assert r.returncode == 0, r
    warned(r, where, running)
    r = inst.ctl("user", "list")
    assert r.returncode == 0 and "alice@example.test" in r.stdout, r
    warned(r, where, running)
    r = inst.ctl("user", "add", "zoe@example.test", input="pw-zoe\n")
    assert r.returncode == 0, r
    warned(r, where, running)
    for args in (("config", "--running", "--changed"),
                 ("config", "--changed")):
        r = inst.ctl(*args)
        assert r.returncode == 0, r
        keys = set(re.findall(r"^([a-z_][a-z0-9_]*) =", r.stdout, re.M))
        assert keys == set(inst.config), (args, r.stdout)
    r = inst.ctl("config", "--running", "smtpd_listen")
    assert r.returncode == 0 and \
        r.stdout.strip() == inst.config["smtpd_listen"], r

    # these need a good file, and say where it is bad
    for args in (("check",), ("reload",), ("start",)):
        r = inst.ctl(*args)
        assert r.returncode == 1, (args, r)
        assert where in r.stdout + r.stderr, (args, r)
        assert 'unknown key "smtpd_tyop"' in r.stdout + r.stderr, (args, r)
    with inst.smtp() as s:
        assert s.ehlo()[0] == 250

    r = inst.ctl("stop", timeout=60)
    assert r.returncode == 0 and "herald stopped" in r.stdout, r
    warned(r, where, running)
    assert not H.proc_alive(pid)
    inst.proc.wait(timeout=10)

    # herald is not running either
    r = inst.ctl("status")
    assert r.returncode == 3 and "herald is not running" in r.stdout, r
    warned(r, where, "herald is not running: using the built-in defaults")
    r = inst.ctl("stop")
    assert r.returncode == 3 and "herald is not running" in r.stderr, r
    r = inst.ctl("config", "--running")
    assert r.returncode == 3 and "not running" in r.stderr, r
    r = inst.ctl("user", "list")
    assert r.returncode == 0 and "zoe@example.test" in r.stdout, r
    r = inst.ctl("user", "add", "yan@example.test", input="pw-yan\n")
    assert r.returncode == 1 and where in r.stderr and \
        "fix the file first" in r.stderr, r
    inst.write_config()
    r = inst.ctl("user", "list")
    assert r.returncode == 0 and "yan@" not in r.stdout and not r.stderr, r


def test_stop_by_pid_file(make_herald):
    """stop works from master.pid (locked: master holds it) when the
    control socket is gone; a stale pid file is not running."""
    inst = make_herald()
    pid = inst.master_pid
    (inst.run_dir / "master.sock").unlink()
    r = inst.ctl("stop", timeout=60)
    assert r.returncode == 0 and "herald stopped" in r.stdout, r
    assert not H.proc_alive(pid)
    inst.proc.wait(timeout=10)
    (inst.run_dir / "master.pid").write_text("%d\n" % os.getpid())
    r = inst.ctl("stop")
    assert r.returncode == 3 and "herald is not running" in r.stderr, r
    assert H.proc_alive(os.getpid())

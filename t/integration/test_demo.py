"""
demo: `make demo` started as root shows the real privilege separation
(scripts/demo.py). Its set-up part, prepare(), runs here as root into a
fresh folder on free ports; herald is then started as make demo starts
it (heraldctl start --foreground) and every service must run under a uid
other than 0 (master stays root), as the accounts the demo chose: the
package's users if they exist, else the demo's own, made with useradd.
A mail to alice lands in her Maildir and is read back over POP3 with the
password the demo made, so the folders it made suit those users; imapd
runs too, alice logs in over imaps, and the banner's curl command that
lists her INBOX over imaps is run as printed (its listing is checked once
imapd answers SELECT).
Accounts the demo made during this test are removed again.

Not as root, prepare() picks the invoking user for every setting and
makes no account (checked without root too).
"""
import importlib.util
import imaplib
import os
import re
import shlex
import ssl
import poplib
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import herald as H

DEMO = H.REPO / "scripts" / "demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("herald_demo", DEMO)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def uid_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(v) for v in line.split()[1:]]
    except OSError:
        return None
    return None


def children_of(pid):
    out = {}
    for p in H.all_pids():
        st = H.proc_stat(p)
        if st is not None and not st[4] and st[1] == pid:
            out[p] = st[0]
    return out


def test_not_root_keeps_the_caller(monkeypatch):
    demo = load_demo()
    me = pwd.getpwnam("nobody") if os.geteuid() == 0 else \
        pwd.getpwuid(os.geteuid())
    monkeypatch.setattr(os, "geteuid", lambda: me.pw_uid)
    notes = []
    acct = demo.accounts(notes)
    assert acct["herald_user"] == acct["vmail_user"] == \
        acct["auth_user"] == acct["dkim_user"] == me.pw_name, acct
    assert notes == []


def check_submission(demo, made, folder, ports, token):
    """The banner's swaks command logs alice in on the submission port
    (STARTTLS, AUTH PLAIN) and sends bob a mail, as printed."""
    text = demo.banner(str(folder / "demo-run"), made, [],
                       made["ctl"][0])
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip().startswith("swaks ") and "--auth" in ln]
    assert len(lines) == 1, text
    assert "127.0.0.1:%d" % ports["submission_port"] in lines[0]
    if shutil.which("swaks") is None:
        print("swaks is not installed: the banner's command is not run")
        return
    r = subprocess.run(shlex.split(lines[0]) +
                       ["--header", "Subject: %s-sub" % token],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "235 2.7.0" in r.stdout, r.stdout
    new = folder / "demo-run" / "mail" / "example.test" / "bob" / "new"
    got = H.wait_for(lambda: new.is_dir() and [
        f.read_bytes() for f in new.iterdir()
        if (token + "-sub").encode() in f.read_bytes()], 30,
        what="submitted mail for bob")
    # example.test has the demo's keys: the signer signed it
    head = got[0].split(b"\n\n", 1)[0]
    assert head.count(b"DKIM-Signature: v=1; a=") == 2, head
    assert b"d=example.test; s=demo-ed25519;" in head.replace(b"\n ", b" ")


def check_imap(demo, made, folder, ports, token):
    """alice logs in over imaps with the demo's password; the banner
    shows the IMAP ports and a curl command listing her INBOX over
    imaps, which works as printed."""
    pw = made["passwords"]["alice"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps_port"], ssl_context=ctx,
                          timeout=30)
    try:
        assert m.login("alice@example.test", pw)[0] == "OK"
    finally:
        m.logout()
    text = demo.banner(str(folder / "demo-run"), made, [],
                       made["ctl"][0])
    assert "IMAP:     127.0.0.1:%d (STARTTLS), 127.0.0.1:%d (implicit TLS)" \
        % (ports["imap_port"], ports["imaps_port"]) in text, text
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip().startswith("curl ") and "imaps://" in ln]
    assert len(lines) == 2, text
    listing = lines[0]
    assert "-u alice@example.test:%s imaps://127.0.0.1:%d/INBOX " % \
        (pw, ports["imaps_port"]) in listing, listing
    if shutil.which("curl") is None:
        print("curl is not installed: the banner's command is not run")
        return
    r = subprocess.run(shlex.split(listing) + ["-v", "--max-time", "30"],
                       capture_output=True, text=True, timeout=60)
    # curl -v shows the server's answers on stderr: the login passed
    assert re.search(r"^< A\d+ OK \[CAPABILITY [^]]*\] Logged in", r.stderr,
                     re.M), r.stderr
    if re.search(r"< A\d+ NO \[UNAVAILABLE\]", r.stderr):
        # imapd before SELECT: nothing to list yet
        print("imapd does not answer SELECT yet: listing not checked")
        return
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^\* 1 FETCH \(", r.stdout, re.M), r.stdout
    assert token in r.stdout, r.stdout


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="the demo's real users need root")
def test_demo_as_root_runs_services_as_users(token):
    demo = load_demo()
    names = list(demo.DEMO_ACCOUNTS.values())
    had = {n for n in names if demo.user_exists(n)}
    had_group = demo.group_exists(demo.DEMO_GROUP)
    folder = Path(tempfile.mkdtemp(prefix="herald-demo-test-", dir="/tmp"))
    os.chmod(folder, 0o755)
    proc = None
    try:
        ports = dict(port=H.free_port(), pop3_port=H.free_port(),
                     pop3s_port=H.free_port(), imap_port=H.free_port(),
                     imaps_port=H.free_port(),
                     submission_port=H.free_port(),
                     submissions_port=H.free_port())
        made = demo.prepare(str(folder / "demo-run"), str(H.HERALD_BIN),
                            **ports)
        acct = made["accounts"]
        print("demo notes:", made["notes"])
        # example.test's DKIM keys, readable by root (and dkim_group) only
        keys = folder / "demo-run" / "dkim" / "example.test"
        for k in ("demo.ed25519.key", "demo.rsa.key"):
            st = (keys / k).stat()
            assert (st.st_mode & 0o777, st.st_uid) == (0o640, 0), k
        log = open(folder / "demo.log", "ab")
        try:
            proc = subprocess.Popen(made["ctl"] + ["start", "--foreground"],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True)
        finally:
            log.close()

        def banner():
            try:
                with H.RawSMTP("127.0.0.1", ports["port"], timeout=2) as c:
                    return c.readline().startswith(b"220")
            except OSError:
                return False
        H.wait_for(banner, 40, what="demo smtpd")
        want = {"smtpd": acct["herald_user"], "qmgr": acct["herald_user"],
                "local": acct["vmail_user"], "pop3d": acct["vmail_user"],
                "imapd": acct["vmail_user"], "authd": acct["auth_user"],
                "signer": acct["dkim_user"],
                "remote": acct["herald_user"]}
        H.wait_for(lambda: set(want) <= set(children_of(proc.pid).values()),
                   20, what="every service running")
        assert uid_of(proc.pid) == [0] * 4

        # a worker that is still starting runs as root until its drop: wait
        # until none is left at uid 0 (one that never drops times out here)
        def all_dropped():
            return all(0 not in (uid_of(pid) or [1])
                       for pid, name in children_of(proc.pid).items()
                       if name in want)
        H.wait_for(all_dropped, 30, what="every service past its drop")
        for pid, name in children_of(proc.pid).items():
            uids = uid_of(pid)
            if uids is None:
                continue	# went away meanwhile
            assert uids == [pwd.getpwnam(want[name]).pw_uid] * 4, \
                (name, pid, uids, want[name])
            assert 0 not in uids, (name, pid, uids)

        # the folders suit those users: a mail goes in and comes out
        msg = H.make_message(token)
        import smtplib
        with smtplib.SMTP("127.0.0.1", ports["port"], timeout=30) as s:
            assert s.sendmail("someone@example.org", ["alice@example.test"],
                              msg) == {}
        new = folder / "demo-run" / "mail" / "example.test" / "alice" / "new"
        H.wait_for(lambda: new.is_dir() and any(new.iterdir()), 30,
                   what="mail in %s" % new)
        p = poplib.POP3("127.0.0.1", ports["pop3_port"], timeout=30)
        try:
            p.user("alice@example.test")
            p.pass_(made["passwords"]["alice"])
            _resp, lines, _n = p.retr(1)
            assert any(token.encode() in line for line in lines)
            p.quit()
        finally:
            p.close()
        check_imap(demo, made, folder, ports, token)
        check_submission(demo, made, folder, ports, token)

        r = subprocess.run(made["ctl"] + ["stop"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r
        assert proc.wait(timeout=30) == 0
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait(timeout=10)
        conf = str(folder).encode()
        for pid in H.all_pids():
            if any(conf in a for a in H.proc_cmdline(pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(folder, ignore_errors=True)
        for n in names:
            if n not in had and demo.user_exists(n):
                subprocess.run(["userdel", n], capture_output=True)
        if not had_group and demo.group_exists(demo.DEMO_GROUP):
            subprocess.run(["groupdel", demo.DEMO_GROUP],
                           capture_output=True)

"""
The Debian package, as an admin meets it: `make package` builds a .deb
that lintian passes and whose man pages mandoc passes; dpkg installs it
on this machine; `heraldctl start` (no systemd) runs it with the
configuration the package wrote; a domain and a user are added, a mail
sent to port 25 on loopback lands in the Maildir and is read back over
POP3 on port 110, as is one given to /usr/sbin/sendmail; imapd answers
on port 143 (CAPABILITY with STARTTLS, then LOGIN over TLS) and 993
(implicit TLS) with the same user and password, and smtpd's submission
roles on 587 (AUTH only after STARTTLS) and 465 (implicit TLS, AUTH, a
mail sent as the user); with no syslog
at /dev/log the lines about them are in /var/log/herald/herald.log, and
after `logrotate -f` (if installed) in a new file at that path; with a typo
in herald.conf heraldctl status, list, config --running and stop still
answer (with a warning); `dpkg -r` of a running herald with that typo
stops it (by its pid file) and keeps configuration and mail; `dpkg
--purge` leaves no process, user, group or file of herald but the
mailboxes, says nothing about crontab, and with HERALD_PURGE_MAIL=yes
leaves no mailboxes either.

Runs as root only, and only where no other mail server package is
installed (the package conflicts with them) and ports 25, 110, 995, 143,
993, 587 and 465 are free; otherwise it is skipped with the reason printed. The sanitizer
pass of `make test` skips it (it tests the packaging, built once).
HERALD_DEB=path uses an already built package.

The maintainer scripts' stop by pid file is also tested on its own, as
any user, against a test instance (prerm with its run folder in place of
/run/herald): a master with a broken herald.conf is stopped without
heraldctl, and one that ignores SIGTERM is killed with its group.
"""
import glob
import imaplib
import os
import poplib
import pwd
import grp
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

import herald as H

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
USERS = ("herald", "vmail", "herald-auth", "herald-dkim")
GROUPS = ("herald", "vmail", "herald-auth", "herald-dkim", "herald-dir")
GONE_AFTER_PURGE = ("/etc/herald", "/var/spool/herald", "/var/lib/herald",
                    "/usr/lib/herald", "/usr/sbin/heraldctl",
                    "/lib/systemd/system/herald.service", "/var/log/herald",
                    "/etc/logrotate.d/herald")
LOG = "/var/log/herald/herald.log"
MAILBOX = "/var/mail/herald/example.test/alice"
SENDMAIL_LINKS = ("/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases",
                  "/usr/sbin/newaliases")


def skip(reason):
    print("skipped: " + reason)
    pytest.skip(reason)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, **kw)


def other_mta():
    """An installed package that provides mail-transport-agent, or None."""
    r = run(["dpkg-query", "-W", "-f=${Package}\t${Provides}\t${Status}\n"])
    for line in r.stdout.splitlines():
        pkg, provides, status = (line.split("\t") + ["", ""])[:3]
        if "ok installed" in status and "mail-transport-agent" in provides:
            return pkg
    return None


def port_busy(port):
    with socket.socket() as s:
        # connections in TIME_WAIT do not count, a listener does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def exists_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def exists_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def herald_pids():
    """Live processes running a program from /usr/lib/herald."""
    out = []
    for pid in H.all_pids():
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
        except OSError:
            continue
        if exe.startswith("/usr/lib/herald/"):
            out.append(pid)
    return out


def build_deb(tmp_path):
    deb = os.environ.get("HERALD_DEB")
    if deb:
        return deb
    out = tmp_path / "deb"
    r = run([os.path.join(REPO, "scripts", "package.sh"), str(out)],
            timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    debs = glob.glob(str(out / "herald_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


def lint(deb, tmp_path):
    r = run(["lintian", "--no-tag-display-limit", deb])
    bad = [ln for ln in r.stdout.splitlines() if ln[:2] in ("E:", "W:")]
    assert not bad, "lintian:\n" + r.stdout + r.stderr
    root = tmp_path / "contents"
    assert run(["dpkg-deb", "-x", deb, str(root)]).returncode == 0
    pages = glob.glob(str(root / "usr/share/man/man*/*"))
    assert pages, "no man pages in the package"
    for page in pages:
        r = run(["mandoc", "-Tlint", "-Wwarning", page])
        assert r.returncode == 0, "mandoc %s:\n%s%s" % (page, r.stdout,
                                                      r.stderr)
    return [os.path.basename(p).replace(".gz", "") for p in pages]


def syslog_listening():
    """Does /dev/log take a datagram (as master's auto rule asks)?"""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect("/dev/log")
        return True
    except OSError:
        return False
    finally:
        sock.close()


def cleanup():
    """Whatever happened: nothing of herald runs or stays installed."""
    if os.path.exists("/usr/sbin/heraldctl"):
        run(["/usr/sbin/heraldctl", "stop"], timeout=120)
    for pid in herald_pids():
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["dpkg", "--purge", "herald"], env=env)
    shutil.rmtree("/var/mail/herald", ignore_errors=True)


def check_imap(user, password):
    """The installed imapd on 143 (STARTTLS offered, LOGIN over it) and
    on 993 (implicit TLS). The package's certificate is self-signed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4("127.0.0.1", 143, timeout=30)
    try:
        assert "IMAP4REV2" in m.capabilities and \
            "STARTTLS" in m.capabilities, m.capabilities
        assert m.starttls(ssl_context=ctx)[0] == "OK"
        assert "STARTTLS" not in m.capabilities, m.capabilities
        assert m.login(user, password)[0] == "OK"
    finally:
        m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=ctx, timeout=30)
    try:
        assert m.login(user, password)[0] == "OK"
    finally:
        m.logout()


def check_submission(user, password, token):
    """The installed smtpd's submission roles: 587 offers AUTH only after
    STARTTLS; 465 is TLS from the first byte, and a logged-in user's mail
    is delivered. The package's certificate is self-signed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", 587, timeout=30) as s:
        s.ehlo()
        assert s.has_extn("starttls") and not s.has_extn("auth")
        s.starttls(context=ctx)
        s.ehlo()
        assert "PLAIN" in s.esmtp_features.get("auth", "").upper()
        s.login(user, password)
    msg = H.make_message(token + "-465", sender=user, to=user)
    with smtplib.SMTP_SSL("127.0.0.1", 465, context=ctx, timeout=30) as s:
        s.login(user, password)
        assert s.sendmail(user, [user], msg) == {}


@pytest.mark.time_limit(900)
def test_install_run_remove_purge(tmp_path, token):
    if os.geteuid() != 0:
        skip("installing a package needs root (uid %d)" % os.geteuid())
    if os.environ.get("HERALD_SANITIZED"):
        skip("the package is tested once, in the ordinary pass")
    if shutil.which("dpkg") is None or shutil.which("dpkg-buildpackage") is None:
        skip("dpkg or dpkg-dev is missing")
    for tool in ("lintian", "mandoc", "dh"):
        if shutil.which(tool) is None:
            skip("%s is missing (scripts/deps.sh installs it)" % tool)
    mta = other_mta()
    if mta and mta != "herald":
        skip("%s is installed: herald's package conflicts with it" % mta)
    if mta == "herald" or os.path.exists("/usr/lib/herald"):
        skip("herald is installed on this machine already: not touching it")
    busy = [p for p in (25, 110, 995, 143, 993, 587, 465) if port_busy(p)]
    if busy:
        skip("ports %s are in use" % busy)

    deb = build_deb(tmp_path)
    pages = lint(deb, tmp_path)
    assert {"heraldctl.8", "herald.8", "herald.conf.5", "imapd.8",
            "smtpd.8", "remote.8",
            "sendmail.1", "mailq.1", "newaliases.1"} <= set(pages), pages

    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # the first herald.conf takes its host name from /etc/mailname
    made_mailname = not os.path.exists("/etc/mailname")
    if made_mailname:
        with open("/etc/mailname", "w") as f:
            f.write("mail.package-test.example\n")
    mailname = open("/etc/mailname").readline().strip()
    try:
        r = run(["dpkg", "-i", deb], env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        if "." in mailname:
            assert "fully qualified" not in r.stderr, r.stderr
        # where Debian expects things, with the right owners and modes
        for path in ("/usr/sbin/heraldctl", "/usr/sbin/sendmail",
                     "/usr/lib/sendmail", "/usr/lib/herald/master",
                     "/usr/lib/herald/smtpd", "/usr/lib/herald/pop3d",
                     "/usr/lib/herald/imapd",
                     "/etc/herald/herald.conf", "/etc/herald/tls/cert.pem"):
            assert os.path.exists(path), path
        assert os.stat("/etc/herald/tls/key.pem").st_mode & 0o077 == 0
        # the fail2ban jail closes the POP3, IMAP and submission ports
        jail = open("/etc/fail2ban/jail.d/herald.conf").read()
        assert "\nport     = pop3,pop3s,imap,imaps,submission,submissions\n" \
            in jail, jail
        # the sendmail program under the names Debian's MTAs give it
        for path in SENDMAIL_LINKS:
            assert os.path.islink(path) and os.path.realpath(path) == \
                "/usr/sbin/sendmail", path
        r = run(["/usr/bin/newaliases"])
        assert r.returncode == 0 and "heraldctl alias" in r.stdout, r
        for u in USERS:
            assert exists_user(u), u
        assert exists_group("herald-dir")
        if shutil.which("systemd-analyze"):
            r = run(["systemd-analyze", "verify", "--man=no",
                     "/lib/systemd/system/herald.service"])
            assert r.returncode == 0 and not r.stdout.strip() and \
                not r.stderr.strip(), r.stdout + r.stderr
        conf = open("/etc/herald/herald.conf").read()
        assert "\nmyhostname = %s\n" % mailname in conf, conf
        assert "tls_cert_file" in conf, conf

        st = os.stat("/var/log/herald")
        assert oct(st.st_mode & 0o7777) == oct(0o2750), oct(st.st_mode)
        assert grp.getgrgid(st.st_gid).gr_name == "adm"
        assert os.path.exists("/etc/logrotate.d/herald")

        ctl = ["/usr/sbin/heraldctl"]
        r = run(ctl + ["start"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        syslog = syslog_listening()
        if not syslog:
            assert "logging to %s: no syslog at /dev/log" % LOG in \
                r.stderr, r.stderr
        assert run(ctl + ["check"]).returncode == 0
        assert run(ctl + ["domain", "add", "example.test"]).returncode == 0
        # DKIM keys as root: group herald-dkim, which postinst made and
        # the signer runs in (and only it)
        r = run(ctl + ["dkim", "keygen", "example.test", "--selector",
                       "pkg"])
        assert r.returncode == 0, r.stdout + r.stderr
        key = "/etc/herald/dkim/example.test/pkg.rsa.key"
        st = os.stat(key)
        assert (st.st_uid, grp.getgrgid(st.st_gid).gr_name,
                st.st_mode & 0o777) == (0, "herald-dkim", 0o640), st
        r = run(ctl + ["user", "add", "alice@example.test"],
                input="package-pw-1\n")
        assert r.returncode == 0, r.stdout + r.stderr

        msg = H.make_message(token, to="alice@example.test")
        with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
            s.sendmail("someone@example.org", ["alice@example.test"], msg)

        def delivered():
            files = glob.glob(MAILBOX + "/new/*") + \
                glob.glob(MAILBOX + "/cur/*")
            return [f for f in files if token.encode() in
                    open(f, "rb").read()]
        H.wait_for(delivered, 60, what="the message in alice's Maildir")
        assert pwd.getpwuid(os.stat(delivered()[0]).st_uid).pw_name == \
            "vmail"
        if not syslog:
            def logged(what, path=LOG):
                try:
                    return what in open(path, errors="replace").read()
                except FileNotFoundError:
                    return False
            H.wait_for(lambda: logged("to=<alice@example.test>"), 30,
                       what="qmgr's line in %s" % LOG)
            assert logged("from=<someone@example.org>")
            st = os.stat(LOG)
            assert st.st_mode & 0o777 == 0o640, oct(st.st_mode)
            assert grp.getgrgid(st.st_gid).gr_name == "adm"
            if shutil.which("logrotate"):
                r = run(["logrotate", "-f", "-s", str(tmp_path / "lr.state"),
                         "/etc/logrotate.d/herald"])
                assert r.returncode == 0, r.stdout + r.stderr
                assert logged("from=<someone@example.org>", LOG + ".1")
                H.wait_for(lambda: logged("reopened log file"), 30,
                           what="master writing the new %s" % LOG)

        # and a local program's mail through /usr/sbin/sendmail
        r = run(["/usr/sbin/sendmail", "alice@example.test"],
                input="Subject: cron %s\n\nfrom cron\n" % token)
        assert r.returncode == 0, r.stdout + r.stderr
        H.wait_for(lambda: len(delivered()) == 2, 60,
                   what="the sendmail message")
        if not syslog:
            H.wait_for(lambda: logged("status=sent"), 30,
                       what="the sendmail message in %s" % LOG)

        r = run(["/usr/bin/mailq"])
        assert r.returncode == 0 and r.stdout.startswith("QUEUE_ID"), r
        r = run(["/usr/sbin/sendmail", "-bv", "alice@example.test"])
        assert r.returncode == 0 and "deliverable to mailbox " \
            "alice@example.test" in r.stdout, r
        # lockouts are read as herald-auth, and stay its files
        r = run(ctl + ["auth", "lockouts"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert all(os.stat(p).st_uid == pwd.getpwnam("herald-auth").pw_uid
                   for p in glob.glob("/var/lib/herald/authstate/*")), \
            run(["ls", "-ln", "/var/lib/herald/authstate"]).stdout

        p = poplib.POP3("127.0.0.1", 110, timeout=30)
        p.user("alice@example.test")
        p.pass_("package-pw-1")
        count, _ = p.stat()
        assert count == 2
        lines = p.retr(1)[1]
        assert any(token.encode() in ln for ln in lines)
        p.quit()
        check_imap("alice@example.test", "package-pw-1")
        check_submission("alice@example.test", "package-pw-1", token)
        got = H.wait_for(lambda: [open(f, "rb").read() for f in
                                  glob.glob(MAILBOX + "/new/*")
                                  if (token + "-465").encode() in
                                  open(f, "rb").read()], 60,
                         what="the submitted message in alice's Maildir")
        # signed by the installed signer, as herald-dkim
        head = got[0].split(b"\n\n", 1)[0].replace(b"\n ", b" ")
        assert head.count(b"DKIM-Signature: v=1;") == 2, head
        assert b"d=example.test; s=pkg-ed25519;" in head, head
        assert b"d=example.test; s=pkg-rsa;" in head, head

        # a typo in herald.conf locks nobody out: heraldctl warns and
        # works from the settings herald runs with; stop works too
        with open("/etc/herald/herald.conf", "a") as f:
            f.write("smtpd_tyop = 1\n")
        where = "/etc/herald/herald.conf:%d" % len(
            open("/etc/herald/herald.conf").read().splitlines())
        for args in (["status"], ["user", "list"], ["queue", "list"],
                     ["config", "--running", "myhostname"]):
            r = run(ctl + args)
            assert r.returncode == 0 and where in r.stderr and \
                "settings herald is running with" in r.stderr, \
                (args, r.stdout + r.stderr)
        assert "alice@example.test" in run(ctl + ["user", "list"]).stdout
        r = run(ctl + ["check"])
        assert r.returncode == 1 and where in r.stdout + r.stderr, \
            r.stdout + r.stderr
        r = run(ctl + ["stop"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        H.wait_for(lambda: not herald_pids(), 30, what="herald stopped")
        r = run(ctl + ["status"])
        assert r.returncode == 3 and "not running" in r.stdout, \
            r.stdout + r.stderr

        # remove: programs go, configuration and mail stay; a herald that
        # runs is stopped by its pid file, whatever herald.conf says
        with open("/etc/herald/herald.conf") as f:
            good = f.read().replace("smtpd_tyop = 1\n", "")
        with open("/etc/herald/herald.conf", "w") as f:
            f.write(good)
        r = run(ctl + ["start"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        with open("/etc/herald/herald.conf", "a") as f:
            f.write("smtpd_tyop = 1\n")
        assert herald_pids()
        r = run(["dpkg", "-r", "herald"], env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not herald_pids(), "dpkg -r left herald running"
        assert not os.path.exists("/usr/sbin/heraldctl")
        assert not os.path.exists("/usr/sbin/sendmail")
        for path in SENDMAIL_LINKS:
            assert not os.path.lexists(path), path
        assert os.path.exists("/etc/herald/herald.conf")
        assert delivered()

        # purge: configuration, queue, state and users go; mail stays;
        # no noise (deluser warns about crontab when cron is missing)
        r = run(["dpkg", "--purge", "herald"], env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "crontab" not in r.stdout + r.stderr and \
            "deluser" not in r.stdout + r.stderr, r.stdout + r.stderr
        assert not herald_pids()
        for path in GONE_AFTER_PURGE:
            assert not os.path.exists(path), path
        for u in USERS:
            assert not exists_user(u), u
        for g in GROUPS:
            assert not exists_group(g), g
        assert delivered(), "purge removed the mailboxes"
        assert run(["dpkg-query", "-W", "herald"]).returncode != 0

        # HERALD_PURGE_MAIL=yes: a purge takes the mailboxes too. This
        # install writes a new herald.conf: with a short host name
        # postinst warns, and check (never started: no spool folders, no
        # directory yet) passes with the same warning
        if made_mailname:
            with open("/etc/mailname", "w") as f:
                f.write("vm\n")
        inst = run(["dpkg", "-i", deb], env=env)
        assert inst.returncode == 0, inst.stdout + inst.stderr
        assert delivered(), "a reinstall touched the mailboxes"
        r = run(ctl + ["check"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "will be created at start" in r.stdout, r.stdout
        if made_mailname:
            assert "myhostname" in inst.stderr and \
                "/etc/herald/herald.conf" in inst.stderr, inst.stderr
            assert "WARN myhostname" in r.stdout, r.stdout
        r = run(["dpkg", "--purge", "herald"],
                env=dict(env, HERALD_PURGE_MAIL="yes"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "crontab" not in r.stdout + r.stderr, r.stdout + r.stderr
        assert not herald_pids()
        assert not os.path.exists("/var/mail/herald")
        for path in GONE_AFTER_PURGE:
            assert not os.path.exists(path), path
    finally:
        cleanup()
        if made_mailname:
            os.unlink("/etc/mailname")
    assert not herald_pids()
    assert not os.path.exists("/var/mail/herald")


def maintainer_script(name, run_dir, folder, wait_tenths=None):
    """etc/debian/NAME with /run/herald replaced by run_dir (and its
    wait shortened to wait_tenths), written into folder; its path."""
    text = open(os.path.join(REPO, "etc", "debian", name)).read()
    text = text.replace("/run/herald", str(run_dir))
    if wait_tenths is not None:
        text = text.replace('-lt 600', '-lt %d' % wait_tenths)
    path = folder / name
    path.write_text(text)
    return path


def test_prerm_stops_by_pid_file(make_herald, tmp_path):
    """prerm stops a herald whose herald.conf has an error by its pid
    file, without heraldctl; a stale pid file is left alone."""
    inst = make_herald()
    pid = inst.master_pid
    inst.write_config("smtpd_tyop = 1\n")
    children = inst.children()
    assert children
    prerm = maintainer_script("prerm", inst.run_dir, tmp_path)
    r = run(["sh", "-e", str(prerm), "remove"], timeout=90,
            env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and not r.stderr, r
    assert not H.proc_alive(pid), "prerm left master running"
    inst.proc.wait(timeout=10)
    assert H.wait_dead(children, 10), "services outlived master"
    # a pid file nobody holds locked names nobody
    (inst.run_dir / "master.pid").write_text("%d\n" % os.getpid())
    r = run(["sh", "-e", str(prerm), "remove"], timeout=30)
    assert r.returncode == 0 and not r.stderr, r


def test_prerm_kills_what_ignores_sigterm(tmp_path):
    """A master that does not stop on SIGTERM is killed, with the
    processes of its group, once the wait is over."""
    holder = tmp_path / "holder.py"
    holder.write_text(
        "import fcntl, os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "f = open(sys.argv[1], 'w')\n"
        "fcntl.flock(f, fcntl.LOCK_EX)\n"
        "if os.fork() == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "f.write('%d\\n' % os.getpid())\n"
        "f.flush()\n"
        "time.sleep(60)\n")
    pidfile = tmp_path / "master.pid"
    proc = subprocess.Popen(["/usr/bin/python3", str(holder), str(pidfile)],
                            start_new_session=True)
    try:
        H.wait_for(lambda: pidfile.exists() and pidfile.read_text()
                   .endswith("\n"), 10, what="the pid file")
        group = [p for p in H.all_pids() if (H.proc_stat(p) or
                 (0, 0, 0))[2] == proc.pid]
        assert len(group) == 2, group
        prerm = maintainer_script("prerm", tmp_path, tmp_path,
                                  wait_tenths=10)
        r = run(["sh", "-e", str(prerm), "remove"], timeout=30)
        assert r.returncode == 0, r
        assert "did not stop" in r.stderr, r
        proc.wait(timeout=10)
        assert H.wait_dead(group, 10), "the group outlived the KILL"
    finally:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass
        proc.wait(timeout=10)

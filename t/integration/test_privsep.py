"""
privsep: herald started as root runs every service as its own user
(DESIGN.md section 3).

The other integration tests set every user to root (or run unprivileged),
so the privilege drop is a no-op there. Here, as root, the instance uses
accounts every Debian system has, so nothing on the machine changes:

  herald_user     daemon   smtpd, qmgr
  vmail_user      nobody   local
  auth_user       bin      authd
  directory_group mail     (or another group that neither user is in)

and checks: mail flows; the Maildir belongs to the vmail user; the queue
belongs to herald_user (folders 0700, files without group/other bits);
each service process has the expected uid, gid and supplementary groups
while master stays root; the directory can be read with the services'
credentials and the password database cannot; authd, as auth_user,
reads the password database (master gives it to auth_user, and so does
heraldctl when it adds a password) and writes its throttle state; the
SRS secret is herald_user's alone, and smtpd reads it after the drop; a
reload and a stop keep to the same rules and leave no process behind.

Runs only as root (skipped otherwise).
"""
import grp
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import herald as H

HERALD_USER = "daemon"
VMAIL_USER = "nobody"
AUTH_USER = "bin"
DKIM_USER = "sys"	# dkim_group: its own group, as the package makes it
GROUP_CANDIDATES = ("mail", "adm", "staff", "users", "src")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="privilege separation needs root (running as uid %d)"
    % os.geteuid())


def account(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.skip("account %s does not exist on this machine" % name)


def pick_directory_group(users):
    """A group that is neither user's primary group and lists neither as
    member, so only herald's setgroups() can give it to them."""
    primary = {u.pw_gid for u in users}
    names = {u.pw_name for u in users}
    for name in GROUP_CANDIDATES:
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in primary and not names & set(g.gr_mem):
            return g
    pytest.skip("no group among %s fits as directory_group"
                % (GROUP_CANDIDATES,))


class Ids:
    def __init__(self):
        self.herald = account(HERALD_USER)
        self.vmail = account(VMAIL_USER)
        self.auth = account(AUTH_USER)
        self.dkim = account(DKIM_USER)
        self.group = pick_directory_group([self.herald, self.vmail])


def privsep_instance(pki, ids, **overrides):
    """A HeraldInstance in a fresh 0755 folder under /tmp (pytest's own
    temporary folders are 0700, which the service users cannot cross)."""
    folder = Path(tempfile.mkdtemp(prefix="herald-privsep-", dir="/tmp"))
    os.chmod(folder, 0o755)
    settings = dict(herald_user=ids.herald.pw_name,
                    vmail_user=ids.vmail.pw_name,
                    auth_user=ids.auth.pw_name,
                    dkim_user=ids.dkim.pw_name,
                    dkim_group=grp.getgrgid(ids.dkim.pw_gid).gr_name,
                    directory_group=ids.group.gr_name,
                    quota_exceeded_bounce="no")
    settings.update(overrides)
    return H.HeraldInstance(folder / "inst", pki=pki, **settings), folder


def finish(inst, folder):
    """Stop; fail if a process is left; remove the folder."""
    try:
        inst.stop()
        left = inst.our_pids()
        assert not left, "processes outlived the instance: %s" % sorted(left)
        reports = inst.sanitizer_reports()
        assert not reports, "sanitizer reports: %s\n%s" % (
            reports, inst.log_tail(150))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def ids():
    return Ids()


@pytest.fixture(scope="module")
def inst(pki, ids):
    instance, folder = privsep_instance(pki, ids, imap=True)
    try:
        # an admin with a strict umask makes the directory: master must
        # still give directory_group what LMDB readers need
        old_umask = os.umask(0o077)
        try:
            instance.add_domain("example.test")
            instance.add_user("alice@example.test", "pw-alice")
            instance.ctl_ok("user", "add", "bob@example.test", "--quota",
                            "1k", input="pw-bob\n")
        finally:
            os.umask(old_umask)
        instance.start()
        yield instance
    finally:
        finish(instance, folder)


# ---------------------------------------------------------------- helpers


def proc_ids(pid):
    """(uids, gids, groups) from /proc/<pid>/status; None if gone."""
    uids = gids = groups = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "Uid":
                    uids = tuple(int(v) for v in value.split())
                elif key == "Gid":
                    gids = tuple(int(v) for v in value.split())
                elif key == "Groups":
                    groups = sorted(int(v) for v in value.split())
    except OSError:
        return None
    return uids, gids, groups


def assert_runs_as(pid, user, group):
    got = proc_ids(pid)
    assert got is not None, "process %d went away" % pid
    uids, gids, groups = got
    want_groups = sorted({user.pw_gid} |
                         ({group.gr_gid} if group is not None else set()))
    assert uids == (user.pw_uid,) * 4, \
        "pid %d: Uid %s, want %s everywhere" % (pid, uids, user.pw_uid)
    assert gids == (user.pw_gid,) * 4, \
        "pid %d: Gid %s, want %s everywhere" % (pid, gids, user.pw_gid)
    assert groups == want_groups, \
        "pid %d: Groups %s, want %s" % (pid, groups, want_groups)


def can_open_as(user, group, path, flags):
    """True if a process with the services' credentials (user, its primary
    group, plus group) can open path with flags."""
    code = ("import os, sys\n"
            "try:\n"
            "    os.close(os.open(sys.argv[1], int(sys.argv[2])))\n"
            "except PermissionError:\n"
            "    sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path), str(flags)],
                       user=user.pw_uid, group=user.pw_gid,
                       extra_groups=[user.pw_gid, group.gr_gid],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30, cwd="/")
    if r.returncode not in (0, 3):
        raise AssertionError("probe as %s failed: %s"
                             % (user.pw_name, r.stdout))
    return r.returncode == 0


def send(inst, token, rcpt, body=None, tls=False):
    msg = H.make_message(token, sender="privsep@example.org", to=rcpt,
                         body=body)
    with inst.smtp() as s:
        s.ehlo()
        if tls:
            # the key was loaded before the drop; TLS works after it
            s.starttls(context=inst.tls_context())
            s.ehlo()
        assert s.sendmail("privsep@example.org", [rcpt], msg) == {}
    return msg


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


# ---------------------------------------------------------------- tests


def test_mail_lands_in_maildir_owned_by_vmail(inst, ids, token):
    msg = send(inst, token, "alice@example.test", tls=True)
    got = inst.wait_messages(token, "alice", timeout=30)
    H.split_delivered(got[0], msg)
    inst.wait_queue_empty(30)

    md = inst.maildir("alice")
    # the base folder (mail/) was made by master for the vmail user
    assert md.parent.parent == inst.dir / "mail"
    paths = [md.parent.parent, md.parent, md]
    paths += [md / s for s in ("cur", "new", "tmp")]
    paths += inst.maildir_files("alice")
    for p in paths:
        uid, _gid, mode = owner(p)
        assert uid == ids.vmail.pw_uid, \
            "%s owned by uid %d, want %s" % (p, uid, VMAIL_USER)
        assert mode & 0o077 == 0, "%s has mode %04o" % (p, mode)


def test_services_run_as_their_users(inst, ids, token):
    # local processes may start on demand: let one mail through first
    send(inst, token, "alice@example.test")
    inst.wait_messages(token, "alice", timeout=30)

    master = proc_ids(inst.master_pid)
    assert master is not None and master[0] == (0, 0, 0, 0), master
    want = {"smtpd": ids.herald, "qmgr": ids.herald, "local": ids.vmail,
            "authd": ids.auth}
    if H.have_binaries("pop3d"):
        want["pop3d"] = ids.vmail
    if H.have_binaries("imapd"):
        want["imapd"] = ids.vmail
    seen = {}
    for name, user in want.items():
        pids = H.wait_for(lambda: inst.children(name), 15,
                          what="%s running" % name)
        seen[name] = pids
        for pid in pids:
            assert_runs_as(pid, user, ids.group)
    if H.have_binaries("remote"):
        # remote talks to the internet: herald_user, and not in the
        # directory group (it has no business with the directory)
        seen["remote"] = H.wait_for(lambda: inst.children("remote"), 15,
                                    what="remote running")
        for pid in seen["remote"]:
            assert_runs_as(pid, ids.herald, None)
    if H.have_binaries("signer"):
        # the signer holds the DKIM keys: dkim_user in its own group
        # (dkim_group), not in the directory group
        seen["signer"] = H.wait_for(lambda: inst.children("signer"), 15,
                                    what="signer running")
        for pid in seen["signer"]:
            assert_runs_as(pid, ids.dkim, None)
    assert len(seen["smtpd"]) == 2 and len(seen["qmgr"]) == 1, seen
    # every child of master is one of the above
    assert sorted(inst.children()) == sorted(sum(seen.values(), [])), \
        (inst.children(), seen)


def test_queue_owned_by_herald_user(inst, ids, token):
    # bob's quota is 1k and quota_exceeded_bounce = no: the message is
    # deferred and stays in the queue
    body = ("x" * 70 + "\r\n") * 60
    since = inst.log_size()
    send(inst, token, "bob@example.test", body=body)
    m = inst.wait_log(r"(%s): to=<bob@example.test>, .*status=deferred"
                      % H.QID_RE, timeout=30, since=since)
    qid = m.group(1)

    spool = inst.spool
    folders = [spool] + [p for p in spool.rglob("*") if p.is_dir()]
    # the spool, its six folders and deferred/'s 32 hash folders
    assert len(folders) >= 7 + 32, folders
    for p in folders:
        uid, gid, mode = owner(p)
        assert (uid, gid) == (ids.herald.pw_uid, ids.herald.pw_gid), \
            "%s owned by %d:%d, want %s" % (p, uid, gid, HERALD_USER)
        assert mode == 0o700, "%s has mode %04o" % (p, mode)
    files = H.wait_for(lambda: [p for p in inst.queue_files()
                                if p.name == qid], 15,
                       what="queue file %s" % qid)
    for p in files:
        uid, _gid, mode = owner(p)
        assert uid == ids.herald.pw_uid, \
            "%s owned by uid %d, want %s" % (p, uid, HERALD_USER)
        assert mode & 0o077 == 0, "%s has mode %04o" % (p, mode)
    for name in ("qmgr", "local"):
        p = spool / "private" / name
        assert stat.S_ISSOCK(os.lstat(p).st_mode), p
        assert owner(p)[0] == ids.herald.pw_uid, (p, owner(p))

    # heraldctl (root) still reaches qmgr through the herald_user socket
    r = inst.ctl("queue", "delete", qid)
    assert r.returncode == 0, r
    H.wait_for(lambda: not [p for p in inst.queue_files() if p.name == qid],
               15, what="queue file %s gone" % qid)


def test_directory_readable_passwords_not(inst, ids):
    data = inst.dir / "data"
    directory = data / "directory"
    for p in (data, directory, directory / "data.mdb",
              directory / "lock.mdb"):
        uid, gid, mode = owner(p)
        assert gid == ids.group.gr_gid, \
            "%s has group %d, want %s" % (p, gid, ids.group.gr_name)
        assert uid not in (ids.herald.pw_uid, ids.vmail.pw_uid), p
        assert mode & 0o007 == 0, "%s has mode %04o" % (p, mode)
    for user in (ids.herald, ids.vmail):
        # LMDB readers write the lock file
        assert can_open_as(user, ids.group, directory / "data.mdb",
                           os.O_RDONLY), user.pw_name
        assert can_open_as(user, ids.group, directory / "lock.mdb",
                           os.O_RDWR), user.pw_name

    passwd = data / "passwd"
    assert (passwd / "data.mdb").exists()
    for p in [passwd] + sorted(passwd.iterdir()):
        uid, _gid, mode = owner(p)
        assert uid not in (ids.herald.pw_uid, ids.vmail.pw_uid), p
        assert mode & 0o077 == 0, "%s has mode %04o" % (p, mode)
    for user in (ids.herald, ids.vmail):
        for name in ("data.mdb", "lock.mdb"):
            assert not can_open_as(user, ids.group, passwd / name,
                                   os.O_RDONLY), \
                "%s can read %s" % (user.pw_name, passwd / name)


def test_srs_secret_only_for_herald_user(inst, ids):
    # master made it at start for smtpd and qmgr (herald_user), 0600
    secret = inst.dir / "data" / "srs.secret"
    uid, _gid, mode = owner(secret)
    assert uid == ids.herald.pw_uid, "%s belongs to uid %d" % (secret, uid)
    assert mode == 0o600, "%s has mode %04o" % (secret, mode)
    assert can_open_as(ids.herald, ids.group, secret, os.O_RDONLY)
    for user in (ids.vmail, ids.auth, ids.dkim):
        assert not can_open_as(user, ids.group, secret, os.O_RDONLY), \
            "%s can read %s" % (user.pw_name, secret)
    # smtpd, after its privilege drop, reads it: a forged SRS address of
    # example.test (srs_domain: the only hosted domain) gets 550 for its
    # hash, not 451 for an unreadable secret
    with inst.smtp() as s:
        s.ehlo()
        s.mail("<>")
        code, text = s.rcpt("SRS0=abcd=AA=c.test=x@example.test")
        assert code == 550 and b"bad hash" in text, (code, text)


def test_authd_reads_passwords_as_auth_user(inst, ids):
    data = inst.dir / "data"
    pids = H.wait_for(lambda: inst.children("authd"), 15,
                      what="authd running")
    for pid in pids:
        assert_runs_as(pid, ids.auth, ids.group)
    # master gave the password database and the throttle state to authd
    passwd, state = data / "passwd", data / "authstate"
    for p in [passwd] + sorted(passwd.iterdir()):
        uid, _gid, mode = owner(p)
        assert uid == ids.auth.pw_uid, \
            "%s owned by uid %d, want %s" % (p, uid, AUTH_USER)
        assert mode == (0o700 if p.is_dir() else 0o600), \
            "%s has mode %04o" % (p, mode)
    uid, _gid, mode = owner(state)
    assert (uid, mode) == (ids.auth.pw_uid, 0o700), (state, uid, mode)

    since = inst.log_size()
    r = inst.auth("alice@example.test", "pw-alice", client="192.0.2.1")
    assert r == {"status": "ok", "user": "alice@example.test"}, r
    # a failure is written to authstate by auth_user
    r = inst.auth("alice@example.test", "wrong", client="192.0.2.2")
    assert r["status"] == "fail" and r.get("delay"), r
    for p in sorted(state.iterdir()):
        assert owner(p)[0] == ids.auth.pw_uid, (p, owner(p))
    # a password heraldctl (root) adds while herald runs is readable too
    inst.add_user("erin@example.test", "pw-erin")
    r = inst.auth("erin@example.test", "pw-erin", client="192.0.2.3")
    assert r == {"status": "ok", "user": "erin@example.test"}, r
    log = inst.log_text(since)
    assert "authd" not in "".join(l for l in log.splitlines()
                                  if "warning" in l), log
    assert "tempfail" not in log, log


def test_authd_rehashes_as_auth_user(inst, ids):
    """authd (auth_user) replaces an imported SHA512-CRYPT hash at login:
    it can write the password database master gave it, next to
    heraldctl (root), and the files stay auth_user's, 0600."""
    six = subprocess.run(["openssl", "passwd", "-6", "pw-six"], check=True,
                         capture_output=True, text=True).stdout.strip()
    inst.ctl_ok("user", "import", "-",
                input="six@example.test:{SHA512-CRYPT}%s\n" % six)
    since = inst.log_size()
    r = inst.auth("six@example.test", "pw-six", client="192.0.2.4")
    assert r == {"status": "ok", "user": "six@example.test"}, r
    inst.wait_log(r"herald/authd\[\d+\]: password rehashed: "
                  r"user=<six@example\.test> from=SHA512-CRYPT "
                  r"to=yescrypt$", since=since)
    r = inst.auth("six@example.test", "pw-six", client="192.0.2.5")
    assert r == {"status": "ok", "user": "six@example.test"}, r
    # heraldctl (root) still writes beside authd's open handle
    inst.ctl_ok("user", "passwd", "six@example.test", input="pw-six2\n")
    r = inst.auth("six@example.test", "pw-six2", client="192.0.2.6")
    assert r == {"status": "ok", "user": "six@example.test"}, r
    passwd = inst.dir / "data" / "passwd"
    for p in [passwd] + sorted(passwd.iterdir()):
        uid, _gid, mode = owner(p)
        assert uid == ids.auth.pw_uid, (p, uid)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    log = inst.log_text(since)
    assert "password not rehashed" not in log, log
    assert "tempfail" not in log, log


def test_check_passes(inst):
    r = inst.ctl("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout, r.stdout


def test_reload_keeps_users(inst, ids, token):
    old = set(inst.children())
    since = inst.log_size()
    r = inst.ctl("reload")
    assert r.returncode == 0, r
    inst.wait_log(r"reloaded configuration", since=since, timeout=15)
    H.wait_for(lambda: inst.children("smtpd") and inst.children("qmgr")
               and not set(inst.children()) & old, 30,
               what="a new generation of services")
    msg = send(inst, token, "alice@example.test")
    H.split_delivered(inst.wait_messages(token, "alice", timeout=30)[0], msg)
    for name, user in (("smtpd", ids.herald), ("qmgr", ids.herald),
                       ("local", ids.vmail)):
        for pid in inst.children(name):
            assert_runs_as(pid, user, ids.group)


def test_mail_base_vmail_cannot_use(pki, ids, token):
    """check and master both say when vmail_user cannot create mailboxes
    in mail_location's folder; mail waits in the queue meanwhile."""
    instance, folder = privsep_instance(pki, ids)
    try:
        fresh = instance.dir / "fresh"
        instance.set_config(mail_location=str(fresh) + "/%d/%n")
        r = instance.ctl("check")
        assert re.search(r"^ok mail_location: %s \(.*creates it for %s\)$"
                         % (re.escape(str(fresh)), VMAIL_USER),
                         r.stdout, re.M), r.stdout

        locked = instance.dir / "locked"
        locked.mkdir(mode=0o700)
        instance.set_config(mail_location=str(locked) + "/%d/%n")
        r = instance.ctl("check")
        assert r.returncode == 1, r
        assert re.search(r"^FAIL mail_location: %s: .*vmail_user %s cannot "
                         r"create mailboxes there$"
                         % (re.escape(str(locked)), VMAIL_USER),
                         r.stdout, re.M), r.stdout

        instance.add_domain("example.test")
        instance.add_user("alice@example.test", "pw-alice")
        instance.start()
        instance.wait_log(r"warning: mail_location: %s: .*vmail_user %s "
                          r"cannot create mailboxes there"
                          % (re.escape(str(locked)), VMAIL_USER), timeout=5)
        assert owner(locked)[:2] == (0, 0), "master changed %s" % locked
        send(instance, token, "alice@example.test")
        instance.wait_log(r"to=<alice@example.test>, relay=local, .*"
                          r"status=deferred \(.*Permission denied",
                          timeout=30)
        assert not (fresh / "example.test").exists()
    finally:
        finish(instance, folder)


def test_stop_leaves_nothing(pki, ids, token):
    instance, folder = privsep_instance(pki, ids)
    try:
        instance.add_domain("example.test")
        instance.add_user("alice@example.test", "pw-alice")
        instance.start()
        send(instance, token, "alice@example.test")
        instance.wait_messages(token, "alice", timeout=30)
        children = instance.children()
        assert children
        r = instance.ctl("stop", timeout=60)
        assert r.returncode == 0, r
        instance.proc.wait(timeout=60)
        assert H.wait_dead(children, 10), \
            [p for p in children if H.proc_alive(p)]
        assert not instance.our_pids(), instance.our_pids()
        assert not (instance.run_dir / "master.pid").exists()
        assert not (instance.run_dir / "master.sock").exists()
        # nothing runs as the service users with this configuration
        conf = str(instance.conf).encode()
        for pid in H.all_pids():
            ids_ = proc_ids(pid)
            if ids_ and ids_[0][0] in (ids.herald.pw_uid, ids.vmail.pw_uid):
                assert not any(conf in a for a in H.proc_cmdline(pid)), pid
    finally:
        finish(instance, folder)


def test_master_never_follows_links_in_authd_folders(pki, ids):
    """authd's user can write data/passwd/ and data/authstate/; master
    changes owner and mode there as root at start and at every reload. A
    symbolic link (or a hard link) authd put there in place of data.mdb
    or lock.mdb must be refused with a warning, never followed: here the
    links point at root-owned files of the test, standing in for
    /etc/shadow, whose owner and mode must not change."""
    instance, folder = privsep_instance(pki, ids)
    victims = Path(tempfile.mkdtemp(prefix="herald-victim-", dir="/tmp"))
    try:
        instance.add_domain("example.test")
        instance.add_user("alice@example.test", "pw-alice")
        data = instance.dir / "data"
        (data / "authstate").mkdir(mode=0o700, exist_ok=True)
        shadow, other = victims / "shadow", victims / "other"
        for p in (shadow, other):
            p.write_text("root:secret\n")
            os.chown(p, 0, 0)
            os.chmod(p, 0o640)
        planted = {data / "passwd" / "data.mdb": "symbolic link",
                   data / "authstate" / "data.mdb": "symbolic link",
                   data / "authstate" / "lock.mdb": "2 links"}
        (data / "passwd" / "data.mdb").unlink()
        os.symlink(shadow, data / "passwd" / "data.mdb")
        os.symlink(shadow, data / "authstate" / "data.mdb")
        os.link(other, data / "authstate" / "lock.mdb")

        def unchanged(when):
            for p in (shadow, other):
                assert owner(p) == (0, 0, 0o640), \
                    "%s %s: %s is %r" % ("master", when, p, owner(p))

        since = instance.log_size()
        # authd cannot use the planted files: it may show as failing
        instance.start(degraded_ok=True)
        for p, why in planted.items():
            instance.wait_log(r"warning: %s/%s (is a symbolic link|has "
                              r"\d+ links).*: not changed"
                              % (re.escape(str(p.parent)), re.escape(p.name)),
                              since=since, timeout=10)
            assert why in instance.log_text(since), (p, why)
        unchanged("at start")
        # the real files next to them were still given to authd
        assert owner(data / "passwd")[:1] == (ids.auth.pw_uid,)
        assert owner(data / "passwd" / "lock.mdb")[0] == ids.auth.pw_uid

        since = instance.log_size()
        r = instance.ctl("reload")
        assert r.returncode == 0, r
        instance.wait_log(r"reloaded configuration", since=since, timeout=15)
        instance.wait_log(r"warning: %s/data.mdb is a symbolic link, "
                          r"not a regular file: not changed"
                          % re.escape(str(data / "passwd")),
                          since=since, timeout=5)
        unchanged("after reload")
    finally:
        finish(instance, folder)
        shutil.rmtree(victims, ignore_errors=True)


def test_heraldctl_never_writes_through_authd_links(pki, ids):
    """heraldctl, as root, writes passwords into data/passwd/, which
    auth_user can change. LMDB opens (and on a first open truncates and
    writes) lock.mdb by name, following links: a lock.mdb that authd
    turned into a link to a root-owned file (standing in for
    /etc/shadow) must not be written, so the password database is worked
    on by a helper running as auth_user, never by root."""
    instance, folder = privsep_instance(pki, ids)
    victims = Path(tempfile.mkdtemp(prefix="herald-victim-", dir="/tmp"))
    try:
        instance.add_domain("example.test")
        instance.add_user("alice@example.test", "pw-alice")
        passwd = instance.dir / "data" / "passwd"
        assert owner(passwd / "data.mdb")[0] == ids.auth.pw_uid
        shadow = victims / "shadow"
        shadow.write_text("root:$6$secret:19000:0:99999:7:::\n")
        os.chmod(shadow, 0o640)
        def state():
            data = shadow.read_bytes()
            return (len(data), hashlib.sha256(data).hexdigest()[:16],
                    owner(shadow))
        before = state()
        (passwd / "lock.mdb").unlink()
        os.symlink(shadow, passwd / "lock.mdb")

        for args in (("user", "add", "bob@example.test"),
                     ("user", "passwd", "alice@example.test"),
                     ("user", "del", "alice@example.test")):
            r = instance.ctl(*args, input="pw-new\npw-new\n")
            after = state()
            assert after == before, "heraldctl %s changed %s: %r" % (
                " ".join(args), shadow, after)
            assert "lock.mdb is a symbolic link" in r.stderr + r.stdout, r
    finally:
        finish(instance, folder)
        shutil.rmtree(victims, ignore_errors=True)


def test_imap_login_as_vmail_through_authd(inst, ids):
    """imapd runs as the vmail user, which cannot read the password
    database (test_directory_readable_passwords_not): a login works only
    by asking authd over its socket, and a wrong password fails."""
    import imaplib
    m = imaplib.IMAP4("127.0.0.1", inst.imap_port, timeout=30)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            m.login("alice@example.test", "wrong")
        assert m.login("alice@example.test", "pw-alice")[0] == "OK"
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    for pid in inst.children("imapd"):
        assert_runs_as(pid, ids.vmail, ids.group)


def test_relay_password_root_only_used_by_remote(pki, ids, token):
    """smtp_sasl_password_file mode 0600 root: smtpd's user (herald_user,
    which remote shares) cannot open it, yet remote, which opened it
    before its drop, logs in to the relayhost with it after STARTTLS."""
    from test_remote_route import R_PASS, R_USER, Stub
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
    relay = Stub(("127.0.0.1", 0), ctx, auth=True).serve_in_thread()
    port = relay.server_address[1]
    inst, folder = privsep_instance(
        pki, ids, relayhost="[127.0.0.1]:%d" % port, remote_processes="1",
        mynetworks="127.0.0.0/8")
    try:
        # the CA where herald_user can read it (pytest's folders are 0700)
        ca = folder / "ca.crt"
        shutil.copyfile(pki["ca_cert"], ca)
        os.chmod(ca, 0o644)
        inst.set_config(smtp_tls_ca_file=str(ca))
        pwfile = folder / "sasl_passwd"
        pwfile.write_text("[127.0.0.1]:%d %s:%s\n" % (port, R_USER, R_PASS))
        os.chown(pwfile, 0, 0)
        os.chmod(pwfile, 0o600)
        inst.set_config(smtp_sasl_password_file=str(pwfile))
        inst.add_domain("example.test")
        inst.start()
        assert not can_open_as(ids.herald, ids.group, pwfile, os.O_RDONLY)
        send(inst, token, "someone@far.test")
        try:
            H.wait_for(lambda: relay.got(token), 30,
                       what="mail at the relay")
        except AssertionError:
            raise AssertionError(inst.log_tail(60))
        # remote is herald_user (outside the directory group) like smtpd
        remote = inst.children("remote")
        assert remote
        for pid in remote:
            assert_runs_as(pid, ids.herald, None)
        sessions = [[c for _t, c in s] for s in relay.seen()]
        assert any("AUTH PLAIN" in s for s in sessions), sessions
        assert R_PASS not in inst.log_text()
    finally:
        relay.stop()
        finish(inst, folder)

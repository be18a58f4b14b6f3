"""
Real IMAP clients against imapd over imaps, each trusting the test CA:
mbsync (Debian isync) and offlineimap3 sync a 1,000-message INBOX and a
second folder to a local Maildir both ways (flags and deletions on each
side), and a further run changes nothing (its own report, the server's
HIGHESTMODSEQ and the local file names); curl lists INBOX with SEARCH
and FETCH, fetches a message by UID and APPENDs one; neomutt, under a
pseudo-terminal, opens INBOX and copies a message to an mbox file.

Each tool is skipped with the reason when it is not installed
(scripts/deps.sh installs them). Every subprocess has a time bound.
"""
import hashlib
import os
import pty
import re
import select
import shutil
import signal
import ssl
import subprocess
import time

import pytest

import herald as H
from test_imap_core import RawIMAP

SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
# the 1,000-message syncs run in the ordinary pass; under a sanitizer
# (4x slower) 200 take the same code paths in a fifth of the time
NMSG = 200 if SANITIZED else 1000
NWORK = 20


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapclients",
                           imap=True) as inst:
        yield inst


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        pytest.skip("%s is not installed (Debian package %s; "
                    "scripts/deps.sh installs it)" % (tool, package))
    return path


def raw(inst, user, pw):
    c = RawIMAP(inst.imap_port, timeout=30.0)
    c.login(user, pw)
    return c


def tagged_ok(r, tag):
    assert r and r[-1].startswith(tag.encode() + b" OK"), r[-5:]
    return r


def append_many(c, folder, prefix, count, flags=lambda i: ""):
    """count messages APPENDed with LITERAL+, 100 to a MULTIAPPEND."""
    for start in range(0, count, 100):
        out = [b"A APPEND " + folder.encode()]
        for i in range(start, min(count, start + 100)):
            msg = H.make_message("%s-%04d" % (prefix, i))
            out.append(b" (%s) {%d+}\r\n%s"
                       % (flags(i).encode(), len(msg), msg))
        c.send(b"".join(out) + b"\r\n")
        r = c.until_tagged("A", 60)
        assert r[-1].startswith(b"A OK"), r[-3:]


def populate(inst, user, pw):
    c = raw(inst, user, pw)
    tagged_ok(c.cmd("c", "CREATE Work"), "c")
    append_many(c, "INBOX", "in", NMSG,
                lambda i: "\\Seen" if i % 3 == 0 else "")
    append_many(c, "Work", "wk", NWORK,
                lambda i: "\\Flagged" if i % 2 else "")
    c.close()


def state(inst, user, pw):
    """{folder: (HIGHESTMODSEQ, {Subject token: flags})} from the server."""
    c = raw(inst, user, pw)
    out = {}
    for folder in ("INBOX", "Work"):
        r = tagged_ok(c.cmd("s", "EXAMINE %s (CONDSTORE)" % folder), "s")
        hms = [x for x in r if b"HIGHESTMODSEQ" in x]
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", hms[0]).group(1))
        c.send("f FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])"
               "\r\n")
        r = []
        for _ in range(10 * NMSG):
            r.append(c.line(60))
            if r[-1].startswith(b"f "):
                break
        tagged_ok(r, "f")
        msgs = {}
        flags = None
        for ln in r:
            m = re.search(rb"FLAGS \(([^)]*)\)", ln)
            if m and b" FETCH " in ln:
                flags = set(m.group(1).split())
            m = re.match(rb"Subject: test (\S+)", ln)
            if m:
                msgs[m.group(1).decode()] = flags
        out[folder] = (hms, msgs)
        c.cmd("u", "UNSELECT")
    c.close()
    return out


def server_change(inst, user, pw, folder, token, store):
    """STORE store on the message whose Subject carries token; "expunge"
    deletes and expunges it."""
    c = raw(inst, user, pw)
    tagged_ok(c.cmd("s", "SELECT %s" % folder), "s")
    r = tagged_ok(c.cmd("q", 'UID SEARCH SUBJECT "test %s"' % token), "q")
    uid = [x for x in r if x.startswith(b"* SEARCH")][0].split()[2]
    if store == "expunge":
        tagged_ok(c.cmd("d", "UID STORE %s +FLAGS.SILENT (\\Deleted)"
                        % uid.decode()), "d")
        tagged_ok(c.cmd("x", "UID EXPUNGE %s" % uid.decode()), "x")
    else:
        tagged_ok(c.cmd("f", "UID STORE %s +FLAGS.SILENT (%s)"
                        % (uid.decode(), store)), "f")
    c.close()


def local_files(folder):
    """{Subject token: path} of a local Maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        d = folder / sub
        if not d.is_dir():
            continue
        for p in d.iterdir():
            with open(p, "rb") as f:
                head = f.read(4096)
            m = re.search(rb"Subject: test (\S+)", head)
            if m:
                out[m.group(1).decode()] = p
    return out


def local_flags(path):
    name = path.name
    return name.split(":2,", 1)[1] if ":2," in name else ""


def local_set_flag(path, flag):
    """Maildir flag letters are kept sorted (the Maildir spec)."""
    base = path.name.split(":2,")[0]
    letters = "".join(sorted(set(local_flags(path) + flag)))
    os.rename(path, path.parent.parent / "cur" / (base + ":2," + letters))


def snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.parent.name in ("cur", "new"))


def run_tool(args, timeout, **kw):
    p = subprocess.run(args, capture_output=True, timeout=timeout, **kw)
    assert p.returncode == 0, (args[0], p.returncode, p.stdout[-3000:],
                               p.stderr[-3000:])
    return p


def sync_round_trip(imap, user, pw, sync, inbox, work):
    """The part both sync tools share: first sync, then changes on both
    sides, a second sync that carries them over, a third that changes
    nothing. sync() runs the tool and returns its output; inbox() and
    work() are the local folders."""
    t0 = time.monotonic()
    populate(imap, user, pw)
    print("APPEND of %d + %d messages: %.1f s"
          % (NMSG, NWORK, time.monotonic() - t0))
    t0 = time.monotonic()
    sync()
    first = time.monotonic() - t0
    print("first sync of %d + %d messages: %.1f s" % (NMSG, NWORK, first))
    loc_in, loc_wk = local_files(inbox()), local_files(work())
    assert len(loc_in) == NMSG and len(loc_wk) == NWORK
    assert "S" in local_flags(loc_in["in-0003"])
    assert "S" not in local_flags(loc_in["in-0004"])
    assert "F" in local_flags(loc_wk["wk-0001"])

    # local: \Seen, \Flagged, a deletion; server: the same, others
    local_set_flag(loc_in["in-0010"], "S")
    local_set_flag(loc_in["in-0011"], "F")
    os.unlink(loc_in["in-0012"])
    local_set_flag(loc_wk["wk-0002"], "F")
    server_change(imap, user, pw, "INBOX", "in-0020", "\\Seen")
    server_change(imap, user, pw, "INBOX", "in-0021", "\\Flagged")
    server_change(imap, user, pw, "INBOX", "in-0022", "expunge")
    server_change(imap, user, pw, "Work", "wk-0004", "expunge")
    t0 = time.monotonic()
    sync()
    print("second sync: %.1f s" % (time.monotonic() - t0))

    srv = state(imap, user, pw)
    sin, swk = srv["INBOX"][1], srv["Work"][1]
    assert b"\\Seen" in sin["in-0010"], sin["in-0010"]
    assert b"\\Flagged" in sin["in-0011"], sin["in-0011"]
    assert "in-0012" not in sin and "in-0022" not in sin
    assert b"\\Flagged" in swk["wk-0002"] and "wk-0004" not in swk
    assert len(sin) == NMSG - 2 and len(swk) == NWORK - 1
    loc_in, loc_wk = local_files(inbox()), local_files(work())
    assert "S" in local_flags(loc_in["in-0020"])
    assert "F" in local_flags(loc_in["in-0021"])
    assert "in-0022" not in loc_in and "in-0012" not in loc_in
    assert "wk-0004" not in loc_wk
    assert len(loc_in) == NMSG - 2 and len(loc_wk) == NWORK - 1

    # a further run changes nothing on either side
    root = inbox().parent
    before = snapshot(root)
    t0 = time.monotonic()
    out = sync()
    print("third sync: %.1f s" % (time.monotonic() - t0))
    after_srv = state(imap, user, pw)
    assert after_srv == srv
    assert snapshot(root) == before
    return out


def test_mbsync(imap, pki, tmp_path):
    need("mbsync", "isync")
    user, pw = "alice@example.test", "pw-alice"
    local = tmp_path / "mail"
    local.mkdir()
    # isync 1.4 matches the host name against DNS names only, not an IP
    # address; a certificate listed in CertificateFile itself is trusted
    # without the name check, so the file holds the CA and the server's
    trust = tmp_path / "trust.pem"
    trust.write_bytes(open(pki["ca_cert"], "rb").read() +
                      open(pki["cert"], "rb").read())
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(
        "IMAPAccount t\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\n"
        "SSLType IMAPS\nCertificateFile %s\nAuthMechs PLAIN LOGIN\n\n"
        "IMAPStore far\nAccount t\n\n"
        "MaildirStore near\nPath %s/\nInbox %s/INBOX\n"
        "SubFolders Verbatim\n\n"
        "Channel c\nFar :far:\nNear :near:\nPatterns *\n"
        "Create Both\nExpunge Both\nSync All\nSyncState *\n"
        % (imap.imaps_port, user, pw, trust, local, local))
    outs = []

    def sync():
        # -Dn: the IMAP conversation, to see what the last run sent
        p = run_tool(["mbsync", "-V", "-Dn", "-c", str(cfg), "-a"],
                     120 if SANITIZED else 60)
        outs.append(p.stdout.decode(errors="replace"))
        return outs[-1]

    out = sync_round_trip(imap, user, pw, sync, lambda: local / "INBOX",
                          lambda: local / "Work")
    # isync 1.4.4 prints no counts when not on a terminal: the last run
    # sent no command that changes the server
    sent = re.findall(r"^>>> \d+ (.*)$", out, re.M)
    assert sent and any("SELECT" in x for x in sent), out[-3000:]
    changes = [x for x in sent if re.match(
        r"(UID )?(STORE|EXPUNGE|APPEND|COPY|MOVE|CREATE|DELETE)", x)]
    assert not changes, changes
    # and no run got a BAD or NO answer
    for text in outs:
        assert not re.search(r"^<<< \S+ (BAD|NO)\b", text, re.M), \
            re.findall(r"^<<< .*(?:BAD|NO) .*$", text, re.M)[:5]


OFFLINEIMAPRC = """\
[general]
accounts = t
metadata = {meta}
ui = basic
maxsyncaccounts = 1

[Account t]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = {local}
sep = .

[Repository far]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = {user}
remotepass = {pw}
ssl = yes
cert_fingerprint = {pin}
maxconnections = 1
holdconnectionopen = no
expunge = yes
"""


def test_offlineimap3(imap, pki, tmp_path):
    need("offlineimap", "offlineimap3")
    user, pw = "bob@example.test", "pw-bob"
    local = tmp_path / "mail"
    local.mkdir()
    # offlineimap matches the host name against the certificate's DNS
    # names only, never an IP address: the server's certificate (issued
    # by the test CA) is pinned by its SHA-256 fingerprint instead
    der = ssl.PEM_cert_to_DER_cert(open(pki["cert"]).read())
    cfg = tmp_path / "offlineimaprc"
    cfg.write_text(OFFLINEIMAPRC.format(
        meta=tmp_path / "meta", local=local, port=imap.imaps_port,
        user=user, pw=pw, pin=hashlib.sha256(der).hexdigest()))

    def sync():
        p = run_tool(["offlineimap", "-c", str(cfg), "-o", "-u", "basic"],
                     240 if SANITIZED else 120)
        text = (p.stdout + p.stderr).decode(errors="replace")
        assert "ERROR" not in text, text[-3000:]
        return text

    out = sync_round_trip(imap, user, pw, sync, lambda: local / "INBOX",
                          lambda: local / "Work")
    # the last run copied, flagged and deleted nothing
    assert not re.search(r"Copy message|Adding flag|Deleting|"
                         r"Removing flag", out), out[-3000:]


def curl(imap, pki, user, pw, url, *extra, timeout=30):
    return run_tool(["curl", "-sS", "--max-time", str(timeout - 5),
                     "--cacert", str(pki["ca_cert"]), "--user",
                     "%s:%s" % (user, pw)] + list(extra) +
                    ["imaps://127.0.0.1:%d/%s" % (imap.imaps_port, url)],
                    timeout).stdout


def test_curl(imap, pki, tmp_path):
    need("curl", "curl")
    user, pw = "carol@example.test", "pw-carol"
    c = raw(imap, user, pw)
    append_many(c, "INBOX", "curl", 3, lambda i: "\\Seen" if i == 1 else "")
    c.close()
    out = curl(imap, pki, user, pw, "INBOX?ALL")
    assert out.strip() == b"* SEARCH 1 2 3", out
    out = curl(imap, pki, user, pw, "INBOX", "-X", "FETCH 1:* (FLAGS)")
    assert re.findall(rb"\* (\d) FETCH \(FLAGS \(([^)]*)\)\)", out) == \
        [(b"1", b""), (b"2", b"\\Seen"), (b"3", b"")], out
    out = curl(imap, pki, user, pw, "INBOX;UID=1")
    assert out.replace(b"\r\n", b"\n") == \
        H.make_message("curl-0000").replace(b"\r\n", b"\n"), out
    msg = tmp_path / "up.eml"
    msg.write_bytes(H.make_message("curl-upload"))
    curl(imap, pki, user, pw, "INBOX", "-T", str(msg))
    out = curl(imap, pki, user, pw, "INBOX?SUBJECT%20curl-upload")
    assert out.strip() == b"* SEARCH 4", out
    out = curl(imap, pki, user, pw, "INBOX;UID=4")
    assert b"Subject: test curl-upload" in out, out


def run_in_pty(args, timeout, env):
    """args under a pseudo-terminal, its screen output thrown away;
    killed after timeout seconds. Returns the exit status."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(args[0], args, env)
        finally:
            os._exit(127)
    deadline = time.monotonic() + timeout
    screen = b""
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen = (screen + chunk)[-20000:]
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), screen
        else:
            raise AssertionError("neomutt still running after %d s: %r"
                                 % (timeout, screen[-2000:]))
        _, status = os.waitpid(pid, 0)
        pid = 0
        return os.waitstatus_to_exitcode(status), screen
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(fd)


def test_neomutt(imap, pki, tmp_path):
    need("neomutt", "neomutt")
    user, pw = "dave@example.test", "pw-dave"
    c = raw(imap, user, pw)
    append_many(c, "INBOX", "mutt", 3)
    c.close()
    saved = tmp_path / "saved.mbox"
    rc = tmp_path / "muttrc"
    rc.write_text(
        'set imap_user="{user}" imap_pass="{pw}"\n'
        'set certificate_file="{ca}" ssl_ca_certificates_file="{ca}"\n'
        'set ssl_force_tls=yes ssl_starttls=no imap_passive=yes\n'
        'set folder="imaps://127.0.0.1:{port}/" spoolfile="+INBOX"\n'
        'set header_cache="" message_cachedir="" mbox_type=mbox\n'
        'set confirmcreate=no confirmappend=no quit=yes move=no\n'
        'set sort=date-sent wait_key=no timeout=5 mail_check=60\n'
        'set sleep_time=0 beep=no\n'
        'push "<first-entry><copy-message>{saved}<enter><quit>"\n'
        .format(user=user, pw=pw, ca=pki["ca_cert"], port=imap.imaps_port,
                saved=saved))
    env = dict(os.environ, TERM="vt100", HOME=str(tmp_path),
               LC_ALL="C.UTF-8")
    status, screen = run_in_pty(["neomutt", "-n", "-F", str(rc), "-f",
                                 "imaps://127.0.0.1:%d/INBOX"
                                 % imap.imaps_port], 60, env)
    assert status == 0, (status, screen[-2000:])
    assert saved.exists(), screen[-2000:]
    data = saved.read_bytes()
    assert data.startswith(b"From "), data[:200]
    assert b"Subject: test mutt-0000" in data, data[:2000]
    assert b"Hello, this is message mutt-0000." in data, data[:2000]


def test_fetch_answer_not_held_by_nagle(imap):
    """offlineimap fetches a message a command at a time: each UID FETCH
    of a message not fetched before is answered in two writes (the data,
    then the tagged line after the cache write on a job thread). With
    Nagle on, the tagged line waited for the client's delayed ACK: 40 ms
    a command, however fast the server. The median of 30 must be well
    under that."""
    user, pw = "carol@example.test", "pw-carol"
    c = raw(imap, user, pw)
    tagged_ok(c.cmd("c", "CREATE Nagle"), "c")
    append_many(c, "Nagle", "nagle", 30)
    tagged_ok(c.cmd("s", "SELECT Nagle"), "s")
    took = []
    for i in range(1, 31):
        t = time.monotonic()
        c.send("f FETCH %d (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n" % i)
        for _ in range(100):
            ln = c.line(10)
            if ln.startswith(b"f "):
                break
        assert ln.startswith(b"f OK"), ln
        took.append(time.monotonic() - t)
    took.sort()
    print("FETCH round trips: median %.1f ms, max %.1f ms"
          % (took[15] * 1000, took[-1] * 1000))
    assert took[15] < 0.025, took
    c.close()

"""
test_signer - DKIM signing of outgoing mail: the signer service
(signer/signer.c) and smtpd's side of it (smtpd/smtpd_sign.c).

- mail that a logged-in user submits (465), that sendmail hands over,
  and that a client in mynetworks sends is delivered with two
  DKIM-Signature fields (Ed25519 and RSA) that herald's verifier
  (t/dkimcheck/dkim_check.c, the records of "heraldctl dkim show") passes;
- mail from the internet on port 25 is never signed, even with a From:
  of a hosted domain; a hosted domain without a key sends unsigned;
- "dkim rotate" takes effect at the next message, without a reload;
- a signer that cannot be reached, or does not answer in time, makes
  smtpd answer 451 4.3.0 and queue nothing;
- a malformed request gets an error frame and the signer stays up;
- as root: smtpd's uid cannot open the private keys, the signer's can.
"""
import json
import os
import grp
import pwd
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import herald as H
from conftest import standard_instance

TRUSTED = "127.0.0.2"		# in mynetworks
PASSWORD = "pw-alice"		# setup_standard_directory's
ROOT = os.geteuid() == 0
CHECK = H.HERALD_BIN.parent / "t" / "dkim_check"


@pytest.fixture(scope="module")
def sig(tmp_path_factory, pki):
    if not os.access(CHECK, os.X_OK):
        pytest.skip("%s not built" % CHECK)
    with standard_instance(tmp_path_factory, pki, "signer",
                           submission=True, signer_timeout="2s",
                           dkim_directory="dkim",
                           mynetworks="%s/32" % TRUSTED) as inst:
        inst.ctl_ok("dkim", "keygen", "example.test", "--selector", "s1")
        inst.add_domain("nokey.test")
        inst.add_user("zoe@nokey.test", "pw-zoe")
        yield inst


def records(inst, domain="example.test"):
    r = inst.ctl("dkim", "show", domain, json_out=True)
    assert r.returncode == 0, r.stderr
    return ["%s=%s" % (x["name"], x["value"]) for x in json.loads(r.stdout)]


def dkim_check(inst, data):
    """herald's verifier on data: (exit code, output lines)."""
    r = subprocess.run([str(CHECK)] + records(inst), input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return r.returncode, r.stdout.decode().splitlines()


def signatures(data):
    """The DKIM-Signature fields of a delivered message, unfolded."""
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode()
    fields = head.replace("\n ", " ").replace("\n\t", " ").split("\n")
    return [f for f in fields if f.lower().startswith("dkim-signature:")]


def submit(inst, token, sender="alice@example.test", password=PASSWORD,
           frm=None):
    """A message submitted on 465 after login; the SMTP result."""
    msg = H.make_message(token, sender=frm or sender, to="bob@example.test")
    with smtplib.SMTP_SSL("127.0.0.1", inst.submissions_port,
                          local_hostname="client.example.test",
                          context=inst.tls_context(), timeout=30) as s:
        s.login(sender, password)
        try:
            s.sendmail(sender, ["bob@example.test"], msg)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error
    return 250, b""


def plain_smtp(inst, token, source=None, frm="alice@example.test"):
    msg = H.make_message(token, sender=frm, to="bob@example.test")
    with smtplib.SMTP("127.0.0.1", inst.port, local_hostname="c.test",
                      timeout=30,
                      source_address=(source, 0) if source else None) as s:
        s.sendmail(frm, ["bob@example.test"], msg)


def assert_signed(inst, data, selector=r"s\d"):
    sigs = signatures(data)
    assert len(sigs) == 2, data[:2000]
    assert "a=ed25519-sha256" in sigs[0] and \
        re.search(r"\bs=%s-ed25519;" % selector, sigs[0]), sigs
    assert "a=rsa-sha256" in sigs[1] and \
        re.search(r"\bs=%s-rsa;" % selector, sigs[1]), sigs
    for s in sigs:
        assert "d=example.test" in s and "c=relaxed/relaxed" in s, s
    code, lines = dkim_check(inst, data)
    assert code == 0, lines
    assert [l.split()[0] for l in lines] == ["pass", "pass"], lines
    # one body byte changed: both fail
    bad = data.replace(b"Hello, this", b"Hello, thus")
    code, lines = dkim_check(inst, bad)
    assert code == 1 and [l.split()[0] for l in lines] == ["fail"] * 2, lines


def test_status_lists_the_signer(sig):
    services = H.json_services(sig.status_json())
    pids = [pid for name, pid in services if name == "signer"]
    assert len(pids) == 1 and H.proc_alive(pids[0]), services
    assert "signer" in sig.ctl_ok("status").stdout


def test_submission_is_signed(sig, token):
    assert submit(sig, token)[0] == 250
    data = sig.wait_messages(token, "bob")[0]
    assert_signed(sig, data)
    sig.wait_log(r": DKIM signed")


def test_big_body_is_signed(sig, token):
    # past the queue writer's 64 KB buffer: the signature is put in by
    # copying the file once
    body = "".join("line %d of a long message %s\r\n" % (i, token)
                   for i in range(4000))
    msg = H.make_message(token, sender="alice@example.test",
                         to="bob@example.test", body=body)
    assert len(msg) > 100000
    with smtplib.SMTP_SSL("127.0.0.1", sig.submissions_port,
                          local_hostname="client.example.test",
                          context=sig.tls_context(), timeout=30) as s:
        s.login("alice@example.test", PASSWORD)
        s.sendmail("alice@example.test", ["bob@example.test"], msg)
    data = sig.wait_messages(token, "bob")[0]
    assert H.crlf_to_lf(msg) in H.crlf_to_lf(data)
    code, lines = dkim_check(sig, data)
    assert code == 0, lines


def test_header_too_big_to_sign(sig, token):
    # more header than the signer takes: refused for good, not queued
    pad = "".join("X-Pad-%d: %s\r\n" % (i, "x" * 900) for i in range(400))
    msg = pad.encode() + H.make_message(token, sender="alice@example.test",
                                        to="bob@example.test")
    since = sig.log_size()
    with smtplib.SMTP_SSL("127.0.0.1", sig.submissions_port,
                          local_hostname="client.example.test",
                          context=sig.tls_context(), timeout=30) as s:
        s.login("alice@example.test", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@example.test", ["bob@example.test"], msg)
    assert e.value.smtp_code == 552, e.value
    nothing_queued_for(sig, token, since)
    # more fields than a signature covers: the same
    pad = "".join("X-Pad-%d: x\r\n" % i for i in range(1100))
    msg = pad.encode() + H.make_message(token, sender="alice@example.test",
                                        to="bob@example.test")
    with smtplib.SMTP_SSL("127.0.0.1", sig.submissions_port,
                          local_hostname="client.example.test",
                          context=sig.tls_context(), timeout=30) as s:
        s.login("alice@example.test", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@example.test", ["bob@example.test"], msg)
    assert e.value.smtp_code == 552, e.value
    nothing_queued_for(sig, token, since)


def test_mynetworks_and_sendmail_are_signed(sig, token):
    plain_smtp(sig, token + "-net", source=TRUSTED)
    assert_signed(sig, sig.wait_messages(token + "-net", "bob")[0])
    msg = H.make_message(token + "-local", sender="alice@example.test",
                         to="bob@example.test")
    r = subprocess.run([str(H.binpath("sendmail")), "-C", str(sig.conf),
                        "-f", "alice@example.test", "bob@example.test"],
                       input=msg, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    assert_signed(sig, sig.wait_messages(token + "-local", "bob")[0])


def test_port_25_is_never_signed(sig, token):
    # a From: of the hosted, keyed domain, from a client on the internet
    plain_smtp(sig, token)
    data = sig.wait_messages(token, "bob")[0]
    assert signatures(data) == [], data[:2000]


def test_domain_without_key_is_unsigned(sig, token):
    assert submit(sig, token, sender="zoe@nokey.test",
                  password="pw-zoe")[0] == 250
    data = sig.wait_messages(token, "bob")[0]
    assert signatures(data) == []


def test_rotate_signs_with_the_new_selector(sig, token):
    sig.ctl_ok("dkim", "rotate", "example.test", "--selector", "s2")
    try:
        assert submit(sig, token)[0] == 250
        assert_signed(sig, sig.wait_messages(token, "bob")[0], "s2")
        sig.wait_log(r"domain example.test: signing with selector s2 "
                     r"\(was s1\)")
    finally:
        sig.ctl_ok("dkim", "rotate", "example.test", "--selector", "s3")


def test_reload_reads_the_keys_again(sig, token):
    # a reload replaces the signer, which loads the keys at the next
    # message (the first after the new process starts logs its selector)
    old = sig.children("signer")
    since = sig.log_size()
    sig.ctl_ok("reload")
    H.wait_for(lambda: sig.children("signer") and
               not set(old) & set(sig.children("signer")), 20,
               what="a new signer after reload")
    assert submit(sig, token)[0] == 250
    assert_signed(sig, sig.wait_messages(token, "bob")[0])
    sig.wait_log(r"signer\[\d+\]: domain example.test: signing with "
                 r"selector s\d$", since=since)


def nothing_queued_for(inst, token, since):
    time.sleep(1.5)
    assert not inst.messages_with(token, "bob")
    assert not re.search(r"%s: from=<alice@example\.test>" % H.QID_RE,
                         inst.log_text(since))


def test_signer_unreachable_is_451(sig, token):
    sock = sig.spool / "private" / "signer"
    away = sig.spool / "private" / "signer.away"
    since = sig.log_size()
    os.rename(sock, away)
    try:
        code, text = submit(sig, token)
    finally:
        os.rename(away, sock)
    assert code == 451 and b"4.3.0" in text, (code, text)
    sig.wait_log(r"DKIM signing failed|DKIM: signer: connect", since=since)
    nothing_queued_for(sig, token, since)
    # and back: the next message goes out signed
    assert submit(sig, token + "-b")[0] == 250
    assert_signed(sig, sig.wait_messages(token + "-b", "bob")[0])


def test_signer_silent_is_451(sig, token):
    pids = sig.children("signer")
    assert pids
    since = sig.log_size()
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        code, text = submit(sig, token)
        waited = time.monotonic() - t0
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    assert code == 451 and b"4.3.0" in text, (code, text)
    assert waited >= 1.5, waited	# signer_timeout = 2s
    sig.wait_log(r"DKIM signing failed: the signer did not answer in time",
                 since=since)
    nothing_queued_for(sig, token, since)


def test_signer_killed_never_unsigned(sig, token):
    # kill -9 the signer while mail goes on: each message is refused
    # (451) or delivered signed, never delivered unsigned; master brings
    # the signer back
    accepted = []
    deadline = time.monotonic() + 30
    for i in range(12):
        if i % 4 == 0:
            for p in sig.children("signer"):
                os.kill(p, signal.SIGKILL)
        t = "%s-k%02d-" % (token, i)
        code, _text = submit(sig, t)
        assert code in (250, 451), code
        if code == 250:
            accepted.append(t)
    while time.monotonic() < deadline and submit(sig, token + "-end")[0] \
            != 250:
        time.sleep(0.5)
    accepted.append(token + "-end")
    for t in accepted:
        data = sig.wait_messages(t, "bob")[0]
        assert len(signatures(data)) == 2, (t, data[:1500])


def frame(pairs):
    body = b"".join(k + b"\0" + v + b"\0" for k, v in pairs)
    return struct.pack(">I", len(body)) + body


def ask_signer(inst, data):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(inst.spool / "private" / "signer"))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    assert len(got) >= 4, got
    n = struct.unpack(">I", got[:4])[0]
    assert len(got) == 4 + n, got
    parts = got[4:].split(b"\0")[:-1]
    return dict(zip(parts[0::2], parts[1::2]))


def test_malformed_requests_get_an_error(sig):
    pids = sorted(sig.children("signer"))
    hdr = b"From: a@example.test\r\nSubject: x\r\n"
    bh = b"00" * 32
    good = [(b"request", b"sign"), (b"domain", b"example.test"),
            (b"header", hdr), (b"body_hash", bh)]
    bad = [
        [(b"request", b"sign"), (b"domain", b"../../etc"),
         (b"header", hdr), (b"body_hash", bh)],
        good + [(b"domain", b"example.test")],
        good[:3] + [(b"body_hash", b"zz" * 32)],
        good[:2] + [(b"header", b"x" * (256 * 1024 + 1)),
                    (b"body_hash", bh)],
        good + [(b"password", b"x")],
        [(b"request", b"verify")] + good[1:],
    ]
    for pairs in bad:
        r = ask_signer(sig, frame(pairs))
        assert r[b"status"] == b"fail", (pairs[:2], r)
        assert r[b"reason"].startswith(b"malformed request"), r
    # a broken frame body (a pair without its NUL)
    r = ask_signer(sig, struct.pack(">I", 5) + b"abcde")
    assert r[b"status"] == b"fail", r
    r = ask_signer(sig, frame(good))
    assert r[b"status"] == b"ok", r
    assert r[b"signature"].startswith(b"DKIM-Signature: v=1;"), r
    r = ask_signer(sig, frame([(b"domain", b"nokey.test")
                               if k == b"domain" else (k, v)
                               for k, v in good]))
    assert r == {b"status": b"none"}, r
    assert sorted(sig.children("signer")) == pids


# -- the boundary: smtpd cannot read the keys, the signer can


@pytest.mark.skipif(not ROOT, reason="privilege separation needs root")
def test_only_the_signer_reads_the_keys(pki, token):
    users = {}
    for role, name in (("herald", "daemon"), ("vmail", "nobody"),
                       ("auth", "bin"), ("dkim", "sys")):
        try:
            users[role] = pwd.getpwnam(name)
        except KeyError:
            pytest.skip("account %s does not exist" % name)
    taken = {u.pw_gid for u in users.values()}
    names = {u.pw_name for u in users.values()}
    spare = [g for g in (grp.getgrnam(n) for n in ("staff", "users", "src",
                                                   "adm", "games")
                         if n in {x.gr_name for x in grp.getgrall()})
             if g.gr_gid not in taken and not set(g.gr_mem) & names]
    if len(spare) < 2:
        pytest.skip("no spare groups for directory_group and dkim_group")
    dirgroup, dkimgroup = spare[0], spare[1]
    folder = Path(tempfile.mkdtemp(prefix="herald-signer-", dir="/tmp"))
    os.chmod(folder, 0o755)
    inst = H.HeraldInstance(folder / "inst", pki=pki,
                            herald_user="daemon", vmail_user="nobody",
                            auth_user="bin", dkim_user="sys",
                            dkim_directory="dkim",
                            directory_group=dirgroup.gr_name,
                            dkim_group=dkimgroup.gr_name,
                            mynetworks="%s/32" % TRUSTED)
    try:
        inst.add_domain("example.test")
        inst.add_user("bob@example.test", "pw-bob")
        inst.ctl_ok("dkim", "keygen", "example.test", "--selector", "s1")
        key = inst.dir / "dkim" / "example.test" / "s1.ed25519.key"
        inst.start()
        for name, can in (("smtpd", False), ("signer", True)):
            pids = H.wait_for(lambda: inst.children(name), 15,
                              what="%s running" % name)
            # the child drops root as it starts (slowly under ASan)
            H.wait_for(lambda: all(H.proc_creds(p)[0] != 0 for p in pids),
                       15, what="%s without root" % name)
            for pid in pids:
                uid, gid, groups = H.proc_creds(pid)
                assert uid == users["dkim" if can else "herald"].pw_uid
                for k in ("s1.ed25519.key", "s1.rsa.key"):
                    assert H.can_read_as(key.parent / k, uid, gid,
                                       groups) == can, (name, pid, k)
        # and it signs, as its user
        plain_smtp(inst, token, source=TRUSTED)
        data = inst.wait_messages(token, "bob")[0]
        assert len(signatures(data)) == 2
        if os.access(CHECK, os.X_OK):
            assert dkim_check(inst, data)[0] == 0
    finally:
        try:
            inst.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def expired_bounce(inst, token):
    """A message to a remote address, arrived six days ago, dropped in
    deferred/ and flushed: its attempt fails (the test instance's DNS
    never answers), it has expired, and qmgr writes alice a failure
    notification. Returns that notification as delivered."""
    qid = H.qid_make()
    rcpt = "x-%s@remote.example" % token[-8:].lower()
    msg = H.make_message(token, sender="alice@example.test", to=rcpt)
    data = H.qfile_build("alice@example.test", [rcpt], msg,
                         arrival=int(time.time()) - 6 * 86400)
    dest = inst.spool / "deferred" / qid[-1] / qid
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = inst.spool / (".t-" + qid)
    tmp.write_bytes(data)
    os.utime(tmp, (time.time() - 60, time.time() - 60))
    os.rename(tmp, dest)
    assert inst.ctl("queue", "flush").returncode == 0
    got = H.wait_for(lambda: [m for m in inst.maildir_messages("alice")
                              if rcpt.encode() in m and
                              b"multipart/report" in m], 40,
                     what="the notification about %s" % rcpt)
    return got[0], rcpt


def test_bounce_is_signed(sig, token):
    """A notification qmgr writes (From: MAILER-DAEMON@mx.example.test)
    is signed for myhostname's parent domain, example.test, whose key it
    has; both signatures verify, and fail when its text is changed."""
    since = sig.log_size()
    data, rcpt = expired_bounce(sig, token)
    assert b"From: MAILER-DAEMON@mx.example.test" in data, data[:2000]
    sigs = signatures(data)
    assert len(sigs) == 2, data[:2000]
    assert "a=ed25519-sha256" in sigs[0] and "a=rsa-sha256" in sigs[1]
    for s in sigs:
        assert "d=example.test" in s, s
    code, lines = dkim_check(sig, data)
    assert code == 0, lines
    assert [l.split()[0] for l in lines] == ["pass", "pass"], lines
    bad = data.replace(b"<%s>: message expired" % rcpt.encode(),
                       b"<%s>: message expirad" % rcpt.encode())
    assert bad != data
    code, lines = dkim_check(sig, bad)
    assert code == 1 and [l.split()[0] for l in lines] == ["fail"] * 2, \
        lines
    sig.wait_log(r"herald/qmgr\[\d+\]: %s: DKIM signed \(d=example\.test\)"
                 % H.QID_RE, since=since)


def test_silent_signer_does_not_stall_dispatch(sig, token):
    """qmgr asks the signer for its notifications' signatures from its
    event loop: with the signer stopped (every question waits out the
    2 s deadline), a burst of bounces does not hold up other mail. Five
    messages to an unknown local user bounce; a message sent to bob
    right after them is delivered at once, while their notifications
    still wait for the signer; they go out unsigned, none lost. (When
    qmgr waited for the signer on its loop, bob's message came only
    after 5 x 2 s.)"""
    pids = sig.children("signer")
    assert pids
    since = sig.log_size()
    rcpts = []
    for i in range(5):
        qid = H.qid_make()
        rcpt = "nobody-%d-%s@example.test" % (i, token[-6:].lower())
        msg = H.make_message("%s-b%d" % (token, i),
                             sender="alice@example.test", to=rcpt)
        data = H.qfile_build("alice@example.test", [rcpt], msg)
        dest = sig.spool / "deferred" / qid[-1] / qid
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = sig.spool / (".t-" + qid)
        tmp.write_bytes(data)
        os.utime(tmp, (time.time() - 60, time.time() - 60))
        os.rename(tmp, dest)
        rcpts.append(rcpt)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        assert sig.ctl("queue", "flush").returncode == 0
        t_flush = time.monotonic()
        # local has bounced them; their notifications wait for the signer
        time.sleep(0.5)
        t0 = time.monotonic()
        plain_smtp(sig, token + "-go")
        sig.wait_messages(token + "-go", "bob")
        waited = time.monotonic() - t0
        # the notifications are still out: the signer never answered
        pending = len(re.findall(r"sender non-delivery notification",
                                 sig.log_text(since)))
        # silent past the 2 s deadline: they go unsigned
        time.sleep(max(0.0, 3.5 - (time.monotonic() - t_flush)))
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    assert waited < 4, waited
    assert pending < 5, pending
    for rcpt in rcpts:
        got = H.wait_for(lambda: [m for m in sig.maildir_messages("alice")
                                  if rcpt.encode() in m and
                                  b"multipart/report" in m], 40,
                         what="the notification about %s" % rcpt)
        assert signatures(got[0]) == [], got[0][:1500]
    sig.wait_log(r"DKIM: signer: .*: the notification goes unsigned",
                 since=since)

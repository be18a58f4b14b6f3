"""
reload preflight and per-service status: master refuses a configuration
whose TLS files a service cannot load or whose new listen address cannot
be bound, says why (heraldctl reload exits 1) and keeps serving the old
one; heraldctl status shows every service's state and exits 1 when one is
not running, with its last error.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import herald as H


def own_pki(inst):
    """Copies of the test certificate and key in the instance's folder
    (the session's pki is shared: never change it), in use from start."""
    folder = inst.dir / "own-pki"
    folder.mkdir(exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    shutil.copy(inst.pki["cert"], cert)
    shutil.copy(inst.pki["key"], key)
    inst.set_config(tls_cert_file=str(cert), tls_key_file=str(key))
    return cert, key


def other_key(folder):
    """A private key that belongs to no certificate we use."""
    path = folder / "other.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(path)],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    return path


def starttls_works(inst):
    with inst.smtp() as s:
        s.ehlo()
        s.starttls(context=inst.tls_context())
        s.ehlo()
        assert s.noop()[0] == 250


def refused(inst, want, before):
    """heraldctl reload fails with want in its message; the old config
    still serves (greets, STARTTLS) and status says all run."""
    r = inst.ctl("reload")
    out = r.stdout + r.stderr
    assert r.returncode == 1, r
    assert "configuration reloaded" not in out, r
    assert re.search(want, out), (want, out)
    inst.wait_log(r"reload failed: .*%s" % want, timeout=5)
    time.sleep(1)	# a crash loop would show by now
    assert inst.running()
    assert inst.banner() == before
    starttls_works(inst)
    st = inst.ctl("status")
    assert st.returncode == 0, st
    assert "failing" not in st.stdout, st


def test_reload_refuses_missing_cert(make_herald):
    inst = make_herald()
    before = inst.banner()
    missing = inst.dir / "no-such-cert.pem"
    inst.set_config(tls_cert_file=str(missing), smtpd_banner="ESMTP new")
    refused(inst, r"service smtpd cannot load its TLS certificate.*%s.*"
            r"No such file" % re.escape(str(missing)), before)


def test_reload_refuses_key_that_is_not_a_key(make_herald):
    inst = make_herald()
    before = inst.banner()
    junk = inst.dir / "junk.key"
    junk.write_text("this is not a private key\n")
    inst.set_config(tls_key_file=str(junk), smtpd_banner="ESMTP new")
    refused(inst, r"private key %s" % re.escape(str(junk)), before)


def test_reload_refuses_key_of_another_cert(make_herald):
    inst = make_herald()
    before = inst.banner()
    key = other_key(inst.dir)
    inst.set_config(tls_key_file=str(key), smtpd_banner="ESMTP new")
    refused(inst, r"private key %s.*(mismatch|does not match)"
            % re.escape(str(key)), before)


def test_reload_refuses_address_held_by_another_socket(make_herald):
    inst = make_herald()
    before = inst.banner()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        held = "127.0.0.1:%d" % holder.getsockname()[1]
        inst.set_config(smtpd_listen="127.0.0.1:%d, %s" % (inst.port, held),
                        smtpd_banner="ESMTP new")
        refused(inst, re.escape(held), before)


def test_reload_refuses_unknown_service_user(make_herald):
    """As root (services drop to their users), a user that does not exist
    is refused before any service tries to become it."""
    if os.geteuid() != 0:
        import pytest
        pytest.skip("service users are only used when master is root")
    inst = make_herald()
    before = inst.banner()
    inst.set_config(auth_user="no-such-user-herald", smtpd_banner="ESMTP new")
    refused(inst, r"service authd: user: user \"no-such-user-herald\" "
            r"does not exist", before)


def test_start_refuses_unloadable_cert(make_herald):
    """The same check at start: master does not start, and says why."""
    inst = make_herald(start=False)
    missing = inst.dir / "no-such-cert.pem"
    inst.set_config(tls_cert_file=str(missing))
    r = inst.ctl("start", timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1, r
    assert "cannot load its TLS certificate" in out, out
    assert str(missing) in out, out
    assert inst.ctl("status").returncode == 3


def status_failing(inst, service, want):
    r = inst.ctl("status")
    if r.returncode == 0:
        return None
    if not re.search(r"^%s\s+failing\s" % service, r.stdout, re.M):
        return None
    if not re.search(r"^%s: failing .*last error: .*%s" % (service, want),
                     r.stdout, re.M):
        return None
    return r


def test_status_shows_failing_service(make_herald):
    """A service that dies at start after an accepted reload (its key
    went bad later) is listed as failing with its fatal error, and status
    exits 1; the other services stay running."""
    inst = make_herald(start=False)
    cert, key = own_pki(inst)
    inst.start()
    r = inst.ctl("status")
    assert r.returncode == 0, r
    assert re.search(r"^smtpd\s+running\s+\d+", r.stdout, re.M), r.stdout
    key.write_text("garbage now\n")
    victims = inst.children("smtpd")
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    r = H.wait_for(lambda: status_failing(
        inst, "smtpd", r"cannot load TLS certificate"), 20,
        what="smtpd failing in status")
    assert r.returncode == 1, r
    assert r.stdout.startswith("herald is degraded"), r.stdout
    assert re.search(r"^qmgr\s+running\s+\d+", r.stdout, re.M), r.stdout
    j = inst.ctl("status", json_out=True)
    assert j.returncode == 1, j

    data = json.loads(j.stdout)
    assert data["state"] == "degraded", data
    smtpd = [s for s in data["services"] if s["name"] == "smtpd"][0]
    assert smtpd["state"] == "failing", smtpd
    assert "cannot load TLS certificate" in smtpd["last_error"], smtpd
    assert smtpd["restarts"] >= 2, smtpd
    # a reload with the key still bad is refused: it cannot make it worse
    r = inst.ctl("reload")
    assert r.returncode == 1 and "smtpd" in r.stdout + r.stderr, r
    # fixed: the next reload is accepted and smtpd runs again
    shutil.copy(inst.pki["key"], key)
    assert inst.ctl("reload").returncode == 0
    H.wait_for(lambda: inst.ctl("status").returncode == 0, 15,
               what="status back to running")
    inst.banner()


def test_check_reports_what_reload_refuses(herald, tmp_path):
    """heraldctl check runs the same TLS check (as the service users when
    root) and fails on the files a reload would refuse."""
    r = herald.ctl("check")
    assert r.returncode == 0, r
    assert re.search(r"^ok tls: %s" % re.escape(str(herald.pki["cert"])),
                     r.stdout, re.M), r.stdout
    conf = tmp_path / "other-key.conf"
    key = other_key(tmp_path)
    conf.write_text(re.sub(r"(?m)^tls_key_file = .*$",
                           "tls_key_file = %s" % key,
                           herald.conf.read_text()))
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", str(conf),
                        "check"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 1, r
    assert re.search(r"^FAIL tls.*private key %s" % re.escape(str(key)),
                     r.stdout, re.M), r.stdout


FAKE_SERVICE = r'''#!/usr/bin/python3
# a hostile service: floods master's report pipe, then dies
import os, sys
fd = int(os.environ["HERALD_REPORT_FD"])
junk = b"fatal: \x1b[2J\x07evil\rline " + b"A" * 4000 + b"\n"
try:
    for _ in range(1000):
        os.write(fd, junk)
except BlockingIOError:
    pass
sys.exit(1)
'''


def test_hostile_report_is_bounded(make_herald, tmp_path):
    """A service's report pipe crosses from its user to root: what master
    keeps of it is one bounded line without control characters, however
    much the service writes, and master stays up."""
    inst = make_herald()
    fake = tmp_path / "daemons"
    fake.mkdir()
    for name in os.listdir(str(H.binpath("master").parent)):
        if name != "local":
            os.symlink(str(H.binpath(name)), str(fake / name))
    (fake / "local").write_text(FAKE_SERVICE)
    (fake / "local").chmod(0o755)
    inst.set_config(daemon_directory=str(fake))
    assert inst.ctl("reload").returncode == 0

    def failing():
        r = inst.ctl("status")
        m = re.search(r"^local: failing .*last error: (.*)$", r.stdout, re.M)
        return (r, m.group(1)) if r.returncode == 1 and m else None
    r, line = H.wait_for(failing, 20, what="local failing")
    assert "evil" in line, line
    assert len(line) <= 511, len(line)
    assert not re.search(r"[\x00-\x1f\x7f]", line), repr(line)
    assert inst.running()
    assert inst.banner()
    data = json.loads(inst.ctl("status", json_out=True).stdout)
    local = [s for s in data["services"] if s["name"] == "local"][0]
    assert local["state"] == "failing" and len(local["last_error"]) <= 511

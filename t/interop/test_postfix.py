"""
test_postfix - herald and Debian's Postfix exchange mail on loopback, both
ways, over STARTTLS (`make interop`; not part of `make test`).

  P  a private Postfix (t/interop/postfix.py: its own config, queue and
     log under a folder in /tmp, never the system's service), the MX of
     p.test (mx.p.test A 127.0.0.7): virtual(8) delivers someone@p.test
     to a Maildir; STARTTLS with the tests' certificate; relays h.test
     to herald through transport_maps with smtp_tls_security_level =
     encrypt
  H  herald (t/integration/herald.py) for h.test, carol; its smtpd on
     127.0.0.1 and 127.0.0.8; it finds p.test's MX through knotd
     (dnsserver.py), as test_remote.py finds b.test

Postfix is installed when missing (root only; otherwise the module is
skipped with the reason) and purged again at the end unless
HERALD_KEEP_POSTFIX=1: herald's package conflicts with
mail-transport-agent, which Postfix provides, so test_package.py would
skip while it is there. Every process (knotd, Postfix, herald) is stopped
by the module fixture, also when a test fails.
"""
import os
import pwd
import re
import smtplib
import subprocess

import pytest

import dnsserver as D
import herald as H
import postfix as P

P_ADDR = "127.0.0.7"
H_ADDR = "127.0.0.8"

pytestmark = pytest.mark.skipif(
    not D.have_tools() or not H.have_binaries("remote", "sendmail"),
    reason="knot/ldnsutils/python3-dnslib or herald's remote missing")


@pytest.fixture(scope="module")
def postfix_package():
    reason, ours = P.ensure_installed()
    if reason:
        pytest.skip(reason)
    try:
        yield P.version()
    finally:
        if ours and os.environ.get("HERALD_KEEP_POSTFIX") != "1":
            P.remove()


@pytest.fixture(scope="module")
def net(postfix_package, tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("interop")
    mx_port = H.free_port(P_ADDR)
    knot = D.KnotZones(folder, extra_zones={
        "p.test": "@ MX 10 mx\nmx A %s\n" % P_ADDR})
    pdir = P.private_dir("herald-interop-postfix-")
    pf = h = None
    try:
        knot.start()
        h = H.HeraldInstance(
            folder / "h", pki=pki, myhostname="mx.h.test",
            smtp_port=mx_port,
            dns_stub_zones="p.test=127.0.0.1@%d" % knot.port,
            dns_trust_anchor_file="", dns_timeout="3s",
            minimal_backoff_time="3600s", maximal_backoff_time="3600s")
        h.set_config(smtpd_listen="127.0.0.1:%d, %s:%d"
                     % (h.port, H_ADDR, h.port))
        h.start()
        h.add_domain("h.test")
        h.add_user("carol@h.test")

        nobody = pwd.getpwnam("nobody")
        mail = pdir / "mail"
        mail.mkdir()
        os.chown(mail, nobody.pw_uid, nobody.pw_gid)
        (pdir / "vmailbox").write_text("someone@p.test p.test/someone/\n")
        (pdir / "transport").write_text("h.test smtp:[%s]:%d\n"
                                        % (H_ADDR, h.port))
        pf = P.PrivatePostfix(pdir, ["%s:%d" % (P_ADDR, mx_port)], {
            "myhostname": "mx.p.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": "p.test",
            "virtual_mailbox_base": str(mail),
            "virtual_mailbox_maps": "texthash:%s" % (pdir / "vmailbox"),
            "virtual_uid_maps": "static:%d" % nobody.pw_uid,
            "virtual_gid_maps": "static:%d" % nobody.pw_gid,
            "transport_maps": "texthash:%s" % (pdir / "transport"),
            "smtp_bind_address": P_ADDR,
            "smtpd_tls_cert_file": str(pki["cert"]),
            "smtpd_tls_key_file": str(pki["key"]),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_loglevel": "1",
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_loglevel": "1",
        })
        pf.start()
        H.wait_for(lambda: not port_free(P_ADDR, mx_port), 20,
                   what="postfix listening on %s:%d" % (P_ADDR, mx_port))
        yield {"h": h, "pf": pf, "mail": mail, "mx_port": mx_port}
    finally:
        if pf is not None:
            pf.stop()
            left = P.pids_with(str(pf.etc))
            log = pf.log_tail(100)
        else:
            left, log = [], ""
        if h is not None:
            h.stop()
        knot.stop()
        P.remove_dir(pdir)
        if left:
            pytest.fail("postfix processes outlived stop: %s\n%s"
                        % (left, log))


def port_free(addr, port):
    import socket
    with socket.socket() as s:
        try:
            s.connect((addr, port))
            return False
        except OSError:
            return True


def maildir_with(folder, token):
    out = []
    for sub in ("new", "cur"):
        d = folder / sub
        if d.is_dir():
            for f in d.iterdir():
                data = f.read_bytes()
                if token.encode() in data:
                    out.append(data)
    return out


def test_herald_to_postfix_over_tls(net, token):
    h, pf = net["h"], net["pf"]
    since = h.log_size()
    msg = ("From: carol@h.test\nTo: someone@p.test\nSubject: %s\n\n"
           "hello postfix %s\n" % (token, token))
    r = subprocess.run([str(H.binpath("sendmail")), "-C", str(h.conf),
                        "-f", "carol@h.test", "someone@p.test"],
                       input=msg.encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r
    box = net["mail"] / "p.test" / "someone"
    H.wait_for(lambda: maildir_with(box, token), 60,
               what="the message in Postfix's Maildir")
    got = maildir_with(box, token)[0]
    assert b"hello postfix " + token.encode() in got
    # herald went over TLS to Postfix's MX, and Postfix says so too
    assert h.wait_log(r"mx\.p\.test\[%s\]:%d: TLS TLSv1\.[23] with cipher"
                      % (re.escape(P_ADDR), net["mx_port"]), since=since)
    h.wait_log(r"to=<someone@p\.test>, relay=\S+, .*status=sent",
               since=since)
    log = pf.log_text()
    assert re.search(r"postfix/smtpd\[\d+\]: \S+ TLS connection "
                     r"established from \S+: TLSv1\.[23]", log), \
        pf.log_tail()
    assert re.search(r"postfix/virtual\[\d+\]: \S+: to=<someone@p\.test>"
                     r".*status=sent", log), pf.log_tail()
    # Postfix's Received: line says the session was encrypted (ESMTPS)
    head = got.split(b"\n\n", 1)[0]
    assert re.search(rb"Received: from mx\.h\.test [^\n]*\n"
                     rb"\s+by mx\.p\.test \(Postfix\) with ESMTPS ", head), head


def test_postfix_to_herald_over_tls(net, token):
    h, pf = net["h"], net["pf"]
    since = h.log_size()
    with smtplib.SMTP(P_ADDR, net["mx_port"], timeout=30) as s:
        s.ehlo("client.p.test")
        s.sendmail("someone@p.test", ["carol@h.test"],
                   ("From: someone@p.test\r\nTo: carol@h.test\r\n"
                    "Subject: %s\r\n\r\nhello herald %s\r\n"
                    % (token, token)).encode())
    got = h.wait_messages(token, "carol", domain="h.test", timeout=60)[0]
    assert b"hello herald " + token.encode() in got
    # herald's Received: line names Postfix's address and ESMTPS
    head = got.split(b"\n\n", 1)[0]
    assert re.search(rb"Received: from mx\.p\.test \(\[%s\]\)\s+by "
                     rb"mx\.h\.test [^;]*with ESMTPS"
                     % re.escape(P_ADDR).encode(), head), head
    assert h.wait_log(r"TLS connection established from \[%s\]: "
                      r"TLSv1\.[23]" % re.escape(P_ADDR), since=since)
    H.wait_for(lambda: re.search(
        r"postfix/smtp\[\d+\]: \S+ TLS connection established to "
        r"%s\[%s\]:%d: TLSv1\.[23]" % (re.escape(H_ADDR), re.escape(H_ADDR),
                                      h.port), pf.log_text()),
        20, what="postfix's TLS line")
    assert re.search(r"postfix/smtp\[\d+\]: \S+: to=<carol@h\.test>, "
                     r"relay=%s\[%s\]:%d, .*status=sent" % (
                         re.escape(H_ADDR), re.escape(H_ADDR), h.port),
                     pf.log_text()), pf.log_tail()

"""
test_srs - aliases to other domains, forwarded with the envelope sender
rewritten by SRS (issue 15: lib/mail/srs.c, qmgr/qmgr_forward.c,
smtpd_check_srs), between three herald instances on their own loopback
addresses, with DNS from a real authoritative server (knotd,
dnsserver.py) that each asks through dns_stub_zones:

  A  a.test: alice; carol -> dave@b.test; team -> alice, dave@b.test;
     gone -> nobody@b.test; tofull -> full@b.test. srs_domain left to
     its default (a.test, the first hosted domain: myhostname mx.a.test
     is not hosted)
  B  b.test: dave; full, whose 1k quota bounces (quota_exceeded_bounce)
     a larger message with a DSN from B's own qmgr (the MX of b.test)
  C  c.test: x, the original sender (the MX of c.test)

Mail "from c.test" is handed to A's MX by this test, as c.test's server
would. Every MX listens on the same port (each instance's smtp_port).
The instances and knotd are stopped by the module fixture, also when a
test fails.
"""
import re
import smtplib

import pytest

import dnsserver as D
import herald as H

pytestmark = pytest.mark.skipif(
    not D.have_tools() or not H.have_binaries("remote"),
    reason="knot/ldnsutils/python3-dnslib or the remote binary missing")

A_ADDR = "127.0.0.21"
B_ADDR = "127.0.0.22"
C_ADDR = "127.0.0.23"
SRS0_RE = rb"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=c\.test=x@a\.test"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("srs")
    mx_port = H.free_port(A_ADDR)
    knot = D.KnotZones(folder, extra_zones={
        "a.test": "@ MX 10 mx\nmx A %s\n" % A_ADDR,
        "b.test": "@ MX 10 mx\nmx A %s\n" % B_ADDR,
        "c.test": "@ MX 10 mx\nmx A %s\n" % C_ADDR,
    })
    insts = []
    try:
        knot.start()
        zones = ",".join("%s=127.0.0.1@%d" % (z, knot.port)
                         for z in ("a.test", "b.test", "c.test"))
        for name, addr in (("a", A_ADDR), ("b", B_ADDR), ("c", C_ADDR)):
            inst = H.HeraldInstance(folder / name,
                                    myhostname="mx.%s.test" % name,
                                    smtp_port=mx_port, dns_stub_zones=zones,
                                    dns_trust_anchor_file="",
                                    dns_timeout="3s",
                                    quota_exceeded_bounce="yes")
            inst.set_config(smtpd_listen="127.0.0.1:%d, %s:%d"
                            % (inst.port, addr, mx_port))
            insts.append(inst)
            inst.start()
        a, b, c = insts
        a.add_domain("a.test")
        a.add_user("alice@a.test")
        a.add_alias("carol@a.test", "dave@b.test")
        a.add_alias("team@a.test", "alice@a.test", "dave@b.test")
        a.add_alias("gone@a.test", "nobody@b.test")
        a.add_alias("tofull@a.test", "full@b.test")
        b.add_domain("b.test")
        b.add_user("dave@b.test")
        b.ctl_ok("user", "add", "full@b.test", "--quota", "1k",
                 input="pw-full\n")
        c.add_domain("c.test")
        c.add_user("x@c.test")
        yield {"a": a, "b": b, "c": c, "mx_port": mx_port}
    finally:
        for inst in insts:
            inst.stop()
        knot.stop()


def inject(net, sender, rcpts, data):
    """Hand a message to A's MX as another domain's server would: a
    client outside mynetworks, without AUTH."""
    with smtplib.SMTP(A_ADDR, net["mx_port"], timeout=30) as s:
        s.ehlo("mx.c.test")
        assert s.sendmail(sender, rcpts, data) == {}


def message(token, frm, to):
    return ("From: %s\r\nTo: %s\r\nSubject: srs %s\r\n\r\nhello %s\r\n"
            % (frm, to, token, token))


def return_path(msg):
    m = re.search(rb"^Return-Path: <([^>]*)>", msg, re.M)
    assert m, msg[:500]
    return m.group(1)


def test_alias_add_to_another_domain(net):
    a = net["a"]
    r = a.ctl("alias", "add", "ext@a.test", "Someone@Elsewhere.test",
              "alice@a.test")
    assert r.returncode == 0, r
    assert "added 2 targets" in r.stdout
    listing = a.ctl("alias", "list", "a.test")
    assert "someone@elsewhere.test" in listing.stdout.lower(), listing
    # still refused: a bad address
    r = a.ctl("alias", "add", "ext@a.test", "not an address")
    assert r.returncode != 0, r


def test_forwarded_with_srs_sender(net, token):
    a, b = net["a"], net["b"]
    since = a.log_size()
    inject(net, "x@c.test", ["carol@a.test"],
           message(token, "x@c.test", "carol@a.test"))
    got = b.wait_messages(token, "dave", domain="b.test")[0]
    rp = return_path(got)
    assert re.fullmatch(SRS0_RE, rp), rp
    a.wait_log(r"forwarded to 1 address in other domains: %s, "
               r"from=<SRS0=" % H.QID_RE, since=since)
    a.wait_queue_empty(timeout=30)


def test_hosted_sender_not_rewritten(net, token):
    a, b = net["a"], net["b"]
    with a.smtp() as s:
        assert s.sendmail("alice@a.test", ["carol@a.test"],
                          message(token, "alice@a.test", "carol")) == {}
    got = b.wait_messages(token, "dave", domain="b.test")[0]
    assert return_path(got) == b"alice@a.test"


def test_null_sender_not_rewritten(net, token):
    a, b = net["a"], net["b"]
    inject(net, "", ["carol@a.test"], message(token, "MAILER-DAEMON",
                                               "carol@a.test"))
    got = b.wait_messages(token, "dave", domain="b.test")[0]
    assert return_path(got) == b""


def test_mixed_alias_delivers_both(net, token):
    a, b = net["a"], net["b"]
    inject(net, "x@c.test", ["team@a.test"],
           message(token, "x@c.test", "team@a.test"))
    here = a.wait_messages(token, "alice", domain="a.test")[0]
    there = b.wait_messages(token, "dave", domain="b.test")[0]
    # the local copy keeps the original sender, the forwarded one is SRS
    assert return_path(here) == b"x@c.test"
    assert re.fullmatch(SRS0_RE, return_path(there)), return_path(there)
    a.wait_queue_empty(timeout=30)


def srs_address(net, token):
    """Forward one message to dave and return its SRS sender."""
    inject(net, "x@c.test", ["carol@a.test"],
           message(token, "x@c.test", "carol@a.test"))
    got = net["b"].wait_messages(token, "dave", domain="b.test")[0]
    return return_path(got).decode()


def test_bounce_to_srs_address_goes_back(net, token):
    a, c = net["a"], net["c"]
    srs = srs_address(net, token + "-out")
    # b.test's bounce: null sender, to the SRS address, at A's MX; a
    # relay may have folded the case of the local part
    for n, rcpt in enumerate((srs, srs.lower())):
        bounce = ("From: MAILER-DAEMON@b.test\r\nTo: %s\r\n"
                  "Subject: Undelivered %s-%d\r\n\r\nsorry %s-%d\r\n"
                  % (rcpt, token, n, token, n))
        with smtplib.SMTP(A_ADDR, net["mx_port"], timeout=30) as s:
            s.ehlo("mx.b.test")
            s.mail("<>")
            code, text = s.rcpt(rcpt)
            assert code == 250, (rcpt, code, text)
            code, text = s.data(bounce.encode())
            assert code == 250, (code, text)
        got = c.wait_messages("%s-%d" % (token, n), "x", domain="c.test")
        assert b"sorry %s-%d" % (token.encode(), n) in got[0]
    a.wait_queue_empty(timeout=30)


def test_forged_srs_refused(net, token):
    srs = srs_address(net, token)
    hsh = srs[5:9]
    forged = srs[:5] + ("AAAA" if hsh != "AAAA" else "BBBB") + srs[9:]
    other = srs.replace("=x@a.test", "=y@a.test")
    with smtplib.SMTP(A_ADDR, net["mx_port"], timeout=30) as s:
        s.ehlo("mx.b.test")
        s.mail("<>")
        for rcpt in (forged, other):
            code, text = s.rcpt(rcpt)
            assert code == 550, (rcpt, code, text)
            assert b"5.1.1" in text and b"bad hash" in text, text
        code, text = s.rcpt("SRS0=abcd=ZZ@a.test")
        assert code == 550 and b"malformed" in text, text
        # the real one is still good in the same transaction
        code, text = s.rcpt(srs)
        assert code == 250, (code, text)
        s.rset()


def test_remote_refusal_bounces_to_original_sender(net, token):
    # B refuses nobody@b.test at RCPT: A's notification about the
    # forwarded copy goes to the address behind the SRS sender
    a, c = net["a"], net["c"]
    since = a.log_size()
    inject(net, "x@c.test", ["gone@a.test"],
           message(token, "x@c.test", "gone@a.test"))
    a.wait_log(r"to=<nobody@b\.test>.*status=bounced", since=since)
    dsn = c.wait_messages(token, "x", domain="c.test")[0]
    assert b"multipart/report" in dsn
    assert b"nobody@b.test" in dsn
    # the DSN names the address the sender used (ORCPT)
    assert b"Original-Recipient: rfc822;gone@a.test" in dsn, dsn[:3000]
    a.wait_queue_empty(timeout=30)


def test_bounce_from_the_far_end_comes_back(net, token):
    # B accepts full@b.test, local there bounces it (quota), and B's
    # qmgr sends its DSN to the SRS sender: A takes it back to x@c.test
    a, b, c = net["a"], net["b"], net["c"]
    since = b.log_size()
    data = message(token, "x@c.test", "tofull@a.test") + "z" * 4000 + "\r\n"
    inject(net, "x@c.test", ["tofull@a.test"], data)
    b.wait_log(r"to=<full@b\.test>.*status=bounced", since=since)
    dsn = c.wait_messages(token, "x", domain="c.test")[0]
    assert b"multipart/report" in dsn
    assert b"full@b.test" in dsn
    assert b"SRS0=" in dsn	# B addressed it to the SRS sender
    for inst in (a, b):
        inst.wait_queue_empty(timeout=30)

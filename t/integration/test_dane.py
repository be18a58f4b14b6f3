"""
test_dane - DANE (RFC 7672) and the TLS levels verify and dane of remote
delivery (delivery/remote_mx.c, lib/mail/dane.c, lib/mail/smtp_client.c)
between two herald instances, with DNS from knotd serving the signed zone
herald.test (dnsserver.py) that A validates from its trust anchor:

  A  a.test, alice; sends with smtp_tls_security_level = dane, the test
     CA in its CA store (SSL_CERT_FILE) for the verify level
  B  the receiving MX (127.0.0.13), a certificate signed by the test CA
     for mx.ee, mx.ta, mx.unusable (herald.test) and mx.plain.test, sent
     with the CA in its chain
  S  a scripted server (127.0.0.15) with B's certificate and key that
     records every command, also the ones inside TLS: the MX of the
     domains whose delivery must fail, so a test sees what was sent
  P  a scripted server (127.0.0.16) without STARTTLS

  ee.herald.test        MX mx.ee -> B, TLSA 3 1 1 of B's key
  ta.herald.test        MX mx.ta -> B, TLSA 2 0 1 of the test CA
  cnmx.herald.test      MX alias.cnmx, a CNAME of mx.ta: the TLSA records
                        are mx.ta's (RFC 7672 2.2.2), and so the name
  tawrong.herald.test   MX mx.tawrong -> B (not a name in B's cert),
                        TLSA 2 0 1 of the test CA
  unusable.herald.test  MX mx.unusable -> B, only TLSA 0 0 1 (PKIX-TA)
  bad.herald.test       MX mx.bad -> S, TLSA 3 1 1 of another key
  bogustlsa.herald.test MX mx.bogustlsa -> S, TLSA whose signature is
                        broken (bogus)
  notls.herald.test     MX mx.notls -> P, TLSA 3 1 1 of B's key
  plain.test            unsigned: MX mx -> B with a wrong TLSA record,
                        which an insecure zone cannot make count

Every MX listens on the same port (A's smtp_port). Both instances, knotd,
S and P are started and stopped by remotenet.two_instances (shared with
test_remote.py), also when a test fails. test_delivered and test_deferred
run one case each of the tables DELIVERED and DEFERRED; the tests after
them change a setting or a table and check with the same helpers.
"""
import hashlib
import json
import os
import re
import smtplib
import ssl
import subprocess

import pytest

import dnsserver as D
import herald as H
import remotenet as R

pytestmark = pytest.mark.skipif(
    not D.have_tools() or not H.have_binaries("remote"),
    reason="knot/ldnsutils/python3-dnslib or the remote binary missing")

B_ADDR = "127.0.0.13"
S_ADDR = "127.0.0.15"
P_ADDR = "127.0.0.16"
B_NAMES = ("mx.ee.herald.test", "mx.ta.herald.test",
           "mx.unusable.herald.test", "mx.plain.test")


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *map(str, args)], input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stderr.decode()))
    return r.stdout


def make_pki(folder):
    """A test CA and B's certificate for B_NAMES signed by it; chain is
    the certificate followed by the CA's."""
    folder.mkdir(parents=True, exist_ok=True)
    p = {k: folder / v for k, v in (
        ("ca_key", "ca.key"), ("ca_cert", "ca.crt"), ("key", "mx.key"),
        ("csr", "mx.csr"), ("leaf", "mx.crt"), ("cert", "chain.crt"),
        ("ext", "mx.ext"))}
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-sha256",
            "-keyout", p["ca_key"], "-out", p["ca_cert"], "-days", "30",
            "-subj", "/CN=herald DANE test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-sha256",
            "-keyout", p["key"], "-out", p["csr"], "-subj", "/CN=" + B_NAMES[0])
    p["ext"].write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=%s\n" % ",".join("DNS:" + n for n in B_NAMES))
    openssl("x509", "-req", "-in", p["csr"], "-CA", p["ca_cert"],
            "-CAkey", p["ca_key"], "-CAcreateserial", "-out", p["leaf"],
            "-days", "30", "-sha256", "-extfile", p["ext"])
    p["cert"].write_text(p["leaf"].read_text() + p["ca_cert"].read_text())
    p["key"].chmod(0o600)
    return p


def spki_sha256(cert):
    pub = openssl("x509", "-in", cert, "-noout", "-pubkey")
    der = openssl("pkey", "-pubin", "-outform", "DER", input=pub)
    return hashlib.sha256(der).hexdigest()


def cert_sha256(cert):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(
        cert.read_text())).hexdigest()


class Zones(D.KnotZones):
    """KnotZones whose TLSA records of mx.bogustlsa have a broken
    signature: bogus."""

    def _write_zones(self):
        super()._write_zones()
        path = self.dir / "parent.zone.signed"
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            f = line.split()
            if (len(f) > 5 and f[0].startswith("_25._tcp.mx.bogustlsa.")
                    and f[3] == "RRSIG" and f[4] == "TLSA"):
                sig = f[-1]
                f[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
                lines[i] = "\t".join(f)
                break
        else:
            raise RuntimeError("no RRSIG TLSA of mx.bogustlsa")
        path.write_text("\n".join(lines) + "\n")


def recorder(addr, tls_ctx):
    """A scripted SMTP server; what each session sent, also inside TLS,
    is kept in its sessions. tls_ctx None: no STARTTLS."""
    return R.ScriptedServer(addr, RecorderHandler, tls_ctx=tls_ctx)


class RecorderHandler(R.SMTPHandler):
    def handle(self):
        seen = self.session()
        self.reply("220 recorder ESMTP")
        for _ in range(200):
            line = self.rfile.readline(1000)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode(errors="replace")
            seen.append(cmd)
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.reply("250-recorder\r\n250-PIPELINING\r\n%s250 8BITMIME"
                           % ("250-STARTTLS\r\n" if self.server.tls_ctx
                              else ""))
            elif cmd.upper() == "STARTTLS" and self.server.tls_ctx:
                self.reply("220 2.0.0 go ahead")
                try:
                    tls = self.server.tls_ctx.wrap_socket(
                        self.request, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    seen.append("!handshake failed: %s" % e)
                    return
                seen.append("!tls")
                self.request = tls
                self.rfile = tls.makefile("rb")
                self.wfile = tls.makefile("wb")
            elif verb == "DATA":
                self.reply("354 go on")
                while True:
                    body = self.rfile.readline(100000)
                    if not body or body == b".\r\n":
                        break
                self.reply("250 2.0.0 taken")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


qid_for = R.qid_for


def send(a, token, rcpt):
    """alice@a.test sends a message with token to rcpt."""
    R.sendmail(a, "alice@a.test", [rcpt], R.message(token, rcpt, "dane"))


@pytest.fixture(scope="module")
def net(tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("dane")
    a_pki = pki	# conftest's: A's submission certificate
    pki = make_pki(folder / "pki")
    ee = spki_sha256(pki["leaf"])
    ta = cert_sha256(pki["ca_cert"])
    wrong = "b" * 64
    mx_port = H.free_port(B_ADDR)
    knot = Zones(folder, extra=(
        "ee MX 10 mx.ee\nmx.ee A {b}\n_25._tcp.mx.ee TLSA 3 1 1 {ee}\n"
        "ta MX 10 mx.ta\nmx.ta A {b}\n_25._tcp.mx.ta TLSA 2 0 1 {ta}\n"
        "cnmx MX 10 alias.cnmx\nalias.cnmx CNAME mx.ta\n"
        "tawrong MX 10 mx.tawrong\nmx.tawrong A {b}\n"
        "_25._tcp.mx.tawrong TLSA 2 0 1 {ta}\n"
        "unusable MX 10 mx.unusable\nmx.unusable A {b}\n"
        "_25._tcp.mx.unusable TLSA 0 0 1 {ta}\n"
        "bad MX 10 mx.bad\nmx.bad A {s}\n"
        "_25._tcp.mx.bad TLSA 3 1 1 {wrong}\n"
        "bogustlsa MX 10 mx.bogustlsa\nmx.bogustlsa A {s}\n"
        "_25._tcp.mx.bogustlsa TLSA 3 1 1 {ee}\n"
        "notls MX 10 mx.notls\nmx.notls A {p}\n"
        "_25._tcp.mx.notls TLSA 3 1 1 {ee}\n").format(
            b=B_ADDR, s=S_ADDR, p=P_ADDR, ee=ee, ta=ta, wrong=wrong),
        extra_zones={"plain.test": "@ MX 10 mx\nmx A %s\n"
                     "_25._tcp.mx TLSA 3 1 1 %s\n" % (B_ADDR, wrong)})
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
    with R.two_instances(
            folder, knot, ("herald.test", "plain.test"), mx_port, B_ADDR,
            ("ee.herald.test", "ta.herald.test", "cnmx.herald.test",
             "tawrong.herald.test", "unusable.herald.test", "plain.test"),
            servers={"s": lambda: recorder((S_ADDR, mx_port), srv_ctx),
                     "p": lambda: recorder((P_ADDR, mx_port), None)},
            b_pki={"cert": pki["cert"], "key": pki["key"],
                   "ca_cert": pki["ca_cert"]},
            # the test CA as A's CA store (OpenSSL's default paths),
            # for the verify level
            a_env={"SSL_CERT_FILE": str(pki["ca_cert"])},
            dns_trust_anchor_file=str(knot.anchor_file),
            smtp_tls_security_level="dane",
            smtp_connection_cache_time_limit="0",
            # alice submits on 587 and a.test's mail is DKIM-signed
            pki=a_pki, submission=True, dkim_directory="dkim") as net:
        yield net


def queue_show(a, qid):
    r = a.ctl("queue", "show", qid)
    assert r.returncode == 0, r
    return r.stdout


def set_level(a, level):
    """smtp_tls_security_level = level, reloaded; back when the new qmgr
    runs (the remote agents of the old setting are gone then)."""
    since = a.log_size()
    a.set_config(smtp_tls_security_level=level)
    a.ctl_ok("reload")
    a.wait_log(r"herald/qmgr\[\d+\]: started", since=since)


# A's log line of the TLS session with host at B_ADDR, for a (regex)
def tls_line(host, tls):
    return r"%s\[%s\]:\d+: TLS %s" % (re.escape(host), re.escape(B_ADDR), tls)


DANE_EE = (r"TLSv1\.[23] with cipher .*Verified TLS connection \(DANE\) "
           r"by TLSA 3 1 1")
DANE_TA = r".*Verified TLS connection \(DANE\) by TLSA 2 0 1"
MISMATCH = (r"4\.7\.5 TLS handshake with mx\.bad\.herald\.test failed: "
            r".*(?i:no matching DANE TLSA records)")


def delivered(net, token, rcpt, host, tls, present=(), absent=()):
    """rcpt gets the message with token from B, over a TLS session with
    host that A logged as tls (a regex), the line holding every string of
    present and none of absent; A logs it sent."""
    a, b = net["a"], net["b"]
    local, domain = rcpt.split("@")
    since = a.log_size()
    send(a, token, rcpt)
    b.wait_messages(token, local, domain=domain)
    line = a.wait_log(tls_line(host, tls), since=since).group(0)
    for x in present:
        assert x in line, line
    for x in absent:
        assert x not in line, line
    qid_for(a, rcpt, since, "sent")


def deferred(net, token, rcpt, reasons, server=None, tried=True,
             handshake=False, flush=False):
    """The message with token to rcpt is deferred, B never got it, and
    queue show says every regex of reasons. server: the scripted MX
    ("s", "p") whose new sessions are checked: tried, at least one and
    none that sent MAIL, RCPT or DATA, each stopped in the TLS handshake
    after EHLO and STARTTLS if handshake; not tried, no session at all.
    flush: then a queue flush tries again, and again sends no MAIL.
    Returns the queue id."""
    a, b = net["a"], net["b"]
    local, domain = rcpt.split("@")
    srv = net[server] if server else None
    n = len(srv.sessions) if srv else 0
    since = a.log_size()
    send(a, token, rcpt)
    qid = qid_for(a, rcpt, since, "deferred")
    if srv and not tried:
        assert srv.sessions_since(n) == []
    elif srv:
        # the server's thread notes the failed handshake after A gave up
        # on it: wait for the note rather than race it
        def noted():
            got = srv.sessions_since(n)
            return got if got and (not handshake or all(
                len(x) > 2 for x in got)) else None
        got = H.wait_for(noted, 10, what="the MX's sessions noted")
        for x in got:
            if handshake:
                assert [c.split()[0].upper() for c in x[:2]] == [
                    "EHLO", "STARTTLS"], x
                assert x[2].startswith("!handshake failed"), x
            assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA"))
                           for c in x), x
    out = queue_show(a, qid)
    for reason in reasons:
        assert re.search(reason, out), (reason, out)
    assert not b.messages_with(token, local, domain=domain)
    if flush:
        n = len(srv.sessions)
        since = a.log_size()
        a.ctl_ok("queue", "flush")
        qid_for(a, rcpt, since, "deferred")
        for x in srv.sessions_since(n):
            assert not any(c.upper().startswith("MAIL") for c in x), x
    return qid


# id: recipient, MX host, its TLS log line, strings in it, not in it
DELIVERED = {
    # TLSA 3 1 1 of B's key
    "dane_ee_verified": ("bob@ee.herald.test", "mx.ee.herald.test",
                         DANE_EE, (), ()),
    # TLSA 2 0 1 of the CA that signed B's certificate, which names
    # mx.ta.herald.test
    "dane_ta_verified": ("bob@ta.herald.test", "mx.ta.herald.test",
                         DANE_TA, (), ()),
    # the MX host is a secure CNAME of mx.ta: the TLSA records are
    # looked up at the target, whose name the certificate has (RFC 7672
    # 2.2.2, 3.2.2); without the expansion there would be no TLSA at all
    "dane_through_a_cname": ("bob@cnmx.herald.test",
                             "alias.cnmx.herald.test", DANE_TA, (), ()),
    # only a PKIX-TA record (unusable for SMTP, RFC 7672 3.1.3): TLS is
    # required but not authenticated by DANE
    "unusable_tlsa_is_encrypt": ("bob@unusable.herald.test",
                                 "mx.unusable.herald.test", ".*", (),
                                 ("(DANE)", "Verified")),
    # plain.test is not signed: its (wrong) TLSA record does not count,
    # the message goes over opportunistic TLS as with may
    "insecure_zone_is_opportunistic": ("bob@plain.test", "mx.plain.test",
                                       r"TLSv1\.[23] .*",
                                       ("Trusted TLS connection",),
                                       ("(DANE)",)),
}


@pytest.mark.parametrize("case", list(DELIVERED))
def test_delivered(net, token, case):
    rcpt, host, tls, present, absent = DELIVERED[case]
    delivered(net, token, rcpt, host, tls, present, absent)


# id: recipient, regexes of queue show, keyword arguments of deferred()
DEFERRED = {
    # the same trust anchor as ta, but the certificate does not name the
    # MX host: DANE-TA checks names (DANE-EE does not)
    "dane_ta_checks_the_name": ("bob@tawrong.herald.test",
                                (r"4\.7\.5", "DANE: hostname mismatch"),
                                {}),
    # TLSA 3 1 1 of another key: the handshake stops, not one command
    # is sent inside TLS nor in plaintext, also when a flush tries again
    "dane_mismatch_defers_and_sends_nothing": (
        "bob@bad.herald.test", (MISMATCH,),
        {"server": "s", "handshake": True, "flush": True}),
    # a host with usable TLSA records that does not offer STARTTLS:
    # never sent in plaintext
    "dane_without_starttls_defers": (
        "bob@notls.herald.test",
        (re.escape("4.7.4 TLS is required but mx.notls.herald.test does "
                   "not offer STARTTLS"),), {"server": "p"}),
    # the TLSA records of the only MX do not validate: the host is left
    # out, not even connected to
    "bogus_tlsa_skips_the_host": (
        "bob@bogustlsa.herald.test",
        (r"4\.7\.5 DANE: cannot look up _25\._tcp\.mx\.bogustlsa\."
         r"herald\.test TLSA: DNSSEC validation failed",),
        {"server": "s", "tried": False}),
}


@pytest.mark.parametrize("case", list(DEFERRED))
def test_deferred(net, token, case):
    rcpt, reasons, kw = DEFERRED[case]
    deferred(net, token, rcpt, reasons, **kw)


def test_verify_level(net, token):
    """smtp_tls_security_level = verify: B's certificate chains to A's
    CA store and names mx.plain.test: delivered, "Verified"; an MX host
    the certificate does not name: deferred with 4.7.5, nothing sent."""
    a = net["a"]
    set_level(a, "verify")
    try:
        delivered(net, token, "bob@plain.test", "mx.plain.test", ".*",
                  ("Verified TLS connection",), ("(DANE)",))
        deferred(net, token + "-wrong", "bob@tawrong.herald.test",
                 (r"4\.7\.5", "hostname mismatch"))
    finally:
        set_level(a, "dane")


def test_tls_policy_dane_is_dane(net, token):
    """smtp_tls_security_level = may, and heraldctl tls-policy set
    bad.herald.test dane: the policy is DANE, not encrypt; S's
    certificate does not match the TLSA record of mx.bad, so the handshake
    stops, nothing is sent and the mail is deferred with 4.7.5. Without
    the policy the same host takes it over opportunistic TLS (S's
    STARTTLS works), which is what the policy alone changed."""
    a = net["a"]
    set_level(a, "may")
    try:
        a.ctl_ok("tls-policy", "set", "bad.herald.test", "dane")
        qid = deferred(net, token, "bob@bad.herald.test", (MISMATCH,),
                       server="s", handshake=True)
        a.ctl_ok("tls-policy", "del", "bad.herald.test")
        since = a.log_size()
        a.ctl_ok("queue", "flush")
        # (earlier tests' mail for bad.herald.test goes too)
        a.wait_log(r"%s: to=<bob@bad\.herald\.test>, relay=\S+, .*"
                   r"status=sent" % qid, timeout=30, since=since)
    finally:
        a.ctl("tls-policy", "del", "bad.herald.test")
        set_level(a, "dane")


def test_dane_for_a_bracketed_next_hop(net, token):
    """A transport "[host]" has no MX lookup; with tls-policy dane the
    host stands for a secure MX (its address records are secure): its
    TLSA records count. [mx.ee] matches (DANE-EE, delivered "Verified
    ... (DANE)"), [mx.bad] does not (deferred with 4.7.5, nothing sent).
    The global level is may, so only the policy asks for DANE."""
    a = net["a"]
    set_level(a, "may")
    try:
        for d, hop in (("ee.herald.test", "[mx.ee.herald.test]"),
                       ("bad.herald.test", "[mx.bad.herald.test]")):
            a.ctl_ok("transport", "add", d, hop)
            a.ctl_ok("tls-policy", "set", d, "dane")
        delivered(net, token, "bob@ee.herald.test", "mx.ee.herald.test",
                  DANE_EE)
        deferred(net, token + "-bad", "bob@bad.herald.test", (MISMATCH,),
                 server="s")
    finally:
        for d in ("ee.herald.test", "bad.herald.test"):
            a.ctl("transport", "del", d)
            a.ctl("tls-policy", "del", d)
        set_level(a, "dane")


DKIM_CHECK = H.HERALD_BIN.parent / "t" / "dkim_check"


def test_alice_submits_to_another_company(net, token):
    """The whole path of issue 15's first check: alice@a.test logs in on
    A's submission port (587: STARTTLS, then AUTH PLAIN), A signs the
    message with a.test's Ed25519 and RSA keys, finds the MX of
    ee.herald.test in DNSSEC-signed DNS, verifies B's certificate by its
    TLSA record (DANE-EE) and relays; bob's copy at B arrived over TLS
    (B's Received: says ESMTPS) and both signatures verify against the
    records "heraldctl dkim show a.test" publishes (herald's verifier,
    t/dkim_check), and fail when the body changes."""
    if not os.access(DKIM_CHECK, os.X_OK):
        pytest.skip("%s not built" % DKIM_CHECK)
    a, b = net["a"], net["b"]
    a.ctl_ok("dkim", "keygen", "a.test", "--selector", "s1")
    since = a.log_size()
    rcpt = "bob@ee.herald.test"
    msg = ("From: Alice <alice@a.test>\r\nTo: <%s>\r\nSubject: from a.test "
           "%s\r\n\r\nHello from a.test, %s.\r\n" % (rcpt, token, token))
    with smtplib.SMTP("127.0.0.1", a.submission_port,
                      local_hostname="client.a.test", timeout=30) as s:
        s.starttls(context=a.tls_context())
        s.login("alice@a.test", "secret-password")
        s.sendmail("alice@a.test", [rcpt], msg)
    data = b.wait_messages(token, "bob", domain="ee.herald.test")[0]
    a.wait_log(tls_line("mx.ee.herald.test", DANE_EE), since=since)
    qid_for(a, rcpt, since, "sent")
    head = data.split(b"\n\n", 1)[0]
    assert re.search(rb"Received: from mx\.a\.test [^\n]*(\n\s[^\n]*)*"
                     rb"with ESMTPS", head), head
    r = a.ctl("dkim", "show", "a.test", json_out=True)
    assert r.returncode == 0, r.stderr
    records = ["%s=%s" % (x["name"], x["value"]) for x in json.loads(r.stdout)]

    def check(blob):
        p = subprocess.run([str(DKIM_CHECK)] + records, input=blob,
                           capture_output=True, timeout=30)
        return p.returncode, [x.split()[0] for x in
                              p.stdout.decode().splitlines()]
    assert check(data) == (0, ["pass", "pass"]), check(data)
    assert check(data.replace(b"Hello from", b"Hello frum"))[1] == \
        ["fail", "fail"]

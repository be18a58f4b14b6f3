"""
test_remote_route - where remote sends mail for other domains: relayhost
(with AUTH over verified TLS), per-domain transports and TLS policies
(delivery/remote_hop.c, remote_request.c, lib/mail/smtp_client.c), and
the heraldctl commands that edit them.

  A  a herald instance, a.test, alice; sends with sendmail.
     relayhost = [127.0.0.1]:R, smtp_sasl_password_file holds R's login,
     smtp_tls_ca_file is the test CA; one remote process, so that every
     request goes through the same connection cache
  R  a relay stub (threads in this process) on 127.0.0.1: STARTTLS with a
     certificate of the test CA for 127.0.0.1, AUTH PLAIN LOGIN, takes
     mail only after a good AUTH; records each session's commands with
     whether TLS was on
  L  as R, but offering only AUTH LOGIN (reached through a transport)
  P  a plain stub on 127.0.0.1: no STARTTLS; offers AUTH in plaintext
     (and would take any login), takes any mail

No DNS server runs: A's resolver points at a closed port, so mail that
arrives went without an MX lookup. The fixture stops A, R and P, also
when a test fails.
"""
import base64
import json
import os
import re
import socket
import ssl
import subprocess

import pytest

import herald as H
import remotenet as R

pytestmark = pytest.mark.skipif(not H.have_binaries("remote"),
                                reason="the remote binary is missing")

R_USER = "relay-user"
R_PASS = "Relay-Pa55word-not-for-logs"


class Stub(R.ScriptedServer):
    """An SMTP stub; sessions: per connection a list of (tls, command)
    with an AUTH line recorded as "AUTH <mech> <user>"; messages: the
    DATA of accepted transactions."""

    def __init__(self, addr, tls_ctx=None, auth=False, offer_auth=False,
                 mechs="PLAIN LOGIN"):
        self.messages = []
        super().__init__(
            addr, StubHandler, tls_ctx=tls_ctx,
            mechs=mechs,		# offered after STARTTLS
            auth=auth,			# AUTH after STARTTLS, required for MAIL
            offer_auth=offer_auth)	# AUTH without TLS, any login

    def seen(self):
        return self.sessions_since(0)

    def got(self, token):
        with self.lock:
            return [m for m in self.messages if token.encode() in m]


class StubHandler(R.SMTPHandler):
    def readline(self):
        line = self.rfile.readline(2000)
        return line.rstrip(b"\r\n").decode(errors="replace") if line \
            else None

    def check_plain(self, b64):
        try:
            parts = base64.b64decode(b64).split(b"\0")
        except ValueError:
            return None
        if len(parts) == 3 and parts[2] == R_PASS.encode():
            return parts[1].decode()
        return None

    def handle(self):
        srv = self.server
        seen = self.session()
        tls = authed = False
        self.reply("220 stub ESMTP")
        for _ in range(200):
            cmd = self.readline()
            if cmd is None:
                return
            verb = cmd.split(" ")[0].upper()
            if verb == "AUTH":
                words = cmd.split(" ")
                seen.append((tls, "AUTH %s" % words[1].upper()))
            else:
                seen.append((tls, cmd))
            if verb == "EHLO":
                ext = ["250-stub", "250-PIPELINING", "250-8BITMIME"]
                if srv.tls_ctx is not None and not tls:
                    ext.append("250-STARTTLS")
                if (srv.auth and tls) or srv.offer_auth:
                    ext.append("250-AUTH " + srv.mechs)
                ext.append("250 DSN")
                self.reply("\r\n".join(ext))
            elif verb == "STARTTLS" and srv.tls_ctx is not None and not tls:
                self.reply("220 2.0.0 go ahead")
                self.request = srv.tls_ctx.wrap_socket(self.request,
                                                       server_side=True)
                self.rfile = self.request.makefile("rb")
                self.wfile = self.request.makefile("wb")
                tls = True
            elif verb == "AUTH" and srv.auth and tls:
                words = cmd.split(" ")
                user = None
                mech = words[1].upper()
                if mech not in srv.mechs.split():
                    pass
                elif mech == "PLAIN" and len(words) == 3:
                    user = self.check_plain(words[2])
                elif mech == "LOGIN" and len(words) == 3:
                    self.reply("334 UGFzc3dvcmQ6")
                    pw = self.readline() or ""
                    if base64.b64decode(pw) == R_PASS.encode():
                        user = base64.b64decode(words[2]).decode()
                if user == R_USER:
                    authed = True
                    seen.append((tls, "AUTHED %s" % user))
                    self.reply("235 2.7.0 ok")
                else:
                    self.reply("535 5.7.8 bad credentials")
            elif verb == "AUTH" and srv.offer_auth:
                self.reply("235 2.7.0 ok")
            elif verb == "MAIL":
                if srv.auth and not authed:
                    self.reply("530 5.7.0 authentication required")
                else:
                    self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                body = []
                for _ in range(100000):
                    b = self.rfile.readline(10000)
                    if not b or b == b".\r\n":
                        break
                    body.append(b)
                with srv.lock:
                    srv.messages.append(b"".join(body))
                self.reply("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 5.5.1 not here")


def sendmail(inst, rcpt, token):
    data = ("From: alice@a.test\nTo: %s\nSubject: route %s\n\nhello %s\n"
            % (rcpt, token, token))
    r = subprocess.run([str(H.binpath("sendmail")), "-C", str(inst.conf),
                        "-f", "alice@a.test", rcpt], input=data.encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r


def outcome(inst, rcpt, since, status):
    """The queue id of rcpt's log line with status, and the line."""
    m = inst.wait_log(r"(%s): to=<%s>, relay=\S+, .*status=%s.*$"
                      % (H.QID_RE, re.escape(rcpt), status),
                      timeout=30, since=since)
    return m.group(1), m.group(0)


def deferred_reason(inst, qid):
    H.wait_for(lambda: any(p.name == qid for p in
                           inst.queue_files(("deferred",))),
               15, what="%s in deferred/" % qid)
    r = inst.ctl("queue", "show", qid)
    assert r.returncode == 0, r
    return r.stdout


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()	# nobody listens there now
    return port


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("route")
    pki = H.make_test_pki(folder / "pki")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
    relay = plain = login = a = None
    try:
        relay = Stub(("127.0.0.1", 0), ctx, auth=True).serve_in_thread()
        login = Stub(("127.0.0.1", 0), ctx, auth=True,
                     mechs="LOGIN").serve_in_thread()
        plain = Stub(("127.0.0.1", 0), offer_auth=True).serve_in_thread()
        rport, pport = relay.server_address[1], plain.server_address[1]
        lport = login.server_address[1]
        pwfile = folder / "sasl_passwd"
        pwfile.write_text("# nexthop user:password\n"
                          "[127.0.0.1]:%d %s:%s\n" % (rport, R_USER, R_PASS)
                          + "[127.0.0.1]:%d %s:%s\n" % (lport, R_USER, R_PASS))
        os.chmod(pwfile, 0o600)
        a = H.HeraldInstance(folder / "a", pki=pki, myhostname="mx.a.test",
                             relayhost="[127.0.0.1]:%d" % rport,
                             smtp_sasl_password_file=str(pwfile),
                             smtp_tls_ca_file=str(pki["ca_cert"]),
                             remote_processes="1",
                             smtp_connection_cache_time_limit="10s",
                             # retries come from queue flush
                             minimal_backoff_time="3600s",
                             maximal_backoff_time="3600s")
        a.start()
        a.add_domain("a.test")
        a.add_user("alice@a.test")
        yield {"a": a, "relay": relay, "plain": plain, "login": login,
               "rport": rport, "pport": pport, "lport": lport,
               "pwfile": pwfile}
    finally:
        if a is not None:
            a.stop()
        for srv in (relay, plain, login):
            if srv is not None:
                srv.stop()


def test_relayhost_auth_after_starttls(net, token):
    """Mail for two unrelated domains goes to the relayhost (no MX
    lookup: there is no DNS), over one verified TLS session that logged
    in after STARTTLS; the password is in no log line."""
    a, relay = net["a"], net["relay"]
    since = a.log_size()
    sendmail(a, "x@far.test", token + "-1")
    outcome(a, "x@far.test", since, "sent")
    sendmail(a, "y@elsewhere.example", token + "-2")
    outcome(a, "y@elsewhere.example", since, "sent")
    assert relay.got(token + "-1") and relay.got(token + "-2")
    a.wait_log(r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: TLS \S+ with cipher .*"
               r"certificate verified" % net["rport"], since=since)
    # the second domain reused the session (same next hop, one login)
    a.wait_log(r"reusing connection to 127\.0\.0\.1\[127\.0\.0\.1\]:%d"
               % net["rport"], since=since)
    with_mail = [s for s in relay.seen()
                 if any(c.startswith("MAIL") for _t, c in s)]
    assert with_mail
    for s in with_mail:
        cmds = [c for _t, c in s]
        auth = cmds.index("AUTH PLAIN")
        assert cmds.index("STARTTLS") < auth < cmds.index(
            next(c for c in cmds if c.startswith("MAIL"))), cmds
        # everything from AUTH on went over TLS
        assert all(t for t, _c in s[auth:]), s
    log = a.log_text()
    assert R_PASS not in log
    assert base64.b64encode(("\0%s\0%s" % (R_USER, R_PASS)).encode()
                            ).decode() not in log


def test_auth_login_when_plain_is_not_offered(net, token):
    """A relay that offers only AUTH LOGIN (reached by a transport with
    its own login) gets LOGIN, after STARTTLS, and takes the mail."""
    a, login = net["a"], net["login"]
    a.ctl_ok("transport", "add", "login.test", "[127.0.0.1]:%d"
             % net["lport"])
    try:
        since = a.log_size()
        sendmail(a, "x@login.test", token)
        outcome(a, "x@login.test", since, "sent")
        assert login.got(token)
        s = [x for x in login.seen() if any(c.startswith("MAIL")
                                             for _t, c in x)][0]
        cmds = [c for _t, c in s]
        assert cmds.index("STARTTLS") < cmds.index("AUTH LOGIN") < \
            cmds.index("AUTHED %s" % R_USER), cmds
        assert R_PASS not in a.log_text()
    finally:
        a.ctl_ok("transport", "del", "login.test")


def test_transport_overrides_relayhost(net, token):
    """A transport for one domain sends it to its own next hop, the rest
    still to the relayhost; deleting it routes the domain back."""
    a, relay, plain = net["a"], net["relay"], net["plain"]
    a.ctl_ok("transport", "add", "t.test", "[127.0.0.1]:%d" % net["pport"])
    try:
        since = a.log_size()
        sendmail(a, "x@t.test", token + "-t")
        outcome(a, "x@t.test", since, "sent")
        a.wait_log(r"to=<x@t\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                   r"%d, .*status=delivered" % net["pport"], since=since)
        assert plain.got(token + "-t") and not relay.got(token + "-t")
    finally:
        a.ctl_ok("transport", "del", "t.test")
    since = a.log_size()
    sendmail(a, "x@t.test", token + "-r")
    outcome(a, "x@t.test", since, "sent")
    assert relay.got(token + "-r") and not plain.got(token + "-r")


def test_tls_policy_encrypt_defers_not_plaintext(net, token):
    """tls-policy encrypt to a server without STARTTLS: deferred with the
    reason, and the server saw no MAIL; the same hop without the policy
    takes the mail in plaintext."""
    a, plain = net["a"], net["plain"]
    a.ctl_ok("transport", "add", "enc.test", "[127.0.0.1]:%d"
             % net["pport"])
    a.ctl_ok("tls-policy", "set", "enc.test", "encrypt")
    try:
        since = a.log_size()
        sendmail(a, "x@enc.test", token)
        qid, _line = outcome(a, "x@enc.test", since, "deferred")
        assert "TLS is required but" in deferred_reason(a, qid)
        assert not plain.got(token)
        a.ctl_ok("tls-policy", "del", "enc.test")
        since = a.log_size()
        assert a.ctl("queue", "flush").returncode == 0
        outcome(a, "x@enc.test", since, "sent")
        assert plain.got(token)
    finally:
        a.ctl("tls-policy", "del", "enc.test")
        a.ctl_ok("transport", "del", "enc.test")


def test_no_auth_without_tls(net, token):
    """Credentials for a next hop without STARTTLS (that offers AUTH in
    plaintext): deferred, and the server never saw AUTH (nor MAIL)."""
    a, plain, pwfile = net["a"], net["plain"], net["pwfile"]
    saved = pwfile.read_text()
    pwfile.write_text(saved + "[127.0.0.1]:%d %s:%s\n"
                      % (net["pport"], R_USER, R_PASS))
    a.ctl_ok("transport", "add", "noauth.test", "[127.0.0.1]:%d"
             % net["pport"])
    try:
        before = len(plain.seen())
        since = a.log_size()
        sendmail(a, "x@noauth.test", token)
        qid, _line = outcome(a, "x@noauth.test", since, "deferred")
        assert "TLS is required" in deferred_reason(a, qid)
        for s in plain.seen()[before:]:
            assert not any(c.startswith(("AUTH", "MAIL")) for _t, c in s), s
    finally:
        pwfile.write_text(saved)
        a.ctl_ok("transport", "del", "noauth.test")


def test_password_file_others_can_read(net, token):
    """A password file that others could read is not used: the mail is
    deferred with the reason (nothing goes to the relay without the
    login the admin meant), and goes once the mode is fixed."""
    a, relay, pwfile = net["a"], net["relay"], net["pwfile"]
    os.chmod(pwfile, 0o644)
    try:
        since = a.log_size()
        sendmail(a, "x@perm.test", token)
        qid, _line = outcome(a, "x@perm.test", since, "deferred")
        reason = deferred_reason(a, qid)
        assert "others could read the passwords" in reason, reason
        assert R_PASS not in reason
        assert not relay.got(token)
        # heraldctl check says so too
        r = a.ctl("check")
        assert re.search(r"^FAIL smtp_sasl_password_file \S+: owner .*"
                         r"others could read", r.stdout, re.M), r.stdout
    finally:
        os.chmod(pwfile, 0o600)
    r = a.ctl("check")
    assert re.search(r"^ok smtp_sasl_password_file: \S+: 2 logins$",
                     r.stdout, re.M), r.stdout
    assert re.search(r"^ok relayhost: \[127\.0\.0\.1\]:%d$" % net["rport"],
                     r.stdout, re.M), r.stdout
    since = a.log_size()
    assert a.ctl("queue", "flush").returncode == 0
    outcome(a, "x@perm.test", since, "sent")
    assert relay.got(token)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: another user")
def test_password_file_closed_to_other_users(net):
    """The mode remote insists on keeps another user out (as nobody)."""
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", "cat", str(net["pwfile"])],
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and R_PASS.encode() not in r.stdout


def test_relayhost_down_defers_with_reason(net, token):
    """relayhost not answering: deferred with the connect error in queue
    show; back up (reload), a flush delivers."""
    a, relay = net["a"], net["relay"]
    down = closed_port()
    old = a.config["relayhost"]
    a.set_config(relayhost="[127.0.0.1]:%d" % down)
    a.ctl_ok("reload")
    try:
        since = a.log_size()
        sendmail(a, "x@down.test", token)
        qid, _line = outcome(a, "x@down.test", since, "deferred")
        reason = deferred_reason(a, qid)
        assert re.search(r"connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                         r"Connection refused" % down, reason), reason
    finally:
        a.set_config(relayhost=old)
        a.ctl_ok("reload")
    since = a.log_size()
    assert a.ctl("queue", "flush").returncode == 0
    outcome(a, "x@down.test", since, "sent")
    assert relay.got(token)


# -- heraldctl


def test_ctl_transport_commands(net):
    a = net["a"]
    r = a.ctl("transport", "add", "a.test", "[relay.example]:587")
    assert r.returncode == 1 and "a.test is a hosted domain" in r.stderr, r
    r = a.ctl("transport", "add", "x.test", "[relay.example")
    assert r.returncode == 1 and "no closing ']'" in r.stderr, r
    r = a.ctl("transport", "add", "x.test", "relay:99999")
    assert r.returncode == 1 and "bad port" in r.stderr, r
    r = a.ctl("transport", "add", "x..test", "[relay]")
    assert r.returncode == 1 and "empty label" in r.stderr, r
    r = a.ctl("transport", "add", "x.test")
    assert r.returncode == 2, r
    r = a.ctl("transport", "del", "x.test")
    assert r.returncode == 1 and "no transport for x.test" in r.stderr, r
    a.ctl_ok("transport", "add", "X.Test", "[Relay.Example]:587")
    a.ctl_ok("transport", "add", "y.test", "mx.y.example")
    try:
        out = a.ctl_ok("transport", "list").stdout
        assert re.search(r"^x\.test\s+\[relay\.example\]:587$", out, re.M)
        assert re.search(r"^y\.test\s+mx\.y\.example$", out, re.M)
        r = a.ctl("transport", "list", json_out=True)
        assert {"domain": "x.test", "nexthop": "[relay.example]:587"} in \
            json.loads(r.stdout)
    finally:
        a.ctl_ok("transport", "del", "x.test")
        a.ctl_ok("transport", "del", "y.test")
    assert "x.test" not in a.ctl_ok("transport", "list").stdout


def test_ctl_tls_policy_commands(net):
    a = net["a"]
    r = a.ctl("tls-policy", "set", "x.test", "secure")
    assert r.returncode == 1 and "not a TLS level" in r.stderr, r
    r = a.ctl("tls-policy", "set", "a.test", "verify")
    assert r.returncode == 1 and "hosted domain" in r.stderr, r
    r = a.ctl("tls-policy", "del", "x.test")
    assert r.returncode == 1 and "no TLS policy for x.test" in r.stderr, r
    for level in ("none", "may", "encrypt", "verify", "dane"):
        a.ctl_ok("tls-policy", "set", "x.test", level)
        out = a.ctl_ok("tls-policy", "list").stdout
        assert re.search(r"^x\.test\s+%s$" % level, out, re.M), out
    a.ctl_ok("tls-policy", "del", "x.test")
    assert "x.test" not in a.ctl_ok("tls-policy", "list").stdout
    r = a.ctl("--help")
    assert "transport add DOMAIN NEXTHOP" in r.stdout + r.stderr
    assert "tls-policy set DOMAIN LEVEL" in r.stdout + r.stderr

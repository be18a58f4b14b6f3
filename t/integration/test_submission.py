"""
Mail submission: smtpd's roles on the submission ports (RFC 6409 on 587
with STARTTLS required before AUTH, RFC 8314 implicit TLS on 465), SMTP
AUTH PLAIN and LOGIN through authd (RFC 4954), the relay rule (never an
open relay in any combination of role, login, mynetworks and recipient
domain), smtpd_sender_login, the Received: header of submitted mail, and
credentials kept out of the log. The instance listens on free loopback
ports for every role; mynetworks names 127.0.0.2 only.
"""
import base64
import re
import shutil
import smtplib
import ssl
import subprocess

import pytest

import herald as H
from conftest import standard_instance

TRUSTED = "127.0.0.2"		# in mynetworks
# wrong passwords come from these, one a test: authd delays every later
# answer to an address with recent failures, success included
# (auth_failure_delay, doubling), so failing from 127.0.0.1 would make
# each login of the tests after it wait seconds
FAILING_MECH = "127.0.0.3"
FAILING_LOG = "127.0.0.4"
PASSWORD = "pw-alice"		# setup_standard_directory's


@pytest.fixture(scope="module")
def sub(tmp_path_factory, pki):
    with standard_instance(tmp_path_factory, pki, "submission",
                           submission=True,
                           mynetworks="%s/32" % TRUSTED) as inst:
        yield inst


def b64(text):
    return base64.b64encode(text.encode()).decode()


def plain(user, password):
    return b64("\0%s\0%s" % (user, password))


def raw(inst, port, source=None):
    c = H.RawSMTP("127.0.0.1", port, source=source)
    return c


def tls_raw(inst, port, source=None):
    """RawSMTP on a submission port after STARTTLS and EHLO."""
    c = raw(inst, port, source)
    c.expect(220)
    c.expect(250, "EHLO client.example.test")
    c.expect(220, "STARTTLS")
    c.starttls(inst.tls_context(), "mx.example.test")
    return c


def implicit(inst, source=None):
    """smtplib over implicit TLS (465)."""
    return smtplib.SMTP_SSL("127.0.0.1", inst.submissions_port,
                            local_hostname="client.example.test",
                            context=inst.tls_context(), timeout=20,
                            source_address=(source, 0) if source else None)


def ehlo_keywords(lines):
    return [l.split(b" ")[0].upper() for l in lines[1:]]


def test_auth_only_after_starttls_on_587(sub):
    c = raw(sub, sub.submission_port)
    with c:
        c.expect(220)
        code, lines = c.cmd("EHLO client.example.test")
        assert code == 250
        kw = ehlo_keywords(lines)
        assert b"STARTTLS" in kw and b"AUTH" not in kw, lines
        code, lines = c.cmd("AUTH PLAIN " + plain("alice@example.test",
                                                  PASSWORD))
        assert code == 530, lines
        assert lines[0].startswith(b"5.7.0 Must issue a STARTTLS"), lines
        code, lines = c.cmd("MAIL FROM:<alice@example.test>")
        assert code == 530 and lines[0].startswith(b"5.7.0"), lines
        c.expect(220, "STARTTLS")
        c.starttls(sub.tls_context(), "mx.example.test")
        code, lines = c.cmd("EHLO client.example.test")
        assert code == 250
        assert b"AUTH PLAIN LOGIN" in lines, lines
        assert b"STARTTLS" not in ehlo_keywords(lines)
        code, lines = c.cmd("MAIL FROM:<alice@example.test>")
        assert code == 530, lines
        assert lines[0] == b"5.7.0 Authentication required", lines
        c.expect(235, "AUTH PLAIN " + plain("alice@example.test", PASSWORD))
        code, lines = c.cmd("AUTH PLAIN " + plain("alice@example.test",
                                                  PASSWORD))
        assert code == 503, lines
        code, lines = c.cmd("EHLO client.example.test")
        assert b"AUTH" not in ehlo_keywords(lines), "AUTH after login"
        c.expect(221, "QUIT")


def test_no_auth_on_port_25(sub):
    with tls_raw(sub, sub.port) as c:
        code, lines = c.cmd("EHLO client.example.test")
        assert code == 250 and b"AUTH" not in ehlo_keywords(lines), lines
        code, lines = c.cmd("AUTH PLAIN " + plain("alice@example.test",
                                                  PASSWORD))
        assert code == 503, lines
        code, lines = c.cmd("RCPT TO:<x@example.org>")
        assert code == 503
        c.expect(250, "MAIL FROM:<alice@example.test>")
        code, lines = c.cmd("RCPT TO:<someone@example.org>")
        assert code == 554 and lines[0].startswith(b"5.7.1"), lines


def test_implicit_tls_465(sub, token):
    with implicit(sub) as s:
        cert = s.sock.getpeercert()
        assert cert, "no verified certificate"
        s.ehlo()
        assert s.has_extn("auth")
        assert "PLAIN" in s.esmtp_features["auth"].upper()
        assert not s.has_extn("starttls")
        code, resp = s.mail("alice@example.test")
        assert code == 530, resp
        s.rset()
        s.login("alice@example.test", PASSWORD)
        msg = H.make_message(token, sender="alice@example.test",
                             to="bob@example.test")
        assert s.sendmail("alice@example.test", ["bob@example.test"],
                          msg) == {}
    got = sub.wait_messages(token, "bob")
    assert got


def test_plaintext_465_gets_nothing(sub):
    """A plaintext client on 465 gets no greeting in plaintext."""
    c = raw(sub, sub.submissions_port)
    with c:
        c.send("EHLO client.example.test\r\n")
        data = b""
        try:
            data = c.read_all(timeout=3)
        except Exception:
            pass
        assert not data.startswith(b"220"), data


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_mechanisms(sub, mech):
    with tls_raw(sub, sub.submission_port, FAILING_MECH) as c:
        c.expect(250, "EHLO client.example.test")
        if mech == "PLAIN":
            code, lines = c.cmd("AUTH PLAIN")
            assert code == 334 and lines == [b""], lines
            code, lines = c.cmd(plain("alice@example.test", "wrong-one"))
        else:
            code, lines = c.cmd("AUTH LOGIN")
            assert code == 334 and lines == [b64("Username:").encode()]
            c.expect(334, b64("alice@example.test"))
            code, lines = c.cmd(b64("wrong-one"))
        assert code == 535 and lines[0].startswith(b"5.7.8"), lines
        if mech == "PLAIN":
            c.expect(235, "AUTH PLAIN " + plain("alice@example.test",
                                                PASSWORD))
        else:
            c.expect(334, "AUTH LOGIN " + b64("alice@example.test"))
            c.expect(235, b64(PASSWORD))
        code, lines = c.cmd("AUTH LOGIN")
        assert code == 503, lines


def test_auth_cancel_and_garbage(sub):
    with tls_raw(sub, sub.submission_port) as c:
        c.expect(250, "EHLO client.example.test")
        c.expect(334, "AUTH LOGIN")
        code, lines = c.cmd("*")
        assert code == 501, lines
        c.expect(334, "AUTH PLAIN")
        code, lines = c.cmd("!!!not base64!!!")
        assert code == 501, lines
        code, lines = c.cmd("AUTH CRAM-MD5")
        assert code == 504, lines
        c.expect(250, "MAIL FROM:<>") if False else None
        code, lines = c.cmd("NOOP")
        assert code == 250


def relay_case(sub, port, source, login, rcpt):
    """One session: the reply code to RCPT TO:<rcpt> (or to MAIL, if MAIL
    is refused)."""
    c = raw(sub, port, source) if port != sub.submissions_port else None
    if port == sub.submissions_port:
        s = implicit(sub, source)
        try:
            s.ehlo()
            if login:
                s.login("alice@example.test", PASSWORD)
            code, _ = s.mail("alice@example.test")
            if code != 250:
                return "MAIL %d" % code
            code, _ = s.rcpt(rcpt)
            return "RCPT %d" % code
        finally:
            s.close()
    with c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(220, "STARTTLS")
        c.starttls(sub.tls_context(), "mx.example.test")
        c.expect(250, "EHLO client.example.test")
        if login:
            code, lines = c.cmd("AUTH PLAIN " + plain("alice@example.test",
                                                      PASSWORD))
            if code != 235:
                return "AUTH %d" % code
        code, _ = c.cmd("MAIL FROM:<alice@example.test>")
        if code != 250:
            return "MAIL %d" % code
        code, _ = c.cmd("RCPT TO:<%s>" % rcpt)
        return "RCPT %d" % code


def test_never_an_open_relay(sub):
    """role x login x mynetworks x recipient domain: mail to another
    domain only after AUTH or from mynetworks; hosted domains always on
    25, never without either on the submission ports."""
    roles = {"mx": sub.port, "submission": sub.submission_port,
             "submissions": sub.submissions_port}
    got = {}
    want = {}
    for role, port in roles.items():
        for login in (False, True):
            if role == "mx" and login:
                continue	# no AUTH on 25 (test_no_auth_on_port_25)
            for source in ("127.0.0.1", TRUSTED):
                for rcpt in ("bob@example.test", "someone@example.org"):
                    key = (role, login, source, rcpt)
                    got[key] = relay_case(sub, port, source, login, rcpt)
                    ok = login or source == TRUSTED
                    if role == "mx":
                        want[key] = "RCPT 250" if (
                            ok or rcpt.endswith("example.test")) \
                            else "RCPT 554"
                    else:
                        want[key] = "RCPT 250" if ok else "MAIL 530"
    assert got == want


def test_relay_is_queued_with_auth(sub, token):
    sender = "alice@example.test"
    msg = H.make_message(token, sender=sender, to="far@example.org")
    with implicit(sub) as s:
        s.login("alice@example.test", PASSWORD)
        assert s.sendmail(sender, ["far@example.org"], msg) == {}
    qid = sub.qid_of_sender(sender)
    sub.wait_log(qid + r".*sasl_username=alice@example\.test")
    found = False
    for _ in range(100):
        for f in sub.queue_files():
            data = f.read_bytes()
            if token.encode() in data and b"far@example.org" in data:
                found = True
        if found:
            break
        H.time.sleep(0.1)
    assert found, "no queue file holds the remote recipient"


@pytest.mark.parametrize("sender, code", [
    ("alice@example.test", 250),
    ("ALICE@example.test", 250),
    ("alice+tag@example.test", 250),
    ("team@example.test", 250),		# alias with alice among targets
    ("postmaster@example.test", 250),	# alias to alice
    ("bob@example.test", 553),
    ("someone@example.org", 553),
    ("nobody@example.test", 553),
    ("", 250),
])
def test_sender_login_strict(sub, sender, code):
    with implicit(sub) as s:
        s.login("alice@example.test", PASSWORD)
        got, resp = s.mail(sender)
        assert got == code, resp
        if code == 553:
            assert resp.startswith(b"5.7.1"), resp


def test_received_leaves_out_client_address(sub, token):
    sender = "alice@example.test"
    msg = H.make_message(token, sender=sender, to="bob@example.test")
    with implicit(sub) as s:
        s.login("alice@example.test", PASSWORD)
        assert s.sendmail(sender, ["bob@example.test"], msg) == {}
    got = sub.wait_messages(token, "bob")
    fields = H.split_delivered(got[0], msg)
    rcvd = b" ".join(H.header_values(fields, "Received"))
    assert b"127.0.0.1" not in rcvd, rcvd
    assert b"ESMTPSA" in rcvd, rcvd
    assert b"client.example.test" in rcvd, rcvd


def test_received_names_client_when_configured(sub, token):
    """submission_received_client = yes puts the address back."""
    sender = "alice@example.test"
    msg = H.make_message(token, sender=sender, to="bob@example.test")
    sub.set_config(submission_received_client="yes")
    sub.ctl_ok("reload")
    try:
        with implicit(sub) as s:
            s.login("alice@example.test", PASSWORD)
            assert s.sendmail(sender, ["bob@example.test"], msg) == {}
        got = sub.wait_messages(token, "bob")
    finally:
        sub.set_config(submission_received_client=None)
        sub.ctl_ok("reload")
    fields = H.split_delivered(got[0], msg)
    rcvd = b" ".join(H.header_values(fields, "Received"))
    assert b"client.example.test ([127.0.0.1])" in rcvd, rcvd


def test_credentials_never_logged(sub):
    secret = "Sekr1t-%s" % H.time.time_ns()
    since = sub.log_size()
    with tls_raw(sub, sub.submission_port, FAILING_LOG) as c:
        c.expect(250, "EHLO client.example.test")
        c.expect(535, "AUTH PLAIN " + plain("alice@example.test", secret))
        c.expect(334, "AUTH LOGIN")
        c.expect(334, b64("alice@example.test"))
        c.expect(535, b64(secret))
    sub.wait_log(r"authentication failed: user=<alice@example\.test> "
                 r"client=\[%s\] method=LOGIN" % re.escape(FAILING_LOG),
                 since=since)
    text = sub.log_text(since=since)
    for needle in (secret, b64(secret), plain("alice@example.test",
                                              secret)):
        assert needle not in text, needle


@pytest.mark.skipif(shutil.which("swaks") is None, reason="no swaks")
def test_swaks_with_auth(sub, token):
    """The command README and make demo show."""
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % sub.submission_port, "-tls",
         "--tls-verify", "--tls-ca-path", str(sub.pki["ca_cert"]),
         "--tls-sni", "mx.example.test",
         "--auth", "PLAIN", "--auth-user", "alice@example.test",
         "--auth-password", PASSWORD,
         "--from", "alice@example.test", "--to", "bob@example.test",
         "--header", "Subject: %s" % token, "--helo", "client.example.test"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=60)
    assert r.returncode == 0, r.stdout
    assert "235 2.7.0" in r.stdout, r.stdout
    assert sub.wait_messages(token, "bob")


def bare_message(token, sender, to, extra=""):
    """A message without Message-ID: and Date:."""
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: bare %s\r\n%s\r\n"
            "Body of %s.\r\n" % (sender, to, token, extra, token)).encode()


def test_message_id_and_date_added_on_submission_only(sub, token):
    sender = "alice@example.test"
    msg = bare_message(token + "-sub", sender, "bob@example.test")
    with implicit(sub) as s:
        s.login(sender, PASSWORD)
        assert s.sendmail(sender, ["bob@example.test"], msg) == {}
    got = sub.wait_messages(token + "-sub", "bob")[0]
    head = got.split(b"\r\n\r\n" if b"\r\n\r\n" in got else b"\n\n")[0]
    assert b"\nMessage-ID: <" in head and b"@mx.example.test>" in head, head
    assert b"\nDate: " in head, head
    # one of each, and the body untouched
    assert head.count(b"Message-ID:") == 1 and head.count(b"\nDate:") == 1
    assert got.rstrip().endswith(("Body of %s-sub." % token).encode())
    # a message that has them keeps its own
    msg = H.make_message(token + "-own", sender=sender, to="bob@example.test")
    with implicit(sub) as s:
        s.login(sender, PASSWORD)
        assert s.sendmail(sender, ["bob@example.test"], msg) == {}
    got = sub.wait_messages(token + "-own", "bob")[0]
    assert got.count(b"Message-ID:") == 1 and got.count(b"Date:") == 1
    assert ("<%s-own@example.org>" % token).encode() in got
    # port 25 adds nothing
    msg = bare_message(token + "-mx", "someone@example.org",
                       "bob@example.test")
    with sub.smtp() as s:
        assert s.sendmail("someone@example.org", ["bob@example.test"],
                          msg) == {}
    got = sub.wait_messages(token + "-mx", "bob")[0]
    assert b"Message-ID:" not in got and b"\nDate:" not in got, got


@pytest.mark.parametrize("from_field, code", [
    ("Alice <alice@example.test>", 250),
    ("The Team <team@example.test>", 250),
    ("Bob <bob@example.test>", 553),
    ("alice@example.test, bob@example.test", 553),
    ("Mallory <mallory@example.org>", 553),
])
def test_from_header_strict(sub, token, from_field, code):
    msg = ("From: %s\r\nTo: <bob@example.test>\r\nSubject: from %s\r\n"
           "\r\nbody\r\n" % (from_field, token)).encode()
    with implicit(sub) as s:
        s.login("alice@example.test", PASSWORD)
        s.mail("alice@example.test")
        s.rcpt("bob@example.test")
        got, resp = s.data(msg)
        assert got == code, resp
        if code == 553:
            assert resp.startswith(b"5.7.1"), resp


@pytest.mark.parametrize("first", ["X-Mailer : x", "From :",
                                   "X-%s: y" % ("x" * 100)])
def test_from_header_strict_after_obsolete_blank(sub, token, first):
    """A blank before a colon (RFC 5322 obsolete syntax, which readers
    accept) does not end the header section before the From: check; a
    field name too long for the scan to hold is refused under strict."""
    msg = ("%s\r\nFrom: Bob <bob@example.test>\r\nSubject: %s\r\n"
           "\r\nbody\r\n" % (first, token)).encode()
    with implicit(sub) as s:
        s.login("alice@example.test", PASSWORD)
        s.mail("alice@example.test")
        s.rcpt("bob@example.test")
        got, resp = s.data(msg)
        assert got == 553 and resp.startswith(b"5.7.1"), resp


def test_from_after_a_line_without_colon_is_body(sub, token):
    """A header line without a colon ends the section for the strict
    check, so smtpd puts the empty line RFC 5322 wants before it: the
    From: after it is body for every reader (Dovecot's parser would take
    it for a field), never an unchecked sender."""
    msg = ("From: Alice <alice@example.test>\r\nSubject: %s\r\n"
           "X-Junk-Without-Colon\r\nFrom: Bob <bob@example.test>\r\n"
           "\r\nbody\r\n" % token).encode()
    with implicit(sub) as s:
        s.login("alice@example.test", PASSWORD)
        assert s.sendmail("alice@example.test", ["bob@example.test"],
                          msg) == {}
    got = sub.wait_messages(token, "bob")[0].replace(b"\r\n", b"\n")
    head, _, body = got.partition(b"\n\n")
    assert b"Bob <bob@example.test>" not in head, got
    assert body.startswith(b"X-Junk-Without-Colon\nFrom: Bob"), got
    assert b"Message-ID:" in head and b"\nDate:" in head, got


def send_as_alice(inst, rcpts, from_field="alice@example.test",
                  mail_from="alice@example.test"):
    """One message over 465 after login: the (code, text) of the first
    refusal, or (250, b"") when it was queued."""
    msg = ("From: %s\r\nSubject: s\r\n\r\nb\r\n" % from_field).encode()
    with implicit(inst) as s:
        s.login("alice@example.test", PASSWORD)
        code, resp = s.mail(mail_from)
        if code != 250:
            return code, resp
        for r in rcpts:
            code, resp = s.rcpt(r)
            if code != 250:
                return code, resp
        code, resp = s.data(msg)
        return (code, resp) if code != 250 else (250, b"")


def test_sending_limits_and_sender_modes(tmp_path_factory, pki):
    """Hourly limits over all workers (451 4.7.1, heraldctl status names
    the user); smtpd_sender_login = envelope, then any after a reload."""
    with standard_instance(tmp_path_factory, pki, "limits", submission=True,
                           smtpd_sender_login="envelope",
                           submission_message_rate_limit=3,
                           submission_recipient_rate_limit=5) as inst:
        # envelope: MAIL FROM is checked, From: is not
        code, resp = send_as_alice(inst, ["bob@example.test"],
                                   mail_from="bob@example.test")
        assert code == 553 and resp.startswith(b"5.7.1"), resp
        assert send_as_alice(inst, ["bob@example.test"],
                             from_field="bob@example.test")[0] == 250
        # the recipient limit: 1 sent, 4 more fit, the 5th does not
        code, resp = send_as_alice(inst, ["bob@example.test",
                                          "carol@example.test",
                                          "dave@example.test",
                                          "team@example.test",
                                          "far@example.org"])
        assert code == 451 and resp.startswith(b"4.7.1"), resp
        assert b"recipients" in resp
        assert send_as_alice(inst, ["bob@example.test"])[0] == 250
        assert send_as_alice(inst, ["carol@example.test"])[0] == 250
        # three messages sent (on whichever workers): the fourth waits
        code, resp = send_as_alice(inst, ["bob@example.test"])
        assert code == 451 and resp.startswith(b"4.7.1"), resp
        assert b"messages" in resp
        st = inst.ctl_ok("status").stdout
        assert "OVER SENDING LIMIT" in st and "alice@example.test" in st, st
        js = inst.status_json()
        over = [u["user"] for u in js["over_sending_limit"]]
        assert over == ["alice@example.test"], js
        # another user is not affected
        with implicit(inst) as s:
            s.login("bob@example.test", "pw-bob")
            assert s.mail("bob@example.test")[0] == 250
        # any: a logged-in user may use any sender (limits still hold,
        # so bob sends)
        inst.set_config(smtpd_sender_login="any")
        inst.ctl_ok("reload")
        with implicit(inst) as s:
            s.login("bob@example.test", "pw-bob")
            code, resp = s.mail("someone@example.org")
            assert code == 250, resp


def test_auth_errors_count_toward_the_error_limit(sub):
    """Failed AUTH attempts are client errors: at smtpd_error_limit (20)
    the session ends with 421."""
    with tls_raw(sub, sub.submission_port) as c:
        c.expect(250, "EHLO client.example.test")
        codes = []
        for _ in range(25):
            code, lines = c.cmd("AUTH PLAIN %s" % b64("\0x\0"))
            codes.append(code)
            if code != 501 and code != 535:
                break
        assert codes[-1] == 421, codes
        assert len(codes) <= 21, codes
        assert c.reply(timeout=5)[0] is None	# closed

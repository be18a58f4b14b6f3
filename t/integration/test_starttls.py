"""
STARTTLS: a verified handshake with the test CA, mail over TLS, and the
command injection defence (plaintext pipelined after STARTTLS is thrown
away, RFC 3207 section 6 / CVE-2011-0411).
"""
import ssl

import pytest

import herald as H


def test_starttls_verified_and_delivers(herald, token):
    sender = "tls-%s@example.org" % token
    msg = H.make_message(token, sender=sender)
    with herald.smtp() as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=herald.tls_context())
        assert code == 220
        cert = s.sock.getpeercert()
        sans = dict((k, v) for k, v in cert.get("subjectAltName", ()))
        assert sans.get("DNS") == "mx.example.test"
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3"), s.sock.version()
        code, _ = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls"), "STARTTLS offered again in TLS"
        assert s.sendmail(sender, ["alice@example.test"], msg) == {}
        s.quit()
    got = herald.wait_messages(token, "alice")
    fields = H.split_delivered(got[0], msg)
    rcvd = b" ".join(H.header_values(fields, "Received"))
    assert b"ESMTPS" in rcvd or b"TLS" in rcvd.upper(), rcvd


def test_starttls_hostname_check(herald):
    """The certificate is for mx.example.test: verification under that
    name works through the raw client too."""
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(220, "STARTTLS")
        c.starttls(herald.tls_context(), "mx.example.test")
        code, lines = c.cmd("EHLO client.example.test")
        assert code == 250
        assert c.cmd("QUIT")[0] == 221


def test_starttls_wrong_name_fails_verification(herald):
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(220, "STARTTLS")
        with pytest.raises(ssl.SSLCertVerificationError):
            c.starttls(herald.tls_context(), "other.example.test")


def test_starttls_injection_discarded(herald):
    """STARTTLS and NOOP in one write: after the handshake, the first reply
    must answer our own EHLO, never the NOOP."""
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.send(b"STARTTLS\r\nNOOP\r\n")
        code, lines = c.reply()
        assert code == 220, (code, lines)
        # the server must not answer the NOOP in plaintext either
        assert c.buf == b"", c.buf
        c.starttls(herald.tls_context(), "mx.example.test")
        c.send(b"EHLO tls.example.test\r\n")
        code, lines = c.reply()
        assert code == 250, (code, lines)
        assert lines[0].startswith(b"mx.example.test"), \
            "first reply after TLS is not the EHLO reply: %r" % (lines,)
        assert len(lines) > 1, "EHLO reply should list extensions: %r" % lines
        code, lines = c.cmd("QUIT")
        assert code == 221, (code, lines)


def test_starttls_injection_mail_commands(herald, token):
    """A forged transaction after STARTTLS in the same write must not
    create mail."""
    since = herald.log_size()
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.send(("STARTTLS\r\nMAIL FROM:<inj-%s@example.org>\r\n"
                "RCPT TO:<alice@example.test>\r\nDATA\r\n"
                "Subject: injected %s\r\n\r\nx\r\n.\r\n" % (token, token))
               .encode())
        assert c.reply()[0] == 220
        c.starttls(herald.tls_context(), "mx.example.test")
        code, lines = c.cmd("EHLO tls.example.test")
        assert code == 250 and lines[0].startswith(b"mx.example.test")
        # no transaction is open: RCPT must be out of sequence
        code, lines = c.cmd("RCPT TO:<alice@example.test>")
        assert code == 503, (code, lines)
        assert c.cmd("QUIT")[0] == 221
    herald.wait_queue_empty()
    assert "inj-%s" % token not in herald.log_text(since)
    assert herald.messages_with("injected " + token, "alice") == []


def test_starttls_state_reset(herald, token):
    """Envelope state from before STARTTLS is forgotten (RFC 3207 4.2)."""
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(250, "MAIL FROM:<pre-%s@example.org>" % token)
        code, _ = c.cmd("STARTTLS")
        if code != 220:
            # refusing STARTTLS inside a transaction is fine too
            assert code == 503, code
            return
        c.starttls(herald.tls_context(), "mx.example.test")
        c.expect(250, "EHLO tls.example.test")
        code, lines = c.cmd("RCPT TO:<alice@example.test>")
        assert code == 503, (code, lines)


def test_starttls_twice_refused(herald):
    with herald.raw() as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(220, "STARTTLS")
        c.starttls(herald.tls_context(), "mx.example.test")
        c.expect(250, "EHLO tls.example.test")
        code, lines = c.cmd("STARTTLS")
        assert code in (503, 554), (code, lines)


def test_no_starttls_without_cert(make_herald):
    inst = make_herald(tls_cert_file=None, tls_key_file=None)
    with inst.smtp() as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        code, _ = s.docmd("STARTTLS")
        assert code in (454, 502, 503), code

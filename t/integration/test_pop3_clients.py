"""
pop3d against real third-party POP3 clients: fetchmail (pop3s, and STLS
on the plain port, both verifying the certificate against the test CA)
downloads and deletes a user's mail; curl retrieves and lists over pop3s.
The messages that come out must be the ones that were sent.

Each tool is skipped (with the reason) when it is not installed. Every
process started here runs with a timeout and is gone when the test ends.
"""
import os
import re
import shutil
import subprocess

import pytest

import herald as H

TOOL_TIMEOUT = 60


def new_user(inst, name):
    addr = "%s@example.test" % name
    password = "pw-%s-secret" % name
    inst.add_user(addr, password)
    return addr, password


def deliver(inst, addr, tokens):
    """One message per token, each with a dot-line and a long body."""
    sent = {}
    with inst.smtp() as s:
        for t in tokens:
            body = ("token %s\r\n.dotted line %s\r\n" % (t, t) +
                    "filler line for %s\r\n" % t * 50)
            msg = H.make_message(t, to=addr, body=body)
            s.sendmail("sender@example.org", [addr], msg)
            sent[t] = msg
    local = addr.split("@")[0]
    for t in tokens:
        inst.wait_messages(t, local)
    return sent


def run(argv, env=None, timeout=TOOL_TIMEOUT):
    """Run a client; CompletedProcess (bytes). Killed on timeout."""
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def need(tool):
    path = shutil.which(tool)
    if path is None:
        print("skipping: %s is not installed" % tool)
        pytest.skip("%s is not installed" % tool)
    return path


def fetchmail_rc(tmp_path, inst, addr, password, port, implicit_tls):
    """A .fetchmailrc (mode 0600) that delivers each message into its
    own file in tmp_path/out through a small MDA script."""
    out = tmp_path / "out"
    out.mkdir()
    mda = tmp_path / "save-mda.sh"
    mda.write_text("#!/bin/sh\nexec cat > \"$(mktemp %s/msg.XXXXXX)\"\n"
                   % out)
    mda.chmod(0o700)
    tls = ("ssl sslproto 'TLS1.2+'" if implicit_tls else
           "sslproto 'TLS1.2+'")	# without "ssl": STLS is required
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        "set no syslog\n"
        "poll 127.0.0.1 service %d protocol pop3 auth password\n"
        "  user \"%s\" password \"%s\"\n"
        "  %s sslcertck sslcertfile \"%s\" sslcommonname mx.example.test\n"
        "  fetchall nokeep\n"
        "  mda \"%s\"\n"
        % (port, addr, password, tls, inst.pki["ca_cert"], mda))
    rc.chmod(0o600)
    return rc, out


def fetchmail(tmp_path, rc):
    env = dict(os.environ)
    env["HOME"] = str(tmp_path)
    env["FETCHMAILHOME"] = str(tmp_path)
    env.pop("FETCHMAIL_INCLUDE_DEFAULT_X509_CA_CERTS", None)
    return run([need("fetchmail"), "-f", str(rc), "--nodetach", "-v",
                "--pidfile", str(tmp_path / "fetchmail.pid")], env=env)


def check_fetched(inst, out, local, sent):
    got = [p.read_bytes() for p in sorted(out.iterdir())]
    assert len(got) == len(sent), (len(got), [g[:200] for g in got])
    for token, msg in sent.items():
        hits = [g for g in got if ("token %s\n" % token).encode()
                in H.crlf_to_lf(g)]
        assert len(hits) == 1, token
        g = H.crlf_to_lf(hits[0])
        # the body arrived whole, the dot-line unstuffed
        assert g.endswith(H.crlf_to_lf(msg.split(b"\r\n\r\n", 1)[1])), \
            g[-400:]
        assert ("\n.dotted line %s\n" % token).encode() in g
        assert ("Message-ID: <%s@example.org>" % token).encode() in g
    # fetchmail deleted what it fetched (QUIT -> UPDATE)
    assert inst.maildir_files(local) == []


@pytest.mark.parametrize("implicit_tls", [True, False],
                         ids=["pop3s", "stls"])
def test_fetchmail(herald, tmp_path, token, implicit_tls):
    need("fetchmail")
    local = "fm" + ("s" if implicit_tls else "t") + token[-12:].lower()
    addr, password = new_user(herald, local)
    tokens = ["%s-%d" % (token, i) for i in range(3)]
    sent = deliver(herald, addr, tokens)
    since = herald.log_size()
    port = herald.pop3s_port if implicit_tls else herald.pop3_port
    rc, out = fetchmail_rc(tmp_path, herald, addr, password, port,
                           implicit_tls)
    r = fetchmail(tmp_path, rc)
    text = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, text
    assert "3 messages" in text, text
    check_fetched(herald, out, local, sent)
    log = herald.log_text(since)
    assert re.search(r"login: user=<%s> .* tls=yes" % re.escape(addr),
                     log), log
    assert re.search(r"logout: user=<%s> .* del=3/3" % re.escape(addr),
                     log), log
    assert password not in log


def test_fetchmail_rejects_untrusted_server(herald, tmp_path, token):
    """Certificate checking is real: without the test CA fetchmail must
    refuse the server (and nothing is deleted)."""
    need("fetchmail")
    local = "fmu" + token[-12:].lower()
    addr, password = new_user(herald, local)
    deliver(herald, addr, [token])
    other = H.make_test_pki(tmp_path / "otherpki")
    rc, out = fetchmail_rc(tmp_path, herald, addr, password,
                           herald.pop3s_port, True)
    rc.write_text(rc.read_text().replace(str(herald.pki["ca_cert"]),
                                         str(other["ca_cert"])))
    r = fetchmail(tmp_path, rc)
    assert r.returncode != 0
    assert list(out.iterdir()) == []
    assert len(herald.maildir_files(local)) == 1


def test_curl_retrieve_and_list(herald, token):
    curl = need("curl")
    local = "cu" + token[-12:].lower()
    addr, password = new_user(herald, local)
    tokens = ["%s-%d" % (token, i) for i in range(2)]
    sent = deliver(herald, addr, tokens)
    stored = [p.read_bytes() for p in herald.maildir_files(local)]
    base = "pop3s://127.0.0.1:%d/" % herald.pop3s_port
    common = [curl, "-sS", "--max-time", "30", "--cacert",
              str(herald.pki["ca_cert"]), "-u", "%s:%s" % (addr, password)]

    r = run(common + [base])
    assert r.returncode == 0, r.stderr
    listing = r.stdout.decode().split("\r\n")
    listing = [ln for ln in listing if ln]
    assert [ln.split()[0] for ln in listing] == ["1", "2"], listing
    sizes = sorted(int(ln.split()[1]) for ln in listing)
    want = sorted(len(re.sub(rb"(?<!\r)\n", b"\r\n", data))
                  for data in stored)
    assert sizes == want

    for n in (1, 2):
        r = run(common + [base + str(n)])
        assert r.returncode == 0, r.stderr
        got = H.crlf_to_lf(r.stdout)
        hits = [t for t in tokens if ("token %s\n" % t).encode() in got]
        assert len(hits) == 1, got[:300]
        assert got.endswith(H.crlf_to_lf(
            sent[hits[0]].split(b"\r\n\r\n", 1)[1]))
        assert ("\n.dotted line %s\n" % hits[0]).encode() in got

    # curl over STLS on the plain port, TLS required
    r = run(common + ["--ssl-reqd", "pop3://127.0.0.1:%d/1"
                      % herald.pop3_port])
    assert r.returncode == 0, r.stderr
    assert b"token " in r.stdout

    # a wrong password is an error, not a listing
    r = run([curl, "-sS", "--max-time", "30", "--cacert",
             str(herald.pki["ca_cert"]), "-u", "%s:wrong" % addr, base])
    assert r.returncode != 0
    assert len(herald.maildir_files(local)) == 2

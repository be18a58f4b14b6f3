"""
test_pop3_netns - auth_plaintext = loopback against a client that is NOT
on loopback (root only).

Every other test connects from 127.0.0.1, where "loopback" is always
true, so the refusal half of the rule was never seen from outside. Here
the test makes its own network namespace and veth pair (10.213.N.1/30 on
the host side, 10.213.N.2/30 inside; N from the test's pid), has pop3d
listen on the host-side address as well as on 127.0.0.1, and runs a
POP3 client inside the namespace (`ip netns exec`, as Python 3.11 has no
os.setns). From there USER, PASS and AUTH PLAIN are refused without TLS
and CAPA offers neither USER nor SASL; after STLS, USER/PASS and AUTH
PLAIN work. From 127.0.0.1 the same instance accepts USER/PASS in clear.
The namespace and the veth pair are removed at the end, on failure too,
and the test checks that they are gone.
"""
import base64
import json
import os
import subprocess
import sys
import textwrap

import pytest

import herald as H

GREETING = b"+OK herald POP3 ready"
PLAINTEXT_REFUSED = ("-ERR [AUTH] Plaintext authentication disallowed on "
                     "non-secure (SSL/TLS) connections.")

# The client that runs inside the namespace: one scripted session, the
# replies printed as JSON. argv: host port ca_cert user password
CLIENT = textwrap.dedent(r'''
    import base64, json, socket, ssl, sys
    host, port, ca, user, pw = sys.argv[1:6]
    out = {}
    cred = base64.b64encode(b"\0" + user.encode() + b"\0" +
                            pw.encode()).decode()

    class C:
        def __init__(self):
            self.s = socket.create_connection((host, int(port)), timeout=5)
            self.f = self.s.makefile("rb")
        def line(self):
            return self.f.readline().decode(errors="replace").rstrip("\r\n")
        def cmd(self, text):
            self.s.sendall(text.encode() + b"\r\n")
            return self.line()
        def multi(self):
            lines = []
            for _ in range(100):
                ln = self.line()
                if ln == "." or ln == "":
                    return lines
                lines.append(ln)
            return lines
        def stls(self):
            ctx = ssl.create_default_context(cafile=ca)
            self.s = ctx.wrap_socket(self.s, server_hostname="mx.example.test")
            self.f = self.s.makefile("rb")

    try:
        c = C()
        out["local"] = c.s.getsockname()[0]
        out["greeting"] = c.line()
        out["capa"] = c.cmd("CAPA")
        out["caps"] = c.multi()
        out["user"] = c.cmd("USER " + user)
        out["pass"] = c.cmd("PASS " + pw)
        out["auth_plain"] = c.cmd("AUTH PLAIN " + cred)
        out["auth_plain_noir"] = c.cmd("AUTH PLAIN")
        out["auth_list"] = c.cmd("AUTH")
        out["auth_mechs"] = c.multi()
        out["stls"] = c.cmd("STLS")
        c.stls()
        out["tls_capa"] = c.cmd("CAPA")
        out["tls_caps"] = c.multi()
        out["tls_user"] = c.cmd("USER " + user)
        out["tls_pass"] = c.cmd("PASS " + pw)
        out["tls_stat"] = c.cmd("STAT")
        out["tls_quit"] = c.cmd("QUIT")

        c = C()
        c.line()
        out["stls2"] = c.cmd("STLS")
        c.stls()
        out["tls_auth_plain"] = c.cmd("AUTH PLAIN " + cred)
        out["quit2"] = c.cmd("QUIT")
    except Exception as e:
        out["error"] = repr(e)    # the replies so far still count
    print(json.dumps(out))
''')


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True,
                       timeout=30)
    if check and r.returncode != 0:
        raise AssertionError("ip %s: exit %d: %s" % (" ".join(args),
                                                     r.returncode, r.stderr))
    return r


@pytest.fixture
def netns():
    """A namespace with one end of a veth pair; the other end on the host.
    Yields a dict: ns, host_if, ns_if, host_addr, ns_addr."""
    if os.geteuid() != 0:
        print("skipped: a network namespace and a veth pair need root "
              "(uid %d)" % os.geteuid())
        pytest.skip("a network namespace and a veth pair need root")
    if subprocess.run(["which", "ip"], capture_output=True).returncode:
        pytest.skip("no ip(8) (iproute2)")
    n = os.getpid() % 250 + 1
    tag = "%d" % os.getpid()
    net = {"ns": "herald-t%s" % tag, "host_if": "hvh%s" % tag[-8:],
           "ns_if": "hvn%s" % tag[-8:],
           "host_addr": "10.213.%d.1" % n, "ns_addr": "10.213.%d.2" % n}
    # a leftover of a killed earlier run with the same pid
    ip("link", "del", net["host_if"], check=False)
    ip("netns", "del", net["ns"], check=False)
    made = False
    try:
        r = ip("netns", "add", net["ns"], check=False)
        if r.returncode != 0:
            print("skipped: cannot create a network namespace: %s"
                  % r.stderr.strip())
            pytest.skip("cannot create a network namespace: %s"
                        % r.stderr.strip())
        made = True
        ip("link", "add", net["host_if"], "type", "veth", "peer", "name",
           net["ns_if"])
        ip("link", "set", net["ns_if"], "netns", net["ns"])
        ip("addr", "add", net["host_addr"] + "/30", "dev", net["host_if"])
        ip("link", "set", net["host_if"], "up")
        ip("-n", net["ns"], "addr", "add", net["ns_addr"] + "/30", "dev",
           net["ns_if"])
        ip("-n", net["ns"], "link", "set", net["ns_if"], "up")
        ip("-n", net["ns"], "link", "set", "lo", "up")
        yield net
    finally:
        ip("link", "del", net["host_if"], check=False)
        if made:
            # processes still in it would keep it: there are none (the
            # client ran under a timeout), so this removes it
            ip("netns", "del", net["ns"], check=False)
        gone_if = ip("link", "show", net["host_if"], check=False)
        gone_ns = net["ns"] not in ip("netns", "list").stdout.split()
        assert gone_if.returncode != 0, "veth %s left behind" % net["host_if"]
        assert gone_ns, "namespace %s left behind" % net["ns"]


def in_netns(net, port, ca, user, password):
    """Run CLIENT inside the namespace against host_addr:port; its dict."""
    r = subprocess.run(
        ["ip", "netns", "exec", net["ns"], sys.executable, "-c", CLIENT,
         net["host_addr"], str(port), str(ca), user, password],
        capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, "client in %s: exit %d\n%s%s" % (
        net["ns"], r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_plaintext_refused_from_outside_loopback(make_herald, netns, token):
    port = H.free_port()
    inst = make_herald(
        start=False, auth_plaintext="loopback",
        pop3d_listen="127.0.0.1:%d, %s:%d" % (port, netns["host_addr"],
                                               port))
    inst.pop3_port = port
    inst.start()
    user, pw = "alice@example.test", "pw-alice"
    with inst.smtp() as s:
        s.sendmail("sender@example.org", [user],
                   H.make_message(token, to=user))
    inst.wait_messages(token, "alice")

    out = in_netns(netns, port, inst.pki["ca_cert"], user, pw)
    # the client really was outside loopback
    assert out.get("local") == netns["ns_addr"], out
    assert out.get("greeting", "").encode() == GREETING, out
    assert out.get("capa", "").startswith("+OK"), out
    caps = set(c.split()[0] for c in out.get("caps", []) if c)
    assert "STLS" in caps and not caps & {"USER", "SASL"}, caps
    for key in ("user", "pass", "auth_plain", "auth_plain_noir"):
        assert out.get(key) == PLAINTEXT_REFUSED, (key, out)
    assert out.get("auth_list") == "+OK", out
    assert out.get("auth_mechs") == [], out
    assert "error" not in out, out
    # after STLS the same client may log in, both ways
    assert out["stls"].startswith("+OK"), out
    tls_caps = set(c.split()[0] for c in out["tls_caps"] if c)
    assert {"USER", "SASL"} <= tls_caps and "STLS" not in tls_caps, tls_caps
    assert out["tls_user"] == "+OK", out
    assert out["tls_pass"].startswith("+OK"), out
    assert out["tls_stat"].startswith("+OK 1 "), out
    assert out["tls_quit"].startswith("+OK"), out
    assert out["tls_auth_plain"].startswith("+OK"), out
    inst.wait_log(r"login: user=<%s> client=\[%s\] .*tls=yes" % (
        user, netns["ns_addr"].replace(".", r"\.")), 10)

    # from loopback, the same instance takes the password in clear
    c = H.RawLines("127.0.0.1", port, timeout=15)
    try:
        assert c.readline().rstrip(b"\r\n") == GREETING
        c.send(b"USER %s\r\n" % user.encode())
        assert c.readline() == b"+OK\r\n"
        c.send(b"PASS %s\r\n" % pw.encode())
        assert c.readline().startswith(b"+OK")
        cred = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode())
        c.send(b"QUIT\r\n")
        assert c.readline().startswith(b"+OK")
    finally:
        c.close()
    c = H.RawLines("127.0.0.1", port, timeout=15)
    try:
        c.readline()
        c.send(b"AUTH PLAIN " + cred + b"\r\n")
        assert c.readline().startswith(b"+OK")
        c.send(b"QUIT\r\n")
        c.readline()
    finally:
        c.close()
    inst.wait_log(r"login: user=<%s> client=\[127\.0\.0\.1\] .*tls=no"
                  % user, 10)

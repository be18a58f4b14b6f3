"""
remotenet - what the remote delivery tests (test_remote.py, test_dane.py)
share: two herald instances on their own loopback addresses with DNS
from knotd (dnsserver.py), scripted SMTP servers in threads of this
process, and sending from A and reading the outcome in its log.

  two_instances()  a context manager that starts knotd, the scripted
                   servers, B (the MX everything points at, on
                   b_addr:mx_port) and A (a.test, alice; it asks only
                   knotd, through dns_stub_zones, and sends to port
                   mx_port); every one of them is stopped on the way
                   out, also when a test or the start-up fails
  ScriptedServer   a threaded server that keeps each session's commands
                   (test_remote_route.py's stubs are ones too)
  SMTPHandler      a request handler base: reply(), session()
  sendmail()       submit with the sendmail command; qid_for() the queue
                   id of a recipient's delivery log line
"""
import contextlib
import re
import socketserver
import subprocess
import threading

import herald as H


class ScriptedServer(socketserver.ThreadingTCPServer):
    """A scripted SMTP server on addr served by handler: what each
    session sent is kept in self.sessions (a list of lists of command
    lines, appended to under self.lock). Keyword arguments become
    attributes the handler can read (self.server.<name>)."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr, handler, **attrs):
        self.sessions = []
        self.lock = threading.Lock()
        for name, value in attrs.items():
            setattr(self, name, value)
        super().__init__(addr, handler)

    def serve_in_thread(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def sessions_since(self, n):
        """Copies of the sessions from the n-th on."""
        with self.lock:
            return [list(x) for x in self.sessions[n:]]

    def stop(self):
        self.shutdown()
        self.server_close()


class SMTPHandler(socketserver.StreamRequestHandler):
    """Base of the scripted servers' handlers."""
    timeout = 20

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def session(self):
        """A new list for this session's commands, in server.sessions."""
        seen = []
        with self.server.lock:
            self.server.sessions.append(seen)
        return seen


def sendmail(inst, sender, rcpts, data):
    r = subprocess.run([str(H.binpath("sendmail")), "-C", str(inst.conf),
                        "-f", sender] + list(rcpts), input=data.encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    return r


def message(token, to, subject, extra=""):
    return ("From: alice@a.test\nTo: %s\nSubject: %s %s\n\n"
            "hello %s\n%s" % (to, subject, token, token, extra))


def qid_for(inst, rcpt, since, status):
    m = inst.wait_log(r"(%s): to=<%s>, relay=\S+, .*status=%s"
                      % (H.QID_RE, re.escape(rcpt), status),
                      timeout=30, since=since)
    return m.group(1)


@contextlib.contextmanager
def two_instances(folder, knot, stub_zones, mx_port, b_addr, b_domains,
                  servers=None, b_pki=None, a_listen=None, a_env=None,
                  **a_config):
    """Start knot (a dnsserver.KnotZones), the servers (name: a function
    that makes a ScriptedServer), B ("mx.b.test", in folder/b, hosting
    b_domains with a user bob each, listening on b_addr:mx_port too) and
    A ("mx.a.test", in folder/a, a.test with alice; a_config on top of
    the DNS of stub_zones from knot, retries only by queue flush;
    a_listen: its smtpd_listen; a_env: its environment). Yields a dict:
    "a", "b", "mx_port" and the servers by name."""
    made = {}
    a = b = None
    try:
        knot.start()
        for name, make in (servers or {}).items():
            made[name] = make().serve_in_thread()
        b = H.HeraldInstance(folder / "b", pki=b_pki, myhostname="mx.b.test")
        b.set_config(smtpd_listen="127.0.0.1:%d, %s:%d"
                     % (b.port, b_addr, mx_port))
        b.start()
        for d in b_domains:
            b.add_domain(d)
            b.add_user("bob@" + d)
        zones = ",".join("%s=127.0.0.1@%d" % (z, knot.port)
                         for z in stub_zones)
        config = {"myhostname": "mx.a.test", "smtp_port": mx_port,
                  "dns_stub_zones": zones, "dns_timeout": "3s",
                  # retries come from queue flush, not the clock
                  "minimal_backoff_time": "3600s",
                  "maximal_backoff_time": "3600s"}
        config.update(a_config)
        a = H.HeraldInstance(folder / "a", **config)
        if a_listen is not None:
            a.set_config(smtpd_listen=a_listen(a))
        a.start(env=a_env)
        a.add_domain("a.test")
        a.add_user("alice@a.test")
        yield dict(made, a=a, b=b, mx_port=mx_port)
    finally:
        for inst in (a, b):
            if inst is not None:
                inst.stop()
        for srv in made.values():
            srv.stop()
        knot.stop()

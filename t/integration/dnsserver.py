"""
dnsserver - DNS servers of the tests, on loopback.

KnotZones: a real authoritative server (knotd from Debian's knot) serving
zones signed with ldns-signzone:

  herald.test           signed; MX, A, AAAA, TLSA, TXT, PTR, CNAME, null
                        MX; delegates the two below
  insecure.herald.test  unsigned, delegated without DS: insecure
  bogus.herald.test     signed, DS in the parent, but the signature over
                        its MX records is broken: bogus
  2.0.192.in-addr.arpa  unsigned reverse zone (RFC 6303 would have
                        unbound answer it itself): 192.0.2.10 PTR
  extra zones           unsigned zones a test passes as {name: records}
                        (test_remote.py: b.test's MX and A)

knotd serves all three from one address, so it answers the DS questions
of the children from the parent (RFC 4035 3.1.4.1). The trust anchor
the tests give herald is herald.test's DS (anchor_file). knotd runs as
nobody when the tests run as root, and is stopped by stop(), with
SIGKILL after a bounded wait.

FaultServer: python3-dnslib on UDP and TCP of one port, a thread in the
test process, for failure injection by the first label of the name:

  servfail.*  SERVFAIL         timeout.*   no answer at all
  tc.*        over UDP an empty answer with TC set, over TCP the A record
  refused for everything outside its zone (so a forwarder pointing here
  answers fast and never lets a query leave the machine)
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import herald as H

ZONE = "herald.test"
REVERSE = "2.0.192.in-addr.arpa"
TLSA_DATA = "a" * 64
TXT_LONG = ["x" * 255, "y" * 255]


def have_tools():
    """knotd, ldns-keygen, ldns-signzone and python3-dnslib are there."""
    try:
        import dnslib  # noqa: F401
    except ImportError:
        return False
    return all(shutil.which(t) for t in ("knotd", "ldns-keygen",
                                          "ldns-signzone"))


def _run(cwd, *argv):
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (argv[0], r.returncode,
                                                r.stderr))
    return r.stdout.strip()


def _keygen(cwd, zone):
    """A KSK-flagged ECDSA key used as the only key of zone (a CSK)."""
    base = _run(cwd, "ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone)
    return base.splitlines()[-1]


def _soa(zone):
    return ("$ORIGIN %s.\n$TTL 300\n"
            "@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n"
            "@ NS ns\nns A 127.0.0.1\n" % (zone, zone, zone))


class KnotZones:
    START_TIMEOUT = 15.0

    def __init__(self, folder, extra="", address="127.0.0.1", port=None,
                 extra_zones=None):
        # extra: zone-file lines added to herald.test before signing;
        # address, port: where knotd listens (default a free port on
        # 127.0.0.1); extra_zones: {name: records} served unsigned
        # as root, knotd runs as nobody, who cannot traverse pytest's
        # private temporary folders: its own folder then lives in /tmp
        # (removed by stop(), its log copied into folder first)
        self.folder = Path(folder)
        self.own_tmp = os.geteuid() == 0
        if self.own_tmp:
            self.dir = Path(tempfile.mkdtemp(prefix="herald-knot-"))
        else:
            self.dir = self.folder / "knot"
            self.dir.mkdir(parents=True, exist_ok=True)
        self.address = address
        self.port = port if port is not None else H.free_port()
        self.extra = extra
        self.proc = None
        self.anchor_file = self.dir / "anchor.ds"
        self.extra_zones = dict(extra_zones or {})

    # -- zones

    def _write_zones(self):
        d = str(self.dir)
        child = _keygen(d, "bogus." + ZONE)
        parent = _keygen(d, ZONE)
        child_ds = (self.dir / (child + ".ds")).read_text().strip()

        (self.dir / "insecure.zone").write_text(
            _soa("insecure." + ZONE) +
            "@ MX 10 mx\nmx A 192.0.2.30\n")

        (self.dir / "reverse.zone").write_text(
            _soa(REVERSE) + "10 PTR mx1.herald.test.\n")

        (self.dir / "bogus.zone").write_text(
            _soa("bogus." + ZONE) + "@ MX 10 mx\nmx A 192.0.2.40\n")
        _run(d, "ldns-signzone", "bogus.zone", child)
        self._break_signature(self.dir / "bogus.zone.signed", "MX")

        (self.dir / "parent.zone").write_text(
            _soa(ZONE) +
            "@ MX 20 mx2\n@ MX 10 mx1\n"
            "mx1 A 192.0.2.10\nmx1 AAAA 2001:db8::10\nmx2 A 192.0.2.20\n"
            "_25._tcp.mx1 TLSA 3 1 1 %s\n"
            "@ TXT \"v=spf1 -all\"\n"
            "long TXT %s\n"
            "nullmx MX 0 .\n"
            "alias CNAME mx1\n"
            "ptr PTR mx1.herald.test.\n"
            "insecure NS ns.insecure\nns.insecure A 127.0.0.1\n"
            "bogus NS ns.bogus\nns.bogus A 127.0.0.1\n%s\n%s" % (
                TLSA_DATA, " ".join('"%s"' % s for s in TXT_LONG),
                child_ds, self.extra))
        _run(d, "ldns-signzone", "parent.zone", parent)
        for name, records in self.extra_zones.items():
            (self.dir / ("extra-%s.zone" % name)).write_text(
                _soa(name) + records)
        shutil.copy(self.dir / (parent + ".ds"), self.anchor_file)

    @staticmethod
    def _break_signature(path, rrtype):
        """Change one letter of the signature over rrtype: bogus."""
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            f = line.split()
            if len(f) > 5 and f[3] == "RRSIG" and f[4] == rrtype:
                sig = f[-1]
                f[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
                lines[i] = "\t".join(f)
                break
        else:
            raise RuntimeError("no RRSIG %s in %s" % (rrtype, path))
        path.write_text("\n".join(lines) + "\n")

    # -- knotd

    def start(self):
        self._write_zones()
        for sub in ("run", "db"):
            (self.dir / sub).mkdir(exist_ok=True)
        user = ""
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chmod(self.dir, 0o755)
            for sub in ("run", "db"):
                os.chown(self.dir / sub, nobody.pw_uid, nobody.pw_gid)
            for f in self.dir.iterdir():
                if f.is_file():
                    os.chmod(f, 0o644)
            user = "    user: nobody:nogroup\n"
        conf = self.dir / "knot.conf"
        conf.write_text(
            "server:\n"
            "    listen: %s@%d\n"
            "    rundir: %s\n%s"
            "database:\n"
            "    storage: %s\n"
            "log:\n"
            "  - target: stderr\n"
            "    any: warning\n"
            "template:\n"
            "  - id: default\n"
            "    storage: %s\n"
            "    semantic-checks: off\n"
            "    zonefile-sync: -1\n"
            "    zonefile-load: whole\n"
            "    journal-content: none\n"
            "zone:\n"
            "  - domain: %s\n    file: parent.zone.signed\n"
            "  - domain: insecure.%s\n    file: insecure.zone\n"
            "  - domain: bogus.%s\n    file: bogus.zone.signed\n"
            "  - domain: %s\n    file: reverse.zone\n" % (
                self.address, self.port, self.dir / "run", user, self.dir / "db",
                self.dir, ZONE, ZONE, ZONE, REVERSE) +
            "".join("  - domain: %s\n    file: extra-%s.zone\n" % (n, n)
                    for n in self.extra_zones))
        self.log = open(self.dir / "knotd.log", "wb")
        self.proc = subprocess.Popen(["knotd", "-c", str(conf)],
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        try:
            H.wait_for(self._answers, timeout=self.START_TIMEOUT,
                       what="knotd answering SOA %s" % ZONE)
        except Exception:
            self.stop()
            raise
        return self

    def _answers(self):
        import dnslib
        if self.proc.poll() is not None:
            raise RuntimeError("knotd exited: %s" % (
                self.dir / "knotd.log").read_text())
        q = dnslib.DNSRecord.question("bogus." + ZONE, "SOA")
        try:
            a = dnslib.DNSRecord.parse(q.send(self.address, self.port,
                                              timeout=0.5))
        except (socket.timeout, OSError):
            return False
        return a.header.rcode == 0 and len(a.rr) > 0

    def stop(self):
        if self.proc is None:
            if self.own_tmp:
                shutil.rmtree(self.dir, ignore_errors=True)
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self.log.close()
        if self.own_tmp:
            try:
                shutil.copy(self.dir / "knotd.log",
                            self.folder / "knotd.log")
            finally:
                shutil.rmtree(self.dir, ignore_errors=True)


class FaultServer:
    def __init__(self, zone="fault.test"):
        self.zone = zone
        self.port = None
        self.servers = []
        self.queries = []	# (protocol, name) seen, for the tests

    def start(self):
        import dnslib
        from dnslib.server import DNSServer, DNSLogger

        outer = self

        class Resolver:
            def resolve(self, request, handler):
                name = str(request.q.qname).rstrip(".").lower()
                outer.queries.append((handler.protocol, name))
                reply = request.reply()
                if not (name == outer.zone or
                        name.endswith("." + outer.zone)):
                    reply.header.rcode = dnslib.RCODE.REFUSED
                    return reply
                first = name.split(".")[0]
                if first == "servfail":
                    reply.header.rcode = dnslib.RCODE.SERVFAIL
                elif first == "timeout":
                    raise dnslib.DNSError("dropped on purpose")
                elif first == "tc" and handler.protocol == "udp":
                    reply.header.tc = 1
                elif first == "tc" and request.q.qtype == dnslib.QTYPE.A:
                    reply.add_answer(dnslib.RR(
                        name, dnslib.QTYPE.A, ttl=60,
                        rdata=dnslib.A("192.0.2.99")))
                return reply

        quiet = DNSLogger(log="-recv,-send,-request,-reply,-truncated,"
                          "-error,-data", logf=lambda s: None)
        for _ in range(20):
            port = H.free_port()
            udp = tcp = None
            try:
                udp = DNSServer(Resolver(), port=port, address="127.0.0.1",
                                logger=quiet)
                tcp = DNSServer(Resolver(), port=port, address="127.0.0.1",
                                tcp=True, logger=quiet)
            except OSError:
                if udp is not None:
                    udp.server.server_close()
                continue
            break
        else:
            raise RuntimeError("no free port for the fault server")
        self.port = port
        self.servers = [udp, tcp]
        for s in self.servers:
            s.start_thread()
        return self

    def stop(self):
        for s in self.servers:
            s.stop()
            s.server.server_close()
        self.servers = []


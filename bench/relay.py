"""
relay - the relay and submission side of bench/run: mail from mynetworks
(or from a logged-in user) relayed to remote MXs, herald against a private
Postfix (t/interop/postfix.py), with Postfix's smtp-sink as every MX.

Workloads (names as bench/run --only takes them):

  relay1     10,000 messages of 4 KB from mynetworks (smtp-source, 20
             sessions, connections reused) to bench@d0.test
  relay20    the same spread over 20 destination domains d0..d19.test
             (20 smtp-source processes of 1 session and 500 messages each)
  submit     herald alone: 10,000 messages of 4 KB submitted with AUTH
             PLAIN over implicit TLS (port 465), 10 sessions that log in
             once and send 1,000 messages each, to bench@d0.test (the
             user's hourly caps, submission_message_rate_limit and
             submission_recipient_rate_limit, set to 0: no limit); the
             client is Python's smtplib in 2 processes on the same cores

Every destination domain has an MX (mx.dN.test) whose A record is the
sink's address, served by knotd (t/integration/dnsserver.py), which both
servers ask: herald through dns_stub_zones, Postfix through its system
resolver, started in a private mount namespace whose /etc/resolv.conf
names knotd on port 53 of a loopback address of its own (so as root
only). The sink is `smtp-sink -c` (from the postfix package; one
process, PIPELINING, answers 250 to everything); its counters give the
messages and the sessions it saw.

Columns: herald with its own defaults (mynetworks added); Postfix with its
defaults (permit_mynetworks); Postfix tuned as its TUNING_README and
postconf(5) say for a high-volume relay: default_destination_concurrency
_limit = 50 (default 20: the most parallel deliveries to one domain),
initial_destination_concurrency = 20 (default 5) and default_process_limit
= 200 (default 100). Durability is the same: both fsync a queue file
before they answer 250 to DATA (Postfix's cleanup fsyncs by default,
herald's smtpd group-commits), and both keep the message until the MX
said 250.

Each run (each server, each repetition) has its queue and everything else
on a fresh ext4 with a journal, made on a sparse image and loop-mounted
(FreshFS; as root): this machine's / is ext4 without a journal, on which
run after run got slower for both servers.

Figures per run: msgs/s end to end (from the first injection until the
sink counted the last message), injected msgs/s (until the last
smtp-source had its last 250; submit: the same as end to end), CPU ms per message (user + system time of
all the server's processes, children included, from /proc:
benchlib.tree_cpu_seconds), the sessions (TCP connections) the sink saw.
Results go to bench/results/relay-<date>-<time>.md.
"""
import datetime
import multiprocessing as mp
import os
import platform
import re
import shutil
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib as B
import dnsserver as D
import herald as H

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "t", "interop"))
import postfix as P  # noqa: E402

RELAY_WORKLOADS = ["relay1", "relay20", "submit"]
SINK_ADDR = "127.0.0.9"
MESSAGES = 10000
SIZE = 4096
SESSIONS = 20
SUBMIT_SESSIONS = 10
SUBMIT_PASSWORD = "bench-submit-password"
SPOOL_FS_BYTES = 4 << 30	# sparse; 10,000 x 4 KB fit many times
NO_PROGRESS = int(os.environ.get("HERALD_BENCH_NO_PROGRESS", "60"))	# seconds without a new message at the sink: give up
TUNED = {"default_destination_concurrency_limit": "50",
         "initial_destination_concurrency": "20",
         "default_process_limit": "200"}


def log(text):
    print(text, flush=True)


def domains(n):
    return ["d%d.test" % i for i in range(n)]


# ---------------------------------------------------------------- sink


class Sink:
    """smtp-sink -c on SINK_ADDR:port; its counters are read from its
    output (sess=N quit=N mesg=N, one update per event)."""

    def __init__(self, folder, port, source):
        self.out = Path(folder) / "sink.out"
        self.port = port
        self.proc = None
        # beside smtp-source: installed, or taken out of the package
        self.exe = os.path.join(os.path.dirname(source[0]), "smtp-sink")
        self.env = source[1]

    def start(self):
        self.fh = open(self.out, "wb")
        self.proc = subprocess.Popen(
            [self.exe, "-c", "-m", "1000", "-u", "nobody",
             "%s:%d" % (SINK_ADDR, self.port), "1000"],
            stdout=self.fh, stderr=subprocess.STDOUT, env=self.env)
        H.wait_for(lambda: not nothing_listens(SINK_ADDR, self.port), 10,
                   what="smtp-sink listening")
        return self

    def counters(self):
        """(sessions ended, messages)"""
        try:
            with open(self.out, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 200))
                tail = f.read().decode(errors="replace")
        except OSError:
            return 0, 0
        m = re.findall(r"sess=(\d+) quit=\d+ mesg=(\d+)", tail)
        if not m:
            return 0, 0
        return int(m[-1][0]), int(m[-1][1])

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
            self.fh.close()


def nothing_listens(addr, port):
    import socket
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect((addr, port))
            return False
        except OSError:
            return True


# ---------------------------------------------------------------- servers


class HeraldRelay:
    name = "herald"

    def __init__(self, root, dns, sink_port, zones):
        self.root, self.dns, self.sink_port = root, dns, sink_port
        self.zones = zones
        self.inst = None

    def start(self, base):
        d = tempfile.mkdtemp(prefix="herald-relay-", dir=base)
        # herald's own defaults for pools and concurrency (the test
        # harness's small pools taken out, as bench/run does)
        conf = dict(
            submission=True, smtpd_workers=None, local_processes=None,
            remote_processes=None, smtpd_client_limit=1000,
            smtpd_client_transaction_limit=1000,
            mynetworks="127.0.0.0/8", smtp_port=self.sink_port,
            inet_protocols="ipv4",
            dns_stub_zones=",".join("%s=%s@%d" % (z, self.dns.address,
                                                  self.dns.port)
                                    for z in self.zones),
            dns_trust_anchor_file="", dns_timeout="3s",
            # submit is one bulk account: no hourly cap (default 200
            # messages, 1,000 recipients)
            submission_message_rate_limit=0,
            submission_recipient_rate_limit=0)
        # HERALD_BENCH_SET="name=value,...": experiments, as in bench/run
        conf.update(kv.split("=", 1) for kv in filter(
            None, os.environ.get("HERALD_BENCH_SET", "").split(",")))
        self.inst = H.HeraldInstance(d, **conf)
        self.inst.add_domain("example.test")
        self.inst.add_user("submit@example.test", SUBMIT_PASSWORD)
        self.inst.start()
        return self

    def root_pid(self):
        return self.inst.master_pid

    def inject(self):
        return "127.0.0.1", self.inst.port

    def log_tail(self):
        return self.inst.log_tail(30)

    def stop(self):
        if self.inst is not None:
            self.inst.stop()
            shutil.rmtree(self.inst.dir, ignore_errors=True)
            self.inst = None


class PostfixRelay:
    def __init__(self, root, dns, sink_port, tuned):
        self.name = "postfix-tuned" if tuned else "postfix"
        self.root, self.dns, self.sink_port = root, dns, sink_port
        self.tuned = tuned
        self.pf = None

    def start(self, base):
        d = Path(tempfile.mkdtemp(prefix="pf-", dir=base))
        os.chmod(d, 0o755)	# Postfix's own users traverse it
        (d / "resolv.conf").write_text("nameserver %s\n" % self.dns.address)
        self.port = H.free_port()
        main = {
            "myhostname": "bench.relay.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "inet_interfaces": "127.0.0.1",
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            "smtp_tcp_port": str(self.sink_port),
            "smtp_host_lookup": "dns",
        }
        if self.tuned:
            main.update(TUNED)
        self.pf = P.PrivatePostfix(d, ["127.0.0.1:%d" % self.port], main,
                                   resolv_conf=d / "resolv.conf")
        self.pf.start()
        H.wait_for(lambda: not nothing_listens("127.0.0.1", self.port), 20,
                   what="postfix listening")
        return self

    def root_pid(self):
        return self.pf.master_pid()

    def inject(self):
        return "127.0.0.1", self.port

    def log_tail(self):
        return self.pf.log_tail(30)

    def stop(self):
        if self.pf is not None:
            self.pf.stop()
            P.remove_dir(self.pf.dir)
            self.pf = None


# ---------------------------------------------------------------- load


def smtp_source_cmds(source, addr, ndomains):
    host = "%s:%d" % addr
    base = [source, "-d", "-l", str(SIZE), "-f", "sender@example.org",
            "-M", "client.example.org"]
    if ndomains == 1:
        return [base + ["-s", str(SESSIONS), "-m", str(MESSAGES),
                        "-t", "bench@d0.test", host]]
    per = MESSAGES // ndomains
    return [base + ["-s", "1", "-m", str(per), "-t", "bench@%s" % d, host]
            for d in domains(ndomains)]


def _submit_proc(port, count, threads, go, results):
    """threads sessions over implicit TLS, each AUTH PLAIN once, then
    count messages each."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    body = ("From: submit@example.test\r\nTo: bench@d0.test\r\n"
            "Subject: bench\r\n\r\n" + ("x" * 70 + "\r\n") *
            (SIZE // 72)).encode()
    errors = []

    def run():
        try:
            with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx,
                                  timeout=120) as s:
                s.ehlo("client.example.org")
                s.user, s.password = "submit@example.test", SUBMIT_PASSWORD
                s.auth("PLAIN", s.auth_plain)
                for _ in range(count):
                    s.sendmail("submit@example.test", ["bench@d0.test"],
                               body)
        except (OSError, smtplib.SMTPException) as e:
            errors.append(repr(e))
    go.wait()
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    results.put(errors)


def submit_start(port):
    """SUBMIT_SESSIONS sessions in 2 client processes; returns a joiner
    that gives the errors."""
    ctx = mp.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    per = MESSAGES // SUBMIT_SESSIONS
    procs = [ctx.Process(target=_submit_proc, args=(
        port, per, SUBMIT_SESSIONS // 2, go, results), daemon=True)
        for _ in range(2)]
    for p in procs:
        p.start()
    go.set()

    def join():
        errors = []
        for _ in procs:
            errors += results.get(timeout=3600)
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        return errors
    return join


class FreshFS:
    """A new ext4 with its journal (mkfs on a sparse image, loop mount)
    for one server's run, so that every run starts on the same kind of
    file system as a mail server's spool, and none inherits the freed
    inodes of the runs before it: this machine's / is ext4 without a
    journal, where ext4 does not reuse an inode freed in the last 60-360
    s and every new file scans past them; run after run, both servers got
    slower (relay-20261207-0315.md). Without root: a folder under
    parent, as before."""

    def __init__(self, parent):
        self.parent = Path(parent)
        self.dir = self.image = None
        self.mounted = False

    def __enter__(self):
        if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
            self.dir = Path(tempfile.mkdtemp(prefix="spool-",
                                             dir=self.parent))
            os.chmod(self.dir, 0o755)
            return self.dir
        # mounted at a short path: Postfix's UNIX sockets (sun_path, 108
        # bytes) live below it
        self.dir = Path(tempfile.mkdtemp(prefix="hb-", dir="/tmp"))
        self.image = self.parent / (self.dir.name + ".img")
        with open(self.image, "wb") as f:
            f.truncate(SPOOL_FS_BYTES)
        # inode tables and journal written now, not by a kernel thread
        # during the run
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E",
                        "lazy_itable_init=0,lazy_journal_init=0",
                        str(self.image)], check=True, timeout=300)
        subprocess.run(["mount", "-o", "loop", str(self.image),
                        str(self.dir)], check=True, timeout=60)
        self.mounted = True
        os.chmod(self.dir, 0o755)
        return self.dir

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", str(self.dir)], timeout=120)
        if self.image is not None:
            self.image.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(server, sink, source, workload):
    """One run: (msgs/s, CPU ms per message, sink sessions), the server's
    files on a FreshFS."""
    with FreshFS(server.root) as base:
        return measure_on(server, sink, source, workload, base)


def measure_on(server, sink, source, workload, base):
    server.start(base)
    try:
        root = server.root_pid()
        cpu0 = B.tree_cpu_seconds(root)
        _, seen0 = sink.counters()
        t0 = time.monotonic()
        if workload == "submit":
            join = submit_start(server.inst.submissions_port)
            srcs = []
        else:
            ndom = 20 if workload == "relay20" else 1
            srcs = [subprocess.Popen(c, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     env=source[1])
                    for c in smtp_source_cmds(source[0], server.inject(),
                                              ndom)]
        done = injected = None
        last, last_change = -1, t0
        while time.monotonic() - last_change < NO_PROGRESS:
            n = sink.counters()[1] - seen0
            if injected is None and srcs and all(
                    s.poll() is not None for s in srcs):
                injected = time.monotonic()
            if n >= MESSAGES:
                done = time.monotonic()
                break
            if n != last:
                last, last_change = n, time.monotonic()
            if any(s.poll() not in (None, 0) for s in srcs):
                break
            time.sleep(0.05)
        cpu1 = B.tree_cpu_seconds(root)
        errs = []
        for s in srcs:
            try:
                s.wait(30)
            except subprocess.TimeoutExpired:
                s.kill()
                s.wait(10)
            if s.returncode:
                errs.append(s.stderr.read().strip()[-300:])
        if workload == "submit":
            errs += join()
        if done is None:
            raise RuntimeError("%s %s: the sink got %d of %d (%s); "
                               "log:\n%s" % (
                                   server.name, workload,
                                   sink.counters()[1] - seen0, MESSAGES,
                                   "; ".join(errs), server.log_tail()))
    finally:
        server.stop()
    time.sleep(0.5)	# the sink counts a session when it ends
    # injection done: the last 250 to DATA (the sink had it all by then
    # if it came first)
    return (MESSAGES / (done - t0), (cpu1 - cpu0) * 1000 / MESSAGES,
            sink.counters()[0], MESSAGES / ((injected or done) - t0))


# ---------------------------------------------------------------- driver


def run_workloads(only, root, reps, source, cmd, herald_only,
                  messages=MESSAGES):
    """Each relay workload against herald and both Postfix columns (the
    submit workload herald alone); writes the results file. messages:
    per run (bench/run --quick: 1,000)."""
    global MESSAGES
    MESSAGES = messages
    if os.geteuid() != 0 and not herald_only:
        raise RuntimeError("relay workloads against Postfix need root "
                           "(its resolver reads knotd on port 53)")
    load0 = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="relay-", dir=root))
    os.chmod(folder, 0o755)
    zones = domains(20)
    root53 = os.geteuid() == 0
    dns = D.KnotZones(folder, address="127.0.53.%d" % (os.getpid() % 200 + 20)
                      if root53 else "127.0.0.1",
                      port=53 if root53 else None,
                      extra_zones={z: "@ MX 10 mx\nmx A %s\n" % SINK_ADDR
                                   for z in zones})
    sink_port = H.free_port(SINK_ADDR)
    rows = []
    try:
        dns.start()
        servers = [HeraldRelay(folder, dns, sink_port, zones)]
        if not herald_only:
            servers += [PostfixRelay(folder, dns, sink_port, False),
                        PostfixRelay(folder, dns, sink_port, True)]
        for w in only:
            for srv in servers:
                if w == "submit" and srv.name != "herald":
                    continue
                runs = []
                for rep in range(reps):
                    sink = Sink(folder, sink_port, source).start()
                    try:
                        r = measure(srv, sink, source, w)
                    finally:
                        sink.stop()
                    log("%s %s run %d: %.0f msgs/s, %.3f ms CPU/msg, "
                        "%d sink sessions, injected at %.0f msgs/s"
                        % (w, srv.name, rep + 1, *r))
                    runs.append(r)
                rows.append((w, srv.name) + tuple(
                    statistics.median(x[i] for x in runs)
                    for i in range(4)))
    finally:
        dns.stop()
        shutil.rmtree(folder, ignore_errors=True)
    report(rows, reps, cmd, (load0, os.getloadavg()[0]))
    return rows


def report(rows, reps, cmd, load):
    base = {(w, "postfix"): (r, c) for w, n, r, c, _, _ in rows
            if n == "postfix"}
    lines = ["| workload | server | msgs/s | CPU ms/msg | sink sessions | "
             "injected msgs/s | throughput vs Postfix | CPU vs Postfix |",
             "|" + " --- |" * 8]
    for w, n, rate, cpu, sess, inj in rows:
        b = base.get((w, "postfix"))
        lines.append("| %s | %s | %.0f | %.3f | %d | %.0f | %s | %s |" % (
            w, n, rate, cpu, sess, inj,
            "%.2fx" % (rate / b[0]) if b else "-",
            "%.2fx" % (cpu / b[1]) if b and b[1] else "-"))
    herald_version = subprocess.run(
        [str(H.binpath("heraldctl")), "--version"], stdout=subprocess.PIPE,
        text=True).stdout.strip()
    now = datetime.datetime.utcnow()
    text = "\n".join([
        "# bench/run relay workloads - %s" % now.strftime(
            "%Y-%m-%d %H:%M UTC"),
        "",
        "Machine: %s, %d CPUs, %s" % (platform.node(), os.cpu_count(),
                                     platform.platform()),
        "Versions: %s, postfix %s" % (herald_version, P.version()),
        "Command: `%s` (medians of %d repetition%s)" % (
            cmd, reps, "" if reps == 1 else "s"),
        "Load average (1 min) at start and end: %.1f, %.1f (other work "
        "on the machine shares its cores and disk)" % load,
        "",
        "%d messages of %d bytes; relay1/relay20: from mynetworks over "
        "%d smtp-source sessions to 1 or 20 domains; submit: herald "
        "alone, AUTH PLAIN over implicit TLS, %d sessions reused. "
        "Sink: smtp-sink -c (every MX through knotd). Both servers fsync "
        "their queue file before 250; each run's queue is on a fresh "
        "ext4 with a journal (loop device; as root). CPU: user + "
        "system of the "
        "server's process tree from /proc, reaped children included. "
        "postfix-tuned: %s." % (
            MESSAGES, SIZE, SESSIONS, SUBMIT_SESSIONS,
            ", ".join("%s = %s" % kv for kv in TUNED.items())),
        "",
    ] + lines) + "\n"
    print("\n" + text)
    out = os.path.join(REPO, "bench", "results", "relay-%s.md" %
                       now.strftime("%Y%m%d-%H%M"))
    with open(out, "w") as f:
        f.write(text)
    print("written to %s" % os.path.relpath(out, REPO))

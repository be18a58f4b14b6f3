"""
mailbench - the IMAP and POP3 side of bench/run: Dovecot in its default
and its high-performance configuration, herald's pop3d and imapd, and
bench/mailload (the C load generator in this folder) driving them.

Workloads (names as bench/run --only takes them):

  pop3            100 users x 100 messages of 4 KB drained (USER/PASS,
                  STAT, LIST, UIDL, RETR all, DELE all, QUIT) over 10
                  sessions
  imap-mixed10    mixed IMAP load over 100 users (100 messages of 4 KB
  imap-mixed50    each), 10 or 50 sessions, 60 s: LOGIN, SELECT, FETCH,
                  STORE, SEARCH, APPEND, STORE, EXPUNGE, LOGOUT per
                  session, commands/s per kind
  imap-bigfolder  SELECT and UID FETCH 1:* (FLAGS) of a 100,000-message
                  INBOX: cold (server just started, no index files, page
                  cache dropped) and warm (the next 5 rounds)
  imap-idle       N sessions (--idle-sessions, default 1000) over 100
  imap-idle-tls   users in IDLE (plain, or implicit TLS): the server's
                  summed PSS before and with them, per session, and the
                  time from delivery to each session's untagged EXISTS

Dovecot columns: "default" is Dovecot's own defaults except what the
workload cannot run without (plaintext auth on loopback, user/IP and
process limits raised to the session count); "high-performance" adds
Dovecot's documented high-performance login mode (service_count = 0,
process_min_avail = cores, vsz_limit = 1G for imap-login and pop3-login),
reused imap/pop3 processes (service_count = 0, process_min_avail =
cores) and its documented auth tuning: an authentication cache
(auth_cache_size = 10M, auth_cache_ttl's default 1 hour) with password
hashes checked by auth-worker processes on every core
(auth_cache_verify_password_with_worker = yes; doc.dovecot.org, 2.3 core
settings). herald's IMAP column is measured only when its imapd answers
SELECT; otherwise the rows say n/a and why.
"""
import datetime
import os
import platform
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import time

import benchlib as B
import herald as H

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
MAILLOAD = os.path.join(BENCH, "mailload")
PASSWORD = "bench-password"
DOMAIN = "example.test"
# Dovecot's listeners; HERALD_BENCH_DOVECOT_PORTS=pop3,imap,imaps moves
# them, so that two bench runs on one machine do not take each other's
DC_POP3_PORT, DC_IMAP_PORT, DC_IMAPS_PORT = (
    int(p) for p in os.environ.get("HERALD_BENCH_DOVECOT_PORTS",
                                   "2111,2143,2993").split(","))
IMAP_WORKLOADS = ["imap-mixed10", "imap-mixed50", "imap-bigfolder",
                  "imap-idle", "imap-idle-tls"]
MODES = ("default", "high-performance")
INOTIFY = "/proc/sys/fs/inotify/max_user_instances"


def log(text):
    print(text, flush=True)


def users(n=100):
    return ["u%03d@%s" % (i, DOMAIN) for i in range(n)]


def build_mailload():
    """make -C bench mailload (warning-free under the project's flags)."""
    r = subprocess.run(["make", "-s", "-C", BENCH, "mailload"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("building bench/mailload failed:\n" + r.stdout)
    return MAILLOAD


def parse_mailload(text):
    """{kind: {count, rate, p50_ms, p99_ms, errors}}, plus "total" and
    the "ready"/"delivered" lines of the idle workload as strings."""
    out = {"kinds": {}, "lines": []}
    for line in text.splitlines():
        if line.startswith("kind="):
            f = dict(kv.split("=", 1) for kv in line.split())
            kind = f.pop("kind")
            out["kinds"][kind] = {k: float(v) for k, v in f.items()}
        elif line.startswith("total "):
            out["total"] = {k: float(v) for k, v in
                            (kv.split("=", 1) for kv in line.split()[1:])}
        else:
            out["lines"].append(line)
    return out


def mailload(args, limit, on_ready=None):
    """Run mailload with args, killed after limit seconds; parsed output.
    on_ready() is called when the idle workload prints its ready line."""
    cmd = [MAILLOAD] + [str(a) for a in args]
    log("  " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    ready = None
    t_end = time.monotonic() + limit
    try:
        for line in p.stdout:
            lines.append(line)
            if line.startswith("ready ") and on_ready is not None:
                ready = on_ready()
            if time.monotonic() > t_end:
                break
        p.wait(max(1, t_end - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    err = p.stderr.read()
    res = parse_mailload("".join(lines))
    res["stderr"] = err.strip()
    res["ready"] = ready
    res["rc"] = p.returncode
    if err.strip():
        log("  mailload: " + err.strip().replace("\n", "\n  mailload: ")[
            :2000])
    return res


# ---------------------------------------------------------------- Dovecot


class Dovecot:
    """Dovecot (imap and pop3) from a config of our own (dovecot -c), in
    the foreground, Maildirs under root/dovecot-mail owned by nobody,
    passwd-file with the same yescrypt hashes as herald."""

    def __init__(self, root, mode, hash_of):
        self.root = root
        self.mode = mode
        self.name = "dovecot " + mode
        self.hash_of = hash_of
        self.base = os.path.join(root, "dovecot-mail")
        self.proc = None
        self.cpu = None

    def pki(self):
        key = os.path.join(self.root, "dovecot.key")
        cert = os.path.join(self.root, "dovecot.crt")
        if not os.path.exists(cert):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-sha256", "-days", "2", "-subj",
                            "/CN=bench.example.test", "-keyout", key,
                            "-out", cert], check=True, timeout=60,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return key, cert

    def start(self, names, sessions=100):
        """Fresh Maildirs and config for names; not running yet."""
        nobody = pwd.getpwnam("nobody")
        shutil.rmtree(self.base, ignore_errors=True)
        os.makedirs(self.base)
        os.chown(self.base, nobody.pw_uid, nobody.pw_gid)
        passwd = os.path.join(self.root, "dovecot-passwd")
        with open(passwd, "w") as f:
            for u in names:
                f.write("%s:{CRYPT}%s\n" % (u, self.hash_of(PASSWORD)))
        key, cert = self.pki()
        self.conf = os.path.join(self.root, "dovecot.conf")
        rundir = os.path.join(self.root, "dovecot-run")
        os.makedirs(rundir, exist_ok=True)
        # what every column needs to run the workload at all
        limit = max(1000, sessions + 200)
        text = """# written by herald's bench/run (%(mode)s)
protocols = imap pop3
listen = 127.0.0.1
base_dir = %(run)s
state_dir = %(run)s/state
log_path = %(root)s/dovecot.log
ssl = yes
ssl_cert = <%(cert)s
ssl_key = <%(key)s
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:%(base)s/%%d/%%n
mail_max_userip_connections = %(limit)d
# imap and pop3 have their own process_limit (1024), set below: with
# only this one Dovecot dropped every session past the 1,024th
%(auth_hp)sdefault_process_limit = %(limit)d
default_client_limit = %(climit)d
passdb {
  driver = passwd-file
  args = username_format=%%u %(passwd)s
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(gid)d home=%(base)s/%%d/%%n
}
service pop3-login {
  inet_listener pop3 {
    port = %(pop3)d
  }
  inet_listener pop3s {
    port = 0
  }
%(login_hp)s}
service imap-login {
  inet_listener imap {
    port = %(imap)d
  }
  inet_listener imaps {
    port = %(imaps)d
    ssl = yes
  }
%(login_hp)s}
service imap {
  process_limit = %(limit)d
%(mail_hp)s}
service pop3 {
  process_limit = %(limit)d
%(mail_hp)s}
"""
        cores = os.cpu_count() or 1
        hp = self.mode == "high-performance"
        login_hp = ("  service_count = 0\n  process_min_avail = %d\n"
                    "  vsz_limit = 1G\n" % cores) if hp else ""
        mail_hp = ("  service_count = 0\n  process_min_avail = %d\n"
                   % cores) if hp else ""
        auth_hp = ("auth_cache_size = 10M\n"
                   "auth_cache_verify_password_with_worker = yes\n"
                   ) if hp else ""
        with open(self.conf, "w") as f:
            f.write(text % {
                "mode": self.mode, "run": rundir, "root": self.root,
                "cert": cert, "key": key, "base": self.base,
                "limit": limit, "climit": 10 * limit, "passwd": passwd,
                "uid": nobody.pw_uid, "gid": nobody.pw_gid,
                "pop3": DC_POP3_PORT, "imap": DC_IMAP_PORT,
                "imaps": DC_IMAPS_PORT, "login_hp": login_hp,
                "mail_hp": mail_hp, "auth_hp": auth_hp})
        return self

    def maildir(self, addr):
        local, domain = addr.split("@")
        return os.path.join(self.base, domain, local)

    def owner(self):
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid

    def run(self):
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdin=subprocess.DEVNULL)
        H.wait_for(lambda: not port_free(DC_IMAP_PORT) and
                   not port_free(DC_POP3_PORT), 20, what="dovecot listening")
        self.cpu = B.CpuGroup("dovecot-bench-%d" % os.getpid())
        self.cpu.add_tree(self.proc.pid)
        time.sleep(0.5)		# process_min_avail processes start
        # again: what the master forked while the tree was being moved
        # (auth, the first login processes) stayed outside the group
        self.cpu.add_tree(self.proc.pid)
        return self

    def ports(self):
        return {"pop3": DC_POP3_PORT, "imap": DC_IMAP_PORT,
                "imaps": DC_IMAPS_PORT}

    def pids(self):
        return B.process_tree(self.proc.pid) if self.proc else []

    def deliver_args(self):
        return ["--maildir", self.base]

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
            H.wait_for(lambda: port_free(DC_IMAP_PORT), 30,
                       what="dovecot stopped")
        if self.cpu is not None:
            self.cpu.remove()
            self.cpu = None


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# ---------------------------------------------------------------- herald


class HeraldMail:
    """herald with pop3d and, when built, imapd listening on loopback."""

    def __init__(self, root, hash_of):
        self.root = root
        self.hash_of = hash_of
        self.name = "herald"
        self.inst = None
        self.cpu = None
        self.imap = H.have_binaries("imapd")

    def start(self, names, sessions=100):
        if self.inst is not None:
            self.stop()
        d = os.path.join(self.root, "herald-%d" % time.monotonic_ns())
        conf = dict(pop3d_workers=None, smtpd_workers=None,
                    local_processes=None,
                    pop3d_client_limit=max(1000, sessions + 100),
                    smtpd_client_limit=1000)
        if self.imap:
            self.imap_port = H.free_port()
            self.imaps_port = H.free_port()
            conf["imap_listen"] = "127.0.0.1:%d" % self.imap_port
            conf["imaps_listen"] = "127.0.0.1:%d" % self.imaps_port
        for kv in filter(None, os.environ.get("HERALD_BENCH_SET",
                                              "").split(",")):
            k, v = kv.split("=", 1)
            conf[k] = v
        self.inst = H.HeraldInstance(d, **conf)
        self.inst.add_domain(DOMAIN)
        self.inst.ctl_ok("user", "import", "-", timeout=600, input="".join(
            "%s:{CRYPT}%s\n" % (u, self.hash_of(PASSWORD)) for u in names))
        return self

    def maildir(self, addr):
        local, domain = addr.split("@")
        return str(self.inst.maildir(local, domain))

    def owner(self):
        return (-1, -1)

    def run(self):
        self.inst.start()
        self.cpu = B.CpuGroup("herald-bench-%d" % os.getpid())
        self.cpu.add_tree(self.inst.master_pid)
        time.sleep(0.2)
        self.cpu.add_tree(self.inst.master_pid)	# forked meanwhile
        return self

    def ports(self):
        p = {"pop3": self.inst.pop3_port}
        if self.imap:
            p.update(imap=self.imap_port, imaps=self.imaps_port)
        return p

    def pids(self):
        return self.inst.our_pids()

    def deliver_args(self):
        return ["--smtp", "127.0.0.1:%d" % self.inst.port]

    def imap_missing(self):
        """None when imapd can be measured, else why not."""
        if not self.imap:
            return "no imapd built in %s" % H.HERALD_BIN
        try:
            with socket.create_connection(
                    ("127.0.0.1", self.imap_port), timeout=10) as s:
                f = s.makefile("rwb")
                f.readline()
                f.write(b'a LOGIN "u000@example.test" "%s"\r\n'
                        b"b SELECT INBOX\r\nc LOGOUT\r\n" % PASSWORD.encode())
                f.flush()
                tagged = {}
                while len(tagged) < 3:
                    line = f.readline()
                    if not line:
                        break
                    if line[:2] in (b"a ", b"b ", b"c "):
                        tagged[line[:1]] = line.split()[1].upper()
        except OSError as e:
            return "imapd does not answer (%s)" % e
        if tagged.get(b"a") != b"OK":
            return "imapd refused LOGIN"
        if tagged.get(b"b") != b"OK":
            return "imapd has no SELECT yet"
        return None

    def stop(self):
        if self.inst is not None:
            self.inst.stop()
            shutil.rmtree(self.inst.dir, ignore_errors=True)
            self.inst = None
        if self.cpu is not None:
            self.cpu.remove()
            self.cpu = None


# ---------------------------------------------------------------- helpers


def pss_mb(server):
    return sum(B.pss_kb(p) for p in server.pids()) / 1024.0


def drop_caches():
    """Page cache out, so a cold run reads the Maildir from disk."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        pass


def fill(server, names, count, size):
    for u in names:
        B.fill_maildir(server.maildir(u), u, count, size, *server.owner())


def check_errors(res, what):
    errs = res.get("total", {}).get("errors")
    if errs is None:
        raise RuntimeError("%s: mailload gave no result (rc %s): %s" % (
            what, res["rc"], res["stderr"][-500:]))
    return int(errs)


# ---------------------------------------------------------------- workloads


def run_pop3(server):
    names = users()
    server.start(names)
    fill(server, names, 100, 4096)
    server.run()
    sampler = B.MemSampler(server.pids)
    sampler.start()
    cpu0 = server.cpu.usage() if server.cpu else None
    try:
        res = mailload(["-w", "pop3", "-c", 10, "-u", 100, "-t", 600,
                        "-p", server.ports()["pop3"]], 660)
    finally:
        sampler.stop()
    cpu1 = server.cpu.usage() if server.cpu else None
    left = B.maildir_count([server.maildir(u) for u in names])
    server.stop()
    errs = check_errors(res, "pop3 " + server.name)
    retr = res["kinds"].get("RETR", {})
    secs = res["total"]["elapsed"]
    msgs = retr.get("count", 0)
    return {"msgs/s": msgs / secs, "logins/s": res["kinds"].get(
        "LOGIN", {}).get("count", 0) / secs,
        "LOGIN p50 ms": res["kinds"].get("LOGIN", {}).get("p50_ms"),
        "LOGIN p99 ms": res["kinds"].get("LOGIN", {}).get("p99_ms"),
        "RETR p50 ms": retr.get("p50_ms"), "RETR p99 ms": retr.get("p99_ms"),
        "CPU ms/msg": (cpu1 - cpu0) * 1000 / msgs if cpu0 is not None and
        msgs else None, "peak MB": sampler.peak_kb / 1024,
        "errors": errs + (1 if left else 0), "left": left}


def run_mixed(server, clients, seconds):
    names = users()
    server.start(names, clients)
    fill(server, names, 100, 4096)
    server.run()
    sampler = B.MemSampler(server.pids)
    sampler.start()
    cpu0 = server.cpu.usage() if server.cpu else None
    try:
        # at most 40 sessions per source address, as imap-idle: the
        # shipped imapd_client_limit (50 per address) holds at 50 clients
        res = mailload(["-w", "mixed", "-c", clients, "-u", 100,
                        "-t", seconds, "--sources", (clients + 39) // 40,
                        "-p", server.ports()["imap"]],
                       seconds + 120)
    finally:
        sampler.stop()
    cpu1 = server.cpu.usage() if server.cpu else None
    server.stop()
    errs = check_errors(res, "mixed " + server.name)
    out = {"errors": errs, "peak MB": sampler.peak_kb / 1024,
           "commands/s": res["total"]["rate"],
           "CPU ms/command": (cpu1 - cpu0) * 1000 / res["total"]["commands"]
           if cpu0 is not None and res["total"]["commands"] else None}
    for kind in ("LOGIN", "SELECT", "FETCH", "STORE", "SEARCH", "APPEND",
                 "EXPUNGE", "LOGOUT"):
        k = res["kinds"].get(kind, {})
        out[kind + "/s"] = k.get("rate")
        out[kind + " p50/p99 ms"] = "%.1f / %.1f" % (
            k["p50_ms"], k["p99_ms"]) if k else None
    return out


def run_bigfolder(server, messages, rounds):
    names = users(1)
    server.start(names)
    t0 = time.monotonic()
    fill(server, names, messages, 1024)
    log("  %d messages written in %.0f s" % (messages,
                                              time.monotonic() - t0))
    drop_caches()
    server.run()
    port = server.ports()["imap"]
    cold = mailload(["-w", "bigfolder", "-c", 1, "-u", 1, "-n", 1,
                     "-t", 600, "--timeout", 600, "-p", port], 660)
    warm = mailload(["-w", "bigfolder", "-c", 1, "-u", 1, "-n", rounds,
                     "-t", 600, "--timeout", 600, "-p", port], 660)
    mem = pss_mb(server)
    server.stop()
    errs = check_errors(cold, "bigfolder cold") + check_errors(
        warm, "bigfolder warm")

    def ms(res, kind):
        return res["kinds"].get(kind, {}).get("p50_ms")
    return {"SELECT cold ms": ms(cold, "SELECT"),
            "UID FETCH 1:* cold ms": ms(cold, "FETCH"),
            "SELECT warm ms": ms(warm, "SELECT"),
            "UID FETCH 1:* warm ms": ms(warm, "FETCH"),
            "server MB after": mem, "errors": errs}


def run_idle(server, sessions, tls):
    names = users()
    server.start(names, sessions)
    fill(server, names, 0, 0)
    server.run()
    time.sleep(1)
    base = pss_mb(server)
    samples = []

    def on_ready():
        for _ in range(5):
            samples.append(pss_mb(server))
            time.sleep(0.4)
        return max(samples)
    ports = server.ports()
    # 40 sessions per loopback source address at most: herald's shipped
    # imapd_client_limit (50 per address) holds, as it would for 10,000
    # users behind their own addresses; Dovecot gets the same spread
    args = ["-w", "idle", "-c", sessions, "-u", 100, "-r", 50,
            "-t", 300 + sessions // 20, "--hold", 4, "--timeout", 60,
            "--sources", min(250, (sessions + 39) // 40),
            "-p", ports["imaps"] if tls else ports["imap"]]
    if tls:
        args.append("--tls")
    res = mailload(args + server.deliver_args(), 360 + sessions // 20,
                   on_ready)
    server.stop()
    errs = check_errors(res, "idle " + server.name)
    ready = [x for x in res["lines"] if x.startswith("ready ")]
    held = int(re.search(r"sessions=(\d+)", ready[0]).group(1)) \
        if ready else 0
    ramp = float(re.search(r"ramp_s=([\d.]+)", ready[0]).group(1)) \
        if ready else None
    ex = res["kinds"].get("EXISTS", {})
    with_ = res["ready"]
    return {"sessions held": held, "ramp s": ramp,
            "server MB idle": base, "server MB with sessions": with_,
            "KiB per session": (with_ - base) * 1024 / held
            if with_ and held else None,
            "EXISTS p50 ms": ex.get("p50_ms"),
            "EXISTS p99 ms": ex.get("p99_ms"),
            "EXISTS seen": int(ex.get("count", 0)), "errors": errs}


# ---------------------------------------------------------------- report


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.1f" % v if abs(v) < 100 else "%.0f" % v
    return str(v)


def write_result(workload, columns, cmd, versions, notes):
    """bench/results/<workload>-<date>.md: one row per figure, one column
    per server (median over repetitions where there were several)."""
    keys = []
    for res in columns.values():
        if isinstance(res, dict):
            keys += [k for k in res if k not in keys]
    names = list(columns)
    lines = ["| figure | " + " | ".join(names) + " |",
             "|" + " --- |" * (len(names) + 1)]
    for k in keys:
        row = []
        for n in names:
            r = columns[n]
            row.append("n/a" if isinstance(r, str) else fmt(r.get(k)))
        lines.append("| %s | %s |" % (k, " | ".join(row)))
    load = os.getloadavg()
    stamp = datetime.datetime.utcnow()
    text = "\n".join([
        "# %s - %s" % (workload, stamp.strftime("%Y-%m-%d %H:%M UTC")),
        "",
        "Machine: %s, %d CPUs, %s; load average at the end %.2f %.2f "
        "%.2f (shared with other work: figures are noisy)" % (
            platform.node(), os.cpu_count(), platform.platform(), *load),
        "Versions: herald %s, dovecot %s, mailload (bench/mailload.c) "
        "from this tree" % (versions.get("herald", "?"),
                            versions.get("dovecot-core", "-")),
        "Command: `%s`; password hashes: %s (every server checks the "
        "same)" % (cmd, versions.get("hash", "yescrypt")),
        "",
    ] + lines + [""] + ["%s: %s" % (n, r) for n, r in columns.items()
                        if isinstance(r, str)] + notes) + "\n"
    print("\n" + text)
    out = os.path.join(BENCH, "results", "%s-%s.md" % (
        workload, stamp.strftime("%Y%m%d-%H%M")))
    with open(out, "w") as f:
        f.write(text)
    log("written to %s" % os.path.relpath(out, REPO))


def median_of(runs):
    """Per key median of the numeric values of several runs."""
    if not runs:
        return {}
    out = {}
    for k in runs[0]:
        vals = [r.get(k) for r in runs]
        nums = [v for v in vals if isinstance(v, (int, float))]
        out[k] = statistics.median(nums) if nums else vals[0]
    return out


class Inotify:
    """Dovecot's IDLE watches the Maildir with one inotify instance per
    imap process; Debian's limit of 128 per user would send all sessions
    past the 128th to 30 s polling. Raised for the run, put back after."""

    def __init__(self, want):
        self.old = None
        try:
            with open(INOTIFY) as f:
                self.old = int(f.read())
            if self.old < want:
                with open(INOTIFY, "w") as f:
                    f.write("%d\n" % want)
            else:
                self.old = None
        except (OSError, ValueError):
            self.old = None

    def restore(self):
        if self.old is not None:
            with open(INOTIFY, "w") as f:
                f.write("%d\n" % self.old)
            self.old = None


def run_workloads(only, herald, dovecots, reps, cmd, versions, args):
    """Each workload against herald and both Dovecot columns; a results
    file per workload."""
    build_mailload()
    sel = subprocess.run([MAILLOAD, "--selftest"], stdout=subprocess.PIPE,
                         text=True, timeout=60)
    if sel.returncode != 0:
        raise RuntimeError("mailload --selftest failed: " + sel.stdout)
    servers = ([herald] if herald else []) + list(dovecots)
    imap_na = None
    if herald and any(w.startswith("imap") for w in only):
        herald.start(users(1))
        herald.run()
        imap_na = herald.imap_missing()
        herald.stop()
        if imap_na:
            log("herald: n/a (%s)" % imap_na)
    ino = Inotify(max(1024, 2 * args.idle_sessions))
    try:
        for w in only:
            columns = {}
            notes = []
            for srv in servers:
                if w.startswith("imap") and srv is herald and imap_na:
                    columns[srv.name] = "n/a (%s). " % imap_na
                    continue
                runs = []
                for rep in range(reps):
                    log("%s %s run %d" % (w, srv.name, rep + 1))
                    if w == "pop3":
                        r = run_pop3(srv)
                    elif w == "imap-mixed10":
                        r = run_mixed(srv, 10, args.mixed_seconds)
                    elif w == "imap-mixed50":
                        r = run_mixed(srv, 50, args.mixed_seconds)
                    elif w == "imap-bigfolder":
                        r = run_bigfolder(srv, args.big_messages, 5)
                    elif w == "imap-idle":
                        r = run_idle(srv, args.idle_sessions, False)
                    else:
                        r = run_idle(srv, args.idle_sessions, True)
                    log("  " + ", ".join("%s %s" % (k, fmt(v))
                                         for k, v in r.items()))
                    runs.append(r)
                columns[srv.name] = median_of(runs)
            if w == "pop3":
                notes.append("100 users x 100 messages of 4 KB, 10 "
                             "sessions, bench/mailload -w pop3; medians of "
                             "%d runs." % reps)
            elif w.startswith("imap-mixed"):
                notes.append("bench/mailload -w mixed over 100 users with "
                             "100 messages of 4 KB each, %d s; per "
                             "session one each of LOGIN SELECT FETCH "
                             "(FLAGS ENVELOPE BODY.PEEK[]) SEARCH APPEND "
                             "EXPUNGE LOGOUT and two STOREs (\\Seen, then "
                             "\\Deleted on the appended message); medians "
                             "of %d runs." % (args.mixed_seconds, reps))
            elif w == "imap-bigfolder":
                notes.append("%d messages of 1 KB in INBOX. Cold: server "
                             "just started on Maildirs it never saw (no "
                             "index), page cache dropped; warm: median of "
                             "the next 5 rounds." % args.big_messages)
            else:
                notes.append("%d sessions over 100 users, ramp of 50 "
                             "logins at once; memory is the summed PSS of "
                             "the server's processes; delivery: herald by "
                             "SMTP to its smtpd, Dovecot by a file renamed "
                             "into Maildir new/. inotify max_user_instances "
                             "raised for the run." % args.idle_sessions)
            write_result(w, columns, cmd, versions, notes)
    finally:
        ino.restore()

"""
herald - support code for the integration tests: a real herald instance in
a temporary folder, and clients to talk to it.

HeraldInstance(folder, **overrides) writes herald.conf (every path relative
to folder, SMTP on a free loopback port, a CA-signed test certificate),
sets up the directory with heraldctl, starts `heraldctl start --foreground`
(which becomes master) in its own session, and stops it again, killing
whatever is left as a last resort: no process outlives a test.

Only the Python standard library is used here (pytest is only in
conftest.py and the tests).
"""
import grp
import contextlib
import json
import os
import pwd
import random
import re
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERALD_BIN = Path(os.environ.get("HERALD_BIN") or REPO / "build" / "bin")

# Crockford base32 queue ids (lib/mail/qid.h)
QID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
QID_RE = r"[0-9A-HJKMNP-TV-Z]{17}"

SPOOL_QUEUE_FOLDERS = ("incoming", "active", "deferred", "hold")

# every instance made in this process, for log reports and the last-resort
# cleanup (conftest.py)
INSTANCES = []


def binpath(name):
    """Path of a herald program."""
    return HERALD_BIN / name


def have_binaries(*names):
    names = names or ("heraldctl", "master", "authd", "smtpd", "qmgr",
                      "local", "pop3d")
    return all(os.access(binpath(n), os.X_OK) for n in names)


def faultfs_preload():
    """The LD_PRELOAD value that loads the fault-injection shim
    (t/faultfs) built beside HERALD_BIN, ASan runtime first in an ASan
    tree; None if this build has no shim."""
    f = HERALD_BIN.parent / "t" / "faultfs.preload"
    try:
        value = f.read_text().strip()
    except OSError:
        return None
    libs = value.split(":")
    if not value or not all(os.path.exists(p) for p in libs):
        return None
    return value


def faultfs_env(trace=None, fail=None, path=None, errno_name=None,
                after=None, count=None, while_file=None):
    """Environment for an instance whose services run under the faultfs
    shim (t/faultfs/faultfs.c describes each variable): fail the calls
    named in fail (e.g. "fdatasync") on path (a prefix, or exact with a
    trailing "$"), only while while_file exists, and trace to trace."""
    preload = faultfs_preload()
    if preload is None:
        raise HeraldError("no faultfs shim in %s" % (HERALD_BIN.parent / "t"))
    env = {"LD_PRELOAD": preload}
    for name, value in (("FAULTFS_TRACE", trace), ("FAULTFS_FAIL", fail),
                        ("FAULTFS_PATH", path),
                        ("FAULTFS_ERRNO", errno_name),
                        ("FAULTFS_AFTER", after), ("FAULTFS_COUNT", count),
                        ("FAULTFS_WHILE", while_file)):
        if value is not None:
            env[name] = str(value)
    return env


def faultfs_trace(path):
    """The lines of a faultfs trace as dicts (values unescaped to bytes for
    path, to and data; str for the rest), in file (= time) order."""
    out = []
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return out
    for line in raw.split(b"\n"):
        if not line:
            continue
        rec = {}
        for field in line.split(b"\t"):
            name, _, value = field.partition(b"=")
            value = value.decode("unicode_escape").encode("latin-1")
            if name in (b"path", b"to", b"data"):
                rec[name.decode()] = value
            else:
                rec[name.decode()] = value.decode(errors="replace")
        rec["ret"] = int(rec.get("ret", "0"))
        rec["pid"] = int(rec.get("pid", "0"))
        out.append(rec)
    return out


def service_identity():
    """(user, group) the services run as: root in CI, else the caller."""
    if os.geteuid() == 0:
        return "root", "root"
    return (pwd.getpwuid(os.geteuid()).pw_name,
            grp.getgrgid(os.getegid()).gr_name)


_ports_given = set()
_port_rng = random.SystemRandom()


def _port_range():
    """Ports below the kernel's ephemeral range: a port given out here is
    never taken meanwhile as the local port of some outgoing connection
    (herald's own deliveries, the tests' clients), which a port from
    bind(0) can be before the server under test binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return (10000, low - 1) if low > 12000 else None


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago on host, never the same twice in
    one test run, picked at random so that suites running side by side
    rarely meet."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    span = _port_range()
    for _ in range(200 if span else 0):
        port = _port_rng.randint(span[0], span[1])
        if port in _ports_given:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.1, what="condition"):
    """Poll predicate until it returns something true; return that value.
    Raises AssertionError naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def ipc_frame(pairs):
    """One IPC frame (lib/mail/ipc.h): 4-byte big-endian length, then
    name\\0value\\0 pairs."""
    body = b"".join(n.encode() + b"\0" + (v if isinstance(v, bytes)
                                           else str(v).encode()) + b"\0"
                    for n, v in pairs)
    return struct.pack(">I", len(body)) + body


def ipc_read_frame(sock):
    """Read one frame: a dict of its pairs (first value of a name), or None
    on EOF before a complete frame."""
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    body = data[4:4 + struct.unpack(">I", data[:4])[0]]
    items = body.split(b"\0")[:-1]
    out = {}
    for name, value in zip(items[0::2], items[1::2]):
        out.setdefault(name.decode(), value.decode(errors="replace"))
    return out


def crlf_to_lf(data):
    return data.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------- TLS


def make_test_pki(folder):
    """A test CA and a server certificate for mx.example.test and
    127.0.0.1 signed by it, made with the openssl CLI. Returns a dict with
    paths ca_cert, ca_key, cert, key."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = folder / "ca.key", folder / "ca.crt"
    key, csr, cert = folder / "server.key", folder / "server.csr", \
        folder / "server.crt"
    ext = folder / "server.ext"

    def run(*args):
        r = subprocess.run(["openssl", *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl %s failed:\n%s"
                               % (args[0], r.stdout.decode(errors="replace")))

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", ca_key, "-out", ca_cert, "-days", "30",
        "-subj", "/CN=herald test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash")
    run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", key, "-out", csr, "-subj", "/CN=mx.example.test")
    ext.write_text("basicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectAltName=DNS:mx.example.test,IP:127.0.0.1\n"
                   "subjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
        "-CAcreateserial", "-out", cert, "-days", "30", "-sha256",
        "-extfile", ext)
    os.chmod(key, 0o600)
    return {"ca_cert": ca_cert, "ca_key": ca_key, "cert": cert, "key": key}


def client_tls_context(ca_cert):
    """An ssl context that verifies the server against the test CA."""
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ---------------------------------------------------------------- /proc


def proc_stat(pid):
    """(comm, ppid, pgid, sid) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    lp, rp = data.index("("), data.rindex(")")
    comm = data[lp + 1:rp]
    fields = data[rp + 2:].split()
    # fields[0] = state, [1] = ppid, [2] = pgrp, [3] = session
    if fields[0] == "Z":
        return (comm, int(fields[1]), int(fields[2]), int(fields[3]), True)
    return (comm, int(fields[1]), int(fields[2]), int(fields[3]), False)


def proc_alive(pid):
    st = proc_stat(pid)
    return st is not None and not st[4]


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def proc_status_kb(pid, field):
    """A kB value from /proc/<pid>/status (VmRSS, VmHWM), 0 if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@contextlib.contextmanager
def small_tmpfs(path, size, what):
    """A tmpfs of size ("2m") mounted at path for the with-block, for
    tests of full disks. Without root, or when mounting fails, the test
    is skipped with the reason printed (what: "spool", "mail store")."""
    import pytest
    if os.geteuid() != 0:
        print("skipped: a small %s file system needs root (uid %d)"
              % (what, os.geteuid()))
        pytest.skip("a small %s file system needs root" % what)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                        "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        print("skipped: cannot mount tmpfs: %s" % r.stderr.strip())
        pytest.skip("cannot mount tmpfs: %s" % r.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(path):
    """Write zeros into the file path until its file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(65536):
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass	# full
    finally:
        os.close(fd)


# ---------------------------------------------------------------- raw SMTP


class RawLines:
    """A line-oriented client for hostile scripts: send exact bytes, read
    lines with timeouts, upgrade to TLS by hand. RawSMTP and test_pop3's
    RawPOP add their protocol's replies."""

    def __init__(self, host, port, timeout=10.0, source=None):
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.timeout = timeout
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise
        except (ConnectionResetError, ssl.SSLEOFError):
            chunk = b""
        return chunk

    def readline(self, timeout=None):
        """One line including CRLF; b"" at EOF; socket.timeout after
        timeout seconds without a complete line."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line within %.1fs "
                                     "(have %r)" % (timeout, self.buf[:200]))
            chunk = self._fill(left)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def pending(self, wait=0.0):
        """Bytes the server sent that nobody read (waits up to wait s)."""
        data = self.buf
        self.buf = b""
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            try:
                self.sock.settimeout(max(left, 0.001))
                chunk = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
                break
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
            if left <= 0:
                break
        return data

    def read_all(self, timeout=5.0):
        """Everything until EOF or timeout seconds of silence."""
        data = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self._fill(timeout)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def starttls(self, ctx, server_hostname):
        """Wrap the socket in TLS; insists nothing unread is buffered."""
        if self.buf:
            raise AssertionError("server sent plaintext after the STARTTLS "
                                 "reply: %r" % self.buf)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock,
                                    server_hostname=server_hostname)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawSMTP(RawLines):
    """RawLines with SMTP replies."""

    def reply(self, timeout=None):
        """One complete (possibly multi-line) reply: (code, [text lines]).
        code is None at EOF."""
        lines = []
        while True:
            line = self.readline(timeout)
            if not line:
                return None, lines
            line = line.rstrip(b"\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError("malformed reply line %r" % line)
            lines.append(line[4:])
            if len(line) == 3 or line[3:4] == b" ":
                return int(line[:3]), lines
            if line[3:4] != b"-":
                raise AssertionError("malformed reply line %r" % line)

    def cmd(self, line, timeout=None):
        """Send one command line, return its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def expect(self, code, line=None, timeout=None):
        """Send line (if given) and insist on reply code."""
        got = self.cmd(line, timeout) if line is not None \
            else self.reply(timeout)
        if got[0] != code:
            raise AssertionError("%r: expected %d, got %r"
                                 % (line, code, got))
        return got


# ---------------------------------------------------------------- instance


class HeraldError(Exception):
    pass


class HeraldInstance:
    """One herald installation in folder: config, directory, spool, mail,
    logs. start()/stop() run it; no process survives stop()."""

    START_TIMEOUT = float(os.environ.get("HERALD_START_TIMEOUT", "40"))

    def __init__(self, folder, pki=None, **overrides):
        self.dir = Path(folder).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "herald.conf"
        self.log_path = self.dir / "herald.log"
        self.port = free_port()
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        # imapd listens on *:143 and *:993 by default; a test instance
        # turns it off unless imap=True, which puts its listeners on
        # 127.0.0.1:imap_port, imaps_port
        self.imap_port = free_port()
        self.imaps_port = free_port()
        imap = overrides.pop("imap", False)
        # smtpd's submission roles listen on *:587 and *:465 by default;
        # a test instance turns them off unless submission=True, which
        # puts them on 127.0.0.1:submission_port, submissions_port
        self.submission_port = free_port()
        self.submissions_port = free_port()
        submission = overrides.pop("submission", False)
        self.pki = pki if pki is not None else make_test_pki(self.dir / "pki")
        self.proc = None
        self.master_pid = None
        self.stopped = False
        self.env = {}	# added to master's (so every service's) environment
        user, group = service_identity()
        self.config = {
            "myhostname": "mx.example.test",
            "spool_directory": "spool",
            "data_directory": "data",
            "run_directory": "run",
            # a background start without syslog logs here, never to the
            # system's /var/log/herald
            "log_file": "daemon.log",
            "mail_location": "mail/%d/%n",
            "daemon_directory": str(HERALD_BIN),
            "smtpd_listen": "127.0.0.1:%d" % self.port,
            "smtpd_workers": "2",
            "pop3d_listen": "127.0.0.1:%d" % self.pop3_port,
            "pop3s_listen": "127.0.0.1:%d" % self.pop3s_port,
            "pop3d_workers": "2",
            "local_processes": "2",
            "remote_processes": "2",
            # no test's lookup leaves the machine: a test that needs DNS
            # names its own servers (dnsserver.py); the rest time out
            # here fast (remote delivery defers with 4.4.3)
            "dns_forwarders": "127.0.0.1@9",
            "dns_timeout": "1s",
            "tls_cert_file": str(self.pki["cert"]),
            "tls_key_file": str(self.pki["key"]),
            "queue_scan_interval": "2s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "stop_timeout": "5s",
            "herald_user": user,
            "vmail_user": user,
            "auth_user": user,
            "directory_group": group,
            "dkim_user": user,
            "dkim_group": group,
            "signer_processes": "1",
        }
        if imap:
            self.config.update({
                "imap_listen": "127.0.0.1:%d" % self.imap_port,
                "imaps_listen": "127.0.0.1:%d" % self.imaps_port,
                "imapd_workers": "2",
            })
        else:
            self.config.update({"imap_listen": "", "imaps_listen": ""})
        if submission:
            self.config.update({
                "submission_listen": "127.0.0.1:%d" % self.submission_port,
                "submissions_listen": "127.0.0.1:%d" % self.submissions_port,
            })
        else:
            self.config.update({"submission_listen": "",
                                "submissions_listen": ""})
        for key, value in overrides.items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = str(value)
        self.write_config()
        INSTANCES.append(self)

    # -- paths

    @property
    def spool(self):
        return self.dir / self.config["spool_directory"]

    @property
    def run_dir(self):
        return self.dir / "run"

    def maildir(self, user, domain="example.test"):
        return self.dir / "mail" / domain.lower() / user.lower()

    # -- config

    def write_config(self, extra_text=""):
        lines = ["# herald test instance, written by t/integration/herald.py"]
        for key, value in self.config.items():
            lines.append("%s = %s" % (key, value))
        self.conf.write_text("\n".join(lines) + "\n" + extra_text)

    def set_config(self, **changes):
        """Change settings in the file (not applied until reload)."""
        for key, value in changes.items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = str(value)
        self.write_config()

    # -- commands

    def ctl(self, *args, input=None, timeout=60, json_out=False):
        """Run heraldctl -c <conf> [--json] args; CompletedProcess (text)."""
        argv = [str(binpath("heraldctl")), "-c", str(self.conf)]
        if json_out:
            argv.append("--json")
        argv += [str(a) for a in args]
        return subprocess.run(argv, input=input if input is not None else "",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)

    def ctl_ok(self, *args, input=None, timeout=60):
        r = self.ctl(*args, input=input, timeout=timeout)
        if r.returncode != 0:
            raise HeraldError("heraldctl %s: exit %d\nstdout: %s\nstderr: %s"
                              % (" ".join(map(str, args)), r.returncode,
                                 r.stdout, r.stderr))
        return r

    def add_domain(self, domain):
        self.ctl_ok("domain", "add", domain)

    def add_user(self, addr, password="secret-password"):
        self.ctl_ok("user", "add", addr, input=password + "\n")

    def add_alias(self, addr, *targets):
        self.ctl_ok("alias", "add", addr, *targets)

    # -- lifecycle

    def start(self, env=None, degraded_ok=False):
        """Start master in the foreground (our child) and wait until SMTP
        answers and heraldctl status says every service runs (with
        degraded_ok: that master runs, a service may be failing). env:
        variables added to master's environment, which every service
        inherits (e.g. faultfs_env()); kept for later starts until
        changed."""
        if self.proc is not None and self.proc.poll() is None:
            raise HeraldError("already running")
        if env is not None:
            self.env = dict(env)
        self.stopped = False
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(binpath("heraldctl")), "-c", str(self.conf), "start",
                 "--foreground"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True, cwd=str(self.dir),
                env=dict(os.environ, **self.env) if self.env else None)
        finally:
            logf.close()
        self.master_pid = self.proc.pid
        try:
            self.wait_ready(self.START_TIMEOUT, degraded_ok)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout, degraded_ok=False):
        deadline = time.monotonic() + timeout
        last = "nothing tried"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise HeraldError("master exited with %s during start; log:\n%s"
                                  % (self.proc.returncode,
                                     self.log_tail(60)))
            try:
                banner = self.banner(timeout=2)
                r = self.ctl("status", timeout=10)
                if r.returncode == 0 or (degraded_ok and r.returncode == 1
                                         and "degraded" in r.stdout):
                    return banner
                last = "status exit %d: %s%s" % (r.returncode, r.stdout,
                                                 r.stderr)
            except (OSError, socket.timeout,
                    subprocess.TimeoutExpired) as e:
                last = "%r" % e
            time.sleep(0.2)
        raise HeraldError("herald did not come up in %.0fs (%s); log:\n%s"
                          % (timeout, last, self.log_tail(60)))

    def banner(self, timeout=5):
        """The 220 greeting line of a new connection (then QUIT)."""
        with RawSMTP("127.0.0.1", self.port, timeout=timeout) as c:
            line = c.readline()
            try:
                c.send(b"QUIT\r\n")
                c.readline(timeout=2)
            except OSError:
                pass
        if not line.startswith(b"220"):
            raise OSError("no 220 greeting: %r" % line)
        return line.rstrip(b"\r\n").decode(errors="replace")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def read_master_pid(self):
        try:
            return int((self.run_dir / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def our_pids(self):
        """Every live process that belongs to this instance: in master's
        session/process group, descended from master, or carrying our
        config path on its command line or in its environment."""
        conf = str(self.conf).encode()
        masters = {self.master_pid} if self.master_pid else set()
        filed = self.read_master_pid()
        if filed and filed not in masters and (
                any(conf in a for a in proc_cmdline(filed)) or
                b"HERALD_CONF=" + conf in proc_environ(filed)):
            masters.add(filed)	# a pid file can be stale: check it is ours
        pids = set()
        stats = {}
        for pid in all_pids():
            if pid == os.getpid():
                continue
            st = proc_stat(pid)
            if st is None:
                continue
            stats[pid] = st
        for pid, st in stats.items():
            if st[4]:
                continue	# zombie: nothing to kill
            if st[2] in masters or st[3] in masters or pid in masters:
                pids.add(pid)
                continue
            if any(conf in a for a in proc_cmdline(pid)):
                pids.add(pid)
                continue
            if any(e == b"HERALD_CONF=" + conf for e in proc_environ(pid)):
                pids.add(pid)
        # descendants of master
        changed = True
        while changed:
            changed = False
            for pid, st in stats.items():
                if pid not in pids and not st[4] and \
                        (st[1] in pids or st[1] in masters):
                    pids.add(pid)
                    changed = True
        pids.discard(os.getpid())
        return pids

    def children(self, name=None):
        """Live child processes of master, optionally only those whose
        program is name (smtpd, qmgr, local)."""
        if not self.master_pid:
            return []
        out = []
        for pid in all_pids():
            st = proc_stat(pid)
            if st is None or st[4] or st[1] != self.master_pid:
                continue
            # read once: the process may exit between two reads
            argv = proc_cmdline(pid) if name is not None else []
            if name is None or st[0] == name[:15] or \
                    (argv and os.path.basename(argv[0]) == name.encode()):
                out.append(pid)
        return sorted(out)

    def stop(self, timeout=None):
        """heraldctl stop, wait for master; then kill anything left."""
        if timeout is None:
            try:
                timeout = float(self.config.get("stop_timeout",
                                                "30s").rstrip("s")) + 20
            except ValueError:
                timeout = 60
        try:
            if self.running():
                try:
                    r = self.ctl("stop", timeout=timeout)
                    if r.returncode != 0:
                        # e.g. a test left a broken config: ask master
                        # directly
                        os.kill(self.proc.pid, signal.SIGTERM)
                except (subprocess.TimeoutExpired, OSError):
                    pass
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            elif self.proc is None and self.read_master_pid():
                # started as a daemon by a test
                try:
                    self.ctl("stop", timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
                wait_dead([self.read_master_pid() or 0], timeout)
        finally:
            self.kill_leftovers()
            self.stopped = True

    def kill_leftovers(self):
        """SIGKILL every process of this instance; returns what was found."""
        found = set()
        for _ in range(5):
            pids = self.our_pids()
            if not pids:
                break
            found |= pids
            if self.master_pid:
                try:
                    os.killpg(self.master_pid, signal.SIGKILL)
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            wait_dead(pids, 5)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return found

    # -- clients

    def smtp(self, timeout=30):
        """smtplib.SMTP connected to the instance's smtpd."""
        s = smtplib.SMTP("127.0.0.1", self.port,
                         local_hostname="client.example.test",
                         timeout=timeout)
        return s

    def raw(self, timeout=10):
        """RawSMTP connected, greeting not yet read."""
        return RawSMTP("127.0.0.1", self.port, timeout=timeout)

    def tls_context(self):
        return client_tls_context(self.pki["ca_cert"])

    def auth(self, user, password, client="127.0.0.1", service="test",
             timeout=30):
        """Ask authd directly (<run_directory>/auth): the reply frame as a
        dict (status, user, delay, reason), or None if authd closed the
        connection without answering."""
        pairs = [("request", "verify"), ("user", user),
                 ("password", password), ("client", client),
                 ("service", service)]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.run_dir / "auth"))
            s.sendall(ipc_frame(pairs))
            return ipc_read_frame(s)

    # -- mail

    def maildir_files(self, user, domain="example.test"):
        """Paths of messages in new/ and cur/ of user@domain."""
        md = self.maildir(user, domain)
        out = []
        for sub in ("new", "cur"):
            d = md / sub
            try:
                names = sorted(os.listdir(d))
            except FileNotFoundError:
                continue
            out += [d / n for n in names if not n.startswith(".")]
        return out

    def maildir_messages(self, user, domain="example.test"):
        """Contents (bytes) of the messages in new/ and cur/."""
        out = []
        for p in self.maildir_files(user, domain):
            try:
                out.append(p.read_bytes())
            except FileNotFoundError:
                pass
        return out

    def messages_with(self, token, user, domain="example.test"):
        if isinstance(token, str):
            token = token.encode()
        return [m for m in self.maildir_messages(user, domain) if token in m]

    def wait_messages(self, token, user, domain="example.test", count=1,
                      timeout=30):
        """Wait until user has at least count messages holding token."""
        return wait_for(
            lambda: (lambda m: m if len(m) >= count else None)(
                self.messages_with(token, user, domain)),
            timeout, what="%d message(s) with %r for %s@%s"
            % (count, token, user, domain))

    def all_mail_files(self):
        out = []
        root = self.dir / "mail"
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                out.append(Path(dirpath) / f)
        return out

    def queue_files(self, folders=SPOOL_QUEUE_FOLDERS):
        """Paths of queue files in the given spool folders (recursive)."""
        out = []
        for folder in folders:
            for dirpath, _dirs, files in os.walk(self.spool / folder):
                out += [Path(dirpath) / f for f in files]
        return out

    def queue_empty(self):
        return not self.queue_files()

    def wait_queue_empty(self, timeout=60):
        try:
            return wait_for(self.queue_empty, timeout, interval=0.2,
                            what="an empty queue")
        except AssertionError as e:
            left = [str(p.relative_to(self.spool))
                    for p in self.queue_files()]
            raise AssertionError("%s; still queued: %s" % (e, left[:20]))

    # -- logs

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, lines=200, since=0):
        text = self.log_text(since).splitlines()
        return "\n".join(text[-lines:])

    def wait_log(self, pattern, timeout=20, since=0):
        """Wait for a regex in the log (from byte offset since); the match."""
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: rx.search(self.log_text(since)), timeout,
                        what="log line matching %r" % pattern)

    def qid_of_sender(self, sender, timeout=20, since=0):
        """Queue id of the message whose log line says from=<sender>."""
        m = self.wait_log(r"(%s): from=<%s>" % (QID_RE, re.escape(sender)),
                          timeout, since)
        return m.group(1)

    # -- processes

    def status_json(self):
        r = self.ctl("status", json_out=True, timeout=10)
        if r.returncode != 0:
            raise HeraldError("status --json: exit %d: %s%s"
                              % (r.returncode, r.stdout, r.stderr))
        return json.loads(r.stdout)

    def sanitizer_reports(self):
        text = self.log_text()
        hits = []
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer"):
            if marker in text:
                hits.append(marker)
        return hits

    def __repr__(self):
        return "<HeraldInstance %s port %d>" % (self.dir, self.port)


def wait_dead(pids, timeout):
    deadline = time.monotonic() + timeout
    pids = [p for p in pids if p]
    while time.monotonic() < deadline:
        if not any(proc_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def json_services(obj):
    """(service, pid) pairs found anywhere in heraldctl status --json output,
    whatever its exact shape."""
    out = []

    def walk(o, key=None):
        if isinstance(o, dict):
            name = o.get("service") or o.get("name")
            pid = o.get("pid")
            if isinstance(name, str) and isinstance(pid, int):
                out.append((name, pid))
            for k, v in o.items():
                if isinstance(v, list) and k not in ("pid",):
                    for item in v:
                        if isinstance(item, dict) and "pid" in item and \
                                "service" not in item and "name" not in item:
                            out.append((k, item["pid"]))
                walk(v, k)
        elif isinstance(o, list):
            for v in o:
                walk(v, key)
    walk(obj)
    return out


# ---------------------------------------------------------------- messages


def make_message(token, sender="sender@example.org", to="alice@example.test",
                 body=None, subject=None):
    """A message (bytes, CRLF) carrying token in Subject, Message-ID, body."""
    if body is None:
        body = "Hello, this is message %s.\r\n" % token
    if isinstance(body, str):
        body = body.encode()
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\n"
            "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n"
            % (sender, to, subject or ("test " + token), token)).encode()
    return head + body


def split_delivered(data, original):
    """data is a Maildir file, original the message as sent (CRLF). Checks
    data == <header lines> + original with LF line ends and returns the
    prepended header fields as a list of (name, value) (folded lines
    joined). Raises AssertionError otherwise."""
    want = crlf_to_lf(original)
    got = crlf_to_lf(data)
    if not got.endswith(want):
        raise AssertionError("delivered file does not end with the exact "
                             "message.\n--- got:\n%r\n--- want suffix:\n%r"
                             % (got[:4000], want[:4000]))
    prefix = got[:len(got) - len(want)]
    fields = []
    for line in prefix.split(b"\n"):
        if line == b"":
            continue
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise AssertionError("continuation line first: %r" % prefix)
            fields[-1] = (fields[-1][0], fields[-1][1] + b" " + line.strip())
            continue
        if b":" not in line:
            raise AssertionError("not a header line in the prefix: %r" % line)
        name, value = line.split(b":", 1)
        fields.append((name.decode(), value.strip()))
    if prefix and not prefix.endswith(b"\n"):
        raise AssertionError("prefix not line-terminated: %r" % prefix)
    return fields


def header_values(fields, name):
    return [v for n, v in fields if n.lower() == name.lower()]


class SMTPLoad:
    """Send many messages over parallel smtplib sessions; remembers which
    tokens got a 250. Used by the crash test and smaller load checks."""

    def __init__(self, inst, tokens, sessions, rcpt="alice@example.test",
                 deadline=None, body_size=0, minimum=None, done=None):
        """minimum, done: once minimum tokens were taken, stop taking
        more as soon as done() is true (the rest of tokens is spare)."""
        self.inst = inst
        self.minimum = minimum
        self.done = done
        self.tokens = list(tokens)
        self.sessions = sessions
        self.rcpt = rcpt
        self.deadline = deadline
        self.body_size = body_size
        self.accepted = []
        self.rejected = []
        self.errors = []
        self.lock = threading.Lock()
        self.next = 0

    def _take(self):
        with self.lock:
            if self.next >= len(self.tokens):
                return None
            if self.deadline is not None and time.monotonic() > self.deadline:
                return None
            if (self.done is not None and self.next >= self.minimum
                    and self.done()):
                return None
            t = self.tokens[self.next]
            self.next += 1
            return t

    def _worker(self):
        s = None
        while True:
            token = self._take()
            if token is None:
                break
            body = "token %s\r\n" % token
            if self.body_size:
                filler = ("x" * 70 + "\r\n") * (self.body_size // 72 + 1)
                body += filler
            msg = make_message(token, sender="load@example.org",
                               to=self.rcpt, body=body)
            for attempt in range(3):
                try:
                    if s is None:
                        s = self.inst.smtp(timeout=60)
                        s.ehlo()
                    s.sendmail("load@example.org", [self.rcpt], msg)
                    with self.lock:
                        self.accepted.append(token)
                    break
                except (smtplib.SMTPRecipientsRefused,
                        smtplib.SMTPSenderRefused,
                        smtplib.SMTPDataError) as e:
                    with self.lock:
                        self.rejected.append((token, repr(e)))
                    break
                except (smtplib.SMTPException, OSError) as e:
                    # connection trouble: the outcome of this message is
                    # unknown, so it is not counted as accepted; retry it
                    # on a fresh session
                    with self.lock:
                        self.errors.append((token, repr(e)))
                    try:
                        if s is not None:
                            s.close()
                    except Exception:
                        pass
                    s = None
                    time.sleep(0.1)
        if s is not None:
            try:
                s.quit()
            except Exception:
                s.close()

    def run(self):
        threads = [threading.Thread(target=self._worker, daemon=True)
                   for _ in range(self.sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self


def maildir_tokens(inst, user, pattern, domain="example.test"):
    """Count of each token (regex group 1 of pattern, bytes) over user's
    Maildir."""
    rx = re.compile(pattern)
    counts = {}
    for data in inst.maildir_messages(user, domain):
        m = rx.search(data)
        if m:
            key = m.group(1).decode()
            counts[key] = counts.get(key, 0) + 1
    return counts


# ---------------------------------------------------------------- queue files


def qid_make(when=None, pid=None, counter=0):
    """A well-formed queue id like lib/mail/qid.c makes: 11 base32 digits
    of microseconds (plus counter, so ids made in one call differ), 5 of
    the pid, 1 of counter mod 32; Crockford alphabet, most significant
    digit first."""
    if when is None:
        when = time.time()
    if pid is None:
        pid = os.getpid()

    def enc(value, n):
        out = []
        for _ in range(n):
            out.append(QID_ALPHABET[value & 31])
            value >>= 5
        return "".join(reversed(out))
    return enc(int(when * 1e6) + counter, 11) + enc(pid, 5) + \
        enc(counter % 32, 1)


def qfile_build(sender, rcpts, message, arrival=None, attrs=(),
                status=b"Q"):
    """A valid version-1 queue file (lib/mail/qfile.h) as bytes."""
    if arrival is None:
        arrival = int(time.time())
    out = [b"VHERALDQ1\n", b"T%d\n" % arrival, b"S" + sender.encode() + b"\n"]
    for name, value in attrs:
        out.append(b"A%s=%s\n" % (name.encode(), value.encode()))
    for r in rcpts:
        out.append(b"R" + status + r.encode() + b"\t\t\n")
    out.append(b"M%016d\n" % len(message))
    out.append(message)
    out.append(b"E\n")
    return b"".join(out)


# -- privilege boundaries: who may read a file


def proc_creds(pid):
    """(effective uid, effective gid, supplementary groups) of pid."""
    uid = gid = None
    groups = []
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Uid":
                uid = int(v.split()[1])		# effective
            elif k == "Gid":
                gid = int(v.split()[1])
            elif k == "Groups":
                groups = [int(x) for x in v.split()]
    return uid, gid, groups


def can_read_as(path, uid, gid, groups):
    """Whether a process with these ids can open path for reading."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            try:
                with open(path, "rb") as f:
                    f.read(1)
                code = 0
            except PermissionError:
                code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), "child failed (%d)" % code
    return code == 0

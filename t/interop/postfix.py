"""
postfix - a private Postfix instance for the interop test and bench/run,
never the system's service: its own config_directory, queue_directory and
data_directory under one folder, its own loopback listeners (master.cf),
its log in <folder>/postfix.log (postlogd), started with
`postfix -c DIR start` and stopped with `postfix -c DIR stop` (every
process it forked is killed by pid if that does not end them).

ensure_installed() installs Debian's postfix when it is missing, as
bench/run does: root only, DEBIAN_FRONTEND=noninteractive, debconf's
"No configuration" (no /etc/postfix/main.cf, so nothing of the package
runs as the system's mail server) and a policy-rc.d that keeps its
service from starting. remove() purges it again: herald's package
conflicts with mail-transport-agent, which Postfix provides, so
t/integration/test_package.py skips while it is installed.
"""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "postfix"
POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"

# every service of Postfix's own master.cf that a relay needs, none
# chrooted (the private instance has no copies of /etc in its queue)
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _run(argv, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run(argv, **kw)


def installed():
    r = _run(["dpkg-query", "-W", "-f=${Status}", PACKAGE])
    return "ok installed" in r.stdout and os.path.exists(POSTFIX)


def version():
    r = _run(["dpkg-query", "-W", "-f=${Version}", PACKAGE])
    return r.stdout.strip() or "?"


def ensure_installed():
    """None when Postfix is there (installed now or before), else the
    reason it is not (not root, apt-get failed). True in the second
    element when this call installed it."""
    if installed():
        return None, False
    if os.geteuid() != 0:
        return ("postfix is not installed and installing it needs root "
                "(apt-get install postfix)"), False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["debconf-set-selections"], input="postfix postfix/main_mailer_"
         "type select No configuration\n")
    policy = "/usr/sbin/policy-rc.d"
    ours = not os.path.exists(policy)
    if ours:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        r = _run(["apt-get", "install", "-y", "-qq",
                  "--no-install-recommends", PACKAGE], env=env)
        if r.returncode != 0:
            _run(["apt-get", "update", "-qq"], env=env)
            r = _run(["apt-get", "install", "-y", "-qq",
                      "--no-install-recommends", PACKAGE], env=env)
    finally:
        if ours:
            os.unlink(policy)
    if r.returncode != 0 or not installed():
        return "apt-get install postfix failed: %s" % r.stdout[-500:], False
    return None, True


def remove():
    """Purge the package (and what it pulled in); /usr/sbin/sendmail is
    nobody's afterwards, or herald's if its package comes later."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "purge", "-y", "-qq", PACKAGE], env=env)
    _run(["apt-get", "autoremove", "-y", "-qq"], env=env)


def pids_with(needle):
    """Processes whose command line contains needle (our folder)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read().decode(errors="replace")
        except OSError:
            continue
        if needle in cmd or needle in env:
            out.append(int(name))
    return out


class PrivatePostfix:
    """One Postfix in folder (made world-traversable, as Postfix's own
    users must reach its queue): etc/ (main.cf, master.cf), spool/
    (queue_directory), data/, postfix.log. listen: "addr:port" entries
    for smtpd in master.cf; main: extra main.cf settings {name: value}.
    """

    def __init__(self, folder, listen, main, smtpd_args=(),
                 resolv_conf=None):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.etc = self.dir / "etc"
        self.spool = self.dir / "spool"
        self.data = self.dir / "data"
        self.log_path = self.dir / "postfix.log"
        self.listen = list(listen)
        self.smtpd_args = list(smtpd_args)
        self.main = dict(main)
        # resolv_conf: a file Postfix's resolver reads instead of
        # /etc/resolv.conf (its MX lookups go to a test DNS server on
        # port 53 of a loopback address): Postfix then starts in a
        # private mount namespace with that file bound over it
        self.resolv_conf = resolv_conf
        self.running = False

    def write_config(self):
        for d in (self.etc, self.spool, self.data):
            d.mkdir(exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        conf = {
            "compatibility_level": "3.6",
            "config_directory": str(self.etc),
            "queue_directory": str(self.spool),
            "data_directory": str(self.data),
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.dir),
            "inet_protocols": "ipv4",
            "inet_interfaces": "loopback-only",
            # no lookup leaves the machine unless a caller says where
            "smtp_host_lookup": "native",
            "biff": "no",
            "alias_maps": "",
            "alias_database": "",
            "append_dot_mydomain": "no",
        }
        conf.update(self.main)
        with open(self.etc / "main.cf", "w") as f:
            f.write("# private instance written by herald's "
                    "t/interop/postfix.py\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        with open(self.etc / "master.cf", "w") as f:
            for addr in self.listen:
                f.write("%s inet n - n - - smtpd%s\n" % (
                    addr, "".join("\n  -o " + a for a in self.smtpd_args)))
            f.write(MASTER_CF)

    def postfix(self, *args, timeout=120):
        return _run([POSTFIX, "-c", str(self.etc)] + list(args),
                    timeout=timeout)

    def start(self):
        self.write_config()
        if self.resolv_conf is None:
            r = self.postfix("start")
        else:
            code = ("import os, subprocess, sys\n"
                    "subprocess.run(['mount', '--bind', sys.argv[1], "
                    "'/etc/resolv.conf'], check=True)\n"
                    "os.execv(sys.argv[2], sys.argv[2:])\n")
            r = _run(["unshare", "--mount", "--propagation", "private",
                      sys.executable, "-c", code, str(self.resolv_conf),
                      POSTFIX, "-c", str(self.etc), "start"], timeout=120)
        if r.returncode != 0:
            self.stop()
            raise RuntimeError("postfix start: exit %d: %s%s" % (
                r.returncode, r.stdout, self.log_tail()))
        self.running = True
        return self

    def master_pid(self):
        try:
            return int((self.spool / "pid" / "master.pid").read_text()
                       .split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """postfix stop, then SIGKILL for anything of ours still there
        (a process of this instance names our folder in its command
        line or environment: MAIL_CONFIG)."""
        if self.etc.exists():
            self.postfix("stop", timeout=60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pids_with(str(self.etc)):
            time.sleep(0.1)
        for pid in pids_with(str(self.etc)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.running = False

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])


def private_dir(prefix):
    """A folder Postfix's own users can traverse (pytest's temporary
    folders are 0700 under root): under /tmp, removed by the caller."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return Path(d)


def remove_dir(path):
    shutil.rmtree(path, ignore_errors=True)

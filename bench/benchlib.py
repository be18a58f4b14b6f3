"""
benchlib - pieces the benchmarks in bench/ share: Maildirs filled the way
a delivery agent leaves them, a small pipelining POP3 client run as
threads in several processes, memory (PSS) sampling over a process tree, and
CPU accounting through a cpuacct cgroup (v1) when there is one.

Nothing here is herald's own code: the clients speak the protocols from
scratch, so they measure herald, Postfix and Dovecot alike.
"""
import multiprocessing as mp
import os
import random
import socket
import threading
import time

# /proc reading is the integration tests' (t/integration/herald.py); the
# bench scripts put that folder on sys.path before importing this module
from herald import proc_status_kb as rss_kb  # noqa: F401

BATCH = 20	# POP3 commands pipelined at once


# ---------------------------------------------------------------- Maildir


def message_lf(size, user, n):
    """A message of about size bytes as stored (LF line ends)."""
    head = ("From: <sender@example.org>\nTo: <%s>\nSubject: bench %d\n"
            "Message-ID: <bench-%d-%s>\n\n" % (user, n, n, user))
    body = [head]
    length = len(head)
    line = "x" * 74 + "\n"
    while length + len(line) <= size:
        body.append(line)
        length += len(line)
    return "".join(body).encode()


def fill_maildir(path, user, count, size, uid=-1, gid=-1):
    """count messages into path/new/ with names like Maildir deliverers
    make them (",S=" size, ",W=" size with CRLF, which Dovecot and herald
    both read); owned by uid/gid when given.

    The names look like a mailbox's history: one message about every
    37 s up to now, each with its own microseconds and delivering pid
    (drawn from a fixed seed, so every server gets the same names).
    Names that differ only in a counter and share time, pid and sizes
    are no mailbox's: they collapse Dovecot's filename hash (an ELF
    hash over the base name) into a few buckets when the pid has five
    digits, and its first scan of 100,000 of them then took minutes
    instead of seconds (bench/results/imap-bigfolder-20261207-0226.md).
    """
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    now = int(time.time())
    rnd = random.Random("%s/%d" % (user, count))
    for n in range(count):
        data = message_lf(size, user, n)
        vsize = len(data) + data.count(b"\n")
        when = now - (count - n) * 37 + rnd.randrange(37)
        name = "%d.M%dP%d.mail.example.test,S=%d,W=%d" % (
            when, rnd.randrange(1000000), rnd.randrange(1000, 4194304),
            len(data), vsize)
        with open(os.path.join(path, "new", name), "wb") as f:
            f.write(data)
    if uid >= 0:
        for dirpath, dirs, files in os.walk(os.path.dirname(path)):
            for name in [dirpath] + [os.path.join(dirpath, x)
                                     for x in dirs + files]:
                os.chown(name, uid, gid)


def maildir_count(paths):
    """Messages in new/ and cur/ of the given Maildirs."""
    n = 0
    for path in paths:
        for sub in ("new", "cur"):
            try:
                n += sum(1 for x in os.listdir(os.path.join(path, sub))
                         if not x.startswith("."))
            except FileNotFoundError:
                pass
    return n


# ---------------------------------------------------------------- POP3


class Pop3:
    """Minimal pipelining POP3 client."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.status()

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def status(self):
        line = self.line()
        if not line.startswith(b"+OK"):
            raise RuntimeError("POP3 error: %r" % line)
        return line

    def multiline(self):
        """Body of a multi-line response (dot-stuffing undone, CRLF)."""
        self.status()
        parts = []
        while True:
            line = self.line()
            if line == b".":
                return b"".join(parts)
            if line.startswith(b".."):
                line = line[1:]
            parts.append(line + b"\r\n")

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.status()

    def login(self, user, password):
        self.sock.sendall(("USER %s\r\nPASS %s\r\n" % (user, password))
                          .encode())
        self.status()
        self.status()

    def close(self):
        self.sock.close()


def drain_user(port, user, password):
    """Retrieve and delete all of user's mail; (messages, bytes)."""
    c = Pop3(port)
    try:
        c.login(user, password)
        count = int(c.cmd("STAT").split()[1])
        c.sock.sendall(b"LIST\r\n")
        sizes = [int(x.split()[1]) for x in
                 c.multiline().decode().splitlines()]
        if len(sizes) != count:
            raise RuntimeError("%s: STAT %d, LIST %d" % (user, count,
                                                        len(sizes)))
        total = 0
        for first in range(1, count + 1, BATCH):
            nums = range(first, min(first + BATCH, count + 1))
            c.sock.sendall("".join("RETR %d\r\n" % n for n in nums).encode())
            for n in nums:
                data = c.multiline()
                if len(data) != sizes[n - 1]:
                    raise RuntimeError("%s: message %d has %d bytes, LIST "
                                       "said %d" % (user, n, len(data),
                                                    sizes[n - 1]))
                total += len(data)
        for first in range(1, count + 1, BATCH):
            nums = range(first, min(first + BATCH, count + 1))
            c.sock.sendall("".join("DELE %d\r\n" % n for n in nums).encode())
            for _ in nums:
                c.status()
        c.cmd("QUIT")
        return count, total
    finally:
        c.close()


def _pop3_client_proc(port, users, password, nthreads, go, results):
    """One client process: nthreads sessions drain the users given."""
    lock = threading.Lock()
    todo = list(users)
    state = {"msgs": 0, "bytes": 0, "users": 0, "error": None}

    def run():
        while True:
            with lock:
                if not todo or state["error"]:
                    return
                user = todo.pop()
            try:
                m, b = drain_user(port, user, password)
            except (OSError, RuntimeError, ValueError, IndexError) as e:
                with lock:
                    state["error"] = "%s: %r" % (user, e)
                return
            with lock:
                state["msgs"] += m
                state["bytes"] += b
                state["users"] += 1

    go.wait()
    threads = [threading.Thread(target=run) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((state["msgs"], state["bytes"], state["users"],
                 state["error"]))


def pop3_drain_all(port, users, password, sessions, procs=None):
    """Drain every user over sessions concurrent sessions spread over
    procs client processes. Returns (messages, bytes, users, seconds,
    errors)."""
    procs = max(1, min(procs or os.cpu_count() or 1, sessions))
    ctx = mp.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    workers = []
    for i in range(procs):
        threads = sessions // procs + (1 if i < sessions % procs else 0)
        workers.append(ctx.Process(target=_pop3_client_proc, args=(
            port, users[i::procs], password, threads, go, results),
            daemon=True))
    for w in workers:
        w.start()
    t0 = time.time()
    go.set()
    msgs = nbytes = nusers = 0
    errors = []
    for _ in workers:
        m, b, u, e = results.get(timeout=3600)
        msgs += m
        nbytes += b
        nusers += u
        if e:
            errors.append(e)
    elapsed = time.time() - t0
    for w in workers:
        w.join(30)
        if w.is_alive():
            w.kill()
    return msgs, nbytes, nusers, elapsed, errors


# ---------------------------------------------------------------- processes


def proc_children_map():
    """{ppid: [pid, ...]} of every live process."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z":
            continue
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def process_tree(root):
    """root and all its live descendants."""
    kids = proc_children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def tree_cpu_seconds(root):
    """CPU time (user + system) of root and its descendants from /proc:
    utime + stime of every live process in the tree, plus cutime +
    cstime, the time of the children each has reaped (master processes
    reap their services, so a service that came and went is counted
    once, by its parent)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): utime..cstime are fields 14-17
        total += sum(int(x) for x in fields[11:15])
    return total / tick


def pss_kb(pid):
    """Proportional set size: shared pages split among their users, so
    servers of one process or of forty compare fairly; RSS if the kernel
    has no smaps_rollup."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss_kb(pid, "VmRSS")


class MemSampler(threading.Thread):
    """Peak of the summed PSS of the processes pids() returns, every
    100 ms."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.stop_event = threading.Event()
        self.peak_kb = 0

    def run(self):
        while not self.stop_event.is_set():
            self.peak_kb = max(self.peak_kb,
                               sum(pss_kb(p) for p in self.pids()))
            self.stop_event.wait(0.1)

    def stop(self):
        self.stop_event.set()
        self.join(5)


class CpuGroup:
    """CPU time of a process tree, through a cpuacct cgroup (v1): every
    process put in it, and all it forks later, is counted, however short
    lived (Postfix's smtpd and virtual come and go). usage() is seconds;
    None when the machine has no writable cpuacct hierarchy."""

    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self, name):
        self.path = os.path.join(self.ROOT, name)
        try:
            os.makedirs(self.path, exist_ok=True)
            self.ok = os.path.exists(os.path.join(self.path,
                                                  "cpuacct.usage"))
        except OSError:
            self.ok = False

    def add_tree(self, root):
        if not self.ok:
            return
        for pid in process_tree(root):
            try:
                with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError:
                pass	# gone meanwhile

    def usage(self):
        if not self.ok:
            return None
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    def remove(self):
        if not self.ok:
            return
        # move what is left back to the root group, then drop ours
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                left = f.read().split()
            for pid in left:
                try:
                    with open(os.path.join(self.ROOT, "cgroup.procs"),
                              "w") as f:
                        f.write(pid)
                except OSError:
                    pass
            os.rmdir(self.path)
        except OSError:
            pass

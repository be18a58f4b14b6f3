"""
test_mailload - bench/mailload against a scripted IMAP server on loopback:
literals split across writes are read whole, a NO/BAD or a silent server
is counted as an error (exit 1), 2,000 IDLE sessions each see their EXISTS,
and the parsers' own --selftest passes.

    /usr/bin/python3 -m pytest -q bench/test_mailload.py
"""
import os
import socket
import subprocess
import threading
import time

import pytest

BENCH = os.path.dirname(os.path.abspath(__file__))
# $MAILLOAD: another build of it (make -C bench asan gives mailload-asan)
MAILLOAD = os.environ.get("MAILLOAD", os.path.join(BENCH, "mailload"))
BODY = b"From: a@example.org\r\nSubject: x\r\n\r\n" + b"y" * 3000 + b"\r\n"


@pytest.fixture(scope="module", autouse=True)
def built():
    subprocess.run(["make", "-s", "-C", BENCH, "mailload"], check=True,
                   timeout=120)


class FakeImap:
    """A scripted IMAP server: one thread per connection, answers in
    small pieces with pauses so responses arrive split across reads.
    fail names a command answered BAD; mute one never answered."""

    def __init__(self, fail=None, mute=None):
        self.fail = fail
        self.mute = mute
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.threads = []
        self.main = threading.Thread(target=self.accept, daemon=True)
        self.main.start()

    def accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self.serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def send_split(c, data):
        """data in pieces of 7 bytes, a little pause between some."""
        for i in range(0, len(data), 7):
            c.sendall(data[i:i + 7])
            if i % 700 == 0:
                time.sleep(0.001)

    def serve(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        exists = 3
        try:
            self.send_split(c, b"* OK [CAPABILITY IMAP4rev1] fake\r\n")
            while not self.stop.is_set():
                line = f.readline()
                if not line:
                    return
                tag, cmd = line.split()[0], line.split()[1].upper()
                if cmd == self.mute:
                    self.stop.wait(30)
                    return
                if cmd == self.fail:
                    self.send_split(c, tag + b" BAD no\r\n")
                    continue
                out = b""
                if cmd == b"SELECT":
                    out = b"* %d EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n" % exists
                elif cmd == b"FETCH":
                    n = int(line.split()[2])
                    out = (b"* %d FETCH (FLAGS () ENVELOPE (NIL \"x\" NIL "
                           b"NIL NIL NIL NIL NIL NIL NIL) BODY[] {%d}\r\n"
                           % (n, len(BODY)) + BODY + b")\r\n")
                elif cmd == b"SEARCH":
                    out = b"* SEARCH 1 2\r\n"
                elif cmd == b"APPEND":
                    size = int(line.rsplit(b"{", 1)[1].split(b"}")[0])
                    self.send_split(c, b"+ go\r\n")
                    data = f.read(size + 2)
                    assert len(data) == size + 2
                    exists += 1
                    out = b"* %d EXISTS\r\n" % exists
                elif cmd == b"EXPUNGE":
                    out = b"* %d EXPUNGE\r\n" % exists
                    exists -= 1
                elif cmd == b"LOGOUT":
                    self.send_split(c, b"* BYE bye\r\n" + tag + b" OK\r\n")
                    return
                self.send_split(c, out + tag + b" OK done\r\n")
        except (OSError, AssertionError, IndexError, ValueError):
            return
        finally:
            f.close()
            c.close()

    def close(self):
        self.stop.set()
        self.main.join(5)
        self.sock.close()
        for t in self.threads:
            t.join(5)


def mailload(*args):
    r = subprocess.run([MAILLOAD] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    kinds = {}
    for line in r.stdout.splitlines():
        if line.startswith("kind="):
            f = dict(kv.split("=", 1) for kv in line.split())
            kinds[f["kind"]] = (int(f["count"]), int(f["errors"]))
    return r, kinds


def test_selftest():
    r = subprocess.run([MAILLOAD, "--selftest"], stdout=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 0 and "selftest: ok" in r.stdout


def test_mixed_split_literals():
    srv = FakeImap()
    try:
        r, kinds = mailload("-w", "mixed", "-p", srv.port, "-c", 2, "-u", 4,
                            "-t", 2)
    finally:
        srv.close()
    assert r.returncode == 0, r.stderr
    for kind in ("LOGIN", "SELECT", "FETCH", "STORE", "SEARCH", "APPEND",
                 "EXPUNGE", "LOGOUT"):
        assert kinds[kind][0] > 0 and kinds[kind][1] == 0, (kind, kinds)


def test_bad_is_an_error():
    srv = FakeImap(fail=b"SEARCH")
    try:
        r, kinds = mailload("-w", "mixed", "-p", srv.port, "-c", 1, "-u", 1,
                            "-t", 1)
    finally:
        srv.close()
    assert r.returncode == 1
    assert kinds["SEARCH"][1] > 0 and kinds["SEARCH"][0] == 0
    assert "SEARCH" in r.stderr and "BAD" in r.stderr


def test_silence_is_a_timeout():
    srv = FakeImap(mute=b"SELECT")
    try:
        r, kinds = mailload("-w", "bigfolder", "-p", srv.port, "-c", 1,
                            "-u", 1, "-n", 1, "-t", 10, "--timeout", 1)
    finally:
        srv.close()
    assert r.returncode == 1
    assert kinds["SELECT"] == (0, 1)
    assert "timeout" in r.stderr


class FakeIdleServer:
    """Many IDLE sessions in one selectors loop (a thread): LOGIN and
    SELECT are OK, IDLE answers "+ idling"; a file appearing in
    root/<domain>/<local>/new/ sends "* 1 EXISTS" to that user's
    sessions, as a Maildir-watching server would."""

    def __init__(self, root):
        import selectors
        self.root = root
        self.sel = selectors.DefaultSelector()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.sel.register(self.sock, 1, None)
        self.idlers = {}	# user -> [socket]
        self.told = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        bufs = {}
        last_scan = 0
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.05):
                if key.fileobj is self.sock:
                    try:
                        c, _ = self.sock.accept()
                    except OSError:
                        continue
                    c.setblocking(True)
                    c.sendall(b"* OK fake\r\n")
                    c.setblocking(False)
                    self.sel.register(c, 1, None)
                    bufs[c] = [b"", None]
                    continue
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(c)
                    c.close()
                    continue
                bufs[c][0] += data
                while b"\r\n" in bufs[c][0]:
                    line, bufs[c][0] = bufs[c][0].split(b"\r\n", 1)
                    words = line.split()
                    out = b""
                    if words[1].upper() == b"LOGIN":
                        bufs[c][1] = words[2].strip(b'"').decode()
                    if words[1].upper() == b"SELECT":
                        out = b"* 0 EXISTS\r\n"
                    if words[1].upper() == b"IDLE":
                        out = b"+ idling\r\n"
                        self.idlers.setdefault(bufs[c][1], []).append(c)
                    else:
                        out += words[0] + b" OK done\r\n"
                    c.setblocking(True)
                    c.sendall(out)
                    c.setblocking(False)
            if time.monotonic() - last_scan > 0.05:
                last_scan = time.monotonic()
                self.scan()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()

    def scan(self):
        for user, socks in self.idlers.items():
            if user in self.told:
                continue
            local, domain = user.split("@")
            new = os.path.join(self.root, domain, local, "new")
            if os.listdir(new):
                self.told.add(user)
                for c in socks:
                    try:
                        c.setblocking(True)
                        c.sendall(b"* 1 EXISTS\r\n")
                        c.setblocking(False)
                    except OSError:
                        pass

    def close(self):
        self.stop.set()
        self.thread.join(10)


def test_idle_sessions(tmp_path):
    """2,000 sessions (IDLE_SESSIONS to change) reach IDLE and each sees
    the EXISTS of its user's delivery."""
    n = int(os.environ.get("IDLE_SESSIONS", "2000"))
    for u in range(20):
        for sub in ("new", "tmp", "cur"):
            os.makedirs(tmp_path / "example.test" / ("u%03d" % u) / sub)
    srv = FakeIdleServer(str(tmp_path))
    try:
        r = subprocess.run(
            [MAILLOAD, "-w", "idle", "-p", str(srv.port), "-c", str(n),
             "-u", "20", "-r", "200", "-t", "120", "--hold", "1",
             "--maildir", str(tmp_path)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=180)
    finally:
        srv.close()
    assert r.returncode == 0, r.stderr
    assert "ready sessions=%d failed=0" % n in r.stdout
    assert "kind=EXISTS count=%d " % n in r.stdout

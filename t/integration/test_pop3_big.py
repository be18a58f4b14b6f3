"""
pop3d with a huge maildrop: the work that grows with it (the scan at
login, moving new/ to cur/, sizes; UPDATE's unlinks at QUIT) runs on a
maildrop thread, so another user's session on the same worker is not
stalled; and the size cache (<maildir>/herald-sizes) spares a login
from reading files whose names carry no ",W=".

The maildrops are written straight to disk, the way a migration or a
foreign delivery agent leaves them (no ,S=/,W= in the names).
"""
import os
import threading
import time

import herald as H
from test_pop3 import RawPOP, new_user

# files in the big maildrop (HERALD_POP3_BIG to measure more by hand)
BIG = min(int(os.environ.get("HERALD_POP3_BIG", "20000")), 200000)
NOOP_BOUND = 0.2		# seconds: the most one NOOP may wait
CHUNK = 500			# pipelined DELEs per round trip


def write_maildrop(inst, local, n, sub="new", body=b"Subject: x\n\nabc\n",
                   info=""):
    """n files without W= in sub/ of local's Maildir; their base names."""
    md = inst.maildir(local)
    for d in ("new", "cur", "tmp"):
        (md / d).mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    names = []
    for i in range(n):
        base = "%d.M%dP%d.foreign" % (now - n + i, i, os.getpid())
        (md / sub / (base + info)).write_bytes(body)
        names.append(base)
    return names


def raw_login(inst, addr, pw, timeout=60):
    c = RawPOP(inst.pop3_port, timeout=timeout)
    assert c.line().startswith(b"+OK")
    assert c.cmd("USER " + addr) == b"+OK"
    r = c.cmd("PASS " + pw, timeout)
    assert r.startswith(b"+OK"), r
    return c


class NoopProbe:
    """A logged-in session that sends NOOP in a loop (bounded in count and
    time) and records the longest wait for its answer."""

    def __init__(self, conn, limit_s=120):
        self.conn = conn
        self.limit_s = limit_s
        self.stop = threading.Event()
        self.lat = []
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        end = time.monotonic() + self.limit_s
        try:
            while not self.stop.is_set() and time.monotonic() < end and \
                    len(self.lat) < 200000:
                t0 = time.monotonic()
                r = self.conn.cmd("NOOP", 30)
                self.lat.append(time.monotonic() - t0)
                assert r == b"+OK", r
                time.sleep(0.002)
        except BaseException as e:	# reported by finish()
            self.error = e

    def __enter__(self):
        self.thread.start()
        time.sleep(0.2)		# a few quiet samples first
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)

    def finish(self):
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return max(self.lat), len(self.lat)


def test_big_maildrop_does_not_stall_the_worker(make_herald, token):
    # B's NOOPs are the probe: the junk limit must not end its session
    inst = make_herald(pop3d_workers="1", pop3d_junk_command_limit="100000")
    a_addr, a_pw, a_local = new_user(inst, token + "a")
    b_addr, b_pw, _ = new_user(inst, token + "b")
    write_maildrop(inst, a_local, BIG)
    b = raw_login(inst, b_addr, b_pw)
    a = None
    try:
        with NoopProbe(b) as probe:
            t0 = time.monotonic()
            a = raw_login(inst, a_addr, a_pw, timeout=120)
            t_login = time.monotonic() - t0
            r = a.cmd("STAT")
            assert r == b"+OK %d %d" % (BIG, BIG * 19), r
            max_login, n_login = probe.finish()

        # again, now that the sizes are cached: nothing to move or read
        assert a.cmd("QUIT", 120).startswith(b"+OK")
        assert a.eof()
        a.close()
        with NoopProbe(b) as probe:
            t0 = time.monotonic()
            a = raw_login(inst, a_addr, a_pw, timeout=120)
            t_login2 = time.monotonic() - t0
            r = a.cmd("STAT")
            assert r == b"+OK %d %d" % (BIG, BIG * 19), r
            max_login2, n_login2 = probe.finish()

        with NoopProbe(b) as probe:
            for start in range(1, BIG + 1, CHUNK):
                nums = range(start, min(start + CHUNK, BIG + 1))
                a.send("".join("DELE %d\r\n" % i for i in nums))
                for i in nums:
                    r = a.line(60)
                    assert r.startswith(b"+OK"), (i, r)
            t0 = time.monotonic()
            r = a.cmd("QUIT", 120)
            t_quit = time.monotonic() - t0
            assert r == b"+OK Logging out, %d messages deleted" % BIG, r
            assert a.eof()
            max_quit, n_quit = probe.finish()
        print("\nlogin %.3fs: NOOP max %.3fs over %d; second login %.3fs: "
              "NOOP max %.3fs over %d; QUIT %.3fs: NOOP max %.3fs over %d"
              % (t_login, max_login, n_login, t_login2, max_login2,
                 n_login2, t_quit, max_quit, n_quit))
        assert max_login < NOOP_BOUND, (t_login, max_login)
        assert max_login2 < NOOP_BOUND, (t_login2, max_login2)
        assert max_quit < NOOP_BOUND, (t_quit, max_quit)
        assert b.cmd("QUIT").startswith(b"+OK")
        md = inst.maildir(a_local)
        assert os.listdir(md / "cur") == [] and os.listdir(md / "new") == []
    finally:
        b.close()
        if a is not None:
            a.close()


def list_sizes(inst, addr, pw):
    c = raw_login(inst, addr, pw)
    try:
        assert c.cmd("LIST").startswith(b"+OK")
        sizes = [int(ln.split()[1]) for ln in
                 c.multi_raw().split(b"\r\n") if ln]
        uidl_r = c.cmd("UIDL")
        assert uidl_r.startswith(b"+OK")
        uidls = [ln.split()[1].decode() for ln in
                 c.multi_raw().split(b"\r\n") if ln]
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.eof()
    finally:
        c.close()
    return sizes, uidls


def test_size_cache_spares_reading_messages(make_herald, token):
    inst = make_herald(pop3d_workers="1")
    addr, pw, local = new_user(inst, token)
    n = 30
    # 16 bytes, three LFs: 19 octets on the wire
    names = write_maildrop(inst, local, n, sub="cur", info=":2,")
    md = inst.maildir(local)
    sizes, uidls = list_sizes(inst, addr, pw)
    assert sizes == [19] * n
    assert uidls == names
    cache = md / "herald-sizes"
    assert cache.exists()
    text = cache.read_text().splitlines()
    assert text[0] == "herald-sizes 1" and len(text) == n + 1, text[:3]

    # Same length, same inode, same mtime, but six LFs (22 on the wire):
    # a login that reads the file would say 22; from the cache it is 19.
    for name in names:
        p = md / "cur" / (name + ":2,")
        st = p.stat()
        with open(p, "r+b") as f:
            assert f.write(b"Subject: x\n\n\n\n\n\n") == 16
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    # a flag change (IMAP) keeps the base name, and with it the entry
    os.rename(md / "cur" / (names[0] + ":2,"), md / "cur" / (names[0] +
                                                           ":2,S"))
    # a new mtime invalidates the entry: that one is counted again
    p = md / "cur" / (names[1] + ":2,")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
    sizes, uidls = list_sizes(inst, addr, pw)
    assert uidls == names
    assert sizes == [19, 22] + [19] * (n - 2), sizes

    # a corrupt cache is ignored, not believed, and rewritten
    cache.write_bytes(b"herald-sizes 1\n5 16 1 2.3 " + names[2].encode() +
                      b"\n" + b"x" * 5000 + b"\n")
    sizes, _ = list_sizes(inst, addr, pw)
    assert sizes == [22] * n, sizes
    assert cache.read_text().startswith("herald-sizes 1\n")
    assert len(cache.read_text().splitlines()) == n + 1


def test_herald_delivered_mail_needs_no_cache(make_herald, token):
    inst = make_herald(pop3d_workers="1")
    addr, pw, local = new_user(inst, token)
    with inst.smtp() as s:
        s.sendmail("sender@example.org", [addr],
                   H.make_message(token, to=addr))
    inst.wait_messages(token, local, count=1)
    sizes, _ = list_sizes(inst, addr, pw)
    assert len(sizes) == 1
    assert not (inst.maildir(local) / "herald-sizes").exists()

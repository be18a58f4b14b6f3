"""
COMPRESS=DEFLATE (RFC 4978) in imapd, spoken with raw sockets and
Python's zlib (raw DEFLATE, wbits=-15, sync-flushed): the capability
after login only, COMPRESS then commands over the compressed stream, a
command pipelined in the same packet as COMPRESS, a second COMPRESS (NO
[COMPRESSIONACTIVE]), unknown mechanisms and COMPRESS before login
(BAD), STARTTLS after COMPRESS (BAD), COMPRESS inside TLS (imaps),
corrupt compressed input (BYE with the reason, also behind lines still
to serve and behind a STATUS that waits for a job thread; the worker
serves on), a decompression bomb (ends by the line bound with BYE,
worker memory stays bounded) and imapd_compress = no.
"""
import os
import time
import zlib

import pytest

import herald as H
from test_imap_core import RawIMAP, USER, PW

SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapz", imap=True) \
            as inst:
        yield inst


class Deflated:
    """The compressed side of a RawIMAP after COMPRESS: lines in and out
    through raw DEFLATE (what was already read counts as compressed)."""

    def __init__(self, raw):
        self.raw = raw
        self.z = zlib.compressobj(wbits=-15)
        self.d = zlib.decompressobj(wbits=-15)
        self.buf = self.d.decompress(raw.buf)
        raw.buf = b""

    def packet(self, data):
        return self.z.compress(data) + self.z.flush(zlib.Z_SYNC_FLUSH)

    def send(self, data):
        self.raw.sock.sendall(self.packet(data))

    def line(self, timeout=15.0):
        """One line without CRLF; b"" at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no line within %.1fs: %r" % (timeout,
                                                           self.buf[:200])
            chunk = self.raw._fill(left)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += self.d.decompress(chunk)
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def until_tagged(self, tag):
        out = []
        for _ in range(1000):
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag.encode() + b" ") or ln == b"":
                return out
        raise AssertionError(out[-5:])

    def cmd(self, tag, text):
        self.send(("%s %s\r\n" % (tag, text)).encode())
        return self.until_tagged(tag)


def login(c):
    r = c.cmd("L", 'LOGIN "%s" "%s"' % (USER, PW))
    assert r[-1].startswith(b"L OK "), r
    return r


def compress(c):
    assert c.cmd("z", "COMPRESS DEFLATE") == [b"z OK DEFLATE active"]
    return Deflated(c)


def caps(lines):
    for ln in lines:
        if ln.startswith(b"* CAPABILITY "):
            return ln.split()[2:]
    raise AssertionError(lines)


def test_capability_after_login_only(imap):
    with RawIMAP(imap.imap_port) as c:
        assert b"COMPRESS=DEFLATE" not in c.greeting
        assert b"COMPRESS=DEFLATE" not in caps(c.cmd("a", "CAPABILITY"))
        # RFC 4978 section 3 (command-auth): not before login
        assert c.cmd("b", "COMPRESS DEFLATE") == \
            [b"b BAD COMPRESS: Not logged in"]
        r = login(c)
        assert b"COMPRESS=DEFLATE" in r[-1], r
        assert b"COMPRESS=DEFLATE" in caps(c.cmd("c", "CAPABILITY"))


def test_commands_over_compressed_stream(imap):
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        assert z.cmd("n", "NOOP") == [b"n OK NOOP completed"]
        r = z.cmd("c", "CAPABILITY")
        assert b"COMPRESS=DEFLATE" in caps(r) and r[-1].startswith(b"c OK")
        r = z.cmd("l", 'LIST "" "*"')
        assert r[-1] == b"l OK LIST completed", r
        assert any(ln.startswith(b"* LIST ") and b"INBOX" in ln
                   for ln in r), r
        r = z.cmd("s", "STATUS INBOX (MESSAGES UIDNEXT)")
        assert r[-1].startswith(b"s OK"), r
        assert r[0] == b"* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1)", r
        # a second COMPRESS: NO with the response code (section 3)
        r = z.cmd("y", "COMPRESS DEFLATE")
        assert r == [b"y NO [COMPRESSIONACTIVE] DEFLATE is already "
                     b"active (COMPRESS)"], r
        # STARTTLS cannot follow (TLS must come first; after login it is
        # refused anyway)
        r = z.cmd("t", "STARTTLS")
        assert r[-1].startswith(b"t BAD "), r
        # a big answer in several deflate flushes
        long_id = '("name" "%s")' % ("x" * 1000)
        assert z.cmd("i", "ID " + long_id)[-1] == b"i OK ID completed"
        r = z.cmd("o", "LOGOUT")
        assert r == [b"* BYE Logging out", b"o OK LOGOUT completed"]
        assert z.line() == b""
    imap.wait_log(r"imapd.*compress: user=<alice@example\.test> "
                  r"client=\[127\.0\.0\.1\] mechanism=DEFLATE")


def test_bad_mechanism_and_syntax(imap):
    with RawIMAP(imap.imap_port) as c:
        login(c)
        assert c.cmd("a", "COMPRESS GZIP") == [
            b"a BAD Unknown compression mechanism (DEFLATE is supported)"]
        assert c.cmd("b", "COMPRESS")[-1] == b"b BAD Syntax: COMPRESS DEFLATE"
        assert c.cmd("c", "COMPRESS DEFLATE X")[-1] == \
            b"c BAD Syntax: COMPRESS DEFLATE"
        # nothing changed: still plain, and the mechanism is any case
        assert c.cmd("d", "NOOP") == [b"d OK NOOP completed"]
        assert c.cmd("e", "compress deflate") == [b"e OK DEFLATE active"]
        z = Deflated(c)
        assert z.cmd("f", "NOOP") == [b"f OK NOOP completed"]


def test_pipelined_behind_compress(imap):
    """Bytes in the same packet as COMPRESS are compressed input."""
    with RawIMAP(imap.imap_port) as c:
        login(c)
        zc = zlib.compressobj(wbits=-15)
        data = zc.compress(b"n NOOP\r\nc CAPABILITY\r\n") + \
            zc.flush(zlib.Z_SYNC_FLUSH)
        c.send(b"z COMPRESS DEFLATE\r\n" + data)
        assert c.line() == b"z OK DEFLATE active"
        z = Deflated(c)
        z.z = zc
        assert z.line() == b"n OK NOOP completed"
        r = z.until_tagged("c")
        assert r[-1] == b"c OK CAPABILITY completed", r
        assert z.cmd("m", "NAMESPACE")[-1] == b"m OK NAMESPACE completed"


def test_compress_inside_tls(imap):
    with RawIMAP(imap.imaps_port, tls_ctx=imap.tls_context()) as c:
        assert c.greeting.startswith(b"* OK ")
        login(c)
        z = compress(c)
        assert z.cmd("n", "NOOP") == [b"n OK NOOP completed"]
        r = z.cmd("l", 'LIST "" INBOX')
        assert r[-1] == b"l OK LIST completed", r
        r = z.cmd("o", "LOGOUT")
        assert r[-1] == b"o OK LOGOUT completed"


def test_starttls_then_compress(imap):
    with RawIMAP(imap.imap_port) as c:
        assert c.cmd("s", "STARTTLS") == [b"s OK Begin TLS negotiation now"]
        c.starttls(imap.tls_context(), "mx.example.test")
        login(c)
        z = compress(c)
        assert z.cmd("n", "NOOP") == [b"n OK NOOP completed"]


def test_corrupt_input_bye_and_worker_stays(imap):
    workers = sorted(imap.children("imapd"))
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        assert z.cmd("n", "NOOP") == [b"n OK NOOP completed"]
        # a block of reserved type 3: invalid DEFLATE
        c.sock.sendall(b"\xff\xff\xff\xff\xff\xff")
        ln = z.line()
        assert ln.startswith(b"* BYE Corrupt compressed input: "), ln
        assert z.line() == b""
    imap.wait_log(r"imapd.*corrupt compressed input from \[127\.0\.0\.1\]")
    imap.wait_log(r"imapd.*disconnect from \[127\.0\.0\.1\] \(corrupt "
                  r"compressed input\)")
    # the same workers serve the next session
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        assert z.cmd("n", "NOOP") == [b"n OK NOOP completed"]
    assert sorted(imap.children("imapd")) == workers


def test_corrupt_after_good_lines(imap):
    """Lines inflated before the corrupt part are served first."""
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        c.sock.sendall(z.packet(b"n NOOP\r\n") + b"\xff\xff\xff\xff")
        assert z.line() == b"n OK NOOP completed"
        assert z.line().startswith(b"* BYE Corrupt compressed input: ")
        assert z.line() == b""


def test_decompression_bomb(imap):
    """200 MB of zeros, about 200 KB compressed: the session ends by the
    64 KB line bound with BYE; the worker's memory stays bounded."""
    workers = imap.children("imapd")
    rss0 = sum(H.proc_status_kb(p, "VmRSS") or 0 for p in workers)
    zc = zlib.compressobj(level=9, wbits=-15)
    mb = b"\0" * (1 << 20)
    bomb = b"".join(zc.compress(mb) for _ in range(200)) + \
        zc.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 1 << 20
    t0 = time.monotonic()
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        z.z = zc
        try:
            c.sock.settimeout(20)
            c.sock.sendall(bomb)
        except OSError:
            pass        # the server may close before taking it all
        ln = z.line(timeout=20)
        assert ln == b"* BYE Too much input without a line end", ln
        assert z.line(timeout=20) == b""
    assert time.monotonic() - t0 < 20
    imap.wait_log(r"imapd.*too much input without a line end from "
                  r"\[127\.0\.0\.1\]")
    rss1 = sum(H.proc_status_kb(p, "VmRSS") or 0 for p in workers)
    print("imapd worker RSS before %d kB, after %d kB" % (rss0, rss1))
    assert rss1 - rss0 < (40000 if SANITIZED else 3000), (rss0, rss1)
    with RawIMAP(imap.imap_port) as c:
        login(c)
        assert c.cmd("n", "NOOP") == [b"n OK NOOP completed"]



def test_bomb_in_a_literal(imap):
    """60 MB of zeros in a LITERAL+ over imapd_literal_limit (50 MB),
    about 60 KB compressed: all of it is inflated and thrown away (BAD
    [TOOBIG]), in bounded time and memory, and the session goes on."""
    workers = imap.children("imapd")
    rss0 = sum(H.proc_status_kb(p, "VmRSS") or 0 for p in workers)
    size = 60 * 1000 * 1000
    zc = zlib.compressobj(level=9, wbits=-15)
    mb = b"\0" * 1000000
    bomb = zc.compress(b"x ID {%d+}\r\n" % size) + \
        b"".join(zc.compress(mb) for _ in range(size // len(mb))) + \
        zc.compress(b"\r\nn NOOP\r\n") + zc.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 1 << 20
    t0 = time.monotonic()
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        z.z = zc
        c.sock.sendall(bomb)
        r = z.until_tagged("x")
        # 60 MB breaks imapd_literal_limit (50M) first, and the answer
        # names the limit it broke
        assert r == [b"x BAD [TOOBIG] Literal too big (limit 52428800 "
                     b"octets)"], r
        assert z.line(timeout=30) == b"n OK NOOP completed"
        took = time.monotonic() - t0
        rss1 = sum(H.proc_status_kb(p, "VmRSS") or 0 for p in workers)
        assert z.cmd("m", "NOOP") == [b"m OK NOOP completed"]
    print("60 MB literal inflated and discarded in %.2f s; imapd worker "
          "RSS before %d kB, after %d kB" % (took, rss0, rss1))
    assert took < 20
    # (not under ASan: its quarantine keeps the ~60 MB of 16 KB input
    # buffers the stream freed on the way, up to 256 MB)
    if not SANITIZED:
        assert rss1 - rss0 < 3000, (rss0, rss1)


def test_compress_disabled(imap):
    """imapd_compress = no: not advertised, COMPRESS gets BAD."""
    imap.set_config(imapd_compress="no")
    try:
        imap.ctl_ok("reload")
        deadline = time.monotonic() + 20
        while True:
            with RawIMAP(imap.imap_port) as c:
                r = login(c)
                if b"COMPRESS=DEFLATE" not in r[-1]:
                    break
            assert time.monotonic() < deadline, "reload not applied"
            time.sleep(0.2)
        with RawIMAP(imap.imap_port) as c:
            r = login(c)
            assert b"COMPRESS=DEFLATE" not in caps(c.cmd("a", "CAPABILITY"))
            assert c.cmd("b", "COMPRESS DEFLATE") == \
                [b"b BAD COMPRESS is disabled on this server"]
            assert c.cmd("n", "NOOP") == [b"n OK NOOP completed"]
    finally:
        imap.set_config(imapd_compress=None)
        imap.ctl_ok("reload")


def test_corrupt_behind_job(imap):
    """Corrupt input behind a command that waits for a job thread
    (STATUS syncs the folder): the BYE still comes after its answer."""
    with RawIMAP(imap.imap_port) as c:
        login(c)
        z = compress(c)
        c.sock.sendall(z.packet(b"s STATUS INBOX (MESSAGES)\r\n") +
                       b"\xff\xff\xff\xff")
        r = z.until_tagged("s")
        assert r[-1] == b"s OK STATUS completed", r
        ln = z.line()
        assert ln.startswith(b"* BYE Corrupt compressed input: "), ln
        assert z.line() == b""

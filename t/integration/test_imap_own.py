"""
An IMAP op on the selected folder accounts for its own changes (issue
14): STORE, EXPUNGE, MOVE and COPY (UID too), FETCH's implicit \\Seen and
APPEND into the selected folder check the view's stamp before they run
and, when nothing but the op changed the folder (one rule, also for ops
that move files out of new/ or add UIDs), put their changes into the
session's view instead of syncing (readdir of new/ and cur/) and listing
the whole folder. STORE and APPEND with \\Recent get BAD. What every
test here holds to:

- after such an op on a 20,000-message INBOX neither it nor the NOOP
  right after it reads the folder's directories (inotify IN_OPEN on
  new/, which every sync opens and no op does);
- the first check after the stamp's doubt still syncs (Dovecot's delayed
  refresh), and a sync that finds nothing keeps the view;
- another session sees the changes (FETCH FLAGS, EXPUNGE) at its next
  command, and an IDLE one is pushed them;
- two sessions that STORE at the same moment each see the other's
  change at their next command at the latest;
- another tool's rename in cur/ in the same clock tick as the op's own
  (emulated: cur/'s mtime put back to the op's) is not hidden: the first
  NOOP after the doubt shows it; a delivery landing during a STORE is
  seen too.
"""
import ctypes
import os
import re
import struct
import threading
import time

import pytest

from test_imap_core import RawIMAP, imap_instance

USER, PW = "alice@example.test", "pw-alice"
BOB, BOBPW = "bob@example.test", "pw-bob"
CAROL, CAROLPW = "carol@example.test", "pw-carol"
DAVE, DAVEPW = "dave@example.test", "pw-dave"
BIG = 20000
IN_OPEN = 0x20


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    yield from imap_instance(tmp_path_factory, pki, "imapown")


class DirOpens:
    """Counts the opens of one directory itself (inotify IN_OPEN; or,
    mask IN_ACCESS, its reads, which readdir makes and an fsync of it
    does not): a sync opens and reads new/; an op that patches the view
    does neither (APPEND and EXPUNGE fsync it)."""

    def __init__(self, path, mask=IN_OPEN):
        self.mask = mask
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, str(path).encode(),
                                  mask) < 0:
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, "inotify_add_watch %s" % path)

    def take(self):
        """Opens seen since the last call."""
        n = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return n
            off = 0
            while off + 16 <= len(data):
                _, mask, _, ln = struct.unpack_from("iIII", data, off)
                if mask & self.mask and ln == 0:
                    n += 1
                off += 16 + ln

    def close(self):
        os.close(self.fd)


def home_of(inst, user):
    """The user's Maildir, made as local makes it, owned as its parent."""
    home = inst.maildir(user.split("@")[0])
    home.mkdir(parents=True, exist_ok=True)
    owner = home.parent.stat()
    os.chown(home, owner.st_uid, owner.st_gid)
    for sub in ("cur", "new", "tmp"):
        (home / sub).mkdir(exist_ok=True)
        os.chown(home / sub, owner.st_uid, owner.st_gid)
    return home


def fill_cur(home, n):
    """n small messages straight into cur/ (arrival order = number), then
    old mtimes on new/ and cur/: the first SELECT's stamp is trusted."""
    owner = home.stat()
    for i in range(n):
        name = "%d.M%dP1Q%d.host,S=40,W=43:2," % (1600000000 + i, i, i)
        fd = os.open(home / "cur" / name, os.O_WRONLY | os.O_CREAT |
                     os.O_EXCL, 0o600)
        os.write(fd, b"From: a@example.org\nSubject: m%d\n\nbody\n" % i)
        os.fchown(fd, owner.st_uid, owner.st_gid)
        os.close(fd)
    old = time.time() - 60
    for sub in ("cur", "new"):
        os.utime(home / sub, (old, old))


def doubt(home):
    """A sleep past the stamp's doubt: 0.1 s where mtimes have
    sub-seconds, 2 s (and the tick) where they are whole seconds."""
    fine = (home / "cur").stat().st_mtime_ns % 1000000000 != 0
    return 0.35 if fine else 3.5


def session(inst, user, pw):
    """A logged-in IMAP4rev2 session (no \\Recent in its answers)."""
    c = RawIMAP(inst.imap_port, timeout=60)
    c.login(user, pw)
    r = c.cmd("E", "ENABLE IMAP4rev2")
    assert r[-1].startswith(b"E OK"), r
    return c


def ok(c, tag, text, timeout=60):
    r = c.cmd(tag, text, timeout)
    assert r[-1].startswith(tag.encode() + b" OK"), (text, r[-3:])
    return r


def untagged(lines):
    return [ln for ln in lines if ln.startswith(b"* ")]


def told(lines, seq, flags):
    """Was "* seq FETCH (UID u FLAGS (flags))" (a change told unasked)
    among lines?"""
    pat = rb"\* %d FETCH \(UID \d+ FLAGS \(%s\)\)" % (
        seq, re.escape(flags))
    return any(re.fullmatch(pat, ln) for ln in lines)


def file_of(home, i):
    """The name of message number i (fill_cur's) in cur/ now."""
    prefix = "%d." % (1600000000 + i)
    for name in os.listdir(home / "cur"):
        if name.startswith(prefix):
            return name
    raise AssertionError("no message %d in cur/" % i)


def test_own_store_and_expunge_read_no_directory(imap):
    """STORE, UID STORE, EXPUNGE, UID EXPUNGE, MOVE and COPY on 20,000
    messages and the NOOP after each: no sync (new/ is not opened; for
    the NOOP only when it came within the doubt of the op, as it does
    unless the machine is very busy); the first NOOP after the doubt
    syncs once and tells nothing; a second session sees the same
    folder."""
    home = home_of(imap, CAROL)
    fill_cur(home, BIG)
    opens = DirOpens(home / "new")
    c = session(imap, CAROL, CAROLPW)
    try:
        r = ok(c, "s", "SELECT INBOX", timeout=300)
        assert b"* %d EXISTS" % BIG in r
        assert opens.take() >= 1	# the SELECT synced
        wait = doubt(home)
        quick = 0.1 if wait < 1 else 3.0	# the doubt itself
        noops = []

        def op(tag, text):
            # the op reads no directory; nor does the NOOP right after
            # it if it came within the doubt of the op's stamp
            t0 = time.monotonic()
            r = ok(c, tag, text)
            assert opens.take() == 0, "%s synced" % text
            n = ok(c, tag + "n", "NOOP")
            assert untagged(n) == [], n
            if time.monotonic() - t0 < quick:
                assert opens.take() == 0, "the NOOP after %s synced" % text
                noops.append(text)
            opens.take()
            return r

        def refresh(tag):
            # the delayed refresh: after the doubt the first check syncs
            # (and finds nothing to tell)
            time.sleep(wait)
            r = ok(c, tag, "NOOP")
            assert untagged(r) == [], r
            assert opens.take() >= 1, "no sync after the doubt"
            r = ok(c, tag + "2", "NOOP")
            assert untagged(r) == [], r
            assert opens.take() == 0, "a trusted stamp synced again"

        refresh("s")	# the SELECT indexed the folder: untrusted stamp
        r = op("a", "STORE 5 +FLAGS (\\Seen)")
        assert untagged(r) == [b"* 5 FETCH (FLAGS (\\Seen))"], r
        refresh("c")

        r = op("d", "UID STORE 9 +FLAGS (\\Flagged $Work)")
        assert untagged(r)[0] == b"* FLAGS (\\Answered \\Flagged " \
            b"\\Deleted \\Seen \\Draft $Work)", r
        assert b"* 9 FETCH (UID 9 FLAGS (\\Flagged $Work))" in r, r
        refresh("f")

        ok(c, "g", "STORE 7,11,12 +FLAGS.SILENT (\\Deleted)")
        refresh("h")
        r = op("i", "EXPUNGE")
        assert untagged(r) == [b"* 7 EXPUNGE", b"* 10 EXPUNGE",
                               b"* 10 EXPUNGE"], r
        refresh("k")

        ok(c, "l", "UID STORE 20,21,22 +FLAGS.SILENT (\\Deleted)")
        refresh("m")
        r = op("n", "UID EXPUNGE 21:30")
        assert untagged(r) == [b"* 18 EXPUNGE", b"* 18 EXPUNGE"], r
        refresh("p")
        r = ok(c, "q", "FETCH 17:18 (UID FLAGS)")
        assert untagged(r) == [
            b"* 17 FETCH (FLAGS (\\Deleted) UID 20)",
            b"* 18 FETCH (FLAGS () UID 23)"], r

        # MOVE: the COPYUID, then its expunges; COPY changes nothing here
        r = op("t", "MOVE 1:2 Trash")
        assert untagged(r)[0].startswith(b"* OK [COPYUID "), r
        assert untagged(r)[1:] == [b"* 1 EXPUNGE", b"* 1 EXPUNGE"], r
        refresh("v")
        r = op("w", "COPY 1:3 Trash")
        assert untagged(r) == [], r
        print("NOOPs within the doubt of their op: %s" % noops)

        # what another session reads from the index is the view
        d = session(imap, CAROL, CAROLPW)
        try:
            r = ok(d, "s", "SELECT INBOX", timeout=300)
            assert b"* %d EXISTS" % (BIG - 7) in r
            mine = untagged(ok(c, "x", "FETCH 1:30 (UID FLAGS)"))
            theirs = untagged(ok(d, "x", "FETCH 1:30 (UID FLAGS)"))
            assert mine == theirs
        finally:
            d.close()
    finally:
        c.close()
        opens.close()


def test_other_sessions_see_own_changes(imap):
    """What one session changes through the view patch, another sees at
    its next command (FETCH FLAGS, EXPUNGE), and one in IDLE is pushed
    it."""
    home = home_of(imap, DAVE)
    fill_cur(home, 50)
    a = session(imap, DAVE, DAVEPW)
    b = session(imap, DAVE, DAVEPW)
    i = session(imap, DAVE, DAVEPW)
    try:
        for c in (a, b, i):
            assert b"* 50 EXISTS" in ok(c, "s", "SELECT INBOX")
        i.send(b"I IDLE\r\n")
        assert i.line(10).startswith(b"+ ")
        r = ok(a, "a", "STORE 3 +FLAGS (\\Flagged)")
        assert b"* 3 FETCH (FLAGS (\\Flagged))" in r
        r = ok(b, "b", "NOOP")
        assert told(r, 3, b"\\Flagged"), r
        assert told([i.line(10)], 3, b"\\Flagged")
        ok(a, "c", "STORE 4 +FLAGS.SILENT (\\Deleted)")
        assert told([i.line(10)], 4, b"\\Deleted")
        r = ok(a, "d", "EXPUNGE")
        assert untagged(r) == [b"* 4 EXPUNGE"], r
        assert i.line(10) == b"* 4 EXPUNGE"
        r = ok(b, "e", "NOOP")
        assert untagged(r) == [b"* 4 EXPUNGE"], r
        i.send(b"DONE\r\n")
        assert i.until_tagged("I", 10)[-1].startswith(b"I OK")
        mine = untagged(ok(a, "x", "FETCH 1:* (UID FLAGS)"))
        for c in (b, i):
            assert untagged(ok(c, "x", "FETCH 1:* (UID FLAGS)")) == mine
    finally:
        for c in (a, b, i):
            c.close()


def test_two_sessions_store_at_once(imap):
    """Two sessions STORE at the same moment, twenty times: each sees
    the other's change at its next command at the latest (another
    herald writer always moves HIGHESTMODSEQ: the op's check after it
    or the next command's stamp finds it)."""
    home = home_of(imap, USER)
    fill_cur(home, 60)
    a = session(imap, USER, PW)
    b = session(imap, USER, PW)
    try:
        for c in (a, b):
            assert b"* 60 EXISTS" in ok(c, "s", "SELECT INBOX")
        for n in range(1, 21):
            x, y = 2 * n - 1, 2 * n
            go = threading.Barrier(2)
            got = {}

            def store(c, key, text):
                go.wait()
                got[key] = c.cmd(key, text)

            ta = threading.Thread(target=store, args=(
                a, "a%d" % n, "STORE %d +FLAGS (\\Seen)" % x))
            tb = threading.Thread(target=store, args=(
                b, "b%d" % n, "STORE %d +FLAGS (\\Flagged)" % y))
            ta.start()
            tb.start()
            ta.join(60)
            tb.join(60)
            seen_a = got["a%d" % n] + ok(a, "na%d" % n, "NOOP")
            seen_b = got["b%d" % n] + ok(b, "nb%d" % n, "NOOP")
            assert told(seen_a, y, b"\\Flagged") or \
                b"* %d FETCH (FLAGS (\\Flagged))" % y in seen_a, \
                (n, seen_a)
            assert told(seen_b, x, b"\\Seen") or \
                b"* %d FETCH (FLAGS (\\Seen))" % x in seen_b, (n, seen_b)
    finally:
        a.close()
        b.close()


def test_same_tick_change_by_another_tool_is_not_missed(imap):
    """Another tool renames a file in cur/ in the clock tick of a STORE's
    own rename (emulated: cur/'s mtime put back to the one the STORE
    left): the NOOP after the doubt shows it. Likewise for a message
    put into new/ while a STORE runs."""
    home = home_of(imap, BOB)
    fill_cur(home, 40)
    c = session(imap, BOB, BOBPW)
    try:
        assert b"* 40 EXISTS" in ok(c, "s", "SELECT INBOX")
        wait = doubt(home)
        for n, (mine, other) in enumerate([(1, 2), (5, 6), (9, 10)]):
            time.sleep(wait)
            ok(c, "r%d" % n, "NOOP")	# a trusted stamp again
            r = ok(c, "a%d" % n, "STORE %d +FLAGS (\\Seen)" % mine)
            after = (home / "cur").stat().st_mtime_ns
            name = file_of(home, other - 1)
            os.rename(home / "cur" / name, home / "cur" / (name + "F"))
            os.utime(home / "cur", ns=(after, after))
            seen = r + ok(c, "b%d" % n, "NOOP")
            time.sleep(wait)
            seen += ok(c, "c%d" % n, "NOOP")
            assert told(seen, other, b"\\Flagged"), (n, seen)
        # a message put into new/ while a STORE runs
        time.sleep(wait)
        ok(c, "r", "NOOP")
        c.send(b"d STORE 20 +FLAGS (\\Answered)\r\n")
        owner = home.stat()
        tmp = home / "tmp" / "1700000000.Mnew.host"
        tmp.write_bytes(b"From: b@example.org\nSubject: new\n\nnew\n")
        os.chown(tmp, owner.st_uid, owner.st_gid)
        os.rename(tmp, home / "new" / tmp.name)
        seen = c.until_tagged("d", 60)
        assert seen[-1].startswith(b"d OK"), seen
        seen += ok(c, "e", "NOOP")
        time.sleep(wait)
        seen += ok(c, "f", "NOOP")
        assert b"* 41 EXISTS" in seen, seen
        assert re.search(rb"^\* 20 FETCH \(FLAGS \(\\Answered\)\)$",
                         b"\n".join(seen), re.M), seen
    finally:
        c.close()


def test_first_flag_moves_out_of_new_without_a_sync(imap):
    """Indexed mail stays in new/ (s10-newdir) until its first flag,
    whose STORE moves it to cur/ and so moves new/'s mtime itself: the
    op says so, and still patches the view with no sync; a message
    delivered into new/ meanwhile shows at the first check after the
    doubt."""
    imap.add_user("erin@example.test", "pw-erin")
    home = home_of(imap, "erin@example.test")
    owner = home.stat()
    for i in range(2000):
        name = "%d.M%dP2Q%d.host,S=40,W=43" % (1600000000 + i, i, i)
        path = home / "new" / name
        path.write_bytes(b"From: a@example.org\nSubject: n%d\n\nbody\n" % i)
        os.chown(path, owner.st_uid, owner.st_gid)
    old = time.time() - 60
    for sub in ("cur", "new"):
        os.utime(home / sub, (old, old))
    opens = DirOpens(home / "new")
    c = session(imap, "erin@example.test", "pw-erin")
    try:
        r = ok(c, "s", "SELECT INBOX", timeout=300)
        assert b"* 2000 EXISTS" in r
        wait = doubt(home)
        time.sleep(wait)
        ok(c, "r", "NOOP")		# the delayed refresh after SELECT
        assert opens.take() >= 1, "no sync after the doubt"
        ok(c, "r2", "NOOP")
        assert opens.take() == 0, "a trusted stamp synced again"
        assert len(os.listdir(home / "new")) == 2000
        opens.take()		# the listdir's own open
        r = ok(c, "a", "STORE 7 +FLAGS (\\Seen)")
        assert untagged(r) == [b"* 7 FETCH (FLAGS (\\Seen))"], r
        assert opens.take() == 0, "the first flag's STORE synced"
        assert len(os.listdir(home / "new")) == 1999
        assert any(n.endswith(":2,S") for n in os.listdir(home / "cur"))
        # a delivery during such an op hides behind new/'s mtime only
        # for the doubt: emulated by one landing right after it
        path = home / "new" / "1700000000.M1P3Q1.host,S=40,W=43"
        path.write_bytes(b"From: a@example.org\nSubject: late\n\nbody\n")
        os.chown(path, owner.st_uid, owner.st_gid)
        time.sleep(wait)
        r = ok(c, "b", "NOOP")
        assert b"* 2001 EXISTS" in r, r
    finally:
        c.close()
        opens.close()


IN_ACCESS = 0x01


def fill_new(home, n, tag):
    """n small messages straight into new/, then old mtimes on new/ and
    cur/ (indexed mail stays in new/ until its first flag)."""
    owner = home.stat()
    for i in range(n):
        name = "%d.M%dP%sQ%d.host,S=40,W=43" % (1600000000 + i, i, tag, i)
        path = home / "new" / name
        path.write_bytes(b"From: a@example.org\nSubject: n%d\n\nbody\n" % i)
        os.chown(path, owner.st_uid, owner.st_gid)
    old = time.time() - 60
    for sub in ("cur", "new"):
        os.utime(home / sub, (old, old))


def settled(c, home, reads):
    """After SELECT: the delayed refresh (one read of new/), then a
    trusted stamp that reads nothing."""
    time.sleep(doubt(home))
    ok(c, "r1", "NOOP")
    assert reads.take() >= 1, "no sync after the doubt"
    ok(c, "r2", "NOOP")
    assert reads.take() == 0, "a trusted stamp synced again"


MSG = b"From: b@example.org\r\nSubject: appended\r\n\r\nhello\r\n"


def test_fetch_seen_append_copy_move_patch_the_view(imap):
    """With indexed mail in new/: FETCH BODY[] (its implicit \\Seen moves
    the file out of new/), APPEND and COPY into the selected folder (a
    UID the op committed itself) and MOVE of a message still in new/
    put their own changes into the view: none reads new/ (a sync does:
    inotify IN_ACCESS, which readdir makes and an fsync does not), the
    client is told FLAGS, EXISTS and EXPUNGE as a sync would, another
    session sees the same folder, and a delivery landing right after
    shows at the first check after the doubt."""
    imap.add_user("frank@example.test", "pw-frank")
    home = home_of(imap, "frank@example.test")
    fill_new(home, 300, "4")
    reads = DirOpens(home / "new", IN_ACCESS)
    c = session(imap, "frank@example.test", "pw-frank")
    try:
        assert b"* 300 EXISTS" in ok(c, "s", "SELECT INBOX", timeout=120)
        settled(c, home, reads)

        r = ok(c, "a", "FETCH 7 (BODY[TEXT])")
        assert b"FLAGS (\\Seen)" in b"".join(r), r
        assert reads.take() == 0, "FETCH's implicit \\Seen synced"
        assert len(os.listdir(home / "new")) == 299
        reads.take()		# the listdir's own read
        r = ok(c, "a2", "FETCH 7 (FLAGS)")
        assert untagged(r) == [b"* 7 FETCH (FLAGS (\\Seen))"], r

        c.send(b"b APPEND INBOX (\\Flagged) {%d+}\r\n" % len(MSG) + MSG +
               b"\r\n")
        r = c.until_tagged("b", 60)
        assert r[-1].startswith(b"b OK [APPENDUID "), r
        assert untagged(r) == [b"* 301 EXISTS"], r
        assert reads.take() == 0, "APPEND into the selected folder synced"
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", r[-1]).group(1))
        r = ok(c, "b2", "UID FETCH %d (FLAGS)" % uid)
        assert untagged(r) == [
            b"* 301 FETCH (UID %d FLAGS (\\Flagged))" % uid], r

        r = ok(c, "c", "COPY 1:2 INBOX")
        assert untagged(r) == [b"* 303 EXISTS"], r
        assert b"[COPYUID " in r[-1], r
        assert reads.take() == 0, "COPY into the selected folder synced"

        r = ok(c, "d", "MOVE 10 Trash")
        assert untagged(r)[1:] == [b"* 10 EXPUNGE"], r
        assert reads.take() == 0, "MOVE out of new/ synced"
        assert reads.take() == 0

        # a delivery right after an op hides for the doubt at most
        path = home / "new" / "1700000000.M1P4Q1.host,S=40,W=43"
        path.write_bytes(b"From: a@example.org\nSubject: late\n\nbody\n")
        owner = home.stat()
        os.chown(path, owner.st_uid, owner.st_gid)
        time.sleep(doubt(home))
        r = ok(c, "e", "NOOP")
        assert untagged(r) == [b"* 303 EXISTS"], r

        d = session(imap, "frank@example.test", "pw-frank")
        try:
            assert b"* 303 EXISTS" in ok(d, "s", "SELECT INBOX")
            mine = untagged(ok(c, "x", "FETCH 1:* (UID FLAGS)"))
            theirs = untagged(ok(d, "x", "FETCH 1:* (UID FLAGS)"))
            assert mine == theirs
        finally:
            d.close()
    finally:
        c.close()
        reads.close()


def test_append_to_selected_is_recent_without_a_sync(imap):
    """An IMAP4rev1 session that APPENDs into its selected folder is told
    EXISTS and RECENT, and the message is \\Recent for it, with no sync
    (the own op claims \\Recent as the sync after it would); when
    another session appended meanwhile, the folder is synced and both
    messages are told."""
    imap.add_user("gina@example.test", "pw-gina")
    home = home_of(imap, "gina@example.test")
    fill_new(home, 20, "5")
    reads = DirOpens(home / "new", IN_ACCESS)
    c = RawIMAP(imap.imap_port, timeout=60)
    try:
        c.login("gina@example.test", "pw-gina")
        r = ok(c, "s", "SELECT INBOX")
        assert b"* 20 EXISTS" in r and b"* 20 RECENT" in r, r
        settled(c, home, reads)
        c.send(b"b APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        r = c.until_tagged("b", 60)
        assert r[-1].startswith(b"b OK [APPENDUID "), r
        assert untagged(r) == [b"* 21 EXISTS", b"* 21 RECENT"], r
        assert reads.take() == 0, "APPEND into the selected folder synced"
        r = ok(c, "f", "FETCH 21 (FLAGS)")
        assert untagged(r) == [b"* 21 FETCH (FLAGS (\\Recent))"], r
        # another session's APPEND before this one's: not its own
        # change, so the folder is synced and both are told
        d = session(imap, "gina@example.test", "pw-gina")
        try:
            d.send(b"b APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
            assert d.until_tagged("b", 60)[-1].startswith(b"b OK ")
        finally:
            d.close()
        reads.take()
        c.send(b"g APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        r = c.until_tagged("g", 60)
        assert r[-1].startswith(b"g OK [APPENDUID "), r
        assert untagged(r) == [b"* 23 EXISTS", b"* 23 RECENT"], r
        assert reads.take() >= 1, "another's APPEND was not synced"
    finally:
        c.close()
        reads.close()


def test_recent_cannot_be_stored_or_appended(imap):
    """\\Recent is no flag of RFC 3501's grammar (the server alone sets
    it) and RFC 9051 has none: STORE and UID STORE with it, +FLAGS,
    -FLAGS or FLAGS, and APPEND with it get BAD (as from Dovecot), and
    nothing is changed or appended."""
    imap.add_user("hana@example.test", "pw-hana")
    fill_cur(home_of(imap, "hana@example.test"), 3)
    c = RawIMAP(imap.imap_port, timeout=60)
    try:
        c.login("hana@example.test", "pw-hana")
        assert b"* 3 EXISTS" in ok(c, "s", "SELECT INBOX")
        for i, cmd in enumerate([
                "STORE 1 +FLAGS (\\Recent)",
                "STORE 1 -FLAGS (\\Recent)",
                "STORE 1 FLAGS (\\Seen \\Recent)",
                "STORE 1 +FLAGS.SILENT \\Recent",
                "UID STORE 1:* FLAGS (\\Recent)",
                "UID STORE 1:* -FLAGS.SILENT (\\recent)"]):
            r = c.cmd("t%d" % i, cmd)
            assert r[-1].startswith(b"t%d BAD " % i), (cmd, r)
        c.send(b"a APPEND INBOX (\\Seen \\Recent) {%d+}\r\n" % len(MSG) +
               MSG + b"\r\n")
        r = c.until_tagged("a", 60)
        assert r[-1].startswith(b"a BAD "), r
        r = ok(c, "n", "NOOP")
        assert not any(b"EXISTS" in ln or b"FETCH" in ln for ln in r), r
        r = ok(c, "f", "FETCH 1 (FLAGS)")
        assert b"\\Seen" not in r[0], r
    finally:
        c.close()

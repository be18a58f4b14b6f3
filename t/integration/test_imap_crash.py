"""
imapd and local are SIGKILLed at random moments while mail is delivered
by SMTP and IMAP sessions APPEND, STORE, EXPUNGE, COPY and MOVE (issue 14,
DESIGN.md 4 and 7). Afterwards, with the killing stopped and fresh
sessions:

  - every message that got 250 from SMTP or OK from APPEND is there (in
    some folder of its user) unless it was expunged; a duplicate is
    allowed, a loss is not;
  - no UID was ever reported (APPENDUID, COPYUID, FETCH) for two different
    messages within one UIDVALIDITY, every UID reported for a message not
    expunged still names that message, UIDVALIDITY did not change, and
    UIDNEXT is above every UID ever reported;
  - flags a STORE got OK for are still set unless the message went;
  - `heraldctl mailbox reindex` + `mailbox status` agree with a fresh
    SELECT (EXISTS, UIDNEXT) and the Maildir holds as many messages per
    folder as the index.

The randomness is seeded (HERALD_IMAP_CRASH_SEED; the seed is printed);
the counts and the time are bounded: HERALD_IMAP_CRASH_SECONDS (default
18) of load, at most HERALD_IMAP_CRASH_KILLS (default 14) kills.
"""
import json
import os
import random
import re
import signal
import smtplib
import socket
import threading
import time

import herald as H
from test_imap_core import RawIMAP

SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
SEED = int(os.environ.get("HERALD_IMAP_CRASH_SEED",
                          str(random.SystemRandom().randrange(1 << 31))))
LOAD_SECONDS = float(os.environ.get("HERALD_IMAP_CRASH_SECONDS", "18"))
MAX_KILLS = int(os.environ.get("HERALD_IMAP_CRASH_KILLS", "14"))
N_SMTP = 90
USERS = ("alice", "bob", "carol")
FOLDERS = ("INBOX", "Archive")
FLAGS = ("\\Flagged", "\\Answered", "$Work")
SLOW = 4 if SANITIZED else 1
TOKEN_RE = re.compile(rb"\b((?:sm|ap)-[0-9a-f]{8}-[a-z]+-\d+)\b")


class Lost(Exception):
    """The session ended without a tagged answer (its worker died)."""


class Session:
    """One IMAP session; raises Lost when the connection goes."""

    def __init__(self, port, user):
        self.c = RawIMAP(port, timeout=15 * SLOW)
        if not self.c.greeting.startswith(b"* OK"):
            raise Lost(self.c.greeting)
        self.n = 0
        self.ok("LOGIN %s@example.test pw-%s" % (user, user))

    def cmd(self, text, literal=None):
        self.n += 1
        tag = "t%d" % self.n
        try:
            if literal is None:
                self.c.send((tag + " " + text + "\r\n").encode())
            else:
                self.c.send((tag + " " + text + " {%d+}\r\n"
                             % len(literal)).encode() + literal + b"\r\n")
            out = []
            for _ in range(200000):
                raw = self.c.readline(15 * SLOW)
                if raw == b"":
                    break
                ln = raw.rstrip(b"\r\n")
                out.append(ln)
                if ln.startswith(tag.encode() + b" "):
                    break
        except (OSError, socket.timeout) as e:
            raise Lost(repr(e))
        if not out or not out[-1].startswith(tag.encode() + b" "):
            raise Lost(out[-3:])
        return out

    def ok(self, text, literal=None):
        out = self.cmd(text, literal)
        status = out[-1].split(b" ", 2)[1]
        return status == b"OK", out

    def close(self):
        try:
            self.c.close()
        except OSError:
            pass


def fetch_groups(lines):
    """(uid, flags, token) of each FETCH answer in lines."""
    groups, cur = [], None
    for ln in lines:
        if re.match(rb"\* \d+ FETCH ", ln):
            cur = [ln]
            groups.append(cur)
        elif ln.startswith(b"* ") or re.match(rb"t\d+ ", ln):
            cur = None
        elif cur is not None:
            cur.append(ln)
    out = []
    for g in groups:
        text = b"\n".join(g)
        uid = re.search(rb"\bUID (\d+)", text)
        flags = re.search(rb"\bFLAGS \(([^)]*)\)", text)
        tok = TOKEN_RE.search(text)
        if uid is None:
            continue
        out.append((int(uid.group(1)),
                    frozenset(flags.group(1).decode().split())
                    if flags else None,
                    tok.group(1).decode() if tok else None))
    return out


def select_info(lines):
    text = b"\n".join(lines)
    get = (lambda pat: int(re.search(pat, text).group(1)))
    return {"exists": get(rb"\* (\d+) EXISTS"),
            "uidvalidity": get(rb"\[UIDVALIDITY (\d+)\]"),
            "uidnext": get(rb"\[UIDNEXT (\d+)\]")}


def uid_set(text):
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


class Record:
    """What one user's sessions were told (shared with the SMTP thread)."""

    def __init__(self, user):
        self.user = user
        self.lock = threading.Lock()
        self.acked = set()          # tokens: 250 from SMTP or OK from APPEND
        self.uids = {}              # (folder, uidvalidity, uid) -> token
        self.reuse = []             # (key, token, other token)
        self.flags = {}             # key -> flags a STORE got OK for
        self.gone = set()           # keys an EXPUNGE or MOVE was sent for
        self.expunged = set()       # tokens an EXPUNGE was sent for
        self.uidvalidity = {}       # folder -> first UIDVALIDITY seen
        self.errors = []

    def saw(self, folder, uv, uid, token):
        if token is None:
            return
        key = (folder, uv, uid)
        with self.lock:
            old = self.uids.setdefault(key, token)
            if old != token:
                self.reuse.append((key, old, token))


class ImapLoad(threading.Thread):
    """Random APPEND/FETCH/STORE/EXPUNGE/COPY/MOVE for one user until
    stop is set; reconnects after every lost session."""

    def __init__(self, inst, rec, run, seed, stop):
        super().__init__(daemon=True)
        self.inst, self.rec, self.run_id = inst, rec, run
        self.rng = random.Random(seed)
        self.stop = stop
        self.appends = 0
        self.lost = 0
        self.ops = 0

    def known(self, uv):
        with self.rec.lock:
            return sorted(k[2] for k in self.rec.uids
                          if k[0] == "INBOX" and k[1] == uv and
                          k not in self.rec.gone)

    def token_of(self, uv, uid):
        return self.rec.uids.get(("INBOX", uv, uid))

    def step(self, s, uv):
        rec, rng = self.rec, self.rng
        r = rng.random()
        uids = self.known(uv)
        if r < 0.35 or not uids:
            self.appends += 1
            token = "ap-%s-%s-%d" % (self.run_id, rec.user, self.appends)
            msg = H.make_message(token, to="%s@example.test" % rec.user)
            ok, out = s.ok("APPEND INBOX (\\Seen)", msg)
            if ok:
                m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", out[-1])
                with rec.lock:
                    rec.acked.add(token)
                if m is None:
                    rec.errors.append("APPEND OK without APPENDUID: %r"
                                      % out[-1])
                else:
                    rec.saw("INBOX", int(m.group(1)), int(m.group(2)),
                            token)
            else:
                rec.errors.append("APPEND refused: %r" % out[-1])
        elif r < 0.55:
            ok, out = s.ok("UID FETCH 1:* (UID FLAGS ENVELOPE)")
            for uid, _flags, token in fetch_groups(out):
                rec.saw("INBOX", uv, uid, token)
        elif r < 0.75:
            pick = rng.sample(uids, min(len(uids), rng.randint(1, 3)))
            flag = rng.choice(FLAGS)
            ok, out = s.ok("UID STORE %s +FLAGS.SILENT (%s)"
                           % (",".join(map(str, pick)), flag))
            if ok:
                with rec.lock:
                    for uid in pick:
                        rec.flags.setdefault(("INBOX", uv, uid),
                                             set()).add(flag)
        elif r < 0.85:
            pick = rng.sample(uids, min(len(uids), rng.randint(1, 2)))
            with rec.lock:
                for uid in pick:
                    rec.gone.add(("INBOX", uv, uid))
                    rec.expunged.add(self.token_of(uv, uid))
            text = ",".join(map(str, pick))
            ok, out = s.ok("UID STORE %s +FLAGS.SILENT (\\Deleted)" % text)
            if ok:
                s.ok("UID EXPUNGE %s" % text)
        else:
            pick = sorted(rng.sample(uids, min(len(uids),
                                               rng.randint(1, 2))))
            verb = rng.choice(("COPY", "MOVE"))
            if verb == "MOVE":
                with rec.lock:
                    for uid in pick:
                        rec.gone.add(("INBOX", uv, uid))
            ok, out = s.ok("UID %s %s Archive"
                           % (verb, ",".join(map(str, pick))))
            for ln in out:
                m = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", ln)
                if m is None:
                    continue
                src = uid_set(m.group(2).decode())
                dst = uid_set(m.group(3).decode())
                for a, b in zip(src, dst):
                    rec.saw("Archive", int(m.group(1)), b,
                            self.token_of(uv, a))
        self.ops += 1

    def run(self):
        rec = self.rec
        while not self.stop.is_set():
            s = None
            try:
                s = Session(self.inst.imap_port, rec.user)
                ok, out = s.ok("SELECT INBOX")
                if not ok:
                    raise Lost(out[-1])
                info = select_info(out)
                uv = info["uidvalidity"]
                rec.uidvalidity.setdefault("INBOX", uv)
                while not self.stop.is_set():
                    self.step(s, uv)
            except (Lost, ConnectionError, OSError) as e:
                self.lost += 1
                if self.lost > 200:
                    rec.errors.append("too many lost sessions: %r" % e)
                    return
                time.sleep(0.05)
            except Exception as e:  # a bug in the test: say so
                rec.errors.append("load thread: %r" % e)
                return
            finally:
                if s is not None:
                    s.close()


class SmtpLoad(threading.Thread):
    """N_SMTP numbered messages to the users, one at a time."""

    def __init__(self, inst, recs, run, seed):
        super().__init__(daemon=True)
        self.inst, self.recs, self.run_id = inst, recs, run
        self.rng = random.Random(seed)
        self.sent = 0
        self.errors = []

    def run(self):
        s = None
        deadline = time.monotonic() + LOAD_SECONDS * SLOW + 30
        for n in range(N_SMTP):
            user = self.rng.choice(USERS)
            token = "sm-%s-%s-%d" % (self.run_id, user, n)
            addr = "%s@example.test" % user
            for _try in range(5):
                if time.monotonic() > deadline:
                    return
                try:
                    if s is None:
                        s = self.inst.smtp()
                    s.sendmail("sender@example.org", [addr],
                               H.make_message(token, to=addr))
                    with self.recs[user].lock:
                        self.recs[user].acked.add(token)
                    self.sent += 1
                    break
                except (smtplib.SMTPException, OSError) as e:
                    self.errors.append(repr(e))
                    s = None
                    time.sleep(0.1)
            time.sleep(self.rng.uniform(0.0, LOAD_SECONDS / N_SMTP))
        if s is not None:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                pass


class Killer(threading.Thread):
    """SIGKILLs an imapd worker or a local process (in turn: two imapd,
    one local) every 0.4-1.2 s."""

    def __init__(self, inst, seed, stop):
        super().__init__(daemon=True)
        self.inst = inst
        self.rng = random.Random(seed)
        self.stop = stop
        self.kills = []

    def run(self):
        while len(self.kills) < MAX_KILLS and \
                not self.stop.wait(self.rng.uniform(0.4, 1.2)):
            # imapd, local, imapd, ...: both are hit whatever the seed
            name = ("imapd", "local", "imapd")[len(self.kills) % 3]
            pids = self.inst.children(name)
            if not pids:
                continue
            pid = self.rng.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills.append((name, pid))
            except ProcessLookupError:
                pass


def final_state(inst, user):
    """{folder: (select info, [(uid, flags, token)])} from a fresh
    session, and after it the same from `heraldctl mailbox status`."""
    s = Session(inst.imap_port, user)
    try:
        out = {}
        for folder in FOLDERS:
            ok, lines = s.ok("SELECT %s" % folder)
            assert ok, lines[-3:]
            info = select_info(lines)
            ok, lines = s.ok("UID FETCH 1:* (UID FLAGS ENVELOPE)")
            assert ok, lines[-3:]
            out[folder] = (info, fetch_groups(lines))
        s.ok("LOGOUT")
    finally:
        s.close()
    return out


def expunge_top(inst, user, final):
    """Expunge the highest UID of each folder in final; the folders'
    state afterwards, which must keep UIDNEXT."""
    s = Session(inst.imap_port, user)
    try:
        for folder, (info, rows) in final.items():
            if not rows:
                continue
            top = max(uid for uid, _f, _t in rows)
            for text in ("SELECT %s" % folder,
                         "UID STORE %d +FLAGS.SILENT (\\Deleted)" % top,
                         "UID EXPUNGE %d" % top):
                ok, out = s.ok(text)
                assert ok, (user, text, out[-3:])
    finally:
        s.close()
    after = final_state(inst, user)
    for folder, (info, rows) in final.items():
        assert after[folder][0]["uidnext"] == info["uidnext"], \
            (user, folder, info, after[folder][0])
        assert len(after[folder][1]) == len(rows) - (1 if rows else 0)
    return after


def folder_dir(inst, user, folder):
    md = inst.maildir(user)
    return md if folder == "INBOX" else md / ("." + folder)


def maildir_count(inst, user, folder):
    d = folder_dir(inst, user, folder)
    return sum(len([n for n in os.listdir(d / sub) if not n.startswith(".")])
               for sub in ("cur", "new"))


def ctl_status(inst, user, folder):
    r = inst.ctl("mailbox", "status", "%s@example.test" % user, folder,
                 json_out=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_no_loss_no_uid_reuse_when_imapd_and_local_die(make_herald):
    print("HERALD_IMAP_CRASH_SEED=%d" % SEED)
    rng = random.Random(SEED)
    run = "%08x" % rng.randrange(1 << 32)
    inst = make_herald(imap=True)
    H.wait_for(lambda: len(inst.children("imapd")) == 2, 20 * SLOW,
               what="two imapd workers")
    recs = {u: Record(u) for u in USERS}
    for u in USERS:
        s = Session(inst.imap_port, u)
        try:
            # the special folders may exist already
            ok, out = s.ok("CREATE Archive")
            assert ok or b"[ALREADYEXISTS]" in out[-1], out
            ok, out = s.ok("SELECT Archive")
            assert ok, out
            recs[u].uidvalidity["Archive"] = select_info(out)["uidvalidity"]
        finally:
            s.close()

    stop = threading.Event()
    loads = [ImapLoad(inst, recs[u], run, rng.randrange(1 << 32), stop)
             for u in USERS]
    smtp = SmtpLoad(inst, recs, run, rng.randrange(1 << 32))
    killer = Killer(inst, rng.randrange(1 << 32), stop)
    try:
        for t in loads + [smtp, killer]:
            t.start()
        time.sleep(LOAD_SECONDS)
    finally:
        stop.set()
        for t in loads + [killer]:
            t.join(30 * SLOW)
        smtp.join(60 * SLOW)
    assert not any(t.is_alive() for t in loads + [smtp, killer])
    kinds = [k[0] for k in killer.kills]
    print("kills: %s; smtp sent %d; imap ops %s, lost sessions %s" % (
        kinds, smtp.sent, [t.ops for t in loads], [t.lost for t in loads]))
    assert kinds.count("imapd") >= 2 and kinds.count("local") >= 1, kinds
    assert smtp.sent >= N_SMTP // 2, smtp.errors[-5:]
    for rec in recs.values():
        assert not rec.errors, rec.errors[:5]

    # the killing is over: everything that got a 250 is delivered, the
    # workers are back
    inst.wait_queue_empty(90 * SLOW)
    H.wait_for(lambda: len(inst.children("imapd")) == 2, 20 * SLOW,
               what="two imapd workers after the kills")

    for user, rec in recs.items():
        final = final_state(inst, user)
        present = set()
        for folder, (info, rows) in final.items():
            uv = info["uidvalidity"]
            assert uv == rec.uidvalidity[folder], \
                (user, folder, "UIDVALIDITY changed", uv,
                 rec.uidvalidity[folder])
            assert len(rows) == info["exists"], (user, folder, info, rows)
            by_uid = {}
            for uid, flags, token in rows:
                assert token is not None, (user, folder, uid)
                rec.saw(folder, uv, uid, token)
                by_uid[uid] = (flags, token)
                present.add(token)
                assert uid < info["uidnext"], (user, folder, uid, info)
            for (f, kuv, uid), token in sorted(rec.uids.items()):
                if f != folder or kuv != uv:
                    continue
                assert uid < info["uidnext"], \
                    (user, folder, "UIDNEXT not above a reported UID", uid,
                     info)
                if (f, kuv, uid) in rec.gone:
                    continue
                assert uid in by_uid, \
                    (user, folder, "UID vanished", uid, token)
                assert by_uid[uid][1] == token, \
                    (user, folder, uid, token, by_uid[uid])
            for (f, kuv, uid), flags in sorted(rec.flags.items()):
                if f != folder or kuv != uv or (f, kuv, uid) in rec.gone:
                    continue
                assert flags <= by_uid[uid][0], \
                    (user, folder, uid, "lost flags", flags, by_uid[uid])
        assert not rec.reuse, (user, "UID reused", rec.reuse[:5])
        lost = sorted(rec.acked - present - rec.expunged)
        assert not lost, (user, "lost", lost)

        # the index agrees with the Maildir, before and after a reindex
        for folder, (info, _rows) in final.items():
            assert maildir_count(inst, user, folder) == info["exists"], \
                (user, folder, maildir_count(inst, user, folder), info)
        # the highest UID of each folder goes first: a reindex must not
        # hand it out again
        final = expunge_top(inst, user, final)
        inst.ctl_ok("mailbox", "reindex", "%s@example.test" % user)
        again = final_state(inst, user)
        for folder, (info, _rows) in final.items():
            st = ctl_status(inst, user, folder)
            fresh = again[folder][0]
            assert (st["messages"], st["uidnext"], st["uidvalidity"]) == \
                (fresh["exists"], fresh["uidnext"], fresh["uidvalidity"]), \
                (user, folder, st, fresh)
            assert fresh == info, (user, folder, "reindex changed", info,
                                   fresh)
            # the same UIDs, messages and flags: the Maildir is the truth
            assert sorted(again[folder][1]) == sorted(final[folder][1]), \
                (user, folder, "reindex changed the messages",
                 set(again[folder][1]) ^ set(final[folder][1]))
            assert maildir_count(inst, user, folder) == fresh["exists"]
        s = Session(inst.imap_port, user)
        try:
            ok, out = s.ok("APPEND INBOX", H.make_message(
                "ap-%s-%s-last" % (run, user)))
            assert ok, out
            m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", out[-1])
            info = final["INBOX"][0]
            assert (int(m.group(1)), int(m.group(2))) == \
                (info["uidvalidity"], info["uidnext"]), (user, out, info)
        finally:
            s.close()

"""
heraldctl queue list / show say why a message waits: each deferred
recipient's last error (kept in the queue file by qmgr) and the next
attempt, mailq style; text a remote server could have chosen is printed
escaped, never as terminal control bytes.
"""
import json
import os
import re
import time

import herald as H


def short(token):
    return token[-12:].lower()


def drop(inst, folder, qid, data, mtime=None):
    """Place data as <spool>/<folder>/<qid> atomically."""
    if folder == "deferred":
        dest = inst.spool / "deferred" / qid[-1] / qid
    else:
        dest = inst.spool / folder / qid
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = inst.spool / (".t-" + qid)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    os.rename(tmp, dest)
    return dest


def fnv(data):
    h = 2166136261
    for c in data:
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h


def block(lines):
    """A queue file notes block (lib/mail/qfile.h) for lines."""
    body = b"".join(lines)
    return body + b"Z%08x\n" % fnv(body)


def list_entry(inst, qid):
    """queue list's lines for qid: its line and those indented under it."""
    r = inst.ctl("queue", "list")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    start = [i for i, l in enumerate(lines) if l.startswith(qid)]
    assert start, r.stdout
    out = [lines[start[0]]]
    for l in lines[start[0] + 1:]:
        if not l.startswith(" "):
            break
        out.append(l)
    return out, r.stdout


def wait_deferred(inst, qid, addr, since):
    inst.wait_log(r"%s: to=<%s>, .*status=deferred" % (qid, re.escape(addr)),
                  timeout=30, since=since)
    H.wait_for(lambda: any(p.name == qid for p in
                           inst.queue_files(("deferred",))),
               15, what="%s in deferred/" % qid)


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_full_mailbox_reason_and_next_attempt(herald, token):
    """A mailbox over its quota defers; list and show give the error."""
    addr = "full-%s@example.test" % short(token)
    herald.ctl_ok("user", "add", addr, "--quota", "1K", input="pw\n")
    sender = "q-%s@example.org" % token
    since = herald.log_size()
    msg = H.make_message(token, sender=sender, to=addr) + b"x" * 4000
    with herald.smtp() as s:
        s.ehlo()
        assert s.sendmail(sender, [addr], msg) == {}
    qid = herald.qid_of_sender(sender, since=since)
    wait_deferred(herald, qid, addr, since)
    entry, whole = list_entry(herald, qid)
    assert "deferred" in entry[0] and sender in entry[0], whole
    text = "\n".join(entry)
    assert re.search(r"%s: deferred at %s, next attempt %s" %
                     (re.escape(addr), ISO, ISO), text), whole
    assert re.search(r"\(4\.2\.2 [^)]*(quota|full)", text, re.I), whole
    r = herald.ctl("queue", "show", qid)
    assert r.returncode == 0, r
    assert re.search(r"next_attempt: %s" % ISO, r.stdout), r.stdout
    assert re.search(r"  %s  deferred at %s\n    \(4\.2\.2 " %
                     (re.escape(addr), ISO), r.stdout), r.stdout
    r = herald.ctl("--json", "queue", "show", qid)
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    rc = [x for x in doc["recipients"] if x["address"] == addr][0]
    assert rc["status"] == "deferred" and rc["dsn"] == "4.2.2", doc
    assert rc["last_error"], doc
    r = herald.ctl("--json", "queue", "list")
    doc = [m for m in json.loads(r.stdout) if m["queue_id"] == qid][0]
    assert doc["queued"][0]["address"] == addr, doc
    assert doc["queued"][0]["dsn"] == "4.2.2", doc
    assert re.match(ISO, doc["next_attempt"]), doc
    herald.ctl_ok("queue", "delete", qid)


def test_unreachable_transport_old_file(herald, token):
    """A version 1 file (as older herald wrote it) for a domain not hosted
    here: remote delivery defers it (the test instance's DNS never
    answers), and the reason is kept (the file becomes version 2)."""
    qid = H.qid_make()
    rcpt = "x-%s@remote.example" % short(token)
    msg = H.make_message(token, sender="old@example.org", to=rcpt)
    data = H.qfile_build("old@example.org", [rcpt], msg)
    assert data.startswith(b"VHERALDQ1\n")
    since = herald.log_size()
    drop(herald, "deferred", qid, data, mtime=time.time() - 60)
    assert herald.ctl("queue", "flush").returncode == 0
    wait_deferred(herald, qid, rcpt, since)
    entry, whole = list_entry(herald, qid)
    text = "\n".join(entry)
    assert "(4.4.3 cannot look up the MX records of remote.example" \
        in text, whole
    assert re.search(r"next attempt %s" % ISO, text), whole
    path = [p for p in herald.queue_files(("deferred",)) if p.name == qid][0]
    assert path.read_bytes().startswith(b"VHERALDQ2\n")
    herald.ctl_ok("queue", "delete", qid)


def test_reason_bytes_are_escaped(herald, token):
    """What a remote server said is printed escaped: no raw 8-bit CSI
    (0x9b) or other non-ASCII bytes reach the terminal; and a notes block
    holding an ESC is refused (no notes), not printed."""
    qid = H.qid_make()
    rcpts = ["a-%s@remote.invalid" % short(token),
             "b-%s@remote.invalid" % short(token)]
    msg = H.make_message(token, sender="esc@example.org", to=rcpts[0])
    data = H.qfile_build("esc@example.org", rcpts, msg)
    data = b"VHERALDQ2\n" + data.split(b"\n", 1)[1]
    data += block([b"N0 1700000000 4.4.1 said \x9b31mred\xc3\xa9\n",
                   b"N1 1700000000 4.4.2 plain\n"])
    drop(herald, "hold", qid, data)
    try:
        entry, whole = list_entry(herald, qid)
        text = "\n".join(entry)
        assert "(4.4.1 said \\x9b31mred\\xc3\\xa9)" in text, whole
        assert "(4.4.2 plain)" in text, whole
        assert "next attempt on hold" in text, whole
        raw = herald.ctl("queue", "show", qid)
        assert "\x9b" not in raw.stdout and "\x1b" not in raw.stdout
        assert "said \\x9b31mred" in raw.stdout, raw.stdout
        # the same with an ESC in it: the block is damaged, not shown
        bad = data[:data.index(b"N0 ")] + block(
            [b"N0 1700000000 4.4.1 said \x1b[2Jgone\n"])
        drop(herald, "hold", qid, bad)
        r = herald.ctl("queue", "show", qid)
        assert r.returncode == 0, r
        assert "\x1b" not in r.stdout and "gone" not in r.stdout, r.stdout
    finally:
        herald.ctl("queue", "delete", qid)

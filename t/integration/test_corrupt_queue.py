"""
Damaged queue files go to corrupt/ with a log line; the rest of the queue
keeps flowing. The files are built by hand in the format of
lib/mail/qfile.h; a well-formed one built the same way must be delivered
(that proves the builder right).
"""
import os
import re
import time

import pytest

import herald as H


def build(token, rcpt="alice@example.test"):
    msg = H.make_message(token, sender="hand@example.org", to=rcpt)
    return H.qfile_build("hand@example.org", [rcpt], msg,
                         attrs=[("client_addr", "127.0.0.1"),
                                ("protocol", "ESMTP")]), msg


def damage(kind, data):
    """Variants of a valid queue file, each one invalid."""
    if kind == "no-rcpt":
        return re.sub(rb"^R[^\n]*\n", b"", data, flags=re.M)
    if kind == "no-end":
        assert data.endswith(b"E\n")
        return data[:-2]
    if kind == "truncated":
        return data[:len(data) * 2 // 3]
    if kind == "garbage-record":
        i = data.index(b"\nR") + 1
        return data[:i] + b"Zthis is no record\n" + data[i:]
    if kind == "bad-time":
        return re.sub(rb"^T\d+\n", b"Tyesterday\n", data, flags=re.M)
    if kind == "no-version":
        return data.split(b"\n", 1)[1]
    if kind == "wrong-version":
        return b"VHERALDQ9\n" + data.split(b"\n", 1)[1]
    if kind == "size-mismatch":
        m = re.search(rb"^M(\d{16})\n", data, re.M)
        size = int(m.group(1))
        return data.replace(m.group(0), b"M%016d\n" % (size + 7))
    if kind == "bad-status":
        return re.sub(rb"^RQ", b"R?", data, flags=re.M)
    if kind == "no-sender":
        return re.sub(rb"^S[^\n]*\n", b"", data, flags=re.M)
    if kind == "trailing-bytes":
        return data + b"junk after the end\n"
    if kind == "empty":
        return b""
    if kind == "nul-in-envelope":
        return data.replace(b"Shand@example.org", b"Shand\0@example.org", 1)
    raise ValueError(kind)


KINDS = ["no-rcpt", "no-end", "truncated", "garbage-record", "bad-time",
         "no-version", "wrong-version", "size-mismatch", "bad-status",
         "no-sender", "trailing-bytes", "empty", "nul-in-envelope"]


def drop(inst, folder, qid, data):
    """Place data as <spool>/<folder>/<qid> atomically (write beside,
    then rename), so qmgr never sees a half-written file."""
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
    past = time.time() - 60	# deferred: retry time already passed
    os.utime(tmp, (past, past))
    os.rename(tmp, dest)
    return dest


def test_hand_built_queue_file_is_delivered(herald, token):
    """Control: the builder makes files qmgr accepts."""
    data, msg = build(token)
    qid = H.qid_make(counter=1)
    drop(herald, "incoming", qid, data)
    herald.ctl("queue", "flush")
    got = herald.wait_messages(token, "alice", timeout=30)
    H.split_delivered(got[0], msg)
    H.wait_for(lambda: not any(p.name == qid for p in herald.queue_files()),
               20, what="%s leaving the queue" % qid)
    assert not (herald.spool / "corrupt" / qid).exists()


def test_hand_built_deferred_file_is_delivered(herald, token):
    data, msg = build(token)
    qid = H.qid_make(counter=2)
    drop(herald, "deferred", qid, data)
    herald.ctl("queue", "flush")
    got = herald.wait_messages(token, "alice", timeout=30)
    H.split_delivered(got[0], msg)


@pytest.mark.parametrize("folder", ["incoming", "deferred"])
def test_corrupt_files_to_corrupt(herald, token, folder):
    since = herald.log_size()
    placed = {}
    for i, kind in enumerate(KINDS):
        data, _ = build("%s-%s" % (token, kind))
        bad = damage(kind, data)
        assert bad != data
        qid = H.qid_make(counter=100 + i + (0 if folder == "incoming"
                                            else 50))
        drop(herald, folder, qid, bad)
        placed[kind] = (qid, bad)
    # the queue keeps flowing: a normal message sent now is delivered
    good = token + "-good"
    msg = H.make_message(good)
    with herald.smtp() as s:
        s.ehlo()
        assert s.sendmail("g@example.org", ["alice@example.test"], msg) == {}
    herald.ctl("queue", "flush")
    herald.wait_messages(good, "alice", timeout=30)

    corrupt = herald.spool / "corrupt"

    def all_moved():
        return all((corrupt / qid).exists() for qid, _ in placed.values())
    try:
        H.wait_for(all_moved, 30, interval=0.5,
                   what="every damaged file in corrupt/")
    except AssertionError:
        pass
    log = herald.log_text(since)
    problems = []
    for kind, (qid, bad) in placed.items():
        where = [str(p.relative_to(herald.spool))
                 for p in herald.queue_files(H.SPOOL_QUEUE_FOLDERS +
                                             ("corrupt",))
                 if p.name == qid]
        if not (corrupt / qid).exists():
            problems.append("%s (%s): not in corrupt/, found in %s"
                            % (kind, qid, where or "nowhere"))
            continue
        if (corrupt / qid).read_bytes() != bad:
            problems.append("%s: content changed in corrupt/" % kind)
        if not re.search(r"%s: corrupt queue file moved to corrupt/: \S"
                         % qid, log):
            problems.append("%s (%s): no 'corrupt queue file' log line"
                            % (kind, qid))
        if len(where) != 1:
            problems.append("%s: copies in %s" % (kind, where))
    assert not problems, "\n".join(problems)
    # none of the damaged messages was delivered
    for kind in KINDS:
        assert herald.messages_with("<%s-%s@" % (token, kind), "alice") == [], \
            kind
    herald.wait_queue_empty(30)


def test_invalid_names_left_alone(herald, token):
    """A file whose name is not a queue id is not parsed as one; it must
    not crash qmgr or stop the queue."""
    data, _ = build(token)
    odd = herald.spool / "incoming" / "not-a-queue-id"
    tmp = herald.spool / ".odd"
    tmp.write_bytes(data)
    os.rename(tmp, odd)
    try:
        msg = H.make_message(token + "-after")
        with herald.smtp() as s:
            s.ehlo()
            s.sendmail("g@example.org", ["alice@example.test"], msg)
        herald.ctl("queue", "flush")
        herald.wait_messages(token + "-after", "alice", timeout=30)
        assert len(herald.children("qmgr")) == 1
    finally:
        for p in (odd, herald.spool / "corrupt" / "not-a-queue-id"):
            if p.exists():
                p.unlink()

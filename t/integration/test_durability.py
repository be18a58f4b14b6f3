"""
test_durability - the durability rule (DESIGN.md section 4) at the
syscall level.

Killing processes never loses the page cache, so a missing fsync survives
every crash test. Here the services run under the faultfs shim
(t/faultfs/faultfs.c, LD_PRELOAD): it makes one kind of sync fail on one
path, and it traces every sync, link, rename and socket write in order.

  - the queue file's fdatasync failing, or the fsync of incoming/ failing:
    the client gets 4xx to the end of DATA, nothing stays in incoming/,
    nothing is delivered; once the fault is lifted the same instance
    accepts and delivers again;
  - the fdatasync of the Maildir copy failing in local delivery, or the
    fsync of new/ after its link: the message is deferred, nothing is in
    new/ (or tmp/); once the fault is lifted it is delivered exactly once;
  - the trace of one good message: the queue file's fdatasync and the
    fsync of incoming/ come before smtpd writes the 250; the Maildir
    copy's fdatasync comes before its link into new/, and new/'s fsync
    before local reports "delivered" to qmgr.

Deleting any one of those syncs from the code makes a test here fail.
"""
import os
import re
import time

import pytest

import herald as H

pytestmark = pytest.mark.skipif(
    H.faultfs_preload() is None,
    reason="no faultfs shim beside %s (built by CMake from t/faultfs)"
    % H.HERALD_BIN)

RCPT = "alice@example.test"


def start_with_faults(make_herald, **fault):
    """A standard instance whose services run under faultfs; fault holds
    faultfs_env() arguments, where "{spool}" and "{dir}" in path or
    while_file are the instance's folders. Returns (inst, trace path)."""
    inst = make_herald(start=False)
    trace = inst.dir / "faultfs.trace"
    for key in ("path", "while_file"):
        if key in fault:
            fault[key] = fault[key].format(spool=inst.spool, dir=inst.dir)
    inst.start(env=H.faultfs_env(trace=trace, **fault))
    return inst, trace


def send_raw(inst, token, rcpt=RCPT):
    """One message over a raw session; the reply code and text to the end
    of DATA (the session is then ended with QUIT)."""
    with inst.raw(timeout=30) as c:
        c.expect(220)
        c.expect(250, "EHLO client.example.test")
        c.expect(250, "MAIL FROM:<sender@example.org>")
        c.expect(250, "RCPT TO:<%s>" % rcpt)
        c.expect(354, "DATA")
        c.send(H.make_message(token, to=rcpt) + b".\r\n")
        code, text = c.reply(timeout=30)
        # the session goes on after a refused message
        assert c.cmd("RSET")[0] == 250
        c.cmd("QUIT")
    return code, b" ".join(text).decode(errors="replace")


def incoming_files(inst):
    """Every name in incoming/, dot-files too."""
    return sorted(os.listdir(inst.spool / "incoming"))


def injected(trace, call, path_rx):
    """Trace lines where faultfs failed call on a path matching path_rx."""
    rx = re.compile(path_rx.encode())
    return [r for r in H.faultfs_trace(trace) if r["call"] == call and
            r["injected"] == "1" and rx.search(r["path"])]


def no_delivery(inst, token, seconds=4.0):
    """Nothing with token reaches alice's Maildir within seconds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert not inst.messages_with(token, "alice"), \
            "a message that got 4xx was delivered"
        time.sleep(0.2)


@pytest.mark.parametrize("call,path", [
    # the queue file: an unnamed O_TMPFILE in incoming/ until it is linked
    ("fdatasync", "{spool}/incoming/"),
    # the folder, after the link: the name must be taken back
    ("fsync", "{spool}/incoming$"),
])
def test_incoming_sync_failure_is_4xx(make_herald, tmp_path, token, call,
                                      path):
    flag = tmp_path / "fault-on"
    flag.write_text("")
    inst, trace = start_with_faults(make_herald, fail=call, path=path,
                                    while_file=str(flag))
    code, text = send_raw(inst, token)
    assert 400 <= code < 500, \
        "%s of incoming was to fail, yet the end of DATA got %d %s" % (
            call, code, text)
    hits = injected(trace, call, r"/spool/incoming")
    assert hits, "faultfs never failed %s under incoming/; trace:\n%s" % (
        call, trace.read_text()[-3000:])
    assert incoming_files(inst) == [], \
        "a refused message left %s in incoming/" % incoming_files(inst)
    no_delivery(inst, token)
    assert inst.queue_empty(), [str(p) for p in inst.queue_files()]

    # the fault lifted, the same processes accept and deliver again
    flag.unlink()
    code, text = send_raw(inst, token + "-after")
    assert code == 250, (code, text)
    inst.wait_messages(token + "-after", "alice")
    assert not inst.messages_with(token + "-", "alice")[1:], \
        "delivered more than once"
    assert not [m for m in inst.maildir_messages("alice")
                if token.encode() + b"@" in m], "the refused one came too"


@pytest.mark.parametrize("call,path", [
    # the copy: an unnamed O_TMPFILE in tmp/ until it is linked
    ("fdatasync", "{dir}/mail/example.test/alice/tmp/"),
    # new/ after the link: the copy must be taken back
    ("fsync", "{dir}/mail/example.test/alice/new$"),
])
def test_maildir_sync_failure_defers(make_herald, tmp_path, token, call,
                                     path):
    flag = tmp_path / "fault-on"
    flag.write_text("")
    inst, trace = start_with_faults(make_herald, fail=call, path=path,
                                    while_file=str(flag))
    md = inst.maildir("alice")
    with inst.smtp() as s:
        s.sendmail("sender@example.org", [RCPT],
                   H.make_message(token, to=RCPT))
    # local tried and its sync failed (or, were the sync missing, the
    # copy arrived: whichever comes first)
    H.wait_for(lambda: injected(trace, call, r"/alice/") or
               inst.maildir_files("alice"),
               30, what="a failed %s in alice's Maildir" % call)
    assert inst.maildir_files("alice") == [], \
        "a copy whose %s was to fail reached the Maildir" % call
    # qmgr was told to try later
    inst.wait_log(r"to=<%s>.*status=deferred .*%s" % (
        re.escape(RCPT), "fsync"), 30)
    time.sleep(1.0)	# a wrong delivery would show by now
    assert inst.maildir_files("alice") == [], \
        "a copy whose %s failed was left in the Maildir" % call
    assert not os.listdir(md / "tmp"), "left in tmp/: %s" % \
        os.listdir(md / "tmp")
    assert inst.queue_files(), "the deferred message left the queue"

    flag.unlink()
    inst.wait_messages(token, "alice", timeout=60)
    inst.wait_queue_empty(60)
    time.sleep(1.0)
    assert len(inst.messages_with(token, "alice")) == 1, \
        "delivered %d times" % len(inst.messages_with(token, "alice"))
    assert not os.listdir(md / "tmp")


def index_of(lines, pred, start=0, what="trace line"):
    for i in range(start, len(lines)):
        if pred(lines[i]):
            return i
    raise AssertionError("no %s in the trace" % what)


def test_sync_order_in_trace(make_herald, token):
    inst, trace = start_with_faults(make_herald)
    code, text = send_raw(inst, token)
    assert code == 250, (code, text)
    qid = re.search(H.QID_RE, text).group(0)
    inst.wait_messages(token, "alice")
    inst.wait_queue_empty(30)
    t = H.faultfs_trace(trace)
    incoming = str(inst.spool / "incoming").encode()
    new = str(inst.maildir("alice") / "new").encode()
    names = ("link", "linkat", "rename", "renameat", "renameat2")

    # smtpd: fdatasync(file) < link as incoming/QID < fsync(incoming/)
    # < the 250 on the client's socket
    i250 = index_of(t, lambda r: r["comm"] == "smtpd" and
                    r["call"] in ("send", "write", "sendmsg") and
                    r["data"].startswith(b"250 ") and
                    qid.encode() in r["data"], what="250 with " + qid)
    ilink = index_of(t, lambda r: r["call"] in names and r["ret"] == 0 and
                     r["to"] == incoming + b"/" + qid.encode(),
                     what="link to incoming/" + qid)
    ino = t[ilink]["ino"]
    isync = index_of(t, lambda r: r["call"] in ("fdatasync", "fsync") and
                     r["ino"] == ino and r["ret"] == 0,
                     what="fdatasync of the queue file (ino %s)" % ino)
    idir = index_of(t, lambda r: r["call"] == "fsync" and
                    r["path"] == incoming and r["ret"] == 0 and
                    r["pid"] == t[ilink]["pid"], start=ilink,
                    what="fsync of incoming/ after the link")
    assert isync < ilink < idir < i250, \
        "smtpd order: file sync %d, link %d, folder sync %d, 250 %d" % (
            isync, ilink, idir, i250)

    # local: fdatasync(copy) < link into new/ < fsync(new/) < "delivered"
    jlink = index_of(t, lambda r: r["call"] in names and r["ret"] == 0 and
                     r["to"].startswith(new + b"/"),
                     what="link into alice's new/")
    pid = t[jlink]["pid"]
    jino = t[jlink]["ino"]
    jsync = index_of(t, lambda r: r["call"] in ("fdatasync", "fsync") and
                     r["ino"] == jino and r["ret"] == 0 and r["pid"] == pid,
                     what="fdatasync of the Maildir copy (ino %s)" % jino)
    jdir = index_of(t, lambda r: r["call"] == "fsync" and r["path"] == new
                    and r["ret"] == 0 and r["pid"] == pid, start=jlink,
                    what="fsync of new/ after the link")
    jrep = index_of(t, lambda r: r["pid"] == pid and
                    r["call"] in ("send", "sendmsg", "write") and
                    b"delivered" in r["data"],
                    what="local's report to qmgr")
    assert jsync < jlink < jdir < jrep, \
        "local order: copy sync %d, link %d, new/ sync %d, report %d" % (
            jsync, jlink, jdir, jrep)

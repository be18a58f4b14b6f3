"""
heraldctl mailbox: list, status, reindex, create, delete against a real
instance with mail delivered over SMTP, and what the mail index does to
the Maildir on the way (new/ -> cur/ keeping base names, so POP3 UIDLs
stay the same).

Also, as root: the mailbox work is done as vmail_user, so a link planted
in a user's Maildir cannot make heraldctl (root) write a root-owned file.
"""
import json
import os
import poplib
import pwd
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import herald as H


def new_user(inst, token):
    """A fresh user for one test (the module instance is shared)."""
    local = "m" + re.sub(r"[^a-z0-9]", "", token.lower())[-24:]
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw-" + local)
    return addr, "pw-" + local, local


def deliver(inst, addr, token, count=1):
    local = addr.split("@")[0]
    with inst.smtp() as s:
        for i in range(count):
            msg = H.make_message("%s-%d" % (token, i), to=addr)
            s.sendmail("sender@example.org", [addr], msg)
    inst.wait_messages(token, local, count=count)


def status(inst, addr, folder=None):
    args = ["mailbox", "status", addr] + ([folder] if folder else [])
    r = inst.ctl(*args, json_out=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def listing(inst, addr):
    r = inst.ctl("mailbox", "list", addr, json_out=True)
    assert r.returncode == 0, r.stderr
    return {row["folder"]: row for row in json.loads(r.stdout)}


def test_list_and_status_after_delivery(herald, token):
    addr, _pw, local = new_user(herald, token)
    deliver(herald, addr, token, count=3)
    names = sorted(p.name for p in herald.maildir_files(local))
    st = status(herald, addr)
    assert st["folder"] == "INBOX"
    assert st["messages"] == 3 and st["unseen"] == 3
    assert st["uidnext"] == 4 and st["uidvalidity"] > 0
    assert st["highestmodseq"] >= 1
    # the index gave the mail UIDs where it is: in new/, no file
    # renamed (mail without flags has no reason to go to cur/)
    md = herald.maildir(local)
    assert sorted(os.listdir(md / "new")) == names
    assert os.listdir(md / "cur") == []
    rows = listing(herald, addr)
    assert rows["INBOX"]["messages"] == 3
    assert rows["INBOX"]["size"] > 0
    # the table form
    r = herald.ctl_ok("mailbox", "list", addr)
    assert re.search(r"^INBOX\s+3\s+3\s", r.stdout, re.M), r.stdout
    # a second status changes nothing
    assert status(herald, addr) == st


def test_pop3_uidls_unchanged_after_index(herald, token):
    addr, pw, local = new_user(herald, token)
    deliver(herald, addr, token, count=2)
    bases = sorted(p.name for p in herald.maildir_files(local))
    assert all(":" not in b for b in bases)      # still in new/
    status(herald, addr)                         # the index moves them
    p = poplib.POP3("127.0.0.1", herald.pop3_port, timeout=15)
    try:
        p.user(addr)
        p.pass_(pw)
        _resp, lines, _ = p.uidl()
        uidls = sorted(ln.split()[1].decode() for ln in lines)
    finally:
        p.quit()
    assert uidls == bases


def test_create_delete_and_special_use(herald, token):
    addr, _pw, local = new_user(herald, token)
    deliver(herald, addr, token)
    herald.ctl_ok("mailbox", "create", addr, "Work")
    herald.ctl_ok("mailbox", "create", addr, "Sent")
    herald.ctl_ok("mailbox", "create", addr, "Entw\u00fcrfe")
    md = herald.maildir(local)
    assert (md / ".Work" / "cur").is_dir()
    assert (md / ".Entw&APw-rfe" / "cur").is_dir()   # modified UTF-7
    rows = listing(herald, addr)
    assert set(rows) == {"INBOX", "Work", "Sent", "Entw\u00fcrfe"}
    assert rows["Sent"]["special_use"] == "\\Sent"
    assert rows["Work"]["special_use"] == ""
    r = herald.ctl("mailbox", "create", addr, "Work")
    assert r.returncode == 1 and "exists" in r.stderr
    for bad in ("a/b", "../etc", ".hidden", "a..b", "x*"):
        r = herald.ctl("mailbox", "create", addr, bad)
        assert r.returncode == 1, (bad, r.stdout)
        assert r.stderr.startswith("heraldctl: "), r.stderr
    # a folder with mail is kept unless --force
    shutil.copy(herald.maildir_files(local)[0], md / ".Work" / "new" / "x1")
    r = herald.ctl("mailbox", "delete", addr, "Work")
    assert r.returncode == 1 and "--force" in r.stderr
    herald.ctl_ok("mailbox", "delete", addr, "Work", "--force")
    assert not (md / ".Work").exists()
    r = herald.ctl("mailbox", "delete", addr, "INBOX", "--force")
    assert r.returncode == 1 and "INBOX" in r.stderr
    r = herald.ctl("mailbox", "delete", addr, "Nope")
    assert r.returncode == 1 and "no folder" in r.stderr
    assert status(herald, addr)["messages"] == 1


def test_reindex_keeps_uids(herald, token):
    addr, _pw, local = new_user(herald, token)
    deliver(herald, addr, token, count=3)
    before = status(herald, addr)
    md = herald.maildir(local)
    herald.ctl_ok("mailbox", "reindex", addr)
    after = status(herald, addr)
    assert after["uidvalidity"] == before["uidvalidity"]
    assert after["uidnext"] == before["uidnext"]
    assert after["messages"] == 3
    # a damaged index is moved aside and rebuilt; Dovecot's uidlist
    # gives UIDVALIDITY and UIDs
    cur = sorted(os.listdir(md / "cur") + os.listdir(md / "new"))
    assert len(cur) == 3
    (md / "dovecot-uidlist").write_text(
        "3 V777 N20\n" + "".join("%d :%s\n" % (5 + i, n.split(":")[0])
                                 for i, n in enumerate(cur)))
    (md / "herald-index" / "data.mdb").write_bytes(b"not lmdb" * 100)
    (md / "herald-index" / "lock.mdb").unlink()
    herald.ctl_ok("mailbox", "reindex", addr)
    st = status(herald, addr)
    assert st["uidvalidity"] == 777 and st["uidnext"] == 20
    assert st["messages"] == 3
    assert any(p.startswith("herald-index.damaged.")
               for p in os.listdir(md))


def test_bad_arguments(herald, token):
    r = herald.ctl("mailbox", "list", "nobody-here@example.test")
    assert r.returncode == 1 and "has no mailbox" in r.stderr
    r = herald.ctl("mailbox", "create", "typo@example.test", "Work")
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert not herald.maildir("typo").exists()
    r = herald.ctl("mailbox", "list", "not an address")
    assert r.returncode == 1
    r = herald.ctl("mailbox", "status")
    assert r.returncode == 2
    r = herald.ctl("mailbox", "--help")
    assert r.returncode == 0 and "mailbox reindex ADDR" in r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_works_as_vmail_user_and_follows_no_link(pki):
    """heraldctl (root) must do the mailbox work as vmail_user: a link
    planted by the mailbox's owner in the index folder must not make it
    write a file only root may write."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    folder = Path(tempfile.mkdtemp(prefix="herald-mailbox-", dir="/tmp"))
    try:
        os.chmod(folder, 0o755)
        inst = H.HeraldInstance(folder / "inst", pki=pki,
                                vmail_user="nobody")
        os.chmod(inst.dir, 0o755)
        md = inst.maildir("eve")
        for sub in ("cur", "new", "tmp", "herald-index"):
            (md / sub).mkdir(parents=True)
        for dirpath, dirs, _files in os.walk(inst.dir / "mail"):
            os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
        victim = folder / "victim"
        victim.write_text("root's file\n")
        os.chmod(victim, 0o644)
        os.symlink(victim, md / "herald-index" / "lock.mdb")
        inst.ctl("mailbox", "status", "eve@example.test")
        assert victim.read_text() == "root's file\n"
        assert os.stat(victim).st_uid == 0
        # without the link it works, and what it made is vmail_user's
        os.unlink(md / "herald-index" / "lock.mdb")
        inst.ctl_ok("mailbox", "status", "eve@example.test")
        for name in os.listdir(md / "herald-index"):
            assert os.stat(md / "herald-index" / name).st_uid == \
                nobody.pw_uid, name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_index_agrees_after_local_and_heraldctl_are_killed(make_herald,
                                                           token):
    """Mail delivered while local is SIGKILLed over and over and
    heraldctl's index work (the mailbox child included) is killed at
    random: nothing is lost and the index agrees with the Maildir."""
    import random
    import signal
    import subprocess
    import threading
    import time

    inst = make_herald()
    addr, local = "alice@example.test", "alice"
    rnd = random.Random(token)
    stop = threading.Event()
    kills = {"local": 0, "heraldctl": 0}

    def killer():
        while not stop.is_set():
            for pid in inst.children("local"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills["local"] += 1
                except ProcessLookupError:
                    pass
            stop.wait(rnd.uniform(0.05, 0.25))

    def indexer():
        argv = [str(H.binpath("heraldctl")), "-c", str(inst.conf),
                "mailbox", "status", addr]
        while not stop.is_set():
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL,
                                 start_new_session=True)
            time.sleep(rnd.uniform(0.0, 0.05))
            try:
                os.killpg(p.pid, signal.SIGKILL)   # the child too
                kills["heraldctl"] += 1
            except ProcessLookupError:
                pass
            p.wait(timeout=10)

    threads = [threading.Thread(target=killer),
               threading.Thread(target=indexer)]
    n = 30
    for t in threads:
        t.start()
    try:
        with inst.smtp() as s:
            for i in range(n):
                s.sendmail("sender@example.org", [addr],
                           H.make_message("%s-%d" % (token, i), to=addr))
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    print("kills: %s" % kills)
    assert kills["local"] > 0 and kills["heraldctl"] > 0, kills
    # every message arrives (a crash may duplicate one, never lose it)
    want = [("%s-%d@" % (token, i)).encode() for i in range(n)]
    H.wait_for(lambda: all(any(w in m for m in inst.messages_with(
        token, local)) for w in want), 60, what="all %d messages" % n)
    st = status(inst, addr)
    md = inst.maildir(local)
    # (indexed mail stays in new/: both together are the folder)
    files = os.listdir(md / "cur") + os.listdir(md / "new")
    assert st["messages"] == len(files) >= n
    assert st["uidnext"] > st["messages"]
    bases = [f.split(":")[0] for f in files]
    assert len(set(bases)) == len(bases)
    # a rebuild finds the same
    inst.ctl_ok("mailbox", "reindex", addr)
    again = status(inst, addr)
    assert (again["uidvalidity"], again["uidnext"], again["messages"]) == \
        (st["uidvalidity"], st["uidnext"], st["messages"])

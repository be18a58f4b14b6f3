"""
authd's cache of recent successful logins (auth/auth_cache.c): a repeat
login with the same password costs no yescrypt; heraldctl passwd,
disable and delete take effect at once; the cache lives in authd's
memory only (no other process, no file) and authd cannot be read or
traced by another process of its user.

Requests go straight to <run_directory>/auth as IPC frames, as in
test_authd.py. CPU is read from /proc/<pid>/stat of the authd process
(one: auth_processes 1), so that the figures hold on a busy machine.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import herald as H

USERS = ["c%d@example.test" % i for i in range(10)]
TTL = 3600


def verify(inst, user, password, client="192.0.2.10"):
    return inst.auth(user, password, client=client, service="test")


def authd_pid(inst):
    pids = inst.children("authd")
    assert len(pids) == 1, pids
    return pids[0]


def cpu_ms(pid):
    """utime + stime of pid in milliseconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def cache_instance(make_herald, **overrides):
    inst = make_herald(start=False, auth_processes="1",
                       auth_answer_floor="0", **overrides)
    for u in USERS:
        inst.add_user(u, "pw-" + u)
    inst.start()
    return inst


def two_rounds(inst, pid):
    """Every account logs in twice, round after round: authd's CPU
    milliseconds for the first round and for the second."""
    c0 = cpu_ms(pid)
    for u in USERS:
        assert verify(inst, u, "pw-" + u)["status"] == "ok"
    c1 = cpu_ms(pid)
    for u in USERS:
        assert verify(inst, u, "pw-" + u)["status"] == "ok"
    return c1 - c0, cpu_ms(pid) - c1


def test_second_login_costs_no_yescrypt(make_herald):
    """Ten accounts log in once (each a full check: a yescrypt of ~20 ms
    CPU), then again with the same passwords: the second round costs
    authd less than a quarter of the first, and authd's line at exit
    counts 10 hits. With auth_cache_ttl 0 (as before the cache) both
    rounds cost the same."""
    inst = cache_instance(make_herald)
    pid = authd_pid(inst)
    first, second = two_rounds(inst, pid)
    print("authd CPU: first logins %.0f ms, repeat logins %.0f ms "
          "(10 each)" % (first, second))
    assert first >= 10 * 5, first	# ten real yescrypts
    assert second * 4 < first, (first, second)
    assert authd_pid(inst) == pid	# the same process all along
    inst.stop()
    assert re.search(r"authd\[\d+\]: auth cache: 10 hits, 10 misses, "
                     r"10 stored, 0 dropped, 0 evicted, 10 entries wiped "
                     r"at exit", inst.log_text()), inst.log_tail(20)


def test_ttl_zero_never_hits(make_herald):
    """auth_cache_ttl = 0: every login pays its yescrypt."""
    inst = cache_instance(make_herald, auth_cache_ttl="0")
    first, second = two_rounds(inst, authd_pid(inst))
    print("authd CPU without cache: %.0f ms, then %.0f ms" % (first, second))
    assert second * 2 >= first, (first, second)
    inst.stop()
    assert "auth cache:" not in inst.log_text()


def test_passwd_disable_delete_take_effect_at_once(make_herald):
    """After cached logins, heraldctl passwd makes the old password fail
    at once (and the new one work); disable makes the right password fail;
    enable brings it back; delete makes it fail. A wrong password after a
    hit fails and costs a full check."""
    inst = cache_instance(make_herald)
    pid = authd_pid(inst)
    u = USERS[0]
    for _ in range(3):
        assert verify(inst, u, "pw-" + u)["status"] == "ok"
    c0 = cpu_ms(pid)
    r = verify(inst, u, "pw-wrong", client="192.0.2.11")
    assert r["status"] == "fail", r
    wrong = cpu_ms(pid) - c0
    print("wrong password after hits: %.0f ms CPU" % wrong)
    assert wrong >= 5, wrong

    inst.ctl_ok("user", "passwd", u, input="pw-new\npw-new\n")
    r = verify(inst, u, "pw-" + u)
    assert r["status"] == "fail", r
    assert verify(inst, u, "pw-new")["status"] == "ok"
    assert verify(inst, u, "pw-new")["status"] == "ok"

    inst.ctl_ok("user", "disable", u)
    r = verify(inst, u, "pw-new")
    assert r["status"] == "fail", r
    inst.ctl_ok("user", "enable", u)
    assert verify(inst, u, "pw-new")["status"] == "ok"

    inst.ctl_ok("user", "del", u)
    r = verify(inst, u, "pw-new")
    assert r["status"] == "fail", r


def test_reload_empties_the_cache(make_herald):
    """heraldctl reload replaces authd, and its cache goes with it: the
    old process writes its line and wipes; the new one checks in full."""
    inst = cache_instance(make_herald)
    pid = authd_pid(inst)
    for _ in range(2):
        assert verify(inst, USERS[1], "pw-" + USERS[1])["status"] == "ok"
    inst.ctl_ok("reload")
    H.wait_for(lambda: inst.children("authd") and
               pid not in inst.children("authd"), 20,
               what="a new authd after reload")
    assert inst.wait_log(r"authd\[%d\]: auth cache: 1 hits, 1 misses, "
                         r"1 stored, 0 dropped, 0 evicted, 1 entries "
                         r"wiped at exit" % pid)
    new = authd_pid(inst)
    c0 = cpu_ms(new)
    assert verify(inst, USERS[1], "pw-" + USERS[1])["status"] == "ok"
    assert cpu_ms(new) - c0 >= 5


# ------------------------------------------------------- privilege


def readable_regions(pid):
    """(start, end) of pid's readable private mappings (heap, stacks,
    anonymous memory, writable data), where a cache could live. A private
    mapping with no page in memory or swap (Rss and Swap 0 in smaps) was
    never written, so cannot hold a cache, and is left out: under ASan
    that is most of the address space, and reading it took 40 s."""
    out = []
    region = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":"):	# a mapping's first line
                region = None
                addr, perms = parts[0], parts[1]
                name = parts[5] if len(parts) > 5 else ""
                if not perms.startswith("rw") or name.startswith("[v"):
                    continue
                start, end = (int(x, 16) for x in addr.split("-"))
                if end - start > 512 * 1024 * 1024:
                    continue
                region = [start, end, perms[3] != "p"]	# shared: keep
                out.append(region)
            elif region is not None and parts[0] in ("Rss:", "Swap:") \
                    and int(parts[1]) > 0:
                region[2] = True
    return [(start, end) for start, end, used in out if used]


def memory_of(pid):
    """pid's private writable memory as one bytes (root reads any)."""
    chunks = []
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as f:
        for start, end in readable_regions(pid):
            try:
                f.seek(start)
                chunks.append(f.read(end - start))
            except OSError:
                continue
    return b"\0".join(chunks)


def cache_entries(mem, account, now):
    """The (password MAC, hash MAC) pairs of account's entries in authd's
    memory: struct auth_cache_entry is five pointers, the expiry (seconds
    as long long), 32 + 32 bytes of MACs, then the account with its NUL.
    A hit is an expiry TTL ahead of the logins (within a minute), on
    the monotonic clock."""
    key = account.encode() + b"\0"
    found = []
    pos = mem.find(key)
    while pos >= 0:
        if pos >= 72:
            expires = int.from_bytes(mem[pos - 72:pos - 64], "little",
                                     signed=True)
            if now + TTL - 120 <= expires <= now + TTL + 5:
                found.append((mem[pos - 64:pos - 32], mem[pos - 32:pos]))
        pos = mem.find(key, pos + 1)
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_cache_lives_in_authd_memory_only(pki):
    """Privilege boundary: authd runs as auth_user (bin) and is not
    dumpable, so neither another process of that user (as heraldctl's
    lockout child is) nor one of another user can read or trace its
    memory. Its cache entries (found in its memory by root) appear in no
    other herald process and in no file of the instance after the logins;
    stopping it wipes them."""
    import pwd
    try:
        auth = pwd.getpwnam("bin")
        other = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("accounts bin and nobody needed")
    folder = Path(tempfile.mkdtemp(prefix="herald-authcache-", dir="/tmp"))
    os.chmod(folder, 0o755)
    inst = H.HeraldInstance(folder / "inst", pki=pki, auth_user="bin",
                            auth_processes="1", auth_answer_floor="0")
    try:
        inst.add_domain("example.test")
        inst.add_user("alice@example.test", "pw-alice")
        inst.start()
        now = int(time.monotonic())	# authd's clock for the cache
        for _ in range(3):
            r = verify(inst, "alice@example.test", "pw-alice")
            assert r["status"] == "ok", r
        pid = authd_pid(inst)
        with open("/proc/%d/status" % pid) as f:
            uid_line = [x for x in f if x.startswith("Uid:")][0]
        assert int(uid_line.split()[1]) == auth.pw_uid, uid_line

        # root finds the entry ...
        entries = cache_entries(memory_of(pid), "alice@example.test", now)
        assert len(entries) == 1, entries
        pw_mac, hash_mac = entries[0]
        assert pw_mac != hash_mac and pw_mac != b"\0" * 32

        # ... which no process of auth_user nor of another user can
        # read: open /proc/<authd>/mem and read from its heap
        start = readable_regions(pid)[0][0]
        probe = ("import sys\n"
                 "try:\n"
                 "    f = open('/proc/%d/mem', 'rb', buffering=0)\n"
                 "    f.seek(%d)\n"
                 "    f.read(16)\n"
                 "except PermissionError:\n"
                 "    sys.exit(3)\n"
                 "except OSError as e:\n"
                 "    print(e)\n"
                 "    sys.exit(4)\n"
                 "sys.exit(0)\n" % (pid, start))
        for who in (auth, other):
            r = subprocess.run(["/usr/bin/python3", "-c", probe],
                               user=who.pw_uid, group=who.pw_gid,
                               extra_groups=[], capture_output=True,
                               text=True, timeout=30, cwd="/")
            assert r.returncode == 3, (who.pw_name, r)

        # no other herald process holds the digests
        for p in inst.our_pids():
            if p == pid:
                continue
            try:
                mem = memory_of(p)
            except OSError:
                continue	# gone meanwhile
            assert pw_mac not in mem and hash_mac not in mem, \
                (p, H.proc_cmdline(p))
        # nor any file of the instance (state, spool, run, log)
        for path in inst.dir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert pw_mac not in data and hash_mac not in data, path
                assert b"pw-alice" not in data, path
        inst.stop()
        assert re.search(r"auth cache: 2 hits, 1 misses, 1 stored, "
                         r"0 dropped, 0 evicted, 1 entries wiped at exit",
                         inst.log_text()), inst.log_tail(20)
    finally:
        try:
            inst.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

"""
authd: password checks, failure throttling and lockouts, the log lines
fail2ban reads, and robustness against garbage and crashes.

Requests are spoken directly on <run_directory>/auth as IPC frames
(lib/mail/auth_client.h): {request=verify, user, password, client,
service} -> {status, [user], [delay], [reason]}. authd only reports the
delay (the servers wait it out), so nothing here sleeps through it.
"""
import ctypes
import ctypes.util
import json
import os
import poplib
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time
import warnings

import pytest

import herald as H

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt
    except ImportError:	# Python 3.13 dropped it
        crypt = None

# the ASan pass looks for memory errors, not for equal times: fewer rounds
SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
TIMING_ROUNDS = 10 if SANITIZED else 30

# small throttling settings so the tests stay fast; no answer floor, so
# that the delays authd reports are the throttle's alone
THROTTLE = dict(auth_failure_delay="1s", auth_failure_delay_max="2s",
                auth_client_lockout="5", auth_account_lockout="7",
                auth_failure_window="10m", auth_lockout_time="10m",
                auth_answer_floor="0")


def verify(inst, user, password, client, service="test", timeout=30):
    """One request: the reply as a dict, or None if authd hung up."""
    return inst.auth(user, password, client=client, service=service,
                     timeout=timeout)


def raw_exchange(inst, data, timeout=10):
    """Send raw bytes, then read until EOF: what authd sent back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(inst.run_dir / "auth"))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got


def authd_pids(inst):
    return set(inst.children("authd"))


# ---------------------------------------------------------------- hashes


def sha512_crypt(password):
    """A $6$ hash made by another program than herald: openssl."""
    return subprocess.run(["openssl", "passwd", "-6", password],
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def lmdb_password(inst, addr, hashed=False):
    """Read (hashed False), write (a string) or delete (None) the hash of
    addr in <data>/passwd/ the way lib/mail/dir.c does (one unnamed
    database, key = lowercased address, value = crypt string), through
    liblmdb with ctypes, so that any hash string can be tried. Returns the
    hash read (None if there is none)."""
    name = ctypes.util.find_library("lmdb") or "liblmdb.so.0"
    lib = ctypes.CDLL(name)

    class Val(ctypes.Structure):
        _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.c_void_p)]

    env, txn = ctypes.c_void_p(), ctypes.c_void_p()
    dbi = ctypes.c_uint()
    MDB_NOTFOUND, MDB_RDONLY = -30798, 0x20000

    def ok(rc, what):
        if rc != 0:
            raise AssertionError("%s: LMDB error %d" % (what, rc))

    reading = hashed is False
    ok(lib.mdb_env_create(ctypes.byref(env)), "mdb_env_create")
    try:
        ok(lib.mdb_env_set_mapsize(env, ctypes.c_size_t(1 << 30)),
           "mapsize")
        ok(lib.mdb_env_open(env, str(inst.dir / "data" / "passwd").encode(),
                            MDB_RDONLY if reading else 0, 0o600),
           "mdb_env_open")
        ok(lib.mdb_txn_begin(env, None, MDB_RDONLY if reading else 0,
                             ctypes.byref(txn)), "begin")
        ok(lib.mdb_dbi_open(txn, None, 0, ctypes.byref(dbi)), "dbi_open")
        k = addr.lower().encode()
        kb = ctypes.create_string_buffer(k)
        key = Val(len(k), ctypes.cast(kb, ctypes.c_void_p))
        if reading:
            val = Val()
            rc = lib.mdb_get(txn, dbi, ctypes.byref(key), ctypes.byref(val))
            lib.mdb_txn_abort(txn)
            if rc == MDB_NOTFOUND:
                return None
            ok(rc, "mdb_get")
            return ctypes.string_at(val.data, val.size).decode()
        if hashed is None:
            rc = lib.mdb_del(txn, dbi, ctypes.byref(key), None)
            ok(0 if rc == MDB_NOTFOUND else rc, "mdb_del")
        else:
            v = hashed.encode()
            vb = ctypes.create_string_buffer(v)
            val = Val(len(v), ctypes.cast(vb, ctypes.c_void_p))
            ok(lib.mdb_put(txn, dbi, ctypes.byref(key), ctypes.byref(val),
                           0), "mdb_put")
        ok(lib.mdb_txn_commit(txn), "commit")
        return None
    finally:
        lib.mdb_env_close(env)


def lmdb_set_password(inst, addr, hashed):
    lmdb_password(inst, addr, hashed)


# ---------------------------------------------------------------- tests


def test_ok_returns_canonical_user(make_herald):
    inst = make_herald(auth_default_domain="example.test")
    r = verify(inst, "Alice@Example.Test", "pw-alice", "192.0.2.10")
    assert r == {"status": "ok", "user": "alice@example.test"}, r
    r = verify(inst, "BOB", "pw-bob", "192.0.2.10", service="pop3")
    assert r == {"status": "ok", "user": "bob@example.test"}, r
    inst.wait_log(r"herald/authd\[\d+\]: login: service=test "
                  r"client=\[192\.0\.2\.10\] user=<alice@example\.test>$")
    inst.wait_log(r"herald/authd\[\d+\]: login: service=pop3 "
                  r"client=\[192\.0\.2\.10\] user=<bob@example\.test>$")
    # without auth_default_domain a bare name is no account
    inst.set_config(auth_default_domain=None)
    inst.stop()
    inst.start()
    r = verify(inst, "bob", "pw-bob", "192.0.2.11")
    assert r["status"] == "fail", r


def test_failures_look_alike(make_herald):
    inst = make_herald(**THROTTLE)
    inst.ctl_ok("user", "disable", "carol@example.test")
    since = inst.log_size()
    answers = {
        "wrong password": verify(inst, "alice@example.test", "pw-bob",
                                 "192.0.2.20"),
        "unknown user": verify(inst, "zed@example.test", "pw-bob",
                               "192.0.2.21"),
        "account disabled": verify(inst, "carol@example.test", "pw-carol",
                                   "192.0.2.22"),
        "no domain": verify(inst, "alice", "pw-alice", "192.0.2.23"),
    }
    for why, r in answers.items():
        assert r is not None, why
        assert r["status"] == "fail", (why, r)
        assert "user" not in r, (why, r)
        # the first failure of an address: the base delay
        assert r.get("delay") == "1000", (why, r)
    log = inst.log_text(since)
    for client, why in (("192.0.2.20", "wrong password"),
                        ("192.0.2.21", "unknown user"),
                        ("192.0.2.22", "account disabled")):
        assert re.search(r"login failed: service=test client=\[%s\] "
                         r"user=<[a-z]+@example\.test> failures=1 delay=1s: "
                         r"%s$" % (re.escape(client), why), log, re.M), log
    # enabled again, carol gets in
    inst.ctl_ok("user", "enable", "carol@example.test")
    r = verify(inst, "carol@example.test", "pw-carol", "192.0.2.24")
    assert r["status"] == "ok", r


def test_client_lockout(make_herald):
    inst = make_herald(**THROTTLE)
    delays = []
    for _ in range(5):
        r = verify(inst, "alice@example.test", "wrong", "192.0.2.1")
        assert r["status"] == "fail", r
        delays.append(int(r["delay"]))
    assert delays == [1000, 2000, 2000, 2000, 2000], delays
    # locked: the right password does not help, and is not even checked
    r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.1")
    assert r["status"] == "locked", r
    assert "user" not in r
    assert int(r["delay"]) == 2000, r
    assert "client address locked out until" in r.get("reason", ""), r
    inst.wait_log(r"login locked: service=test client=\[192\.0\.2\.1\] "
                  r"user=<alice@example\.test>: client address locked out "
                  r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
    # other addresses are not affected
    r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.2")
    assert r == {"status": "ok", "user": "alice@example.test"}, r
    # loopback gets no exemption
    for _ in range(5):
        verify(inst, "bob@example.test", "wrong", "127.0.0.1")
    r = verify(inst, "bob@example.test", "pw-bob", "127.0.0.1")
    assert r["status"] == "locked", r


def test_success_clears_account_not_address(make_herald):
    inst = make_herald(**THROTTLE)
    for _ in range(2):
        verify(inst, "dave@example.test", "wrong", "192.0.2.30")
    # while the address has recent failures, success is delayed too
    r = verify(inst, "dave@example.test", "pw-dave", "192.0.2.30")
    assert r["status"] == "ok" and r.get("delay") == "2000", r
    # the address keeps its two failures until its window passes
    r = verify(inst, "dave@example.test", "pw-dave", "192.0.2.30")
    assert r["status"] == "ok" and r.get("delay") == "2000", r
    r = verify(inst, "dave@example.test", "wrong", "192.0.2.30")
    assert r["status"] == "fail" and r.get("delay") == "2000", r
    inst.wait_log(r"login failed: service=test client=\[192\.0\.2\.30\] "
                  r"user=<dave@example\.test> failures=3 ")
    # the account's count was cleared by the success: its own failure
    # above is the first of a new count, six more do not lock it (7 do)
    for i in range(5):
        r = verify(inst, "dave@example.test", "wrong", "198.51.100.%d" % i)
        assert r["status"] == "fail", r
    r = verify(inst, "dave@example.test", "pw-dave", "198.51.100.50")
    assert r["status"] == "ok", r


def pop3_login(inst, user, password):
    """USER/PASS over POP3 from 127.0.0.1: "+OK..." or the -ERR text."""
    p = poplib.POP3("127.0.0.1", inst.pop3_port, timeout=30)
    try:
        p.user(user)
        try:
            return p.pass_(password).decode()
        except poplib.error_proto as e:
            return e.args[0].decode()
    finally:
        try:
            p.quit()
        except (poplib.error_proto, OSError):
            pass


def test_own_account_does_not_reset_address_lockout(make_herald):
    """Issue 11: an attacker with an account of their own guesses at
    others and logs in as themself in between; the address must still be
    locked at auth_client_lockout failures (end to end, over POP3)."""
    inst = make_herald(auth_failure_delay="0", auth_failure_delay_max="0",
                       auth_client_lockout="5", auth_account_lockout="100",
                       auth_failure_window="10m", auth_lockout_time="10m")
    failed = "-ERR [AUTH] Authentication failed."
    locked = "-ERR [AUTH] Too many failed logins, try again later."
    for victim in ("bob", "carol", "dave", "bob"):
        assert pop3_login(inst, victim + "@example.test",
                          "guess") == failed
    # the attacker's own account: in, and the address keeps its count
    assert pop3_login(inst, "alice@example.test",
                      "pw-alice").startswith("+OK")
    # the fifth guess is the limit
    assert pop3_login(inst, "carol@example.test", "guess") == failed
    inst.wait_log(r"login failed: service=pop3 client=\[127\.0\.0\.1\] "
                  r"user=<carol@example\.test> failures=5 delay=0s: wrong "
                  r"password; client address now locked out until ")
    assert pop3_login(inst, "dave@example.test", "guess") == locked
    assert pop3_login(inst, "alice@example.test", "pw-alice") == locked


def test_account_lockout(make_herald):
    inst = make_herald(**THROTTLE)
    for i in range(7):
        r = verify(inst, "bob@example.test", "wrong", "198.51.100.%d" % i)
        assert r["status"] == "fail", r
    r = verify(inst, "bob@example.test", "pw-bob", "198.51.100.99")
    assert r["status"] == "locked", r
    assert "account locked out until" in r.get("reason", ""), r
    # case and default domain do not get around it
    r = verify(inst, "BOB@example.TEST", "pw-bob", "198.51.100.98")
    assert r["status"] == "locked", r
    # other accounts are fine from anywhere
    r = verify(inst, "alice@example.test", "pw-alice", "198.51.100.1")
    assert r["status"] == "ok", r


def test_counters_survive_restart(make_herald):
    inst = make_herald(**THROTTLE)
    for _ in range(5):
        verify(inst, "alice@example.test", "wrong", "192.0.2.40")
    for _ in range(3):
        verify(inst, "bob@example.test", "wrong", "192.0.2.41")
    assert (inst.dir / "data" / "authstate" / "data.mdb").exists()
    inst.stop()
    inst.start()
    r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.40")
    assert r["status"] == "locked", r
    # three recent failures: the next answer still carries the delay
    r = verify(inst, "bob@example.test", "pw-bob", "192.0.2.41")
    assert r["status"] == "ok" and r.get("delay") == "2000", r


def test_other_hash_schemes(make_herald):
    inst = make_herald(start=False)
    inst.add_user("six@example.test", "replaced")
    inst.add_user("blf@example.test", "replaced")
    inst.add_user("odd@example.test", "replaced")
    lmdb_set_password(inst, "six@example.test", sha512_crypt("six-pw"))
    lmdb_set_password(inst, "odd@example.test", "!disabled-hash")
    blf = None
    if crypt is not None:
        blf = crypt.crypt("blf-pw", crypt.mksalt(crypt.METHOD_BLOWFISH,
                                                 rounds=1 << 5))
        if blf and blf.startswith("$2b$"):
            lmdb_set_password(inst, "blf@example.test", blf)
        else:
            blf = None
    inst.start()
    r = verify(inst, "six@example.test", "six-pw", "192.0.2.50")
    assert r == {"status": "ok", "user": "six@example.test"}, r
    r = verify(inst, "six@example.test", "replaced", "192.0.2.51")
    assert r["status"] == "fail", r
    r = verify(inst, "odd@example.test", "!disabled-hash", "192.0.2.52")
    assert r["status"] == "fail", r
    inst.wait_log(r"login failed: .*user=<odd@example\.test> .*: "
                  r"unusable password hash$")
    if blf is None:
        print("bcrypt: Python has no crypt module with bcrypt; covered by "
              "auth/auth_verify_test.c")
    else:
        r = verify(inst, "blf@example.test", "blf-pw", "192.0.2.53")
        assert r == {"status": "ok", "user": "blf@example.test"}, r


def test_imported_hash_rehashed_at_login(make_herald):
    inst = make_herald(start=False)
    inst.add_user("six@example.test", "replaced")
    six = sha512_crypt("six-pw")
    lmdb_set_password(inst, "six@example.test", six)
    inst.start()
    since = inst.log_size()
    # a wrong password changes nothing
    r = verify(inst, "six@example.test", "six-px", "192.0.2.54")
    assert r["status"] == "fail", r
    assert lmdb_password(inst, "six@example.test") == six
    r = verify(inst, "six@example.test", "six-pw", "192.0.2.55")
    assert r == {"status": "ok", "user": "six@example.test"}, r
    inst.wait_log(r"herald/authd\[\d+\]: password rehashed: "
                  r"user=<six@example\.test> from=SHA512-CRYPT "
                  r"to=yescrypt$", since=since)
    now = lmdb_password(inst, "six@example.test")
    assert now.startswith("$y$") and now != six, now
    # the same password, now against the yescrypt hash
    r = verify(inst, "six@example.test", "six-pw", "192.0.2.56")
    assert r == {"status": "ok", "user": "six@example.test"}, r
    assert verify(inst, "six@example.test", "replaced",
                  "192.0.2.57")["status"] == "fail"
    assert lmdb_password(inst, "six@example.test") == now
    log = inst.log_text(since)
    assert log.count("password rehashed") == 1, log
    assert "six-pw" not in log
    # every authd keeps the password database open (mapped), not per
    # request
    for pid in authd_pids(inst):
        maps = open("/proc/%d/maps" % pid).read()
        assert "/passwd/data.mdb" in maps, (pid, maps[-2000:])
    # heraldctl can still write beside authd's kept handle
    inst.ctl_ok("user", "passwd", "six@example.test", input="newer-pw\n")
    assert verify(inst, "six@example.test", "newer-pw",
                  "192.0.2.58")["status"] == "ok"
    assert verify(inst, "six@example.test", "six-pw",
                  "192.0.2.59")["status"] == "fail"


def test_password_database_made_after_start(make_herald):
    """authd starts before any password exists; the database heraldctl
    makes later is opened (once) when it is there."""
    inst = make_herald(start=False, standard=False)
    inst.add_domain("example.test")
    inst.start()
    assert not (inst.dir / "data" / "passwd" / "data.mdb").exists()
    r = verify(inst, "erin@example.test", "pw-erin", "192.0.2.60")
    assert r["status"] == "fail", r
    inst.add_user("erin@example.test", "pw-erin")
    r = verify(inst, "erin@example.test", "pw-erin", "192.0.2.61")
    assert r == {"status": "ok", "user": "erin@example.test"}, r


def pop3_pass_time(inst, user, password, source):
    """Seconds from sending PASS to the -ERR/+OK line, from source."""
    c = H.RawLines("127.0.0.1", inst.pop3_port, 30, source)
    try:
        assert c.readline().startswith(b"+OK"), "greeting"
        c.send(b"USER %s\r\n" % user.encode())
        assert c.readline().startswith(b"+OK"), "USER"
        t0 = time.monotonic()
        c.send(b"PASS %s\r\n" % password.encode())
        line = c.readline()
        took = time.monotonic() - t0
        c.send(b"QUIT\r\n")
        return took, line
    finally:
        c.close()


def test_failure_time_tells_nothing(make_herald):
    """Issue 11: a failed login takes the same time whatever the account:
    unknown, disabled, yescrypt with a wrong password, imported
    SHA512-CRYPT with a wrong password, "*" hash, no password at all.
    Measured end to end over POP3 with the default settings for the
    answer (auth_answer_floor), 30 interleaved rounds (10 under ASan),
    medians within 20% of each other. No throttling delay or lockout gets
    in the way (delay 0, limits out of reach). The equal work underneath
    the floor is checked on CPU time by auth/auth_verify_test.c:
    wall-clock medians of bare ~20 ms hashes are at the mercy of a busy
    machine."""
    settings = dict(auth_failure_delay="0", auth_failure_delay_max="0",
                    auth_client_lockout="100000",
                    auth_account_lockout="100000",
                    auth_account_prefix_lockout="100000")
    inst = make_herald(start=False, **settings)
    for user in ("six", "star", "nopw"):
        inst.add_user("%s@example.test" % user, "pw-" + user)
    lmdb_set_password(inst, "six@example.test", sha512_crypt("pw-six"))
    lmdb_set_password(inst, "star@example.test", "*")
    lmdb_password(inst, "nopw@example.test", None)
    inst.ctl_ok("user", "disable", "carol@example.test")
    inst.start()
    kinds = {
        "unknown": "nobody@example.test",
        "disabled": "carol@example.test",
        "yescrypt": "alice@example.test",
        "sha512": "six@example.test",
        "star": "star@example.test",
        "nopw": "nopw@example.test",
    }
    times = {k: [] for k in kinds}
    rng = random.Random(11)
    order = list(kinds)
    for _ in range(TIMING_ROUNDS):
        rng.shuffle(order)
        for k in order:
            took, line = pop3_pass_time(inst, kinds[k], "wrong-password",
                                        "127.0.0.1")
            assert line.startswith(b"-ERR [AUTH] Authentication failed"), \
                (k, line)
            times[k].append(took)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print("median PASS answer (ms): %s" % ", ".join(
        "%s %.1f" % kv for kv in sorted(med.items())))
    lo, hi = min(med.values()), max(med.values())
    assert hi <= lo * 1.2, med
    assert lo >= 240, med	# auth_answer_floor is 250 ms
    # the accounts really are what they pretend to be
    assert inst.auth("six@example.test", "pw-six",
                     client="192.0.2.99")["status"] == "ok"


def test_garbage_does_not_kill_authd(make_herald):
    inst = make_herald()
    before = authd_pids(inst)
    assert before
    since = inst.log_size()
    garbage = [
        b"\x00\x00\x00\x05abcde",                       # name not ended
        b"\xff\xff\xff\xff",                            # huge length
        b"\x00\x00\x00\x00",                            # empty frame
        H.ipc_frame([("request", "verify"), ("user", "a@example.test"),
                     ("password", "x"), ("client", "192.0.2.60"),
                     ("service", "test"), ("bogus", "1")]),
        H.ipc_frame([("request", "verify"), ("user", "a@example.test"),
                     ("client", "192.0.2.60"), ("service", "test")]),
        H.ipc_frame([("request", "verify"), ("user", "a\r\n@example.test"),
                     ("password", "x"), ("client", "192.0.2.60"),
                     ("service", "test")]),
        H.ipc_frame([("request", "verify"), ("user", "a@example.test"),
                     ("password", "x"), ("client", "[6.6.6.6]"),
                     ("service", "test")]),
        H.ipc_frame([("request", "delete"), ("user", "a@example.test"),
                     ("password", "x"), ("client", "192.0.2.60"),
                     ("service", "test")]),
        H.ipc_frame([("request", "verify"), ("user", "x" * 400 + "@e.t"),
                     ("password", "x"), ("client", "192.0.2.60"),
                     ("service", "test")]),
    ]
    for data in garbage:
        assert raw_exchange(inst, data) == b"", data
    inst.wait_log(r"herald/authd\[\d+\]: warning: .*(malformed|dropped)",
                  since=since)
    # still the same processes, and they still work
    r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.61")
    assert r["status"] == "ok", r
    assert authd_pids(inst) == before, (before, authd_pids(inst))
    # nothing of the garbage was counted as a login attempt
    assert "192.0.2.60" not in inst.log_text(since)


def test_sigkill_gives_clean_close_and_restart(make_herald):
    inst = make_herald(auth_processes="1")
    old = H.wait_for(lambda: authd_pids(inst), 10, what="authd running")
    assert len(old) == 1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(10)
        s.connect(str(inst.run_dir / "auth"))
        # a request in flight: authd has accepted it and waits for the rest
        frame = H.ipc_frame([("request", "verify"),
                             ("user", "alice@example.test"),
                             ("password", "pw-alice"),
                             ("client", "192.0.2.70"), ("service", "test")])
        s.sendall(frame[:10])
        time.sleep(0.5)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        try:
            got = s.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b"", got
    finally:
        s.close()
    new = H.wait_for(lambda: authd_pids(inst) - old, 20,
                     what="a new authd process")
    assert new
    r = H.wait_for(lambda: verify(inst, "alice@example.test", "pw-alice",
                                  "192.0.2.71"), 20, what="a login")
    assert r["status"] == "ok", r


def fail2ban_setup(tmp_path):
    if shutil.which("fail2ban-regex") is None:
        print("fail2ban-regex is not installed: skipped")
        pytest.skip("fail2ban-regex is not installed")
    common = "/etc/fail2ban/filter.d/common.conf"
    if not os.path.exists(common):
        print("%s is missing: skipped" % common)
        pytest.skip("%s is missing" % common)
    folder = tmp_path / "fail2ban" / "filter.d"
    folder.mkdir(parents=True)
    shutil.copy(common, folder)
    shutil.copy(H.REPO / "etc" / "fail2ban" / "filter.d" / "herald.conf",
                folder)
    return folder / "herald.conf"


def syslog_lines(inst, since):
    """authd's lines of the instance log, shaped as syslog writes them
    (in the foreground each line starts with its RFC 3339 time: dropped)."""
    out = []
    for line in inst.log_text(since).splitlines():
        m = re.match(r"(?:\S+ )?(herald/authd\[\d+\]: .*)", line)
        if m:
            out.append("Nov 23 22:44:12 mx " + m.group(1))
    return out


def fail2ban_ips(tmp_path, filt, lines, name):
    log = tmp_path / name
    log.write_text("\n".join(lines) + "\n")
    r = subprocess.run(["fail2ban-regex", "-o", "ip", str(log), str(filt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    return [x for x in r.stdout.split() if x]


def test_fail2ban_filter(make_herald, tmp_path):
    filt = fail2ban_setup(tmp_path)
    inst = make_herald(**THROTTLE)
    since = inst.log_size()
    caused = []
    # successes only: nothing may match
    for client in ("192.0.2.80", "192.0.2.81"):
        assert verify(inst, "alice@example.test", "pw-alice",
                      client)["status"] == "ok"
    ok_lines = syslog_lines(inst, since)
    assert len(ok_lines) == 2, ok_lines
    assert fail2ban_ips(tmp_path, filt, ok_lines, "ok.log") == []

    since = inst.log_size()
    for client in ("192.0.2.90", "2001:db8::90", "192.0.2.91"):
        assert verify(inst, "alice@example.test", "wrong",
                      client)["status"] == "fail"
        caused.append(client)
    # a login name that tries to plant another address for fail2ban
    evil = "x> client=[6.6.6.6] user=<y"
    assert verify(inst, evil, "wrong", "192.0.2.92")["status"] == "fail"
    caused.append("192.0.2.92")
    # a lockout: five failures, then "locked"
    for _ in range(5):
        verify(inst, "bob@example.test", "wrong", "192.0.2.93")
        caused.append("192.0.2.93")
    assert verify(inst, "bob@example.test", "pw-bob",
                  "192.0.2.93")["status"] == "locked"
    caused.append("192.0.2.93")
    # and a success in between that must not count
    assert verify(inst, "carol@example.test", "pw-carol",
                  "192.0.2.94")["status"] == "ok"
    lines = syslog_lines(inst, since)
    assert len(lines) == len(caused) + 1, lines
    assert not any("6.6.6.6]" in l for l in lines), lines
    ips = fail2ban_ips(tmp_path, filt, lines, "mixed.log")
    assert ips == caused, (ips, caused)


# ------------------------------------------------- issue 12: fairness

FLOOD_N = 600		# failing logins ...
FLOOD_SECONDS = 3.0	# ... spread over this long (200 a second)
FLOOD_PREFIXES = 8	# from 127.2.0.y ... 127.2.7.y


def flood(inst, stop_at, sockets):
    """FLOOD_N failing POP3 logins from fresh 127.2.x.y addresses over
    FLOOD_SECONDS, each pipelining USER and PASS, half-closing and never
    reading (the sockets stay open in sockets until the caller closes
    them). Bounded in count and time."""
    t0 = time.monotonic()
    for i in range(FLOOD_N):
        if time.monotonic() > stop_at:
            break
        wait = t0 + i * FLOOD_SECONDS / FLOOD_N - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        src = "127.2.%d.%d" % (i % FLOOD_PREFIXES, i // FLOOD_PREFIXES + 1)
        try:
            s = socket.create_connection(("127.0.0.1", inst.pop3_port),
                                         timeout=2, source_address=(src, 0))
            s.sendall(b"USER guess%d@example.test\r\nPASS wrong\r\n" % i)
            s.shutdown(socket.SHUT_WR)
            sockets.append(s)
        except OSError:
            pass


def test_flood_does_not_starve_real_logins(make_herald):
    """Issue 12: a flood of failing logins from many fresh addresses
    (600 in 3 s from 127.2.0-7.y, each half-closing without reading)
    must not keep a real user from logging in: ten logins of alice from
    127.0.0.1, spread over the flood, all succeed, median answer < 2 s.
    Without bounds per server process and per prefix the flood filled
    authd's pool and backlog (median ~11 s on 2 cores)."""
    inst = make_herald(auth_answer_floor="0")
    sockets = []
    stop_at = time.monotonic() + 20
    t = threading.Thread(target=flood, args=(inst, stop_at, sockets))
    results = []

    def real_login():
        try:
            results.append(pop3_pass_time(inst, "alice@example.test",
                                          "pw-alice", "127.0.0.1"))
        except (OSError, AssertionError) as e:
            results.append((60.0, repr(e).encode()))

    logins = [threading.Thread(target=real_login) for _ in range(10)]
    try:
        t.start()
        # real logins all through the flood, each on its own
        for k, lt in enumerate(logins):
            time.sleep(0.5 if k == 0 else FLOOD_SECONDS / 12)
            lt.start()
    finally:
        for lt in logins:
            if lt.is_alive() or lt.ident:
                lt.join(timeout=40)
        t.join(timeout=30)
        for s in sockets:
            s.close()
    times = [r[0] for r in results]
    lines = [r[1] for r in results]
    med = statistics.median(times)
    print("real logins during the flood: median %.3f s, max %.3f s, "
          "flood connections %d" % (med, max(times), len(sockets)))
    log = inst.log_text()
    print("flood at authd: %d checked, %d locked; turned away by pop3d: "
          "%d prefix bound, %d queue full, %d client gone" % (
              log.count("login failed: service=pop3 client=[127.2."),
              log.count("login locked: service=pop3 client=[127.2."),
              log.count("too many authentication requests from"),
              log.count("authd queue full"),
              log.count("client hung up before authd was asked")))
    # [IN-USE]: the password was taken, but the previous of these logins
    # of alice still held her maildrop (they overlap under the flood; a
    # cached check answers sooner, which makes that likelier)
    assert all(x.startswith(b"+OK") or x.startswith(b"-ERR [IN-USE]")
               for x in lines), lines
    assert sum(x.startswith(b"+OK") for x in lines) >= len(lines) // 2, lines
    assert med < 2.0, times
    # the flood was turned away early, without authd, at least in part
    assert inst.wait_log(r"too many authentication requests from "
                         r"127\.2\.\d\.0/24|authd queue full|client hung "
                         r"up before authd was asked")


HOT_N = 12	# logins at once from one /24 after one failure there


def test_hot_prefix_alone_gets_its_logins_through(make_herald):
    """Review finding: a webmail server or an office NAT behind one /24
    with one typo was throttled for everybody behind it, even with authd
    idle: pop3d gave all but auth_prefix_inflight (2) of its logins a
    temporary failure. One failed login from 127.3.0.200 makes the
    prefix hot; then HOT_N logins at once from 127.3.0.1..HOT_N (other
    addresses: authd's per-address delay does not apply) through one
    pop3d, with nothing else waiting: every one succeeds. No login cache
    (each is a full check), so that they overlap at authd."""
    inst = make_herald(start=False, pop3d_workers="1",
                       auth_cache_ttl="0", auth_answer_floor="0")
    users = ["h%d@example.test" % i for i in range(HOT_N)]
    for u in users:
        inst.add_user(u, "pw-" + u)
    inst.start()
    took, line = pop3_pass_time(inst, users[0], "wrong", "127.3.0.200")
    assert line.startswith(b"-ERR"), line
    conns = []
    try:
        for i, u in enumerate(users):
            c = H.RawLines("127.0.0.1", inst.pop3_port, 30,
                           "127.3.0.%d" % (i + 1))
            conns.append(c)
            assert c.readline().startswith(b"+OK"), "greeting"
        for c, u in zip(conns, users):
            c.send(b"USER %s\r\nPASS pw-%s\r\n" % (u.encode(),
                                                     u.encode()))
        answers = []
        for c in conns:
            assert c.readline().startswith(b"+OK"), "USER"
            answers.append(c.readline())
            c.send(b"QUIT\r\n")
    finally:
        for c in conns:
            c.close()
    print("hot prefix alone: %s" % answers)
    assert all(a.startswith(b"+OK") for a in answers), answers
    assert "too many authentication requests from" not in inst.log_text()


def test_concurrent_good_logins_are_not_delayed(make_herald):
    """Logins in flight at once from one address (a webmail server, the
    POP3 bench's 10 clients on 127.0.0.1) each count as a failure until
    authd settles them, for the lockout; they must not count as known
    failures for the delay of the others. Before the fix each good login
    that overlapped another authd process's got auth_failure_delay (the
    POP3 bench waited ~1 s per login: 12 sessions/s). Rounds of 6 at once
    on authd's 2 processes: no answer carries a delay; after one real
    failure every answer does, and the lockout still comes at its
    threshold."""
    inst = make_herald(auth_processes="2", **THROTTLE)
    users = [("alice@example.test", "pw-alice"),
             ("bob@example.test", "pw-bob")]

    def burst(client, n=6, password=None):
        replies = [None] * n

        def one(i):
            u, pw = users[i % 2]
            replies[i] = verify(inst, u, password or pw, client)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=60)
        return replies

    for _ in range(3):
        got = burst("192.0.2.77")
        assert all(r and r["status"] == "ok" and "delay" not in r
                   for r in got), got
    # a known failure delays every answer to the address, good ones too
    r = verify(inst, "alice@example.test", "wrong", "192.0.2.77")
    assert r["status"] == "fail" and r.get("delay") == "1000", r
    got = burst("192.0.2.77")
    assert all(r and r["status"] == "ok" and r.get("delay") == "1000"
               for r in got), got
    # guesses in flight at once still lock the address at its threshold
    # (auth_client_lockout 5: 6 wrong at once from a fresh address)
    got = burst("192.0.2.78", n=6, password="wrong")
    assert all(r and r["status"] in ("fail", "locked") for r in got), got
    r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.78")
    assert r["status"] == "locked", r


def test_strangers_cannot_lock_out_a_user(make_herald):
    """Issue 12: 30 wrong passwords for bob from 30 addresses in three
    /24s of 127.3.0.0/16 lock bob out for those /24s only: from where he
    logged in before he still logs in, and from a prefix nobody attacked
    too (30 is far below the global auth_account_lockout)."""
    inst = make_herald(auth_answer_floor="0", auth_failure_delay="0",
                       auth_failure_delay_max="0")
    r = verify(inst, "bob@example.test", "pw-bob", "127.0.0.1")
    assert r["status"] == "ok", r
    for i in range(30):
        r = verify(inst, "bob@example.test", "guess%d" % i,
                   "127.3.%d.%d" % (i % 3, i + 1))
        assert r["status"] in ("fail", "locked"), r
    # his usual address, over POP3 too; and somewhere new
    assert pop3_login(inst, "bob@example.test", "pw-bob").startswith("+OK")
    r = verify(inst, "bob@example.test", "pw-bob", "127.4.0.1")
    assert r["status"] == "ok", r
    inst.wait_log(r"login failed: service=test client=\[127\.3\.\d\.\d+\] "
                  r"user=<bob@example\.test> failures=1 delay=0s: wrong "
                  r"password; account from this address prefix now locked "
                  r"out until ")
    # an attacked /24: locked for bob (the log line fail2ban reads)
    r = verify(inst, "bob@example.test", "pw-bob", "127.3.1.200")
    assert r["status"] == "locked", r
    inst.wait_log(r"login locked: service=test client=\[127\.3\.1\.200\] "
                  r"user=<bob@example\.test>: account from this address "
                  r"prefix locked out until ")


def test_request_of_a_server_that_left_is_not_checked(make_herald):
    """Issue 12: a request whose server closed the connection while it
    waited for authd (its client went away) is dropped before the check
    and not counted."""
    inst = make_herald(auth_processes="1", auth_answer_floor="0", **{
        k: v for k, v in THROTTLE.items() if k != "auth_answer_floor"})
    pairs = [("request", "verify"), ("user", "bob@example.test"),
             ("password", "wrong"), ("client", "192.0.2.77"),
             ("service", "test")]
    path = str(inst.run_dir / "auth")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:
        # the only authd process waits for this one's request ...
        busy.settimeout(10)
        busy.connect(path)
        time.sleep(0.3)
        # ... while this one's server sends its request and leaves
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
            gone.settimeout(10)
            gone.connect(path)
            gone.sendall(H.ipc_frame(pairs))
    inst.wait_log(r"request dropped: service=test client=\[192\.0\.2\.77\]: "
                  r"the server closed the connection before the check")
    # not counted: the next failure is the first
    r = verify(inst, "bob@example.test", "wrong", "192.0.2.77")
    assert r["status"] == "fail" and r.get("delay") == "1000", r


# ------------------------------------------- heraldctl auth lockouts/unlock


def test_ctl_lockouts_and_unlock(make_herald):
    """Issue 13: a client address locked by bad POP3 passwords shows in
    "heraldctl auth lockouts" with its expiry; "auth unlock" lifts it and
    the right password works again. An account locked from everywhere
    shows and is lifted the same way; bad operands are usage errors and
    lifting what is not there fails."""
    inst = make_herald(auth_failure_delay="0", auth_failure_delay_max="0",
                       auth_client_lockout="5", auth_account_lockout="7",
                       auth_failure_window="10m", auth_lockout_time="10m")
    locked = "-ERR [AUTH] Too many failed logins, try again later."
    r = inst.ctl_ok("auth", "lockouts")
    assert r.stdout.strip() == "no lockouts", r.stdout
    for _ in range(5):
        assert pop3_login(inst, "alice@example.test", "wrong") != locked
    assert pop3_login(inst, "alice@example.test", "pw-alice") == locked
    before = time.time()
    r = inst.ctl_ok("auth", "lockouts")
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0] == ["TYPE", "WHO", "FAILURES", "LOCKED_UNTIL",
                       "REMAINING"], r.stdout
    assert rows[1][:3] == ["address", "127.0.0.1", "5"], r.stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[1][3])
    assert rows[1][4] in ("9m", "10m"), r.stdout
    js = inst.ctl("auth", "lockouts", json_out=True)
    assert js.returncode == 0, js
    (entry,) = json.loads(js.stdout)
    assert entry["type"] == "address" and entry["address"] == "127.0.0.1"
    assert entry["failures"] == 5
    assert 590 <= entry["remaining"] <= 600, entry
    until = time.mktime(time.strptime(entry["until"],
                                      "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before + 580 <= until <= time.time() + 601, (before, entry)

    r = inst.ctl_ok("auth", "unlock", "127.0.0.1")
    assert "127.0.0.1: unlocked" in r.stdout, r.stdout
    assert inst.ctl_ok("auth", "lockouts").stdout.strip() == "no lockouts"
    assert pop3_login(inst, "alice@example.test", "pw-alice").startswith(
        "+OK"), "still locked after unlock"
    r = inst.ctl("auth", "unlock", "127.0.0.1")
    assert r.returncode == 1 and "no failures or lockouts" in r.stderr, r

    # an account locked from 7 prefixes; lifted by its name
    for i in range(7):
        verify(inst, "bob@example.test", "wrong", "198.51.%d.1" % i)
    r = verify(inst, "bob@example.test", "pw-bob", "203.0.113.1")
    assert r["status"] == "locked", r
    r = inst.ctl_ok("auth", "lockouts")
    assert re.search(r"^account +bob@example\.test +7 ", r.stdout, re.M), \
        r.stdout
    r = inst.ctl_ok("auth", "unlock", "Bob@Example.TEST")
    assert "unlocked" in r.stdout, r.stdout
    r = verify(inst, "bob@example.test", "pw-bob", "203.0.113.1")
    assert r["status"] == "ok", r
    # a prefix lifts the addresses inside it
    for _ in range(5):
        verify(inst, "carol@example.test", "wrong", "192.0.2.77")
    assert "192.0.2.77" in inst.ctl_ok("auth", "lockouts").stdout
    inst.ctl_ok("auth", "unlock", "192.0.2.0/24")
    assert "192.0.2.77" not in inst.ctl_ok("auth", "lockouts").stdout

    for bad in ("nonsense", "192.0.2.0/33", "1.2.3.4/", "a@b@c"):
        r = inst.ctl("auth", "unlock", bad)
        assert r.returncode == 2 and "heraldctl: " in r.stderr, (bad, r)
    r = inst.ctl("auth", "unlock")
    assert r.returncode == 2, r
    r = inst.ctl("auth", "--help")
    assert "lockouts" in r.stdout and "unlock" in r.stdout, r


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_ctl_lockouts_privilege(pki):
    """Issue 13: the throttle database is auth_user's. root lists and
    lifts lockouts through a child that became auth_user (the folder and
    its files stay auth_user's, nothing root-owned appears); an ordinary
    user can neither list nor lift them, and the lockout stays."""
    import pwd
    import tempfile
    from pathlib import Path
    try:
        auth = pwd.getpwnam("bin")
        other = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("accounts bin and nobody needed")
    folder = Path(tempfile.mkdtemp(prefix="herald-lockouts-", dir="/tmp"))
    os.chmod(folder, 0o755)
    inst = H.HeraldInstance(folder / "inst", pki=pki, auth_user="bin",
                            auth_failure_delay="0",
                            auth_failure_delay_max="0",
                            auth_client_lockout="3")
    try:
        inst.add_domain("example.test")
        inst.add_user("alice@example.test", "pw-alice")
        state = inst.dir / "data" / "authstate"
        # an empty state folder (as master makes it): the files LMDB
        # creates there must be auth_user's, not root's
        state.mkdir(mode=0o700)
        os.chown(state, auth.pw_uid, auth.pw_gid)
        r = inst.ctl_ok("auth", "lockouts")
        assert r.stdout.strip() == "no lockouts", r.stdout
        made = list(state.iterdir())
        assert made, "nothing created in %s" % state
        for p in made:
            assert p.stat().st_uid == auth.pw_uid, p
        inst.start()
        for _ in range(3):
            verify(inst, "alice@example.test", "wrong", "192.0.2.9")
        r = inst.ctl_ok("auth", "lockouts")
        assert re.search(r"^address +192\.0\.2\.9 +3 ", r.stdout, re.M), \
            r.stdout
        for p in [state] + list(state.iterdir()):
            assert p.stat().st_uid == auth.pw_uid, p

        def as_other(*args):
            return subprocess.run(
                [str(H.binpath("heraldctl")), "-c", str(inst.conf)]
                + list(args), user=other.pw_uid, group=other.pw_gid,
                extra_groups=[], capture_output=True, text=True,
                timeout=60, cwd="/")
        r = as_other("auth", "lockouts")
        assert r.returncode == 1, r
        assert "192.0.2.9" not in r.stdout, r
        assert "Permission denied" in r.stderr, r
        r = as_other("auth", "unlock", "192.0.2.9")
        assert r.returncode == 1 and "Permission denied" in r.stderr, r
        r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.9")
        assert r["status"] == "locked", r
        inst.ctl_ok("auth", "unlock", "192.0.2.9")
        r = verify(inst, "alice@example.test", "pw-alice", "192.0.2.9")
        assert r["status"] == "ok", r
        for p in [state] + list(state.iterdir()):
            assert p.stat().st_uid == auth.pw_uid, p
    finally:
        try:
            inst.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

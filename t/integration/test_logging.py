"""
test_logging - where herald's log lines go (master_log.c, lib/base/log.c).

Started in the background ("heraldctl start") with no syslog listening,
master says on stderr that it logs to log_file, and master's and every
service's lines land there, stamped; after logrotate's rename a SIGHUP,
a SIGUSR1 or a reload (also a refused one) sends new lines to a new file
at the path (logrotate's postrotate sends SIGUSR1 through the pid file,
which works whatever state herald.conf is in). In the foreground every line starts with a timestamp, unless
journald reads stderr ($JOURNAL_STREAM names it).

The syslog socket is $HERALD_SYSLOG_SOCKET here (a path that does not
exist, or a socket the test binds), so the tests do not depend on the
machine's /dev/log.
"""
import os
import re
import signal
import socket
import subprocess

import herald as H

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
LINE = re.compile(r"^(%s) (herald/[a-z0-9]+)\[(\d+)\]: " % STAMP)


def start_daemon(inst, syslog_socket):
    """heraldctl start (background) with the given syslog socket."""
    env = dict(os.environ, HERALD_SYSLOG_SOCKET=str(syslog_socket))
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", str(inst.conf),
                        "start"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60, start_new_session=True,
                       env=env)
    inst.master_pid = inst.read_master_pid()
    return r


def send(inst, token):
    msg = H.make_message(token)
    with inst.smtp() as s:
        s.ehlo()
        assert s.sendmail("m-%s@example.org" % token,
                          ["alice@example.test"], msg) == {}


def wait_in(path, pattern, timeout=20):
    rx = re.compile(pattern, re.M)

    def found():
        try:
            return rx.search(path.read_text(errors="replace"))
        except FileNotFoundError:
            return None
    return H.wait_for(found, timeout, what="%r in %s" % (pattern, path))


def test_no_syslog_logs_to_file_and_reopens(make_herald, token, tmp_path):
    inst = make_herald(start=False, log_file="logs/herald.log")
    log = inst.dir / "logs" / "herald.log"  # master makes logs/
    nosock = tmp_path / "no-syslog-here"
    try:
        r = start_daemon(inst, nosock)
        assert r.returncode == 0, r
        assert "herald/master: logging to %s: no syslog at %s\n" % (
            log, nosock) in r.stderr, r.stderr
        assert oct(log.stat().st_mode & 0o777) == oct(0o640)
        # a second start is refused before it chooses a destination
        pid = inst.master_pid
        r2 = start_daemon(inst, nosock)
        inst.master_pid = pid
        assert r2.returncode == 1 and "logging to" not in r2.stderr, r2
        wait_in(log, r"herald/master\[%d\]: herald started" %
                inst.master_pid)
        # a service's lines come through master's pipe
        send(inst, token + "-1")
        wait_in(log, r"herald/smtpd\[\d+\]: %s: from=<m-%s-1@" %
                (H.QID_RE, re.escape(token)))
        wait_in(log, r"herald/qmgr\[\d+\]: %s: to=<alice@example.test>"
                % H.QID_RE)
        text = log.read_text()
        for line in text.splitlines():
            assert LINE.match(line), line
        assert "herald/master[%d]: logging to %s: no syslog" % (
            inst.master_pid, log) in text

        # logrotate: rename, SIGHUP; new lines go to a new file
        rotated = log.with_name("herald.log.1")
        log.rename(rotated)
        os.kill(inst.master_pid, signal.SIGHUP)
        wait_in(log, r"herald/master\[\d+\]: reopened log file %s$" %
                re.escape(str(log)))
        send(inst, token + "-2")
        wait_in(log, r"herald/smtpd\[\d+\]: %s: from=<m-%s-2@" %
                (H.QID_RE, re.escape(token)))
        assert token + "-2" not in rotated.read_text()

        # SIGUSR1 reopens only
        log.rename(log.with_name("herald.log.2"))
        os.kill(inst.master_pid, signal.SIGUSR1)
        wait_in(log, r"reopened log file")
        assert "reloading" not in log.read_text()

        # a reload that master refuses still reopens
        log.rename(log.with_name("herald.log.3"))
        with open(inst.conf, "a") as f:
            f.write("no_such_setting = 1\n")
        os.kill(inst.master_pid, signal.SIGHUP)
        wait_in(log, r"reopened log file")
        wait_in(log, r"reload failed: ")

        # and so does heraldctl reload
        inst.write_config()
        log.rename(log.with_name("herald.log.4"))
        r = inst.ctl("reload")
        assert r.returncode == 0, r
        wait_in(log, r"reopened log file")

        pids = inst.our_pids()
        r = inst.ctl("stop")
        assert r.returncode == 0, r
        assert H.wait_dead(list(pids), 30)
        wait_in(log, r"herald/master\[%d\]: herald stopped" %
                inst.master_pid)
        for line in log.read_text().splitlines():
            assert LINE.match(line), line
    finally:
        inst.kill_leftovers()


def test_syslog_there_says_so(make_herald, tmp_path):
    """With a syslog socket that accepts, master says it logs there, and
    writes no log file."""
    inst = make_herald(start=False, log_file="herald-file.log")
    path = tmp_path / "devlog"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        r = start_daemon(inst, path)
        assert r.returncode == 0, r
        assert "herald/master: logging to syslog" in r.stderr, r.stderr
        assert not (inst.dir / "herald-file.log").exists()
        r = inst.ctl("stop")
        assert r.returncode == 0, r
    finally:
        sock.close()
        inst.kill_leftovers()


def test_unwritable_log_file_warns(make_herald, tmp_path):
    """No syslog and a log file that cannot be opened: a warning on
    stderr, and herald still starts."""
    inst = make_herald(start=False, log_file="a-file/herald.log")
    (inst.dir / "a-file").write_text("not a folder\n")
    try:
        r = start_daemon(inst, tmp_path / "nothing")
        assert r.returncode == 0, r
        assert re.search(r"warning: no syslog at \S+, and log_file \S+ "
                         r"cannot be opened: Not a directory; "
                         r"logging to syslog", r.stderr), r.stderr
        assert inst.ctl("status").returncode == 0
        assert inst.ctl("stop").returncode == 0
    finally:
        inst.kill_leftovers()


def test_foreground_lines_are_stamped(make_herald):
    """master -f and its services: every line starts with a timestamp."""
    inst = make_herald()
    inst.stop()
    lines = inst.log_text().splitlines()
    services = set()
    for line in lines:
        m = LINE.match(line)
        assert m, line
        services.add(m.group(2))
    assert {"herald/master", "herald/smtpd", "herald/qmgr"} <= services, \
        services


def test_foreground_under_journald_not_stamped(make_herald):
    """$JOURNAL_STREAM naming stderr: journald stamps, herald does not."""
    inst = make_herald(start=False)
    inst.log_path.touch()
    st = os.stat(inst.log_path)
    inst.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    inst.start()
    inst.stop()
    lines = inst.log_text().splitlines()
    assert any(l.startswith("herald/master[") for l in lines), lines
    for line in lines:
        assert not re.match(STAMP, line), line

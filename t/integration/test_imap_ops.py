"""
imapd as an admin runs it, around the protocol (test_imap_core.py speaks
it): `heraldctl status` lists the imapd workers when imap_listen is set
and says "off" when it is empty; `heraldctl check` fails when the imapd
program is missing from daemon_directory; the shipped fail2ban filter, run by
fail2ban-regex, matches the lines a real instance's authd writes for
failed IMAP logins (LOGIN and AUTHENTICATE PLAIN) and a lockout, and not
the successful one; the shipped jail closes the IMAP ports.
"""
import base64
import configparser
import os
import re

import herald as H
from test_authd import fail2ban_ips, fail2ban_setup, syslog_lines
from test_imap_core import RawIMAP


def imapd_pids(inst):
    return [pid for name, pid in H.json_services(inst.status_json())
            if name == "imapd"]


def test_status_lists_imapd_when_enabled(make_herald):
    inst = make_herald(imap=True)
    pids = H.wait_for(lambda: len(imapd_pids(inst)) == 2 and
                      imapd_pids(inst), 20, what="two imapd workers")
    assert all(H.proc_alive(p) for p in pids), pids
    r = inst.ctl("status")
    assert r.returncode == 0, r
    for pid in pids:
        assert re.search(r"^imapd +running +%d " % pid, r.stdout, re.M), \
            r.stdout
    # off (the default while imapd cannot open mailboxes): said so, and
    # no process
    off = make_herald(imap_listen="", imaps_listen="")
    names = {n for n, _ in H.json_services(off.status_json())}
    assert "pop3d" in names and "imapd" not in names, names
    r = off.ctl("status")
    assert r.returncode == 0, r
    assert re.search(r"^imapd +off +- ", r.stdout, re.M), r.stdout


def test_check_wants_the_imapd_program(make_herald, tmp_path):
    inst = make_herald(start=False)
    assert inst.ctl("check").returncode == 0, inst.ctl("check")
    # every program but imapd, as links to the built ones
    partial = tmp_path / "daemons"
    partial.mkdir()
    for name in os.listdir(H.HERALD_BIN):
        if name != "imapd":
            os.symlink(os.path.join(H.HERALD_BIN, name), partial / name)
    inst.set_config(daemon_directory=str(partial))
    r = inst.ctl("check")
    assert r.returncode == 1, r
    assert re.search(r"^FAIL programs: .*/imapd: No such file", r.stdout,
                     re.M), r.stdout


def test_fail2ban_filter_matches_imap_failures(make_herald, tmp_path):
    filt = fail2ban_setup(tmp_path)
    inst = make_herald(imap=True, auth_client_lockout="4",
                       auth_failure_delay="0")
    since = inst.log_size()
    caused = 0
    with RawIMAP(inst.imap_port) as c:
        # a success first: it must not match
        assert c.cmd("a", 'LOGIN "alice@example.test" "pw-alice"')[-1] \
            .startswith(b"a OK ")
    with RawIMAP(inst.imap_port) as c:
        for i in range(2):
            r = c.cmd("b%d" % i, 'LOGIN "alice@example.test" "wrong"',
                      timeout=30)
            assert b"NO [AUTHENTICATIONFAILED]" in r[-1], r
            caused += 1
        plain = base64.b64encode(b"\0bob@example.test\0wrong").decode()
        r = c.cmd("c", "AUTHENTICATE PLAIN " + plain, timeout=30)
        assert b"NO [AUTHENTICATIONFAILED]" in r[-1], r
        caused += 1
    with RawIMAP(inst.imap_port) as c:
        # the fourth failure locks the address; the next try is "locked"
        r = c.cmd("d", 'LOGIN "nobody@example.test" "wrong"', timeout=30)
        assert b"NO [AUTHENTICATIONFAILED]" in r[-1], r
        caused += 1
        r = c.cmd("e", 'LOGIN "alice@example.test" "pw-alice"', timeout=30)
        assert b"Too many failed logins" in r[-1], r
        caused += 1

    def lines():
        got = syslog_lines(inst, since)
        return len(got) == caused + 1 and got
    got = H.wait_for(lines, 20, what="authd's %d lines" % (caused + 1))
    assert all("service=imap " in ln for ln in got), got
    assert fail2ban_ips(tmp_path, filt, got, "imap.log") == \
        ["127.0.0.1"] * caused


def test_jail_closes_the_imap_ports():
    jail = configparser.ConfigParser(interpolation=None)
    jail.read(H.REPO / "etc" / "fail2ban" / "jail.d" / "herald.conf")
    ports = [p.strip() for p in jail["herald"]["port"].split(",")]
    # the names /etc/services gives 143 and 993, as fail2ban's own jails
    assert {"pop3", "pop3s", "imap", "imaps"} <= set(ports), ports

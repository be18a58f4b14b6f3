"""
imapd as an admin runs it, around the protocol (test_imap_core.py speaks
it): `heraldctl status` lists the imapd workers when imap_listen is set
and says "off" when it is empty; `heraldctl check` fails when the imapd
program is missing from daemon_directory.
"""
import os
import re

import herald as H


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

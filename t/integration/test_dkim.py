"""
test_dkim - DKIM keys, signatures and DNS records (heraldctl dkim,
heraldctl domain dns, lib/mail/dkim.c).

- dkim keygen makes an Ed25519 and an RSA key per selector, mode 0640 in
  0750 folders; show prints the records; rotate adds a selector that
  signs, remove refuses the one that signs;
- a message signed by `heraldctl dkim sign` verifies with herald's own
  verifier (`dkim verify`) against the keys knotd serves (DNSSEC-signed
  zone), and stops verifying when the body or a signed field changes;
- Debian's opendkim-testmsg (another implementation) verifies each of
  herald's two signatures against the same records (root: it asks the
  system resolver, so knotd listens on port 53 of a loopback address and
  opendkim runs in a mount namespace with its own resolv.conf);
- domain dns --check compares every record with what DNS says;
- the boundary: as root, a process with the uid and groups of a running
  smtpd, imapd or pop3d cannot read the private keys, while one in
  dkim_group can.
"""
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import dnsserver as D
import herald as H

ROOT = os.geteuid() == 0
DOMAIN = D.ZONE		# herald.test: knotd serves it
SELECTOR = "t1"

MSG = ("From: Ann <ann@herald.test>\n"
       "To: bob@example.org\n"
       "Subject: DKIM test\n"
       "Date: Sun, 6 Dec 2026 10:00:00 +0000\n"
       "Message-ID: <dkim-1@herald.test>\n"
       "\n"
       "Hello  Bob,\n"
       "\n"
       "lunch at noon?\n")


def ctl(conf, *args, input="", json_out=False):
    argv = [str(H.binpath("heraldctl")), "-c", str(conf)]
    if json_out:
        argv.append("--json")
    return subprocess.run(argv + [str(a) for a in args], input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def ctl_ok(conf, *args, **kw):
    r = ctl(conf, *args, **kw)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module")
def setup():
    if not D.have_tools():
        pytest.skip("knot, ldnsutils or python3-dnslib not installed "
                    "(scripts/deps.sh)")
    # a world-traversable folder, so that the boundary test's users
    # reach the key folder and only its own mode stops them
    folder = Path(tempfile.mkdtemp(prefix="herald-dkim-", dir="/tmp"))
    os.chmod(folder, 0o755)
    knot = None
    try:
        conf = folder / "herald.conf"
        base = ("data_directory = data\nrun_directory = run\n"
                "spool_directory = spool\ndkim_directory = dkim\n"
                "myhostname = mx1.herald.test\n")
        conf.write_text(base)
        ctl_ok(conf, "domain", "add", DOMAIN)
        ctl_ok(conf, "domain", "add", "example.test")
        r = ctl_ok(conf, "dkim", "keygen", DOMAIN, "--selector", SELECTOR)
        zone = "".join(line + "\n" for line in r.stdout.splitlines()
                       if line and not line.startswith(";"))
        zone += ('_dmarc.%s. IN TXT "v=DMARC1; p=quarantine; '
                 'rua=mailto:postmaster@%s"\n' % (DOMAIN, DOMAIN))
        # as root knotd listens on port 53 of an address of its own,
        # which opendkim's resolver can be pointed at
        addr = "127.0.53.%d" % (os.getpid() % 200 + 20)
        knot = D.KnotZones(folder, extra=zone,
                           address=addr if ROOT else "127.0.0.1",
                           port=53 if ROOT else None)
        knot.start()
        conf.write_text(base + (
            "dns_forwarders = %s@%d\n"
            "dns_stub_zones = herald.test=%s@%d\n"
            "dns_trust_anchor_file = %s\n"
            "dns_timeout = 3s\n" % (knot.address, knot.port, knot.address,
                                    knot.port, knot.anchor_file)))
        yield {"conf": conf, "folder": folder, "knot": knot}
    finally:
        if knot is not None:
            knot.stop()
        shutil.rmtree(folder, ignore_errors=True)


def signed(setup, msg=MSG):
    return ctl_ok(setup["conf"], "dkim", "sign", DOMAIN, input=msg).stdout


def fields_and_rest(text):
    """The DKIM-Signature fields (with continuation lines) and the rest."""
    lines = text.splitlines(keepends=True)
    sigs, rest, cur = [], [], None
    for i, line in enumerate(lines):
        if line.startswith("DKIM-Signature:"):
            cur = [line]
            sigs.append(cur)
        elif cur is not None and line[:1] in (" ", "\t"):
            cur.append(line)
        else:
            rest = lines[i:]
            break
    return ["".join(s) for s in sigs], "".join(rest)


def test_keygen_files_and_modes(setup):
    d = setup["folder"] / "dkim"
    dom = d / DOMAIN
    assert (dom / "current").read_text() == SELECTOR + "\n"
    for p in (d, dom):
        assert p.stat().st_mode & 0o777 == 0o750, oct(p.stat().st_mode)
    for alg in ("ed25519", "rsa"):
        st = (dom / ("%s.%s.key" % (SELECTOR, alg))).stat()
        assert st.st_mode & 0o777 == 0o640, oct(st.st_mode)
        if ROOT:
            assert st.st_uid == 0
    # again: refused, nothing changed; a domain that is not hosted: refused
    r = ctl(setup["conf"], "dkim", "keygen", DOMAIN)
    assert r.returncode == 1 and "rotate" in r.stderr, r.stderr
    r = ctl(setup["conf"], "dkim", "keygen", "nothosted.test")
    assert r.returncode == 1 and "not a hosted domain" in r.stderr
    r = ctl(setup["conf"], "dkim", "keygen", "example.test", "--selector",
            "Bad_Sel")
    assert r.returncode == 1 and "bad selector" in r.stderr


def test_check_reports_keys(setup):
    def dkim_line(conf):
        r = ctl(conf, "check")
        lines = [x for x in r.stdout.splitlines() if " dkim: " in x]
        assert len(lines) == 1, r.stdout
        return lines[0]
    conf = setup["conf"]
    assert re.match(r"ok dkim: \S+/dkim: \d+ domains?, \d+ keys$",
                    dkim_line(conf)), dkim_line(conf)
    key = setup["folder"] / "dkim" / DOMAIN / ("%s.rsa.key" % SELECTOR)
    os.chmod(key, 0o644)
    try:
        line = dkim_line(conf)
        assert line.startswith("FAIL dkim: ") and "mode 0644" in line, line
    finally:
        os.chmod(key, 0o640)
    if ROOT:
        # a service user in dkim_group could read every key
        other = setup["folder"] / "check.conf"
        other.write_text(conf.read_text() +
                         "herald_user = daemon\ndkim_group = daemon\n")
        line = dkim_line(other)
        assert line == "FAIL dkim: daemon is in dkim_group daemon: it " \
            "could read the keys", line
        # the signer sharing smtpd's user would share its processes
        other.write_text(conf.read_text() +
                         "herald_user = daemon\ndkim_user = daemon\n")
        line = dkim_line(other)
        assert line == "FAIL dkim: dkim_user daemon is also a network " \
            "service's user: give the signer a user of its own", line


def test_show_records(setup):
    r = ctl_ok(setup["conf"], "dkim", "show", DOMAIN, json_out=True)
    recs = json.loads(r.stdout)
    names = [x["name"] for x in recs]
    assert names == ["t1-ed25519._domainkey.herald.test",
                     "t1-rsa._domainkey.herald.test"], names
    assert recs[0]["value"].startswith("v=DKIM1; k=ed25519; p=")
    assert recs[1]["value"].startswith("v=DKIM1; k=rsa; p=MII")
    # zone-file text: the RSA record split into strings of <= 255 bytes
    text = ctl_ok(setup["conf"], "dkim", "show", DOMAIN).stdout
    rsa = [x for x in text.splitlines() if x.startswith("t1-rsa.")][0]
    parts = rsa.split('"')[1::2]
    assert len(parts) > 1 and all(len(p) <= 255 for p in parts)
    assert "".join(parts) == recs[1]["value"]


def test_sign_and_verify_with_herald(setup):
    out = signed(setup)
    sigs, rest = fields_and_rest(out)
    assert rest == MSG
    assert len(sigs) == 2
    assert "a=ed25519-sha256" in sigs[0] and "s=t1-ed25519" in sigs[0]
    assert "a=rsa-sha256" in sigs[1] and "s=t1-rsa" in sigs[1]
    for s in sigs:
        assert "c=relaxed/relaxed" in s and "d=herald.test" in s
        assert "h=from:from:subject:date:to:message-id" in s.replace(
            "\n ", "")
        assert all(len(line) <= 78 for line in s.splitlines())
    r = ctl(setup["conf"], "dkim", "verify", input=out, json_out=True)
    res = json.loads(r.stdout)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [x["result"] for x in res] == ["pass", "pass"], res
    # a changed body, a changed signed field, an added From: all fail
    for bad in (out + "P.S.\n", out.replace("DKIM test", "DKIM best"),
                out.replace("From: Ann", "From: Eve <e@evil.test>\nFrom: "
                            "Ann")):
        r = ctl(setup["conf"], "dkim", "verify", input=bad,
                json_out=True)
        assert r.returncode == 1, r.stdout
        assert [x["result"] for x in json.loads(r.stdout)] == \
            ["fail", "fail"], r.stdout


def opendkim_verify(folder, knot, text):
    """opendkim-testmsg on text, asking knot through its own
    resolv.conf (a private mount namespace); CompletedProcess."""
    resolv = folder / "resolv.conf"
    resolv.write_text("nameserver %s\n" % knot.address)
    code = ("import os, subprocess, sys\n"
            "subprocess.run(['mount', '--bind', sys.argv[1], "
            "'/etc/resolv.conf'], check=True)\n"
            "os.execvp('opendkim-testmsg', ['opendkim-testmsg'])\n")
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable,
         "-c", code, str(resolv)], input=text, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=30)


@pytest.mark.skipif(not ROOT or not shutil.which("opendkim-testmsg") or
                    not shutil.which("unshare"),
                    reason="needs root, unshare and opendkim-testmsg "
                    "(opendkim-tools, scripts/deps.sh)")
def test_opendkim_verifies_each_signature(setup):
    out = signed(setup)
    sigs, rest = fields_and_rest(out)
    for s in sigs:
        r = opendkim_verify(setup["folder"], setup["knot"], s + rest)
        assert r.returncode == 0 and r.stdout == "", (s, r.stdout)
        # and it is really checking: a changed signed field fails
        r = opendkim_verify(setup["folder"], setup["knot"],
                            s + rest.replace("DKIM test", "DKIM best"))
        assert r.returncode != 0, (s, r.stdout)


# folded fields, tabs and runs of spaces, trailing whitespace and empty
# lines at the end, CRLF line ends: canonicalisation must agree with
# opendkim's to the byte (which refuses a second Cc, as RFC 5322 does)
HARD = ("Received: from a by b; Sun, 6 Dec 2026 10:00:00 +0000\r\n"
        "Received: from c by d; Sun, 6 Dec 2026 09:59:00 +0000\r\n"
        "From:   \"Ann  Example\" \t<ann@herald.test>  \r\n"
        "To: bob@example.org,\r\n"
        "\tcarol@example.org ,\r\n"
        "    dave@example.org\r\n"
        "Cc: eve@example.org\r\n"
        "subject:   Folded\r\n  subject   line \r\n"
        "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain;\r\n charset=\"utf-8\"\r\n"
        "X-Unsigned: yes\r\n"
        "\r\n"
        "  leading spaces\tand\t\ttabs   \r\n"
        "\r\n"
        "line after an empty one\r\n"
        "\t \r\n"
        "\r\n\r\n")


@pytest.mark.skipif(not ROOT or not shutil.which("opendkim-testmsg") or
                    not shutil.which("unshare"),
                    reason="needs root, unshare and opendkim-testmsg "
                    "(opendkim-tools, scripts/deps.sh)")
def test_opendkim_agrees_on_canonicalisation(setup):
    r = subprocess.run([str(H.binpath("heraldctl")), "-c",
                        str(setup["conf"]), "dkim", "sign", DOMAIN],
                       input=HARD.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.endswith(HARD) and "\r\n" in out.split("\r\nFrom:")[0]
    sigs, rest = fields_and_rest(out)
    assert len(sigs) == 2
    assert "h=from:from:subject:date:to:cc:mime-version:content-type;" \
        in sigs[0].replace("\r\n ", ""), sigs[0]
    for s in sigs:
        # opendkim-testmsg reads LF lines (CRLF is a syntax error to it)
        r = opendkim_verify(setup["folder"], setup["knot"],
                            (s + rest).replace("\r\n", "\n"))
        assert r.returncode == 0 and r.stdout == "", (s, r.stdout)
    r = ctl(setup["conf"], "dkim", "verify", input=out)
    assert r.returncode == 0 and r.stdout.count(": pass") == 2, r.stdout


def test_domain_dns_check(setup):
    r = ctl_ok(setup["conf"], "domain", "dns", DOMAIN)
    text = r.stdout
    assert "herald.test. IN MX 10 mx1.herald.test." in text
    assert 'herald.test. IN TXT "v=spf1 mx -all"' in text
    assert "t1-ed25519._domainkey.herald.test. IN TXT" in text
    assert ('_dmarc.herald.test. IN TXT "v=DMARC1; p=quarantine; '
            'rua=mailto:postmaster@herald.test"') in text
    r = ctl(setup["conf"], "domain", "dns", DOMAIN, "--check",
            json_out=True)
    checks = {x["record"] + " " + x["name"]: x["check"]
              for x in json.loads(r.stdout)}
    # the zone's SPF record is "v=spf1 -all": the one that differs
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert checks["MX herald.test"].startswith("ok"), checks
    assert checks["SPF herald.test"].startswith("differs"), checks
    assert '"v=spf1 -all"' in checks["SPF herald.test"]
    assert checks["DKIM t1-ed25519._domainkey.herald.test"] == \
        "ok, DNSSEC", checks
    assert checks["DKIM t1-rsa._domainkey.herald.test"] == "ok, DNSSEC"
    assert checks["DMARC _dmarc.herald.test"] == "ok, DNSSEC", checks


def test_rotate_and_remove(setup):
    conf = setup["conf"]
    ctl_ok(conf, "dkim", "keygen", "example.test", "--selector", "old")
    r = ctl_ok(conf, "dkim", "rotate", "example.test", "--selector", "new")
    assert "signs with selector new" in r.stdout
    assert "heraldctl dkim remove example.test old" in r.stdout
    recs = json.loads(ctl_ok(conf, "dkim", "show", "example.test",
                             json_out=True).stdout)
    assert [x["name"].split(".")[0] for x in recs] == \
        ["new-ed25519", "new-rsa", "old-ed25519", "old-rsa"]
    out = ctl_ok(conf, "dkim", "sign", "example.test", input=MSG).stdout
    assert "s=new-ed25519" in out and "s=new-rsa" in out
    r = ctl(conf, "dkim", "remove", "example.test", "new")
    assert r.returncode == 1 and "signs" in r.stderr
    r = ctl(conf, "dkim", "rotate", "example.test", "--selector", "old")
    assert r.returncode == 1 and "exists already" in r.stderr
    ctl_ok(conf, "dkim", "remove", "example.test", "old")
    keys = sorted(p.name for p in (setup["folder"] / "dkim" /
                                   "example.test").iterdir())
    assert keys == ["current", "new.ed25519.key", "new.rsa.key"], keys
    # without --selector: herald + yyyymm, then a letter
    r1 = ctl_ok(conf, "dkim", "rotate", "example.test").stdout
    r2 = ctl_ok(conf, "dkim", "rotate", "example.test").stdout
    cur = (setup["folder"] / "dkim" / "example.test" /
           "current").read_text().strip()
    assert len(cur) == 13 and cur.startswith("herald") and \
        cur.endswith("b"), (cur, r1, r2)


def test_selector_limit(tmp_path):
    """More selectors than heraldctl lists (64) are refused with a reason,
    not listed in part, and domain dns still prints the other records
    (65 used to write past the end of its table of records)."""
    conf = tmp_path / "herald.conf"
    conf.write_text("data_directory = data\nrun_directory = run\n"
                    "spool_directory = spool\ndkim_directory = dkim\n"
                    "myhostname = mx1.many.test\n")
    ctl_ok(conf, "domain", "add", "many.test")
    ctl_ok(conf, "dkim", "keygen", "many.test", "--selector", "s0")
    dom = tmp_path / "dkim" / "many.test"
    for i in range(1, 64):
        for alg in ("ed25519", "rsa"):
            shutil.copy(dom / ("s0.%s.key" % alg),
                        dom / ("s%d.%s.key" % (i, alg)))
    recs = json.loads(ctl_ok(conf, "dkim", "show", "many.test",
                             json_out=True).stdout)
    assert len(recs) == 128, len(recs)
    assert len(json.loads(ctl_ok(conf, "domain", "dns", "many.test",
                                 json_out=True).stdout)) == 131
    # at the limit rotate refuses before it makes or switches anything
    before = sorted(p.name for p in dom.iterdir())
    r = ctl(conf, "dkim", "rotate", "many.test", "--selector", "s99")
    assert r.returncode == 1 and "64 selectors" in r.stderr, r.stderr
    assert sorted(p.name for p in dom.iterdir()) == before
    assert (dom / "current").read_text() == "s0\n"
    for alg in ("ed25519", "rsa"):
        shutil.copy(dom / ("s0.%s.key" % alg), dom / ("s64.%s.key" % alg))
    r = ctl(conf, "dkim", "show", "many.test")
    assert r.returncode == 1 and "more than 64 selectors" in r.stderr, \
        (r.returncode, r.stderr)
    r = ctl(conf, "domain", "dns", "many.test", json_out=True)
    assert r.returncode == 0 and "more than 64 selectors" in r.stderr, \
        (r.returncode, r.stderr)
    assert [x["record"] for x in json.loads(r.stdout)] == \
        ["MX", "SPF", "DMARC"], r.stdout


# -- the boundary: internet-facing services cannot read the keys


def pick_group(exclude_gids, exclude_names):
    for name in ("src", "staff", "users", "adm", "mail", "games"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in exclude_gids and not set(g.gr_mem) & \
                exclude_names:
            return g
    pytest.skip("no spare group for dkim_group")


@pytest.mark.skipif(not ROOT, reason="privilege separation needs root")
def test_network_services_cannot_read_keys(pki):
    users = {}
    for role, name in (("herald", "daemon"), ("vmail", "nobody"),
                       ("auth", "bin")):
        try:
            users[role] = pwd.getpwnam(name)
        except KeyError:
            pytest.skip("account %s does not exist" % name)
    primary = {u.pw_gid for u in users.values()}
    names = {u.pw_name for u in users.values()}
    dirgroup = pick_group(primary, names)
    dkimgroup = pick_group(primary | {dirgroup.gr_gid}, names)
    folder = Path(tempfile.mkdtemp(prefix="herald-dkim-ps-", dir="/tmp"))
    os.chmod(folder, 0o755)
    inst = H.HeraldInstance(folder / "inst", pki=pki, imap=True,
                            herald_user="daemon", vmail_user="nobody",
                            auth_user="bin",
                            directory_group=dirgroup.gr_name,
                            dkim_directory="dkim",
                            dkim_group=dkimgroup.gr_name)
    try:
        inst.add_domain("example.test")
        inst.ctl_ok("dkim", "keygen", "example.test", "--selector", "s1")
        key = inst.dir / "dkim" / "example.test" / "s1.ed25519.key"
        st = key.stat()
        assert (st.st_uid, st.st_gid) == (0, dkimgroup.gr_gid)
        inst.start()
        checked = 0
        for name in ("smtpd", "imapd", "pop3d"):
            pids = H.wait_for(lambda: inst.children(name), 15,
                              what="%s running" % name)
            # master forks as root and the child drops root as it
            # starts (slowly under ASan): look once it has
            H.wait_for(lambda: all(H.proc_creds(p)[0] != 0 for p in pids),
                       15, what="%s without root" % name)
            for pid in pids:
                uid, gid, groups = H.proc_creds(pid)
                assert uid != 0, (name, uid)
                for k in ("s1.ed25519.key", "s1.rsa.key"):
                    p = key.parent / k
                    assert not H.can_read_as(p, uid, gid, groups), \
                        "%s (pid %d) can read %s" % (name, pid, p)
                checked += 1
                # the same uid in dkim_group can: only the mode stops it
                assert H.can_read_as(key, uid, gid, groups +
                                   [dkimgroup.gr_gid])
        assert checked >= 3
    finally:
        try:
            inst.stop()
            assert not inst.our_pids()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

"""
The man pages stay in step with the programs: herald.conf(5) has an
entry for every key of the settings table, heraldctl(8) describes every
command that `heraldctl --help` lists, every default herald.conf(5)
documents is the one `heraldctl config` prints for an empty file, no page
names the long-gone maildrop/ spool folder, and mandoc finds no warning in
any page. The pages are the ones the build made (<build>/manpages).
"""
import os
import re
import shutil
import subprocess

import pytest

import herald as H

BUILD = os.path.dirname(str(H.HERALD_BIN))
PAGES = os.path.join(BUILD, "manpages")


def page(name):
    path = os.path.join(PAGES, name)
    if not os.path.exists(path):
        pytest.fail("%s was not built (looked in %s)" % (name, PAGES))
    with open(path) as f:
        return f.read()


def test_conf_page_has_every_key():
    text = page("herald.conf.5")
    keys = re.findall(r"^\.It Cm (\S+) Pq Vt \w+$", text, re.M)
    r = subprocess.run([os.path.join(BUILD, "man-tools", "mkconfman"),
                        "--count"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(keys) == int(r.stdout) and len(set(keys)) == len(keys)
    # and the keys are the ones heraldctl config prints
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", "/dev/null",
                        "config"], capture_output=True, text=True)
    printed = set(re.findall(r"^(\w+) =", r.stdout, re.M))
    assert printed and printed == set(keys), printed ^ set(keys)


def test_heraldctl_page_has_every_command():
    text = page("heraldctl.8")
    r = subprocess.run([str(H.binpath("heraldctl")), "--help"],
                       capture_output=True, text=True)
    commands = re.findall(r"^  ([a-z]+(?: [a-z]+)?)\b", r.stdout, re.M)
    assert len(commands) > 20, r.stdout
    for cmd in commands:
        words = cmd.split()
        macro = ".It Cm " + " ".join(words)
        if words[0] in ("start", "stop", "reload", "status", "check",
                        "config"):
            macro = ".It Cm " + words[0]
        assert macro in text, "heraldctl.8 lacks %r" % cmd


def test_mandoc_lint():
    if shutil.which("mandoc") is None:
        print("skipped: mandoc is not installed")
        pytest.skip("mandoc is not installed")
    names = sorted(os.listdir(PAGES))
    assert {"herald.8", "heraldctl.8", "herald.conf.5"} <= set(names)
    for name in names:
        r = subprocess.run(["mandoc", "-Tlint", "-Wwarning",
                            os.path.join(PAGES, name)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def documented_defaults(text):
    """key -> the default herald.conf(5) gives it, unescaped"""
    out = {}
    blocks = re.split(r"^\.It Cm (\S+) Pq Vt \w+\n", text, flags=re.M)
    for key, body in zip(blocks[1::2], blocks[2::2]):
        m = re.search(r"^Default: empty\.$|^Default:\n\.Ql (.*)$", body,
                      re.M)
        assert m, "herald.conf.5: %s has no default" % key
        value = m.group(1) or ""
        if value.startswith("\\&"):
            value = value[2:]
        out[key] = value.replace("\\e", "\\")
    return out


def test_conf_page_defaults_are_effective(tmp_path):
    text = page("herald.conf.5")
    documented = documented_defaults(text)
    empty = tmp_path / "herald.conf"
    empty.write_text("")
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", str(empty),
                        "config"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    printed = dict(re.findall(r"^(\w+) = ?(.*)$", r.stdout, re.M))
    assert printed and set(printed) == set(documented), \
        set(printed) ^ set(documented)
    wrong = {k: (documented[k], printed[k]) for k in printed
             if documented[k] != printed[k]}
    assert wrong == {}, "page default vs heraldctl config: %r" % wrong


def test_no_page_mentions_maildrop_folder():
    # the spool has no maildrop/ since sendmail submits through smtpd
    # (pop3d's "maildrop", a user's mailbox, is another thing)
    names = sorted(os.listdir(PAGES))
    assert names
    for name in names:
        text = page(name)
        bad = [line for line in text.splitlines()
               if re.search(r"maildrop(?:/|,|\))", line) or
               re.search(r"\(maildrop\b", line)]
        assert bad == [], "%s mentions maildrop/: %r" % (name, bad)


def test_imapd_page_names_its_settings():
    # imapd(8) names every imapd setting herald.conf(5) describes, the
    # index folder and the fail2ban line; herald(8) points to it
    text = page("imapd.8")
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", "/dev/null",
                        "config"], capture_output=True, text=True)
    keys = re.findall(r"^(imaps?_listen|imapd_\w+) =", r.stdout, re.M)
    assert len(keys) >= 10, r.stdout
    named = set(re.findall(r"\bCm (\w+)", text))
    assert set(keys) <= named, set(keys) - named
    assert "herald-index/" in text and "service=imap" in text
    assert "auth_plaintext" in named and "LOGINDISABLED" in text
    assert ".Xr imapd 8" in page("herald.8")


def test_smtpd_page_names_its_settings():
    # smtpd(8) names every smtpd and submission setting herald.conf(5)
    # describes and the fail2ban line; herald(8) points to it
    text = page("smtpd.8")
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", "/dev/null",
                        "config"], capture_output=True, text=True)
    keys = re.findall(r"^(submissions?_\w+|smtpd_(?:listen|sender_login|"
                      r"\w+_limit|\w+_timeout)|mynetworks) =", r.stdout, re.M)
    assert len(keys) >= 15, r.stdout
    named = set(re.findall(r"\bCm (\w+)", text))
    assert set(keys) <= named, set(keys) - named
    assert "service=smtp" in text and "530 5.7.0" in text
    assert ".Xr smtpd 8" in page("herald.8")


def test_signer_page_names_its_settings():
    # signer(8) names every DKIM and signer setting herald.conf(5)
    # describes and what smtpd answers without it; herald(8) and smtpd(8)
    # point to it
    text = page("signer.8")
    r = subprocess.run([str(H.binpath("heraldctl")), "-c", "/dev/null",
                        "config"], capture_output=True, text=True)
    keys = re.findall(r"^(dkim_\w+|signer_\w+) =", r.stdout, re.M)
    assert len(keys) >= 5, r.stdout
    named = set(re.findall(r"\bCm (\w+)", text))
    assert set(keys) <= named, set(keys) - named
    assert "451 4.3.0" in text and "herald-dkim" in text
    assert ".Xr signer 8" in page("herald.8")
    assert ".Xr signer 8" in page("smtpd.8")

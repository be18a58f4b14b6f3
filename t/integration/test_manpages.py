"""
The man pages stay in step with the programs: herald.conf(5) has an
entry for every key of the settings table, heraldctl(8) describes every
command that `heraldctl --help` lists, and mandoc finds no warning in
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

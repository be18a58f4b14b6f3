"""
heraldctl user import: accounts from a Dovecot passwd-file keep their
SHA512-CRYPT and bcrypt hashes and log in through authd; a file with a bad
line imports nothing; --update and nologin.
"""
import json
import subprocess
import warnings

import pytest

import herald as H

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt
    except ImportError:	# Python 3.13 dropped it
        crypt = None


def sha512_crypt(password):
    """A $6$ hash made by another program than herald: openssl."""
    return subprocess.run(["openssl", "passwd", "-6", password],
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def bcrypt(password):
    if crypt is None:
        pytest.skip("Python has no crypt module to make a bcrypt hash")
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


@pytest.fixture
def inst(make_herald):
    i = make_herald(start=False, standard=False)
    i.add_domain("example.test")
    i.add_domain("other.test")
    return i.start()


def write(tmp_path, text):
    f = tmp_path / "passwd"
    f.write_text(text)
    return f


def test_import_dovecot_hashes_log_in(inst, tmp_path):
    six, blf = sha512_crypt("six-pw"), bcrypt("blf-pw")
    assert six.startswith("$6$") and blf.startswith("$2b$")
    f = write(tmp_path,
              "# exported from dovecot\n"
              "six@example.test:{SHA512-CRYPT}%s:5000:5000::/home/six::\n"
              "blf@example.test:{BLF-CRYPT}%s:5000:5000::/home/blf::\n"
              "bare:%s\n"
              "plain@other.test:{PLAIN}plain-pw::::::\n"
              "off@example.test:{PLAIN}off-pw::::::nologin\n"
              % (six, blf, six))
    r = inst.ctl_ok("user", "import", str(f), "--domain", "other.test")
    assert "5 users imported" in r.stdout, r.stdout
    listing = inst.ctl("user", "list", json_out=True)
    assert listing.returncode == 0, listing.stderr
    users = {u["address"]: u for u in json.loads(listing.stdout)}
    assert set(users) == {"six@example.test", "blf@example.test",
                          "bare@other.test", "plain@other.test",
                          "off@example.test"}
    assert users["off@example.test"]["enabled"] is False
    for user, pw in [("six@example.test", "six-pw"),
                     ("blf@example.test", "blf-pw"),
                     ("bare@other.test", "six-pw"),
                     ("plain@other.test", "plain-pw")]:
        ok = inst.auth(user, pw, client="192.0.2.10")
        assert ok["status"] == "ok" and ok["user"] == user, (user, ok)
        bad = inst.auth(user, pw + "x", client="192.0.2.11")
        assert bad["status"] == "fail", (user, bad)
    assert inst.auth("off@example.test", "off-pw",
                     client="192.0.2.12")["status"] == "fail"


def test_import_bad_line_imports_nothing(inst, tmp_path):
    f = write(tmp_path,
              "good@example.test:{PLAIN}pw\n"
              "weak@example.test:{MD5-CRYPT}$1$abcdefgh$abcdefghijklmnopqrstuv\n"
              "nodomain:{PLAIN}pw\n"
              "stranger@unhosted.test:{PLAIN}pw\n")
    r = inst.ctl("user", "import", str(f))
    assert r.returncode == 1
    assert "passwd:2:" in r.stderr and "MD5-CRYPT" in r.stderr, r.stderr
    assert "passwd:3:" in r.stderr and "--domain" in r.stderr, r.stderr
    assert "nothing imported" in r.stderr
    assert "good@example.test" not in inst.ctl_ok("user", "list").stdout
    # the unhosted domain is caught before anything is written
    f = write(tmp_path, "good@example.test:{PLAIN}pw\n"
                        "stranger@unhosted.test:{PLAIN}pw\n")
    r = inst.ctl("user", "import", str(f))
    assert r.returncode == 1 and "unhosted.test is not hosted" in r.stderr
    assert "good@example.test" not in inst.ctl_ok("user", "list").stdout


def test_import_update_and_stdin(inst, tmp_path):
    inst.add_user("keep@example.test", "old-pw")
    text = "keep@example.test:{SHA512-CRYPT}%s\n" % sha512_crypt("new-pw")
    r = inst.ctl_ok("user", "import", "-", input=text)
    assert "0 users imported, 0 updated, 1 skipped" in r.stdout, r.stdout
    assert inst.auth("keep@example.test", "old-pw",
                     client="192.0.2.20")["status"] == "ok"
    r = inst.ctl_ok("user", "import", "-", "--update", input=text)
    assert "1 updated" in r.stdout, r.stdout
    assert inst.auth("keep@example.test", "new-pw",
                     client="192.0.2.21")["status"] == "ok"
    assert inst.auth("keep@example.test", "old-pw",
                     client="192.0.2.22")["status"] == "fail"

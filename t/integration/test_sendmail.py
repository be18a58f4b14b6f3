"""
sendmail: local programs hand mail to herald through the submission
socket; smtpd takes it like any other mail, with the uid from the kernel
in the log and in Received:, relays it anywhere, and says why when it
cannot take it, with sendmail's exit codes (sysexits.h).
"""
import os
import subprocess

import pytest

import herald as H

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 64, 65, 67, 75


def sendmail(inst, args, data, timeout=60):
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run([str(H.binpath("sendmail")), "-C", str(inst.conf)]
                          + list(args), input=data, capture_output=True,
                          timeout=timeout)


def test_recipient_arguments(herald, token):
    r = sendmail(herald, ["alice@example.test"],
                 "Subject: test %s\n\nhello\n" % token)
    assert r.returncode == 0, r
    got = herald.wait_messages(token, "alice")[0]
    uid = os.getuid()
    assert b"Received: from local (uid %d)\r\n" % uid in got or \
        b"Received: from local (uid %d)\n" % uid in got, got[:400]
    assert b"\nFrom: " in got and b"\nDate: " in got and \
        b"\nMessage-ID: <" in got, got[:600]
    herald.wait_log(r"client=local, uid=%d" % uid)


def test_header_recipients_bcc_sender_and_dots(herald, token):
    msg = ("From: Robot <robot@example.org>\n"
           "To: Alice <alice@example.test>\n"
           "Bcc: bob@example.test\n"
           "Subject: test %s\n"
           "\n"
           "first\n"
           ".\n"
           "..two dots\n"
           "last\n" % token)
    r = sendmail(herald, ["-t", "-i", "-f", "bounces@example.org"], msg)
    assert r.returncode == 0, r
    for user in ("alice", "bob"):
        got = herald.wait_messages(token, user)[0].replace(b"\r\n", b"\n")
        assert got.startswith(b"Return-Path: <bounces@example.org>\n"), got
        header = got.split(b"\n\n")[0]
        assert b"Bcc:" not in header, header
        assert got.endswith(b"\nfirst\n.\n..two dots\nlast\n"), got


def test_dot_line_ends_input(herald, token):
    r = sendmail(herald, ["alice@example.test"],
                 "Subject: test %s\n\nkept\n.\nnot sent\n" % token)
    assert r.returncode == 0, r
    got = herald.wait_messages(token, "alice")[0]
    assert b"kept" in got and b"not sent" not in got


def test_unknown_recipient_and_remote_domains(herald, token):
    r = sendmail(herald, ["nosuchuser@example.test"],
                 "Subject: test %s\n\nx\n" % token)
    assert r.returncode == EX_NOUSER, r
    assert b"5.1.1" in r.stderr, r.stderr
    # local users may send to other domains: queued, not refused
    since = herald.log_size()
    r = sendmail(herald, ["someone@elsewhere.example"],
                 "Subject: test %s\n\nx\n" % token)
    assert r.returncode == 0, r
    herald.wait_log(r"from=<[^>]+>, size=\d+, nrcpt=1", since=since)


def test_usage_and_refused_modes(herald):
    r = sendmail(herald, [], "x\n")
    assert r.returncode == EX_USAGE and b"no recipients" in r.stderr, r
    r = sendmail(herald, ["-bp"], "")
    assert r.returncode == EX_USAGE and b"heraldctl queue list" in r.stderr
    r = sendmail(herald, ["-t"], "Subject: nobody\n\nx\n")
    assert r.returncode == EX_USAGE, r


def test_too_large(make_herald, token):
    inst = make_herald(message_size_limit="10k")
    r = sendmail(inst, ["alice@example.test"],
                 "Subject: test %s\n\n%s" % (token, "x" * 70 + "\n") * 200)
    assert r.returncode == EX_DATAERR, r
    assert b"larger than" in r.stderr
    assert not inst.queue_files()


def test_not_running(make_herald, token):
    inst = make_herald()
    inst.stop()
    r = sendmail(inst, ["alice@example.test"], "Subject: x\n\nx\n")
    assert r.returncode == EX_TEMPFAIL, r
    assert b"herald is not running" in r.stderr, r.stderr

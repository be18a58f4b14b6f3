"""
sendmail: local programs hand mail to herald through the submission
socket; smtpd takes it like any other mail, with the uid from the kernel
in the log and in Received:, relays it anywhere, and says why when it
cannot take it, with sendmail's exit codes (sysexits.h).
"""
import os
import re
import subprocess
import time

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
    for mode in ("-bd", "-bD", "-bh", "-bt", "-q30m", "-qRexample.test"):
        r = sendmail(herald, [mode], "")
        assert r.returncode == EX_USAGE and b"sendmail: " in r.stderr, \
            (mode, r)
    r = sendmail(herald, ["-bv"], "")
    assert r.returncode == EX_USAGE and b"no addresses" in r.stderr, r
    r = sendmail(herald, ["-bp", "alice@example.test"], "")
    assert r.returncode == EX_USAGE, r
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


def _queued_with(inst, text):
    """Queue files (any folder) that hold text."""
    out = []
    for p in inst.queue_files():
        try:
            if text.encode() in p.read_bytes():
                out.append(p)
        except FileNotFoundError:
            pass
    return out


def _assert_not_forged(inst, token, user="alice"):
    """No message with "forged <token>" is queued or delivered. The queue
    first: its file goes only once the message is in the Maildir."""
    assert not _queued_with(inst, "forged " + token)
    q = inst.ctl("queue", "list")
    assert q.returncode == 0, q
    assert "ceo@example.test" not in q.stdout, q.stdout
    assert not inst.messages_with("forged " + token, user)


def _injection(token, first, eol="\r\n"):
    """Text that, written unchecked after MAIL FROM:< or RCPT TO:<, ends
    that command and appends a whole forged transaction from the CEO."""
    return ("%s>\nRSET\nMAIL FROM:<ceo@example.test>\n"
            "RCPT TO:<alice@example.test>\nDATA\n"
            "From: ceo@example.test\nSubject: forged %s\n\n"
            "wire the money\n.\nRSET\nMAIL FROM:<x@example.test"
            % (first, token)).replace("\n", eol)


@pytest.mark.parametrize("how", ["-f", "-f-lf", "-r", "-fattached",
                                 "recipient", "recipient-lf"])
def test_command_injection_in_arguments(herald, token, how):
    """SMTP commands smuggled into -f/-r or a recipient argument never
    reach smtpd: sendmail refuses the address (EX_USAGE) and sends
    nothing; no forged message is queued or delivered."""
    evil = _injection(token, "x@example.test",
                      "\n" if how.endswith("-lf") else "\r\n")
    if how.startswith("-f") and how != "-fattached":
        args = ["-f", evil, "bob@example.test"]
    elif how == "-r":
        args = ["-r", evil, "bob@example.test"]
    elif how == "-fattached":
        args = ["-f" + evil, "bob@example.test"]
    else:
        args = [_injection(token, "bob@example.test",
                           "\n" if how.endswith("-lf") else "\r\n")]
    since = herald.log_size()
    r = sendmail(herald, args, "Subject: carrier %s\n\ncarrier\n" % token)
    # a later, good message is delivered; by then a forged one would be too
    after = "after-" + token
    r2 = sendmail(herald, ["alice@example.test"],
                  "Subject: after %s\n\nafter\n" % after)
    assert r2.returncode == 0, r2
    herald.wait_messages(after, "alice")
    _assert_not_forged(herald, token)
    assert not _queued_with(herald, "carrier " + token)
    assert not herald.messages_with(token, "bob")
    assert not herald.messages_with("carrier " + token, "alice")
    log = herald.log_text(since)
    assert "ceo@example.test" not in log, log
    # refused before anything was sent: smtpd never saw this client
    assert log.count("connect from local (") == 1, log
    assert r.returncode == EX_USAGE, r
    assert b"address" in r.stderr, r.stderr


def test_command_injection_in_header_recipients(herald, token):
    """With -t, a folded To: field cannot carry line ends into RCPT TO:
    the message is refused as bad data (EX_DATAERR) and nothing sent."""
    msg = ("To: <bob@example.test\n RSET\n NOOP>\n"
           "Subject: carrier %s\n\ncarrier\n" % token)
    r = sendmail(herald, ["-t"], msg)
    assert r.returncode == EX_DATAERR, r
    assert b"address" in r.stderr, r.stderr
    after = "after-" + token
    r = sendmail(herald, ["bob@example.test"],
                 "Subject: after %s\n\nafter\n" % after)
    assert r.returncode == 0, r
    herald.wait_messages(after, "bob")
    assert not _queued_with(herald, "carrier " + token)
    assert not herald.messages_with("carrier " + token, "bob")


def test_bad_addresses_refused(herald):
    """Addresses are checked as smtpd checks them, with sysexits codes:
    the command line's are usage errors, the header's (-t) data errors."""
    for args in (["a b@example.test"], ["alice@@example.test"],
                 ["-f", "x@exa mple.test", "alice@example.test"],
                 ["-f", "x\x01@example.test", "alice@example.test"],
                 ["<alice@example.test"]):
        r = sendmail(herald, args, "Subject: x\n\nx\n")
        assert r.returncode == EX_USAGE, (args, r)
        assert b"sendmail: " in r.stderr and b"address" in r.stderr, r
    r = sendmail(herald, ["-t"], "To: alice@example.test, a@@d\n\nx\n")
    assert r.returncode == EX_DATAERR, r


def test_address_forms_accepted(herald, token):
    """<addr>, a bare login name (qualified with myhostname), the null
    sender and a quoted local part all still work."""
    r = sendmail(herald, ["-f", "<>", "<alice@example.test>"],
                 "Subject: null %s\n\nx\n" % token)
    assert r.returncode == 0, r
    got = herald.wait_messages("null " + token, "alice")[0]
    assert got.startswith(b"Return-Path: <>"), got[:200]
    r = sendmail(herald, ["-f", '"john doe"@example.org',
                          "bob@example.test"],
                 "Subject: quoted %s\n\nx\n" % token)
    assert r.returncode == 0, r
    got = herald.wait_messages("quoted " + token, "bob")[0]
    assert got.startswith(b'Return-Path: <"john doe"@example.org>'), got


def test_cron_progress_bar_bare_cr(herald, token):
    """cron mails what a job printed: progress bars with bare CR, and
    bare LF. sendmail makes every line end CRLF, so smtpd (which refuses
    bare CR/LF against smuggling) takes it, and sendmail exits 0."""
    out = (b"Subject: cron %s\n\n" % token.encode() +
           b"download\n10%\r 50%\r100%\ndone\r\nlast\rline")
    r = sendmail(herald, ["-i", "alice@example.test"], out)
    assert r.returncode == 0, r
    got = herald.wait_messages("cron " + token, "alice")[0]
    body = got.split(b"\n\n", 1)[1] if b"\r\n\r\n" not in got \
        else got.split(b"\r\n\r\n", 1)[1]
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    assert lines == [b"download", b"10%", b" 50%", b"100%", b"done",
                     b"last", b"line", b""], body
    assert b"\r" not in body.replace(b"\r\n", b""), body


# ------------------------------------------- the other modes (issue 13)


def program(tmp_path, name):
    """The sendmail binary under another name (as the .deb links it)."""
    link = tmp_path / name
    if not link.exists():
        link.symlink_to(H.binpath("sendmail"))
    return str(link)


def run_as(tmp_path, name, inst, args=(), data=b"", timeout=60):
    return subprocess.run([program(tmp_path, name), "-C", str(inst.conf)]
                          + list(args), input=data, capture_output=True,
                          timeout=timeout)


def test_mailq_bp_and_q_flush(make_herald, tmp_path, token):
    """mailq and sendmail -bp print the queue as "heraldctl queue list"
    does; sendmail -q retries a deferred message at once (the retry
    backoff and the queue scan are an hour here, so only -q explains a
    delivery within seconds)."""
    inst = make_herald(minimal_backoff_time="1h", maximal_backoff_time="1h",
                       queue_scan_interval="1h")
    blocker = inst.maildir("alice")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way\n")
    since = inst.log_size()
    sender = "mq-%s@example.org" % token
    with inst.smtp() as s:
        assert s.sendmail(sender, ["alice@example.test"],
                          H.make_message(token, sender=sender)) == {}
    qid = inst.qid_of_sender(sender, since=since)
    H.wait_for(lambda: any(p.name == qid for p in
                           inst.queue_files(("deferred",))),
               20, what="%s deferred" % qid)
    ctl = inst.ctl("queue", "list")
    assert ctl.returncode == 0 and qid in ctl.stdout, ctl
    for r in (run_as(tmp_path, "mailq", inst),
              sendmail(inst, ["-bp"], b"")):
        assert r.returncode == 0, r
        out = r.stdout.decode()
        assert out == ctl.stdout, (out, ctl.stdout)
        assert out.startswith("QUEUE_ID"), out
        line = [l for l in out.splitlines() if qid in l]
        assert line and "deferred" in line[0] and sender in line[0], out
    blocker.unlink()
    time.sleep(1)
    assert not inst.messages_with(token, "alice")
    r = sendmail(inst, ["-q"], b"")
    assert r.returncode == 0, r
    assert b"scheduled for delivery" in r.stdout, r
    inst.wait_messages(token, "alice", timeout=15)
    inst.stop()
    r = sendmail(inst, ["-q"], b"")
    assert r.returncode == EX_TEMPFAIL, r
    assert b"not running" in r.stderr, r


def test_newaliases_and_bi(herald, tmp_path):
    """newaliases, sendmail -bi and -I explain where aliases live and
    exit 0, even with a configuration they cannot read: packages call
    newaliases after installing an alias and must not fail."""
    for r in (run_as(tmp_path, "newaliases", herald),
              sendmail(herald, ["-bi"], b""),
              sendmail(herald, ["-I"], b""),
              subprocess.run([program(tmp_path, "newaliases"), "-C",
                              "/nonexistent/herald.conf"],
                             capture_output=True, timeout=30)):
        assert r.returncode == 0, r
        out = r.stdout.decode()
        assert out.count("\n") == 1 and "heraldctl alias" in out, out


def test_bv_reports_without_sending(herald, token):
    """sendmail -bv says for each address whether and where herald would
    deliver it, as local resolves it; nothing is sent."""
    since = herald.log_size()
    cases = [
        ("alice@example.test", 0,
         r"alice@example\.test: deliverable to mailbox alice@example\.test"),
        ("Alice+news@Example.TEST", 0,
         r"deliverable to mailbox alice@example\.test$"),
        ("team@example.test", 0,
         r"team@example\.test: deliverable to mailboxes "
         r"(alice@example\.test, bob@example\.test|bob@example\.test, "
         r"alice@example\.test) \(alias team@example\.test\)"),
        ("whoever@catch.test", 0,
         r"deliverable to mailbox carol@example\.test \(alias @catch\.test\)"),
        ("nosuch@example.test", EX_NOUSER,
         r"nosuch@example\.test: undeliverable: 5\.1\.1 "),
        ("x@elsewhere.example", EX_NOUSER,
         r"x@elsewhere\.example: undeliverable: elsewhere\.example is not "
         r"hosted here"),
        ("bad address@x", EX_NOUSER, r"bad address@x: undeliverable: "),
    ]
    for addr, code, pattern in cases:
        r = sendmail(herald, ["-bv", addr], b"")
        out = r.stdout.decode()
        assert r.returncode == code, (addr, r)
        assert len(out.splitlines()) == 1, out
        assert re.search(pattern, out, re.M), (addr, out)
    r = sendmail(herald, ["-bv", "alice@example.test", "nosuch@example.test",
                          "bob@example.test"], b"")
    assert r.returncode == EX_NOUSER, r
    assert len(r.stdout.decode().splitlines()) == 3, r
    log = herald.log_text(since)
    assert "connect from local" not in log and "from=<" not in log, log


def smtp_reply(f):
    """One SMTP reply from file f: (code, text)."""
    lines = []
    while True:
        line = f.readline().decode()
        assert line.endswith("\r\n"), (lines, line)
        lines.append(line)
        if line[3:4] != "-":
            return int(line[:3]), "".join(lines)


def test_bs_smtp_on_stdin_stdout(herald, token):
    """sendmail -bs: an SMTP session over standard input and output,
    carried to smtpd's submission socket; the message arrives, with the
    caller's uid in the log and Received: as for any local submission,
    and sendmail exits 0 when smtpd ends the session."""
    since = herald.log_size()
    p = subprocess.Popen([str(H.binpath("sendmail")), "-C", str(herald.conf),
                          "-bs"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         bufsize=0)
    try:
        def cmd(line, want):
            p.stdin.write(line.encode() + b"\r\n")
            code, text = smtp_reply(p.stdout)
            assert code == want, (line, text)
            return text
        code, text = smtp_reply(p.stdout)
        assert code == 220, text
        assert "250-" in cmd("EHLO script.example", 250)
        cmd("MAIL FROM:<script@example.org>", 250)
        cmd("RCPT TO:<alice@example.test>", 250)
        cmd("RCPT TO:<nosuch@example.test>", 550)
        cmd("DATA", 354)
        body = "Subject: bs %s\r\n\r\nover -bs\r\n..dot\r\n" % token
        p.stdin.write(body.encode())
        cmd(".", 250)
        cmd("QUIT", 221)
        assert p.wait(timeout=20) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            f.close()
    got = herald.wait_messages("bs " + token, "alice")[0]
    uid = os.getuid()
    assert b"Received: from local (uid %d)" % uid in got, got[:400]
    assert got.replace(b"\r\n", b"\n").endswith(b"over -bs\n.dot\n"), got
    herald.wait_log(r"client=local, uid=%d" % uid, since=since)


def test_bs_client_closes_and_not_running(make_herald, token):
    """-bs ends when the caller's input ends (smtpd sees the end and
    closes: nothing queued from half a transaction, exit 0), and says
    421 when herald is not running (exit 75)."""
    inst = make_herald()
    r = sendmail(inst, ["-bs"], "EHLO x\r\nMAIL FROM:<a@example.org>\r\n"
                 "RCPT TO:<alice@example.test>\r\nDATA\r\n"
                 "Subject: half %s\r\n\r\nno end" % token, timeout=30)
    assert r.returncode == 0, r
    assert r.stdout.startswith(b"220 "), r.stdout
    time.sleep(1)
    assert not inst.messages_with("half " + token, "alice")
    assert not _queued_with(inst, "half " + token)
    inst.stop()
    r = sendmail(inst, ["-bs"], "EHLO x\r\n", timeout=30)
    assert r.returncode == EX_TEMPFAIL, r
    assert r.stdout.startswith(b"421 "), r


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_modes_as_an_ordinary_user(pki, token):
    """With the services under their own users (as installed), an
    ordinary user (nobody) cannot list or flush the queue through
    mailq, -bp or -q (exit 77, nothing of the queue shown), and a -bs
    session of theirs is recorded with their own uid: -bs gives no way
    to be another uid. root lists the queue."""
    from test_privsep import Ids, finish, privsep_instance
    ids = Ids()
    inst, folder = privsep_instance(pki, ids)
    try:
        inst.add_domain("example.test")
        inst.add_user("alice@example.test", "pw-alice")
        inst.start()
        nobody = ids.vmail	# "nobody"
        link = folder / "mailq"
        link.symlink_to(H.binpath("sendmail"))

        def as_nobody(argv, data=b""):
            return subprocess.run(argv, input=data, capture_output=True,
                                  user=nobody.pw_uid, group=nobody.pw_gid,
                                  extra_groups=[], timeout=60, cwd="/")
        sm = [str(H.binpath("sendmail")), "-C", str(inst.conf)]
        # something in the queue that must not be shown: held
        sender = "secret-%s@example.org" % token
        since = inst.log_size()
        with inst.smtp() as s:
            assert s.sendmail(sender, ["alice@example.test"],
                              H.make_message(token, sender=sender)) == {}
        qid = inst.qid_of_sender(sender, since=since)
        for argv in (sm + ["-bp"], [str(link), "-C", str(inst.conf)],
                     sm + ["-q"]):
            r = as_nobody(argv)
            assert r.returncode == 77 and r.stdout == b"", (argv, r)
            assert b"only root and herald's user" in r.stderr, r
            assert qid.encode() not in r.stdout + r.stderr, r
            assert sender.encode() not in r.stdout + r.stderr, r
        r = subprocess.run(sm + ["-bp"], capture_output=True, timeout=60)
        assert r.returncode == 0 and b"QUEUE_ID" in r.stdout, r

        session = ("EHLO me\r\nMAIL FROM:<nobody@example.org>\r\n"
                   "RCPT TO:<alice@example.test>\r\nDATA\r\n"
                   "Subject: as nobody %s\r\n\r\nhi\r\n.\r\nQUIT\r\n"
                   % token).encode()
        since = inst.log_size()
        r = as_nobody(sm + ["-bs"], session)
        assert r.returncode == 0, r
        assert b"\r\n221 " in r.stdout, r.stdout
        got = inst.wait_messages("as nobody " + token, "alice")[0]
        assert b"Received: from local (uid %d)" % nobody.pw_uid in got, \
            got[:400]
        inst.wait_log(r"client=local, uid=%d" % nobody.pw_uid, since=since)
    finally:
        finish(inst, folder)


def test_typo_in_config_does_not_stop_mail(make_herald, tmp_path, token):
    """A typo in herald.conf must not lose cron's mail: sendmail and mailq
    warn once and go on with the settings herald runs with."""
    inst = make_herald()
    good = inst.conf.read_text()
    try:
        inst.conf.write_text(good + "smtpd_bannner = typo\n")
        r = sendmail(inst, ["alice@example.test"],
                     "Subject: typo %s\n\nstill delivered\n" % token)
        assert r.returncode == 0, r
        err = r.stderr.decode()
        assert err.count("warning") == 1 and "smtpd_bannner" in err, err
        inst.wait_messages(token, "alice")
        q = run_as(tmp_path, "mailq", inst)
        assert q.returncode == 0 and q.stdout.startswith(b"QUEUE_ID"), q
        assert b"smtpd_bannner" in q.stderr, q
    finally:
        inst.conf.write_text(good)

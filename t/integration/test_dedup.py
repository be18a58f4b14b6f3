"""
Duplicates and expansion limits per message (issue 12): one message whose
recipients reach the same mailboxes many times ("all+0@" .. "all+249@" of
a 150-member alias, many addresses of a catch-all) gives each mailbox one
copy, although it has more recipients than one delivery request used to
hold (100); a recipient whose alias expands past alias_expansion_limit is
refused at RCPT with 5.5.3, and no bounce is made; the mailbox copies a
transaction's recipients make are counted while it is open, and past
local_copy_limit a recipient gets 452 4.5.3.

The Maildirs are counted file by file: every copy is a file.
"""
import pytest

import conftest
import herald as H

MEMBERS = 150		# > the old 100 recipients per request
RCPTS = 250		# < smtpd_recipient_limit (1000)
HUGE = 1001		# > alias_expansion_limit (1000)
# nobody here logs in: the mailboxes' password is one SHA512-CRYPT hash
# (of "pw-dedup"), kept as it is, so the import does not spend yescrypt
# on each of 360 users (8 to 16 s a fixture); test_user_import
# covers hashing {PLAIN}
HASH = ("$6$heralddedup$UUhiD/6Mp3WsanhAjMskvMPPtmoEw.fHKGmdUpPKiJsSY6BMm"
        "MUrBm9nhINhS.VE4thwJvR3PgWmDEOKuQMLz.")


@pytest.fixture(scope="module")
def inst(tmp_path_factory, pki):
    with conftest.standard_instance(tmp_path_factory, pki,
                                    "dedup") as i:
        i.add_domain("dedup.test")
        lines = "".join("m%d@dedup.test:{SHA512-CRYPT}%s::::::\n"
                        % (n, HASH) for n in range(MEMBERS))
        i.ctl_ok("user", "import", "-", input=lines)
        members = ["m%d@dedup.test" % n for n in range(MEMBERS)]
        for n in range(0, MEMBERS, 50):
            i.add_alias("all@dedup.test", *members[n:n + 50])
        # huge: HUGE distinct addresses, all m0's mailbox through +ext
        tags = ["m0+t%d@dedup.test" % n for n in range(HUGE)]
        for n in range(0, HUGE, 60):
            i.add_alias("huge@dedup.test", *tags[n:n + 60])
        yield i


def send_many(inst, sender, rcpts, msg):
    """One transaction with every rcpt; each must get 250."""
    with inst.smtp(timeout=60) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg)
        assert code == 250, (code, text)
        s.quit()


def count_with(inst, token, user, domain):
    return len(inst.messages_with(token, user, domain))


def test_alias_via_many_tags_one_copy_each(inst, token):
    """250 recipients all+N@ of a 150-member alias: each member gets
    exactly one file (main wrote 3: one per 100-recipient request)."""
    sender = "tags-%s@example.org" % token
    msg = H.make_message(token, sender=sender, to="all@dedup.test")
    send_many(inst, sender, ["all+%d@dedup.test" % n for n in range(RCPTS)],
              msg)
    inst.wait_messages(token, "m%d" % (MEMBERS - 1), "dedup.test")
    inst.wait_queue_empty()
    counts = {n: count_with(inst, token, "m%d" % n, "dedup.test")
              for n in range(MEMBERS)}
    wrong = {n: c for n, c in counts.items() if c != 1}
    assert wrong == {}, "%d members without exactly one copy, e.g. %s" % (
        len(wrong), sorted(wrong.items())[:5])
    # and no other file: m1.. get mail from this test only
    files = {n: len(inst.maildir_files("m%d" % n, "dedup.test"))
             for n in range(1, MEMBERS)}
    assert set(files.values()) == {1}, files


def test_catch_all_many_addresses_one_copy(inst, token):
    """250 random addresses of catch.test (catch-all -> carol) in one
    message: carol gets one copy (main: 3)."""
    sender = "catch-%s@example.org" % token
    msg = H.make_message(token, sender=sender, to="x@catch.test")
    rcpts = ["r%d-%s@catch.test" % (n, token[-6:]) for n in range(RCPTS)]
    send_many(inst, sender, rcpts, msg)
    inst.wait_messages(token, "carol")
    inst.wait_queue_empty()
    assert count_with(inst, token, "carol", "example.test") == 1


def test_over_large_alias_refused_at_rcpt(inst, token):
    """huge@ expands to 1001 addresses: RCPT gets 550 5.5.3 naming the
    limit, the rest of the transaction goes on, and no bounce is made
    (main took it with 250 and bounced it after delivering to m0)."""
    sender = "alice@example.test"
    msg = H.make_message(token, sender=sender, to="bob@example.test")
    since = inst.log_size()
    with inst.smtp(timeout=60) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt("huge+x@dedup.test")
        assert code == 550, (code, text)
        assert text.startswith(b"5.5.3"), text
        assert b"alias expands to more than 1000 addresses" in text, text
        # the same alias again: still refused (nothing remembered wrongly)
        code, text = s.rcpt("huge@dedup.test")
        assert code == 550, (code, text)
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(msg)[0] == 250
        s.quit()
    inst.wait_messages(token, "bob")
    inst.wait_queue_empty()
    assert count_with(inst, token, "m0", "dedup.test") == 0
    # no bounce to the sender: alice has nothing mentioning the token
    assert inst.messages_with(token, "alice") == []
    log = inst.log_text(since)
    assert "status=bounced" not in log, log


@pytest.fixture(scope="module")
def capped(tmp_path_factory, pki):
    """local_copy_limit=200; cap.test: u0..u209, big@ -> u0..u149,
    more@ -> u150..u209, every@ -> all 210."""
    with conftest.standard_instance(tmp_path_factory, pki, "capped",
                                    local_copy_limit=200) as i:
        i.add_domain("cap.test")
        lines = "".join("u%d@cap.test:{SHA512-CRYPT}%s::::::\n"
                        % (n, HASH) for n in range(210))
        i.ctl_ok("user", "import", "-", input=lines)
        users = ["u%d@cap.test" % n for n in range(210)]
        for n in range(0, 150, 50):
            i.add_alias("big@cap.test", *users[n:n + 50])
        i.add_alias("more@cap.test", *users[150:210])
        for n in range(0, 210, 60):
            i.add_alias("every@cap.test", *users[n:n + 60])
        yield i


def test_copies_counted_at_rcpt(capped, token):
    """big@ (150 mailboxes), then more@ (60 more): past 200 copies more@
    gets 452 4.5.3, which is no client error; big+x@ again and a mailbox
    add nothing or one; the message is delivered to those accepted, once
    each."""
    inst = capped
    sender = "cap-%s@example.org" % token
    msg = H.make_message(token, sender=sender, to="big@cap.test")
    with inst.smtp(timeout=60) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        assert s.rcpt("big@cap.test")[0] == 250
        assert s.rcpt("big+again@cap.test")[0] == 250	# counted once
        code, text = s.rcpt("more@cap.test")
        assert code == 452, (code, text)
        assert text.startswith(b"4.5.3"), text
        assert b"reach more than 200 mailboxes" in text, text
        assert s.rcpt("u0+x@cap.test")[0] == 250	# 151: fits
        for n in range(30):	# not counted as errors: no disconnect
            assert s.rcpt("more+%d@cap.test" % n)[0] == 452
        assert s.data(msg)[0] == 250
        s.quit()
    inst.wait_messages(token, "u149", "cap.test")
    inst.wait_queue_empty()
    got = {n: len(inst.messages_with(token, "u%d" % n, "cap.test"))
           for n in range(210)}
    assert {n: c for n, c in got.items() if n < 150 and c != 1} == {}
    assert {n: c for n, c in got.items() if n >= 150 and c != 0} == {}
    # a new transaction starts from zero
    msg2 = H.make_message(token + "-2", sender=sender, to="more@cap.test")
    send_many(inst, sender, ["more@cap.test"], msg2)
    inst.wait_messages(token + "-2", "u209", "cap.test")
    inst.wait_queue_empty()


def test_alias_over_copy_limit_alone_refused(capped, token):
    """every@ reaches 210 mailboxes > local_copy_limit on its own: 550
    5.5.3 (no use retrying), and nothing is queued or bounced."""
    inst = capped
    since = inst.log_size()
    with inst.smtp(timeout=60) as s:
        s.ehlo()
        assert s.mail("alice@example.test")[0] == 250
        code, text = s.rcpt("every@cap.test")
        assert code == 550, (code, text)
        assert text.startswith(b"5.5.3"), text
        assert b"reaches more than 200 mailboxes" in text, text
        s.rset()
        s.quit()
    assert inst.queue_empty(), inst.queue_files()
    log = inst.log_text(since)
    assert "status=bounced" not in log, log

"""
smtpd's group commit delay (smtpd_commit_delay): a message's commit waits
for other sessions of the same worker that are in the middle of a
transaction, but never longer than the delay; a lone session never
waits, and a commit goes at once when the transaction it waited for ends
without one. The messages are delivered either way.
"""
import time

import pytest

import herald as H

DELAY_US = 600000	# long enough to tell apart from a disk flush


@pytest.fixture(scope="module")
def delayed(tmp_path_factory, pki):
    import conftest
    with conftest.standard_instance(tmp_path_factory, pki, "commit",
                                    smtpd_workers=1,
                                    smtpd_commit_delay=DELAY_US) as inst:
        yield inst


def open_tx(inst):
    c = inst.raw()
    c.expect(220)
    c.expect(250, "EHLO client.example.test")
    c.expect(250, "MAIL FROM:<s@example.org>")
    c.expect(250, "RCPT TO:<alice@example.test>")
    return c


def send_data(c, token):
    """DATA and the message; seconds from the final dot to the reply."""
    c.expect(354, "DATA")
    c.send(H.make_message(token))
    start = time.monotonic()
    c.expect(250, ".", timeout=30)
    return time.monotonic() - start


def test_lone_session_commits_at_once(delayed, token):
    with open_tx(delayed) as c:
        took = send_data(c, token)
    assert took < DELAY_US / 1e6 * 0.75, \
        "a lone session waited %.3fs for its commit" % took
    delayed.wait_messages(token, "alice")


def test_commit_waits_for_a_transaction_in_progress(delayed, token):
    with open_tx(delayed) as idle, open_tx(delayed) as busy:
        took = send_data(busy, token + "-busy")
        # the other session held its transaction open the whole time:
        # the commit waited for it, but no longer than the delay
        assert took >= DELAY_US / 1e6 * 0.9, \
            "the commit did not wait (%.3fs)" % took
        assert took < DELAY_US / 1e6 + 5, "the commit waited %.3fs" % took
        took = send_data(idle, token + "-idle")
        assert took < DELAY_US / 1e6 * 0.75, \
            "the last open transaction waited %.3fs" % took
    delayed.wait_messages(token + "-busy", "alice")
    delayed.wait_messages(token + "-idle", "alice")


def test_commit_shares_its_wait_with_the_session_it_waited_for(delayed,
                                                              token):
    with open_tx(delayed) as a, open_tx(delayed) as b:
        a.expect(354, "DATA")
        a.send(H.make_message(token + "-a") + b".\r\n")
        time.sleep(0.1)
        start = time.monotonic()
        took_b = send_data(b, token + "-b")
        a.expect(250, timeout=30)
        took_a = time.monotonic() - start + 0.1
    # b's end of data released the wait: both answered well within it
    assert took_a < DELAY_US / 1e6 * 0.75 and took_b < DELAY_US / 1e6 * 0.75, \
        "waits %.3fs and %.3fs" % (took_a, took_b)
    delayed.wait_messages(token + "-a", "alice")
    delayed.wait_messages(token + "-b", "alice")


def test_commit_goes_when_the_awaited_transaction_is_abandoned(delayed,
                                                               token):
    with open_tx(delayed) as idle, open_tx(delayed) as busy:
        busy.expect(354, "DATA")
        busy.send(H.make_message(token) + b".\r\n")
        time.sleep(0.1)
        start = time.monotonic()
        idle.expect(250, "RSET")	# the transaction it waited for ends
        busy.expect(250, timeout=30)
        took = time.monotonic() - start
    assert took < DELAY_US / 1e6 * 0.5, \
        "the commit waited %.3fs after the other transaction ended" % took
    delayed.wait_messages(token, "alice")

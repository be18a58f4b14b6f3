"""
postmaster (RFC 5321 4.5.1, 4.1.1.3): postmaster@ every hosted domain,
any case, and a bare <postmaster> are accepted without an alias and reach
the domain's first user or postmaster_address; an explicit alias wins; a
domain with nobody to read it gets 451 (the sender retries), not 550.
"""
import re

import herald as H


def send_one(inst, token, rcpt, sender):
    """Send a message with token to rcpt; the RCPT reply code."""
    msg = H.make_message(token, sender=sender, to="postmaster")
    with inst.smtp() as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt(rcpt)
        if code != 250:
            s.rset()
            return code, text
        assert s.data(msg)[0] == 250
    return code, text


def test_postmaster_of_a_fresh_domain(make_herald, token):
    inst = make_herald(standard=False)
    inst.add_domain("fresh.test")
    inst.add_user("ann@fresh.test", "pw-ann")	# the first: the admin
    inst.add_user("ben@fresh.test", "pw-ben")
    sender = "pm-%s@example.org" % token
    # any case, no alias needed
    code, text = send_one(inst, token + "-a", "<PostMaster@Fresh.Test>",
                          sender)
    assert code == 250, (code, text)
    inst.wait_messages(token + "-a", "ann", domain="fresh.test")
    # the bare form: mydomain is unset and myhostname is not hosted, so
    # the first hosted domain's postmaster
    code, text = send_one(inst, token + "-b", "<postmaster>", sender)
    assert code == 250, (code, text)
    inst.wait_messages(token + "-b", "ann", domain="fresh.test")
    assert not inst.messages_with(token, "ben", domain="fresh.test")
    # an explicit alias wins
    inst.add_alias("postmaster@fresh.test", "ben@fresh.test")
    code, text = send_one(inst, token + "-c", "<POSTMASTER@fresh.test>",
                          sender)
    assert code == 250, (code, text)
    inst.wait_messages(token + "-c", "ben", domain="fresh.test")
    assert not inst.messages_with(token + "-c", "ann", domain="fresh.test")
    # a domain with no users: nobody reads it yet, so 451, and the log
    # says what to add; domain list shows where each postmaster goes
    inst.add_domain("void.test")
    r = inst.ctl("domain", "list")
    assert r.returncode == 0, r
    assert re.search(r"^fresh\.test\s+2\s+1\s+ben@fresh\.test$", r.stdout,
                     re.M), r.stdout
    assert re.search(r"^void\.test\s+0\s+0\s+none \(4\.3\.0 no mailbox "
                     r"for postmaster", r.stdout, re.M), r.stdout
    since = inst.log_size()
    code, text = send_one(inst, token + "-d", "<postmaster@void.test>",
                          sender)
    assert code == 451 and text.startswith(b"4.3.0"), (code, text)
    assert b"no mailbox for postmaster" in text, text
    inst.wait_log(r"postmaster@void\.test>: no mailbox for postmaster",
                  since=since)
    # another user still is not postmaster: RCPT of other names is 550
    code, text = send_one(inst, token + "-e", "<nobody@fresh.test>", sender)
    assert code == 550, (code, text)
    # the first user goes: the next one becomes the admin
    inst.ctl_ok("alias", "del", "postmaster@fresh.test")
    inst.ctl_ok("user", "del", "ann@fresh.test")
    code, text = send_one(inst, token + "-f", "<postmaster@fresh.test>",
                          sender)
    assert code == 250, (code, text)
    inst.wait_messages(token + "-f", "ben", domain="fresh.test")
    inst.wait_queue_empty(30)


def test_postmaster_address(make_herald, token):
    inst = make_herald(standard=False,
                       postmaster_address="Boss@fresh.test")
    inst.add_domain("fresh.test")
    inst.add_user("ann@fresh.test", "pw-ann")
    inst.add_user("boss@fresh.test", "pw-boss")
    inst.add_domain("other.test")	# no users at all
    sender = "pm-%s@example.org" % token
    for n, rcpt in enumerate(("<postmaster@other.test>",
                              "<postmaster@fresh.test>")):
        code, text = send_one(inst, "%s-%d" % (token, n), rcpt, sender)
        assert code == 250, (rcpt, code, text)
        inst.wait_messages("%s-%d" % (token, n), "boss", domain="fresh.test")
    assert not inst.messages_with(token, "ann", domain="fresh.test")
    # a null-sender message (a bounce) to postmaster is delivered, once
    code, text = send_one(inst, token + "-n", "<postmaster@other.test>", "")
    assert code == 250, (code, text)
    inst.wait_messages(token + "-n", "boss", domain="fresh.test")
    inst.wait_queue_empty(30)
    assert len(inst.messages_with(token + "-n", "boss",
                                  domain="fresh.test")) == 1
    r = inst.ctl("check")
    assert r.returncode == 0, r
    assert re.search(r"postmaster_address", inst.ctl("config", "--changed")
                     .stdout)

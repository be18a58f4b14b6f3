"""
Delivery status notifications through the whole system (issue 15): a
message sent to smtpd with MAIL ... RET=FULL ENVID=... and RCPT ...
NOTIFY=... ORCPT=rfc822;... gets, in the sender's Maildir, one delay
warning while a recipient is deferred past delay_warning_time, success
reports for NOTIFY=SUCCESS, and a failed DSN goes once to the postmaster.
"""
import email
import email.policy
import json
import re
import time

import herald as H


def parse(raw):
    """A delivered DSN: (message, [per-message fields, per-recipient
    fields...] of its message/delivery-status part, the third part)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", raw[:2000]
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert len(parts) == 3, raw[:3000]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    groups = [dict(g.items()) for g in parts[1].get_payload()]
    return msg, groups, parts[2]


def dsns(inst, user, token, subject):
    return [m for m in inst.messages_with(token, user)
            if ("Subject: " + subject).encode() in m]


def block(inst, local):
    """A plain file where the Maildir would go: delivery defers."""
    path = inst.maildir(local)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("in the way\n")
    return path


def test_delay_warning_ret_full_and_success(make_herald, token):
    inst = make_herald(delay_warning_time="2s")
    local = "gina%s" % token[-8:].lower()
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw")
    blocker = block(inst, local)
    sender = "dave@example.test"
    envid = "env-" + token[-12:]
    since = inst.log_size()
    with inst.smtp() as s:
        s.ehlo()
        code, _ = s.mail(sender, ["RET=FULL", "ENVID=" + envid])
        assert code == 250
        code, _ = s.rcpt(addr, ["NOTIFY=SUCCESS,DELAY,FAILURE",
                                "ORCPT=rfc822;G-" + addr])
        assert code == 250
        code, _ = s.rcpt("bob@example.test", ["NOTIFY=SUCCESS"])
        assert code == 250
        code, _ = s.rcpt("carol@example.test", ["NOTIFY=FAILURE"])
        assert code == 250
        code, _ = s.data(H.make_message(token, sender=sender, to=addr,
                                        body="BODY-%s\r\n" % token))
        assert code == 250
    qid = inst.qid_of_sender(sender, since=since)

    # bob (NOTIFY=SUCCESS) is delivered at once: a success report
    raw = H.wait_for(lambda: dsns(inst, "dave", token,
                                  "Successful Mail Delivery Report"),
                     30, what="success report")[0]
    assert b"Return-Path: <>" in raw
    msg, groups, third = parse(raw)
    assert groups[0]["Reporting-MTA"].startswith("dns; ")
    assert groups[0]["Original-Envelope-Id"] == envid
    assert "Arrival-Date" in groups[0]
    rcpts = {g["Final-Recipient"]: g for g in groups[1:]}
    assert list(rcpts) == ["rfc822; bob@example.test"], groups
    assert rcpts["rfc822; bob@example.test"]["Action"] == "delivered"
    assert rcpts["rfc822; bob@example.test"]["Status"] == "2.0.0"
    # RET=FULL: the whole message comes back
    assert third.get_content_type() == "message/rfc822"
    assert ("BODY-%s" % token).encode() in raw

    # gina stays deferred past delay_warning_time: one warning
    raw = H.wait_for(lambda: dsns(inst, "dave", token,
                                  "Delayed Mail (still being retried)"),
                     30, what="delay warning")[0]
    msg, groups, third = parse(raw)
    assert groups[0]["Original-Envelope-Id"] == envid
    assert len(groups) == 2, groups
    g = groups[1]
    assert g["Final-Recipient"] == "rfc822; " + addr
    assert g["Original-Recipient"] == "rfc822;G-" + addr
    assert g["Action"] == "delayed"
    assert re.fullmatch(r"4\.\d+\.\d+", g["Status"]), g
    assert "Will-Retry-Until" in g
    assert third.get_content_type() == "message/rfc822"
    inst.wait_log(r"%s: sender delay notification: " % qid, since=since)
    # queue show says the sender was warned (text and JSON)
    H.wait_for(lambda: "sender warned of the delay" in inst.ctl(
        "queue", "show", qid).stdout, 30, what="warned mark in queue show")
    r = inst.ctl("--json", "queue", "show", qid)
    got = {x["address"]: x for x in json.loads(r.stdout)["recipients"]}
    assert got[addr]["delay_warned"] is True, got

    # more retries, still deferred: never a second warning
    retries = len(re.findall(r"%s: to=<%s>.*status=deferred"
                             % (qid, re.escape(addr)),
                             inst.log_text(since)))
    H.wait_for(lambda: len(re.findall(
        r"%s: to=<%s>.*status=deferred" % (qid, re.escape(addr)),
        inst.log_text(since))) >= retries + 2, 30,
        what="two more attempts")
    assert len(dsns(inst, "dave", token,
                    "Delayed Mail (still being retried)")) == 1

    # unblocked: gina is delivered, and asked for success too
    blocker.unlink()
    assert inst.ctl("queue", "flush").returncode == 0
    H.wait_for(lambda: len(dsns(inst, "dave", token,
                                "Successful Mail Delivery Report")) == 2,
               30, what="second success report")
    assert inst.messages_with(token, local)
    # carol (NOTIFY=FAILURE) never appears in any report
    for raw in inst.messages_with(token, "dave"):
        assert b"Final-Recipient: rfc822; carol@" not in raw


def test_no_warning_without_delay_in_notify(make_herald, token):
    inst = make_herald(delay_warning_time="1s")
    local = "hugo%s" % token[-8:].lower()
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw")
    block(inst, local)
    sender = "dave@example.test"
    since = inst.log_size()
    with inst.smtp() as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        assert s.rcpt(addr, ["NOTIFY=FAILURE"])[0] == 250
        assert s.data(H.make_message(token, sender=sender, to=addr))[0] \
            == 250
    qid = inst.qid_of_sender(sender, since=since)
    H.wait_for(lambda: len(re.findall(
        r"%s: to=<%s>.*status=deferred" % (qid, re.escape(addr)),
        inst.log_text(since))) >= 3, 30, what="three attempts")
    assert "%s: sender delay notification" % qid not in \
        inst.log_text(since)
    assert not inst.messages_with(token, "dave")


def test_failed_dsn_goes_once_to_postmaster(make_herald, token):
    """A DSN to a sender that does not exist bounces: the postmaster gets
    one notice, which would never itself be bounced."""
    inst = make_herald(maximal_queue_lifetime="1s",
                       postmaster_address="alice@example.test")
    local = "ivan%s" % token[-8:].lower()
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw")
    block(inst, local)
    sender = "ghost-%s@example.test" % token[-8:].lower()
    since = inst.log_size()
    with inst.smtp() as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        assert s.rcpt(addr)[0] == 250
        assert s.data(H.make_message(token, sender=sender, to=addr))[0] \
            == 250
    qid = inst.qid_of_sender(sender, since=since)
    # expired -> DSN to the ghost -> it bounces -> notice to alice
    raw = H.wait_for(lambda: [m for m in inst.maildir_messages("alice")
                              if sender.encode() in m and
                              b"Undeliverable Delivery Status" in m],
                     40, what="postmaster notice")[0]
    msg, groups, third = parse(raw)
    assert msg["To"] == "<alice@example.test>"
    assert groups[1]["Final-Recipient"] == "rfc822; " + sender
    assert groups[1]["Action"] == "failed"
    assert groups[1]["Status"].startswith("5.")
    assert third.get_content_type() == "text/rfc822-headers"
    m = inst.wait_log(r"(%s): undeliverable notification; postmaster "
                      r"notice: (%s)" % (H.QID_RE, H.QID_RE), since=since)
    assert m.group(1) != qid
    time.sleep(3)
    notices = [m for m in inst.maildir_messages("alice")
               if sender.encode() in m and
               b"Undeliverable Delivery Status" in m]
    assert len(notices) == 1
    assert not any(p for p in inst.queue_files()), inst.queue_files()

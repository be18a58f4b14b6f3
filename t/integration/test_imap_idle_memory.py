"""
What an IMAP IDLE session costs: 300 sessions over implicit TLS, each
logged in, INBOX selected and in IDLE, must grow the summed PSS of the
imapd worker by less than IDLE_KIB_BOUND KiB each (DESIGN.md 3: one
worker holds thousands of IDLE sessions in little memory). The sessions come
from 30 loopback source addresses, 10 each, under the shipped
imapd_client_limit. A delivery then reaches every session of its user
as an untagged EXISTS within a second.

Under a sanitizer (HERALD_SANITIZED) the memory bound is not checked:
ASan's redzones and quarantine are most of the heap there.
"""
import os
import socket
import ssl
import time

import herald as H
from test_imap_core import IdleSession, imapd_pss_kib

SANITIZED = bool(os.environ.get("HERALD_SANITIZED"))
SESSIONS = 300
USERS = 10
SOURCES = 30
PW = "pw-idle-memory"
# per session (measured 18.5 KiB): OpenSSL 3's state, about 14 KiB once
# its record buffers are released, and 4.6 KiB of imapd's own (the
# stream, the session, its selected state); 36.9 KiB before stream and
# OpenSSL released empty buffers and the parser its literal table
IDLE_KIB_BOUND = 28
# a stream quiet for 1 s gives back its buffers and OpenSSL's
# (stream.c: STREAM_RELEASE_MS); a busier one keeps them
IDLE_AFTER = 1.5


def idle_client(inst, ctx, k):
    """Session k over TLS, from its source address, as user k % USERS."""
    src = "127.0.0.%d" % (2 + k % SOURCES)
    raw = socket.create_connection(("127.0.0.1", inst.imaps_port), 15,
                                   source_address=(src, 0))
    tls = ctx.wrap_socket(raw, server_hostname="mx.example.test")
    return IdleSession(tls, "idle%d@example.test" % (k % USERS), PW)


def open_idle(inst, ctx, first, count, deadline, batch=30):
    """count sessions in IDLE, batch logins at a time (within what a
    worker queues for authd, auth_queue_limit)"""
    made = []
    try:
        for b in range(first, first + count, batch):
            fresh = [idle_client(inst, ctx, k)
                     for k in range(b, min(b + batch, first + count))]
            made += fresh
            for c in fresh:
                c.wait_idling(deadline)
    except BaseException:
        for c in made:
            c.close()
        raise
    return made


def test_idle_sessions_memory(make_herald, pki):
    inst = make_herald(imap=True, imapd_workers=1)
    for u in range(USERS):
        inst.add_user("idle%d@example.test" % u, PW)
    ctx = ssl.create_default_context(cafile=str(pki["ca_cert"]))
    clients = []
    try:
        t_end = time.monotonic() + 120
        # one session per user first: the users' indexes, OpenSSL's and
        # the worker's fixed state are then in the baseline
        clients += open_idle(inst, ctx, 0, USERS, t_end)
        time.sleep(IDLE_AFTER)
        base = imapd_pss_kib(inst)
        clients += open_idle(inst, ctx, USERS, SESSIONS, t_end)
        time.sleep(IDLE_AFTER)
        grown = imapd_pss_kib(inst) - base
        per = grown / SESSIONS
        print("imapd PSS %d KiB before, +%d KiB for %d IDLE sessions over "
              "TLS: %.1f KiB each" % (base, grown, SESSIONS, per))
        if not SANITIZED:
            assert per < IDLE_KIB_BOUND, (base, grown, per)

        # the sessions are live: a delivery wakes every one of its user
        mine = [c for c in clients if c.user == "idle3@example.test"]
        with inst.smtp() as s:
            s.sendmail("sender@example.org", ["idle3@example.test"],
                       H.make_message("idle-memory-wake",
                                      to="idle3@example.test"))
        inst.wait_messages("idle-memory-wake", "idle3", count=1)
        t0 = time.monotonic()
        for c in mine:
            assert c.line(t0 + 5) == b"* 1 EXISTS"
        assert time.monotonic() - t0 < (5 if SANITIZED else 1.0)
    finally:
        for c in clients:
            c.close()
